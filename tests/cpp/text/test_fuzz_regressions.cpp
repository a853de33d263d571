// Inputs found by the fuzz targets (fuzz/, docs/fuzzing.md) against the tokenizer files, reduced to
// what each one needs: each escaped as a raw library exception before its fix, and must now be a
// lamia ParseError naming the file.
#include <lamia/core/errors.hpp>
#include <lamia/text/tokenizer.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

using TokenizerDir = lamia::testing::TempDir;

void check_parse_error(const TokenizerDir& d, const std::string& file, const std::string& reason) {
  try {
    load_tokenizer(d.path);
    FAIL("the tokenizer folder was accepted");
  } catch (const ParseError& e) {
    CHECK_THAT(e.where().file, Catch::EndsWith(file));
    CHECK_THAT(e.what(), Catch::Contains(reason));
  }
}

}  // namespace

// fuzz_tokenizer_json, crash-cba7b8e9944ac169e148cfbb77399537bbc2b3e4: a number a double cannot hold
// escaped from nlohmann's parser as out_of_range ("number overflow parsing '1e400'"), uncaught.
TEST_CASE("fuzz: a number too large for a double in tokenizer.json is a ParseError") {
  TokenizerDir d;
  d.write("tokenizer.json", R"({"pre_tokenizer": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 1e400}, "merges": []}})");
  check_parse_error(d, "tokenizer.json", "field 'model.vocab.a': expected a non-negative integer id");
}

TEST_CASE("fuzz: tokenizer JSON nested 100k deep is a ParseError") {
  TokenizerDir d;
  d.write("tokenizer.json", "{\"model\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  check_parse_error(d, "tokenizer.json", "nested deeper than 256");
}

// fuzz_tokenizer_files, crash-e699c5bea2520893a7f9ad9337edd8f66742e211: vocab.json is parsed by hand,
// and a token with bytes that are not UTF-8 loaded; saving the tokenizer then threw nlohmann's
// type_error ("invalid UTF-8 byte"), uncaught.
TEST_CASE("fuzz: a vocab.json token that is not UTF-8 is a ParseError naming the line") {
  TokenizerDir d;
  d.write("vocab.json", "{\"a\": 0,\n \"b\xff\": 1}");
  d.write("merges.txt", "#version: 0.2\n");
  try {
    load_tokenizer(d.path);
    FAIL("a token that is not UTF-8 was accepted");
  } catch (const ParseError& e) {
    CHECK_THAT(e.where().file, Catch::EndsWith("vocab.json"));
    CHECK(e.where().line == 2);
    CHECK_THAT(e.what(), Catch::Contains("invalid UTF-8 in a token (byte 0xFF)"));
  }
}
