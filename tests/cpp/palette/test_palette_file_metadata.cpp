// Palette files with a metadata text (version 2: the records of `lamia export-palettes --shard`), and
// files without one staying version 1, byte for byte.
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>

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

fs::path metadata_test_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lamia_palette_metadata_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string metadata_test_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("palette file metadata: version 2 carries the text, version 1 is unchanged without it", "[palette][file]") {
  const auto dir = metadata_test_dir("roundtrip");
  torch::manual_seed(0);
  const auto palettes = torch::randn({5, 2, 3});
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  auto produce = [&](std::int64_t b, std::int64_t e) { return palettes.slice(0, b, e); };
  const std::string meta = R"({"shard": 1, "shards": 3})";
  write_palette_file(dir / "v2.bin", ids, 2, 3, produce, 2, meta);
  write_palette_file(dir / "v1.bin", ids, 2, 3, produce, 2);
  save_palettes(dir / "saved.bin", ids, palettes);

  const auto v1 = metadata_test_bytes(dir / "v1.bin"), v2 = metadata_test_bytes(dir / "v2.bin");
  CHECK(v1 == metadata_test_bytes(dir / "saved.bin"));
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
