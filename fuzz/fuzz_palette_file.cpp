// libFuzzer target: a palette file (palettes.bin, include/lamia/palette/palette_file.hpp), read by
// PaletteFileReader through pread and through the map (header, shape, ids, checksum, every read
// path) and by load_palettes. The input is the file; it is read once as it is and once with its
// trailing crc32 made right, so that mutations reach the fields the checksum guards.
#include "fuzz_torch.hpp"

#include <lamia/palette/palette_file.hpp>

namespace {

using namespace lamia::fuzz;
using lamia::PaletteFileAccess;
using lamia::PaletteFileReader;

void check_reader(const PaletteFileReader& r) {
  const auto n = r.num_items(), L = r.palette_size(), D = r.dim();
  if (n < 0 || L < 1 || D < 1) fail("a negative or empty shape");
  if (std::int64_t(r.item_ids().size()) != n) fail("item_ids() does not have num_items() ids");
  // Every read path, over the whole file and over a part.
  const auto all = r.read(0, n);
  if (all.sizes() != torch::IntArrayRef({n, L, D}) || all.scalar_type() != torch::kFloat32)
    fail("read() does not give [n, L, D] float32");
  std::vector<float> buf(std::size_t(n * L * D));
  r.read_into(0, n, buf.data());
  if (n > 0 && std::memcmp(buf.data(), all.data_ptr<float>(), buf.size() * sizeof(float)) != 0)
    fail("read_into() and read() differ");
  if (const float* v = r.view(0, n); v && n > 0 && std::memcmp(v, buf.data(), buf.size() * sizeof(float)) != 0)
    fail("view() and read() differ");
  if (n > 0 && tensor_bytes(r.read(n / 2, n)) != tensor_bytes(all.slice(0, n / 2, n)))
    fail("read() of a part differs from the same part of the whole");
  r.release(0, n);
  for (auto [b, e] : {std::pair<std::int64_t, std::int64_t>{-1, 0}, {0, n + 1}, {n, n - 1}}) {
    try {
      r.read(b, e);
      fail("read() of a bad range did not throw");
    } catch (const lamia::IndexError&) {
    }
  }
  r.verify_checksum();
}

void read_all(const fs::path& path) {
  for (const auto access : {PaletteFileAccess::kPread, PaletteFileAccess::kMapped}) {
    expect_clean([&] {
      const PaletteFileReader r(path, /*verify_checksum=*/true, access);
      check_reader(r);
    });
  }
  expect_clean([&] {
    const PaletteFileReader r(path, /*verify_checksum=*/false);  // the checksum only when asked
    check_reader(r);
  });
  expect_clean([&] {
    const auto f = lamia::load_palettes(path);
    if (f.palettes.dim() != 3 || f.palettes.size(0) != std::int64_t(f.item_ids.size()))
      fail("load_palettes: palettes and ids disagree");
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_torch_target([](SeedWriter& seeds, const fs::path& dir) {
    const auto path = dir / "palettes.bin";
    torch::manual_seed(0);
    auto add = [&](const std::vector<std::string>& ids, std::int64_t L, std::int64_t D, const std::string& meta) {
      const auto p = torch::randn({std::int64_t(ids.size()), L, D});
      lamia::write_palette_file(
          path, ids, L, D, [&](std::int64_t b, std::int64_t e) { return p.slice(0, b, e); }, 2, meta);
      seeds.add({file_bytes(path)});
    };
    add({}, 1, 1, "");
    add({"a"}, 1, 1, "");                           // data at an odd offset: no view
    add({"item0", "item1", "i2"}, 2, 3, "");
    add({"abcd", "efgh"}, 4, 2, "");                 // 4-byte aligned data: view() maps
    add({"x", "yy"}, 2, 2, "shard 0 of 2: items [0, 2)");  // version 2, with metadata
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // the crc32 covers everything after the 8-byte magic
  read_with_and_without_crc(data, size, scratch().fresh_dir() / "palettes.bin", 8, read_all);
  return 0;
}
