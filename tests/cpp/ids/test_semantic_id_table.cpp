// SemanticIdTable: collisions, lookups, the prefix trie, the file format.
#include <lamia/core/errors.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>

#include "quantize/quantize_test_util.hpp"

using lamia::SemanticIdTable;
using Catch::Matchers::Contains;
using Ids = std::vector<SemanticIdTable::Token>;

namespace {
// 6 items, L = 2: items 0, 2, 5 share (1, 2); item 3 and 4 share (0, 3).
SemanticIdTable small_table() {
  std::vector<std::int32_t> codes{1, 2, 0, 1, 1, 2, 0, 3, 0, 3, 1, 2};
  return SemanticIdTable::from_codes(codes.data(), 6, 2, {4, 4}, lamia::IndexTokenOrder::item_order);
}
}  // namespace

TEST_CASE("by default the index token follows a seeded hash of the item, unrelated to item order", "[table]") {
  // 1,000 items with the same codes: their index tokens are a permutation of 0..999 whose rank
  // correlation with the item index is near 0 (item order is popularity order on the synthetic
  // catalog), stable across calls, and another seed gives another permutation.
  const int n = 1000;
  std::vector<std::int32_t> codes(n * 2, 1);
  auto a = SemanticIdTable::from_codes(codes.data(), n, 2, {2, 2});
  auto b = SemanticIdTable::from_codes(codes.data(), n, 2, {2, 2});
  auto c = SemanticIdTable::from_codes(codes.data(), n, 2, {2, 2}, lamia::IndexTokenOrder::item_hash, 7);
  std::set<int> seen;
  double sum_d2 = 0;
  int same_as_b = 0, same_as_c = 0;
  for (int i = 0; i < n; ++i) {
    const int token = a.id(i)[2];
    seen.insert(token);
    sum_d2 += double(token - i) * double(token - i);
    same_as_b += token == b.id(i)[2];
    same_as_c += token == c.id(i)[2];
  }
  CHECK(seen.size() == std::size_t(n));
  CHECK(*seen.rbegin() == n - 1);
  const double spearman = 1.0 - 6.0 * sum_d2 / (double(n) * (double(n) * n - 1));
  CHECK(std::abs(spearman) < 0.1);  // |rho| of a random permutation of 1000: about 0.03 (sd)
  CHECK(same_as_b == n);
  CHECK(same_as_c < 20);  // two random permutations agree on about 1 position
  for (int i = 0; i < n; ++i) CHECK(a.item(a.id(i)) == i);
}

TEST_CASE("colliding items get index tokens 0, 1, 2 in item order when asked", "[table]") {
  auto t = small_table();
  CHECK(t.id_length() == 3);
  CHECK(t.id(0) == Ids{1, 2, 0});
  CHECK(t.id(2) == Ids{1, 2, 1});
  CHECK(t.id(5) == Ids{1, 2, 2});
  CHECK(t.id(3) == Ids{0, 3, 0});
  CHECK(t.id(4) == Ids{0, 3, 1});
  CHECK(t.id(1) == Ids{0, 1, 0});
  CHECK(t.num_colliding_items() == 5);
  CHECK(t.num_unique_codes() == 3);
  CHECK(t.codebook_sizes() == std::vector<std::int64_t>{4, 4, 3});
}

TEST_CASE("lookups work both ways and by prefix", "[table]") {
  auto t = small_table();
  for (int i = 0; i < 6; ++i) CHECK(t.item(t.id(i)) == i);
  CHECK_FALSE(t.find({1, 2, 3}).has_value());
  CHECK_FALSE(t.find({1, 2}).has_value());
  REQUIRE_THROWS_AS(t.item({3, 3, 0}), lamia::IndexError);
  REQUIRE_THROWS_AS(t.id(6), lamia::IndexError);
  CHECK(t.items_with_prefix({1}) == std::vector<lamia::ItemIndex>{0, 2, 5});
  CHECK(t.items_with_prefix({0}) == std::vector<lamia::ItemIndex>{1, 3, 4});
  CHECK(t.items_with_prefix({}).size() == 6);
  CHECK(t.items_with_prefix({2}).empty());
  CHECK(t.allowed_next({}) == Ids{0, 1});
  CHECK(t.allowed_next({0}) == Ids{1, 3});
  CHECK(t.allowed_next({1, 2}) == Ids{0, 1, 2});
  CHECK(t.allowed_next({1, 2, 0}).empty());
  CHECK(t.allowed_next({7}).empty());
}

TEST_CASE("the trie agrees with a brute-force scan on random codes", "[table]") {
  const int L = GENERATE(1, 3);
  const int k = GENERATE(2, 5);
  std::mt19937 rng(L * 10 + k);
  const int n = 200;
  std::vector<std::int32_t> codes(n * L);
  for (auto& c : codes) c = static_cast<std::int32_t>(rng() % k);
  auto t = SemanticIdTable::from_codes(codes.data(), n, L, std::vector<std::int64_t>(L, k));
  // Walking the trie node by node finds every item at its leaf.
  for (int i = 0; i < n; ++i) {
    auto id = t.id(i);
    auto node = t.walk(id.data(), id.size());
    REQUIRE(node != SemanticIdTable::kNoNode);
    CHECK(t.leaf_item(node) == i);
    CHECK(t.count(node) == 1);
  }
  // allowed_next of every prefix of length 1 equals the set seen in the data.
  for (int c = 0; c < k; ++c) {
    std::set<std::int32_t> expect;
    for (int i = 0; i < n; ++i) {
      if (codes[i * L] == c) expect.insert(L > 1 ? codes[i * L + 1] : t.id(i)[1]);
    }
    auto got = t.allowed_next({c});
    CHECK(std::vector<std::int32_t>(expect.begin(), expect.end()) == got);
    CHECK(t.count(t.child(t.root(), c)) == static_cast<std::int64_t>(t.items_with_prefix({c}).size()));
  }
  CHECK(t.count(t.root()) == n);
}

TEST_CASE("a new item takes the next free index token of its group", "[table]") {
  auto t = small_table();
  CHECK(t.add_item({1, 2}) == 6);
  CHECK(t.id(6) == Ids{1, 2, 3});
  CHECK(t.codebook_sizes().back() == 4);
  CHECK(t.add_item({3, 3}) == 7);
  CHECK(t.id(7) == Ids{3, 3, 0});
  CHECK(t.id(0) == Ids{1, 2, 0});  // existing IDs unchanged
  CHECK(t.item({1, 2, 3}) == 6);
  REQUIRE_THROWS_WITH(t.add_item({4, 0}), Contains("position 0 is 4, expected 0 to 3"));
  REQUIRE_THROWS_AS(t.add_item({1}), lamia::ValueError);
}

TEST_CASE("out-of-range codes are rejected naming the item", "[table][errors]") {
  std::vector<std::int32_t> codes{0, 1, 5, 0};
  REQUIRE_THROWS_WITH(SemanticIdTable::from_codes(codes.data(), 2, 2, {4, 4}),
                      Contains("item 1 at position 0 is 5, expected 0 to 3"));
  auto tensor = torch::tensor({{0, 1}, {2, 3}});
  auto t = SemanticIdTable::from_codes(tensor);
  CHECK(t.codebook_sizes() == std::vector<std::int64_t>{3, 4, 1});
  CHECK(torch::equal(t.codes(), tensor));
}

TEST_CASE("save then load gives the same table, and a readable dump", "[table]") {
  auto t = small_table();
  const auto path = lamia::test::temp_path("table_roundtrip.sid");
  t.save(path);
  auto r = SemanticIdTable::load(path);
  CHECK(r == t);
  CHECK(r.allowed_next({0}) == Ids{1, 3});
  const auto dump = t.dump();
  CHECK_THAT(dump, Contains("6 items, 2 codes + index token"));
  CHECK_THAT(dump, Contains("\n5\t1 2 2\n"));
}

TEST_CASE("corrupted table files are rejected naming the file", "[table][errors]") {
  auto t = small_table();
  const auto good = lamia::test::temp_path("table_good.sid");
  t.save(good);
  const std::string bytes = lamia::test::read_bytes(good);
  const auto bad = lamia::test::temp_path("table_bad.sid");
  auto expect_error = [&](const std::string& content, const std::string& what) {
    lamia::test::write_bytes(bad, content);
    REQUIRE_THROWS_AS(SemanticIdTable::load(bad), lamia::ValueError);
    REQUIRE_THROWS_WITH(SemanticIdTable::load(bad), Contains(bad.string()) && Contains(what));
  };
  SECTION("truncated") { expect_error(bytes.substr(0, bytes.size() - 9), "truncated"); }
  SECTION("empty") { expect_error("", "bad magic"); }
  SECTION("bad magic") {
    auto b = bytes;
    b[3] = '?';
    expect_error(b, "bad magic");
  }
  SECTION("wrong version") {
    auto b = bytes;
    b[8] = 2;
    expect_error(b, "unsupported lamia semantic-ID table format version 2");
  }
  SECTION("inconsistent sizes") {
    auto b = bytes;
    b[16] = 7;  // num_items 6 -> 7
    expect_error(b, "header promises 7 items x 3 tokens");
  }
  SECTION("zero codebook size") {
    auto b = bytes;
    for (int i = 24; i < 32; ++i) b[i] = 0;  // codebook_sizes[0] = 0
    expect_error(b, "field 'codebook_sizes' is 0");
  }
  SECTION("flipped data byte") {
    auto b = bytes;
    b[b.size() - 6] = static_cast<char>(b[b.size() - 6] ^ 0x40);
    expect_error(b, "checksum mismatch");
  }
}
