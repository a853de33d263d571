// Inputs found by the fuzz targets (fuzz/, docs/fuzzing.md), reduced to what each one needs. Each
// was accepted or crashed before its fix; each must now be a lamia error naming file, line, field.
#include <lamia/core/errors.hpp>
#include <lamia/data/loaders.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

using FuzzTempDir = lamia::testing::TempDir;

const std::string kItems = "{\n  \"1\": {\"title\": \"Pen\"},\n  \"2\": {\"title\": \"Paper\"}\n}\n";
const std::string kInter = "{\"u1\": [\"1\", \"2\"]}\n";

LoadOptions lenient(UnknownItems policy = UnknownItems::kDefault) {
  LoadOptions o;
  o.lenient = true;
  o.unknown_items = policy;
  return o;
}

}  // namespace

// fuzz_amazon_lcrec, crash-7213012810b5ec25f18bc3bea3a5c8c7b65b7527: the keys of the LC-Rec objects
// are read from the raw text by JsonObjectScanner, which no JSON parser checks; an item id with
// invalid UTF-8 (and raw control characters) went into the catalog.
TEST_CASE("fuzz: LC-Rec item ids that are not UTF-8 are an invalid_utf8 row") {
  FuzzTempDir d;
  d.write("T.item.json", "{\n  \"1\": {\"title\": \"Pen\"},\n  \"0\xff\xfe_\xc0\": {\"title\": \"Bad\"}\n}\n");
  d.write("T.inter.json", "{\"u1\": [\"1\"]}\n");
  try {
    load_amazon_lcrec(d.path);
    FAIL("an item id that is not UTF-8 was accepted");
  } catch (const ParseError& e) {
    CHECK(e.where().file == "T.item.json");
    CHECK(e.where().line == 3);
    CHECK(e.where().field == "item id");
    CHECK_THAT(e.what(), Catch::Contains("invalid UTF-8 (byte 0xFF)"));
  }
  LoadReport report;
  const auto ds = load_dataset("amazon-lcrec", d.path, lenient(), report);
  CHECK(ds.catalog.size() == 1);
  CHECK(report.warnings["invalid_utf8"] == 1);
}

TEST_CASE("fuzz: a raw control character in an LC-Rec key is a JSON syntax error") {
  FuzzTempDir d;
  const char items[] = "{\"1\": {\"title\": \"Pen\"}, \"a\0b\x1b\": {\"title\": \"x\"}}\n";
  d.write("T.item.json", std::string(items, sizeof(items) - 1));
  d.write("T.inter.json", kInter);
  for (const auto& options : {LoadOptions{}, lenient()}) {
    try {
      load_amazon_lcrec(d.path, options);
      FAIL("a key with a raw control character was accepted");
    } catch (const ParseError& e) {
      CHECK(e.where().file == "T.item.json");
      CHECK(e.where().line == 1);
      CHECK_THAT(e.what(), Catch::Contains("control character 0x00"));
    }
  }
}

TEST_CASE("fuzz: LC-Rec user ids and listed item ids that are not UTF-8 are rejected, never added") {
  FuzzTempDir d;
  d.write("T.item.json", kItems);
  SECTION("user id") {
    d.write("T.inter.json", "{\"u1\": [\"1\"],\n \"u\xc3\x28\": [\"2\"]}\n");
    try {
      load_amazon_lcrec(d.path);
      FAIL("a user id that is not UTF-8 was accepted");
    } catch (const ParseError& e) {
      CHECK(e.where().file == "T.inter.json");
      CHECK(e.where().line == 2);
      CHECK(e.where().field == "user id");
    }
    LoadReport report;
    const auto ds = load_dataset("amazon-lcrec", d.path, lenient(), report);
    CHECK(ds.interactions.num_users() == 1);
    CHECK(report.warnings["invalid_utf8"] == 1);
  }
  SECTION("item id in a list, under the add policy") {
    d.write("T.inter.json", "{\"u1\": [\"1\", \"\xed\xa0\x80\"]}\n");  // a UTF-8-encoded surrogate
    LoadOptions add;
    add.unknown_items = UnknownItems::kAdd;
    try {
      load_amazon_lcrec(d.path, add);
      FAIL("an item id that is not UTF-8 was added to the catalog");
    } catch (const ParseError& e) {
      CHECK(e.where().file == "T.inter.json");
      CHECK(e.where().field == "u1");
    }
    LoadReport report;
    const auto ds = load_dataset("amazon-lcrec", d.path, lenient(UnknownItems::kAdd), report);
    CHECK(ds.catalog.size() == 2);  // nothing added
    CHECK(ds.interactions.num_users() == 0);
    CHECK(report.warnings["invalid_utf8"] == 1);
  }
}

// fuzz_csv, crash-7a949ca799846511bbb34536a377192a8207d279: the CSV reader checked a record's UTF-8 as
// a whole, and "\xCE" + "," + "\xA2a" is valid as a whole ("\xCE\xA2" is U+03A2) though both fields
// are not: the item id "\xCE" went into the catalog. The same reader serves H&M, MovieLens and MIND.
TEST_CASE("fuzz: a UTF-8 character split between two CSV fields is invalid_utf8") {
  FuzzTempDir d;
  d.write("items.csv", "item_id,name\na,Alpha\n\xce,\xa2" "a\n");
  d.write("interactions.csv", "user_id,item_id\nu1,a\n");
  try {
    load_csv(d.path);
    FAIL("a field that is not UTF-8 was accepted");
  } catch (const ParseError& e) {
    CHECK(e.where().file == "items.csv");
    CHECK(e.where().line == 3);
    CHECK(e.where().field == "item_id");
    CHECK_THAT(e.what(), Catch::Contains("invalid UTF-8 (byte 0xCE at offset 0)"));
  }
  LoadReport report;
  LoadOptions options;
  options.lenient = true;
  const auto ds = load_dataset("csv", d.path, options, report);
  CHECK(ds.catalog.size() == 1);
  CHECK(report.warnings["invalid_utf8"] == 1);
}
