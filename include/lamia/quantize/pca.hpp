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
#include <cstdint>
#include <vector>

namespace lamia {

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

/// The identity "PCA" (no centring, no projection) used when PCA is switched off.
Pca identity_pca(std::int64_t dim);

}  // namespace lamia
