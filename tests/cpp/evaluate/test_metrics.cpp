#include <lamia/core/errors.hpp>
#include <lamia/evaluate/metrics.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace lamia;
using Catch::Matchers::Contains;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
}  // namespace

TEST_CASE("rank_of_target: descending score, ties by ascending item index", "[evaluate][metrics]") {
  // Full order: 1 (0.9), 4 (0.9), 0 (0.5), 2 (0.5), 3 (0.1).
  const std::vector<float> s = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f};
  CHECK(rank_of_target(s.data(), 5, 1) == 1);
  CHECK(rank_of_target(s.data(), 5, 4) == 2);
  CHECK(rank_of_target(s.data(), 5, 0) == 3);
  CHECK(rank_of_target(s.data(), 5, 2) == 4);
  CHECK(rank_of_target(s.data(), 5, 3) == 5);
}

TEST_CASE("rank_of_target: excluded items leave the ranking", "[evaluate][metrics]") {
  const std::vector<float> s = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f};
  CHECK(rank_of_target(s.data(), 5, 2, {1}) == 3);
  // Duplicates count once; an excluded item ranked below the target changes nothing.
  CHECK(rank_of_target(s.data(), 5, 2, {1, 1, 3}) == 3);
  CHECK(rank_of_target(s.data(), 5, 2, {4, 1, 0}) == 1);
  CHECK(rank_of_target(s.data(), 5, 3, {0, 1, 2, 4}) == 1);
  CHECK_THROWS_AS(rank_of_target(s.data(), 5, 2, {2}), ValueError);
  CHECK_THROWS_AS(rank_of_target(s.data(), 5, 2, {5}), IndexError);
  CHECK_THROWS_AS(rank_of_target(s.data(), 5, 2, {-1}), IndexError);
}

TEST_CASE("rank_of_target: infinities rank, NaN and bad arguments throw", "[evaluate][metrics]") {
  const std::vector<float> s = {-kInf, 0.0f, -kInf, kInf};
  CHECK(rank_of_target(s.data(), 4, 3) == 1);
  CHECK(rank_of_target(s.data(), 4, 1) == 2);
  CHECK(rank_of_target(s.data(), 4, 0) == 3);
  CHECK(rank_of_target(s.data(), 4, 2) == 4);

  const std::vector<float> bad = {1.0f, 2.0f, 3.0f, kNaN, 0.0f};
  CHECK_THROWS_WITH(rank_of_target(bad.data(), 5, 0), Contains("item 3") && Contains("NaN"));
  CHECK_THROWS_AS(rank_of_target(bad.data(), 5, 0), ValueError);
  CHECK_THROWS_AS(rank_of_target(s.data(), 4, 4), IndexError);
  CHECK_THROWS_AS(rank_of_target(s.data(), 4, -1), IndexError);
  CHECK_THROWS_AS(rank_of_target(s.data(), 0, 0), ValueError);
}

TEST_CASE("rank_in_list: 1-based position, 0 for a miss", "[evaluate][metrics]") {
  const std::vector<ItemIndex> top = {7, 3, 9, 3};
  CHECK(rank_in_list(top, 7) == 1);
  CHECK(rank_in_list(top, 3) == 2);
  CHECK(rank_in_list(top, 9) == 3);
  CHECK(rank_in_list(top, 4) == 0);
  CHECK(rank_in_list({}, 4) == 0);
}

TEST_CASE("RankingMetrics: hand-computed recall, NDCG and MRR", "[evaluate][metrics]") {
  RankingMetrics m;  // K in {1, 5, 10, 20}
  CHECK(m.ks() == std::vector<std::int64_t>{1, 5, 10, 20});
  // Three users: rank 1, rank 3, miss.
  m.add(1);
  m.add(3);
  m.add(0);
  CHECK(m.count() == 3);
  CHECK(m.recall(1) == Approx(1.0 / 3));
  CHECK(m.recall(5) == Approx(2.0 / 3));
  CHECK(m.recall(20) == Approx(2.0 / 3));
  CHECK(m.ndcg(1) == Approx(1.0 / 3));
  CHECK(m.ndcg(5) == Approx((1.0 + 1.0 / std::log2(4.0) + 0.0) / 3));  // = 0.5
  CHECK(m.ndcg(5) == Approx(0.5));
  CHECK(m.mrr() == Approx((1.0 + 1.0 / 3 + 0.0) / 3));

  // A fourth user at rank 7: a hit at 10 and 20, not at 5.
  m.add(7);
  CHECK(m.recall(5) == Approx(2.0 / 4));
  CHECK(m.recall(10) == Approx(3.0 / 4));
  CHECK(m.ndcg(10) == Approx((1.0 + 0.5 + 1.0 / std::log2(8.0)) / 4));
  CHECK(m.mrr() == Approx((1.0 + 1.0 / 3 + 1.0 / 7) / 4));

  const auto j = m.to_json();
  CHECK(j.at("users").get<std::int64_t>() == 4);
  CHECK(j.at("recall@10").get<double>() == Approx(0.75));
  CHECK(j.at("ndcg@5").get<double>() == Approx(1.5 / 4));
  CHECK(j.at("mrr").get<double>() == Approx(m.mrr()));
  CHECK(j.size() == 1 + 2 * 4 + 1);
}

TEST_CASE("RankingMetrics: custom cutoffs, merge, errors", "[evaluate][metrics]") {
  RankingMetrics empty({3, 2, 3});
  CHECK(empty.ks() == std::vector<std::int64_t>{2, 3});
  CHECK(empty.count() == 0);
  CHECK(empty.recall(2) == 0.0);
  CHECK(empty.mrr() == 0.0);

  RankingMetrics a({2, 3}), b({2, 3});
  a.add(2);
  b.add(3);
  b.add(0);
  a.merge(b);
  CHECK(a.count() == 3);
  CHECK(a.recall(2) == Approx(1.0 / 3));
  CHECK(a.recall(3) == Approx(2.0 / 3));
  CHECK(a.ndcg(3) == Approx((1.0 / std::log2(3.0) + 1.0 / std::log2(4.0)) / 3));
  CHECK(a.mrr() == Approx((0.5 + 1.0 / 3) / 3));

  CHECK_THROWS_AS(a.recall(5), ValueError);
  CHECK_THROWS_AS(a.ndcg(1), ValueError);
  CHECK_THROWS_AS(a.add(-1), ValueError);
  CHECK_THROWS_AS(a.merge(RankingMetrics({2, 5})), ValueError);
  CHECK_THROWS_AS(RankingMetrics({0, 5}), ValueError);
}

TEST_CASE("popularity_groups: top share of seen items by count, ties by index", "[evaluate][metrics]") {
  using G = PopularityGroup;
  // Seen items by count desc, index asc: 6(7) 0(5) 2(3) 3(3) 7(3) 8(2) 4(1) 9(1); unseen: 1, 5.
  const std::vector<std::int64_t> counts = {5, 0, 3, 3, 1, 0, 7, 3, 2, 1};
  // 8 seen items, ceil(0.2 * 8) = 2 head items: 6 and 0.
  CHECK(popularity_groups(counts) ==
        std::vector<G>{G::head, G::unseen, G::tail, G::tail, G::tail, G::unseen, G::head, G::tail, G::tail, G::tail});
  // ceil(0.5 * 8) = 4: 6, 0, then 2 and 3 win the tie at count 3 over 7 by index.
  CHECK(popularity_groups(counts, 0.5) ==
        std::vector<G>{G::head, G::unseen, G::head, G::head, G::tail, G::unseen, G::head, G::tail, G::tail, G::tail});
  const auto none = popularity_groups(counts, 0.0);
  CHECK(std::count(none.begin(), none.end(), G::head) == 0);
  const auto all = popularity_groups(counts, 1.0);
  CHECK(std::count(all.begin(), all.end(), G::head) == 8);
  CHECK(std::count(all.begin(), all.end(), G::unseen) == 2);
  // 0.1 * 30 is 3.0000000000000004 in double: still 3 head items, not 4.
  const auto thirty = popularity_groups(std::vector<std::int64_t>(30, 1), 0.1);
  CHECK(std::count(thirty.begin(), thirty.end(), G::head) == 3);

  CHECK_THROWS_AS(popularity_groups({1, -1}), ValueError);
  CHECK_THROWS_AS(popularity_groups({1, 2}, 1.5), ValueError);
  CHECK_THROWS_AS(popularity_groups({1, 2}, std::nan("")), ValueError);
  CHECK(std::string(to_string(G::unseen)) == "unseen");
}

TEST_CASE("EvaluationReport: overall and per group, JSON layout", "[evaluate][metrics]") {
  EvaluationReport r({1, 5});
  CHECK_FALSE(r.to_json().contains("groups"));
  r.add(1, PopularityGroup::head);
  r.add(3, PopularityGroup::tail);
  r.add(0, PopularityGroup::tail);
  CHECK(r.overall.count() == 3);
  CHECK(r.group(PopularityGroup::tail).count() == 2);
  CHECK(r.group(PopularityGroup::tail).recall(5) == Approx(0.5));
  CHECK(r.group(PopularityGroup::unseen).count() == 0);

  const auto j = r.to_json();
  CHECK(j.at("users").get<std::int64_t>() == 3);
  CHECK(j.at("recall@1").get<double>() == Approx(1.0 / 3));
  CHECK(j.at("ndcg@5").get<double>() == Approx(0.5));
  CHECK(j.at("mrr").get<double>() == Approx(4.0 / 9));
  CHECK(j.at("groups").at("head").at("recall@1").get<double>() == Approx(1.0));
  CHECK(j.at("groups").at("tail").at("ndcg@5").get<double>() == Approx(0.25));
  CHECK(j.at("groups").at("unseen").at("users").get<std::int64_t>() == 0);

  EvaluationReport other({1, 5});
  other.add(2, PopularityGroup::unseen);
  r.merge(other);
  CHECK(r.overall.count() == 4);
  CHECK(r.group(PopularityGroup::unseen).recall(5) == Approx(1.0));
}
