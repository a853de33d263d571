#pragma once
// What a load skipped, added and read (the rows a lenient load skipped, with their locations).
#include <lamia/core/errors.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace lamia {

/// One warning: where, which kind (e.g. "malformed_row"), and what.
struct LoadMessage {
  SourceLocation where;
  std::string kind;
  std::string message;
  /// "file:line: field 'x': message"
  std::string str() const;
};

/// What a load skipped, added or read. Warnings are the problems that lenient mode skipped.
struct LoadReport {
  /// Warning kinds -> counts: malformed_row, invalid_utf8, invalid_value, unknown_item,
  /// duplicate_item (the rows skipped in lenient mode).
  std::map<std::string, std::size_t> warnings;
  /// Informational counters: rows per file ("rows:news.tsv"), unknown_item_skipped,
  /// unknown_item_added, and format facts (e.g. MIND "history_entries").
  std::map<std::string, std::size_t> counts;
  /// The first LoadOptions::max_messages warnings and skips, in the order they were found.
  std::vector<LoadMessage> messages;

  /// Total number of warnings (rows skipped because they were malformed).
  std::size_t num_warnings() const;
  /// {"warnings": {...}, "counts": {...}, "messages": ["file:line: ...", ...]}
  nlohmann::json to_json() const;
};

}  // namespace lamia
