// Palette-file shapes found while writing fuzz_palette_file (fuzz/, docs/fuzzing.md), by reading the
// reader's shape check: neither is reachable by the fuzzer's inputs of a few KiB.
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "../temp_dir.hpp"

#include <cstring>
#include <filesystem>
#include <string>

using namespace lamia;

TEST_CASE("fuzz: a palette file of 0 items loads whatever its L and D", "[palette][file][fuzz]") {
  // The shape check bounded L and D by the file's size even for 0 items: the 44-byte file that
  // save_palettes writes for an empty catalog of [0, 4, 64] palettes was refused ("does not fit").
  const lamia::testing::TempDir d;
  const auto path = d.path / "palettes.bin";
  save_palettes(path, {}, torch::zeros({0, 4, 64}));
  const PaletteFileReader r(path);
  CHECK(r.num_items() == 0);
  CHECK(r.palette_size() == 4);
  CHECK(r.dim() == 64);
  CHECK(r.read(0, 0).sizes() == torch::IntArrayRef({0, 4, 64}));
  CHECK(load_palettes(path).palettes.sizes() == torch::IntArrayRef({0, 4, 64}));
}

TEST_CASE("fuzz: a palette shape whose L x D wraps around 2^64 is refused", "[palette][file][fuzz]") {
  // L = 2^32 and D = 2^32 + 1: L * D wrapped to 2^32, and a (sparse) 16 GiB file with one item of
  // 2^32 floats passed the check; the reader then claimed [1, 2^32, 2^32 + 1] palettes, and
  // read() computed L * D in int64 (overflow: undefined behaviour) or asked torch for 2^64 floats.
  const lamia::testing::TempDir d;
  const auto path = d.path / "palettes.bin";
  std::string header("LAMIAPAL", 8);
  auto put = [&](auto v) { header.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(std::uint32_t(1));                 // version
  put(std::uint32_t(0));                 // float32
  put(std::uint64_t(1));                 // n
  put(std::uint64_t(1) << 32);           // L
  put((std::uint64_t(1) << 32) + 1);     // D
  put(std::uint32_t(0));                 // the item id's length
  d.write("palettes.bin", header);
  std::filesystem::resize_file(path, header.size() + (std::uint64_t(1) << 34) + 4);  // sparse: no disk used
  try {
    PaletteFileReader r(path, /*verify_checksum=*/false);
    FAIL("the shape was accepted: [" << r.num_items() << ", " << r.palette_size() << ", " << r.dim() << "]");
  } catch (const ParseError& e) {
    CHECK(e.where().field == "shape");
    CHECK_THAT(e.what(), Catch::Contains("does not fit"));
  }
}
