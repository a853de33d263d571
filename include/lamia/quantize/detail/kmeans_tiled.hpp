#pragma once
// The register-tiled K-Means kernels (detail::KMeansKernel::kTiled, what kmeans() runs on a CPU
// with AVX2 and FMA): the points' dot products with the centroids (Lloyd) or the k-means++
// candidates computed directly, 16 points x 6 centroids (or 8 points x up to 8 candidates) in
// registers, each sum an FMA chain over the dimensions in order, with the distances, their clamp
// and the minimum fused behind it. No BLAS call: OpenBLAS spent as long packing the points into its
// own layout at every call as multiplying; here the points are packed once per K-Means run.
// The arithmetic around the products is the blocked kernels' (faiss' |x|^2 + |c|^2 - 2 x.c, the
// tensor k-means++'s passes); only the products round differently (OpenBLAS sums some of them in
// two interleaved chains, tests/cpp/quantize/test_kmeans_kernels.cpp).
#include <cstdint>
#include <memory>
#include <vector>

namespace lamia::detail {

/// True when the CPU has AVX2 and FMA (the tiled kernels' instructions).
bool tiled_kmeans_supported();

/// n points of dimension d in tiles of 16: tile t holds points 16t..16t+15 as d rows of 16 floats
/// (dimension-major), the last tile padded with zeros.
class PackedPoints {
 public:
  PackedPoints(const float* x, std::int64_t n, std::int64_t d);
  std::int64_t n() const noexcept { return n_; }
  std::int64_t dim() const noexcept { return d_; }
  std::int64_t tiles() const noexcept { return (n_ + 15) / 16; }
  const float* tile(std::int64_t t) const noexcept { return data_.get() + t * 16 * d_; }

 private:
  std::int64_t n_, d_;
  std::unique_ptr<float[]> data_;
};

/// Lloyd's assignment with faiss' arithmetic: dis[i] = min over j of max(0, (|x_i|^2 + |c_j|^2)
/// - 2 x_i.c_j), assign[i] its first j. Rows on OpenMP's threads.
void tiled_nearest(const PackedPoints& x, const float* x_norms, const float* c, const float* c_norms,
                   std::int64_t k, std::int64_t* assign, float* dis);

/// k-means++'s candidate distances with the tensor passes' arithmetic:
/// dist[t * n + i] = min(min_d2[i], max(0, (-2 x_i.c_t + x_sq[i]) + c_sq[t])) for the trials
/// candidates c (trials x d, row-major), and their potentials[t] = sum_i dist[t * n + i] (in double,
/// summed in blocks of 1024 points while they are in cache, the same on any number of threads).
void tiled_candidate_distances(const PackedPoints& x, const float* c, const float* c_sq, int trials,
                               const float* x_sq, const float* min_d2, float* dist, double* potentials);

/// assign_nearest with 8 points per vector: each lane does l2sq's float operations in its order
/// (no FMA), so the codes and distances are the scalar loop's bit for bit.
void tiled_assign_nearest(const float* centroids, std::int64_t k, std::int64_t d, const float* x, std::int64_t n,
                          std::int32_t* codes, float* distances);

}  // namespace lamia::detail
