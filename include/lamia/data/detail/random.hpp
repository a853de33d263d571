#pragma once
// Random helpers whose results are fixed by their algorithm, not by the
// standard library: std::uniform_int_distribution and std::shuffle differ
// between libstdc++, libc++ and MSVC, and our splits and synthetic catalogs
// must be identical everywhere for a given seed.
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace lamia::detail {

/// One step of SplitMix64 (Steele et al. 2014): a bijective 64-bit mixer.
inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// A tiny counter-based generator (SplitMix64 stream). Used where one
/// independent stream per item or per user is needed: seeding an
/// std::mt19937_64 costs ~600 word operations, too many per item for
/// million-item catalogs. Satisfies UniformRandomBitGenerator.
class SplitMix64 {
 public:
  using result_type = std::uint64_t;
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  /// The stream for (seed, domain, index): streams for different triples are unrelated.
  static SplitMix64 stream(std::uint64_t seed, std::uint64_t domain, std::uint64_t index) noexcept {
    return SplitMix64(splitmix64(splitmix64(seed ^ splitmix64(domain)) + index));
  }
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }
  result_type operator()() noexcept {
    state_ += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

/// Uniform integer in [0, n) by rejection (no modulo bias); n must be > 0.
template <class Rng>
std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  static_assert(Rng::min() == 0 && Rng::max() == std::numeric_limits<std::uint64_t>::max(),
                "uniform_index needs a full 64-bit generator");
  // Accept r < limit, where limit is the largest multiple of n that fits.
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t r = rng();
  while (r >= limit) r = rng();
  return r % n;
}

/// Uniform double in [0, 1) from the top 53 bits.
template <class Rng>
double uniform_unit(Rng& rng) {
  return double(rng() >> 11) * (1.0 / 9007199254740992.0);
}

/// Fisher-Yates (Durstenfeld): position i swaps with a uniform j in [0, i].
template <class T, class Rng>
void fisher_yates(std::vector<T>& values, Rng& rng) {
  for (std::size_t i = values.size(); i > 1; --i) {
    auto j = std::size_t(uniform_index(rng, i));
    using std::swap;
    swap(values[i - 1], values[j]);
  }
}

}  // namespace lamia::detail
