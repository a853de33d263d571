// The quantizer's PCA on a sample (pca.max_items): a dense sample is copied out during a first pass
// over all items, a sparse one (at most 1 item in 32) is read alone, in order, before the one pass of
// the projections. Either way the PCA must be the one of exactly the sampled items (checked against
// a direct double-precision eigendecomposition), and every item is still checked and coded.
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/kmeans.hpp>
#include <lamia/quantize/palette_quantizer.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "quantize/quantize_test_util.hpp"

using Catch::Matchers::Contains;

namespace {

// A source over a tensor that records every range it is asked for.
struct RecordingSource {
  torch::Tensor x;
  std::vector<std::pair<std::int64_t, std::int64_t>> reads;
  lamia::PaletteSource source(std::int64_t chunk_items) {
    auto s = lamia::PaletteSource::from_tensor(x);
    s.chunk_items = chunk_items;
    s.read = [this](std::int64_t b, std::int64_t e) {
      reads.emplace_back(b, e);
      return x.narrow(0, b, e - b);
    };
    return s;
  }
};

lamia::PaletteQuantizerOptions sampled_options(std::int64_t max_items) {
  lamia::PaletteQuantizerOptions o;
  o.pca_dim = 5;
  o.kmeans.num_codes = 8;
  o.kmeans.iterations = 10;
  o.pca.max_items = max_items;
  o.pca.random_state = 3;
  return o;
}

}  // namespace

TEST_CASE("a PCA sample is the PCA of the sampled items, read in one pass or alone", "[palette_quantizer][source][sample]") {
  const std::int64_t n = 2000, L = 2, D = 16, chunk = 128;
  const std::int64_t m = GENERATE(std::int64_t(50), std::int64_t(300));  // sparse (<= n / 32), dense
  auto data = lamia::test::clustered_palettes(n, L, D, 12, 77, 0.3);
  RecordingSource rec{data.x};
  lamia::PaletteQuantizer q(sampled_options(m));
  const auto report = q.fit(rec.source(chunk));
  CHECK(report.pca_items == m);

  std::mt19937_64 rng(3);
  const auto picks = lamia::detail::sample_indices(n, m, rng);
  std::vector<std::pair<std::int64_t, std::int64_t>> chunks;
  for (std::int64_t b = 0; b < n; b += chunk) chunks.emplace_back(b, std::min(n, b + chunk));
  if (m * 32 <= n) {
    // Sparse: runs of consecutive picks covering exactly the sample, in order, then every chunk once.
    std::vector<std::int64_t> sampled_items;
    std::size_t r = 0;
    for (; r < rec.reads.size() && static_cast<std::int64_t>(sampled_items.size()) < m; ++r) {
      for (auto i = rec.reads[r].first; i < rec.reads[r].second; ++i) sampled_items.push_back(i);
    }
    CHECK(sampled_items == picks);
    CHECK(std::vector<std::pair<std::int64_t, std::int64_t>>(rec.reads.begin() + static_cast<std::ptrdiff_t>(r),
                                                             rec.reads.end()) == chunks);
  } else {
    // Dense: every chunk twice (the check with the sample's copy, the projections).
    auto twice = chunks;
    twice.insert(twice.end(), chunks.begin(), chunks.end());
    CHECK(rec.reads == twice);
  }

  // Each position's PCA is the PCA of the sampled items (double-precision eigendecomposition).
  const auto index = torch::tensor(picks, torch::kLong);
  for (std::int64_t j = 0; j < L; ++j) {
    const auto rows = data.x.select(1, j).index_select(0, index).to(torch::kFloat64);
    const auto mean = rows.mean(0);
    const auto centred = rows - mean;
    const auto cov = torch::mm(centred.t(), centred) / double(m - 1);
    const auto [values, vectors] = torch::linalg_eigh(cov);  // ascending
    const auto top = values.flip(0).narrow(0, 0, 5);
    const auto& pca = q.pca(j);
    for (std::int64_t i = 0; i < 5; ++i) CHECK(pca.explained_variance[std::size_t(i)] == Approx(top[i].item<double>()).epsilon(1e-5));
    const auto ours_mean = torch::tensor(pca.mean, torch::kFloat32).to(torch::kFloat64);
    CHECK((ours_mean - mean).abs().max().item<double>() < 1e-5);
    // The same subspace: the projectors onto the top 5 directions agree.
    const auto ref = vectors.flip(1).narrow(1, 0, 5);                                    // D x 5
    const auto ours = torch::tensor(pca.components, torch::kFloat32).view({5, D}).to(torch::kFloat64);  // 5 x D
    const auto diff = (torch::mm(ours.t(), ours) - torch::mm(ref, ref.t())).abs().max().item<double>();
    INFO("position " << j << ": max |P_ours - P_ref| " << diff);
    CHECK(diff < 1e-4);
  }
  // Every item is projected and coded with that PCA.
  CHECK(q.training_codes().size(0) == n);
  CHECK(torch::equal(q.encode(data.x), q.training_codes()));

  // Without a sample: two passes over all items (means with covariances, projections).
  RecordingSource all{data.x};
  lamia::PaletteQuantizer exact(sampled_options(0));
  exact.fit(all.source(chunk));
  std::int64_t items_read = 0;
  for (const auto& [b, e] : all.reads) items_read += e - b;
  CHECK(items_read == 2 * n);
}

TEST_CASE("with a PCA sample every item is still checked for NaN and inf", "[palette_quantizer][source][sample][errors]") {
  const std::int64_t n = 1000;
  const std::int64_t m = GENERATE(std::int64_t(30), std::int64_t(100));  // sparse, dense
  std::mt19937_64 rng(3);
  const auto picks = lamia::detail::sample_indices(n, m, rng);
  std::int64_t outside = 0;  // an item the sample does not hold
  while (std::binary_search(picks.begin(), picks.end(), outside)) ++outside;
  for (const std::int64_t bad : {picks[37], outside}) {
    auto data = lamia::test::clustered_palettes(n, 2, 12, 10, 78);
    data.x[bad][1][3] = std::numeric_limits<float>::quiet_NaN();
    RecordingSource rec{data.x};
    lamia::PaletteQuantizer q(sampled_options(m));
    REQUIRE_THROWS_WITH(q.fit(rec.source(64)), Contains(fmt::format("item {} ", bad)) && Contains("position 1") &&
                                                   Contains("dimension 3"));
    CHECK_FALSE(q.fitted());
  }
}

TEST_CASE("check_finite finds every inf and NaN and passes every finite value", "[kmeans][errors]") {
  const std::int64_t rows = 6, D = 19;  // rows not a multiple of a vector width
  std::vector<float> x(std::size_t(rows * D), 1.0f);
  x[3] = std::numeric_limits<float>::max();
  x[4] = -std::numeric_limits<float>::max();
  x[5] = std::numeric_limits<float>::denorm_min();
  x[6] = -0.0f;
  REQUIRE_NOTHROW(lamia::check_finite(x.data(), rows, D, "t"));
  for (const float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()}) {
    for (const std::int64_t at : {std::int64_t(0), std::int64_t(D - 1), std::int64_t(4 * D + 7), rows * D - 1}) {
      auto y = x;
      y[std::size_t(at)] = bad;
      INFO("value " << bad << " at " << at);
      REQUIRE_THROWS_WITH(lamia::check_finite(y.data(), rows, D, "t", 2, 10),
                          Contains(fmt::format("item {} ", 10 + at / D / 2)) &&
                              Contains(fmt::format("position {}, dimension {}", at / D % 2, at % D)));
    }
  }
}
