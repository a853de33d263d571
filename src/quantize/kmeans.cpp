#include <lamia/core/errors.hpp>
#include <lamia/quantize/detail/kmeans_kernels.hpp>
#include <lamia/quantize/detail/kmeans_tiled.hpp>
#include <lamia/core/blas_threads.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/kmeans.hpp>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/utils/distances.h>
#include <faiss/utils/random.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>

// The BLAS that faiss and torch call (Debian: OpenBLAS), Fortran interface, 32-bit integers.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

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

// Rows per block: faiss' own query block (distance_compute_blas_query_bs, 4096) for the Lloyd
// products, so that BLAS gets faiss' shapes: OpenBLAS sums some products in another order for
// other shapes (its small-matrix path: with 256-row blocks the objective differed from faiss' in
// the last bits, tests/cpp/quantize/test_kmeans_kernels.cpp). k-means++: 4096 rows x 2 + ln k
// candidates per product (torch's one product over all n rows gives the same bits).
std::int64_t lloyd_rows() { return std::max(1, faiss::distance_compute_blas_query_bs); }
constexpr std::int64_t kSeedingRows = 4096;

// The nearest centroid of rows [i0, i1) with faiss 1.7.3's arithmetic for IndexFlatL2::search
// (k = 1, the BLAS path): ip = x.c from sgemm on blocks of distance_compute_blas_database_bs
// centroids, dis = (|x|^2 + |c|^2) - 2 ip clamped at 0, the lowest distance kept, ties (and equal
// distances in a later centroid block) to the lowest index. ip holds (i1 - i0) * min(k, block) floats.
void nearest_rows(const float* x, const float* x_norms, const float* c, const float* c_norms, std::int64_t d,
                  std::int64_t k, std::int64_t i0, std::int64_t i1, float* ip, std::int64_t* assign, float* dis) {
  const std::int64_t bs_y = std::max(1, faiss::distance_compute_blas_database_bs);
  for (std::int64_t i = i0; i < i1; ++i) {
    dis[i] = HUGE_VALF;
    assign[i] = -1;
  }
  for (std::int64_t j0 = 0; j0 < k; j0 += bs_y) {
    const std::int64_t j1 = std::min(k, j0 + bs_y);
    const int nyi = static_cast<int>(j1 - j0), nxi = static_cast<int>(i1 - i0), di = static_cast<int>(d);
    const float one = 1, zero = 0;
    sgemm_("Transpose", "Not transpose", &nyi, &nxi, &di, &one, c + j0 * d, &di, x + i0 * d, &di, &zero, ip, &nyi);
    const float* cn = c_norms + j0;
    for (std::int64_t i = i0; i < i1; ++i) {
      float* line = ip + (i - i0) * nyi;
      const float xn = x_norms[i];
      // The distances and their minimum in 8 lanes (the compiler vectorizes it; min is exact in
      // any order), then the first index that has it.
      float lane[8];
      for (float& v : lane) v = HUGE_VALF;
      std::int64_t j = 0;
      for (; j + 8 <= nyi; j += 8) {
        for (int l = 0; l < 8; ++l) {
          float v = xn + cn[j + l] - 2 * line[j + l];
          v = v < 0 ? 0.f : v;
          line[j + l] = v;
          lane[l] = v < lane[l] ? v : lane[l];
        }
      }
      for (; j < nyi; ++j) {
        float v = xn + cn[j] - 2 * line[j];
        v = v < 0 ? 0.f : v;
        line[j] = v;
        lane[0] = v < lane[0] ? v : lane[0];
      }
      float low = lane[0];
      for (int l = 1; l < 8; ++l) low = lane[l] < low ? lane[l] : low;
      if (low < dis[i]) {
        std::int64_t at = 0;
        while (!(line[at] == low)) ++at;
        dis[i] = low;
        assign[i] = j0 + at;
      }
    }
  }
}

// faiss 1.7.3's compute_centroids (no weights, no frozen centroids): each thread sums the points
// of its own range of centroids in point order, in float; then centroid *= 1 / count.
void update_centroids(const float* x, std::int64_t n, std::int64_t d, std::int64_t k, const std::int64_t* assign,
                      float* hassign, float* c) {
  std::fill(c, c + k * d, 0.f);
  std::fill(hassign, hassign + k, 0.f);
#pragma omp parallel
  {
    const std::int64_t nt = omp_get_num_threads(), rank = omp_get_thread_num();
    const std::int64_t c0 = k * rank / nt, c1 = k * (rank + 1) / nt;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t ci = assign[i];
      if (ci < c0 || ci >= c1) continue;
      float* ce = c + ci * d;
      const float* xi = x + i * d;
      hassign[ci] += 1.0;
      for (std::int64_t j = 0; j < d; ++j) ce[j] += xi[j];
    }
  }
#pragma omp parallel for
  for (std::int64_t ci = 0; ci < k; ++ci) {
    if (hassign[ci] == 0) continue;
    const float norm = 1 / hassign[ci];
    float* ce = c + ci * d;
    for (std::int64_t j = 0; j < d; ++j) ce[j] *= norm;
  }
}

// faiss 1.7.3's split_clusters: an empty cluster takes a copy of a large one (drawn with
// probability (count - 1) / (n - k), faiss' RandomGenerator seeded 1234), both nudged apart.
void split_empty_clusters(std::int64_t d, std::int64_t k, std::int64_t n, float* hassign, float* c) {
  constexpr double kEps = 1 / 1024.;
  faiss::RandomGenerator rng(1234);
  for (std::int64_t ci = 0; ci < k; ++ci) {
    if (hassign[ci] != 0) continue;
    std::int64_t cj = 0;
    for (;; cj = (cj + 1) % k) {
      const float p = (hassign[cj] - 1.0) / static_cast<float>(n - k);
      const float r = rng.rand_float();
      if (r < p) break;
    }
    std::memcpy(c + ci * d, c + cj * d, sizeof(float) * d);
    for (std::int64_t j = 0; j < d; ++j) {
      if (j % 2 == 0) {
        c[ci * d + j] *= 1 + kEps;
        c[cj * d + j] *= 1 - kEps;
      } else {
        c[ci * d + j] *= 1 - kEps;
        c[cj * d + j] *= 1 + kEps;
      }
    }
    hassign[ci] = hassign[cj] / 2;
    hassign[cj] -= hassign[ci];
  }
}

// The Lloyd iterations of faiss 1.7.3's Clustering::train (one run, every centroid given, no
// sample) from the centroids c: per iteration the assignment (blocks of rows on OpenMP's threads),
// its objective (a float sum in point order, as faiss), the centroid update and the split of empty
// clusters. Returns the objective of each iteration; c holds the final centroids. With `packed`
// (x packed for the tiled kernels) the assignment is tiled_nearest's.
std::vector<double> lloyd_blocked(const float* x, std::int64_t n, std::int64_t d, std::int64_t k, int iterations,
                                  std::vector<float>& c, const detail::PackedPoints* packed) {
  if (n == k) {  // faiss' corner case: the points are the centroids, one iteration of objective 0
    c.assign(x, x + n * d);
    return {0.0};
  }
  std::vector<float> x_norms(n), c_norms(k), dis(n), hassign(k);
  std::vector<std::int64_t> assign(n);
  faiss::fvec_norms_L2sqr(x_norms.data(), x, d, n);  // faiss' own (its summation order)
  const bool blas = n >= faiss::distance_compute_blas_threshold;
  const std::int64_t bs = lloyd_rows();
  const std::int64_t blocks = (n + bs - 1) / bs;
  std::vector<double> objective;
  for (int it = 0; it < iterations; ++it) {
    faiss::fvec_norms_L2sqr(c_norms.data(), c.data(), d, k);
    if (blas && packed) {
      detail::tiled_nearest(*packed, x_norms.data(), c.data(), c_norms.data(), k, assign.data(), dis.data());
    } else if (blas) {
      const ScopedBlasThreads one_blas_thread(1);
#pragma omp parallel
      {
        std::vector<float> ip(bs * std::min<std::int64_t>(k, std::max(1, faiss::distance_compute_blas_database_bs)));
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t b = 0; b < blocks; ++b) {
          nearest_rows(x, x_norms.data(), c.data(), c_norms.data(), d, k, b * bs, std::min(n, (b + 1) * bs), ip.data(),
                       assign.data(), dis.data());
        }
      }
    } else {  // faiss' sequential path for fewer than distance_compute_blas_threshold points
      for (std::int64_t i = 0; i < n; ++i) {
        float best = HUGE_VALF;
        std::int64_t arg = -1;
        for (std::int64_t j = 0; j < k; ++j) {
          const float v = faiss::fvec_L2sqr(x + i * d, c.data() + j * d, d);
          if (v < best) {
            best = v;
            arg = j;
          }
        }
        dis[i] = best;
        assign[i] = arg;
      }
    }
    float obj = 0;  // faiss' own: a float, in point order
    for (std::int64_t i = 0; i < n; ++i) obj += dis[i];
    objective.push_back(obj);
    update_centroids(x, n, d, k, assign.data(), hassign.data(), c.data());
    split_empty_clusters(d, k, n, hassign.data(), c.data());
  }
  return objective;
}

// dist[t][i] = min(min_d2[i], max(0, (-2 x_i.c_t + |x_i|^2) + |c_t|^2)) for the trials x d
// candidates C, with the float operations of the tensor passes (mul_(-2), add_, add_, clamp_min_,
// minimum) in their order; the products are torch's mm call (sgemm "t", "n" into [trials, n]) on
// blocks of kSeedingRows rows.
void blocked_candidate_distances(const float* x, std::int64_t n, std::int64_t d, const torch::Tensor& C, int trials,
                                 const float* x_sq, const float* min_d2, float* dist) {
  const auto c_sq = C.square().sum(1);
  const float* cp = C.data_ptr<float>();
  const float* cs = c_sq.data_ptr<float>();
  const std::int64_t blocks = (n + kSeedingRows - 1) / kSeedingRows;
  const ScopedBlasThreads one_blas_thread(1);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t i0 = b * kSeedingRows, i1 = std::min(n, i0 + kSeedingRows);
    const int mi = static_cast<int>(i1 - i0), ni = trials, ki = static_cast<int>(d), ldc = static_cast<int>(n);
    const float one = 1, zero = 0;
    sgemm_("t", "n", &mi, &ni, &ki, &one, x + i0 * d, &ki, cp, &ki, &zero, dist + i0, &ldc);
    for (int t = 0; t < trials; ++t) {
      float* row = dist + t * n;
      const float ct = cs[t];
      for (std::int64_t i = i0; i < i1; ++i) {
        float v = row[i] * -2.0f;
        v = v + x_sq[i];
        v = v + ct;
        v = v < 0 ? 0.f : v;
        row[i] = min_d2[i] < v ? min_d2[i] : v;
      }
    }
  }
}

// Greedy k-means++ (as sklearn): each new centroid is the best, by the resulting
// potential sum_i min_d2[i], of 2 + ln(k) candidates drawn with probability
// proportional to min_d2 (plain k-means++ misses clusters far more often).
// The candidates' distances to all points are one BLAS product, |x|^2 + |c|^2 - 2 x.c
// (as sklearn), and the draws are binary searches in the prefix sums of min_d2.
// kFaiss (the reference): torch's product over all n points, then five tensor passes over the
// [trials, n] distances. kBlocked: the same product a block of rows at a time, one
// single-threaded BLAS call per block on an OpenMP worker, with the same float operations in the
// same order applied behind it while the block is in cache (the distances written once).
// kTiled: the blocked kernel's passes with the products from tiled_candidate_distances (`packed`).
std::vector<float> init_plus_plus(const float* x, std::int64_t n, std::int64_t d, std::int64_t k,
                                  std::mt19937_64& rng, detail::KMeansKernel kernel,
                                  const detail::PackedPoints* packed) {
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
  std::vector<double> pot64(static_cast<std::size_t>(trials));  // kTiled's potentials
  std::copy(x + pick * d, x + (pick + 1) * d, c.begin());
  for (std::int64_t m = 1; m < k; ++m) {
    const float* md = min_d2.data_ptr<float>();
    double acc = 0;
    for (std::int64_t i = 0; i < n; ++i) prefix[i] = acc += md[i];
    auto* ci = cand_index.data_ptr<std::int64_t>();
    for (int t = 0; t < trials; ++t) ci[t] = sample(md);
    const auto C = X.index_select(0, cand_index);  // trials x d
    int best = 0;
    if (kernel == detail::KMeansKernel::kTiled) {  // the potentials come with the distances
      const auto c_sq = C.square().sum(1);
      detail::tiled_candidate_distances(*packed, C.data_ptr<float>(), c_sq.data_ptr<float>(), trials,
                                        x_sq.data_ptr<float>(), md, dist.data_ptr<float>(), pot64.data());
      best = static_cast<int>(std::min_element(pot64.begin(), pot64.end()) - pot64.begin());  // first lowest
    } else {
      if (kernel == detail::KMeansKernel::kBlocked) {
        blocked_candidate_distances(x, n, d, C, trials, x_sq.data_ptr<float>(), md, dist.data_ptr<float>());
      } else {
        at::mm_out(dist, C, X.t());
        dist.mul_(-2.0).add_(x_sq.unsqueeze(0)).add_(C.square().sum(1).unsqueeze(1)).clamp_min_(0);
        at::minimum_out(dist, dist, min_d2.unsqueeze(0));
      }
      // Row sums by BLAS (a float64 reduction is ~100x slower); only compared with each other.
      const auto potential = torch::mv(dist, ones).contiguous();
      const float* pot = potential.data_ptr<float>();
      best = static_cast<int>(std::min_element(pot, pot + trials) - pot);  // first lowest
    }
    pick = ci[best];
    min_d2.copy_(dist[best]);
    std::copy(x + pick * d, x + (pick + 1) * d, c.begin() + m * d);
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
  if (detail::tiled_kmeans_supported()) {  // the same bits, 8 points per vector
    detail::tiled_assign_nearest(centroids, k, d, x, n, codes, distances);
    return;
  }
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
  using detail::KMeansKernel;
  return detail::kmeans_with(x, n, d, options,
                             detail::tiled_kmeans_supported() ? KMeansKernel::kTiled : KMeansKernel::kBlocked);
}

KMeansResult detail::kmeans_with(const float* x, std::int64_t n, std::int64_t d, const KMeansOptions& options,
                                 KMeansKernel kernel) {
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
  // The tiled kernels call no BLAS product; the rest (k-means++'s potentials) is small. OpenBLAS's
  // own threads would spin in sched_yield after each call, taking turns with OpenMP's (9 % of the
  // samples of a 1M fit's K-Means in perf).
  std::optional<ScopedBlasThreads> one_blas_thread;
  if (kernel == KMeansKernel::kTiled) one_blas_thread.emplace(1);
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
    if (kernel == KMeansKernel::kTiled && !tiled_kmeans_supported()) {
      throw ValueError("kmeans: the tiled kernels need a CPU with AVX2 and FMA");
    }
    const bool blocked = kernel != KMeansKernel::kFaiss;
    std::optional<PackedPoints> packed;  // the points in the tiled kernels' layout, once per restart
    if (kernel == KMeansKernel::kTiled) packed.emplace(fx, fit_n, d);
    const PackedPoints* pp = packed ? &*packed : nullptr;
    std::vector<float> centroids = options.init == KMeansInit::kRandom
                                       ? init_random(fx, fit_n, d, k, rng)
                                       : init_plus_plus(fx, fit_n, d, k, rng, kernel, pp);
    best.seconds_seeding += since(t0);
    t0 = Clock::now();
    if (blocked) {
      objectives.push_back(lloyd_blocked(fx, fit_n, d, k, options.iterations, centroids, pp));
    } else {
      faiss::ClusteringParameters cp;
      cp.niter = options.iterations;
      cp.nredo = 1;
      cp.verbose = false;
      cp.seed = static_cast<int>((options.seed + r) & 0x7fffffff);
      cp.min_points_per_centroid = 1;  // small sets are deliberate in tests; no faiss warning
      cp.max_points_per_centroid = INT_MAX / 2;  // the sample, if any, is drawn above
      faiss::Clustering clus(static_cast<int>(d), static_cast<int>(k), cp);
      clus.centroids = std::move(centroids);
      faiss::IndexFlatL2 index(static_cast<std::int64_t>(d));
      try {
        clus.train(static_cast<std::int64_t>(fit_n), fx, index);
      } catch (const faiss::FaissException& e) {
        throw ValueError(fmt::format("kmeans: faiss failed: {}", e.what()));
      }
      std::vector<double> obj;
      for (const auto& st : clus.iteration_stats) obj.push_back(st.obj);
      objectives.push_back(std::move(obj));
      centroids = std::move(clus.centroids);
    }
    best.seconds_iterations += since(t0);
    t0 = Clock::now();
    // Final assignment with the final centroids: the codes and sklearn's inertia_.
    assign_nearest(centroids.data(), k, d, x, n, codes.data(), dist.data());
    double inertia = 0;
    for (float v : dist) inertia += v;
    best.seconds_assignment += since(t0);
    if (inertia < best.inertia) {
      best.inertia = inertia;
      best.best_restart = r;
      best.centroids = std::move(centroids);
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
