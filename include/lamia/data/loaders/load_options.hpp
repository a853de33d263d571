#pragma once
// What a loader is told: strict or lenient, the unknown-item policy, the generic formats' field
// mapping (include/lamia/data/loaders/load_dataset.hpp reads with them).
#include <lamia/core/options.hpp>

#include <array>
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

constexpr auto enum_names(UnknownItems) {
  return std::array{std::pair{UnknownItems::kDefault, "default"}, std::pair{UnknownItems::kError, "error"},
                    std::pair{UnknownItems::kSkip, "skip"}, std::pair{UnknownItems::kAdd, "add"}};
}

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

/// The fields of FieldMapping (JSON, Python).
template <class V>
void visit_fields(FieldMapping& o, V&& v) {
  v.field("item_id", o.item_id, "item id field, in both files");
  v.field("user_id", o.user_id, "user id field, in the interactions file");
  v.field("timestamp", o.timestamp, "timestamp field: Unix seconds or ISO 8601 date/time ('' for none)");
  v.field("rating", o.rating, "rating field, a number ('' for none)");
  v.field("text_fields", o.text_fields, "item fields kept as text attributes, in order ([]: all but the id)");
  v.field("items_file", o.items_file, "items file stem, without extension");
  v.field("interactions_file", o.interactions_file, "interactions file stem, without extension");
  v.field("sort_by_timestamp", o.sort_by_timestamp, "sort each user's interactions by timestamp (stable)");
}

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

/// The fields of LoadOptions (JSON, Python).
template <class V>
void visit_fields(LoadOptions& o, V&& v) {
  v.field("lenient", o.lenient, "skip and count malformed rows instead of raising on the first");
  v.field("unknown_items", o.unknown_items,
          "interactions with an unknown item: the format's default (add for mind, else error), error, skip, add");
  v.field("max_messages", o.max_messages, "warnings kept with their location in the LoadReport (counts are complete)");
  v.field("mapping", o.mapping, "the field mapping of the jsonl / csv formats");
}

}  // namespace lamia
