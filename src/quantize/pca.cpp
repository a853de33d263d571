#include <lamia/core/errors.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/pca.hpp>

#include <Eigen/Core>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

// LAPACK (linked through faiss): eigenpairs il..iu (1-based, ascending) of a symmetric matrix by
// the MRRR algorithm. Only the top d are needed: ~3x faster than all D at D = 1024.
extern "C" void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a,
                        const int* lda, const double* vl, const double* vu, const int* il, const int* iu,
                        const double* abstol, int* m, double* w, double* z, const int* ldz, int* isuppz,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info);
// BLAS (the same library): C = alpha A A^T + beta C on one triangle of C (column-major).
extern "C" void ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* beta, float* c, const int* ldc);

namespace lamia {
namespace detail {

PcaAccumulator::PcaAccumulator(std::int64_t dim) : dim_(dim) {
  auto dopt = torch::TensorOptions().dtype(torch::kFloat64);
  sum_ = torch::zeros({dim}, dopt);
  cov_ = torch::zeros({dim, dim}, dopt);
}

namespace {
constexpr std::int64_t kChunk = 4096;  // rows centred and multiplied at a time

void check_pca_dims(std::int64_t n, std::int64_t D, std::int64_t output_dim) {
  if (output_dim < 1 || output_dim > D) {
    throw ValueError(fmt::format("fit_pca: pca_dim (d) must be 1 to the input dimension D = {}, got {}", D,
                                 output_dim));
  }
  if (n < 2) throw ValueError(fmt::format("fit_pca: needs at least 2 vectors, got {}", n));
}
}  // namespace

void PcaAccumulator::add_to_mean(const torch::Tensor& rows) {
  // Column sums of 4096-row blocks as a BLAS matrix-vector product in float32 (two orders of
  // magnitude faster than a float64 reduction), accumulated in double.
  if (!ones_.defined()) ones_ = torch::ones({kChunk}, torch::kFloat32);
  for (std::int64_t s = 0; s < rows.size(0); s += kChunk) {
    const auto m = std::min(kChunk, rows.size(0) - s);
    sum_ += torch::mv(rows.narrow(0, s, m).t(), ones_.narrow(0, 0, m));
  }
  rows_ += rows.size(0);
}

void PcaAccumulator::add_to_covariance(const torch::Tensor& rows) {
  // Each chunk of kChunk rows is centred on its own mean (in double), rounded to float32 and
  // multiplied in float32 (twice the BLAS speed; a 4096-row partial sum loses ~1e-7 relatively),
  // then merged in double into the running sums about the running mean (Chan, Golub and LeVeque's
  // pairwise update: + n_a n_c / (n_a + n_c) (m_c - m_a)(m_c - m_a)^T). So no pass has to find the
  // mean first, and no order of the rows (sorted ones included) makes it cancel. The product is
  // BLAS's symmetric rank-k update (ssyrk, half sgemm's flops) into one triangle: cov_ holds the
  // lower triangle (row-major) until finish(). No torch operations here: the caller may run the
  // positions' accumulators on OpenMP's threads. The buffers are reused: fresh pages cost a page
  // fault each, which dominates on some VMs.
  const std::int64_t D = dim_;
  if (!centred32_.defined()) {
    centred32_ = torch::empty({kChunk, D}, torch::kFloat32);
    product_ = torch::empty({D, D}, torch::kFloat32);
    running_mean_.assign(static_cast<std::size_t>(D), 0.0);
    chunk_mean_.resize(static_cast<std::size_t>(D));
  }
  const auto x = rows.stride(1) == 1 ? rows : rows.contiguous();
  const float* src = x.data_ptr<float>();
  const std::int64_t stride = x.stride(0);
  double* mc = chunk_mean_.data();
  double* ma = running_mean_.data();
  float* c32 = centred32_.data_ptr<float>();
  float* prod = product_.data_ptr<float>();
  double* cov = cov_.data_ptr<double>();
  for (std::int64_t s = 0; s < x.size(0); s += kChunk) {
    const auto m = std::min(kChunk, x.size(0) - s);
    std::fill(mc, mc + D, 0.0);
    for (std::int64_t i = 0; i < m; ++i) {
      const float* r = src + (s + i) * stride;
      for (std::int64_t j = 0; j < D; ++j) mc[j] += r[j];
    }
    for (std::int64_t j = 0; j < D; ++j) mc[j] /= static_cast<double>(m);
    for (std::int64_t i = 0; i < m; ++i) {
      const float* r = src + (s + i) * stride;
      float* c = c32 + i * D;
      for (std::int64_t j = 0; j < D; ++j) c[j] = static_cast<float>(static_cast<double>(r[j]) - mc[j]);
    }
    // Column-major, c32 is the D x m matrix A and prod = A A^T: its upper triangle is the
    // row-major lower one.
    const int nD = static_cast<int>(D), mi = static_cast<int>(m);
    const float one = 1, zero = 0;
    ssyrk_("U", "N", &nD, &mi, &one, c32, &nD, &zero, prod, &nD);
    const double na = static_cast<double>(cov_rows_), nc = static_cast<double>(m), w = na * nc / (na + nc);
    for (std::int64_t j = 0; j < D; ++j) mc[j] -= ma[j];  // now m_c - m_a
    for (std::int64_t i = 0; i < D; ++i) {
      const double wi = w * mc[i];
      for (std::int64_t j = 0; j <= i; ++j) cov[i * D + j] += prod[i * D + j] + wi * mc[j];
    }
    for (std::int64_t j = 0; j < D; ++j) ma[j] += mc[j] * (nc / (na + nc));
    cov_rows_ += m;
  }
}

torch::Tensor PcaAccumulator::mean() const { return sum_ / static_cast<double>(std::max<std::int64_t>(rows_, 1)); }

namespace {
// The sign rule shared by both solvers: the largest-magnitude coefficient of each component is positive.
void set_component(Pca& p, std::int64_t i, const double* v, std::int64_t stride) {
  const std::int64_t D = p.input_dim;
  std::int64_t arg = 0;
  for (std::int64_t j = 1; j < D; ++j)
    if (std::abs(v[j * stride]) > std::abs(v[arg * stride])) arg = j;
  const double sign = v[arg * stride] < 0 ? -1.0 : 1.0;
  for (std::int64_t j = 0; j < D; ++j) p.components[i * D + j] = static_cast<float>(sign * v[j * stride]);
}
}  // namespace

Pca PcaAccumulator::finish(std::int64_t output_dim) const {
  const std::int64_t n = rows_, D = dim_;
  check_pca_dims(n, D, output_dim);
  if (cov_rows_ != n) {
    throw ValueError(fmt::format("fit_pca: the covariance has seen {} rows, the means {}", cov_rows_, n));
  }
  const auto mean = this->mean();
  // cov_ holds the lower triangle (add_to_covariance); mirrored, the matrix is exactly symmetric.
  const auto cov = (cov_ + cov_.tril(-1).t()) / static_cast<double>(n - 1);
  // The top output_dim eigenpairs, ascending: column c of `vectors` (D x d, column-major) is the
  // eigenvector of values[c]. cov is symmetric, so its row-major storage is its column-major one.
  const int nD = static_cast<int>(D), d = static_cast<int>(output_dim), il = nD - d + 1, iu = nD;
  auto a = cov.clone();  // destroyed by LAPACK
  std::vector<double> values(d), vectors_cm(static_cast<std::size_t>(D) * d);
  std::vector<int> isuppz(2 * static_cast<std::size_t>(d));
  const double unused = 0, abstol = 0;  // abstol 0: LAPACK's default accuracy
  int found = 0, info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevr_("V", "I", "L", &nD, a.data_ptr<double>(), &nD, &unused, &unused, &il, &iu, &abstol, &found,
          values.data(), vectors_cm.data(), &nD, isuppz.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(std::max(lwork, 1));
  std::vector<int> iwork(std::max(liwork, 1));
  if (info == 0) {
    dsyevr_("V", "I", "L", &nD, a.data_ptr<double>(), &nD, &unused, &unused, &il, &iu, &abstol, &found,
            values.data(), vectors_cm.data(), &nD, isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  }
  if (info != 0 || found != d) {
    throw ValueError(fmt::format("fit_pca: LAPACK dsyevr failed (info {}, {} of {} eigenpairs)", info, found, d));
  }
  Eigen::Map<const Eigen::MatrixXd> vectors(vectors_cm.data(), D, d);  // column-major

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
    const std::int64_t col = d - 1 - i;
    set_component(p, i, vectors.col(col).data(), 1);
    p.explained_variance[i] = std::max(values[col], 0.0);  // round-off can make null directions slightly negative
  }
  return p;
}

RandomizedPcaAccumulator::RandomizedPcaAccumulator(const PcaAccumulator& means, std::int64_t output_dim,
                                                   const PcaOptions& options, std::uint64_t seed)
    : dim_(means.mean().size(0)), output_dim_(output_dim), rows_(means.rows()) {
  check_pca_dims(rows_, dim_, output_dim);
  if (options.oversamples < 0 || options.power_iterations < -1) {
    throw ValueError(fmt::format("fit_pca: oversamples must be >= 0 and power_iterations >= -1, got {} and {}",
                                 options.oversamples, options.power_iterations));
  }
  const std::int64_t l = std::min(dim_, output_dim + options.oversamples);
  // sklearn's n_iter="auto" (randomized_svd): 7 when n_components < 0.1 min(n, D), else 4.
  const int q = options.power_iterations >= 0
                    ? options.power_iterations
                    : (static_cast<double>(output_dim) < 0.1 * static_cast<double>(std::min(rows_, dim_)) ? 7 : 4);
  passes_left_ = q + 1;
  mean64_ = means.mean();
  mean32_ = mean64_.to(torch::kFloat32);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  y_ = at::normal(0.0, 1.0, {dim_, l}, gen).to(torch::kFloat64);
  y32_ = y_.to(torch::kFloat32);
  auto dopt = torch::TensorOptions().dtype(torch::kFloat64);
  z_ = torch::zeros({dim_, l}, dopt);
  gram_ = torch::zeros({l, l}, dopt);
  proj_ = torch::zeros({l, dim_}, dopt);
}

void RandomizedPcaAccumulator::add(const torch::Tensor& rows) {
  if (passes_left_ < 1) throw ValueError("fit_pca: the randomized solver has made all its passes");
  if (!centred32_.defined()) centred32_ = torch::empty({kChunk, dim_}, torch::kFloat32);
  for (std::int64_t s = 0; s < rows.size(0); s += kChunk) {
    const auto m = std::min(kChunk, rows.size(0) - s);
    auto c = centred32_.narrow(0, 0, m);
    at::sub_out(c, rows.narrow(0, s, m), mean32_);
    const auto t = torch::mm(c, y32_);  // m x l: M Y for these rows
    if (passes_left_ > 1) {
      z_ += torch::mm(c.t(), t).to(torch::kFloat64);  // M^T M Y
    } else {
      gram_ += torch::mm(t.t(), t).to(torch::kFloat64);
      proj_ += torch::mm(t.t(), c).to(torch::kFloat64);
      total_ss_ += torch::mv(c.square().t(), torch::ones({m}, torch::kFloat32)).to(torch::kFloat64).sum().item<double>();
    }
  }
}

void RandomizedPcaAccumulator::end_pass() {
  if (passes_left_ > 1) {
    // Orthonormalise (sklearn uses LU here; any basis of the same span gives the same result).
    y_ = std::get<0>(at::linalg_qr(z_));
    y32_ = y_.to(torch::kFloat32);
    z_.zero_();
  }
  --passes_left_;
}

Pca RandomizedPcaAccumulator::finish() const {
  if (passes_left_ != 0) throw ValueError("fit_pca: the randomized solver is missing passes over the rows");
  // Q = M Y W L^(-1/2) is orthonormal for G = W L W^T; B = Q^T M = L^(-1/2) W^T P. Directions of
  // M Y with no weight (rank below l: fewer items than directions) are dropped.
  const auto [lambda, w] = at::linalg_eigh(gram_);
  const double top = lambda.max().item<double>();
  const auto keep = (lambda > top * 1e-12).nonzero().squeeze(1);
  if (keep.size(0) < output_dim_) {
    throw ValueError(fmt::format("fit_pca: the randomized solver found only {} directions, {} wanted", keep.size(0),
                                 output_dim_));
  }
  const auto b = (w.index_select(1, keep) / lambda.index_select(0, keep).sqrt()).t().mm(proj_);
  const auto [u, s, vt] = at::linalg_svd(b, /*full_matrices=*/false);
  const auto vt_c = vt.contiguous();
  Pca p;
  p.input_dim = dim_;
  p.output_dim = output_dim_;
  p.total_variance = total_ss_ / static_cast<double>(rows_ - 1);
  p.mean.resize(dim_);
  const double* m = mean64_.data_ptr<double>();
  for (std::int64_t j = 0; j < dim_; ++j) p.mean[j] = static_cast<float>(m[j]);
  p.components.resize(output_dim_ * dim_);
  p.explained_variance.resize(output_dim_);
  const double* sv = s.data_ptr<double>();
  for (std::int64_t i = 0; i < output_dim_; ++i) {
    set_component(p, i, vt_c.data_ptr<double>() + i * dim_, 1);
    p.explained_variance[i] = sv[i] * sv[i] / static_cast<double>(rows_ - 1);
  }
  return p;
}

Pca fit_pca_rows(const torch::Tensor& x, std::int64_t output_dim, const PcaOptions& options, std::uint64_t seed) {
  const std::int64_t D = x.size(1);
  check_pca_dims(x.size(0), D, output_dim);
  PcaAccumulator acc(D);
  acc.add_to_mean(x);
  if (options.solver == PcaSolver::kRandomized) {
    RandomizedPcaAccumulator r(acc, output_dim, options, seed);
    while (r.passes_left() > 0) {
      r.add(x);
      r.end_pass();
    }
    return r.finish();
  }
  acc.add_to_covariance(x);
  return acc.finish(output_dim);
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
  return fit_pca(x, n, input_dim, output_dim, PcaOptions{});
}

Pca fit_pca(const float* x, std::int64_t n, std::int64_t input_dim, std::int64_t output_dim,
            const PcaOptions& options) {
  if (input_dim < 1) throw ValueError(fmt::format("fit_pca: input_dim must be >= 1, got {}", input_dim));
  return detail::fit_pca_rows(torch::from_blob(const_cast<float*>(x), {n, input_dim}, torch::kFloat32),
                              output_dim, options, options.random_state);
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
