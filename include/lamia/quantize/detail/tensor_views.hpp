#pragma once
// Internals shared by the quantize sources: PCA on (possibly row-strided)
// tensor views, so per-position slices of an n x L x D palette need no copy.
#include <lamia/quantize/pca.hpp>

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <vector>

namespace lamia::detail {

/// PCA of the rows of a 2-D float32 CPU tensor (unit column stride, any row stride).
Pca fit_pca_rows(const torch::Tensor& x, std::int64_t output_dim, const PcaOptions& options = {},
                 std::uint64_t seed = 0);

/// A PCA over rows that arrive in chunks (so memory stays O(chunk x D + D^2)): add_to_mean() and
/// add_to_covariance() over the same rows (in one pass, chunk by chunk, or in two), then finish().
/// The covariance merges chunks centred on their own means (no one-pass cancellation).
class PcaAccumulator {
 public:
  explicit PcaAccumulator(std::int64_t dim);
  void add_to_mean(const torch::Tensor& rows);
  void add_to_covariance(const torch::Tensor& rows);
  /// Throws ValueError for output_dim outside 1..D or fewer than 2 rows.
  Pca finish(std::int64_t output_dim) const;
  std::int64_t rows() const noexcept { return rows_; }
  /// The exact mean (float64, D) once add_to_mean() has seen every row.
  torch::Tensor mean() const;

 private:
  std::int64_t dim_;
  std::int64_t rows_ = 0;
  std::int64_t cov_rows_ = 0;  // rows in cov_
  torch::Tensor sum_, cov_;  // float64
  std::vector<double> running_mean_, chunk_mean_;  // of cov_'s rows; of the chunk (then its offset)
  torch::Tensor centred32_, product_, ones_;  // reused chunk buffers
};

/// sklearn's randomized SVD of the centred rows, in the D-dimensional space so that memory stays
/// O(D l) and the rows may arrive in chunks: Y = Omega (D x l Gaussian, l = d + oversamples);
/// q power iterations Y <- orth(M^T M Y) (one pass over the rows each: add() then end_pass()); a last
/// pass accumulates G = (M Y)^T (M Y) and P = (M Y)^T M, and finish() takes the SVD of
/// B = Q^T M with Q = M Y G^(-1/2) (the same subspace as sklearn's QR of M Y). M = rows - mean.
class RandomizedPcaAccumulator {
 public:
  /// means: a PcaAccumulator that has seen every row through add_to_mean().
  RandomizedPcaAccumulator(const PcaAccumulator& means, std::int64_t output_dim, const PcaOptions& options,
                           std::uint64_t seed);
  /// Passes over the rows still needed (power iterations + 1); 0 when finish() may be called.
  int passes_left() const noexcept { return passes_left_; }
  void add(const torch::Tensor& rows);
  void end_pass();
  Pca finish() const;

 private:
  std::int64_t dim_, output_dim_, rows_;
  int passes_left_;
  torch::Tensor mean64_, mean32_, y_, y32_, z_, gram_, proj_;  // y: D x l (double), z / proj accumulators
  double total_ss_ = 0.0;
  torch::Tensor centred32_;
};

/// m distinct indices of 0..n-1 (a partial Fisher-Yates shuffle drawn from rng), sorted; m <= n.
std::vector<std::int64_t> sample_indices(std::int64_t n, std::int64_t m, std::mt19937_64& rng);

/// (x - mean) W^T as a new n x d float32 tensor.
torch::Tensor pca_transform(const Pca& p, const torch::Tensor& x);
/// Checks a float32 CPU tensor of the given rank; returns it contiguous (a copy only when it was not).
torch::Tensor checked_float_tensor(const torch::Tensor& t, std::int64_t dim, const char* what, const char* shape);

}  // namespace lamia::detail
