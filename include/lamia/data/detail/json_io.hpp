#pragma once
// Internals of the loaders: JSON helpers that keep line numbers, and a reader for the
// Python-literal "loose JSON" of the 2014 Amazon metadata. Not part of the stable API.
#include <lamia/core/errors.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lamia::detail {

/// One member of a top-level JSON object, as found by JsonObjectScanner.
struct JsonMember {
  std::string key;
  std::string_view value;  ///< the raw JSON text of the value
  std::size_t line = 0;    ///< 1-based line of the key
  std::size_t value_line = 0;  ///< 1-based line where the value starts
};

/// Walks the members of a top-level JSON object without building it, so that each member
/// can be parsed on its own and errors can name its line (LC-Rec files are one big object).
class JsonObjectScanner {
 public:
  /// text must outlive the scanner; file is used in error messages, and so is what_keys
  /// (e.g. "item id") as the field of errors before the first key.
  JsonObjectScanner(std::string_view text, std::string file, std::string what_keys);
  /// The next member; false after the closing brace. Throws ParseError (file, line) when
  /// the text is not a JSON object or is truncated.
  bool next(JsonMember& member);
  /// 1-based line of a byte offset into text (counts from the start: for errors only).
  std::size_t line_at(std::size_t offset) const;
  /// Offset of value within text.
  std::size_t offset_of(std::string_view value) const { return std::size_t(value.data() - text_.data()); }

 private:
  [[noreturn]] void fail(std::size_t offset, const std::string& what) const;
  void skip_space();
  std::size_t skip_string(std::size_t at) const;  // at: opening quote; returns index after closing quote
  std::size_t skip_value(std::size_t at) const;

  std::string_view text_;
  std::string file_;
  std::string what_keys_, key_;  // key_: the member being read (the field of errors)
  std::size_t pos_ = 0;
  std::size_t line_ = 1, line_pos_ = 0;  // line counter, advanced lazily up to line_pos_
  bool started_ = false, done_ = false;
};

/// The key of the last `"key":` before offset in raw JSON text ("" if none): a best guess
/// at the field an error at offset is in.
std::string json_key_before(std::string_view text, std::size_t offset);

/// Parses text as JSON; on failure throws ParseError at file:line (line counted from
/// first_line for the byte the parser stopped at), field json_key_before() that byte, with
/// the parser's reason. Values nested deeper than limits::kMaxJsonDepth are such an error (never
/// a stack overflow); numbers that a double cannot hold (1e400) are read as strings of their
/// text, so that an unused field is accepted and a used one fails its own check. A key that appears
/// twice in one object is a ParseError at the second one's line (check_unique_keys).
nlohmann::json parse_json(std::string_view text, const std::string& file, std::size_t first_line);
/// The same, keeping the order of object keys (the generic loader takes attribute order from it).
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& file, std::size_t first_line);

/// Throws ParseError at file:line (counted from first_line) and the key's path (e.g.
/// "palette.trainer.batch_size", "attributes[2].name") when a key appears twice in one object of
/// text, which must be valid JSON (parse_json first): nlohmann's parser keeps the last value and
/// drops the first without a word, which a config must not do.
void check_unique_keys(std::string_view text, const std::string& file, std::size_t first_line);

/// Unescapes the JSON string that starts at t[i] == '"' into out; on success i is past the
/// closing quote. False for a string that is not closed or has a bad escape.
bool unescape_json_string(std::string_view t, std::size_t& i, std::string& out);

/// Fast path for the common record shape {"key": "string", ...}: fills out with the
/// unescaped (key, value) pairs and returns true. Returns false, leaving the error to
/// parse_json, when text is anything else (other value types, bad escapes, trailing text).
bool parse_flat_string_object(std::string_view text, std::vector<std::pair<std::string, std::string>>& out);

/// Parses a Python literal (dict, list, tuple, str with '…' or "…" and Python escapes,
/// int, float, True, False, None) as JSON: what `ast.literal_eval` accepts for the 2014
/// Amazon metadata. Throws ParseError at file:line on anything else.
nlohmann::json parse_python_literal(std::string_view text, const std::string& file, std::size_t line);

}  // namespace lamia::detail
