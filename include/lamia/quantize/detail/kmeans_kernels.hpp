#pragma once
// The implementations of lamia::kmeans, for tests and benchmarks (bench_quantize_kernels).
//
// kTiled (what kmeans() runs where the CPU has AVX2 and FMA, detail/kmeans_tiled.hpp): the
// blocked kernels below with their products computed in registers instead of by BLAS. The same
// arithmetic around the products; the products themselves round differently in the last bit for
// some entries, so the result is not kFaiss' bit for bit (test_kmeans_kernels.cpp checks it
// against it with tolerances).
// kBlocked (what kmeans() runs elsewhere): the Lloyd iterations and k-means++ seeding as blocked
// kernels on OpenMP's threads, each block one single-threaded BLAS product with its reduction fused
// behind it (no n x k matrix of distances; k-means++ writes its candidates' distances once). It does
// faiss 1.7.3's arithmetic (IndexFlatL2's |x|^2 + |c|^2 - 2 x.c with faiss' own norms, its float
// sums, its centroid update and empty-cluster split) and the tensor k-means++'s, in the same order,
// so that for the same seed the results are the same bits (tests/cpp/quantize/test_kmeans_kernels.cpp).
// kFaiss: faiss::Clustering::train after the tensor k-means++ (lamia before issue #13), the reference.
#include <lamia/quantize/kmeans.hpp>

#include <cstdint>

namespace lamia::detail {

enum class KMeansKernel {
  kTiled,    ///< register-tiled products (the default with AVX2 and FMA)
  kBlocked,  ///< blocked kernels with BLAS products (the default without)
  kFaiss,    ///< faiss::Clustering and the tensor k-means++ (the reference)
};

/// lamia::kmeans with the given implementation.
KMeansResult kmeans_with(const float* x, std::int64_t n, std::int64_t dim, const KMeansOptions& options,
                         KMeansKernel kernel);

}  // namespace lamia::detail
