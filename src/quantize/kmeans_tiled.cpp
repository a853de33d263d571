#include <lamia/quantize/detail/kmeans_tiled.hpp>

#if defined(__x86_64__) || defined(__i386__)
#define LAMIA_TILED_KMEANS 1
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lamia::detail {

bool tiled_kmeans_supported() {
#ifdef LAMIA_TILED_KMEANS
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;  // not x86: kmeans() runs the blocked kernels
#endif
}

namespace {
constexpr std::int64_t kTile = 16;     // points per tile: two vectors of 8
constexpr int kGroup = 6;              // Lloyd: centroids per register tile (12 accumulators)
constexpr int kCandidates = 8;         // k-means++: candidates per register tile (8 points each)
constexpr std::int64_t kTilesPerTask = 64;  // 1024 points per OpenMP work item
}  // namespace

PackedPoints::PackedPoints(const float* x, std::int64_t n, std::int64_t d)
    : n_(n), d_(d), data_(new float[static_cast<std::size_t>(((n + kTile - 1) / kTile) * kTile * d)]) {
  // Not zero-filled first (std::vector would, on one thread): the fresh pages fault in on the
  // threads that write them.
  float* out = data_.get();
  const std::int64_t tiles = this->tiles();
#pragma omp parallel for schedule(static)
  for (std::int64_t t = 0; t < tiles; ++t) {
    float* dst = out + t * kTile * d;
    const std::int64_t rows = std::min(kTile, n - t * kTile);
    for (std::int64_t p = 0; p < rows; ++p) {
      const float* src = x + (t * kTile + p) * d;
      for (std::int64_t j = 0; j < d; ++j) dst[j * kTile + p] = src[j];
    }
    for (std::int64_t p = rows; p < kTile; ++p)
      for (std::int64_t j = 0; j < d; ++j) dst[j * kTile + p] = 0.f;
  }
}

#ifdef LAMIA_TILED_KMEANS
namespace {

// Rows of `group` floats per dimension: c (k x d, row-major) as ceil(k / group) tiles of d x group,
// the missing centroids of the last tile zero.
std::vector<float> pack_columns(const float* c, std::int64_t k, std::int64_t d, int group) {
  const std::int64_t tiles = (k + group - 1) / group;
  std::vector<float> out(static_cast<std::size_t>(tiles * group * d), 0.f);
  for (std::int64_t m = 0; m < k; ++m) {
    float* dst = out.data() + (m / group) * group * d + m % group;
    for (std::int64_t j = 0; j < d; ++j) dst[j * group] = c[m * d + j];
  }
  return out;
}

// The 16 points of tile xt against the centroid tiles cp (d x kGroup each): per point the lowest
// max(0, (|x|^2 + |c|^2) - 2 x.c) and its first index. c_norms of missing centroids are +inf.
__attribute__((target("avx2,fma"))) void nearest_tile(const float* xt, std::int64_t d, const float* x_norms16,
                                                      const float* cp, const float* c_norms, std::int64_t groups,
                                                      float* dis16, std::int32_t* arg16) {
  const __m256 zero = _mm256_setzero_ps(), two = _mm256_set1_ps(2.f);
  const __m256 xn[2] = {_mm256_loadu_ps(x_norms16), _mm256_loadu_ps(x_norms16 + 8)};
  __m256 best[2] = {_mm256_set1_ps(HUGE_VALF), _mm256_set1_ps(HUGE_VALF)};
  __m256i arg[2] = {_mm256_set1_epi32(-1), _mm256_set1_epi32(-1)};
  for (std::int64_t g = 0; g < groups; ++g) {
    const float* cg = cp + g * kGroup * d;
    __m256 acc[kGroup][2];
#pragma GCC unroll 6
    for (int c = 0; c < kGroup; ++c) acc[c][0] = acc[c][1] = zero;
    for (std::int64_t j = 0; j < d; ++j) {
      const __m256 x0 = _mm256_loadu_ps(xt + j * kTile), x1 = _mm256_loadu_ps(xt + j * kTile + 8);
#pragma GCC unroll 6
      for (int c = 0; c < kGroup; ++c) {
        const __m256 b = _mm256_broadcast_ss(cg + j * kGroup + c);
        acc[c][0] = _mm256_fmadd_ps(x0, b, acc[c][0]);
        acc[c][1] = _mm256_fmadd_ps(x1, b, acc[c][1]);
      }
    }
#pragma GCC unroll 6
    for (int c = 0; c < kGroup; ++c) {
      const __m256 cn = _mm256_set1_ps(c_norms[g * kGroup + c]);
      const __m256i index = _mm256_set1_epi32(static_cast<int>(g * kGroup + c));
      for (int h = 0; h < 2; ++h) {
        __m256 v = _mm256_sub_ps(_mm256_add_ps(xn[h], cn), _mm256_mul_ps(two, acc[c][h]));
        v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));  // v < 0 ? 0 : v
        const __m256 lower = _mm256_cmp_ps(v, best[h], _CMP_LT_OQ);  // strict: ties to the first
        best[h] = _mm256_blendv_ps(best[h], v, lower);
        arg[h] = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(arg[h]), _mm256_castsi256_ps(index), lower));
      }
    }
  }
  for (int h = 0; h < 2; ++h) {
    _mm256_storeu_ps(dis16 + 8 * h, best[h]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(arg16 + 8 * h), arg[h]);
  }
}

// 8 points (the rows of xt, 16 floats apart) against C candidates (d rows of kCandidates floats):
// the tensor k-means++'s min(min_d2, max(0, (-2 x.c + |x|^2) + |c|^2)) into out[c * stride + 0..8).
template <int C>
__attribute__((target("avx2,fma"))) void candidate_tile(const float* xt, std::int64_t d, const float* cp,
                                                        const float* c_sq, const float* x_sq8, const float* min_d2_8,
                                                        float* out, std::int64_t stride) {
  const __m256 zero = _mm256_setzero_ps(), minus_two = _mm256_set1_ps(-2.f);
  __m256 acc[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) acc[c] = zero;
  for (std::int64_t j = 0; j < d; ++j) {
    const __m256 x = _mm256_loadu_ps(xt + j * kTile);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = _mm256_fmadd_ps(x, _mm256_broadcast_ss(cp + j * kCandidates + c), acc[c]);
  }
  const __m256 xs = _mm256_loadu_ps(x_sq8), md = _mm256_loadu_ps(min_d2_8);
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(acc[c], minus_two), xs), _mm256_set1_ps(c_sq[c]));
    v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    _mm256_storeu_ps(out + c * stride, _mm256_blendv_ps(v, md, _mm256_cmp_ps(md, v, _CMP_LT_OQ)));  // md < v ? md : v
  }
}

// The nearest centroid of 8 points (the rows of xt, 8 floats apart) with l2sq's arithmetic in each
// lane: four partial sums over the dimensions j = 0, 1, 2, 3 mod 4 in order, (s0 + s1) + (s2 + s3),
// ties to the lowest index. No FMA (it would round e * e + s once instead of twice): avx2 only.
__attribute__((target("avx2"))) void nearest_l2sq_tile(const float* xt, std::int64_t d, const float* c,
                                                       std::int64_t k, float* dis8, std::int32_t* arg8) {
  __m256 best = _mm256_set1_ps(HUGE_VALF);
  __m256i arg = _mm256_setzero_si256();
  for (std::int64_t m = 0; m < k; ++m) {
    const float* cm = c + m * d;
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    std::int64_t j = 0;
    for (; j + 4 <= d; j += 4) {
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m256 e = _mm256_sub_ps(_mm256_loadu_ps(xt + (j + q) * 8), _mm256_broadcast_ss(cm + j + q));
        s[q] = _mm256_add_ps(s[q], _mm256_mul_ps(e, e));
      }
    }
    for (; j < d; ++j) {
      const __m256 e = _mm256_sub_ps(_mm256_loadu_ps(xt + j * 8), _mm256_broadcast_ss(cm + j));
      s[0] = _mm256_add_ps(s[0], _mm256_mul_ps(e, e));
    }
    const __m256 v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
    const __m256 lower = _mm256_cmp_ps(v, best, _CMP_LT_OQ);
    best = _mm256_blendv_ps(best, v, lower);
    arg = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(arg),
                                               _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(m))), lower));
  }
  _mm256_storeu_ps(dis8, best);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(arg8), arg);
}

using CandidateTile = void (*)(const float*, std::int64_t, const float*, const float*, const float*, const float*,
                               float*, std::int64_t);
constexpr CandidateTile kCandidateTiles[kCandidates] = {candidate_tile<1>, candidate_tile<2>, candidate_tile<3>,
                                                        candidate_tile<4>, candidate_tile<5>, candidate_tile<6>,
                                                        candidate_tile<7>, candidate_tile<8>};

}  // namespace

void tiled_nearest(const PackedPoints& x, const float* x_norms, const float* c, const float* c_norms,
                   std::int64_t k, std::int64_t* assign, float* dis) {
  const std::int64_t n = x.n(), d = x.dim(), tiles = x.tiles(), groups = (k + kGroup - 1) / kGroup;
  const std::vector<float> cp = pack_columns(c, k, d, kGroup);
  std::vector<float> cn(static_cast<std::size_t>(groups * kGroup), HUGE_VALF);  // missing centroids never win
  std::copy(c_norms, c_norms + k, cn.begin());
#pragma omp parallel for schedule(dynamic, kTilesPerTask)
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t i0 = t * kTile, rows = std::min(kTile, n - i0);
    float xn[kTile] = {}, best[kTile];
    std::int32_t arg[kTile];
    std::copy(x_norms + i0, x_norms + i0 + rows, xn);
    nearest_tile(x.tile(t), d, xn, cp.data(), cn.data(), groups, best, arg);
    for (std::int64_t p = 0; p < rows; ++p) {
      dis[i0 + p] = best[p];
      assign[i0 + p] = arg[p];
    }
  }
}

void tiled_candidate_distances(const PackedPoints& x, const float* c, const float* c_sq, int trials,
                               const float* x_sq, const float* min_d2, float* dist, double* potentials) {
  const std::int64_t n = x.n(), d = x.dim(), tiles = x.tiles();
  const std::int64_t blocks = (tiles + kTilesPerTask - 1) / kTilesPerTask;
  const std::vector<float> cp = pack_columns(c, trials, d, kCandidates);
  std::vector<double> block_sums(static_cast<std::size_t>(blocks * trials));
#pragma omp parallel for schedule(static)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const std::int64_t t1 = std::min(tiles, (blk + 1) * kTilesPerTask);
    for (std::int64_t t = blk * kTilesPerTask; t < t1; ++t) {
      for (std::int64_t h = 0; h < 2; ++h) {
        const std::int64_t i0 = t * kTile + 8 * h, rows = std::min<std::int64_t>(8, n - i0);
        if (rows <= 0) break;
        for (int g = 0; g < trials; g += kCandidates) {
          const int C = std::min(kCandidates, trials - g);
          if (rows == 8) {  // straight into dist
            kCandidateTiles[C - 1](x.tile(t) + 8 * h, d, cp.data() + g * d, c_sq + g, x_sq + i0, min_d2 + i0,
                                   dist + g * n + i0, n);
            continue;
          }
          float xs[8] = {}, md[8] = {}, out[kCandidates * 8];  // the last points: through a buffer
          std::copy(x_sq + i0, x_sq + i0 + rows, xs);
          std::copy(min_d2 + i0, min_d2 + i0 + rows, md);
          kCandidateTiles[C - 1](x.tile(t) + 8 * h, d, cp.data() + g * d, c_sq + g, xs, md, out, 8);
          for (int q = 0; q < C; ++q) std::copy(out + q * 8, out + q * 8 + rows, dist + (g + q) * n + i0);
        }
      }
    }
    // The block's share of each potential while its distances are in cache: four partial sums in
    // point order, in double.
    const std::int64_t i0 = blk * kTilesPerTask * kTile, i1 = std::min(n, t1 * kTile);
    for (int q = 0; q < trials; ++q) {
      const float* row = dist + q * n;
      double part[4] = {0, 0, 0, 0};
      std::int64_t i = i0;
      for (; i + 4 <= i1; i += 4)
        for (int l = 0; l < 4; ++l) part[l] += row[i + l];
      for (; i < i1; ++i) part[0] += row[i];
      block_sums[blk * trials + q] = (part[0] + part[1]) + (part[2] + part[3]);
    }
  }
  for (int q = 0; q < trials; ++q) {  // blocks in order: the same sums on any number of threads
    double total = 0;
    for (std::int64_t blk = 0; blk < blocks; ++blk) total += block_sums[blk * trials + q];
    potentials[q] = total;
  }
}

void tiled_assign_nearest(const float* centroids, std::int64_t k, std::int64_t d, const float* x, std::int64_t n,
                          std::int32_t* codes, float* distances) {
  const std::int64_t tiles = (n + 7) / 8;
#pragma omp parallel
  {
    std::vector<float> xt(static_cast<std::size_t>(8 * d));
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t i0 = t * 8, rows = std::min<std::int64_t>(8, n - i0);
      for (std::int64_t p = 0; p < 8; ++p)
        for (std::int64_t j = 0; j < d; ++j) xt[j * 8 + p] = p < rows ? x[(i0 + p) * d + j] : 0.f;
      float best[8];
      std::int32_t arg[8];
      nearest_l2sq_tile(xt.data(), d, centroids, k, best, arg);
      for (std::int64_t p = 0; p < rows; ++p) {
        codes[i0 + p] = arg[p];
        if (distances) distances[i0 + p] = best[p];
      }
    }
  }
}

#else
namespace {
[[noreturn]] void no_tiled_kernels() {
  throw std::logic_error("the tiled K-Means kernels need an x86 CPU with AVX2 and FMA (tiled_kmeans_supported())");
}
}  // namespace
void tiled_nearest(const PackedPoints&, const float*, const float*, const float*, std::int64_t, std::int64_t*, float*) {
  no_tiled_kernels();
}
void tiled_candidate_distances(const PackedPoints&, const float*, const float*, int, const float*, const float*, float*,
                               double*) {
  no_tiled_kernels();
}
void tiled_assign_nearest(const float*, std::int64_t, std::int64_t, const float*, std::int64_t, std::int32_t*, float*) {
  no_tiled_kernels();
}
#endif

}  // namespace lamia::detail
