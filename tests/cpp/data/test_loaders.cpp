// The loaders on the well-formed corpus cases, and their internals (CSV reader, UTF-8,
// Python literals, times).
#include "temp_dir.hpp"
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/data/detail/text_io.hpp>
#include <lamia/data/loaders.hpp>

#include <catch2/catch.hpp>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <string>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

fs::path corpus(const std::string& format, const std::string& name) {
  return fs::path(LAMIA_TEST_DATA_DIR) / format / name;
}

std::vector<std::vector<std::string>> read_csv(const fs::path& p, detail::CsvDialect d = {}) {
  detail::CsvReader r(p, d);
  std::vector<std::vector<std::string>> rows;
  while (r.next()) {
    rows.emplace_back();
    for (std::size_t i = 0; i < r.size(); ++i) rows.back().emplace_back(r[i]);
  }
  return rows;
}

std::vector<std::string> item_ids(const Dataset& ds, const std::string& user) {
  std::vector<std::string> out;
  for (const auto& e : ds.interactions.sequence(*ds.interactions.find_user(user))) out.push_back(ds.catalog.id(e.item));
  return out;
}

}  // namespace

TEST_CASE("UTF-8 validation accepts valid text and finds the first bad byte") {
  CHECK(detail::is_valid_utf8("plain ascii that is longer than eight bytes"));
  CHECK(detail::is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK(detail::find_invalid_utf8("abc\xFF") == 3);
  CHECK(detail::find_invalid_utf8("abcdefgh\xC3") == 8);           // truncated sequence
  CHECK(detail::find_invalid_utf8("\xC0\xAF") == 0);               // overlong
  CHECK(detail::find_invalid_utf8("x\xED\xA0\x80") == 1);          // surrogate
  CHECK(detail::find_invalid_utf8("x\xF4\x90\x80\x80") == 1);      // above U+10FFFF
  CHECK(detail::find_invalid_utf8("ok\x80") == 2);                 // stray continuation
  CHECK(detail::latin1_to_utf8("f\xEAte") == "f\xC3\xAAte");
}

TEST_CASE("CSV reader: quotes, escaped quotes, embedded newlines, CRLF, BOM, blank lines") {
  lamia::testing::TempDir dir;
  auto p = dir.path / "a.csv";
  write_text_atomically(p, "\xEF\xBB\xBFh1,h2,h3\r\n1,\"a,b\",\"say \"\"hi\"\"\"\r\n\r\n2,\"two\r\nlines\",x\"y\n3,,\"\"\n4,last,no-newline");
  auto rows = read_csv(p);
  REQUIRE(rows.size() == 5);
  CHECK(rows[0] == std::vector<std::string>{"h1", "h2", "h3"});
  CHECK(rows[1] == std::vector<std::string>{"1", "a,b", "say \"hi\""});
  CHECK(rows[2] == std::vector<std::string>{"2", "two\r\nlines", "x\"y"});
  CHECK(rows[3] == std::vector<std::string>{"3", "", ""});
  CHECK(rows[4] == std::vector<std::string>{"4", "last", "no-newline"});

  detail::CsvReader r(p);
  std::vector<std::size_t> lines;
  while (r.next()) lines.push_back(r.line());
  CHECK(lines == std::vector<std::size_t>{1, 2, 4, 6, 7});
}

TEST_CASE("CSV reader: records that straddle the 256 KiB read chunks are parsed whole") {
  lamia::testing::TempDir dir;
  auto p = dir.path / "big.csv";
  std::string text;
  const std::string long_field(700000, 'x');
  for (int i = 0; i < 6; ++i) text += std::to_string(i) + ",\"" + long_field + "\n\"\"q\"\"\"," + std::to_string(i * 2) + "\n";
  write_text_atomically(p, text);
  auto rows = read_csv(p);
  REQUIRE(rows.size() == 6);
  for (int i = 0; i < 6; ++i) {
    CHECK(rows[std::size_t(i)][0] == std::to_string(i));
    CHECK(rows[std::size_t(i)][1] == long_field + "\n\"q\"");
    CHECK(rows[std::size_t(i)][2] == std::to_string(i * 2));
  }
}

TEST_CASE("TSV without quoting keeps quotes literally; gzip is read transparently") {
  lamia::testing::TempDir dir;
  auto p = dir.path / "a.tsv.gz";
  const std::string content = "\"N1\tA \"quoted\" title\n";
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f);
  gzwrite(f, content.data(), unsigned(content.size()));
  gzclose(f);
  auto rows = read_csv(p, {'\t', false});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == std::vector<std::string>{"\"N1", "A \"quoted\" title"});
}

TEST_CASE("Python literals of the 2014 Amazon metadata become JSON") {
  auto j = detail::parse_python_literal(
      "{'a': 'It\\'s', \"b\": [1, -2.5, True, None], 'c': (u'caf\\xe9',), 'd': {'e': '\\u20ac'}}", "m.json", 3);
  CHECK(j["a"] == "It's");
  CHECK(j["b"][0] == 1);
  CHECK(j["b"][1] == -2.5);
  CHECK(j["b"][2] == true);
  CHECK(j["b"][3].is_null());
  CHECK(j["c"][0] == "caf\xC3\xA9");
  CHECK(j["d"]["e"] == "\xE2\x82\xAC");
  CHECK_THROWS_WITH(detail::parse_python_literal("{'a': 'open", "m.json", 3), Catch::Contains("m.json:3"));
  CHECK_THROWS_AS(detail::parse_python_literal("{'a': nan}", "m.json", 3), ParseError);
}

TEST_CASE("movielens: CRLF, BOM, quoted titles with commas, quotes and newlines; tags aggregated") {
  LoadReport report;
  auto ds = load_dataset("movielens", corpus("movielens", "ok"), {}, report);
  REQUIRE(ds.catalog.size() == 4);
  CHECK(ds.catalog.attribute_names() == std::vector<std::string>{"title", "genres", "tags"});
  CHECK(ds.catalog.value(0, "title") == "Toy Story (1995)");
  CHECK(ds.catalog.value(1, "title") == "American President, The (1995)");
  CHECK(ds.catalog.value(2, "title") == "Say \"Cheese\"\r\nTwice (2000)");
  CHECK(ds.catalog.value(0, "tags") == "pixar|fun");
  CHECK(ds.catalog.value(1, "tags").empty());
  CHECK(ds.interactions.num_users() == 2);
  CHECK(ds.interactions.size() == 4);
  // Sorted by time: user 1 rated movie 2 before movie 1 in the file, but later in time.
  CHECK(item_ids(ds, "1") == std::vector<std::string>{"2", "1"});
  auto first = ds.interactions.sequence(0)[0];
  CHECK(first.timestamp == 964981247);
  CHECK(first.rating == Approx(3.5));
  // Ratings are kept as given, low ones included.
  CHECK(ds.interactions.sequence(1)[0].rating == Approx(0.5));
  CHECK(report.counts["rows:ratings.csv"] == 4);
}

TEST_CASE("movielens: ml-100k's latin-1 u.item becomes UTF-8 with genre names") {
  auto ds = load_dataset("movielens", corpus("movielens", "ml100k_ok"));
  REQUIRE(ds.catalog.size() == 2);
  CHECK(ds.catalog.value(1, "title") == "Jour de f\xC3\xAAte (1949)");
  CHECK(ds.catalog.value(0, "genres") == "Animation|Children's|Comedy");
  CHECK(ds.catalog.value(1, "genres") == "Comedy");
  CHECK(ds.interactions.size() == 3);
  CHECK(item_ids(ds, "1") == std::vector<std::string>{"2", "1"});
}

TEST_CASE("mind: history once per user, then clicks in time order; unknown news added without text") {
  LoadReport report;
  auto ds = load_dataset("mind", corpus("mind", "ok"), {}, report);
  CHECK(ds.catalog.attribute_names() == std::vector<std::string>{"title", "abstract", "category", "subcategory"});
  CHECK(ds.catalog.value(0, "title") == "A \"quoted\" title");
  CHECK(ds.catalog.value(1, "abstract").empty());
  CHECK(ds.catalog.value(2, "subcategory") == "markets");
  // N9 (history of U1) is not in news.tsv: added, without text.
  auto n9 = ds.catalog.find("N9");
  REQUIRE(n9);
  CHECK_FALSE(ds.catalog.has_text(*n9));
  CHECK(report.counts["unknown_item_added"] == 1);
  // U1: history N1 N9 N2 (untimed), then the click of 11/11 (N2) before the one of 11/12 (N3).
  CHECK(item_ids(ds, "U1") == std::vector<std::string>{"N1", "N9", "N2", "N2", "N3"});
  const auto& u1 = ds.interactions.sequence(*ds.interactions.find_user("U1"));
  CHECK_FALSE(u1[0].has_timestamp());
  CHECK(u1[3].timestamp == 1573430400);  // 2019-11-11 00:00:00 UTC (12 AM)
  CHECK(u1[4].timestamp == 1573568086);  // 2019-11-12 14:14:46 UTC (2:14:46 PM)
  // U2 has no history; U3's impressions carry no labels (test split): history only.
  CHECK(item_ids(ds, "U2") == std::vector<std::string>{"N1", "N2"});
  CHECK(item_ids(ds, "U3") == std::vector<std::string>{"N3"});
  CHECK(report.counts["history_entries"] == 7);
  CHECK(report.counts["clicked_impressions"] == 4);

  LoadOptions skip;
  skip.unknown_items = UnknownItems::kSkip;
  auto skipped = load_dataset("mind", corpus("mind", "ok"), skip);
  CHECK(skipped.catalog.size() == 3);
  CHECK(item_ids(skipped, "U1") == std::vector<std::string>{"N1", "N2", "N2", "N3"});
}

TEST_CASE("amazon-lcrec: items keyed by id, ordered sequences, numeric or string ids") {
  auto ds = load_dataset("amazon-lcrec", corpus("amazon-lcrec", "ok"));
  REQUIRE(ds.catalog.size() == 3);
  CHECK(ds.catalog.attribute_names() == std::vector<std::string>{"title", "description", "brand", "categories"});
  CHECK(ds.catalog.value(1, "title") == "Pen \xC3\xA9 \"gel\"");
  CHECK(ds.catalog.value(1, "categories") == "Office Products, Pens");
  CHECK(ds.catalog.value(0, "description").empty());
  CHECK(item_ids(ds, "0") == std::vector<std::string>{"0", "1", "2"});
  CHECK(item_ids(ds, "1") == std::vector<std::string>{"2", "0"});
  CHECK_FALSE(ds.interactions.has_timestamps());
}

TEST_CASE("amazon: Python-literal metadata, strict JSON lines and gzipped reviews") {
  LoadReport report;
  auto ds = load_dataset("amazon", corpus("amazon", "ok"), {}, report);
  REQUIRE(ds.catalog.size() == 3);
  CHECK(ds.catalog.value(0, "categories") == "Office Products, Staplers");
  CHECK(ds.catalog.value(1, "title") == "Caf\xC3\xA9 pen");
  CHECK(ds.catalog.value(1, "description") == "It's blue");
  CHECK(ds.catalog.value(2, "description") == "500 sheets");
  CHECK(ds.catalog.value(2, "categories") == "Office Products, Paper");
  CHECK(report.counts["python_literal_lines"] == 2);
  // A1's reviews sorted by time; ratings kept (2.0 included).
  CHECK(item_ids(ds, "A1") == std::vector<std::string>{"B01", "B02"});
  const auto& a1 = ds.interactions.sequence(*ds.interactions.find_user("A1"));
  CHECK(a1[0].rating == Approx(2.0));
  CHECK(a1[0].timestamp == 1300000000);
  CHECK(ds.interactions.size() == 3);
}

TEST_CASE("hm: paper attributes first, zero-padded ids, purchases by date then row") {
  auto ds = load_dataset("hm", corpus("hm", "ok"));
  const std::vector<std::string> expected = {"detail_desc",
                                             "product_type_name",
                                             "product_group_name",
                                             "graphical_appearance_name",
                                             "colour_group_name",
                                             "perceived_colour_value_name",
                                             "index_name",
                                             "prod_name"};
  CHECK(ds.catalog.attribute_names() == expected);
  REQUIRE(ds.catalog.size() == 3);
  CHECK(ds.catalog.id(0) == "0108775015");
  CHECK(ds.catalog.id(2) == "0110065001");  // already padded in the file
  CHECK(ds.catalog.value(0, "detail_desc") == "Jersey top, narrow straps.");
  CHECK(ds.catalog.value(2, "detail_desc") == "Microfibre T-shirt bra\nwith underwired, moulded cups.");
  CHECK(ds.catalog.value(1, "detail_desc").empty());
  // c1 bought 044 on the 21st (row 1) and 015, 001 on the 20th (rows 2, 4).
  CHECK(item_ids(ds, "c1") == std::vector<std::string>{"0108775015", "0110065001", "0108775044"});
}

TEST_CASE("jsonl: field mapping defaults, all item fields as text, ISO and numeric times") {
  auto ds = load_dataset("jsonl", corpus("jsonl", "ok"));
  CHECK(ds.catalog.attribute_names() == std::vector<std::string>{"name", "tags", "price", "colour"});
  CHECK(ds.catalog.value(0, "tags") == "x, y");
  CHECK(ds.catalog.value(0, "price") == "3");
  CHECK(ds.catalog.id(1) == "2");
  CHECK(item_ids(ds, "u1") == std::vector<std::string>{"a", "2"});
  const auto& u1 = ds.interactions.sequence(*ds.interactions.find_user("u1"));
  CHECK(u1[0].timestamp == 1577836800);
  CHECK(u1[1].timestamp == 1577934245);
  CHECK(u1[0].rating == Approx(3.5));
  CHECK(item_ids(ds, "7") == std::vector<std::string>{"a"});

  LoadOptions chosen;
  chosen.mapping.text_fields = {"colour", "name"};
  auto picked = load_dataset("jsonl", corpus("jsonl", "ok"), chosen);
  CHECK(picked.catalog.attribute_names() == std::vector<std::string>{"colour", "name"});
  CHECK(picked.catalog.value(1, 0) == "red");
}

TEST_CASE("csv: TSV files with quoting, sorted by ISO dates") {
  auto ds = load_dataset("csv", corpus("csv", "ok"));
  CHECK(ds.catalog.attribute_names() == std::vector<std::string>{"name", "note"});
  CHECK(ds.catalog.value(0, "note") == "tab\there");
  CHECK(item_ids(ds, "u1") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("interactions-only generic data adds every item without text") {
  lamia::testing::TempDir dir;
  write_text_atomically(dir.path / "interactions.csv", "user_id,item_id\nu,x\nu,y\nv,x\n");
  LoadReport report;
  auto ds = load_dataset("csv", dir.path, {}, report);
  CHECK(ds.catalog.size() == 2);
  CHECK(ds.catalog.num_attributes() == 0);
  CHECK(ds.interactions.size() == 3);
  CHECK(report.counts["unknown_item_added"] == 2);
}

TEST_CASE("unknown-item policies parse by name") {
  CHECK(parse_unknown_items("skip") == UnknownItems::kSkip);
  CHECK(to_string(UnknownItems::kAdd) == "add");
  CHECK_THROWS_AS(parse_unknown_items("ignore"), ValueError);
}

TEST_CASE("lenient loads keep only the first max_messages messages but count all") {
  lamia::testing::TempDir dir;
  std::string ratings = "userId,movieId,rating,timestamp\n";
  for (int i = 0; i < 30; ++i) ratings += "1,1,bad,1\n";
  ratings += "1,1,4.0,1\n";
  write_text_atomically(dir.path / "movies.csv", "movieId,title,genres\n1,A,B\n");
  write_text_atomically(dir.path / "ratings.csv", ratings);
  LoadOptions options;
  options.lenient = true;
  options.max_messages = 5;
  LoadReport report;
  auto ds = load_dataset("movielens", dir.path, options, report);
  CHECK(ds.interactions.size() == 1);
  CHECK(report.warnings["invalid_value"] == 30);
  CHECK(report.messages.size() == 5);
  CHECK(report.messages[4].str().find("ratings.csv:6: field 'rating'") == 0);
  auto j = report.to_json();
  CHECK(j["warnings"]["invalid_value"] == 30);
  CHECK(j["messages"].size() == 5);
}

TEST_CASE("flat JSON objects of strings are read without a JSON tree, with every escape") {
  std::vector<std::pair<std::string, std::string>> out;
  REQUIRE(detail::parse_flat_string_object(
      " {\"a\": \"x\\\"y\\\\z\\/\\n\\t\", \"b\":\"\\u00e9\\ud83d\\ude00\",\n \"c\": \"\"} ", out));
  REQUIRE(out.size() == 3);
  CHECK(out[0] == std::pair<std::string, std::string>{"a", "x\"y\\z/\n\t"});
  CHECK(out[1].second == "\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(out[2].second.empty());
  CHECK(detail::parse_flat_string_object("{}", out));
  CHECK(out.empty());
  // Anything else is left to the full parser.
  CHECK_FALSE(detail::parse_flat_string_object("{\"a\": [\"x\"]}", out));
  CHECK_FALSE(detail::parse_flat_string_object("{\"a\": \"x\" \"b\"}", out));
  CHECK_FALSE(detail::parse_flat_string_object("{\"a\": \"\\ud83d\"}", out));  // lone surrogate
  CHECK_FALSE(detail::parse_flat_string_object("{\"a\": \"\\q\"}", out));
  CHECK_FALSE(detail::parse_flat_string_object("{\"a\": \"x\"} extra", out));
  CHECK_FALSE(detail::parse_flat_string_object("{\"a\": \"tab\there\"}", out));  // raw control character
}

TEST_CASE("amazon: the 2023 release's keys (parent_asin, user_id, rating, timestamp in ms)") {
  lamia::testing::TempDir dir;
  write_text_atomically(dir.path / "meta_Office_Products.jsonl",
                        "{\"parent_asin\": \"P1\", \"title\": \"Desk\", \"description\": [\"Oak\", \"desk\"], "
                        "\"store\": \"Ikea\", \"categories\": [\"Office\", \"Furniture\"], \"price\": null}\n"
                        "{\"parent_asin\": \"P2\", \"title\": \"Chair\", \"description\": [], \"store\": null, "
                        "\"categories\": []}\n");
  write_text_atomically(dir.path / "Office_Products.jsonl",
                        "{\"rating\": 5.0, \"asin\": \"C9\", \"parent_asin\": \"P2\", \"user_id\": \"U\", "
                        "\"timestamp\": 1600000000500}\n"
                        "{\"rating\": 1.0, \"asin\": \"C1\", \"parent_asin\": \"P1\", \"user_id\": \"U\", "
                        "\"timestamp\": 1500000000000}\n");
  auto ds = load_dataset("amazon", dir.path);
  REQUIRE(ds.catalog.size() == 2);
  CHECK(ds.catalog.value(0, "description") == "Oak desk");
  CHECK(ds.catalog.value(0, "brand") == "Ikea");
  CHECK(ds.catalog.value(0, "categories") == "Office, Furniture");
  CHECK(ds.catalog.value(1, "brand").empty());
  CHECK(item_ids(ds, "U") == std::vector<std::string>{"P1", "P2"});
  const auto& seq = ds.interactions.sequence(0);
  CHECK(seq[0].timestamp == 1500000000);
  CHECK(seq[1].timestamp == 1600000000);
  CHECK(seq[0].rating == Approx(1.0));
}
