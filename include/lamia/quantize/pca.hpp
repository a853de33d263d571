#pragma once
// Principal component analysis of row vectors: mean-centring, then the top
// eigenvectors of the covariance (accumulated in double from float32 chunk
// products; the top d eigenpairs by LAPACK dsyevr). Signs are
// fixed so that the largest-magnitude coefficient of each component is positive
// (deterministic; sklearn's svd_flip uses another rule, so compare up to sign).
//
// Example:
//   lamia::Pca pca = lamia::fit_pca(x.data(), n, 1024, 64);
//   pca.transform(x.data(), n, reduced.data());   // n x 64
#include <lamia/core/options.hpp>

#include <array>
#include <cstdint>
#include <vector>

namespace lamia {

/// How the top d eigenpairs of a PCA are found.
enum class PcaSolver {
  kExact,       ///< the D x D covariance (one pass), then LAPACK dsyevr for the top d eigenpairs
  kRandomized,  ///< sklearn's randomized SVD (Halko et al.): power iterations, one pass each
};
constexpr auto enum_names(PcaSolver) {
  return std::array{std::pair{PcaSolver::kExact, "exact"}, std::pair{PcaSolver::kRandomized, "randomized"}};
}

/// How the PCA of each position is fitted (PaletteQuantizerOptions::pca). Only the fit uses them.
struct PcaOptions {
  PcaSolver solver = PcaSolver::kExact;
  /// Randomized: d + oversamples random directions (sklearn's n_oversamples).
  int oversamples = 10;
  /// Randomized: power iterations; -1 = sklearn's "auto" (7 when d < 0.1 min(n, D), else 4).
  int power_iterations = -1;
  /// Seed of the randomized solver's Gaussian test matrix and of the item sample (+ 1000003 j for position j).
  std::uint64_t random_state = 0;
  /// Fit the PCA on a seeded sample of at most this many items (kept in memory); 0 = all items.
  std::int64_t max_items = 0;
};

template <class V>
void visit_fields(PcaOptions& o, V&& v) {
  v.field("solver", o.solver, "exact: covariance + top-d eigenpairs; randomized: sklearn's randomized SVD");
  v.field("oversamples", o.oversamples, "randomized: d + oversamples random directions (sklearn's n_oversamples)",
          options::at_least(0));
  v.field("power_iterations", o.power_iterations,
          "randomized: power iterations, one pass over the items each; -1 = sklearn's auto (7 if d < 0.1 min(n, D), "
          "else 4)",
          options::at_least(-1));
  v.field("random_state", o.random_state, "seed of the randomized test matrix and of the item sample");
  v.field("max_items", o.max_items, "fit the PCA on a seeded sample of at most this many items; 0 = all items",
          options::at_least(0));
}

struct Pca {
  std::int64_t input_dim = 0;   ///< D
  std::int64_t output_dim = 0;  ///< d
  std::vector<float> mean;        ///< D
  std::vector<float> components;  ///< d x D, row-major, orthonormal rows
  /// Variance along each component (denominator n-1, as sklearn's explained_variance_).
  std::vector<double> explained_variance;
  /// Sum of the variances of all D input dimensions (denominator n-1).
  double total_variance = 0.0;

  /// explained_variance[i] / total_variance (0 where the data has no variance).
  std::vector<double> explained_variance_ratio() const;
  /// out (n x d) = (x - mean) * components^T. x is n x D, row-major.
  void transform(const float* x, std::int64_t n, float* out) const;
};

/// Fits a PCA with output_dim components to n row vectors of dimension input_dim.
/// Throws ValueError for n < 2, output_dim < 1 or output_dim > input_dim.
Pca fit_pca(const float* x, std::int64_t n, std::int64_t input_dim, std::int64_t output_dim);

/// The same with the given solver (PcaOptions::max_items is ignored here: x is what is fitted).
Pca fit_pca(const float* x, std::int64_t n, std::int64_t input_dim, std::int64_t output_dim,
            const PcaOptions& options);

/// The identity "PCA" (no centring, no projection) used when PCA is switched off.
Pca identity_pca(std::int64_t dim);

}  // namespace lamia
