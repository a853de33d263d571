#include <lamia/evaluate/metrics.hpp>

#include <lamia/core/errors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lamia {

namespace {

// True when item a ranks before item b: higher score first, then the smaller index.
inline bool ranks_before(float sa, std::int64_t a, float sb, std::int64_t b) {
  return sa > sb || (sa == sb && a < b);
}

}  // namespace

std::int64_t rank_of_target(const float* scores, std::int64_t num_items, ItemIndex target,
                            const std::vector<ItemIndex>& excluded) {
  if (num_items <= 0) throw ValueError(fmt::format("rank_of_target: num_items must be > 0, got {}", num_items));
  if (scores == nullptr) throw ValueError("rank_of_target: scores is null");
  if (target < 0 || target >= num_items)
    throw IndexError(fmt::format("rank_of_target: target {} outside [0, {})", target, num_items));
  const float st = scores[target];
  std::int64_t before = 0;
  for (std::int64_t i = 0; i < num_items; ++i) {
    const float s = scores[i];
    if (std::isnan(s)) throw ValueError(fmt::format("rank_of_target: score of item {} is NaN", i));
    before += ranks_before(s, i, st, target);
  }
  // Excluded items are few (a history): remove those that were counted, each once.
  std::vector<ItemIndex> ex = excluded;
  std::sort(ex.begin(), ex.end());
  ex.erase(std::unique(ex.begin(), ex.end()), ex.end());
  for (ItemIndex e : ex) {
    if (e < 0 || e >= num_items)
      throw IndexError(fmt::format("rank_of_target: excluded item {} outside [0, {})", e, num_items));
    if (e == target)
      throw ValueError(fmt::format("rank_of_target: target {} is among the excluded items", target));
    before -= ranks_before(scores[e], e, st, target);
  }
  return before + 1;
}

std::int64_t rank_in_list(const std::vector<ItemIndex>& top_list, ItemIndex target) {
  auto it = std::find(top_list.begin(), top_list.end(), target);
  return it == top_list.end() ? 0 : std::int64_t(it - top_list.begin()) + 1;
}

bool target_in_history(const std::vector<ItemIndex>& history, ItemIndex target) {
  return std::find(history.begin(), history.end(), target) != history.end();
}

std::vector<std::int64_t> default_cutoffs() { return {1, 5, 10, 20}; }

RankingMetrics::RankingMetrics(std::vector<std::int64_t> ks) : ks_(std::move(ks)) {
  for (auto k : ks_)
    if (k < 1) throw ValueError(fmt::format("RankingMetrics: cutoff k must be >= 1, got {}", k));
  std::sort(ks_.begin(), ks_.end());
  ks_.erase(std::unique(ks_.begin(), ks_.end()), ks_.end());
  hits_.assign(ks_.size(), 0.0);
  ndcg_sums_.assign(ks_.size(), 0.0);
}

void RankingMetrics::add(std::int64_t rank) {
  if (rank < 0) throw ValueError(fmt::format("RankingMetrics::add: rank must be >= 0 (0 = miss), got {}", rank));
  ++count_;
  if (rank == 0) return;
  const double gain = 1.0 / std::log2(double(rank) + 1.0);
  for (std::size_t i = 0; i < ks_.size(); ++i)
    if (rank <= ks_[i]) {
      hits_[i] += 1.0;
      ndcg_sums_[i] += gain;
    }
  rr_sum_ += 1.0 / double(rank);
}

void RankingMetrics::merge(const RankingMetrics& other) {
  if (other.ks_ != ks_)
    throw ValueError(fmt::format("RankingMetrics::merge: cutoffs differ: [{}] vs [{}]", fmt::join(ks_, ", "),
                                 fmt::join(other.ks_, ", ")));
  for (std::size_t i = 0; i < ks_.size(); ++i) {
    hits_[i] += other.hits_[i];
    ndcg_sums_[i] += other.ndcg_sums_[i];
  }
  rr_sum_ += other.rr_sum_;
  count_ += other.count_;
}

std::size_t RankingMetrics::slot(std::int64_t k, const char* what) const {
  auto it = std::lower_bound(ks_.begin(), ks_.end(), k);
  if (it == ks_.end() || *it != k)
    throw ValueError(fmt::format("RankingMetrics::{}: k = {} is not one of the cutoffs [{}]", what, k,
                                 fmt::join(ks_, ", ")));
  return std::size_t(it - ks_.begin());
}

double RankingMetrics::recall(std::int64_t k) const {
  const auto i = slot(k, "recall");
  return count_ == 0 ? 0.0 : hits_[i] / double(count_);
}

double RankingMetrics::ndcg(std::int64_t k) const {
  const auto i = slot(k, "ndcg");
  return count_ == 0 ? 0.0 : ndcg_sums_[i] / double(count_);
}

double RankingMetrics::mrr() const { return count_ == 0 ? 0.0 : rr_sum_ / double(count_); }

nlohmann::json RankingMetrics::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  j["users"] = count_;
  for (auto k : ks_) {
    j[fmt::format("recall@{}", k)] = recall(k);
    j[fmt::format("ndcg@{}", k)] = ndcg(k);
  }
  j["mrr"] = mrr();
  return j;
}

nlohmann::json RankingMetrics::sums_json() const {
  return {{"ks", ks_}, {"users", count_}, {"hits", hits_}, {"ndcg_sums", ndcg_sums_}, {"rr_sum", rr_sum_}};
}

namespace {

// j[key] as T, or a ValueError naming the key.
template <class T>
T sums_field(const nlohmann::json& j, const char* key, const char* what) {
  if (!j.is_object() || !j.contains(key))
    throw ValueError(fmt::format("{}::from_sums_json: key '{}' is missing", what, key));
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("{}::from_sums_json: key '{}': {}", what, key, e.what()));
  }
}

}  // namespace

RankingMetrics RankingMetrics::from_sums_json(const nlohmann::json& j) {
  constexpr const char* what = "RankingMetrics";
  RankingMetrics m(sums_field<std::vector<std::int64_t>>(j, "ks", what));
  m.count_ = sums_field<std::int64_t>(j, "users", what);
  m.hits_ = sums_field<std::vector<double>>(j, "hits", what);
  m.ndcg_sums_ = sums_field<std::vector<double>>(j, "ndcg_sums", what);
  m.rr_sum_ = sums_field<double>(j, "rr_sum", what);
  if (m.count_ < 0 || m.hits_.size() != m.ks_.size() || m.ndcg_sums_.size() != m.ks_.size())
    throw ValueError(fmt::format("RankingMetrics::from_sums_json: {} users, {} hits and {} ndcg sums for {} cutoffs",
                                 m.count_, m.hits_.size(), m.ndcg_sums_.size(), m.ks_.size()));
  return m;
}

const char* to_string(PopularityGroup group) {
  switch (group) {
    case PopularityGroup::head: return "head";
    case PopularityGroup::tail: return "tail";
    case PopularityGroup::unseen: return "unseen";
  }
  return "?";
}

std::vector<PopularityGroup> popularity_groups(const std::vector<std::int64_t>& train_counts,
                                               double head_fraction) {
  if (!(head_fraction >= 0.0 && head_fraction <= 1.0))
    throw ValueError(fmt::format("popularity_groups: head_fraction must be in [0, 1], got {}", head_fraction));
  std::vector<PopularityGroup> groups(train_counts.size(), PopularityGroup::unseen);
  std::vector<std::size_t> seen;
  for (std::size_t i = 0; i < train_counts.size(); ++i) {
    if (train_counts[i] < 0)
      throw ValueError(fmt::format("popularity_groups: train_counts[{}] must be >= 0, got {}", i, train_counts[i]));
    if (train_counts[i] > 0) seen.push_back(i);
  }
  // stable_sort keeps ascending index among equal counts.
  std::stable_sort(seen.begin(), seen.end(),
                   [&](std::size_t a, std::size_t b) { return train_counts[a] > train_counts[b]; });
  // The epsilon keeps e.g. 0.1 * 30 = 3.0000000000000004 from rounding up to 4.
  const auto head = std::min(seen.size(), std::size_t(std::ceil(head_fraction * double(seen.size()) - 1e-9)));
  for (std::size_t r = 0; r < seen.size(); ++r)
    groups[seen[r]] = r < head ? PopularityGroup::head : PopularityGroup::tail;
  return groups;
}

EvaluationReport::EvaluationReport(const std::vector<std::int64_t>& ks)
    : overall(ks), groups{RankingMetrics(ks), RankingMetrics(ks), RankingMetrics(ks)} {}

void EvaluationReport::add(std::int64_t rank) { overall.add(rank); }

void EvaluationReport::add(std::int64_t rank, PopularityGroup target_group) {
  const auto g = std::size_t(target_group);
  if (g >= groups.size()) throw ValueError(fmt::format("EvaluationReport::add: invalid group {}", g));
  overall.add(rank);
  groups[g].add(rank);
  grouped = true;
}

void EvaluationReport::merge(const EvaluationReport& other) {
  overall.merge(other.overall);
  for (std::size_t g = 0; g < groups.size(); ++g) groups[g].merge(other.groups[g]);
  grouped = grouped || other.grouped;
}

nlohmann::json EvaluationReport::sums_json() const {
  nlohmann::json g = nlohmann::json::array();
  for (const auto& m : groups) g.push_back(m.sums_json());
  return {{"overall", overall.sums_json()}, {"grouped", grouped}, {"groups", std::move(g)}};
}

EvaluationReport EvaluationReport::from_sums_json(const nlohmann::json& j) {
  constexpr const char* what = "EvaluationReport";
  EvaluationReport r;
  r.overall = RankingMetrics::from_sums_json(sums_field<nlohmann::json>(j, "overall", what));
  r.grouped = sums_field<bool>(j, "grouped", what);
  const auto g = sums_field<nlohmann::json>(j, "groups", what);
  if (!g.is_array() || g.size() != r.groups.size())
    throw ValueError(fmt::format("EvaluationReport::from_sums_json: key 'groups' must hold {} entries", r.groups.size()));
  for (std::size_t i = 0; i < r.groups.size(); ++i) r.groups[i] = RankingMetrics::from_sums_json(g[i]);
  return r;
}

nlohmann::json EvaluationReport::to_json() const {
  nlohmann::json j = overall.to_json();
  if (grouped) {
    nlohmann::json g = nlohmann::json::object();
    for (std::size_t i = 0; i < groups.size(); ++i) g[to_string(PopularityGroup(i))] = groups[i].to_json();
    j["groups"] = std::move(g);
  }
  return j;
}

}  // namespace lamia
