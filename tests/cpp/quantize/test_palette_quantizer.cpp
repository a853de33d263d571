// PaletteQuantizer and K-Means: fitting, encoding, persistence, bad input.
#include <lamia/core/errors.hpp>
#include <lamia/quantize/kmeans.hpp>
#include <lamia/quantize/palette_quantizer.hpp>
#include <lamia/quantize/residual_kmeans.hpp>
#include <lamia/palette/palette_file.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "quantize/quantize_test_util.hpp"

using lamia::PaletteQuantizer;
using lamia::PaletteQuantizerOptions;
using Catch::Matchers::Contains;

namespace {
PaletteQuantizerOptions small_options() {
  PaletteQuantizerOptions o;
  o.pca_dim = 8;
  o.kmeans.num_codes = 16;
  o.kmeans.iterations = 20;
  o.kmeans.seed = 3;
  return o;
}
}  // namespace

TEST_CASE("k-means objective never increases across iterations", "[kmeans]") {
  const auto init = GENERATE(lamia::KMeansInit::kPlusPlus, lamia::KMeansInit::kRandom);
  const auto d = GENERATE(2, 7, 16);
  auto x = torch::randn({600, d}, at::make_generator<at::CPUGeneratorImpl>(11));
  lamia::KMeansOptions o;
  o.num_codes = 12;
  o.iterations = 30;
  o.restarts = 3;
  o.init = init;
  auto km = lamia::kmeans(x.data_ptr<float>(), 600, d, o);
  REQUIRE(km.objective.size() == 3);
  for (const auto& run : km.objective) {
    REQUIRE(run.size() == 30);
    for (std::size_t i = 1; i < run.size(); ++i) {
      INFO("iteration " << i << ": " << run[i - 1] << " -> " << run[i]);
      CHECK(run[i] <= run[i - 1] * (1 + 1e-6));
    }
  }
  // The kept restart is the best one, and its inertia is the final objective or lower.
  for (const auto& run : km.objective) CHECK(km.inertia <= run.back() * (1 + 1e-5));
  CHECK(km.inertia > 0);
}

TEST_CASE("k-means recovers well separated clusters", "[kmeans]") {
  auto data = lamia::test::clustered_palettes(400, 1, 6, 5, 21, 0.01);
  auto x = data.x.select(1, 0).contiguous();
  lamia::KMeansOptions o;
  o.num_codes = 5;
  o.restarts = 3;
  auto km = lamia::kmeans(x.data_ptr<float>(), 400, 6, o);
  // Same partition as the labels (up to renaming): each code maps to one label.
  std::map<int, std::set<std::int64_t>> labels_of_code;
  for (int i = 0; i < 400; ++i) labels_of_code[km.assignment[i]].insert(data.labels[i][0].item<std::int64_t>());
  for (auto& [code, labels] : labels_of_code) CHECK(labels.size() == 1);
}

TEST_CASE("encoding the training vectors reproduces the fitted codes", "[palette_quantizer]") {
  const bool shared = GENERATE(false, true);
  const bool no_pca = GENERATE(false, true);
  if (shared && no_pca) return;
  auto data = lamia::test::clustered_palettes(300, 3, 12, 10, 5);
  auto o = small_options();
  o.shared_pca = shared;
  o.no_pca = no_pca;
  PaletteQuantizer q(o);
  auto report = q.fit(data.x);
  CHECK(report.positions.size() == 3);
  CHECK(q.reduced_dim() == (no_pca ? 12 : 8));
  auto codes = q.encode(data.x);
  CHECK(torch::equal(codes, q.training_codes()));
  CHECK(codes.min().item<std::int64_t>() >= 0);
  CHECK(codes.max().item<std::int64_t>() < 16);
  for (const auto& p : report.positions) {
    CHECK(p.num_codes == 16);
    CHECK(p.used_codes > 8);
    if (!no_pca) {
      CHECK(p.explained_variance_ratio.size() == 8);
      CHECK(p.explained_variance_ratio_total > 0.5);
      CHECK(p.explained_variance_ratio_total <= 1.0 + 1e-9);
      CHECK(std::is_sorted(p.explained_variance_ratio.rbegin(), p.explained_variance_ratio.rend()));
    }
  }
  // A subset encodes to the same codes as in the batch.
  CHECK(torch::equal(q.encode(data.x.narrow(0, 17, 5).contiguous()), codes.narrow(0, 17, 5)));
}

TEST_CASE("save then load then encode gives identical codes", "[palette_quantizer]") {
  auto data = lamia::test::clustered_palettes(200, 2, 10, 6, 8);
  PaletteQuantizer q(small_options());
  q.fit(data.x);
  const auto path = lamia::test::temp_path("quantizer_roundtrip.bin");
  q.save(path);
  auto r = PaletteQuantizer::load(path);
  CHECK(r.num_positions() == 2);
  CHECK(r.input_dim() == 10);
  CHECK(r.codebook_sizes() == q.codebook_sizes());
  CHECK(torch::equal(r.encode(data.x), q.encode(data.x)));
  CHECK(torch::equal(r.centroids(1), q.centroids(1)));
  CHECK(r.pca(0).components == q.pca(0).components);
  auto fresh = lamia::test::clustered_palettes(50, 2, 10, 6, 99);
  CHECK(torch::equal(r.encode(fresh.x), q.encode(fresh.x)));
}

TEST_CASE("the same seed gives an identical table", "[palette_quantizer]") {
  auto data = lamia::test::clustered_palettes(250, 3, 10, 40, 4, 0.5);
  PaletteQuantizer a(small_options()), b(small_options());
  a.fit(data.x);
  b.fit(data.x);
  CHECK(a.table() == b.table());
  CHECK(a.centroids(2).equal(b.centroids(2)));
  auto o = small_options();
  o.kmeans.seed = 4;
  PaletteQuantizer c(o);
  c.fit(data.x);
  CHECK_FALSE(c.centroids(0).equal(a.centroids(0)));  // the seed matters
}

TEST_CASE("collisions are resolved with an index token", "[palette_quantizer]") {
  // 3 clusters per position, 2 positions: at most 9 distinct code pairs for 120 items.
  auto data = lamia::test::clustered_palettes(120, 2, 6, 3, 12, 0.01);
  auto o = small_options();
  o.pca_dim = 4;
  o.kmeans.num_codes = 3;
  PaletteQuantizer q(o);
  auto report = q.fit(data.x);
  auto t = q.table();
  CHECK(report.num_colliding_items == 120);
  CHECK(t.num_colliding_items() == 120);
  CHECK(t.id_length() == 3);
  std::set<std::vector<std::int32_t>> seen;
  for (int i = 0; i < 120; ++i) {
    auto id = t.id(i);
    CHECK(seen.insert(id).second);
    CHECK(t.item(id) == i);
  }
}

TEST_CASE("a NaN or inf vector is rejected with its item index", "[palette_quantizer][errors]") {
  auto data = lamia::test::clustered_palettes(100, 2, 8, 4, 1);
  const float bad = GENERATE(std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity());
  data.x[37][1][3] = bad;
  PaletteQuantizer q(small_options());
  REQUIRE_THROWS_AS(q.fit(data.x), lamia::ValueError);
  REQUIRE_THROWS_WITH(q.fit(data.x), Contains("item 37") && Contains("position 1") && Contains("dimension 3"));
  auto clean = lamia::test::clustered_palettes(100, 2, 8, 4, 1);
  q.fit(clean.x);
  REQUIRE_THROWS_WITH(q.encode(data.x), Contains("item 37"));
}

TEST_CASE("fewer items than k: an error, or k reduced when asked", "[palette_quantizer][errors]") {
  auto data = lamia::test::clustered_palettes(10, 2, 8, 4, 1);
  auto o = small_options();
  o.pca_dim = 4;
  PaletteQuantizer q(o);
  REQUIRE_THROWS_WITH(q.fit(data.x), Contains("at least num_codes = 16 items, got 10"));
  o.reduce_k_when_few_items = true;
  PaletteQuantizer r(o);
  auto report = r.fit(data.x);
  CHECK(report.positions[0].num_codes == 10);
  CHECK(r.codebook_sizes() == std::vector<std::int64_t>{10, 10});
}

TEST_CASE("pca_dim larger than the palette dimension is rejected", "[palette_quantizer][errors]") {
  auto data = lamia::test::clustered_palettes(100, 2, 6, 4, 1);
  PaletteQuantizer q(small_options());  // d = 8 > D = 6
  REQUIRE_THROWS_AS(q.fit(data.x), lamia::ValueError);
  REQUIRE_THROWS_WITH(q.fit(data.x), Contains("pca_dim (d) must be <= the palette dimension D = 6, got 8"));
}

TEST_CASE("encode rejects a palette of another shape", "[palette_quantizer][errors]") {
  auto data = lamia::test::clustered_palettes(100, 2, 10, 4, 1);
  PaletteQuantizer q(small_options());
  q.fit(data.x);
  auto wrong_dim = torch::randn({5, 2, 11});
  REQUIRE_THROWS_WITH(q.encode(wrong_dim), Contains("m x 2 x 10 (as fitted), got 5 x 2 x 11"));
  auto wrong_positions = torch::randn({5, 3, 10});
  REQUIRE_THROWS_AS(q.encode(wrong_positions), lamia::ValueError);
  REQUIRE_THROWS_AS(q.encode(torch::randn({5, 2, 10}, torch::kFloat64)), c10::ValueError);
  PaletteQuantizer unfitted(small_options());
  REQUIRE_THROWS_WITH(unfitted.encode(data.x), Contains("not fitted"));
}

TEST_CASE("corrupted quantizer files are rejected", "[palette_quantizer][errors]") {
  auto data = lamia::test::clustered_palettes(100, 2, 10, 4, 1);
  PaletteQuantizer q(small_options());
  q.fit(data.x);
  const auto good = lamia::test::temp_path("quantizer_good.bin");
  q.save(good);
  const std::string bytes = lamia::test::read_bytes(good);
  const auto bad = lamia::test::temp_path("quantizer_bad.bin");
  auto expect_error = [&](const std::string& content, const std::string& what) {
    lamia::test::write_bytes(bad, content);
    REQUIRE_THROWS_AS(PaletteQuantizer::load(bad), lamia::ValueError);
    REQUIRE_THROWS_WITH(PaletteQuantizer::load(bad), Contains(bad.string()) && Contains(what));
  };
  SECTION("truncated") { expect_error(bytes.substr(0, bytes.size() - 100), "truncated"); }
  SECTION("truncated in the header") { expect_error(bytes.substr(0, 20), "truncated"); }
  SECTION("bad magic") {
    auto b = bytes;
    b[0] = 'X';
    expect_error(b, "bad magic");
  }
  SECTION("wrong version") {
    auto b = bytes;
    b[8] = 9;
    expect_error(b, "unsupported lamia palette quantizer format version 9");
  }
  SECTION("inconsistent sizes") {
    auto b = bytes;
    b[16] = static_cast<char>(b[16] + 1);  // input_dim 10 -> 11: the data no longer fits
    expect_error(b, "header promises");
  }
  SECTION("flipped data byte") {
    auto b = bytes;
    b[b.size() / 2] = static_cast<char>(~b[b.size() / 2]);
    expect_error(b, "checksum mismatch");
  }
  SECTION("missing file") { REQUIRE_THROWS_AS(PaletteQuantizer::load(lamia::test::temp_path("nope.bin")), lamia::IOError); }
}

namespace {
// A reader in the shape of PaletteFileReader: copies of ranges of an in-memory tensor.
struct CopyingReader {
  torch::Tensor x;
  mutable int reads = 0;
  std::int64_t num_items() const { return x.size(0); }
  std::int64_t palette_size() const { return x.size(1); }
  std::int64_t dim() const { return x.size(2); }
  void read_into(std::int64_t begin, std::int64_t end, float* out) const {
    ++reads;
    torch::from_blob(out, {end - begin, x.size(1), x.size(2)}).copy_(x.narrow(0, begin, end - begin));
  }
};
}  // namespace

TEST_CASE("fitting from a chunked source gives the in-memory quantizer", "[palette_quantizer][source]") {
  auto data = lamia::test::clustered_palettes(500, 3, 12, 16, 41);
  const bool shared = GENERATE(false, true);
  auto o = small_options();
  o.shared_pca = shared;
  PaletteQuantizer in_memory(o), whole_chunk(o), streamed(o);
  in_memory.fit(data.x);
  CopyingReader reader{data.x};
  // One chunk holding every item: the same arithmetic, so the same bits.
  whole_chunk.fit(lamia::PaletteSource::from_reader(reader, 4096));
  CHECK(reader.reads == 2);  // means with covariances, projections
  CHECK(torch::equal(whole_chunk.training_codes(), in_memory.training_codes()));
  for (std::int64_t j = 0; j < 3; ++j) CHECK(torch::equal(whole_chunk.centroids(j), in_memory.centroids(j)));
  // Chunks of 7 items: sums in another order, so equal up to rounding.
  reader.reads = 0;
  auto report = streamed.fit(lamia::PaletteSource::from_reader(reader, 7));
  CHECK(reader.reads == 2 * ((500 + 6) / 7));
  CHECK(report.num_items == 500);
  CHECK(torch::equal(streamed.training_codes(), in_memory.training_codes()));
  for (std::int64_t j = 0; j < 3; ++j) {
    // Relative to the centroids' scale, not per coordinate: a coordinate near 0 in the rotated PCA
    // space carries the rounding of the whole projection (seen: 3.6e-5 where max |c| = 4.3).
    const double diff = (streamed.centroids(j) - in_memory.centroids(j)).abs().max().item<double>();
    const double scale = in_memory.centroids(j).abs().max().item<double>();
    INFO("position " << j << " shared " << shared << ": max |diff| " << diff << ", max |c| " << scale);
    CHECK(diff <= 1e-4 * scale);
    const auto& a = streamed.pca(j);
    const auto& b = in_memory.pca(j);
    for (std::size_t i = 0; i < a.explained_variance.size(); ++i) {
      CHECK(a.explained_variance[i] == Approx(b.explained_variance[i]).epsilon(1e-6));
    }
  }
  // Each position's PCA is fitted on that position's vectors only (or on all of them, shared).
  for (std::int64_t j = 0; j < 3; ++j) {
    auto rows = shared ? data.x.reshape({-1, 12}).contiguous() : data.x.select(1, j).contiguous();
    auto alone = lamia::fit_pca(rows.data_ptr<float>(), rows.size(0), 12, 8);
    for (std::size_t i = 0; i < alone.explained_variance.size(); ++i) {
      CHECK(streamed.pca(j).explained_variance[i] == Approx(alone.explained_variance[i]).epsilon(1e-6));
    }
  }
  // Encoding from a source equals encoding the tensor, whatever the chunk size.
  CHECK(torch::equal(streamed.encode(lamia::PaletteSource::from_reader(reader, 33)), streamed.encode(data.x)));
}

// A palette file read through its map: the chunks are the mapped floats themselves (no copy) when
// they are aligned, copies out of the map when not, and pread copies when asked; all fit the same.
TEST_CASE("a mapped palette file fits as the pread one, with or without a copy", "[palette_quantizer][source]") {
  auto data = lamia::test::clustered_palettes(400, 2, 12, 16, 43);
  std::vector<std::string> aligned_ids, odd_ids;  // floats at 40 + 400 * 8 (aligned), 40 + 400 * 5 + 1
  for (int i = 0; i < 400; ++i) {
    aligned_ids.push_back(fmt::format("{:04d}", i));
    odd_ids.push_back(i == 0 ? "ab" : "a");
  }
  const auto aligned = lamia::test::temp_path("mapped_aligned.bin"), odd = lamia::test::temp_path("mapped_odd.bin");
  lamia::save_palettes(aligned, aligned_ids, data.x);
  lamia::save_palettes(odd, odd_ids, data.x);
  PaletteQuantizer in_memory(small_options());
  in_memory.fit(data.x);
  for (const auto& [path, access, copies] :
       {std::tuple{aligned, lamia::PaletteFileAccess::kMapped, false}, std::tuple{odd, lamia::PaletteFileAccess::kMapped, true},
        std::tuple{aligned, lamia::PaletteFileAccess::kPread, true}}) {
    INFO(path.filename().string() << (access == lamia::PaletteFileAccess::kPread ? " pread" : " mapped"));
    lamia::PaletteFileReader reader(path, true, access);
    const auto source = lamia::PaletteSource::from_reader(reader, 64);
    const auto chunk = source.read(64, 128);
    CHECK((chunk.data_ptr<float>() == reader.view(64, 128)) == !copies);
    CHECK(torch::equal(chunk, data.x.narrow(0, 64, 64)));
    PaletteQuantizer q(small_options());
    q.fit(source);
    CHECK(torch::equal(q.training_codes(), in_memory.training_codes()));
    for (std::int64_t j = 0; j < 2; ++j) CHECK(torch::allclose(q.centroids(j), in_memory.centroids(j), 1e-4, 1e-4));
    CHECK(torch::equal(q.encode(source), q.training_codes()));
  }
  std::filesystem::remove(aligned);
  std::filesystem::remove(odd);
}

namespace {
// A reader with prefetch(): records the ranges asked for (from the read-ahead thread), optionally
// sleeping in each, and counts the prefetches running at once. Reads through `inner` (a tensor
// copy, or a PaletteFileReader).
template <class Inner>
struct PrefetchRecorder {
  const Inner& inner;
  std::chrono::milliseconds delay{0};
  mutable std::mutex mutex;
  mutable std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  mutable std::atomic<int> running{0}, most_running{0}, finished{0};
  std::int64_t num_items() const { return inner.num_items(); }
  std::int64_t palette_size() const { return inner.palette_size(); }
  std::int64_t dim() const { return inner.dim(); }
  void read_into(std::int64_t begin, std::int64_t end, float* out) const { inner.read_into(begin, end, out); }
  void prefetch(std::int64_t begin, std::int64_t end) const {
    const int now = ++running;
    for (int m = most_running; now > m && !most_running.compare_exchange_weak(m, now);) {
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      ranges.emplace_back(begin, end);
    }
    std::this_thread::sleep_for(delay);
    if constexpr (std::is_same_v<Inner, lamia::PaletteFileReader>) inner.prefetch(begin, end);
    --running;
    ++finished;
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> recorded() const {
    std::lock_guard<std::mutex> lock(mutex);
    return ranges;
  }
};
using Range = std::pair<std::int64_t, std::int64_t>;
}  // namespace

TEST_CASE("reading ahead: the next chunks, clipped to the items, one prefetch at a time",
          "[palette_quantizer][source][read_ahead]") {
  auto data = lamia::test::clustered_palettes(10, 2, 3, 4, 44);
  CopyingReader copies{data.x};
  PrefetchRecorder<CopyingReader> reader{copies};
  SECTION("two chunks ahead of each sequential read, never past the last item") {
    auto source = lamia::PaletteSource::from_reader(reader, 4, 2);
    for (int pass = 0; pass < 2; ++pass) {
      for (std::int64_t b = 0; b < 10; b += 4) CHECK(torch::equal(source.read(b, std::min<std::int64_t>(10, b + 4)),
                                                                  data.x.narrow(0, b, std::min<std::int64_t>(10, b + 4) - b)));
    }
    source = {};  // joins
    CHECK(reader.recorded() == std::vector<Range>{{4, 10}, {4, 10}});
  }
  SECTION("one chunk ahead") {
    auto source = lamia::PaletteSource::from_reader(reader, 4, 1);
    for (std::int64_t b = 0; b < 10; b += 4) source.read(b, std::min<std::int64_t>(10, b + 4));
    source = {};
    CHECK(reader.recorded() == std::vector<Range>{{4, 8}, {8, 10}});
  }
  SECTION("reads that jump (a sparse sample) are not read ahead; a run that continues is") {
    auto source = lamia::PaletteSource::from_reader(reader, 4, 2);
    source.read(3, 4);   // jumps
    source.read(6, 7);   // jumps
    source.read(7, 8);   // continues: [8, 10), clipped
    source.read(9, 10);  // jumps
    source = {};
    CHECK(reader.recorded() == std::vector<Range>{{8, 10}});
  }
  SECTION("read_ahead_chunks = 0: none") {
    auto source = lamia::PaletteSource::from_reader(reader, 4, 0);
    for (std::int64_t b = 0; b < 10; b += 4) source.read(b, std::min<std::int64_t>(10, b + 4));
    source = {};
    CHECK(reader.recorded().empty());
  }
  SECTION("a fit: every prefetch inside the items, and each pass prefetches each later chunk once") {
    auto big = lamia::test::clustered_palettes(300, 2, 12, 16, 45);
    CopyingReader big_copies{big.x};
    PrefetchRecorder<CopyingReader> r{big_copies};
    PaletteQuantizer q(small_options());
    q.fit(lamia::PaletteSource::from_reader(r, 7, 3));
    const auto ranges = r.recorded();
    std::int64_t items = 0;
    for (const auto& [b, e] : ranges) {
      CHECK(0 <= b);
      CHECK(b < e);
      CHECK(e <= 300);
      items += e - b;
    }
    CHECK(items == 2 * (300 - 7));  // two passes (means with covariances, projections), all but the first chunk
    CHECK(r.most_running.load() == 1);
  }
}

TEST_CASE("reading ahead: the prefetch thread is joined before the next and when the source is destroyed",
          "[palette_quantizer][source][read_ahead]") {
  auto data = lamia::test::clustered_palettes(12, 2, 3, 4, 46);
  CopyingReader copies{data.x};
  PrefetchRecorder<CopyingReader> reader{copies, std::chrono::milliseconds(150)};
  {
    auto source = lamia::PaletteSource::from_reader(reader, 4, 1);
    source.read(0, 4);  // prefetch [4, 8) starts
    source.read(4, 8);  // waits for it, then prefetch [8, 12)
    CHECK(reader.finished.load() == 1);
    const auto copy = source;  // copies share the thread: destroying one does not join
  }  // destroyed in the middle of the pass: joins the prefetch of [8, 12)
  CHECK(reader.finished.load() == 2);
  CHECK(reader.running.load() == 0);
  CHECK(reader.most_running.load() == 1);
  CHECK(reader.recorded() == std::vector<Range>{{4, 8}, {8, 12}});
}

TEST_CASE("reading ahead changes no bit of a fit or an encoding from a palette file",
          "[palette_quantizer][source][read_ahead]") {
  auto data = lamia::test::clustered_palettes(600, 3, 12, 16, 47);
  std::vector<std::string> ids;
  for (int i = 0; i < 600; ++i) ids.push_back(fmt::format("{:04d}", i));
  const auto path = lamia::test::temp_path("read_ahead.bin");
  lamia::save_palettes(path, ids, data.x);
  const auto access = GENERATE(lamia::PaletteFileAccess::kPread, lamia::PaletteFileAccess::kMapped);
  INFO((access == lamia::PaletteFileAccess::kPread ? "pread" : "mapped"));
  lamia::PaletteFileReader file(path, true, access);
  PaletteQuantizer without(small_options());
  without.fit(lamia::PaletteSource::from_reader(file, 50, 0));
  const auto codes = without.encode(lamia::PaletteSource::from_reader(file, 50, 0));
  for (const std::int64_t ahead : {1, 2, 100}) {
    INFO("read ahead " << ahead);
    PrefetchRecorder<lamia::PaletteFileReader> reader{file};
    PaletteQuantizer with(small_options());
    {
      const auto source = lamia::PaletteSource::from_reader(reader, 50, ahead);
      with.fit(source);
      CHECK(torch::equal(with.training_codes(), without.training_codes()));
      for (std::int64_t j = 0; j < 3; ++j) CHECK(torch::equal(with.centroids(j), without.centroids(j)));
      CHECK(torch::equal(with.encode(source), codes));
    }  // the last prefetch joined
    CHECK(reader.recorded().size() >= 3);  // fit (2 passes) and encode were read ahead
    // PaletteFileReader itself, with PaletteFileReader::prefetch.
    PaletteQuantizer direct(small_options());
    direct.fit(lamia::PaletteSource::from_reader(file, 50, ahead));
    CHECK(torch::equal(direct.training_codes(), without.training_codes()));
  }
}

TEST_CASE("a chunked source reports bad input with the item's index in the whole catalog",
          "[palette_quantizer][source][errors]") {
  auto data = lamia::test::clustered_palettes(300, 2, 10, 16, 42);
  data.x[251][1][4] = std::numeric_limits<float>::infinity();
  CopyingReader reader{data.x};
  PaletteQuantizer q(small_options());
  REQUIRE_THROWS_WITH(q.fit(lamia::PaletteSource::from_reader(reader, 50)),
                      Contains("item 251") && Contains("position 1") && Contains("dimension 4"));
  // A source whose read returns the wrong shape is named, not trusted.
  auto bad = lamia::PaletteSource::from_tensor(data.x);
  bad.read = [](std::int64_t b, std::int64_t e) { return torch::zeros({e - b, 2, 9}); };
  REQUIRE_THROWS_WITH(q.fit(bad), Contains("items [0, 300)") && Contains("expected a [300, 2, 10] float32"));
  bad.read = nullptr;
  REQUIRE_THROWS_WITH(q.fit(bad), Contains("no read function"));
}

TEST_CASE("quantizer options hold their K-Means options: one JSON sub-object with its own key path", "[palette_quantizer][options]") {
  PaletteQuantizerOptions o;
  o.kmeans.num_codes = 32;
  o.kmeans.init = lamia::KMeansInit::kRandom;
  const nlohmann::json j = o;
  CHECK(j["kmeans"]["num_codes"] == 32);
  CHECK(j["kmeans"]["init"] == "random");
  CHECK(j.get<PaletteQuantizerOptions>().kmeans.num_codes == 32);
  CHECK(nlohmann::json(lamia::ResidualKMeansOptions{})["kmeans"] == nlohmann::json(lamia::KMeansOptions{}));
  auto parse = [](const char* text) { return nlohmann::json::parse(text).get<PaletteQuantizerOptions>(); };
  REQUIRE_THROWS_WITH(parse(R"({"num_codes": 8})"), Contains("unknown key 'num_codes'") && Contains("kmeans"));
  REQUIRE_THROWS_WITH(parse(R"({"kmeans": {"num_codes": 0}})"),
                      Contains("PaletteQuantizerOptions: key 'kmeans.num_codes': expected a value >= 1"));
  REQUIRE_THROWS_WITH(parse(R"({"kmeans": {"init": "kmeans--"}})"),
                      Contains("key 'kmeans.init': expected one of 'k-means++', 'random', got 'kmeans--'"));
  REQUIRE_THROWS_WITH(parse(R"({"kmeans": {"iterations": 3000000000}})"), Contains("key 'kmeans.iterations'"));
}

TEST_CASE("the fit report's JSON keys are its fields", "[palette_quantizer][options]") {
  auto data = lamia::test::clustered_palettes(100, 2, 12, 4, 3);
  PaletteQuantizer q(small_options());
  const auto j = q.fit(data.x).to_json();
  CHECK(j["num_items"] == 100);
  CHECK(j["positions"].size() == 2);
  CHECK(j["positions"][0].contains("explained_variance_ratio_total"));
  CHECK(j["positions"][0]["kmeans_fit_points"] == 100);
  CHECK(j["pca_items"] == 100);
  CHECK(j.size() == 9);
  // fit()'s phases: the exact solver's, each timed once at least.
  for (const char* phase : {"read", "check_and_mean", "covariance", "eigenpairs", "projection", "kmeans_seeding",
                            "kmeans_iterations", "kmeans_assignment", "table"}) {
    CHECK(j["phase_seconds"].contains(phase));
  }
  CHECK(!j["phase_seconds"].contains("power_iterations"));
}
