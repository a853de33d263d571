// The blocked K-Means kernels (what lamia::kmeans runs) against the reference they replace:
// faiss::Clustering after the tensor k-means++ (detail::KMeansKernel::kFaiss). Same seed, same
// bits: centroids, assignment, per-iteration objective and inertia.
#include <lamia/quantize/detail/kmeans_kernels.hpp>
#include <lamia/quantize/kmeans.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstring>
#include <tuple>

#include "quantize/quantize_test_util.hpp"

using lamia::KMeansInit;
using lamia::KMeansOptions;
using lamia::KMeansResult;
using lamia::detail::KMeansKernel;

namespace {

void check_same_bits(const KMeansResult& a, const KMeansResult& b) {
  REQUIRE(a.centroids.size() == b.centroids.size());
  CHECK(std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * sizeof(float)) == 0);
  CHECK(a.assignment == b.assignment);
  CHECK(a.objective == b.objective);
  CHECK(a.inertia == b.inertia);
  CHECK(a.best_restart == b.best_restart);
  CHECK(a.fit_points == b.fit_points);
}

// n points of dimension d around `centres` seeded centres.
torch::Tensor points(std::int64_t n, std::int64_t d, std::int64_t centres, std::uint64_t seed) {
  auto x = lamia::test::clustered_palettes(n, 1, d, centres, seed, 0.3).x.reshape({n, d});
  return x.contiguous();
}

}  // namespace

TEST_CASE("blocked k-means gives faiss' Lloyd iterations and the tensor k-means++ bit for bit", "[kmeans][kernels]") {
  // (n, d, k): several row blocks of 4096 with a short last one; d not a multiple of 8; k above
  // faiss' centroid block (1024); n below faiss' BLAS threshold (20 points); n = k.
  const auto [n, d, k] = GENERATE(std::tuple<std::int64_t, std::int64_t, std::int64_t>{10000, 13, 37},
                                  std::tuple<std::int64_t, std::int64_t, std::int64_t>{5000, 64, 256},
                                  std::tuple<std::int64_t, std::int64_t, std::int64_t>{2500, 6, 1100},
                                  std::tuple<std::int64_t, std::int64_t, std::int64_t>{15, 4, 5},
                                  std::tuple<std::int64_t, std::int64_t, std::int64_t>{40, 3, 40});
  const auto init = GENERATE(KMeansInit::kPlusPlus, KMeansInit::kRandom);
  INFO("n " << n << " d " << d << " k " << k << " init " << static_cast<int>(init));
  const auto x = points(n, d, 50, 11 + static_cast<std::uint64_t>(n));
  KMeansOptions o;
  o.num_codes = k;
  o.iterations = 6;
  o.restarts = 2;
  o.seed = 5;
  o.init = init;
  const auto blocked = lamia::detail::kmeans_with(x.data_ptr<float>(), n, d, o, KMeansKernel::kBlocked);
  const auto faiss = lamia::detail::kmeans_with(x.data_ptr<float>(), n, d, o, KMeansKernel::kFaiss);
  check_same_bits(blocked, faiss);
  CHECK(blocked.objective.size() == 2);
  // kmeans() is the blocked one.
  check_same_bits(lamia::kmeans(x.data_ptr<float>(), n, d, o), blocked);
}

TEST_CASE("blocked k-means splits empty clusters as faiss does", "[kmeans][kernels]") {
  // 600 points on 40 distinct values, 64 random rows as centroids: duplicates leave clusters empty.
  auto x = points(40, 5, 40, 3).repeat({15, 1}).contiguous();
  KMeansOptions o;
  o.num_codes = 64;
  o.iterations = 4;
  o.init = KMeansInit::kRandom;
  const auto blocked = lamia::detail::kmeans_with(x.data_ptr<float>(), 600, 5, o, KMeansKernel::kBlocked);
  const auto faiss = lamia::detail::kmeans_with(x.data_ptr<float>(), 600, 5, o, KMeansKernel::kFaiss);
  check_same_bits(blocked, faiss);
}

TEST_CASE("blocked k-means on a sample of points per centroid matches faiss'", "[kmeans][kernels]") {
  const auto x = points(9000, 16, 80, 21);
  KMeansOptions o;
  o.num_codes = 32;
  o.iterations = 5;
  o.max_points_per_centroid = 100;  // 3200 of the 9000 points
  const auto blocked = lamia::detail::kmeans_with(x.data_ptr<float>(), 9000, 16, o, KMeansKernel::kBlocked);
  const auto faiss = lamia::detail::kmeans_with(x.data_ptr<float>(), 9000, 16, o, KMeansKernel::kFaiss);
  CHECK(blocked.fit_points == 3200);
  check_same_bits(blocked, faiss);
}
