#include <lamia/evaluate/baselines.hpp>

#include <lamia/core/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace lamia {

namespace {

void check_num_items(std::int64_t num_items, const char* where) {
  if (num_items <= 0) throw ValueError(fmt::format("{}: num_items must be > 0, got {}", where, num_items));
  if (num_items > std::numeric_limits<ItemIndex>::max())
    throw ValueError(fmt::format("{}: num_items = {} exceeds the largest ItemIndex", where, num_items));
}

void check_sequences(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items, const char* where) {
  for (std::size_t s = 0; s < sequences.size(); ++s)
    for (std::size_t p = 0; p < sequences[s].size(); ++p) {
      const ItemIndex item = sequences[s][p];
      if (item < 0 || item >= num_items)
        throw IndexError(fmt::format("{}: sequences[{}][{}] = {} outside [0, {})", where, s, p, item, num_items));
    }
}

// c + b as float with b in [0, 1), kept strictly below c + 1 so that float rounding never lets
// the back-off reach the next transition count.
float count_plus_backoff(std::int64_t c, double b) {
  const float v = float(double(c) + b);
  const float next = float(c + 1);
  return v < next ? v : std::nextafter(next, -std::numeric_limits<float>::infinity());
}

}  // namespace

std::vector<std::vector<ItemIndex>> example_sequences(const std::vector<SequenceExample>& examples) {
  std::vector<std::vector<ItemIndex>> out;
  out.reserve(examples.size());
  for (const auto& e : examples) {
    auto seq = e.history;
    seq.push_back(e.target);
    out.push_back(std::move(seq));
  }
  return out;
}

std::vector<std::int64_t> count_items(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items) {
  check_num_items(num_items, "count_items");
  check_sequences(sequences, num_items, "count_items");
  std::vector<std::int64_t> counts(std::size_t(num_items), 0);
  for (const auto& seq : sequences)
    for (ItemIndex item : seq) ++counts[std::size_t(item)];
  return counts;
}

void PopularityRecommender::fit(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items) {
  counts_ = count_items(sequences, num_items);
}

void PopularityRecommender::score(const std::vector<ItemIndex>& /*history*/, float* out) const {
  if (counts_.empty()) throw ValueError("PopularityRecommender::score: called before fit");
  for (std::size_t i = 0; i < counts_.size(); ++i) out[i] = float(counts_[i]);
}

Scorer PopularityRecommender::scorer() const {
  return [this](const std::vector<ItemIndex>& history, float* out) { score(history, out); };
}

void TransitionRecommender::fit(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items) {
  PopularityRecommender pop;
  pop.fit(sequences, num_items);  // checks every item
  const auto& counts = pop.counts();
  const std::int64_t max_pop = *std::max_element(counts.begin(), counts.end());
  std::vector<float> backoff(counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i)
    backoff[i] = count_plus_backoff(0, double(counts[i]) / (1.0 + double(max_pop)));

  std::vector<std::map<ItemIndex, std::int64_t>> dense_rows(counts.size());
  for (const auto& seq : sequences)
    for (std::size_t p = 1; p < seq.size(); ++p) ++dense_rows[std::size_t(seq[p - 1])][seq[p]];
  std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>> rows(counts.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i].assign(dense_rows[i].begin(), dense_rows[i].end());

  popularity_ = std::move(pop);
  backoff_ = std::move(backoff);
  rows_ = std::move(rows);
}

void TransitionRecommender::score(const std::vector<ItemIndex>& history, float* out) const {
  if (backoff_.empty()) throw ValueError("TransitionRecommender::score: called before fit");
  std::copy(backoff_.begin(), backoff_.end(), out);
  if (history.empty()) return;
  const ItemIndex last = history.back();
  if (last < 0 || last >= num_items())
    throw IndexError(fmt::format("TransitionRecommender::score: history.back() = {} outside [0, {})", last,
                                 num_items()));
  const double denom = 1.0 + double(*std::max_element(popularity_.counts().begin(), popularity_.counts().end()));
  for (const auto& [to, c] : rows_[std::size_t(last)])
    out[to] = count_plus_backoff(c, double(popularity_.counts()[std::size_t(to)]) / denom);
}

Scorer TransitionRecommender::scorer() const {
  return [this](const std::vector<ItemIndex>& history, float* out) { score(history, out); };
}

std::int64_t TransitionRecommender::transitions(ItemIndex from, ItemIndex to) const {
  if (from < 0 || from >= num_items() || to < 0 || to >= num_items())
    throw IndexError(fmt::format("TransitionRecommender::transitions: ({}, {}) outside [0, {})", from, to,
                                 num_items()));
  const auto& row = rows_[std::size_t(from)];
  auto it = std::lower_bound(row.begin(), row.end(), to, [](const auto& e, ItemIndex v) { return e.first < v; });
  return it != row.end() && it->first == to ? it->second : 0;
}

EvaluationReport evaluate_scorer(const Scorer& scorer, const std::vector<SequenceExample>& test, std::int64_t num_items,
                                 const std::vector<PopularityGroup>& groups, bool exclude_history,
                                 const std::vector<std::int64_t>& ks, RepeatedTargets repeated) {
  check_num_items(num_items, "evaluate_scorer");
  if (!groups.empty() && std::int64_t(groups.size()) != num_items)
    throw ValueError(fmt::format("evaluate_scorer: groups must have 0 or num_items = {} entries, got {}", num_items,
                                 groups.size()));
  if (!scorer) throw ValueError("evaluate_scorer: scorer is empty");
  EvaluationReport report(ks);
  std::vector<float> scores(static_cast<std::size_t>(num_items));
  std::vector<ItemIndex> excluded;
  for (std::size_t u = 0; u < test.size(); ++u) {
    const auto& ex = test[u];
    if (ex.target < 0 || ex.target >= num_items)
      throw IndexError(fmt::format("evaluate_scorer: test[{}].target = {} outside [0, {})", u, ex.target, num_items));
    excluded.clear();
    for (std::size_t p = 0; p < ex.history.size(); ++p) {
      const ItemIndex item = ex.history[p];
      if (item < 0 || item >= num_items)
        throw IndexError(
            fmt::format("evaluate_scorer: test[{}].history[{}] = {} outside [0, {})", u, p, item, num_items));
      if (exclude_history) excluded.push_back(item);
    }
    std::int64_t rank = 0;  // a target among the excluded history items cannot be reached
    if (exclude_history && target_in_history(ex.history, ex.target)) {
      if (repeated == RepeatedTargets::drop) continue;
    } else {
      std::fill(scores.begin(), scores.end(), std::numeric_limits<float>::quiet_NaN());
      scorer(ex.history, scores.data());
      rank = rank_of_target(scores.data(), num_items, ex.target, excluded);
    }
    if (groups.empty())
      report.add(rank);
    else
      report.add(rank, groups[std::size_t(ex.target)]);
  }
  return report;
}

}  // namespace lamia
