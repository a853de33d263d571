#pragma once
// Next-item ranking metrics with one target per user (DESIGN.md, "Evaluation protocol"):
// Recall@K (= hit@K), NDCG@K = 1/log2(rank + 1) when rank <= K, MRR, overall and per
// popularity group of the target item.
//
//   lamia::RankingMetrics m;                                  // K in {1, 5, 10, 20}
//   m.add(lamia::rank_of_target(scores, n, target, history)); // full ranking, history excluded
//   m.add(lamia::rank_in_list(top_k, target));               // top-K list (0 = miss)
//   double r10 = m.recall(10);
#include <lamia/data/catalog.hpp>

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lamia {

/// 1-based rank of target in the ranking of items [0, num_items) by descending score.
/// Ties are broken by ascending item index (an item with the same score as the target and a
/// smaller index ranks before it), so the rank is deterministic. Items in excluded (e.g. the
/// user's history; duplicates allowed) are removed from the ranking. -inf and +inf are valid
/// scores (-inf ranks last). O(num_items + |excluded| log |excluded|).
/// Throws ValueError when num_items <= 0, when a score is NaN (naming the first such item), or
/// when target is itself excluded; IndexError when target or an excluded item is outside
/// [0, num_items).
std::int64_t rank_of_target(const float* scores, std::int64_t num_items, ItemIndex target,
                            const std::vector<ItemIndex>& excluded = {});

/// 1-based position of target in top_list (its first occurrence), 0 when absent (a miss).
std::int64_t rank_in_list(const std::vector<ItemIndex>& top_list, ItemIndex target);

/// The cutoffs reported by default: {1, 5, 10, 20} (DESIGN.md).
std::vector<std::int64_t> default_cutoffs();

/// Accumulates Recall@K, NDCG@K and MRR over users, one target (one rank) per user.
/// MRR is 1/rank (0 for a miss); when ranks come from a top-K list (rank_in_list) that is MRR@K.
/// Sums are kept in double; every mean is 0 while count() is 0.
class RankingMetrics {
 public:
  /// ks: the cutoffs, each >= 1 (ValueError otherwise; duplicates are removed, kept sorted).
  explicit RankingMetrics(std::vector<std::int64_t> ks = default_cutoffs());

  /// Adds one user whose target has the given 1-based rank; 0 means not found (a miss).
  /// Throws ValueError for a negative rank.
  void add(std::int64_t rank);
  /// Adds the users of other; throws ValueError when the cutoffs differ.
  void merge(const RankingMetrics& other);

  /// Number of users added.
  std::int64_t count() const { return count_; }
  /// The cutoffs, ascending.
  const std::vector<std::int64_t>& ks() const { return ks_; }
  /// Mean hit@k (= Recall@k with one target). k must be one of ks() (ValueError otherwise).
  double recall(std::int64_t k) const;
  /// Mean NDCG@k = 1/log2(rank + 1) for rank <= k, else 0. k must be one of ks().
  double ndcg(std::int64_t k) const;
  /// Mean reciprocal rank (0 for a miss).
  double mrr() const;

  /// {"users": n, "recall@1": ..., "ndcg@1": ..., ..., "mrr": ...}.
  nlohmann::json to_json() const;
  /// The sums behind the means, exactly (doubles round-trip through JSON): {"ks": [...], "users": n,
  /// "hits": [...], "ndcg_sums": [...], "rr_sum": x}. Parts of an evaluation split over processes are
  /// merged from these (from_sums_json, merge), never from averages.
  nlohmann::json sums_json() const;
  /// Inverse of sums_json(). Throws ValueError naming the key when j is not such an object.
  static RankingMetrics from_sums_json(const nlohmann::json& j);

 private:
  std::size_t slot(std::int64_t k, const char* what) const;

  std::vector<std::int64_t> ks_;
  std::vector<double> hits_, ndcg_sums_;
  double rr_sum_ = 0.0;
  std::int64_t count_ = 0;
};

/// A test target that is also one of the user's history items, when the history is excluded from the
/// ranking. Every method gets the same rule: beam search never returns a history item, and keeping
/// only the target rankable among the history items would tell a full-ranking method which of them
/// the target is (on the synthetic catalog, 19% of the test targets repeat a history item, and that
/// rule nearly tripled SASRec's Recall@10: scripts/research/repeated_targets.py).
enum class RepeatedTargets : std::uint8_t {
  miss,  ///< the user counts and the target cannot be reached (rank 0)
  drop,  ///< the user is not evaluated
};

constexpr auto enum_names(RepeatedTargets) {
  return std::array{std::pair{RepeatedTargets::miss, "miss"}, std::pair{RepeatedTargets::drop, "drop"}};
}

/// True when target is one of history's items.
bool target_in_history(const std::vector<ItemIndex>& history, ItemIndex target);

/// How popular an item was in training.
enum class PopularityGroup : std::uint8_t {
  head,    ///< among the most interacted-with seen items (see popularity_groups)
  tail,    ///< seen in training, not head
  unseen,  ///< never seen in training
};

/// "head", "tail", "unseen".
const char* to_string(PopularityGroup group);

/// Classifies each item by its training interaction count: unseen when the count is 0; of the
/// S seen items, sorted by count descending then item index ascending, the first
/// ceil(head_fraction × S) are head (so ties at the cutoff go to the smaller index), the rest
/// tail. head_fraction: share of the SEEN items (not of interactions), in [0, 1], default 0.2.
/// Throws ValueError for a negative count or head_fraction outside [0, 1].
std::vector<PopularityGroup> popularity_groups(const std::vector<std::int64_t>& train_counts,
                                               double head_fraction = 0.2);

/// Metrics overall and per popularity group of each user's target item.
struct EvaluationReport {
  explicit EvaluationReport(const std::vector<std::int64_t>& ks = default_cutoffs());

  RankingMetrics overall;
  /// Indexed by PopularityGroup (head, tail, unseen).
  std::array<RankingMetrics, 3> groups;
  /// True once a rank was added with a group; to_json writes "groups" only then.
  bool grouped = false;

  /// Adds one user to overall only.
  void add(std::int64_t rank);
  /// Adds one user to overall and to the group of its target.
  void add(std::int64_t rank, PopularityGroup target_group);
  void merge(const EvaluationReport& other);
  const RankingMetrics& group(PopularityGroup g) const { return groups[std::size_t(g)]; }

  /// overall.to_json() plus, when grouped, "groups": {"head": {...}, "tail": {...},
  /// "unseen": {...}} (each a RankingMetrics::to_json()).
  nlohmann::json to_json() const;
  /// {"overall": sums, "grouped": bool, "groups": [head, tail, unseen sums]} (RankingMetrics::sums_json).
  nlohmann::json sums_json() const;
  /// Inverse of sums_json(); ValueError naming the key for a malformed object.
  static EvaluationReport from_sums_json(const nlohmann::json& j);
};

}  // namespace lamia
