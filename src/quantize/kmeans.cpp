#include <lamia/core/errors.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/kmeans.hpp>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

namespace lamia {
namespace {

// Squared L2 distance with 4 independent partial sums so that the compiler can
// vectorise without -ffast-math; the order of additions is fixed, so a point
// gets the same code whatever the batch it is encoded in.
inline float l2sq(const float* a, const float* b, std::int64_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::int64_t j = 0;
  for (; j + 4 <= d; j += 4) {
    const float e0 = a[j] - b[j], e1 = a[j + 1] - b[j + 1], e2 = a[j + 2] - b[j + 2], e3 = a[j + 3] - b[j + 3];
    s0 += e0 * e0;
    s1 += e1 * e1;
    s2 += e2 * e2;
    s3 += e3 * e3;
  }
  for (; j < d; ++j) {
    const float e = a[j] - b[j];
    s0 += e * e;
  }
  return (s0 + s1) + (s2 + s3);
}

// Greedy k-means++ (as sklearn): each new centroid is the best, by the resulting
// potential sum_i min_d2[i], of 2 + ln(k) candidates drawn with probability
// proportional to min_d2 (plain k-means++ misses clusters far more often).
// The candidates' distances to all points are one BLAS product, |x|^2 + |c|^2 - 2 x.c
// (as sklearn), and the draws are binary searches in the prefix sums of min_d2.
std::vector<float> init_plus_plus(const float* x, std::int64_t n, std::int64_t d, std::int64_t k,
                                  std::mt19937_64& rng) {
  std::vector<float> c(k * d);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  const auto X = torch::from_blob(const_cast<float*>(x), {n, d}, torch::kFloat32);
  const auto x_sq = X.square().sum(1);  // n
  std::vector<double> prefix(n);
  // One draw: the first point whose prefix sum exceeds a uniform target in [0, total).
  auto sample = [&](const float* min_d2) -> std::int64_t {
    const double total = prefix[n - 1];
    if (!(total > 0)) return static_cast<std::int64_t>(uni(rng) * n) % n;  // all points on centroids
    auto i = static_cast<std::int64_t>(std::upper_bound(prefix.begin(), prefix.end(), uni(rng) * total) - prefix.begin());
    i = std::min(i, n - 1);
    while (i > 0 && !(min_d2[i] > 0)) --i;  // round-off at the very end of the range
    return i;
  };
  std::int64_t pick = static_cast<std::int64_t>(uni(rng) * n) % n;
  // Buffers reused across the k steps (fresh pages cost a page fault each).
  auto min_d2 = (X - X[pick]).square().sum(1);  // n
  auto dist = torch::empty({trials, n}, torch::kFloat32);  // trials x n: rows contiguous, BLAS-friendly
  auto cand_index = torch::empty({trials}, torch::kLong);
  const auto ones = torch::ones({n}, torch::kFloat32);
  std::copy(x + pick * d, x + (pick + 1) * d, c.begin());
  for (std::int64_t m = 1; m < k; ++m) {
    const float* md = min_d2.data_ptr<float>();
    double acc = 0;
    for (std::int64_t i = 0; i < n; ++i) prefix[i] = acc += md[i];
    auto* ci = cand_index.data_ptr<std::int64_t>();
    for (int t = 0; t < trials; ++t) ci[t] = sample(md);
    const auto C = X.index_select(0, cand_index);  // trials x d
    at::mm_out(dist, C, X.t());
    dist.mul_(-2.0).add_(x_sq.unsqueeze(0)).add_(C.square().sum(1).unsqueeze(1)).clamp_min_(0);
    at::minimum_out(dist, dist, min_d2.unsqueeze(0));
    // Row sums by BLAS (a float64 reduction is ~100x slower); only compared with each other.
    const auto potential = torch::mv(dist, ones).contiguous();
    const float* pot = potential.data_ptr<float>();
    const int best = static_cast<int>(std::min_element(pot, pot + trials) - pot);  // first lowest
    pick = ci[best];
    min_d2.copy_(dist[best]);
    std::copy(x + pick * d, x + (pick + 1) * d, c.begin() + m * d);
  }
  return c;
}

std::vector<float> init_random(const float* x, std::int64_t n, std::int64_t d, std::int64_t k,
                               std::mt19937_64& rng) {
  std::vector<std::int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::vector<float> c(k * d);
  for (std::int64_t m = 0; m < k; ++m) {
    std::uniform_int_distribution<std::int64_t> pick(m, n - 1);
    std::swap(perm[m], perm[pick(rng)]);
    std::copy(x + perm[m] * d, x + (perm[m] + 1) * d, c.begin() + m * d);
  }
  return c;
}

}  // namespace

namespace detail {
std::vector<std::int64_t> sample_indices(std::int64_t n, std::int64_t m, std::mt19937_64& rng) {
  std::vector<std::int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  for (std::int64_t i = 0; i < m; ++i) {
    std::uniform_int_distribution<std::int64_t> pick(i, n - 1);
    std::swap(perm[i], perm[pick(rng)]);
  }
  perm.resize(m);
  std::sort(perm.begin(), perm.end());
  return perm;
}
}  // namespace detail

namespace {
// True when p[0..m) holds no inf and no NaN (the float's exponent bits are all ones only for those).
// Branch-free over the row so that the compiler vectorizes it: the check reads every palette value
// once per fit, 4.1e9 values at 1M items x 4 x 1024.
bool row_is_finite(const float* p, std::int64_t m) {
  std::uint32_t bad = 0;
  for (std::int64_t j = 0; j < m; ++j) {
    std::uint32_t u;
    std::memcpy(&u, p + j, sizeof u);
    bad |= static_cast<std::uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}
}  // namespace

void check_finite(const float* x, std::int64_t rows, std::int64_t row_stride, const char* what,
                  std::int64_t rows_per_item, std::int64_t first_item) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* p = x + r * row_stride;
    if (row_is_finite(p, row_stride)) continue;
    for (std::int64_t j = 0; j < row_stride; ++j) {
      if (!std::isfinite(p[j])) {
        if (rows_per_item > 1) {
          throw ValueError(fmt::format("{}: item {} has a non-finite value ({}) at position {}, dimension {}", what,
                                       first_item + r / rows_per_item, p[j], r % rows_per_item, j));
        }
        throw ValueError(
            fmt::format("{}: item {} has a non-finite value ({}) at dimension {}", what, first_item + r, p[j], j));
      }
    }
  }
}

void assign_nearest(const float* centroids, std::int64_t k, std::int64_t d, const float* x, std::int64_t n,
                    std::int32_t* codes, float* distances) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    float best = std::numeric_limits<float>::infinity();
    std::int32_t arg = 0;
    for (std::int64_t m = 0; m < k; ++m) {
      const float dist = l2sq(xi, centroids + m * d, d);
      if (dist < best) {  // strict: ties go to the lowest centroid index
        best = dist;
        arg = static_cast<std::int32_t>(m);
      }
    }
    codes[i] = arg;
    if (distances) distances[i] = best;
  }
}

KMeansResult kmeans(const float* x, std::int64_t n, std::int64_t d, const KMeansOptions& options) {
  const std::int64_t k = options.num_codes;
  if (k < 1) throw ValueError(fmt::format("kmeans: num_codes (k) must be >= 1, got {}", k));
  if (d < 1) throw ValueError(fmt::format("kmeans: dimension must be >= 1, got {}", d));
  if (n < k) {
    throw ValueError(fmt::format("kmeans: needs at least num_codes = {} points, got {}", k, n));
  }
  if (options.iterations < 1) {
    throw ValueError(fmt::format("kmeans: iterations must be >= 1, got {}", options.iterations));
  }
  if (options.restarts < 1) throw ValueError(fmt::format("kmeans: restarts must be >= 1, got {}", options.restarts));
  if (options.max_points_per_centroid < 0) {
    throw ValueError(fmt::format("kmeans: max_points_per_centroid must be >= 0, got {}",
                                 options.max_points_per_centroid));
  }
  check_finite(x, n, d, "kmeans");

  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> objectives;
  std::vector<std::int32_t> codes(n);
  std::vector<float> dist(n);
  const std::int64_t fit_n =
      options.max_points_per_centroid > 0 && options.max_points_per_centroid <= (n - 1) / k
          ? k * options.max_points_per_centroid
          : n;
  std::vector<float> sample;
  using Clock = std::chrono::steady_clock;
  const auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  for (int r = 0; r < options.restarts; ++r) {
    auto t0 = Clock::now();
    std::mt19937_64 rng(options.seed + static_cast<std::uint64_t>(r));
    const float* fx = x;
    if (fit_n < n) {  // a seeded sample of fit_n points, in increasing index order
      const auto perm = detail::sample_indices(n, fit_n, rng);
      sample.resize(fit_n * d);
      for (std::int64_t m = 0; m < fit_n; ++m) std::copy(x + perm[m] * d, x + (perm[m] + 1) * d, sample.begin() + m * d);
      fx = sample.data();
    }
    faiss::ClusteringParameters cp;
    cp.niter = options.iterations;
    cp.nredo = 1;
    cp.verbose = false;
    cp.seed = static_cast<int>((options.seed + r) & 0x7fffffff);
    cp.min_points_per_centroid = 1;  // small sets are deliberate in tests; no faiss warning
    cp.max_points_per_centroid = INT_MAX / 2;  // the sample, if any, is drawn above
    faiss::Clustering clus(static_cast<int>(d), static_cast<int>(k), cp);
    clus.centroids = options.init == KMeansInit::kPlusPlus ? init_plus_plus(fx, fit_n, d, k, rng)
                                                            : init_random(fx, fit_n, d, k, rng);
    best.seconds_seeding += since(t0);
    t0 = Clock::now();
    faiss::IndexFlatL2 index(static_cast<std::int64_t>(d));
    try {
      clus.train(static_cast<std::int64_t>(fit_n), fx, index);
    } catch (const faiss::FaissException& e) {
      throw ValueError(fmt::format("kmeans: faiss failed: {}", e.what()));
    }
    best.seconds_iterations += since(t0);
    t0 = Clock::now();
    std::vector<double> obj;
    for (const auto& s : clus.iteration_stats) obj.push_back(s.obj);
    objectives.push_back(std::move(obj));
    // Final assignment with the final centroids: the codes and sklearn's inertia_.
    assign_nearest(clus.centroids.data(), k, d, x, n, codes.data(), dist.data());
    double inertia = 0;
    for (float v : dist) inertia += v;
    best.seconds_assignment += since(t0);
    if (inertia < best.inertia) {
      best.inertia = inertia;
      best.best_restart = r;
      best.centroids = clus.centroids;
      best.assignment = codes;
    }
  }
  best.num_codes = k;
  best.dim = d;
  best.fit_points = fit_n;
  best.objective = std::move(objectives);
  return best;
}

}  // namespace lamia
