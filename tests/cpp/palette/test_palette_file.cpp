#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>
#include "palette_fixture.hpp"

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>  // getpid

using namespace lamia;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path palette_file_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lamia_palette_file_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read_all_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

}  // namespace

TEST_CASE("palettes round-trip with their item ids, streamed in batches", "[palette][file]") {
  auto dir = palette_file_dir("roundtrip");
  torch::manual_seed(0);
  auto palettes = torch::randn({7, 3, 5});
  std::vector<std::string> ids = {"a", "bb", "", "item-4", "é", "x", "last"};
  const std::int64_t batch = GENERATE(1, 3, 100);
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  write_palette_file(dir / "p.bin", ids, 3, 5,
                     [&](std::int64_t b, std::int64_t e) {
                       calls.emplace_back(b, e);
                       return palettes.slice(0, b, e).to(torch::kFloat64);
                     },
                     batch);
  CHECK(calls.front().first == 0);
  CHECK(calls.back().second == 7);
  CHECK(static_cast<std::int64_t>(calls.size()) == (7 + batch - 1) / batch);
  auto f = load_palettes(dir / "p.bin");
  CHECK(f.item_ids == ids);
  CHECK(f.palettes.scalar_type() == torch::kFloat32);
  CHECK(f.palettes.equal(palettes));
  save_palettes(dir / "q.bin", {}, torch::zeros({0, 2, 2}));
  auto empty = load_palettes(dir / "q.bin");
  CHECK(empty.palettes.sizes() == torch::IntArrayRef({0, 2, 2}));
  fs::remove_all(dir);
}

TEST_CASE("a failed export leaves the previous file untouched", "[palette][file]") {
  auto dir = palette_file_dir("atomic");
  save_palettes(dir / "p.bin", {"a"}, torch::ones({1, 1, 2}));
  const auto before = testing::slurp(dir / "p.bin");
  CHECK_THROWS_AS(write_palette_file(dir / "p.bin", {"a", "b"}, 1, 2,
                                     [](std::int64_t, std::int64_t) { return torch::ones({1, 1, 3}); }),
                  ValueError);
  CHECK_THROWS_WITH(write_palette_file(dir / "p.bin", {"a"}, 1, 2,
                                       [](std::int64_t, std::int64_t) { return torch::full({1, 1, 2}, NAN); }),
                    Catch::Contains("non-finite"));
  CHECK(testing::slurp(dir / "p.bin") == before);
  CHECK_THROWS_AS(save_palettes(dir / "p.bin", {"a", "b"}, torch::ones({1, 1, 2})), c10::ValueError);
  fs::remove_all(dir);
}

TEST_CASE("corrupted palette files are rejected with the field at fault", "[palette][file]") {
  auto dir = palette_file_dir("corrupt");
  save_palettes(dir / "good.bin", {"a", "b"}, torch::randn({2, 2, 3}));
  const auto good = testing::slurp(dir / "good.bin");
  auto expect = [&](std::string bytes, const std::string& field) {
    spit(dir / "bad.bin", bytes);
    try {
      load_palettes(dir / "bad.bin");
      FAIL("no error for a file corrupted in " << field);
    } catch (const ParseError& e) {
      CHECK(e.where().field == field);
      CHECK(std::string(e.what()).find("bad.bin") != std::string::npos);
    }
  };
  auto bad = good;
  bad[0] = 'X';
  expect(bad, "magic");
  bad = good;
  bad[8] = 9;  // version
  expect(bad, "version");
  bad = good;
  bad[12] = 1;  // dtype
  expect(bad, "dtype");
  bad = good;
  bad[16 + 8] = 0;  // L = 0
  expect(bad, "shape");
  bad = good;
  bad[16] = 100;  // n far beyond the file
  expect(bad, "shape");
  expect(good.substr(0, good.size() - 5), "palettes");
  expect(good + "x", "palettes");
  expect(good.substr(0, 20), "n");
  bad = good;
  bad[good.size() - 10] ^= 0x40;  // a float bit
  expect(bad, "crc32");
  CHECK_THROWS_AS(load_palettes(dir / "missing.bin"), IOError);
  fs::remove_all(dir);
}

TEST_CASE("PaletteFileReader reads ranges and checks the checksum by streaming", "[palette][file]") {
  auto dir = palette_file_dir("reader");
  auto x = torch::randn({37, 3, 5});
  std::vector<std::string> ids;
  for (int i = 0; i < 37; ++i) ids.push_back("item" + std::to_string(i));
  save_palettes(dir / "p.bin", ids, x);
  PaletteFileReader r(dir / "p.bin");
  CHECK(r.num_items() == 37);
  CHECK(r.palette_size() == 3);
  CHECK(r.dim() == 5);
  CHECK(r.item_ids() == ids);
  CHECK(torch::equal(r.read(0, 37), x));
  CHECK(torch::equal(r.read(10, 17), x.narrow(0, 10, 7)));
  CHECK(r.read(5, 5).size(0) == 0);
  CHECK_THROWS_AS(r.read(30, 38), IndexError);
  CHECK_THROWS_AS(r.read(-1, 3), IndexError);
  // A flipped bit in the palettes: found on open, or by verify_checksum() when open skips it.
  auto bytes = testing::slurp(dir / "p.bin");
  bytes[bytes.size() - 10] ^= 0x40;
  spit(dir / "bad.bin", bytes);
  try {
    PaletteFileReader bad(dir / "bad.bin");
    FAIL("no error for a corrupted palette");
  } catch (const ParseError& e) {
    CHECK(e.where().field == "crc32");
  }
  PaletteFileReader unchecked(dir / "bad.bin", /*verify_checksum=*/false);
  CHECK_THROWS_AS(unchecked.verify_checksum(), ParseError);
  CHECK_THROWS_AS(PaletteFileReader(dir / "missing.bin"), IOError);
  fs::remove_all(dir);
}

// Palette files with a metadata text (version 2: the records of `lamia export-palettes --shard`), and
// files without one staying version 1, byte for byte.
TEST_CASE("palette file metadata: version 2 carries the text, version 1 is unchanged without it", "[palette][file]") {
  const auto dir = palette_file_dir("metadata");
  torch::manual_seed(0);
  const auto palettes = torch::randn({5, 2, 3});
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  auto produce = [&](std::int64_t b, std::int64_t e) { return palettes.slice(0, b, e); };
  const std::string meta = R"({"shard": 1, "shards": 3})";
  write_palette_file(dir / "v2.bin", ids, 2, 3, produce, 2, meta);
  write_palette_file(dir / "v1.bin", ids, 2, 3, produce, 2);
  save_palettes(dir / "saved.bin", ids, palettes);

  const auto v1 = read_all_bytes(dir / "v1.bin"), v2 = read_all_bytes(dir / "v2.bin");
  CHECK(v1 == read_all_bytes(dir / "saved.bin"));
  std::uint32_t version = 0;
  std::memcpy(&version, v1.data() + 8, 4);
  CHECK(version == 1);
  std::memcpy(&version, v2.data() + 8, 4);
  CHECK(version == 2);
  CHECK(v2.size() == v1.size() + 8 + meta.size());  // u64 length + the text

  PaletteFileReader reader(dir / "v2.bin");
  CHECK(reader.metadata() == meta);
  CHECK(reader.item_ids() == ids);
  CHECK(torch::equal(reader.read(0, 5), palettes));
  CHECK(PaletteFileReader(dir / "v1.bin").metadata().empty());
  const auto loaded = load_palettes(dir / "v2.bin");
  CHECK(torch::equal(loaded.palettes, palettes));
  CHECK(loaded.item_ids == ids);

  // A length past the end of the file, and a flipped byte of the text (the crc covers it).
  auto bad = v2;
  const std::uint64_t huge = 1u << 30;
  std::memcpy(bad.data() + 8 + 4 + 4 + 24, &huge, 8);
  std::ofstream(dir / "bad.bin", std::ios::binary) << bad;
  CHECK_THROWS_WITH(PaletteFileReader(dir / "bad.bin"), Contains("metadata"));
  bad = v2;
  bad[8 + 4 + 4 + 24 + 8 + 2] ^= 0x20;
  std::ofstream(dir / "bad2.bin", std::ios::binary) << bad;
  CHECK_THROWS_WITH(PaletteFileReader(dir / "bad2.bin"), Contains("checksum mismatch"));
  fs::remove_all(dir);
}
