// Inputs found by the fuzz targets (fuzz/, docs/fuzzing.md) against the run manifest and the
// pipeline config, reduced to what each one needs: each crashed (stack overflow), was undefined
// behaviour or lost a value silently before its fix, and must now be an error naming the file and
// the field.
#include <lamia/core/errors.hpp>
#include <lamia/pipeline/manifest.hpp>
#include <lamia/pipeline/pipeline_config.hpp>

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

// The pipeline config (fuzz/fuzz_config.cpp, and the inputs tried while writing it): what a config
// could lose without a word before, and must now refuse naming the file, line and key.
namespace {

struct ConfigDir : lamia::testing::TempDir {
  fs::path write(const std::string& text) const {
    TempDir::write("config.json", text);
    return path / "config.json";
  }
};

}  // namespace

TEST_CASE("fuzz: a config key set twice in one object is a ParseError at the second, not the last value kept") {
  ConfigDir d;
  try {
    load_pipeline_config(d.write("{\"threads\": 1,\n \"palette\": {\"trainer\": {\"batch_size\": 8,\n"
                                 "  \"batch_size\": 16}}}"));
    FAIL("a repeated key was accepted");
  } catch (const ParseError& e) {
    CHECK_THAT(e.where().file, Catch::EndsWith("config.json"));
    CHECK(e.where().line == 3);
    CHECK(e.where().field == "palette.trainer.batch_size");
    CHECK_THAT(e.what(), Catch::Contains("twice"));
  }
  // Keys are compared unescaped ("\u0074hreads" is "threads"), and inside arrays of objects too.
  CHECK_THROWS_WITH(load_pipeline_config(d.write(R"({"threads": 1, "\u0074hreads": 2})")), Catch::Contains("threads"));
  CHECK_THROWS_AS(load_pipeline_config(d.write(R"({"dataset": {"synthetic": {"attributes": [{"name": "a", "name": "b"}]}}})")),
                  ParseError);
  // The same key in two objects is fine.
  CHECK_NOTHROW(load_pipeline_config(d.write(R"({"threads": 1, "dataset": {"format": "synthetic"}, "quantize": {"lamia": {}}})")));
}

TEST_CASE("fuzz: a config path with a NUL character is refused (the system would read another file)") {
  ConfigDir d;
  CHECK_THROWS_WITH(load_pipeline_config(d.write(R"({"dataset": {"path": "data\u0000/../etc"}})")),
                    Catch::Contains("dataset.path") && Catch::Contains("NUL"));
}

TEST_CASE("fuzz: a tokenizer or baseline listed twice in a config is refused") {
  ConfigDir d;
  CHECK_THROWS_WITH(load_pipeline_config(d.write(R"({"recommend": {"tokenizers": ["lamia", "rq-vae", "lamia"]}})")),
                    Catch::Contains("recommend.tokenizers") && Catch::Contains("'lamia' is listed twice"));
  CHECK_THROWS_WITH(load_pipeline_config(d.write(R"({"recommend": {"baselines": ["popularity", "popularity"]}})")),
                    Catch::Contains("recommend.baselines"));
}

TEST_CASE("fuzz: a long or non-ASCII value quoted in a config error is cut at a character boundary") {
  ConfigDir d;
  // 100 two-byte characters: the old cut at byte 77 split one, and the message was not UTF-8.
  std::string value;
  for (int i = 0; i < 100; ++i) value += "\xc3\xa9";
  try {
    load_pipeline_config(d.write(R"({"threads": ")" + value + "\"}"));
    FAIL("a string threads was accepted");
  } catch (const ValueError& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("threads"));
    CHECK(what.find(value) == std::string::npos);
    // Every byte of the message belongs to a whole UTF-8 character.
    for (std::size_t i = 0; i < what.size(); ++i) {
      const auto c = static_cast<unsigned char>(what[i]);
      if (c == 0xc3) {
        REQUIRE(i + 1 < what.size());
        CHECK(static_cast<unsigned char>(what[i + 1]) == 0xa9);
      }
    }
  }
}
