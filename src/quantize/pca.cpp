#include <lamia/core/errors.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/pca.hpp>

#include <Eigen/Core>
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

namespace lamia {
namespace detail {

Pca fit_pca_rows(const torch::Tensor& x, std::int64_t output_dim) {
  const std::int64_t n = x.size(0), D = x.size(1);
  if (output_dim < 1 || output_dim > D) {
    throw ValueError(fmt::format("fit_pca: pca_dim (d) must be 1 to the input dimension D = {}, got {}", D,
                                 output_dim));
  }
  if (n < 2) throw ValueError(fmt::format("fit_pca: needs at least 2 vectors, got {}", n));
  // Covariance in double, a chunk of rows at a time, so memory stays O(chunk x D + D^2).
  constexpr std::int64_t kChunk = 4096;
  auto dopt = torch::TensorOptions().dtype(torch::kFloat64);
  auto sum = torch::zeros({D}, dopt);
  for (std::int64_t s = 0; s < n; s += kChunk) {
    sum += x.narrow(0, s, std::min(kChunk, n - s)).to(torch::kFloat64).sum(0);
  }
  const auto mean = sum / static_cast<double>(n);
  // Each chunk is centred in double, multiplied in float32 (twice the BLAS speed; a
  // 4096-row partial sum loses ~1e-7 relatively) and accumulated in double.
  auto cov = torch::zeros({D, D}, dopt);
  for (std::int64_t s = 0; s < n; s += kChunk) {
    auto c = (x.narrow(0, s, std::min(kChunk, n - s)).to(torch::kFloat64) - mean).to(torch::kFloat32);
    cov += torch::mm(c.t(), c).to(torch::kFloat64);
  }
  cov /= static_cast<double>(n - 1);
  cov = (cov + cov.t()) / 2;  // exactly symmetric for the eigensolver
  // LAPACK's symmetric eigensolver (syevd) through torch: eigenvalues ascending, vectors in columns.
  auto [values_t, vectors_t] = torch::linalg::eigh(cov, "L");
  values_t = values_t.contiguous();
  vectors_t = vectors_t.contiguous();
  const double* values = values_t.data_ptr<double>();
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> vectors(
      vectors_t.data_ptr<double>(), D, D);

  Pca p;
  p.input_dim = D;
  p.output_dim = output_dim;
  p.total_variance = cov.trace().item<double>();
  p.mean.resize(D);
  const double* m = mean.data_ptr<double>();
  for (std::int64_t j = 0; j < D; ++j) p.mean[j] = static_cast<float>(m[j]);
  p.components.resize(output_dim * D);
  p.explained_variance.resize(output_dim);
  for (std::int64_t i = 0; i < output_dim; ++i) {
    const std::int64_t col = D - 1 - i;
    // Sign rule: the largest-magnitude coefficient is positive.
    Eigen::Index arg = 0;
    vectors.col(col).cwiseAbs().maxCoeff(&arg);
    const double sign = vectors(arg, col) < 0 ? -1.0 : 1.0;
    for (std::int64_t j = 0; j < D; ++j) p.components[i * D + j] = static_cast<float>(sign * vectors(j, col));
    p.explained_variance[i] = std::max(values[col], 0.0);  // round-off can make null directions slightly negative
  }
  return p;
}

torch::Tensor pca_transform(const Pca& p, const torch::Tensor& x) {
  const auto W = torch::from_blob(const_cast<float*>(p.components.data()), {p.output_dim, p.input_dim},
                                  torch::kFloat32);
  const auto mu = torch::from_blob(const_cast<float*>(p.mean.data()), {p.input_dim}, torch::kFloat32);
  // (x - mean) W^T = x W^T - mean W^T: no centred copy of x.
  auto out = torch::mm(x, W.t());
  out -= torch::mv(W, mu);
  return out;
}

}  // namespace detail

std::vector<double> Pca::explained_variance_ratio() const {
  std::vector<double> r(explained_variance.size(), 0.0);
  if (total_variance > 0) {
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = explained_variance[i] / total_variance;
  }
  return r;
}

void Pca::transform(const float* x, std::int64_t n, float* out) const {
  const auto xt = torch::from_blob(const_cast<float*>(x), {n, input_dim}, torch::kFloat32);
  auto o = torch::from_blob(out, {n, output_dim}, torch::kFloat32);
  o.copy_(detail::pca_transform(*this, xt));
}

Pca fit_pca(const float* x, std::int64_t n, std::int64_t input_dim, std::int64_t output_dim) {
  if (input_dim < 1) throw ValueError(fmt::format("fit_pca: input_dim must be >= 1, got {}", input_dim));
  return detail::fit_pca_rows(torch::from_blob(const_cast<float*>(x), {n, input_dim}, torch::kFloat32),
                              output_dim);
}

Pca identity_pca(std::int64_t dim) {
  Pca p;
  p.input_dim = p.output_dim = dim;
  p.mean.assign(dim, 0.0f);
  p.components.assign(dim * dim, 0.0f);
  for (std::int64_t i = 0; i < dim; ++i) p.components[i * dim + i] = 1.0f;
  p.explained_variance.assign(dim, 0.0);
  return p;
}

}  // namespace lamia
