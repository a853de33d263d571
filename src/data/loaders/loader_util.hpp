#pragma once
// Shared pieces of the format loaders (private to src/data).
#include <lamia/core/errors.hpp>
#include <lamia/data/detail/text_io.hpp>
#include <lamia/data/loaders.hpp>
#include <lamia/data/loaders/limits.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lamia::detail {

/// Row-level problems: thrown as ParseError when strict, counted and skipped when lenient.
class Problems {
 public:
  Problems(const LoadOptions& options, LoadReport* report);

  /// A malformed row. Strict: throws ParseError(where, message). Lenient: records and returns.
  void row(const char* kind, SourceLocation where, const std::string& message);
  /// A note that is never an error (a skipped unknown item under kSkip, ...): counted, and
  /// kept among the first messages.
  void note(const char* kind, SourceLocation where, const std::string& message);
  void count(const std::string& name, std::size_t n = 1);
  bool lenient() const noexcept { return options_.lenient; }
  const LoadOptions& options() const noexcept { return options_; }

 private:
  void keep(const char* kind, SourceLocation where, const std::string& message);
  const LoadOptions& options_;
  LoadReport* report_;
};

/// Column names of a delimited file's header row.
class Header {
 public:
  Header(CsvReader& reader, std::vector<std::string> names) : file_(reader.file_name()), names_(std::move(names)) {}
  /// Reads the header row; throws ParseError for an empty file (naming the first expected
  /// column) or invalid UTF-8.
  static Header read(CsvReader& reader, const std::vector<std::string>& expected);
  /// Index of a required column; throws ParseError (file, line 1, field) naming the columns found.
  std::size_t require(std::string_view name) const;
  std::optional<std::size_t> find(std::string_view name) const;
  const std::vector<std::string>& names() const noexcept { return names_; }
  std::size_t size() const noexcept { return names_.size(); }

 private:
  std::string file_;
  std::vector<std::string> names_;
};

/// Checks the current record: field count and UTF-8. Returns false (after a lenient warning)
/// when the row must be skipped.
bool check_record(CsvReader& reader, const std::vector<std::string>& names, Problems& problems);

/// Throws IOError when dir is not a directory or file is not in it, listing what dir holds.
std::filesystem::path require_file(const std::filesystem::path& dir, const std::string& name, const char* format);
/// Names of the files in dir (sorted), for error messages.
std::string list_dir(const std::filesystem::path& dir);
void require_dir(const std::filesystem::path& dir, const char* format);

/// The dataset's name: the folder's name, its bytes that are not UTF-8 written as "\xNN" (the
/// name goes into JSON output; a folder name need not be UTF-8).
inline std::string dataset_name(const std::filesystem::path& dir) {
  auto p = dir.lexically_normal();
  return printable_utf8(p.filename().empty() ? p.parent_path().filename().string() : p.filename().string());
}

/// Strict number parsing of a whole field; nullopt when the text is not a number.
std::optional<std::int64_t> parse_int(std::string_view text) noexcept;
std::optional<double> parse_double(std::string_view text) noexcept;
/// Days since 1970-01-01 of a proleptic Gregorian date.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept;
/// Days in a month of the proleptic Gregorian calendar (February 29 in leap years); 0 for a
/// month outside 1..12. Dates are checked against it: Feb 30 is an error, never Mar 2.
unsigned days_in_month(std::int64_t year, unsigned month) noexcept;
/// "YYYY-MM-DD", "YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z]" as UTC seconds; nullopt otherwise
/// (also for a day the month does not have).
std::optional<std::int64_t> parse_iso_time(std::string_view text) noexcept;

/// A timestamp in [limits::kMinTimestamp, limits::kMaxTimestamp]: nullopt for anything else (a
/// value that would wrap, or the "no timestamp" sentinel Interaction::kNoTimestamp).
std::optional<std::int64_t> checked_timestamp(std::int64_t seconds) noexcept;
/// The same for seconds given as a number with a fraction (rounded down); nullopt for NaN.
std::optional<std::int64_t> checked_timestamp(double seconds) noexcept;
/// What an out-of-range timestamp error says is expected.
std::string timestamp_range_text();
/// A rating that a float holds: finite and within float's range; nullopt otherwise.
std::optional<float> checked_rating(double value) noexcept;
/// "'text'" for messages, cut by preview() so that a message never holds a whole huge value.
std::string quoted(std::string_view text);
/// A JSON value in a message: a string quoted(), another value written and cut by preview().
template <class Json>
std::string shown(const Json& value) {
  return value.is_string() ? detail::quoted(value.template get_ref<const std::string&>()) : preview(value.dump());
}

/// Looks an item up by id, applying the unknown-item policy. nullopt: skip the interaction.
std::optional<ItemIndex> resolve_item(Catalog& catalog, std::string_view id, UnknownItems policy,
                                      const SourceLocation& where, Problems& problems);

/// Collects each user's events in file order; users are created on their first event.
class SequenceBuilder {
 public:
  void add(std::string_view user, Interaction event);
  /// Stable-sorts each user's events by timestamp (events without one keep their place
  /// before all timed events) and returns the interactions.
  Interactions finish(bool sort_by_time);

 private:
  std::vector<std::string> users_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<std::vector<Interaction>> events_;
};

/// A value of a JSON record as attribute text: strings as is, lists joined with sep
/// (nested lists joined with " | "), numbers and booleans as written, null as "".
std::string json_text(const nlohmann::json& value, std::string_view sep = ", ");
std::string json_text(const nlohmann::ordered_json& value, std::string_view sep = ", ");

}  // namespace lamia::detail
