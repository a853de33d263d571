#pragma once
// Non-neural next-item baselines (DESIGN.md, "Evaluation protocol", "Floors"): popularity and
// first-order transition counts with a popularity back-off, plus evaluate_scorer, which ranks
// every test target over the full catalog with rank_of_target.
//
//   lamia::TransitionRecommender rec;
//   rec.fit(lamia::example_sequences(split.train), num_items);
//   auto groups = lamia::popularity_groups(rec.popularity().counts());
//   auto report = lamia::evaluate_scorer(rec.scorer(), split.test, num_items, groups, true);
#include <lamia/data/catalog.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/evaluate/metrics.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace lamia {

/// Fills out[0, num_items) with one score per item (higher = more likely next) for a history
/// (oldest first).
using Scorer = std::function<void(const std::vector<ItemIndex>& history, float* out)>;

/// Each example's history followed by its target: the training sequences the baselines fit on.
/// With TrainExamples::all_prefixes every prefix becomes a sequence, so items and transitions are
/// counted once per prefix that holds them; pass last_item examples for plain counts.
std::vector<std::vector<ItemIndex>> example_sequences(const std::vector<SequenceExample>& examples);

/// Occurrences of each item in sequences. Throws ValueError when num_items <= 0, IndexError naming
/// the sequence and position of an item outside [0, num_items).
std::vector<std::int64_t> count_items(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items);

/// Scores every item by its number of occurrences in the training sequences (ignores history).
class PopularityRecommender {
 public:
  /// Counts occurrences; errors as count_items.
  void fit(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items);
  /// Writes num_items() scores (the counts, as float) to out. Throws ValueError before fit.
  void score(const std::vector<ItemIndex>& history, float* out) const;
  /// A Scorer that calls score (holds a reference to this object).
  Scorer scorer() const;

  /// 0 before fit.
  std::int64_t num_items() const { return std::int64_t(counts_.size()); }
  const std::vector<std::int64_t>& counts() const { return counts_; }

 private:
  std::vector<std::int64_t> counts_;
};

/// First-order transition counts (last item -> next item) with a popularity back-off:
/// score(i) = transitions(history.back() -> i) + b(i), b(i) = popularity(i) / (1 + max popularity)
/// in [0, 1), so any transition count beats any pure popularity and popularity only orders items
/// with equal transition counts (e.g. zeros). Empty history: b(i) alone (popularity order).
/// Scores are float: the back-off resolves ties exactly only while transition counts and the
/// popularity resolution fit in 24 bits; a higher transition count always ranks higher (clamped).
class TransitionRecommender {
 public:
  /// Counts popularity (every occurrence) and transitions over consecutive pairs of each
  /// sequence. Errors as count_items.
  void fit(const std::vector<std::vector<ItemIndex>>& sequences, std::int64_t num_items);
  /// Writes num_items() scores to out. Throws ValueError before fit, IndexError when
  /// history.back() is outside [0, num_items).
  void score(const std::vector<ItemIndex>& history, float* out) const;
  /// A Scorer that calls score (holds a reference to this object).
  Scorer scorer() const;

  std::int64_t num_items() const { return popularity_.num_items(); }
  const PopularityRecommender& popularity() const { return popularity_; }
  /// Number of times `to` directly followed `from` in training (IndexError outside the range).
  std::int64_t transitions(ItemIndex from, ItemIndex to) const;

 private:
  PopularityRecommender popularity_;
  std::vector<float> backoff_;  // b(i), precomputed
  // Sparse rows: for each `from`, (to, count) sorted by `to`.
  std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>> rows_;
};

/// Ranks each test example's target over the full catalog: scorer(history) then rank_of_target.
/// exclude_history: the history items are removed from the ranking; a target that repeats a history
/// item is a miss or is not evaluated (repeated, see RepeatedTargets). groups: one per item
/// (popularity_groups) to report per group of the target, or empty for overall only. ks: the
/// cutoffs. Each example's score buffer starts as NaN, so a scorer that leaves an item unwritten
/// throws ValueError (rank_of_target). Throws ValueError when num_items <= 0 or groups has a size
/// other than 0 or num_items, IndexError naming test[i] for a target or history item outside
/// [0, num_items).
EvaluationReport evaluate_scorer(const Scorer& scorer, const std::vector<SequenceExample>& test, std::int64_t num_items,
                                 const std::vector<PopularityGroup>& groups = {}, bool exclude_history = true,
                                 const std::vector<std::int64_t>& ks = default_cutoffs(),
                                 RepeatedTargets repeated = RepeatedTargets::miss);

}  // namespace lamia
