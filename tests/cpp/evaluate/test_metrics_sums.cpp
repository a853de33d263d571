// RankingMetrics / EvaluationReport sums_json: the exact state behind the means, so that an evaluation
// split over processes merges its parts by their sums (docs/distributed.md).
#include <lamia/core/errors.hpp>
#include <lamia/evaluate/metrics.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <vector>

using namespace lamia;
using Catch::Matchers::Contains;

TEST_CASE("sums_json: round trip through JSON text keeps every mean bit for bit", "[evaluate][metrics]") {
  RankingMetrics m({1, 3, 10});
  for (std::int64_t rank : {1, 0, 2, 7, 3, 11, 0, 5}) m.add(rank);
  const auto back = RankingMetrics::from_sums_json(nlohmann::json::parse(m.sums_json().dump()));
  CHECK(back.to_json() == m.to_json());
  CHECK(back.count() == 8);
  // The sums by a formula: NDCG@10's sum over ranks 1, 2, 7, 3, 5.
  double ndcg10 = 0;
  for (double r : {1.0, 2.0, 7.0, 3.0, 5.0}) ndcg10 += 1.0 / std::log2(r + 1.0);
  CHECK(m.sums_json()["ndcg_sums"][2].get<double>() == Approx(ndcg10).epsilon(1e-15));
  CHECK(m.sums_json()["hits"] == nlohmann::json({1.0, 3.0, 5.0}));
}

TEST_CASE("sums_json: parts merged by their sums equal the whole, not the mean of the means", "[evaluate][metrics]") {
  const std::vector<std::int64_t> ranks = {1, 0, 4, 2, 0, 9, 3};
  const std::vector<PopularityGroup> groups = {PopularityGroup::head, PopularityGroup::tail, PopularityGroup::head,
                                               PopularityGroup::unseen, PopularityGroup::tail, PopularityGroup::head,
                                               PopularityGroup::tail};
  EvaluationReport whole({1, 5}), first({1, 5}), second({1, 5});
  for (std::size_t u = 0; u < ranks.size(); ++u) {
    whole.add(ranks[u], groups[u]);
    (u < 2 ? first : second).add(ranks[u], groups[u]);  // parts of 2 and 5 users
  }
  auto merged = EvaluationReport::from_sums_json(first.sums_json());
  merged.merge(EvaluationReport::from_sums_json(second.sums_json()));
  const auto a = merged.to_json(), b = whole.to_json();
  CHECK(a["users"] == 7);
  CHECK(a["mrr"].get<double>() == Approx(b["mrr"].get<double>()).epsilon(1e-15));
  CHECK(a["recall@5"].get<double>() == Approx(4.0 / 7.0).epsilon(1e-15));
  CHECK(a["groups"]["tail"]["users"] == 3);
  // The mean of the two parts' means is another number.
  const double mean_of_means = (first.to_json()["recall@5"].get<double>() + second.to_json()["recall@5"].get<double>()) / 2;
  CHECK(std::abs(mean_of_means - 4.0 / 7.0) > 0.01);
}

TEST_CASE("from_sums_json: a malformed object names the key", "[evaluate][metrics]") {
  RankingMetrics m({1, 5});
  m.add(2);
  auto j = m.sums_json();
  j.erase("rr_sum");
  CHECK_THROWS_WITH(RankingMetrics::from_sums_json(j), Contains("'rr_sum'"));
  j = m.sums_json();
  j["hits"] = nlohmann::json::array({1.0});
  CHECK_THROWS_AS(RankingMetrics::from_sums_json(j), ValueError);
  auto r = EvaluationReport({1}).sums_json();
  r["groups"].erase(0);
  CHECK_THROWS_WITH(EvaluationReport::from_sums_json(r), Contains("'groups'"));
}
