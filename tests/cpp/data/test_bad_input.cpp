// The bad-input corpus (tests/data/<format>/<case>/, written by tests/data/make_loader_corpus.py):
// each case has one defect, and the error must name its file, line and field.
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/loaders.hpp>

#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>

using namespace lamia;

namespace {

std::filesystem::path bad_input_path(const std::string& format, const std::string& name) {
  return std::filesystem::path(LAMIA_TEST_DATA_DIR) / format / name;
}

// Loads the case and checks that it throws E whose message names "file:line" and the field.
template <class E>
std::string expect_error(const std::string& format, const std::string& name, const std::string& file,
                         std::size_t line, const std::string& field, LoadOptions options = {}) {
  try {
    load_dataset(format, bad_input_path(format, name), options);
  } catch (const E& e) {
    std::string what = e.what();
    INFO(what);
    CHECK(what.find(file + ":" + std::to_string(line) + ":") != std::string::npos);
    CHECK(what.find("field '" + field + "'") != std::string::npos);
    if constexpr (std::is_same_v<E, ParseError>) {
      CHECK(e.where().file == file);
      CHECK(e.where().line == line);
      CHECK(e.where().field == field);
    }
    return what;
  }
  FAIL("no " << typeid(E).name() << " for " << format << "/" << name);
  return {};
}

// Folder-level problems are IOErrors naming the folder and the file that is missing or extra.
std::string expect_io_error(const std::string& format, const std::string& name, const std::string& mention) {
  try {
    load_dataset(format, bad_input_path(format, name));
  } catch (const IOError& e) {
    std::string what = e.what();
    INFO(what);
    CHECK(what.find(name) != std::string::npos);
    CHECK(what.find(mention) != std::string::npos);
    return what;
  }
  FAIL("no IOError for " << format << "/" << name);
  return {};
}

// The same case with lenient = true loads, with the defect counted under kind (first).
// A skipped item can make later rows that use it count as unknown_item too.
LoadReport expect_lenient(const std::string& format, const std::string& name, const std::string& kind) {
  LoadOptions options;
  options.lenient = true;
  LoadReport report;
  load_dataset(format, bad_input_path(format, name), options, report);
  CHECK(report.warnings[kind] == 1);
  CHECK(report.num_warnings() == report.messages.size());
  REQUIRE(report.messages.size() >= 1);
  CHECK(report.messages[0].kind == kind);
  return report;
}

}  // namespace

// --- MovieLens ---------------------------------------------------------------------------------
TEST_CASE("movielens: a truncated ratings row names the missing field") {
  expect_error<ParseError>("movielens", "truncated_row", "ratings.csv", 3, "timestamp");
  expect_lenient("movielens", "truncated_row", "malformed_row");
}
TEST_CASE("movielens: a missing column names the column and the header line") {
  auto what = expect_error<ParseError>("movielens", "missing_column", "movies.csv", 1, "genres");
  CHECK(what.find("movieId, title") != std::string::npos);  // what was found
}
TEST_CASE("movielens: invalid UTF-8 in a title") {
  expect_error<ParseError>("movielens", "invalid_utf8", "movies.csv", 2, "title");
  expect_lenient("movielens", "invalid_utf8", "invalid_utf8");
}
TEST_CASE("movielens: a rating of an unknown movie") {
  expect_error<ParseError>("movielens", "unknown_item", "ratings.csv", 4, "movieId");
  expect_lenient("movielens", "unknown_item", "unknown_item");
}
TEST_CASE("movielens: a duplicate movie id, counted in physical lines after an embedded newline") {
  expect_error<ParseError>("movielens", "duplicate_item", "movies.csv", 6, "movieId");
  expect_lenient("movielens", "duplicate_item", "duplicate_item");
}
TEST_CASE("movielens: an empty ratings file") {
  expect_error<ParseError>("movielens", "empty_file", "ratings.csv", 1, "userId");
  LoadOptions lenient;
  lenient.lenient = true;
  // Nothing to recover from: structural problems throw even when lenient.
  CHECK_THROWS_AS(load_dataset("movielens", bad_input_path("movielens", "empty_file"), lenient), ParseError);
}
TEST_CASE("movielens: a rating that is not a number") {
  expect_error<ParseError>("movielens", "bad_number", "ratings.csv", 2, "rating");
}
TEST_CASE("movielens: a quoted field left open at the end of the file") {
  expect_error<ParseError>("movielens", "unclosed_quote", "movies.csv", 7, "title");
}
TEST_CASE("movielens: a folder without movies.csv") {
  expect_io_error("movielens", "wrong_files", "movies.csv");
}
TEST_CASE("movielens: a truncated ml-100k u.item row") {
  expect_error<ParseError>("movielens", "ml100k_truncated", "u.item", 3, "video_release_date");
}

// --- MIND --------------------------------------------------------------------------------------
TEST_CASE("mind: a truncated news row") {
  expect_error<ParseError>("mind", "truncated_row", "news.tsv", 2, "abstract");
  expect_lenient("mind", "truncated_row", "malformed_row");
}
TEST_CASE("mind: a duplicate news id") {
  expect_error<ParseError>("mind", "duplicate_item", "news.tsv", 3, "news_id");
}
TEST_CASE("mind: invalid UTF-8 in a title") {
  expect_error<ParseError>("mind", "invalid_utf8", "news.tsv", 2, "title");
}
TEST_CASE("mind: an impression time in the wrong format") {
  expect_error<ParseError>("mind", "bad_time", "behaviors.tsv", 2, "time");
  expect_lenient("mind", "bad_time", "invalid_value");
}
TEST_CASE("mind: an impression label other than 0 or 1") {
  expect_error<ParseError>("mind", "bad_impression", "behaviors.tsv", 3, "impressions");
}
TEST_CASE("mind: an empty behaviors file") {
  expect_error<ParseError>("mind", "empty_file", "behaviors.tsv", 1, "impression_id");
}
TEST_CASE("mind: a folder with behaviours.tsv misspelt") {
  expect_io_error("mind", "wrong_files", "behaviors.tsv");
}
TEST_CASE("mind: unknown news ids are an error when asked for") {
  LoadOptions options;
  options.unknown_items = UnknownItems::kError;
  expect_error<ParseError>("mind", "ok", "behaviors.tsv", 1, "history", options);
}

// --- Amazon, LC-Rec form -----------------------------------------------------------------------
TEST_CASE("amazon-lcrec: a truncated item file") {
  expect_error<ParseError>("amazon-lcrec", "truncated", "Tiny.item.json", 16, "2");
}
TEST_CASE("amazon-lcrec: an interaction with an unknown item id") {
  expect_error<ParseError>("amazon-lcrec", "unknown_item", "Tiny.inter.json", 8, "1");
  expect_lenient("amazon-lcrec", "unknown_item", "unknown_item");
}
TEST_CASE("amazon-lcrec: invalid UTF-8 in a title") {
  expect_error<ParseError>("amazon-lcrec", "invalid_utf8", "Tiny.item.json", 15, "2.title");
  expect_lenient("amazon-lcrec", "invalid_utf8", "invalid_utf8");
}
TEST_CASE("amazon-lcrec: a duplicate item id") {
  expect_error<ParseError>("amazon-lcrec", "duplicate_item", "Tiny.item.json", 14, "1");
}
TEST_CASE("amazon-lcrec: an item that is not an object") {
  expect_error<ParseError>("amazon-lcrec", "not_object", "Tiny.item.json", 14, "2");
}
TEST_CASE("amazon-lcrec: two item files") {
  auto what = expect_io_error("amazon-lcrec", "wrong_files", "Other.item.json");
  CHECK(what.find("Tiny.item.json") != std::string::npos);
}
TEST_CASE("amazon-lcrec: an empty item file") {
  expect_error<ParseError>("amazon-lcrec", "empty_file", "Tiny.item.json", 1, "item id");
}

// --- Amazon, raw form --------------------------------------------------------------------------
TEST_CASE("amazon: a review line cut short") {
  expect_error<ParseError>("amazon", "malformed_line", "reviews_Tiny.json", 2, "asin");
  expect_lenient("amazon", "malformed_line", "malformed_row");
}
TEST_CASE("amazon: a review without a reviewer") {
  expect_error<ParseError>("amazon", "missing_field", "reviews_Tiny.json", 3, "reviewerID");
}
TEST_CASE("amazon: a review of an item without metadata") {
  expect_error<ParseError>("amazon", "unknown_item", "reviews_Tiny.json", 3, "asin");
  LoadOptions skip;
  skip.unknown_items = UnknownItems::kSkip;
  LoadReport report;
  auto ds = load_dataset("amazon", bad_input_path("amazon", "unknown_item"), skip, report);
  CHECK(ds.interactions.size() == 2);
  CHECK(report.counts["unknown_item_skipped"] == 1);
  CHECK(report.num_warnings() == 0);
}
TEST_CASE("amazon: a rating that is not a number") {
  expect_error<ParseError>("amazon", "bad_rating", "reviews_Tiny.json", 2, "overall");
}
TEST_CASE("amazon: invalid UTF-8 in metadata") {
  expect_error<ParseError>("amazon", "invalid_utf8", "meta_Tiny.json", 3, "title");
}
TEST_CASE("amazon: a folder without a metadata file") {
  expect_io_error("amazon", "wrong_files", "meta");
}

// --- H&M ---------------------------------------------------------------------------------------
TEST_CASE("hm: articles without detail_desc") {
  expect_error<ParseError>("hm", "missing_column", "articles.csv", 1, "detail_desc");
}
TEST_CASE("hm: a truncated transaction row") {
  expect_error<ParseError>("hm", "truncated_row", "transactions_train.csv", 3, "price");
  expect_lenient("hm", "truncated_row", "malformed_row");
}
TEST_CASE("hm: a transaction of an unknown article") {
  expect_error<ParseError>("hm", "unknown_item", "transactions_train.csv", 4, "article_id");
  LoadOptions add;
  add.unknown_items = UnknownItems::kAdd;
  auto ds = load_dataset("hm", bad_input_path("hm", "unknown_item"), add);
  auto item = ds.catalog.find("0999999999");
  REQUIRE(item);
  CHECK_FALSE(ds.catalog.has_text(*item));
}
TEST_CASE("hm: a date in the wrong format") {
  expect_error<ParseError>("hm", "bad_date", "transactions_train.csv", 2, "t_dat");
}
TEST_CASE("hm: a duplicate article id") {
  expect_error<ParseError>("hm", "duplicate_item", "articles.csv", 3, "article_id");
}

// --- generic -----------------------------------------------------------------------------------
TEST_CASE("jsonl: a line cut short") {
  expect_error<ParseError>("jsonl", "malformed_line", "interactions.jsonl", 2, "timestamp");
}
TEST_CASE("jsonl: an interaction without a user") {
  expect_error<ParseError>("jsonl", "missing_field", "interactions.jsonl", 4, "user_id");
}
TEST_CASE("jsonl: a timestamp that is neither a number nor a date") {
  expect_error<ParseError>("jsonl", "bad_timestamp", "interactions.jsonl", 2, "timestamp");
}
TEST_CASE("csv: interactions without the mapped user column") {
  expect_error<ParseError>("csv", "missing_column", "interactions.csv", 1, "user_id");
  LoadOptions mapped;
  mapped.mapping.user_id = "user";
  CHECK(load_dataset("csv", bad_input_path("csv", "missing_column"), mapped).interactions.size() == 1);
}
TEST_CASE("csv: an interaction with an unknown item id") {
  expect_error<ParseError>("csv", "unknown_item", "interactions.csv", 3, "item_id");
}

// --- the entry point ---------------------------------------------------------------------------
TEST_CASE("load_dataset rejects unknown formats and missing folders") {
  CHECK_THROWS_AS(load_dataset("parquet", bad_input_path("csv", "ok")), ValueError);
  CHECK_THROWS_WITH(load_dataset("parquet", bad_input_path("csv", "ok")), Catch::Contains("movielens"));
  CHECK_THROWS_AS(load_dataset("movielens", bad_input_path("movielens", "no_such_case")), IOError);
  CHECK_THROWS_AS(load_dataset("movielens", bad_input_path("movielens", "ok") / "movies.csv"), IOError);
}

// --- robustness: cut or corrupt the well-formed cases anywhere --------------------------------
namespace {

// Loads dir in both modes; anything but a Dataset or a lamia::Error is a failure.
std::size_t g_loads = 0;

void load_or_lamia_error(const std::string& format, const std::filesystem::path& dir, const std::string& what) {
  for (bool lenient : {false, true}) {
    ++g_loads;
    LoadOptions options;
    options.lenient = lenient;
    try {
      load_dataset(format, dir, options);
    } catch (const Error&) {
    } catch (const std::exception& e) {
      FAIL(format << " " << what << (lenient ? " (lenient)" : "") << ": non-lamia exception: " << e.what());
    }
  }
}

}  // namespace

TEST_CASE("cutting or corrupting any file of a good case gives a dataset or a lamia error, never a crash") {
  namespace fs = std::filesystem;
  auto tmp = fs::temp_directory_path() / ("lamia_test_fuzz_" + std::to_string(::getpid()));
  std::uint32_t rng = 12345;  // xorshift, seeded: the same corruptions every run
  auto next = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
  };
  for (const std::string format : {"movielens", "mind", "amazon-lcrec", "amazon", "hm", "jsonl", "csv"}) {
    auto good = bad_input_path(format, "ok");
    for (const auto& entry : fs::directory_iterator(good)) {
      std::string bytes = read_file(entry.path());
      auto name = entry.path().filename().string();
      auto reset = [&] {
        fs::remove_all(tmp);
        fs::create_directories(tmp);
        for (const auto& e : fs::directory_iterator(good)) fs::copy_file(e.path(), tmp / e.path().filename());
      };
      const std::size_t step = std::max<std::size_t>(1, bytes.size() / 40);
      for (std::size_t cut = 0; cut < bytes.size(); cut += step) {
        reset();
        write_text_atomically(tmp / name, std::string_view(bytes).substr(0, cut));
        load_or_lamia_error(format, tmp, name + " cut at " + std::to_string(cut));
      }
      for (int k = 0; k < 40; ++k) {
        reset();
        std::string bad = bytes;
        for (int j = 0; j < 3; ++j) bad[next() % bad.size()] = char(next() & 0xFF);
        write_text_atomically(tmp / name, bad);
        load_or_lamia_error(format, tmp, name + " corrupted #" + std::to_string(k));
      }
    }
  }
  fs::remove_all(tmp);
  CHECK(g_loads > 2000);
}
