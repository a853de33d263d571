#pragma once
// K-Means on row vectors with faiss (faiss::Clustering, exact L2 assignment),
// restarted from several seeded initialisations, keeping the lowest final
// objective. The per-iteration objective of every restart is returned rather
// than printed.
//
// Example:
//   lamia::KMeansOptions opt;  opt.num_codes = 256;  opt.seed = 7;
//   lamia::KMeansResult km = lamia::kmeans(x.data(), n, 64, opt);
//   // km.centroids: 256 x 64, km.assignment: n codes, km.objective[km.best_restart]: per iteration
#include <lamia/core/options.hpp>

#include <array>
#include <cstdint>
#include <vector>

namespace lamia {

/// How the centroids of a restart are chosen before the first iteration.
enum class KMeansInit {
  kPlusPlus,  ///< greedy k-means++ (D^2 sampling, best of 2 + ln k candidates), sklearn's default
  kRandom,    ///< k distinct random rows, faiss's default
};
constexpr auto enum_names(KMeansInit) {
  return std::array{std::pair{KMeansInit::kPlusPlus, "k-means++"}, std::pair{KMeansInit::kRandom, "random"}};
}

struct KMeansOptions {
  /// k, the number of centroids (>= 1).
  std::int64_t num_codes = 256;
  /// Lloyd iterations per restart (faiss' niter; its default is 25).
  int iterations = 25;
  /// Independent restarts; the one with the lowest final objective is kept (faiss' nredo, sklearn's n_init).
  int restarts = 1;
  /// Seed of restart r's initialisation is seed + r.
  std::uint64_t seed = 0;
  KMeansInit init = KMeansInit::kPlusPlus;
  /// Fit on at most this many points per centroid: restart r seeds (seed + r), then iterates on a
  /// sample of k * max_points_per_centroid points drawn with the same seed; every point is then
  /// assigned to its nearest final centroid. 0 = all points (faiss' default is 256).
  std::int64_t max_points_per_centroid = 0;
};

template <class V>
void visit_fields(KMeansOptions& o, V&& v) {
  v.field("num_codes", o.num_codes, "k, the number of centroids (the codebook size; paper: 256)", options::at_least(1));
  v.field("iterations", o.iterations, "Lloyd iterations per restart (faiss' niter)", options::at_least(1));
  v.field("restarts", o.restarts, "independent restarts, lowest final objective kept (faiss' nredo)", options::at_least(1));
  v.field("seed", o.seed, "seed of restart r's initialisation is seed + r");
  v.field("init", o.init, "initialisation: greedy k-means++ (sklearn's) or k random rows (faiss')");
  v.field("max_points_per_centroid", o.max_points_per_centroid,
          "fit on at most this many points per centroid (a seeded sample); 0 = all points", options::at_least(0));
}

struct KMeansResult {
  std::int64_t num_codes = 0;
  std::int64_t dim = 0;
  std::vector<float> centroids;  ///< num_codes x dim, row-major
  /// Nearest centroid of every input point, using the final centroids.
  std::vector<std::int32_t> assignment;
  /// objective[r][i]: sum of squared distances of the points to their assigned centroid
  /// in iteration i of restart r (faiss' iteration_stats[].obj; assignment step, before the update).
  std::vector<std::vector<double>> objective;
  int best_restart = 0;
  /// Sum of squared distances of every point to its final nearest centroid (sklearn's inertia_).
  double inertia = 0.0;
  /// Points the centroids were fitted on (n, or the sample of max_points_per_centroid * k).
  std::int64_t fit_points = 0;
  /// Wall time over all restarts: initialisation (k-means++ or random rows, and the sample),
  /// Lloyd iterations (faiss), and the final assignment of all n points.
  double seconds_seeding = 0.0, seconds_iterations = 0.0, seconds_assignment = 0.0;
};

/// Clusters n points of dimension dim. Throws ValueError when n < num_codes,
/// or on a non-finite value (naming the row).
KMeansResult kmeans(const float* x, std::int64_t n, std::int64_t dim, const KMeansOptions& options);

/// Nearest centroid (squared L2) of each of the n points; optionally the squared distance.
void assign_nearest(const float* centroids, std::int64_t num_codes, std::int64_t dim, const float* x,
                    std::int64_t n, std::int32_t* codes, float* distances = nullptr);

/// Throws ValueError "<what>: item i has a non-finite value (nan) at dimension j" for the first bad value.
/// A row is row_stride floats; the item index of row r is first_item + r / rows_per_item.
void check_finite(const float* x, std::int64_t rows, std::int64_t row_stride, const char* what,
                  std::int64_t rows_per_item = 1, std::int64_t first_item = 0);

}  // namespace lamia
