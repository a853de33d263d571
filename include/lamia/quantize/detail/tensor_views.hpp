#pragma once
// Internals shared by the quantize sources: PCA on (possibly row-strided)
// tensor views, so per-position slices of an n x L x D palette need no copy.
#include <lamia/quantize/pca.hpp>

#include <torch/types.h>

namespace lamia::detail {

/// PCA of the rows of a 2-D float32 CPU tensor (unit column stride, any row stride).
Pca fit_pca_rows(const torch::Tensor& x, std::int64_t output_dim);
/// (x - mean) W^T as a new n x d float32 tensor.
torch::Tensor pca_transform(const Pca& p, const torch::Tensor& x);
/// Checks a float32 CPU tensor of the given rank; returns it contiguous (a copy only when it was not).
torch::Tensor checked_float_tensor(const torch::Tensor& t, std::int64_t dim, const char* what, const char* shape);

}  // namespace lamia::detail
