#pragma once
// PaletteQuantizer: LAMIA's training-free quantizer (paper 4.2.3). For every
// palette position j it fits a PCA (mean-centred, D -> d) on the n vectors of
// position j, then K-Means (faiss) with k centroids on the reduced vectors; the
// code of an item at position j is its nearest centroid. New items are encoded
// by projection + nearest centroid, without refitting.
//
// Example:
//   lamia::PaletteQuantizerOptions opt;          // d = 64, k = 256
//   lamia::PaletteQuantizer q(opt);
//   lamia::PaletteFitReport report = q.fit(palettes);     // n x L x D float32
//   lamia::SemanticIdTable table = q.table();             // training items, collisions resolved
//   torch::Tensor codes = q.encode(new_palettes);         // m x L int64
//   q.save("quantizer.bin");
#include <lamia/quantize/kmeans.hpp>
#include <lamia/quantize/palette_source.hpp>
#include <lamia/quantize/pca.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lamia {

struct PaletteQuantizerOptions {
  /// d: PCA output dimension per position (paper: 64). Must be <= D.
  std::int64_t pca_dim = 64;
  /// One PCA fitted on the vectors of all positions together, instead of one per position.
  bool shared_pca = false;
  /// Cluster the raw D-dimensional vectors (pca_dim is ignored).
  bool no_pca = false;
  /// With fewer than k items: false -> ValueError; true -> k is reduced to the number of items
  /// (reported in PaletteFitReport::positions[j].num_codes and in codebook_sizes()).
  bool reduce_k_when_few_items = false;
  /// How each position's PCA is fitted: exact (default) or randomized solver, on all items or a sample.
  PcaOptions pca;
  /// The K-Means of every position (k = kmeans.num_codes, paper: 256). Its seed is the base seed:
  /// position j, restart r uses kmeans.seed + 1000003 * j + r.
  KMeansOptions kmeans;
};

template <class V>
void visit_fields(PaletteQuantizerOptions& o, V&& v) {
  v.field("pca_dim", o.pca_dim, "d, the PCA output dimension per position (paper: 64; <= D)", options::at_least(1));
  v.field("shared_pca", o.shared_pca, "one PCA fitted on the vectors of all positions together");
  v.field("no_pca", o.no_pca, "cluster the raw D-dimensional vectors (pca_dim is ignored)");
  v.field("reduce_k_when_few_items", o.reduce_k_when_few_items,
          "with fewer than k items reduce k to the number of items instead of raising ValueError");
  v.field("pca", o.pca, "how each position's PCA is fitted (solver, item sample); position j seeds random_state + 1000003 j");
  v.field("kmeans", o.kmeans, "the K-Means of every position; position j, restart r seeds kmeans.seed + 1000003 j + r");
}

/// What fit() did, per palette position.
struct PositionFitReport {
  std::int64_t num_codes = 0;  ///< k actually used
  std::vector<std::vector<double>> objective;  ///< per restart, per iteration (see KMeansResult)
  int best_restart = 0;
  double inertia = 0.0;  ///< sum of squared distances to the final nearest centroid (reduced space)
  std::vector<double> explained_variance_ratio;  ///< per PCA component (empty with no_pca)
  double explained_variance_ratio_total = 0.0;  ///< sum of the above
  std::int64_t used_codes = 0;  ///< centroids that received at least one training item
  std::int64_t kmeans_fit_points = 0;  ///< points the centroids were fitted on (n or the sample)
};

template <class V>
void visit_fields(PositionFitReport& o, V&& v) {
  v.field("num_codes", o.num_codes, "k actually used");
  v.field("objective", o.objective, "K-Means objective per restart, per iteration");
  v.field("best_restart", o.best_restart, "the restart kept");
  v.field("inertia", o.inertia, "sum of squared distances to the final nearest centroid (reduced space)");
  v.field("explained_variance_ratio", o.explained_variance_ratio, "per PCA component (empty with no_pca)");
  v.field("explained_variance_ratio_total", o.explained_variance_ratio_total, "sum of the above");
  v.field("used_codes", o.used_codes, "centroids that received at least one training item");
  v.field("kmeans_fit_points", o.kmeans_fit_points, "points the centroids were fitted on (n, or the sample)");
}

struct PaletteFitReport {
  std::int64_t num_items = 0;
  std::int64_t num_positions = 0;
  std::int64_t input_dim = 0;
  std::int64_t reduced_dim = 0;
  std::vector<PositionFitReport> positions;
  /// Items whose L codes collide with another item's (resolved by the index token).
  std::int64_t num_colliding_items = 0;
  /// Items the PCAs were fitted on (n, or the pca.max_items sample).
  std::int64_t pca_items = 0;
  double seconds = 0.0;
  /// Wall time of fit() by phase: read (the source's read calls), check_and_mean (NaN/inf check, column
  /// sums, the PCA sample), covariance (exact) or power_iterations (randomized), eigenpairs, projection,
  /// kmeans_seeding, kmeans_iterations, kmeans_assignment (all n items), table.
  std::map<std::string, double> phase_seconds;
  /// options::to_json(*this).
  nlohmann::json to_json() const;
};

template <class V>
void visit_fields(PaletteFitReport& o, V&& v) {
  v.field("num_items", o.num_items, "n, the training items");
  v.field("num_positions", o.num_positions, "L, palette positions");
  v.field("input_dim", o.input_dim, "D, palette vector dimension");
  v.field("reduced_dim", o.reduced_dim, "d after PCA (D with no_pca)");
  v.field("positions", o.positions, "one report per position");
  v.field("num_colliding_items", o.num_colliding_items, "items whose L codes collide with another item's");
  v.field("pca_items", o.pca_items, "items the PCAs were fitted on (n, or the pca.max_items sample)");
  v.field("seconds", o.seconds, "wall time of fit()");
  v.field("phase_seconds", o.phase_seconds, "wall time of fit() by phase");
}

inline nlohmann::json PaletteFitReport::to_json() const { return options::to_json(*this); }

class PaletteQuantizer {
 public:
  /// Version of the binary file format written by save().
  static constexpr std::uint32_t kFormatVersion = 1;

  explicit PaletteQuantizer(PaletteQuantizerOptions options = {});

  const PaletteQuantizerOptions& options() const noexcept { return options_; }
  bool fitted() const noexcept { return !centroids_.empty(); }
  std::int64_t num_positions() const noexcept { return num_positions_; }
  std::int64_t input_dim() const noexcept { return input_dim_; }
  std::int64_t reduced_dim() const noexcept { return reduced_dim_; }
  /// k per position (L entries).
  std::vector<std::int64_t> codebook_sizes() const;

  /// Fits on n x L x D float32 CPU palettes (a non-contiguous tensor is copied first).
  /// Throws ValueError on a wrong shape or dtype, a NaN/inf (naming the item), d > D, or n < k.
  PaletteFitReport fit(const torch::Tensor& palettes);
  /// Same from n*L*D floats, row-major (item, position, dimension); not copied.
  PaletteFitReport fit(const float* palettes, std::int64_t num_items, std::int64_t num_positions,
                       std::int64_t dim);
  /// Same from palettes read a chunk at a time (e.g. from a palette file larger than memory):
  /// three passes over the source (means and the NaN/inf check, covariances, projections), two
  /// with a PCA sample (pca.max_items: the check with the sample's copy, projections), one after
  /// reading the sampled items alone when the sample is at most 1 item in 32;
  /// memory beyond one chunk is the n x L x d projections (n x L x D with no_pca) and the
  /// L covariances (D x D doubles). Gives the same quantizer as fit(tensor) on the same data.
  PaletteFitReport fit(const PaletteSource& source);

  /// Codes of m x L x D palettes as an m x L int64 tensor. Throws ValueError when L or D
  /// differ from the fitted ones, or on NaN/inf.
  torch::Tensor encode(const torch::Tensor& palettes) const;
  /// Same into codes (m*L int32, row-major).
  void encode(const float* palettes, std::int64_t num_items, std::int64_t num_positions, std::int64_t dim,
              std::int32_t* codes) const;
  /// Codes of the source's palettes (m x L int64), one chunk in memory at a time.
  torch::Tensor encode(const PaletteSource& source) const;

  /// Codes of the training items (n x L int64), as assigned at the end of fit().
  torch::Tensor training_codes() const;
  /// The semantic-ID table of the training items (collisions resolved, see SemanticIdTable).
  SemanticIdTable table() const;
  /// The report of the last fit() (empty after load()).
  const PaletteFitReport& report() const noexcept { return report_; }

  /// The PCA of a position (all positions share one with shared_pca).
  const Pca& pca(std::int64_t position) const;
  /// Centroids of a position, k x d float32 (a copy).
  torch::Tensor centroids(std::int64_t position) const;

  /// Writes the versioned binary format atomically (options, PCAs, centroids).
  void save(const std::filesystem::path& path) const;
  /// Reads a file written by save(); ValueError naming the file and what is wrong.
  static PaletteQuantizer load(const std::filesystem::path& path);

 private:
  void check_fitted(const char* what) const;
  void encode_into(const PaletteSource& source, std::int32_t* codes) const;
  void check_position(std::int64_t position) const;

  PaletteQuantizerOptions options_;
  std::int64_t num_positions_ = 0;
  std::int64_t input_dim_ = 0;
  std::int64_t reduced_dim_ = 0;
  std::vector<Pca> pcas_;                    // L entries, or 1 with shared_pca
  std::vector<std::vector<float>> centroids_;  // per position, k_j x d
  std::vector<std::int64_t> num_codes_;      // k_j
  std::vector<std::int32_t> training_codes_;  // n x L
  std::int64_t num_training_items_ = 0;
  PaletteFitReport report_;
};

}  // namespace lamia
