// Hostile input, by class (docs/data.md, "Bad input"): each input is either read correctly or
// rejected with a lamia error naming the file, line and field; never a crash, a hang, a wrapped
// value or rows lost in silence. The inputs are generated here, small, in a temporary folder
// (the 100k-deep JSON and the 50 MB line are cheap to make).
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/core/input_file.hpp>
#include <lamia/core/options.hpp>
#include <lamia/data/loaders.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/data/statistics.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

using lamia::testing::TempDir;

void write_gzip(const fs::path& p, const std::string& text) {
  gzFile f = gzopen(p.c_str(), "wb1");
  REQUIRE(f != nullptr);
  for (std::size_t at = 0; at < text.size(); at += 1 << 20) {
    const auto n = unsigned(std::min<std::size_t>(1 << 20, text.size() - at));
    REQUIRE(gzwrite(f, text.data() + at, n) == int(n));
  }
  REQUIRE(gzclose(f) == Z_OK);
}

std::string nested(std::size_t depth, char open, char close, const std::string& inner = "1") {
  return std::string(depth, open) + inner + std::string(depth, close);
}

LoadOptions jsonl_options() {
  LoadOptions o;
  o.mapping.text_fields = {"title"};
  return o;
}

// Loads and expects a ParseError at file:line, field; returns the message.
std::string expect_parse_error(const std::string& format, const fs::path& dir, const std::string& file,
                               std::size_t line, const std::string& field, LoadOptions options = {}) {
  try {
    load_dataset(format, dir, options);
  } catch (const ParseError& e) {
    INFO(e.what());
    CHECK(e.where().file == file);
    CHECK(e.where().line == line);
    CHECK(e.where().field == field);
    CHECK(std::string(e.what()).size() < 600);  // values are cut, never dumped whole
    return e.what();
  }
  FAIL("no ParseError for " << format << " in " << dir);
  return {};
}

std::string expect_io_error(const std::string& format, const fs::path& dir) {
  try {
    load_dataset(format, dir);
  } catch (const IOError& e) {
    return e.what();
  }
  FAIL("no IOError for " << format << " in " << dir);
  return {};
}

// A generic JSON-lines dataset: items a, b and one interaction per given line.
TempDir jsonl_dataset(const std::string& interaction_lines) {
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\"}\n{\"item_id\": \"b\", \"title\": \"B\"}\n");
  d.write("interactions.jsonl", interaction_lines);
  return d;
}

const std::string kMovies = "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Action\n";

}  // namespace

// --- JSON nesting depth ------------------------------------------------------------------------
TEST_CASE("hostile: JSON nested 100k deep is a ParseError naming file, line and field") {
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\"}\n{\"item_id\": \"b\", \"title\": " +
                             nested(100000, '[', ']') + "}\n");
  d.write("interactions.jsonl", "{\"user_id\": \"u\", \"item_id\": \"a\"}\n");
  auto what = expect_parse_error("jsonl", d.path, "items.jsonl", 2, "title", jsonl_options());
  CHECK_THAT(what, Catch::Contains("nested deeper than 256"));
  // Objects as deep, in a key the mapping does not use.
  d.write("items.jsonl", "{\"item_id\": \"a\", \"x\": " + nested(100000, '{', '}', "") + "}\n");
  CHECK_THROWS_AS(load_dataset("jsonl", d.path, jsonl_options()), ParseError);
  // Lenient: the row is skipped and counted, the rest loads.
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\"}\n{\"item_id\": \"b\", \"title\": " +
                             nested(100000, '[', ']') + "}\n");
  LoadOptions lenient = jsonl_options();
  lenient.lenient = true;
  LoadReport report;
  auto ds = load_dataset("jsonl", d.path, lenient, report);
  CHECK(ds.catalog.size() == 1);
  CHECK(report.warnings["malformed_row"] == 1);
}

TEST_CASE("hostile: nesting up to the limit is read, and the text of a nested list is kept") {
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": " + nested(255, '[', ']', "\"deep\"") + "}\n");
  d.write("interactions.jsonl", "{\"user_id\": \"u\", \"item_id\": \"a\"}\n");
  auto ds = load_dataset("jsonl", d.path, jsonl_options());
  CHECK(ds.catalog.value(0, 0) == "deep");
}

TEST_CASE("hostile: deep nesting in an LC-Rec item and in a 2014 Python-literal line") {
  TempDir d;
  d.write("x.item.json", "{\n\"1\": {\"title\": \"t\"},\n\"2\": {\"title\": " + nested(100000, '[', ']') + "}\n}\n");
  d.write("x.inter.json", "{\"u\": [1]}\n");
  auto what = expect_parse_error("amazon-lcrec", d.path, "x.item.json", 3, "2.title");
  CHECK_THAT(what, Catch::Contains("nested deeper than 256"));

  TempDir a;
  a.write("meta_x.json", "{'asin': 'A1', 'title': 'ok'}\n{'asin': 'A2', 'categories': " + nested(100000, '[', ']') + "}\n");
  a.write("reviews.json", "{\"reviewerID\": \"u\", \"asin\": \"A1\", \"overall\": 5, \"unixReviewTime\": 1}\n");
  what = expect_parse_error("amazon", a.path, "meta_x.json", 2, "");
  CHECK_THAT(what, Catch::Contains("nested deeper than 256"));
}

TEST_CASE("hostile: a huge key or value is cut in the message, whole in where()") {
  TempDir d;
  const std::string user(1 << 20, 'u');
  d.write("x.item.json", "{\"1\": {\"title\": \"t\"}}\n");
  d.write("x.inter.json", "{\"" + user + "\": [\"" + std::string(1 << 20, 'z') + "\"]}\n");
  auto what = expect_parse_error("amazon-lcrec", d.path, "x.inter.json", 1, user);
  CHECK_THAT(what, Catch::Contains("(1048576 bytes)") && Catch::Contains("unknown item id 'zzz"));
}

// --- numbers -----------------------------------------------------------------------------------
TEST_CASE("hostile: timestamps that overflow, wrap or hit the no-timestamp sentinel are errors") {
  for (const std::string bad : {"9223372036854775808", "18446744073709551615", "-9223372036854775808", "1e30",
                                "\"99999999999999999999\"", "-1e300", "1e400", "253402300800"}) {
    INFO(bad);
    auto d = jsonl_dataset("{\"user_id\": \"u\", \"item_id\": \"a\", \"timestamp\": 5}\n"
                           "{\"user_id\": \"u\", \"item_id\": \"b\", \"timestamp\": " + bad + "}\n");
    auto what = expect_parse_error("jsonl", d.path, "interactions.jsonl", 2, "timestamp");
    CHECK_THAT(what, Catch::Contains("253402300799"));
  }
  // The edges themselves are read exactly.
  auto d = jsonl_dataset("{\"user_id\": \"u\", \"item_id\": \"a\", \"timestamp\": -62167219200}\n"
                         "{\"user_id\": \"u\", \"item_id\": \"b\", \"timestamp\": 253402300799}\n");
  auto ds = load_dataset("jsonl", d.path);
  REQUIRE(ds.interactions.size() == 2);
  CHECK(ds.interactions.sequence(0)[0].timestamp == -62167219200);
  CHECK(ds.interactions.sequence(0)[1].timestamp == 253402300799);

  TempDir m;  // MovieLens: the sentinel's own text
  m.write("movies.csv", kMovies);
  m.write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,4.0,-9223372036854775808\n");
  expect_parse_error("movielens", m.path, "ratings.csv", 3, "timestamp");

  TempDir a;  // Amazon: an unsigned value beyond int64
  a.write("meta.jsonl", "{\"asin\": \"A1\", \"title\": \"t\"}\n");
  a.write("reviews.jsonl", "{\"reviewerID\": \"u\", \"asin\": \"A1\", \"unixReviewTime\": 18446744073709551615}\n");
  expect_parse_error("amazon", a.path, "reviews.jsonl", 1, "unixReviewTime");
}

TEST_CASE("hostile: infinite, NaN and float-overflowing ratings are errors") {
  for (const std::string bad : {"1e39", "-1e39", "1e400", "\"inf\"", "\"nan\"", "\"1e999\""}) {
    INFO(bad);
    auto d = jsonl_dataset("{\"user_id\": \"u\", \"item_id\": \"a\", \"rating\": " + bad + "}\n");
    expect_parse_error("jsonl", d.path, "interactions.jsonl", 1, "rating");
  }
  for (const std::string bad : {"inf", "nan", "1e39", "-inf"}) {
    INFO(bad);
    TempDir m;
    m.write("movies.csv", kMovies);
    m.write("ratings.csv", "userId,movieId,rating,timestamp\n1,1," + bad + ",964982703\n");
    expect_parse_error("movielens", m.path, "ratings.csv", 2, "rating");
  }
  TempDir a;
  a.write("meta.jsonl", "{\"asin\": \"A1\", \"title\": \"t\"}\n");
  a.write("reviews.jsonl", "{\"reviewerID\": \"u\", \"asin\": \"A1\", \"overall\": 1e300}\n");
  expect_parse_error("amazon", a.path, "reviews.jsonl", 1, "overall");
}

TEST_CASE("hostile: numbers a double cannot hold are accepted where unused, kept as written") {
  const std::string big(400, '7');  // a 400-digit integer: beyond a double
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\", \"extra\": " + big + ", \"tiny\": 1e-400, \"huge\": -2e400}\n");
  d.write("interactions.jsonl", "{\"user_id\": \"u\", \"item_id\": \"a\", \"views\": 123456789012345678901234567890}\n");
  auto ds = load_dataset("jsonl", d.path);
  CHECK(ds.catalog.size() == 1);
  CHECK(ds.catalog.value(0, ds.catalog.attribute_index("extra")) == big);
  CHECK(ds.catalog.value(0, ds.catalog.attribute_index("huge")) == "-2e400");
  TempDir a;  // the Python-literal metadata: Python's ints have no limit
  a.write("meta.json", "{'asin': 'A1', 'title': 'ok', 'salesRank': {'Books': " + big + "}, 'price': 1e999}\n");
  a.write("reviews.json", "{\"reviewerID\": \"u\", \"asin\": \"A1\", \"overall\": 5.0, \"unixReviewTime\": 1400000000}\n");
  CHECK(load_dataset("amazon", a.path).catalog.size() == 1);
}

TEST_CASE("hostile: options integers are range-checked at every width, floats never narrowed") {
  struct Fields {
    std::int64_t i64 = 0;
    std::uint64_t u64 = 0;
    std::uint8_t u8 = 0;
    std::int32_t i32 = 0;
    float f = 0;
  } o;
  auto read = [&](const char* key, const std::string& value) {
    auto j = nlohmann::json::parse(value);
    bool found = false;
    auto visit = [&](auto& member) {
      using M = std::decay_t<decltype(member)>;
      auto tmp = member;
      options::Codec<M>::read(j, tmp, options::Where{"T", key});
      member = tmp;
      found = true;
    };
    if (std::string(key) == "i64") visit(o.i64);
    if (std::string(key) == "u64") visit(o.u64);
    if (std::string(key) == "u8") visit(o.u8);
    if (std::string(key) == "i32") visit(o.i32);
    if (std::string(key) == "f") visit(o.f);
    REQUIRE(found);
  };
  CHECK_THROWS_AS(read("i64", "9223372036854775808"), ValueError);
  CHECK_THROWS_AS(read("i64", "9223372036854775808.0"), ValueError);
  CHECK_THROWS_AS(read("i64", "1e19"), ValueError);
  CHECK_THROWS_AS(read("u64", "-1"), ValueError);
  CHECK_THROWS_AS(read("u64", "1.8446744073709552e19"), ValueError);
  CHECK_THROWS_AS(read("u8", "256"), ValueError);
  CHECK_THROWS_AS(read("u8", "-1"), ValueError);
  CHECK_THROWS_AS(read("i32", "2147483648"), ValueError);
  CHECK_THROWS_AS(read("i32", "-2147483649"), ValueError);
  CHECK_THROWS_AS(read("f", "1e39"), ValueError);
  read("i64", "-9223372036854775808");
  CHECK(o.i64 == std::numeric_limits<std::int64_t>::min());
  read("u64", "18446744073709551615");
  CHECK(o.u64 == std::numeric_limits<std::uint64_t>::max());
  read("u8", "255.0");
  CHECK(o.u8 == 255);
}

TEST_CASE("hostile: the synthetic format's options file names itself in every error") {
  TempDir d;
  for (const std::string& bad : std::vector<std::string>{"{\"num_items\": 1e400}", "{\"num_items\": 18446744073709551616}",
                                "{\"num_items\": " + nested(100000, '[', ']') + "}", "{\"num_items\": 5"}) {
    INFO(bad.substr(0, 40));
    d.write("synthetic.json", bad);
    try {
      load_dataset("synthetic", d.path);
      FAIL("loaded");
    } catch (const ParseError& e) {
      CHECK(e.where().file == "synthetic.json");
      CHECK(std::string(e.what()).size() < 600);
    }
  }
}

TEST_CASE("hostile: a user count beyond 2^53 is an error, not a rounded or wrapped count") {
  HoldoutOptions o;
  for (const char* bad : {"18446744073709551615", "9007199254740993", "-1", "1.5"}) {
    INFO(bad);
    CHECK_THROWS_WITH(options::from_json(nlohmann::json::parse(std::string("{\"test_users\": ") + bad + "}"), o),
                      Catch::Contains("key 'test_users'"));
  }
  options::from_json(nlohmann::json::parse("{\"test_users\": 9007199254740992}"), o);
  CHECK(o.test_users.resolve(5, "test_users") == 9007199254740992ULL);
  CHECK_THROWS_AS(UserCount::fraction(2.0).resolve(5, "x"), ValueError);
  CHECK_THROWS_AS((UserCount{1e30, false}.resolve(5, "x")), ValueError);
}

// --- dates -------------------------------------------------------------------------------------
TEST_CASE("hostile: calendar dates are validated (Feb 30 is an error, leap years right)") {
  auto hm = [](const std::string& date) {
    TempDir d;
    d.write("articles.csv",
            "article_id,detail_desc,product_type_name,product_group_name,graphical_appearance_name,colour_group_name,"
            "perceived_colour_value_name,index_name\n108775015,d,t,g,a,c,p,i\n");
    d.write("transactions_train.csv", "t_dat,customer_id,article_id,price,sales_channel_id\n" + date +
                                          ",c1,0108775015,0.01,2\n");
    return d;
  };
  for (const std::string bad : {"2019-02-30", "2019-02-29", "1900-02-29", "2019-04-31", "2019-13-01", "2019-00-10",
                                "2019-01-00"}) {
    INFO(bad);
    auto d = hm(bad);
    expect_parse_error("hm", d.path, "transactions_train.csv", 2, "t_dat");
  }
  // 2020-02-29 and 2000-02-29 exist: 18321 and 11016 days after 1970-01-01 (Python's
  // date(2020, 2, 29).toordinal() - date(1970, 1, 1).toordinal()).
  for (auto [good, days] : std::array{std::pair{"2020-02-29", 18321}, std::pair{"2000-02-29", 11016},
                                      std::pair{"2019-12-31", 18261}}) {
    auto d = hm(good);
    auto ds = load_dataset("hm", d.path);
    CHECK(ds.interactions.sequence(0)[0].timestamp == std::int64_t(days) * 86400);
  }
  // ISO dates in a generic timestamp, and MIND's M/D/YYYY times.
  auto g = jsonl_dataset("{\"user_id\": \"u\", \"item_id\": \"a\", \"timestamp\": \"2021-02-30T10:00:00Z\"}\n");
  expect_parse_error("jsonl", g.path, "interactions.jsonl", 1, "timestamp");
  TempDir m;
  m.write("news.tsv", "N1\tc\ts\tT\tA\turl\t[]\t[]\n");
  m.write("behaviors.tsv", "1\tU1\t2/30/2019 9:00:00 AM\tN1\tN1-1\n");
  expect_parse_error("mind", m.path, "behaviors.tsv", 1, "time");
}

// --- compressed streams and long lines ------------------------------------------------------------
TEST_CASE("hostile: a truncated or corrupt gzip is an error naming the file, never a clean end") {
  std::string lines;
  for (int i = 0; i < 20000; ++i) lines += "{\"user_id\": \"u" + std::to_string(i % 97) + "\", \"item_id\": \"a\"}\n";
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\"}\n");
  write_gzip(d.path / "interactions.jsonl.gz", lines);
  REQUIRE(load_dataset("jsonl", d.path).interactions.size() == 20000);
  const std::string whole = read_file(d.path / "interactions.jsonl.gz");
  for (std::size_t cut : {std::size_t(8), whole.size() / 2, whole.size() - 4}) {  // in the trailer, too
    INFO("cut to " << cut << " of " << whole.size() << " bytes");
    d.write("interactions.jsonl.gz", whole.substr(0, cut));
    try {
      load_dataset("jsonl", d.path);
      FAIL("a truncated gzip loaded");
    } catch (const IOError& e) {
      CHECK_THAT(e.what(), Catch::Contains("interactions.jsonl.gz") && Catch::Contains("ends early"));
    }
  }
  std::string corrupt = whole;
  for (std::size_t i = corrupt.size() / 3; i < corrupt.size() / 3 + 64; ++i) corrupt[i] = char(corrupt[i] ^ 0x5A);
  d.write("interactions.jsonl.gz", corrupt);
  try {
    load_dataset("jsonl", d.path);
    FAIL("a corrupt gzip loaded");
  } catch (const Error& e) {  // an IOError, or a ParseError for garbage that still inflates
    CHECK_THAT(e.what(), Catch::Contains("interactions.jsonl"));
  }
}

TEST_CASE("hostile: a gzip that expands a thousandfold is read streaming, in bounded memory") {
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\"}\n");
  const auto gz = d.path / "interactions.jsonl.gz";
  {  // 128 MiB of 1 MiB lines of spaces, then one record, written without holding it in memory
    const std::string blank_line = std::string((1 << 20) - 1, ' ') + "\n";
    const std::string record = "{\"user_id\": \"u\", \"item_id\": \"a\"}\n";
    gzFile f = gzopen(gz.c_str(), "wb9");
    REQUIRE(f != nullptr);
    for (int i = 0; i < 128; ++i) REQUIRE(gzwrite(f, blank_line.data(), unsigned(blank_line.size())) > 0);
    REQUIRE(gzwrite(f, record.data(), unsigned(record.size())) > 0);
    REQUIRE(gzclose(f) == Z_OK);
  }
  CHECK(fs::file_size(gz) < (1u << 20));  // a thousandfold
  // The load runs in a child process, whose peak resident memory is its own.
  long pages = 0, page_kib = ::sysconf(_SC_PAGESIZE) / 1024;
  std::ifstream("/proc/self/statm") >> pages >> pages;  // the second number: resident pages
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 3;
    try {
      code = load_dataset("jsonl", d.path).interactions.size() == 1 ? 0 : 2;
    } catch (...) {
    }
    ::_exit(code);
  }
  int status = 0;
  rusage usage{};
  REQUIRE(::wait4(child, &status, 0, &usage) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // 128 MiB went through; the reader holds a line or two (ru_maxrss is in KiB).
  const long grown_kib = usage.ru_maxrss - pages * page_kib;
  INFO("peak grew by " << grown_kib << " KiB");
  CHECK(grown_kib < 40 * 1024);
}

TEST_CASE("hostile: a 50 MB line is a ParseError naming the file and the line") {
  auto d = jsonl_dataset("{\"user_id\": \"u\", \"item_id\": \"a\"}\n{\"user_id\": \"" + std::string(50 << 20, 'x') +
                         "\", \"item_id\": \"a\"}\n");
  auto what = expect_parse_error("jsonl", d.path, "interactions.jsonl", 2, "");
  CHECK_THAT(what, Catch::Contains("longer than 16 MiB"));
  TempDir m;  // a CSV record (an unclosed quote swallowing the rest of the file is the usual cause)
  m.write("movies.csv", kMovies);
  m.write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,\"" + std::string(50 << 20, '2') + "\n");
  what = expect_parse_error("movielens", m.path, "ratings.csv", 3, "movieId");
  CHECK_THAT(what, Catch::Contains("longer than 16 MiB"));
}

// --- keys set twice ----------------------------------------------------------------------------
TEST_CASE("hostile: a key that appears twice in one JSON object is an error at its line, never the last value kept") {
  // JSON lines: the record's line and the key (lenient: a malformed row, counted and skipped).
  TempDir d;
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\"}\n{\"item_id\": \"b\", \"title\": \"B\", \"title\": \"C\"}\n");
  d.write("interactions.jsonl", "{\"user_id\": \"u\", \"item_id\": \"a\"}\n");
  CHECK_THAT(expect_parse_error("jsonl", d.path, "items.jsonl", 2, "title", jsonl_options()), Catch::Contains("twice"));
  auto lenient = jsonl_options();
  lenient.lenient = true;
  LoadReport report;
  const auto ds = load_dataset("jsonl", d.path, lenient, report);
  CHECK(ds.catalog.size() == 1);
  CHECK(report.warnings["malformed_row"] == 1);
  // Nested keys are named by their path; the same key in two objects is fine.
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\", \"x\": {\"k\": 1, \"y\": {\"k\": 2, \"k\": 3}}}\n");
  CHECK_THAT(expect_parse_error("jsonl", d.path, "items.jsonl", 1, "x.y.k", jsonl_options()), Catch::Contains("twice"));
  d.write("items.jsonl", "{\"item_id\": \"a\", \"title\": \"A\", \"x\": {\"title\": 1}, \"y\": [{\"k\": 1}, {\"k\": 2}]}\n");
  CHECK(load_dataset("jsonl", d.path, jsonl_options()).catalog.size() == 1);

  // LC-Rec: an item's attribute twice (the all-string fast path hands it to the JSON reader).
  TempDir l;
  l.write("x.item.json", "{\n\"1\": {\"title\": \"t\"},\n\"2\": {\"title\": \"t\",\n  \"title\": \"u\"}\n}\n");
  l.write("x.inter.json", "{\"u\": [1]}\n");
  CHECK_THAT(expect_parse_error("amazon-lcrec", l.path, "x.item.json", 4, "2.title"), Catch::Contains("twice"));

  // The 2014 metadata's Python literals.
  TempDir a;
  a.write("meta_x.json", "{'asin': 'A1', 'title': 'ok'}\n{'asin': 'A2', 'title': 'x', 'title': 'y'}\n");
  a.write("reviews.json", "{\"reviewerID\": \"u\", \"asin\": \"A1\", \"overall\": 5, \"unixReviewTime\": 1}\n");
  CHECK_THAT(expect_parse_error("amazon", a.path, "meta_x.json", 2, ""), Catch::Contains("'title' appears twice"));
}

// --- encodings ---------------------------------------------------------------------------------
TEST_CASE("hostile: a UTF-16 or UTF-32 file is named as such at line 1; a UTF-8 byte order mark is skipped") {
  // UTF-16LE of {"user_id": "u", "item_id": "a"} after its byte order mark.
  std::string utf16 = "\xFF\xFE";
  for (char c : std::string("{\"user_id\": \"u\", \"item_id\": \"a\"}\n")) utf16 += std::string{c, '\0'};
  auto d = jsonl_dataset(utf16);
  CHECK_THAT(expect_parse_error("jsonl", d.path, "interactions.jsonl", 1, ""),
             Catch::Contains("UTF-16") && Catch::Contains("iconv"));
  d.write("interactions.jsonl", std::string("\0\0\xFE\xFF", 4) + std::string("\0\0\0{", 4));
  CHECK_THAT(expect_parse_error("jsonl", d.path, "interactions.jsonl", 1, ""), Catch::Contains("UTF-32"));
  d.write("interactions.jsonl", "\xEF\xBB\xBF{\"user_id\": \"u\", \"item_id\": \"a\"}\n");
  CHECK(load_dataset("jsonl", d.path, jsonl_options()).interactions.size() == 1);
  TempDir m;  // the CSV reader (MovieLens, H&M, MIND, generic CSV) the same way
  m.write("movies.csv", "\xFE\xFF" + kMovies);
  m.write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n");
  CHECK_THAT(expect_parse_error("movielens", m.path, "movies.csv", 1, ""), Catch::Contains("UTF-16"));
}

// --- files -------------------------------------------------------------------------------------
TEST_CASE("hostile: a directory, a FIFO, a device or a missing file each get their own message") {
  TempDir d;
  d.write("movies.csv", kMovies);
  fs::create_directory(d.path / "ratings.csv");
  CHECK_THAT(expect_io_error("movielens", d.path), Catch::Contains("ratings.csv: is a directory"));
  fs::remove(d.path / "ratings.csv");
  REQUIRE(::mkfifo((d.path / "ratings.csv").c_str(), 0600) == 0);
  // Opening a FIFO without a writer would block: the type is checked first.
  CHECK_THAT(expect_io_error("movielens", d.path), Catch::Contains("ratings.csv: is not a regular file (a FIFO)"));
  fs::remove(d.path / "ratings.csv");
  fs::create_symlink("/dev/null", d.path / "ratings.csv");
  CHECK_THAT(expect_io_error("movielens", d.path), Catch::Contains("(a character device)"));
  fs::remove(d.path / "ratings.csv");
  CHECK_THAT(expect_io_error("movielens", d.path), Catch::Contains("needs 'ratings.csv', which is missing"));
  // The same in the formats that pick their files by name.
  TempDir g;
  g.write("items.jsonl", "{\"item_id\": \"a\"}\n");
  REQUIRE(::mkfifo((g.path / "interactions.jsonl").c_str(), 0600) == 0);
  CHECK_THAT(expect_io_error("jsonl", g.path), Catch::Contains("interactions.jsonl: is not a regular file (a FIFO)"));
  TempDir a;
  a.write("meta.jsonl", "{\"asin\": \"A1\"}\n");
  fs::create_directory(a.path / "reviews.jsonl");
  CHECK_THAT(expect_io_error("amazon", a.path), Catch::Contains("reviews.jsonl: is a directory"));
  // The dataset folder itself, and whole-file reads (LC-Rec, configs).
  CHECK_THAT(expect_io_error("jsonl", g.path / "items.jsonl"), Catch::Contains("found a file"));
  CHECK_THAT(expect_io_error("jsonl", g.path / "interactions.jsonl"), Catch::Contains("found a special file"));
  CHECK_THROWS_WITH(read_file(g.path / "interactions.jsonl"), Catch::Contains("(a FIFO)"));
  CHECK_THROWS_WITH(read_file(g.path / "nothing.json"), Catch::Contains("nothing.json: does not exist"));
  CHECK_THROWS_WITH(require_regular_file(g.path), Catch::Contains("is a directory"));
}

TEST_CASE("hostile: an unreadable file says why") {
  if (::geteuid() == 0) {
    WARN("running as root: permissions do not apply, skipped");
    return;
  }
  TempDir d;
  d.write("movies.csv", kMovies);
  d.write("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n");
  fs::permissions(d.path / "ratings.csv", fs::perms::none);
  CHECK_THAT(expect_io_error("movielens", d.path), Catch::Contains("ratings.csv") && Catch::Contains("ermission denied"));
}

// --- valid inputs that must be accepted ---------------------------------------------------------------
TEST_CASE("hostile: JSON-escaped ids are the ids they spell") {
  TempDir d;
  d.write("x.item.json", "{\"abc\": {\"title\": \"A\"}, \"/x\": {\"title\": \"S\"}, \"q\\\"\": {\"title\": \"Q\"}}\n");
  d.write("x.inter.json", "{\"u\\u0031\": [\"a\\u0062c\", \"\\/x\", \"q\\\"\", \"abc\"]}\n");
  auto ds = load_dataset("amazon-lcrec", d.path);
  REQUIRE(ds.interactions.num_users() == 1);
  CHECK(ds.interactions.user_id(0) == "u1");
  const auto& seq = ds.interactions.sequence(0);
  REQUIRE(seq.size() == 4);
  CHECK(ds.catalog.id(seq[0].item) == "abc");
  CHECK(ds.catalog.id(seq[1].item) == "/x");
  CHECK(ds.catalog.id(seq[2].item) == "q\"");
  CHECK(seq[3].item == seq[0].item);
  // Integer ids of any length are compared as text.
  d.write("x.item.json", "{\"123456789012345678901234567890\": {\"title\": \"A\"}}\n");
  d.write("x.inter.json", "{\"u\": [123456789012345678901234567890]}\n");
  CHECK(load_dataset("amazon-lcrec", d.path).interactions.size() == 1);
  // The generic JSON lines.
  auto g = jsonl_dataset("{\"user_id\": \"u\", \"item_id\": \"\\u0061\"}\n");
  CHECK(load_dataset("jsonl", g.path).interactions.size() == 1);
}

TEST_CASE("hostile: a folder name that is not UTF-8 loads, named with its bytes shown") {
  TempDir d;
  const fs::path folder = d.path / std::string("caf\xE9-\xFF");
  fs::create_directories(folder);
  std::ofstream(folder / "movies.csv") << kMovies;
  std::ofstream(folder / "ratings.csv") << "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n";
  auto ds = load_dataset("movielens", folder);
  CHECK(ds.name == "caf\\xE9-\\xFF");
  CHECK_NOTHROW(compute_statistics(ds).to_json().dump());
  // Errors print the path's bytes.
  fs::remove(folder / "ratings.csv");
  CHECK_THAT(expect_io_error("movielens", folder), Catch::Contains(std::string("caf\xE9-\xFF")));
}

// --- the CLI: every failure is one line and exit code 1 -------------------------------------------------
namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

// The lamia binary: $LAMIA_CLI, else beside the tests folder of this build (build/lamia).
fs::path lamia_binary() {
  if (const char* env = std::getenv("LAMIA_CLI")) return env;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path().parent_path() / "lamia";
}

Run run_lamia(const std::string& args, const fs::path& dir) {
  Run r;
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd =
      "timeout 60 '" + lamia_binary().string() + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

void check_one_line_error(const Run& r, const std::string& mention) {
  INFO(r.err);
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("lamia: error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_THAT(r.err, Catch::Contains(mention));
  CHECK_THAT(r.err, !Catch::Contains("terminate called") && !Catch::Contains("Exception raised from") &&
                        !Catch::Contains("json.exception"));
}

}  // namespace

TEST_CASE("hostile: lamia stats and lamia run print one line and exit 1 on hostile input") {
  if (!fs::exists(lamia_binary())) {
    WARN("no lamia binary at " << lamia_binary() << " (build the lamia_cli target or set LAMIA_CLI): skipped");
    return;
  }
  TempDir d;
  auto deep = d.path / "deep";
  fs::create_directories(deep);
  std::ofstream(deep / "items.jsonl") << "{\"item_id\": \"a\", \"title\": " << nested(100000, '[', ']') << "}\n";
  std::ofstream(deep / "interactions.jsonl") << "{\"user_id\": \"u\", \"item_id\": \"a\"}\n";
  check_one_line_error(run_lamia("stats -f jsonl -p '" + deep.string() + "'", d.path),
                       "items.jsonl:1: field 'title': JSON nested deeper than 256");
  check_one_line_error(run_lamia("--threads 100000 stats -f synthetic", d.path), "--threads");
  REQUIRE(::mkfifo((d.path / "fifo").c_str(), 0600) == 0);
  check_one_line_error(run_lamia("stats -f synthetic -p '" + (d.path / "fifo").string() + "'", d.path), "(a FIFO)");

  // A folder name that is not UTF-8: valid JSON out, the bytes shown as \xNN.
  const fs::path odd = d.path / std::string("ml-\xE9");
  fs::create_directories(odd);
  std::ofstream(odd / "movies.csv") << kMovies;
  std::ofstream(odd / "ratings.csv") << "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n";
  auto ok = run_lamia("stats -f movielens -p '" + odd.string() + "'", d.path);
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  CHECK(nlohmann::json::parse(ok.out)["name"] == "ml-\\xE9");

  // lamia run (where the binary has it: a LAMIA_ONLY build may leave it out).
  if (run_lamia("--help", d.path).out.find("\n  run ") == std::string::npos) {
    WARN("this lamia has no 'run' command: the config cases are skipped");
    return;
  }
  auto config = [&](const std::string& text) {
    std::ofstream(d.path / "config.json") << text;
    return run_lamia("run --quiet --config '" + (d.path / "config.json").string() + "' --out '" +
                         (d.path / "out").string() + "'",
                     d.path);
  };
  check_one_line_error(config("{\"threads\": " + nested(100000, '[', ']') + "}"),
                       "config.json:1: field 'threads': JSON nested deeper than 256");
  check_one_line_error(config("{\"threads\": 1000000}"), "key 'threads': must be <=");
  check_one_line_error(config("{\"threads\": 1e400}"), "key 'threads'");
  check_one_line_error(config("{\"threads\": 4294967297}"), "key 'threads': expected an integer");
  check_one_line_error(config("{\"recommend\": {\"seed\": 18446744073709551616}}"), "key 'recommend.seed'");
  check_one_line_error(config("{\"recommend\": {\"epochs\": -4294967296}}"), "key 'recommend.epochs'");
  check_one_line_error(config("{\"threads\": [1, 2"), "config.json:1");
}
