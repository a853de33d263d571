#pragma once
// Dataset statistics in the shape of the paper's Table 2 (items, users, interactions,
// average user sequence length, average item appearances), plus facts that help to judge
// a dataset before training on it.
#include <lamia/data/interactions.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lamia {

struct DatasetStatistics {
  std::string name;
  std::size_t items = 0;             ///< items in the catalog
  std::size_t items_with_text = 0;   ///< catalog items with at least one non-empty attribute
  std::size_t interacted_items = 0;  ///< distinct items that occur in some user's sequence
  std::size_t users = 0;             ///< users with a sequence
  std::size_t interactions = 0;      ///< sum of sequence lengths
  double avg_user_length = 0;        ///< interactions / users (0 when there are no users)
  double avg_item_appearances = 0;   ///< interactions / interacted_items (0 when none)
  double density = 0;                ///< interactions / (users * interacted_items)
  std::size_t min_user_length = 0, median_user_length = 0, max_user_length = 0;
  std::size_t users_with_at_least_5 = 0;  ///< users whose sequence has >= 5 interactions
  bool has_timestamps = false, has_ratings = false;
  std::optional<std::int64_t> first_timestamp, last_timestamp;  ///< Unix seconds, when timed
  std::vector<std::string> attributes;                           ///< catalog attribute names
  /// Per attribute: how many items have a non-empty value (same order as attributes).
  std::vector<std::size_t> attribute_non_empty;

  /// All fields; "attributes" maps each name to its non-empty count; timestamps are null
  /// when absent.
  nlohmann::json to_json() const;
};

/// Counts everything in one pass over the catalog and the sequences.
DatasetStatistics compute_statistics(const Dataset& dataset);

}  // namespace lamia
