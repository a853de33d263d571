#pragma once
// What a loader is told: strict or lenient, the unknown-item policy, the generic formats' field
// mapping (include/lamia/data/loaders/load_dataset.hpp reads with them).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lamia {

/// What a loader does with an interaction whose item id is not in the catalog.
enum class UnknownItems {
  kDefault,  ///< the format's default (docs/data.md): kAdd for MIND and for generic data without
             ///< an items file, kError otherwise
  kError,    ///< a ParseError naming the file, line and field (a counted warning when lenient)
  kSkip,     ///< drop the interaction and count it in LoadReport::counts["unknown_item_skipped"]
  kAdd,      ///< add the id to the catalog as an item with no text; counted as "unknown_item_added"
};

/// Parses "default", "error", "skip", "add". Throws ValueError naming the accepted values.
UnknownItems parse_unknown_items(std::string_view name);
std::string_view to_string(UnknownItems policy);

/// Which fields of a generic JSON-lines / CSV dataset hold what (formats "jsonl" and "csv").
/// The folder holds `<interactions_file>.<ext>` and, optionally, `<items_file>.<ext>`
/// (ext: jsonl or json for "jsonl"; csv or tsv for "csv", tsv being tab-separated).
struct FieldMapping {
  std::string item_id = "item_id";      ///< item id, in both files
  std::string user_id = "user_id";      ///< user id, in the interactions file
  std::string timestamp = "timestamp";  ///< optional: Unix seconds or ISO 8601 date/time; "" for none
  std::string rating = "rating";        ///< optional: a number; "" for none
  /// Item fields kept as text attributes, in this order. Empty: every field of the items
  /// file except the item id, in the order they first appear.
  std::vector<std::string> text_fields;
  std::string items_file = "items";                ///< file stem, without extension
  std::string interactions_file = "interactions";  ///< file stem, without extension
  /// Sort each user's interactions by timestamp (stable: file order breaks ties).
  bool sort_by_timestamp = true;
};

/// Options shared by all loaders.
struct LoadOptions {
  /// false (default): the first malformed row throws ParseError. true: such rows are
  /// skipped and counted in the LoadReport (structural problems still throw).
  bool lenient = false;
  /// Policy for interactions with an unknown item id; kDefault picks the format's default.
  UnknownItems unknown_items = UnknownItems::kDefault;
  /// How many warning messages (with locations) a LoadReport keeps; counts are always complete.
  std::size_t max_messages = 20;
  /// Field mapping of the generic "jsonl" / "csv" formats (ignored by the others).
  FieldMapping mapping;
};

}  // namespace lamia
