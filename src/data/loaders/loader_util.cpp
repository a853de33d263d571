#include "loader_util.hpp"

#include <lamia/core/input_file.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace lamia {

std::string LoadMessage::str() const { return where.str() + ": " + message; }

std::size_t LoadReport::num_warnings() const {
  std::size_t n = 0;
  for (const auto& [k, v] : warnings) n += v;
  return n;
}

nlohmann::json LoadReport::to_json() const {
  nlohmann::json out;
  out["warnings"] = nlohmann::json::object();
  for (const auto& [k, v] : warnings) out["warnings"][k] = v;
  out["counts"] = nlohmann::json::object();
  for (const auto& [k, v] : counts) out["counts"][k] = v;
  out["messages"] = nlohmann::json::array();
  for (const auto& m : messages) out["messages"].push_back(m.str());
  return out;
}

UnknownItems parse_unknown_items(std::string_view name) {
  return options::enum_from_string<UnknownItems>(name, "unknown_items");
}

std::string_view to_string(UnknownItems policy) {
  for (const auto& [value, name] : enum_names(UnknownItems{}))
    if (value == policy) return name;
  return "default";
}

}  // namespace lamia

namespace lamia::detail {

Problems::Problems(const LoadOptions& options, LoadReport* report) : options_(options), report_(report) {}

void Problems::keep(const char* kind, SourceLocation where, const std::string& message) {
  if (report_ && report_->messages.size() < options_.max_messages)
    report_->messages.push_back({std::move(where), kind, message});
}

void Problems::row(const char* kind, SourceLocation where, const std::string& message) {
  if (!options_.lenient) throw ParseError(std::move(where), message);
  if (report_) ++report_->warnings[kind];
  keep(kind, std::move(where), message);
}

void Problems::note(const char* kind, SourceLocation where, const std::string& message) {
  if (report_) ++report_->counts[kind];
  keep(kind, std::move(where), message);
}

void Problems::count(const std::string& name, std::size_t n) {
  if (report_) report_->counts[name] += n;
}

Header Header::read(CsvReader& reader, const std::vector<std::string>& expected) {
  if (!reader.next())
    throw ParseError({reader.file_name(), 1, expected.empty() ? std::string() : expected.front()},
                     fmt::format("file is empty, expected a header row with the columns {}", fmt::join(expected, ", ")));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < reader.size(); ++i) names.emplace_back(reader[i]);
  std::size_t bad = reader.first_invalid_utf8_field();
  if (bad != reader.size())
    throw ParseError({reader.file_name(), reader.line(), fmt::format("#{}", bad + 1)}, "column name is not valid UTF-8");
  reader.set_field_names(names);
  return {reader, std::move(names)};
}

std::optional<std::size_t> Header::find(std::string_view name) const {
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return i;
  return std::nullopt;
}

std::size_t Header::require(std::string_view name) const {
  if (auto i = find(name)) return *i;
  throw ParseError({file_, 1, std::string(name)},
                   fmt::format("required column is missing (columns: {})", fmt::join(names_, ", ")));
}

bool check_record(CsvReader& reader, const std::vector<std::string>& names, Problems& problems) {
  if (reader.size() != names.size()) {
    // Name the first missing (or the first extra) field.
    std::string field = reader.size() < names.size() ? names[reader.size()] : fmt::format("#{}", names.size() + 1);
    problems.row("malformed_row", {reader.file_name(), reader.line(), field},
                 fmt::format("row has {} fields, expected {} (truncated or malformed row)", reader.size(), names.size()));
    return false;
  }
  std::size_t bad = reader.first_invalid_utf8_field();
  if (bad != reader.size()) {
    auto f = reader[bad];
    std::size_t at = find_invalid_utf8(f);
    problems.row("invalid_utf8", {reader.file_name(), reader.line(), names[bad]},
                 fmt::format("invalid UTF-8 (byte 0x{:02X} at offset {})", unsigned(static_cast<unsigned char>(f[at])), at));
    return false;
  }
  return true;
}

std::string list_dir(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (names.empty()) return "nothing";
  if (names.size() > 20) {
    names.resize(20);
    names.push_back("...");
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

void require_dir(const std::filesystem::path& dir, const char* format) {
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (status.type() == std::filesystem::file_type::directory) return;
  if (status.type() == std::filesystem::file_type::not_found)
    throw IOError(fmt::format("{}: {} dataset folder does not exist", dir.string(), format));
  if (ec) throw IOError(fmt::format("{}: {} dataset folder cannot be accessed: {}", dir.string(), format, ec.message()));
  throw IOError(fmt::format("{}: expected a folder holding a {} dataset, found a {}", dir.string(), format,
                            status.type() == std::filesystem::file_type::regular ? "file" : "special file"));
}

std::filesystem::path require_file(const std::filesystem::path& dir, const std::string& name, const char* format) {
  require_dir(dir, format);
  auto p = dir / name;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(p, ec)))
    throw IOError(fmt::format("{}: {} dataset needs '{}', which is missing (the folder holds: {})", dir.string(),
                              format, name, list_dir(dir)));
  // It exists: a directory, a FIFO, a device or a dangling link each get their own message.
  try {
    require_regular_file(p);
  } catch (const IOError& e) {
    throw IOError(fmt::format("{} ({} dataset file '{}')", e.what(), format, name));
  }
  return p;
}

std::optional<std::int64_t> parse_int(std::string_view t) noexcept {
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || ptr != t.data() + t.size() || t.empty()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view t) noexcept {
  if (t.empty() || t.size() > 64) return std::nullopt;
  // Integers and plain decimals (the common case) without strtod.
  {
    std::size_t i = 0;
    bool neg = false;
    if (t[0] == '-' || t[0] == '+') {
      neg = t[0] == '-';
      i = 1;
    }
    std::uint64_t ip = 0, fp = 0, scale = 1;
    std::size_t digits = 0;
    bool ok = i < t.size();
    while (i < t.size() && t[i] >= '0' && t[i] <= '9' && digits < 15) {
      ip = ip * 10 + std::uint64_t(t[i++] - '0');
      ++digits;
    }
    if (ok && i < t.size() && t[i] == '.') {
      ++i;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9' && digits < 15) {
        fp = fp * 10 + std::uint64_t(t[i++] - '0');
        scale *= 10;
        ++digits;
      }
    }
    if (ok && i == t.size() && digits > 0) {
      double v = double(ip) + double(fp) / double(scale);
      return neg ? -v : v;
    }
  }
  char buf[65];
  std::copy(t.begin(), t.end(), buf);
  buf[t.size()] = '\0';
  char* end = nullptr;
  double v = std::strtod(buf, &end);
  if (end != buf + t.size() || std::isnan(v) || std::isinf(v)) return std::nullopt;
  return v;
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  // H. Hinnant's algorithm.
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + std::int64_t(doe) - 719468;
}

unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  static constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12) return 0;
  const bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
  return m == 2 && leap ? 29 : kDays[m - 1];
}

std::optional<std::int64_t> checked_timestamp(std::int64_t seconds) noexcept {
  if (seconds < limits::kMinTimestamp || seconds > limits::kMaxTimestamp) return std::nullopt;
  return seconds;
}

std::optional<std::int64_t> checked_timestamp(double seconds) noexcept {
  // Compared as doubles first: casting a double outside int64's range is undefined.
  const double down = std::floor(seconds);
  if (!(down >= double(limits::kMinTimestamp) && down <= double(limits::kMaxTimestamp))) return std::nullopt;
  return std::int64_t(down);
}

std::string timestamp_range_text() {
  return fmt::format("Unix seconds in [{}, {}] (years 0000 to 9999)", limits::kMinTimestamp, limits::kMaxTimestamp);
}

std::optional<float> checked_rating(double value) noexcept {
  if (!std::isfinite(value) || std::abs(value) > double(std::numeric_limits<float>::max())) return std::nullopt;
  return float(value);
}

std::string quoted(std::string_view text) { return "'" + preview(text) + "'"; }

std::optional<std::int64_t> parse_iso_time(std::string_view t) noexcept {
  auto num = [&](std::size_t at, std::size_t len) -> std::optional<unsigned> {
    if (at + len > t.size()) return std::nullopt;
    unsigned v = 0;
    for (std::size_t k = 0; k < len; ++k) {
      char c = t[at + k];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + unsigned(c - '0');
    }
    return v;
  };
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2);
  if (!y || !mo || !d || t.size() < 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  if (*d < 1 || *d > days_in_month(*y, *mo)) return std::nullopt;
  std::int64_t secs = days_from_civil(*y, *mo, *d) * 86400;
  if (t.size() == 10) return secs;
  if (t[10] != 'T' && t[10] != ' ') return std::nullopt;
  auto h = num(11, 2), mi = num(14, 2);
  if (!h || !mi || t[13] != ':' || *h > 23 || *mi > 59) return std::nullopt;
  secs += std::int64_t(*h) * 3600 + std::int64_t(*mi) * 60;
  std::size_t i = 16;
  if (i < t.size() && t[i] == ':') {
    auto s = num(17, 2);
    if (!s || *s > 60) return std::nullopt;
    secs += *s;
    i = 19;
    if (i < t.size() && t[i] == '.') {
      ++i;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    }
  }
  if (i < t.size() && t[i] == 'Z') ++i;
  if (i != t.size()) return std::nullopt;
  return secs;
}

std::optional<ItemIndex> resolve_item(Catalog& catalog, std::string_view id, UnknownItems policy,
                                      const SourceLocation& where, Problems& problems) {
  if (auto found = catalog.find(id)) return found;
  switch (policy) {
    case UnknownItems::kAdd: {
      problems.count("unknown_item_added");
      return catalog.add(std::string(id), std::vector<std::string>(catalog.num_attributes()));
    }
    case UnknownItems::kSkip:
      problems.note("unknown_item_skipped", where, fmt::format("unknown item id {} skipped", detail::quoted(id)));
      return std::nullopt;
    default:
      problems.row("unknown_item", where,
                   fmt::format("unknown item id {} (not in the item file; LoadOptions::unknown_items "
                               "= skip or add accepts it)",
                               detail::quoted(id)));
      return std::nullopt;
  }
}

void SequenceBuilder::add(std::string_view user, Interaction event) {
  auto [it, inserted] = index_.try_emplace(std::string(user), users_.size());
  if (inserted) {
    users_.emplace_back(user);
    events_.emplace_back();
  }
  events_[it->second].push_back(event);
}

Interactions SequenceBuilder::finish(bool sort_by_time) {
  Interactions out;
  for (std::size_t u = 0; u < users_.size(); ++u) {
    auto& ev = events_[u];
    if (sort_by_time)
      std::stable_sort(ev.begin(), ev.end(), [](const Interaction& a, const Interaction& b) {
        // kNoTimestamp is the smallest int64, so untimed events sort first.
        return a.timestamp < b.timestamp;
      });
    auto user = out.user(users_[u]);
    out.set_sequence(user, std::move(ev));
  }
  return out;
}

namespace {
template <class Json>
std::string json_text_of(const Json& value, std::string_view sep) {
  switch (value.type()) {
    case Json::value_t::null: return {};
    case Json::value_t::string: return value.template get<std::string>();
    case Json::value_t::array: {
      std::string out;
      for (const auto& v : value) {
        auto part = json_text_of(v, v.is_array() ? std::string_view(", ") : sep);
        if (part.empty()) continue;
        if (!out.empty()) out += v.is_array() ? std::string_view(" | ") : sep;
        out += part;
      }
      return out;
    }
    case Json::value_t::object: return value.dump();
    default: return value.dump();
  }
}

}  // namespace

std::string json_text(const nlohmann::json& value, std::string_view sep) { return json_text_of(value, sep); }
std::string json_text(const nlohmann::ordered_json& value, std::string_view sep) { return json_text_of(value, sep); }

}  // namespace lamia::detail
