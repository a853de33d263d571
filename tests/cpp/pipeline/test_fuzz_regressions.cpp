// Inputs found by the fuzz targets (fuzz/, docs/fuzzing.md) against the run manifest, reduced to
// what each one needs: each crashed (stack overflow) or was undefined behaviour before its fix, and
// must now be a ParseError naming manifest.json and the field.
#include <lamia/core/errors.hpp>
#include <lamia/pipeline/manifest.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

struct ManifestDir : lamia::testing::TempDir {
  void write(const std::string& text) const { TempDir::write("manifest.json", text); }
};

std::string artifact_with(const std::string& key, const std::string& value) {
  std::string a = R"({"path": "p.bin", "stage": "export", "format_version": 1, "size": 3, "checksum": "crc32:0",
    "config_hash": "h", "inputs_hash": "h", "lamia_version": "0.1.0"})";
  const auto at = a.find("\"" + key + "\": ") + key.size() + 4;
  a.replace(at, a.find_first_of(",}", at) - at, value);
  return R"({"format": "lamia-manifest", "version": 1, "stages": {}, "artifacts": {"a": )" + a + "}}";
}

void check_rejected(const ManifestDir& d, const std::string& field) {
  try {
    Manifest::load(d.path);
    FAIL("the manifest was accepted");
  } catch (const ParseError& e) {
    CHECK_THAT(e.where().file, Catch::EndsWith("manifest.json"));
    CHECK(e.where().field == field);
  }
}

}  // namespace

TEST_CASE("fuzz: manifest integers that are floats, negative or too large are errors, never converted") {
  ManifestDir d;
  // 1e300 converted to int is undefined behaviour (UBSan: "outside the range of representable values").
  d.write(R"({"format": "lamia-manifest", "version": 1e300, "stages": {}, "artifacts": {}})");
  check_rejected(d, "version");
  d.write(R"({"format": "lamia-manifest", "version": 4294967297, "stages": {}, "artifacts": {}})");  // wraps to 1
  check_rejected(d, "version");
  d.write(artifact_with("format_version", "1e300"));
  check_rejected(d, "artifacts.a.format_version");
  d.write(artifact_with("size", "-1"));  // read as 2^64-1 before
  check_rejected(d, "artifacts.a.size");
  d.write(artifact_with("size", "3.5"));
  check_rejected(d, "artifacts.a.size");
  d.write(artifact_with("size", "18446744073709551615"));
  CHECK(Manifest::load(d.path).artifact("a")->size == 18446744073709551615ull);
}

TEST_CASE("fuzz: a manifest nested 100k deep is a ParseError, not a stack overflow") {
  ManifestDir d;
  const std::size_t n = 100000;
  d.write(R"({"format": "lamia-manifest", "version": 1, "stages": {"s": {"config_hash": "", "inputs_hash": "",
    "outputs": [], "completed": true, "config": )" +
          std::string(n, '[') + std::string(n, ']') + R"(}}, "artifacts": {}})");
  try {
    Manifest::load(d.path);
    FAIL("a 100k-deep manifest was accepted");
  } catch (const ParseError& e) {
    CHECK_THAT(e.what(), Catch::Contains("nested deeper than"));
    CHECK_THAT(e.where().file, Catch::EndsWith("manifest.json"));
  }
}
