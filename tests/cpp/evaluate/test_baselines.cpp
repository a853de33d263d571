#include <lamia/core/errors.hpp>
#include <lamia/evaluate/baselines.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

using namespace lamia;
using Catch::Matchers::Contains;

namespace {

// Five items. Counts: 0:3, 1:3, 2:4, 3:1, 4:0 (max 4, so back-off b = count / 5).
// Transitions: 0->1 x2, 0->2 x1, 1->2 x2, 3->0 x1.
const std::vector<std::vector<ItemIndex>> kTrain = {{0, 1, 2}, {0, 1}, {3, 0, 2}, {1, 2}, {2}};

// Items sorted by descending score, ties by index (the rank_of_target order).
std::vector<ItemIndex> order_of(const std::vector<float>& s) {
  std::vector<ItemIndex> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](ItemIndex a, ItemIndex b) { return s[a] > s[b]; });
  return idx;
}

}  // namespace

TEST_CASE("PopularityRecommender: occurrence counts", "[evaluate][baselines]") {
  PopularityRecommender pop;
  std::vector<float> out(5);
  CHECK_THROWS_AS(pop.score({}, out.data()), ValueError);
  pop.fit(kTrain, 5);
  CHECK(pop.counts() == std::vector<std::int64_t>{3, 3, 4, 1, 0});
  pop.score({1, 2}, out.data());
  CHECK(out == std::vector<float>{3, 3, 4, 1, 0});
  CHECK(order_of(out) == std::vector<ItemIndex>{2, 0, 1, 3, 4});
}

TEST_CASE("baselines: items outside the catalog name sequence and position", "[evaluate][baselines]") {
  const std::vector<std::vector<ItemIndex>> bad = {{0, 1}, {2, 5}};
  PopularityRecommender pop;
  CHECK_THROWS_AS(pop.fit(bad, 5), IndexError);
  CHECK_THROWS_WITH(pop.fit(bad, 5), Contains("sequences[1][1]") && Contains("5"));
  TransitionRecommender tr;
  CHECK_THROWS_WITH(tr.fit({{-1}}, 5), Contains("sequences[0][0]"));
  CHECK_THROWS_AS(tr.fit(kTrain, 0), ValueError);
}

TEST_CASE("TransitionRecommender: transition counts plus popularity back-off", "[evaluate][baselines]") {
  TransitionRecommender tr;
  std::vector<float> out(5);
  CHECK_THROWS_AS(tr.score({0}, out.data()), ValueError);
  tr.fit(kTrain, 5);
  CHECK(tr.transitions(0, 1) == 2);
  CHECK(tr.transitions(0, 2) == 1);
  CHECK(tr.transitions(1, 2) == 2);
  CHECK(tr.transitions(3, 0) == 1);
  CHECK(tr.transitions(2, 0) == 0);  // sequences do not wrap around
  CHECK(tr.transitions(1, 0) == 0);

  // From 0: item1 = 2 + 3/5, item2 = 1 + 4/5; the rest popularity only: 0.6, 0.2, 0.
  tr.score({3, 0}, out.data());
  CHECK(out[0] == Approx(0.6));
  CHECK(out[1] == Approx(2.6));
  CHECK(out[2] == Approx(1.8));
  CHECK(out[3] == Approx(0.2));
  CHECK(out[4] == Approx(0.0));
  CHECK(order_of(out) == std::vector<ItemIndex>{1, 2, 0, 3, 4});

  // No transitions out of 4, empty history: popularity order (ties 0, 1 by index).
  tr.score({4}, out.data());
  CHECK(order_of(out) == std::vector<ItemIndex>{2, 0, 1, 3, 4});
  tr.score({}, out.data());
  CHECK(out[2] == Approx(0.8));
  CHECK(*std::max_element(out.begin(), out.end()) < 1.0f);

  CHECK_THROWS_AS(tr.score({7}, out.data()), IndexError);
  CHECK_THROWS_AS(tr.transitions(0, 5), IndexError);
}

TEST_CASE("TransitionRecommender: one transition beats any popularity", "[evaluate][baselines]") {
  // Item 2 follows 0 once and is otherwise rare; item 1 is very popular but never follows 0.
  std::vector<std::vector<ItemIndex>> train = {{0, 2}};
  for (int i = 0; i < 1000; ++i) train.push_back({1});
  TransitionRecommender tr;
  tr.fit(train, 3);
  std::vector<float> out(3);
  tr.score({0}, out.data());
  CHECK(out[2] > out[1]);
  CHECK(out[1] < 1.0f);
}

TEST_CASE("evaluate_scorer: transition baseline end to end", "[evaluate][baselines]") {
  TransitionRecommender tr;
  tr.fit(kTrain, 5);
  const auto groups = popularity_groups(tr.popularity().counts());  // 4 seen, ceil(0.8) = 1 head: item 2
  REQUIRE(groups == std::vector<PopularityGroup>{PopularityGroup::tail, PopularityGroup::tail, PopularityGroup::head,
                                                 PopularityGroup::tail, PopularityGroup::unseen});
  const std::vector<SequenceExample> test = {
      {0, {3, 0}, 2},  // order 1,2,0,3,4: rank 2 (history excluded or not)
      {1, {1}, 4},     // order 2,0,1,3,4: rank 5; without item 1: rank 4
      {2, {2, 0}, 0},  // order 1,2,0,3,4: rank 3; history excluded: 0 repeats a history item, a miss
  };
  const std::vector<std::int64_t> ks = {1, 2, 5};

  const auto ex = evaluate_scorer(tr.scorer(), test, 5, groups, true, ks);  // ranks 2, 4, miss
  CHECK(ex.overall.count() == 3);
  CHECK(ex.overall.recall(1) == Approx(0.0));
  CHECK(ex.overall.recall(2) == Approx(1.0 / 3));
  CHECK(ex.overall.recall(5) == Approx(2.0 / 3));
  CHECK(ex.overall.ndcg(2) == Approx((1.0 / std::log2(3.0)) / 3));
  CHECK(ex.overall.ndcg(5) == Approx((1.0 / std::log2(3.0) + 1.0 / std::log2(5.0)) / 3));
  CHECK(ex.overall.mrr() == Approx((0.5 + 0.25) / 3));
  CHECK(ex.group(PopularityGroup::head).count() == 1);
  CHECK(ex.group(PopularityGroup::head).recall(2) == Approx(1.0));
  CHECK(ex.group(PopularityGroup::tail).count() == 1);
  CHECK(ex.group(PopularityGroup::tail).mrr() == Approx(0.0));
  CHECK(ex.group(PopularityGroup::unseen).recall(2) == Approx(0.0));
  CHECK(ex.group(PopularityGroup::unseen).ndcg(5) == Approx(1.0 / std::log2(5.0)));
  const auto j = ex.to_json();
  CHECK(j.at("users").get<std::int64_t>() == 3);
  CHECK(j.at("recall@2").get<double>() == Approx(1.0 / 3));
  CHECK(j.at("groups").at("unseen").at("users").get<std::int64_t>() == 1);

  // The same users with repeated targets dropped: ranks 2, 4 over two users.
  const auto dropped = evaluate_scorer(tr.scorer(), test, 5, groups, true, ks, RepeatedTargets::drop);
  CHECK(dropped.overall.count() == 2);
  CHECK(dropped.overall.recall(2) == Approx(0.5));
  CHECK(dropped.overall.mrr() == Approx((0.5 + 0.25) / 2));
  CHECK(dropped.group(PopularityGroup::tail).count() == 0);
  CHECK(target_in_history({2, 0}, 0));
  CHECK_FALSE(target_in_history({2, 0}, 1));

  const auto in = evaluate_scorer(tr.scorer(), test, 5, {}, false, ks);  // ranks 2, 5, 3
  CHECK_FALSE(in.grouped);
  CHECK_FALSE(in.to_json().contains("groups"));
  CHECK(in.overall.recall(2) == Approx(1.0 / 3));
  CHECK(in.overall.recall(5) == Approx(1.0));
  CHECK(in.overall.mrr() == Approx((0.5 + 0.2 + 1.0 / 3) / 3));
}

TEST_CASE("evaluate_scorer: popularity, default cutoffs, errors", "[evaluate][baselines]") {
  PopularityRecommender pop;
  pop.fit(kTrain, 5);
  // Order 2,0,1,3,4. Target 1 with history {0}: rank 2 (0 excluded).
  const std::vector<SequenceExample> test = {{0, {0}, 1}};
  const auto r = evaluate_scorer(pop.scorer(), test, 5);
  CHECK(r.overall.recall(1) == Approx(0.0));
  CHECK(r.overall.recall(5) == Approx(1.0));
  CHECK(r.overall.mrr() == Approx(0.5));

  CHECK_THROWS_AS(evaluate_scorer(pop.scorer(), {{0, {0}, 5}}, 5), IndexError);
  CHECK_THROWS_WITH(evaluate_scorer(pop.scorer(), {{0, {0}, 1}, {1, {9}, 1}}, 5), Contains("test[1].history[0]"));
  CHECK_THROWS_AS(evaluate_scorer(pop.scorer(), test, 5, {PopularityGroup::head}), ValueError);
  // A scorer that leaves item 4 unwritten: the NaN it left is reported.
  const Scorer partial = [](const std::vector<ItemIndex>&, float* out) {
    for (int i = 0; i < 4; ++i) out[i] = 1.0f;
  };
  CHECK_THROWS_WITH(evaluate_scorer(partial, test, 5), Contains("item 4"));
}
