#pragma once
// ResidualKMeans: the training-free hierarchical baseline. Level 1 clusters the
// item embeddings with K-Means (faiss), level l clusters the residuals left by
// levels 1..l-1; an item's codes are its nearest centroid at each level. The
// same SemanticIdTable (index token for collisions) is built from the codes.
//
// Example:
//   lamia::ResidualKMeansOptions opt;  opt.num_levels = 3;  opt.num_codes = 256;
//   lamia::ResidualKMeans rk(opt);
//   rk.fit(embeddings);                       // n x D float32
//   lamia::SemanticIdTable table = rk.table();
#include <lamia/quantize/kmeans.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace lamia {

struct ResidualKMeansOptions {
  /// L: number of residual levels (TIGER uses 3).
  std::int64_t num_levels = 3;
  /// With fewer than k items: false -> ValueError; true -> k = number of items.
  bool reduce_k_when_few_items = false;
  /// The K-Means of every level (k = kmeans.num_codes); level l, restart r uses kmeans.seed + 1000003 * l + r.
  KMeansOptions kmeans;
};

template <class V>
void visit_fields(ResidualKMeansOptions& o, V&& v) {
  v.field("num_levels", o.num_levels, "L, residual levels (TIGER: 3)", options::at_least(1));
  v.field("reduce_k_when_few_items", o.reduce_k_when_few_items,
          "with fewer than k items reduce k to the number of items instead of raising ValueError");
  v.field("kmeans", o.kmeans, "the K-Means of every level; level l, restart r seeds kmeans.seed + 1000003 l + r");
}

struct ResidualKMeansReport {
  std::int64_t num_items = 0;
  /// objective[l][r][i]: level l, restart r, iteration i.
  std::vector<std::vector<std::vector<double>>> objective;
  /// Mean squared residual norm after each level (how much each level explains).
  std::vector<double> residual_mse;
  std::vector<std::int64_t> used_codes;
  std::int64_t num_colliding_items = 0;
  double seconds = 0.0;
  /// options::to_json(*this).
  nlohmann::json to_json() const;
};

template <class V>
void visit_fields(ResidualKMeansReport& o, V&& v) {
  v.field("num_items", o.num_items, "n, the training items");
  v.field("objective", o.objective, "K-Means objective per level, restart and iteration");
  v.field("residual_mse", o.residual_mse, "mean squared residual norm after each level");
  v.field("used_codes", o.used_codes, "codes used by the training items, per level");
  v.field("num_colliding_items", o.num_colliding_items, "items whose L codes collide with another item's");
  v.field("seconds", o.seconds, "wall time of fit()");
}

inline nlohmann::json ResidualKMeansReport::to_json() const { return options::to_json(*this); }

class ResidualKMeans {
 public:
  explicit ResidualKMeans(ResidualKMeansOptions options = {});
  const ResidualKMeansOptions& options() const noexcept { return options_; }
  bool fitted() const noexcept { return !codebooks_.empty(); }
  std::int64_t input_dim() const noexcept { return dim_; }
  std::vector<std::int64_t> codebook_sizes() const;

  /// Fits on n x D float32 CPU embeddings (copied if not contiguous). ValueError on NaN/inf (naming the item) or n < k.
  ResidualKMeansReport fit(const torch::Tensor& embeddings);
  /// Codes of m x D embeddings, m x L int64. ValueError when D differs from the fitted one.
  torch::Tensor encode(const torch::Tensor& embeddings) const;
  /// Sum of the chosen centroids: m x L codes -> m x D.
  torch::Tensor reconstruct(const torch::Tensor& codes) const;
  /// Centroids of a level, k x D (a copy).
  torch::Tensor codebook(std::int64_t level) const;
  torch::Tensor training_codes() const;
  SemanticIdTable table() const;

 private:
  ResidualKMeansOptions options_;
  std::int64_t dim_ = 0;
  std::vector<std::int64_t> num_codes_;
  std::vector<std::vector<float>> codebooks_;
  torch::Tensor training_codes_;
};

/// One call: fit residual K-Means on n x D embeddings and return the semantic-ID table.
SemanticIdTable residual_kmeans(const torch::Tensor& embeddings, const ResidualKMeansOptions& options = {});

}  // namespace lamia
