#pragma once
// Internals shared by the quantize sources: PCA on (possibly row-strided)
// tensor views, so per-position slices of an n x L x D palette need no copy.
#include <lamia/quantize/pca.hpp>

#include <torch/types.h>

namespace lamia::detail {

/// PCA of the rows of a 2-D float32 CPU tensor (unit column stride, any row stride).
Pca fit_pca_rows(const torch::Tensor& x, std::int64_t output_dim);

/// The two passes of a PCA over rows that arrive in chunks (so memory stays O(chunk x D + D^2)):
/// add_to_mean() over all rows, then add_to_covariance() over the same rows, then finish().
/// The mean is exact before the covariance pass (no one-pass cancellation).
class PcaAccumulator {
 public:
  explicit PcaAccumulator(std::int64_t dim);
  void add_to_mean(const torch::Tensor& rows);
  void add_to_covariance(const torch::Tensor& rows);
  /// Throws ValueError for output_dim outside 1..D or fewer than 2 rows.
  Pca finish(std::int64_t output_dim) const;

 private:
  std::int64_t dim_;
  std::int64_t rows_ = 0;
  torch::Tensor sum_, mean_, cov_;  // float64
  torch::Tensor centred64_, centred32_, product_, ones_;  // reused chunk buffers
};
/// (x - mean) W^T as a new n x d float32 tensor.
torch::Tensor pca_transform(const Pca& p, const torch::Tensor& x);
/// Checks a float32 CPU tensor of the given rank; returns it contiguous (a copy only when it was not).
torch::Tensor checked_float_tensor(const torch::Tensor& t, std::int64_t dim, const char* what, const char* shape);

}  // namespace lamia::detail
