// The K-Means kernels against the reference they replace: faiss::Clustering after the tensor
// k-means++ (detail::KMeansKernel::kFaiss). The blocked kernels: same seed, same bits (centroids,
// assignment, per-iteration objective and inertia). The tiled kernels (what lamia::kmeans runs
// with AVX2 and FMA): the same up to the rounding of their products.
#include <lamia/quantize/detail/kmeans_kernels.hpp>
#include <lamia/quantize/detail/kmeans_tiled.hpp>
#include <lamia/quantize/kmeans.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
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

// b is a up to the last bits of their products: the same sample and restart, codes that differ on
// at most 1 point in 1000, every objective and the inertia within 1e-5 (relative), centroids within
// 1e-4 of the largest coordinate.
void check_close(const KMeansResult& a, const KMeansResult& b) {
  REQUIRE(a.centroids.size() == b.centroids.size());
  REQUIRE(a.assignment.size() == b.assignment.size());
  CHECK(a.best_restart == b.best_restart);
  CHECK(a.fit_points == b.fit_points);
  std::size_t codes = 0;
  for (std::size_t i = 0; i < a.assignment.size(); ++i) codes += a.assignment[i] != b.assignment[i];
  CHECK(codes * 1000 <= a.assignment.size());
  float scale = 0, diff = 0;
  for (std::size_t i = 0; i < a.centroids.size(); ++i) {
    scale = std::max(scale, std::abs(a.centroids[i]));
    diff = std::max(diff, std::abs(a.centroids[i] - b.centroids[i]));
  }
  CHECK(diff <= 1e-4f * scale);
  REQUIRE(a.objective.size() == b.objective.size());
  for (std::size_t r = 0; r < a.objective.size(); ++r) {
    REQUIRE(a.objective[r].size() == b.objective[r].size());
    for (std::size_t i = 0; i < a.objective[r].size(); ++i)
      CHECK(b.objective[r][i] == Approx(a.objective[r][i]).epsilon(1e-5).margin(1e-6));
  }
  CHECK(b.inertia == Approx(a.inertia).epsilon(1e-5).margin(1e-6));
}

// n points of dimension d around `centres` seeded centres.
torch::Tensor points(std::int64_t n, std::int64_t d, std::int64_t centres, std::uint64_t seed) {
  auto x = lamia::test::clustered_palettes(n, 1, d, centres, seed, 0.3).x.reshape({n, d});
  return x.contiguous();
}

}  // namespace

TEST_CASE("blocked k-means gives faiss' Lloyd iterations and the tensor k-means++ bit for bit, tiled k-means up to "
          "the products' rounding", "[kmeans][kernels]") {
  // (n, d, k): several row blocks of 4096 (tiles of 16) with a short last one; d not a multiple of
  // 8; k not a multiple of the tiled kernel's 6 centroids, and above faiss' centroid block (1024);
  // n below faiss' BLAS threshold (20 points); n = k.
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
  if (!lamia::detail::tiled_kmeans_supported()) {  // kmeans() is the blocked one
    check_same_bits(lamia::kmeans(x.data_ptr<float>(), n, d, o), blocked);
    return;
  }
  const auto tiled = lamia::detail::kmeans_with(x.data_ptr<float>(), n, d, o, KMeansKernel::kTiled);
  if (init == KMeansInit::kRandom) {
    check_close(faiss, tiled);
  } else {
    // k-means++ keeps the candidate of lowest potential; where two candidates' potentials are equal
    // to the last bits, the products' rounding may pick the other one (n 5000, k 256: from the
    // first iteration on, the objective differs by 0.09 %, the final inertia by 0.02 %).
    CHECK(tiled.inertia == Approx(faiss.inertia).epsilon(1e-3));
    CHECK(tiled.fit_points == faiss.fit_points);
  }
  check_same_bits(lamia::kmeans(x.data_ptr<float>(), n, d, o), tiled);  // kmeans() is the tiled one
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

TEST_CASE("tiled k-means splits empty clusters and samples points as faiss does", "[kmeans][kernels]") {
  if (!lamia::detail::tiled_kmeans_supported()) {
    WARN("skipped: the CPU has no AVX2 and FMA");
    return;
  }
  auto dup = points(40, 5, 40, 3).repeat({15, 1}).contiguous();
  KMeansOptions o;
  o.num_codes = 64;
  o.iterations = 4;
  o.init = KMeansInit::kRandom;
  check_close(lamia::detail::kmeans_with(dup.data_ptr<float>(), 600, 5, o, KMeansKernel::kFaiss),
              lamia::detail::kmeans_with(dup.data_ptr<float>(), 600, 5, o, KMeansKernel::kTiled));
  const auto x = points(9000, 16, 80, 21);
  KMeansOptions s;
  s.num_codes = 32;
  s.iterations = 5;
  s.max_points_per_centroid = 100;
  const auto tiled = lamia::detail::kmeans_with(x.data_ptr<float>(), 9000, 16, s, KMeansKernel::kTiled);
  CHECK(tiled.fit_points == 3200);
  check_close(lamia::detail::kmeans_with(x.data_ptr<float>(), 9000, 16, s, KMeansKernel::kFaiss), tiled);
}

TEST_CASE("tiled k-means++ candidate distances are the exact ones up to float rounding", "[kmeans][kernels]") {
  if (!lamia::detail::tiled_kmeans_supported()) {
    WARN("skipped: the CPU has no AVX2 and FMA");
    return;
  }
  const auto [n, d, trials] = GENERATE(std::tuple<std::int64_t, std::int64_t, int>{1000, 64, 7},
                                       std::tuple<std::int64_t, std::int64_t, int>{37, 13, 9},
                                       std::tuple<std::int64_t, std::int64_t, int>{5, 3, 1});
  INFO("n " << n << " d " << d << " trials " << trials);
  const auto x = points(n, d, 10, 3);
  const auto c = x.narrow(0, 0, trials).contiguous();
  const auto x_sq = x.square().sum(1), c_sq = c.square().sum(1);
  auto min_d2 = (x - x[n - 1]).square().sum(1).contiguous();
  std::vector<float> dist(static_cast<std::size_t>(trials * n));
  std::vector<double> potentials(static_cast<std::size_t>(trials));
  lamia::detail::PackedPoints packed(x.data_ptr<float>(), n, d);
  lamia::detail::tiled_candidate_distances(packed, c.data_ptr<float>(), c_sq.data_ptr<float>(), trials,
                                           x_sq.data_ptr<float>(), min_d2.data_ptr<float>(), dist.data(),
                                           potentials.data());
  for (int t = 0; t < trials; ++t) {
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += dist[t * n + i];
    CHECK(potentials[t] == Approx(sum).epsilon(1e-12));
  }
  const auto xd = x.to(torch::kFloat64), cd = c.to(torch::kFloat64);
  const auto exact = torch::minimum(torch::cdist(cd, xd).square(), min_d2.to(torch::kFloat64).unsqueeze(0));
  const auto scale = (x_sq.unsqueeze(0) + c_sq.unsqueeze(1)).to(torch::kFloat64);
  const auto got = torch::from_blob(dist.data(), {trials, n}, torch::kFloat32).to(torch::kFloat64);
  CHECK(((got - exact).abs() / scale).max().item<double>() < 1e-6);
}

TEST_CASE("tiled assign_nearest gives the scalar loop's codes and distances bit for bit", "[kmeans][kernels]") {
  if (!lamia::detail::tiled_kmeans_supported()) {
    WARN("skipped: the CPU has no AVX2 and FMA");
    return;
  }
  const auto [n, d, k] = GENERATE(std::tuple<std::int64_t, std::int64_t, std::int64_t>{1001, 64, 256},
                                  std::tuple<std::int64_t, std::int64_t, std::int64_t>{37, 13, 7},
                                  std::tuple<std::int64_t, std::int64_t, std::int64_t>{3, 2, 3});
  INFO("n " << n << " d " << d << " k " << k);
  const auto x = points(n, d, 20, 9);
  auto c = points(k, d, 20, 10);
  c[0].copy_(c[k - 1]);  // a tie: the lower index wins
  std::vector<std::int32_t> codes(n);
  std::vector<float> dis(n);
  lamia::assign_nearest(c.data_ptr<float>(), k, d, x.data_ptr<float>(), n, codes.data(), dis.data());
  const float* xp = x.data_ptr<float>();
  const float* cp = c.data_ptr<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    float best = HUGE_VALF;
    std::int32_t arg = 0;
    for (std::int64_t m = 0; m < k; ++m) {
      float s[4] = {0, 0, 0, 0};  // lamia's l2sq (src/quantize/kmeans.cpp)
      std::int64_t j = 0;
      for (; j + 4 <= d; j += 4)
        for (int q = 0; q < 4; ++q) {
          const float e = xp[i * d + j + q] - cp[m * d + j + q];
          s[q] += e * e;
        }
      for (; j < d; ++j) {
        const float e = xp[i * d + j] - cp[m * d + j];
        s[0] += e * e;
      }
      const float v = (s[0] + s[1]) + (s[2] + s[3]);
      if (v < best) {
        best = v;
        arg = static_cast<std::int32_t>(m);
      }
    }
    CHECK(codes[i] == arg);
    CHECK(std::memcmp(&dis[i], &best, sizeof best) == 0);
  }
}
