#include "temp_dir.hpp"
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/sequences.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

constexpr float kNoRating = std::numeric_limits<float>::quiet_NaN();

// A catalog of n items "i0".."i<n-1>" with one attribute "title" (text "t<i>").
Catalog make_catalog(int n) {
  Catalog c({"title"});
  for (int i = 0; i < n; ++i) c.add("i" + std::to_string(i), {"t" + std::to_string(i)});
  return c;
}

// Users "u0".."u<n-1>"; user u has length(u) items (u + k) % items with timestamps 100 k.
Dataset make_dataset(int users, int items, const std::function<int(int)>& length) {
  Dataset d;
  d.catalog = make_catalog(items);
  for (int u = 0; u < users; ++u) {
    auto user = d.interactions.user("u" + std::to_string(u));
    for (int k = 0; k < length(u); ++k) d.interactions.append(user, {ItemIndex((u + k) % items), 100 * k, 5.0f});
  }
  return d;
}

std::vector<std::string> ids(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("u" + std::to_string(i));
  return v;
}

}  // namespace

TEST_CASE("the rating threshold keeps ratings at or above it and every unrated interaction") {
  Dataset d;
  d.catalog = make_catalog(6);
  auto u = d.interactions.user("u");
  const float ratings[] = {5.0f, 3.0f, 4.0f, kNoRating, 1.0f, 3.99f};
  for (int i = 0; i < 6; ++i) d.interactions.append(u, {ItemIndex(i), Interaction::kNoTimestamp, ratings[i]});

  auto s = build_sequences(d);
  REQUIRE(s.users.size() == 1);
  REQUIRE(s.users[0].items == std::vector<ItemIndex>{0, 2, 3});
  REQUIRE(s.stats.interactions_below_rating == 3);
  REQUIRE(s.stats.interactions_out == 3);

  SequenceOptions keep_all;
  keep_all.min_rating = std::nullopt;
  REQUIRE(build_sequences(d, keep_all).users[0].items.size() == 6);

  SequenceOptions three;
  three.min_rating = 3.0f;
  REQUIRE(build_sequences(d, three).users[0].items == std::vector<ItemIndex>{0, 1, 2, 3, 5});
}

TEST_CASE("a dataset without ratings is not filtered") {
  Dataset d;
  d.catalog = make_catalog(4);
  auto u = d.interactions.user("u");
  for (int i = 0; i < 4; ++i) d.interactions.append(u, {ItemIndex(i)});
  auto s = build_sequences(d);
  REQUIRE(s.users[0].items == std::vector<ItemIndex>{0, 1, 2, 3});
  REQUIRE(s.stats.interactions_below_rating == 0);
}

TEST_CASE("sequences are sorted by timestamp and ties keep the source order") {
  Dataset d;
  d.catalog = make_catalog(5);
  auto u = d.interactions.user("u");
  const std::int64_t times[] = {30, 10, 20, 10, 5};
  for (int i = 0; i < 5; ++i) d.interactions.append(u, {ItemIndex(i), times[i], 5.0f});
  auto s = build_sequences(d);
  REQUIRE(s.users[0].items == std::vector<ItemIndex>{4, 1, 3, 2, 0});
  REQUIRE(s.users[0].timestamps == std::vector<std::int64_t>{5, 10, 10, 20, 30});
}

TEST_CASE("sequences without timestamps keep the source order") {
  Dataset d;
  d.catalog = make_catalog(4);
  auto u = d.interactions.user("u");
  for (int i : {3, 1, 2, 0}) d.interactions.append(u, {ItemIndex(i)});
  auto s = build_sequences(d);
  REQUIRE(s.users[0].items == std::vector<ItemIndex>{3, 1, 2, 0});
}

TEST_CASE("a user mixing timestamped and untimestamped interactions is rejected by name") {
  Dataset d;
  d.catalog = make_catalog(3);
  auto u = d.interactions.user("alice");
  d.interactions.append(u, {0, 10});
  d.interactions.append(u, {1});
  REQUIRE_THROWS_WITH(build_sequences(d), Catch::Contains("'alice'") && Catch::Contains("1 interactions with a timestamp"));
  REQUIRE_THROWS_AS(build_sequences(d), ValueError);
}

TEST_CASE("untimed interactions before every timed one keep the loader's order and come first") {
  // MIND's shape: the click history (oldest first, no times), then clicked impressions at their times.
  Dataset d;
  d.catalog = make_catalog(6);
  auto u = d.interactions.user("u");
  for (int i : {5, 2, 4}) d.interactions.append(u, {ItemIndex(i)});
  d.interactions.append(u, {ItemIndex(0), 300});
  d.interactions.append(u, {ItemIndex(3), 100});
  d.interactions.append(u, {ItemIndex(1), 200});
  auto s = build_sequences(d);
  REQUIRE(s.users[0].items == std::vector<ItemIndex>{5, 2, 4, 3, 1, 0});
  const auto none = Interaction::kNoTimestamp;
  REQUIRE(s.users[0].timestamps == std::vector<std::int64_t>{none, none, none, 100, 200, 300});
}

TEST_CASE("the last N interactions are kept") {
  auto d = make_dataset(1, 100, [](int) { return 25; });
  auto s = build_sequences(d);
  REQUIRE(s.users[0].items.size() == 20);
  REQUIRE(s.users[0].items.front() == 5);
  REQUIRE(s.users[0].items.back() == 24);
  REQUIRE(s.stats.interactions_truncated == 5);

  SequenceOptions all;
  all.max_length = 0;
  REQUIRE(build_sequences(d, all).users[0].items.size() == 25);
  SequenceOptions three;
  three.max_length = 3;
  REQUIRE(build_sequences(d, three).users[0].items == std::vector<ItemIndex>{22, 23, 24});
}

TEST_CASE("the last N are taken after the rating filter, so N positives remain") {
  Dataset d;
  d.catalog = make_catalog(10);
  auto u = d.interactions.user("u");
  for (int i = 0; i < 10; ++i) d.interactions.append(u, {ItemIndex(i), i, i % 2 ? 5.0f : 1.0f});
  SequenceOptions o;
  o.max_length = 3;
  REQUIRE(build_sequences(d, o).users[0].items == std::vector<ItemIndex>{5, 7, 9});
}

TEST_CASE("users shorter than min_length are dropped and counted") {
  auto d = make_dataset(5, 50, [](int u) { return u; });  // lengths 0..4
  SequenceOptions o;
  o.min_length = 3;
  auto s = build_sequences(d, o);
  REQUIRE(s.users.size() == 2);
  REQUIRE(s.users[0].id == "u3");
  REQUIRE(s.users[0].user == 3);
  REQUIRE(s.stats.users_too_short == 3);
  REQUIRE(s.stats.interactions_of_short_users == 0 + 1 + 2);
  REQUIRE(s.stats.users_in == 5);
  REQUIRE(s.stats.users_out == 2);
  REQUIRE(s.stats.interactions_in == 10);
  REQUIRE(s.stats.interactions_out == 7);
  o.min_length = 0;
  REQUIRE(build_sequences(d, o).users.size() == 4);  // the empty user always goes
}

TEST_CASE("items without text are dropped with their interactions, counted and re-indexed") {
  Dataset d;
  d.catalog = Catalog({"title", "brand"});
  d.catalog.add("a", {"A", ""});
  d.catalog.add("empty1", {"", ""});
  d.catalog.add("b", {"", "B"});
  d.catalog.add("empty2", {"", ""});
  auto u = d.interactions.user("u");
  for (int i : {0, 1, 2, 3, 2, 1}) d.interactions.append(u, {ItemIndex(i)});

  SequenceOptions keep;
  auto kept = build_sequences(d, keep);
  REQUIRE(kept.catalog.size() == 4);
  REQUIRE(kept.users[0].items == std::vector<ItemIndex>{0, 1, 2, 3, 2, 1});

  SequenceOptions drop;
  drop.drop_items_without_text = true;
  auto s = build_sequences(d, drop);
  REQUIRE(s.stats.items_without_text == 2);
  REQUIRE(s.stats.interactions_without_text == 3);
  REQUIRE(s.catalog.size() == 2);
  REQUIRE(s.catalog.id(1) == "b");
  REQUIRE(s.source_items == std::vector<ItemIndex>{0, 2});
  REQUIRE(s.users[0].items == std::vector<ItemIndex>{0, 1, 1});
  REQUIRE(s.stats.items_out == 2);
}

TEST_CASE("an interaction with an item outside the catalog is an IndexError") {
  Dataset d;
  d.catalog = make_catalog(2);
  d.interactions.append(d.interactions.user("u"), {5});
  REQUIRE_THROWS_AS(build_sequences(d), IndexError);
  REQUIRE_THROWS_WITH(build_sequences(d), Catch::Contains("item index 5") && Catch::Contains("[0, 2)"));
}

TEST_CASE("shuffle_users is a permutation, deterministic for a seed, and seeds differ") {
  auto users = ids(200);
  auto a = shuffle_users(users, 7);
  auto b = shuffle_users(users, 7);
  auto c = shuffle_users(users, 8);
  REQUIRE(a.user_ids == b.user_ids);
  REQUIRE(a.user_ids != c.user_ids);
  REQUIRE(a.user_ids != users);
  auto sorted = a.user_ids;
  std::sort(sorted.begin(), sorted.end());
  auto expected = users;
  std::sort(expected.begin(), expected.end());
  REQUIRE(sorted == expected);
  REQUIRE(a.seed == 7);
  REQUIRE_THROWS_AS(shuffle_users({"x", "y", "x"}, 1), ValueError);
}

TEST_CASE("shuffle_users gives the same order on every platform (golden)") {
  // Fixed by std::mt19937_64 (whose output the standard defines) and our own Fisher-Yates.
  auto order = shuffle_users(ids(8), 2024);
  CAPTURE(order.user_ids);
  REQUIRE(order.user_ids == std::vector<std::string>{"u1", "u7", "u3", "u0", "u4", "u5", "u2", "u6"});
}

TEST_CASE("a saved user order is reused exactly by a later run") {
  lamia::testing::TempDir dir;
  const auto path = dir.path / "users.order";
  auto users = ids(50);
  auto first = load_or_create_user_order(path, users, 11);
  REQUIRE(fs::exists(path));
  REQUIRE(first.user_ids == shuffle_users(users, 11).user_ids);
  const auto bytes = read_file(path);

  // A later run with the users listed in another order gets the saved order back, unchanged.
  auto reversed = users;
  std::reverse(reversed.begin(), reversed.end());
  auto again = load_or_create_user_order(path, reversed, 11);
  REQUIRE(again.user_ids == first.user_ids);
  REQUIRE(read_file(path) == bytes);

  // The file wins over a fresh shuffle: a hand-written order is returned as it is.
  UserOrder custom{11, reversed};
  save_user_order(path, custom);
  REQUIRE(load_or_create_user_order(path, users, 11).user_ids == reversed);
  auto loaded = load_user_order(path);
  REQUIRE(loaded.seed == 11);
  REQUIRE(loaded.user_ids == reversed);
}

TEST_CASE("a user order that does not match the users is rejected with a clear error") {
  lamia::testing::TempDir dir;
  const auto path = dir.path / "users.order";
  save_user_order(path, shuffle_users(ids(10), 3));

  auto other = ids(10);
  other[4] = "newcomer";
  REQUIRE_THROWS_AS(load_or_create_user_order(path, other, 3), ValueError);
  REQUIRE_THROWS_WITH(load_or_create_user_order(path, other, 3),
                      Catch::Contains("users.order") && Catch::Contains("missing") && Catch::Contains("'newcomer'") &&
                          Catch::Contains("unknown") && Catch::Contains("'u4'"));
  REQUIRE_THROWS_WITH(load_or_create_user_order(path, ids(9), 3), Catch::Contains("unknown") && Catch::Contains("'u9'"));
  REQUIRE_THROWS_WITH(load_or_create_user_order(path, ids(10), 4),
                      Catch::Contains("seed 3") && Catch::Contains("seed 4"));
}

TEST_CASE("corrupted user order files are rejected naming the line") {
  lamia::testing::TempDir dir;
  const auto path = dir.path / "bad.order";
  auto expect_parse_error = [&](const std::string& content, const std::string& what) {
    write_text_atomically(path, content);
    CAPTURE(content);
    REQUIRE_THROWS_AS(load_user_order(path), ParseError);
    REQUIRE_THROWS_WITH(load_user_order(path), Catch::Contains("bad.order") && Catch::Contains(what));
  };
  expect_parse_error("something else\n", ":1: field 'magic'");
  expect_parse_error("lamia-user-order 2\nseed 1\nusers 0\n", "field 'version'");
  expect_parse_error("lamia-user-order 1\nseed x\nusers 0\n", ":2: field 'seed'");
  expect_parse_error("lamia-user-order 1\nseed 1\nusers 3\na\nb\n", ":6: field 'user'");
  expect_parse_error("lamia-user-order 1\nseed 1\nusers 2\na\na\n", ":5: field 'user'");
  expect_parse_error("lamia-user-order 1\nseed 1\nusers 1\na\nb\n", "continues");
  expect_parse_error("lamia-user-order 1\nseed 1\nusers 1\na", "truncated");
  expect_parse_error("", "end of file");
  REQUIRE_THROWS_AS(load_user_order(dir.path / "missing.order"), IOError);
  REQUIRE_THROWS_AS(save_user_order(path, {1, {"a", "b\nc"}}), ValueError);
}

TEST_CASE("user hold-out parts have the asked sizes, are disjoint and follow the order") {
  auto d = make_dataset(100, 300, [](int u) { return 2 + u % 7; });
  auto seqs = build_sequences(d);
  auto order = shuffle_users(seqs.user_ids(), 5);
  HoldoutOptions o;
  o.train_users = UserCount::count(60);
  o.valid_users = UserCount::count(10);
  o.test_users = UserCount::count(20);
  auto split = split_user_holdout(seqs, order, o);
  REQUIRE(split.train_users.size() == 60);
  REQUIRE(split.valid_users.size() == 10);
  REQUIRE(split.test_users.size() == 20);
  REQUIRE(split.unused_users == 10);
  REQUIRE(split.train.size() == 60);
  REQUIRE(split.valid.size() == 10);
  REQUIRE(split.test.size() == 20);

  std::set<UserIndex> all;
  for (const auto* part : {&split.train_users, &split.valid_users, &split.test_users})
    for (auto u : *part) REQUIRE(all.insert(u).second);
  for (std::size_t k = 0; k < 60; ++k) REQUIRE(d.interactions.user_id(split.train_users[k]) == order.user_ids[k]);
  for (std::size_t k = 0; k < 20; ++k) REQUIRE(d.interactions.user_id(split.test_users[k]) == order.user_ids[70 + k]);
}

TEST_CASE("hold-out targets are each user's last item and histories the items before it") {
  auto d = make_dataset(30, 100, [](int u) { return 2 + u % 5; });
  auto seqs = build_sequences(d);
  auto split = split_user_holdout(seqs, shuffle_users(seqs.user_ids(), 1), {});
  REQUIRE(split.test.size() == 3);  // 10% of 30
  REQUIRE(split.train.size() == 27);
  for (const auto* part : {&split.train, &split.test}) {
    for (const auto& ex : *part) {
      const auto& items = seqs.users[std::size_t(ex.user)].items;  // users are 0..29 in order here
      REQUIRE(ex.target == items.back());
      REQUIRE(ex.history == std::vector<ItemIndex>(items.begin(), items.end() - 1));
    }
  }
}

TEST_CASE("hold-out sizes may be fractions, and asking for too many users is an error") {
  auto d = make_dataset(45, 100, [](int) { return 3; });
  auto seqs = build_sequences(d);
  auto order = shuffle_users(seqs.user_ids(), 9);
  HoldoutOptions o;
  o.train_users = UserCount::fraction(8.0 / 9.0);
  o.test_users = UserCount::fraction(1.0 / 9.0);
  auto split = split_user_holdout(seqs, order, o);
  REQUIRE(split.train_users.size() == 40);
  REQUIRE(split.test_users.size() == 5);

  o.train_users = UserCount::count(41);
  REQUIRE_THROWS_WITH(split_user_holdout(seqs, order, o), Catch::Contains("41 + 0 + 5") && Catch::Contains("45 users"));
  o.train_users = std::nullopt;
  o.test_users = UserCount::fraction(1.5);
  REQUIRE_THROWS_WITH(split_user_holdout(seqs, order, o), Catch::Contains("test_users") && Catch::Contains("1.5"));
  o.test_users = UserCount::count(2);
  REQUIRE_THROWS_AS(split_user_holdout(seqs, shuffle_users(ids(44), 9), o), ValueError);
}

TEST_CASE("all_prefixes turns a training user into one example per position") {
  auto d = make_dataset(1, 10, [](int) { return 5; });
  auto seqs = build_sequences(d);
  HoldoutOptions o;
  o.test_users = UserCount::count(0);
  o.train_examples = TrainExamples::all_prefixes;
  auto split = split_user_holdout(seqs, shuffle_users(seqs.user_ids(), 0), o);
  REQUIRE(split.train.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    REQUIRE(split.train[i].history.size() == i + 1);
    REQUIRE(split.train[i].target == seqs.users[0].items[i + 1]);
  }
}

TEST_CASE("leave-one-out: last item tests, second to last validates, the rest trains") {
  auto d = make_dataset(6, 50, [](int u) { return 1 + u; });  // lengths 1..6
  SequenceOptions so;
  so.min_length = 1;
  auto seqs = build_sequences(d, so);
  auto split = split_leave_one_out(seqs);
  // Users with 1 item: nothing; 2: test only; 3: test + valid; >= 4: test + valid + train.
  REQUIRE(split.test.size() == 5);
  REQUIRE(split.valid.size() == 4);
  REQUIRE(split.train.size() == 3);
  REQUIRE(split.train_users.size() == 3);
  REQUIRE(split.skipped_examples == 1 + 1 + 1);  // u0 test, u1 valid, u2 train (empty histories)
  for (const auto& ex : split.test) {
    const auto& items = seqs.users[std::size_t(ex.user)].items;
    REQUIRE(ex.target == items[items.size() - 1]);
    REQUIRE(ex.history == std::vector<ItemIndex>(items.begin(), items.end() - 1));
  }
  for (const auto& ex : split.valid) {
    const auto& items = seqs.users[std::size_t(ex.user)].items;
    REQUIRE(ex.target == items[items.size() - 2]);
    REQUIRE(ex.history == std::vector<ItemIndex>(items.begin(), items.end() - 2));
  }
  for (const auto& ex : split.train) {
    const auto& items = seqs.users[std::size_t(ex.user)].items;
    REQUIRE(ex.target == items[items.size() - 3]);
    REQUIRE(ex.history == std::vector<ItemIndex>(items.begin(), items.end() - 3));
  }
}

TEST_CASE("sequence and split options round-trip through JSON and bad JSON names the key") {
  SequenceOptions s;
  s.min_rating = std::nullopt;
  s.max_length = 50;
  s.drop_items_without_text = true;
  nlohmann::json js = s;
  auto s2 = js.get<SequenceOptions>();
  REQUIRE_FALSE(s2.min_rating.has_value());
  REQUIRE(s2.max_length == 50);
  REQUIRE(s2.drop_items_without_text);
  REQUIRE(nlohmann::json(s2) == js);
  REQUIRE(nlohmann::json::parse(R"({"min_rating": 3.5})").get<SequenceOptions>().min_rating == 3.5f);
  REQUIRE(nlohmann::json::parse("{}").get<SequenceOptions>().max_length == 20);

  auto h = nlohmann::json::parse(R"({"train_users": 40000, "test_users": 5000, "valid_users": 0.05,
                                     "train_examples": "all_prefixes"})")
               .get<HoldoutOptions>();
  REQUIRE(h.train_users.has_value());
  REQUIRE_FALSE(h.train_users->is_fraction);
  REQUIRE(h.train_users->value == 40000);
  REQUIRE_FALSE(h.test_users.is_fraction);
  REQUIRE(h.valid_users.is_fraction);
  REQUIRE(h.valid_users.value == 0.05);
  REQUIRE(h.train_examples == TrainExamples::all_prefixes);
  REQUIRE(nlohmann::json(h).get<HoldoutOptions>().valid_users.value == 0.05);
  REQUIRE(nlohmann::json::parse(R"({"test_users": 1.0})").get<HoldoutOptions>().test_users.is_fraction);
  auto defaults = nlohmann::json(HoldoutOptions{});
  REQUIRE(defaults["train_users"].is_null());
  REQUIRE(defaults["test_users"] == 0.1);
  REQUIRE(nlohmann::json::parse(R"({"train_examples": "all_prefixes"})").get<LeaveOneOutOptions>().train_examples ==
          TrainExamples::all_prefixes);

  auto parse_seq = [](const char* t) { return nlohmann::json::parse(t).get<SequenceOptions>(); };
  auto parse_hold = [](const char* t) { return nlohmann::json::parse(t).get<HoldoutOptions>(); };
  REQUIRE_THROWS_WITH(parse_seq(R"({"max_len": 3})"), Catch::Contains("unknown key 'max_len'") && Catch::Contains("max_length"));
  REQUIRE_THROWS_WITH(parse_seq(R"({"max_length": -3})"), Catch::Contains("'max_length'") && Catch::Contains("-3"));
  REQUIRE_THROWS_WITH(parse_seq(R"({"min_rating": "4"})"), Catch::Contains("'min_rating'"));
  REQUIRE_THROWS_WITH(parse_hold(R"({"test_users": 1.5})"), Catch::Contains("'test_users'") && Catch::Contains("1.5"));
  REQUIRE_THROWS_WITH(parse_hold(R"({"test_users": -2})"), Catch::Contains("'test_users'"));
  REQUIRE_THROWS_WITH(parse_hold(R"({"train_examples": "each"})"), Catch::Contains("'train_examples'"));
  REQUIRE_THROWS_AS(parse_hold("[]"), ValueError);
}
