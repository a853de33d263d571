// Amazon reviews: the LC-Rec / LETTER form (*.item.json + *.inter.json) and the raw
// review + metadata JSON lines of the McAuley lab releases (2014, 2018, 2023).
#include "loader_util.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/data/detail/json_io.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>

namespace lamia {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kAmazonAttributes = {"title", "description", "brand", "categories"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Entries of dir whose (lower-case) name matches pred, sorted. Not only regular files: a
// directory or FIFO with a matching name gets the reader's own message, not "found none".
template <class Pred>
std::vector<fs::path> files_matching(const fs::path& dir, Pred pred) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (pred(lower(it->path().filename().string()))) out.push_back(it->path());
  if (ec) throw IOError(fmt::format("{}: cannot list the folder: {}", dir.string(), ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

fs::path exactly_one(const fs::path& dir, const std::vector<fs::path>& found, const char* what, const char* format) {
  if (found.size() == 1) return found[0];
  if (found.empty())
    throw IOError(fmt::format("{}: {} dataset needs one {} file, found none (the folder holds: {})", dir.string(),
                              format, what, detail::list_dir(dir)));
  std::vector<std::string> names;
  for (const auto& f : found) names.push_back(f.filename().string());
  throw IOError(fmt::format("{}: {} dataset needs one {} file, found {}: {}", dir.string(), format, what,
                            found.size(), fmt::join(names, ", ")));
}

// The key of the member of a JSON object (raw text) whose value spans offset; "" if unknown.
std::string key_at(std::string_view object_text, std::size_t offset) {
  try {
    detail::JsonObjectScanner scan(object_text, "", "");
    detail::JsonMember m;
    while (scan.next(m)) {
      std::size_t start = scan.offset_of(m.value);
      if (offset >= start && offset < start + m.value.size()) return m.key;
    }
  } catch (const ParseError&) {
  }
  return {};
}

// Reports invalid UTF-8 in the raw text of one record; true when the text is valid.
bool check_utf8(std::string_view text, const std::string& file, std::size_t line, const std::string& field_prefix,
                detail::Problems& problems) {
  std::size_t bad = detail::find_invalid_utf8(text);
  if (bad == std::string_view::npos) return true;
  auto key = key_at(text, bad);
  std::string field = field_prefix.empty() ? key : (key.empty() ? field_prefix : field_prefix + "." + key);
  std::size_t at_line = line + std::size_t(std::count(text.begin(), text.begin() + std::ptrdiff_t(bad), '\n'));
  problems.row("invalid_utf8", {file, at_line, field},
               fmt::format("invalid UTF-8 (byte 0x{:02X})", unsigned(static_cast<unsigned char>(text[bad]))));
  return false;
}

// One attribute value of an item record; non-text values are a row problem.
std::optional<std::string> attribute_text(const json& record, const char* key, std::string_view sep,
                                          const SourceLocation& where, detail::Problems& problems) {
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) return std::string();
  if (it->is_object()) {
    problems.row("invalid_value", where, "expected text or a list of texts, got a JSON object");
    return std::nullopt;
  }
  return detail::json_text(*it, sep);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Dataset load_amazon_lcrec(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  detail::require_dir(dir, "amazon-lcrec");
  auto item_path = exactly_one(
      dir, files_matching(dir, [](const std::string& n) { return ends_with(n, ".item.json"); }), "*.item.json",
      "amazon-lcrec");
  auto inter_path = exactly_one(
      dir, files_matching(dir, [](const std::string& n) { return ends_with(n, ".inter.json"); }), "*.inter.json",
      "amazon-lcrec");
  detail::Problems problems(options, report);
  auto policy = options.unknown_items == UnknownItems::kDefault ? UnknownItems::kError : options.unknown_items;

  Dataset ds;
  ds.name = detail::dataset_name(dir);
  ds.catalog = Catalog(kAmazonAttributes);
  {
    const std::string file = item_path.filename().string();
    const std::string text = read_file(item_path);
    detail::JsonObjectScanner scan(text, file, "item id");
    detail::JsonMember m;
    std::unordered_map<std::string, std::size_t> first_line;
    std::vector<std::pair<std::string, std::string>> flat;
    std::size_t rows = 0;
    while (scan.next(m)) {
      ++rows;
      std::size_t line = m.line;
      if (m.key.empty()) {
        problems.row("malformed_row", {file, line, "item id"}, "item id is empty");
        continue;
      }
      // The key is taken from the raw text (no JSON parser saw it): its bytes are checked too.
      if (!check_utf8(m.key, file, line, "item id", problems)) continue;
      if (!check_utf8(m.value, file, m.value_line, m.key, problems)) continue;
      auto [it, fresh] = first_line.emplace(m.key, line);
      if (!fresh) {
        problems.row("duplicate_item", {file, line, m.key},
                     fmt::format("duplicate item id {} (first on line {})", detail::quoted(m.key), it->second));
        continue;
      }
      // Most items are flat objects of strings: read those without building a JSON tree.
      if (detail::parse_flat_string_object(m.value, flat)) {
        std::vector<std::string> values(kAmazonAttributes.size());
        for (auto& [k, v] : flat)
          for (std::size_t a = 0; a < kAmazonAttributes.size(); ++a)
            if (k == kAmazonAttributes[a]) values[a] = std::move(v);
        ds.catalog.add(m.key, std::move(values));
        continue;
      }
      json record;
      try {
        record = detail::parse_json(m.value, file, m.value_line);
      } catch (const ParseError& e) {
        // The field as the docs name it: <item id>.<attribute> (the reader's key within the item).
        const auto& inner = e.where().field;
        problems.row("malformed_row", {file, e.where().line, inner.empty() ? m.key : m.key + "." + inner}, e.reason());
        continue;
      }
      if (!record.is_object()) {
        problems.row("malformed_row", {file, line, m.key},
                     fmt::format("expected an object of text fields, got JSON {}", record.type_name()));
        continue;
      }
      std::vector<std::string> values;
      bool ok = true;
      for (const auto& a : kAmazonAttributes) {
        auto v = attribute_text(record, a.c_str(), ", ", {file, line, m.key + "." + a}, problems);
        if (!v) {
          ok = false;
          break;
        }
        values.push_back(std::move(*v));
      }
      if (ok) ds.catalog.add(m.key, std::move(values));
    }
    if (rows == 0) throw ParseError({file, 1, ""}, "the item object is empty, expected items");
    problems.count("rows:" + file, rows);
  }
  {
    const std::string file = inter_path.filename().string();
    const std::string text = read_file(inter_path);
    detail::JsonObjectScanner scan(text, file, "user id");
    detail::JsonMember m;
    detail::SequenceBuilder seqs;
    std::size_t rows = 0;
    while (scan.next(m)) {
      ++rows;
      std::string_view v = m.value;
      std::size_t line = m.value_line;
      if (m.key.empty()) {
        problems.row("malformed_row", {file, m.line, "user id"}, "user id is empty");
        continue;
      }
      // Keys and the list are walked by hand (no JSON parser sees them): check their bytes.
      if (!check_utf8(m.key, file, m.line, "user id", problems)) continue;
      if (!check_utf8(v, file, line, m.key, problems)) continue;
      if (v.front() != '[') {
        problems.row("malformed_row", {file, m.line, m.key}, "expected a list of item ids");
        continue;
      }
      // Walk the list by hand: ids are numbers or strings (JSON escapes allowed: "a\u0062c" is
      // "abc"), and each error names its line.
      std::vector<Interaction> events;
      std::size_t i = 1;
      bool ok = true;
      std::string id;
      while (ok) {
        while (i < v.size() && (v[i] == ' ' || v[i] == '\n' || v[i] == '\r' || v[i] == '\t' || v[i] == ',')) {
          if (v[i] == '\n') ++line;
          ++i;
        }
        if (i >= v.size() || v[i] == ']') break;
        std::size_t s = i;
        if (v[i] == '"') {
          if (!detail::unescape_json_string(v, i, id)) {
            problems.row("invalid_value", {file, line, m.key},
                         fmt::format("bad JSON string for an item id: {}", detail::quoted(v.substr(s))));
            ok = false;
            break;
          }
        } else {
          while (i < v.size() && v[i] != ',' && v[i] != ']' && v[i] != ' ' && v[i] != '\n' && v[i] != '\r' &&
                 v[i] != '\t')
            ++i;
          id.assign(v.substr(s, i - s));
          // An integer id of any length (ids are compared as text, never converted).
          const std::size_t digits = !id.empty() && id[0] == '-' ? 1 : 0;
          if (id.size() == digits || id.find_first_not_of("0123456789", digits) != std::string::npos) {
            problems.row("invalid_value", {file, line, m.key},
                         fmt::format("expected an item id (integer or string), got {}", detail::quoted(id)));
            ok = false;
            break;
          }
        }
        if (auto item = detail::resolve_item(ds.catalog, id, policy, {file, line, m.key}, problems))
          events.push_back({*item});
      }
      if (!ok) continue;
      for (const auto& e : events) seqs.add(m.key, e);
    }
    if (rows == 0) throw ParseError({file, 1, ""}, "the interaction object is empty, expected users");
    problems.count("rows:" + file, rows);
    ds.interactions = seqs.finish(false);
  }
  return ds;
}

// ---------------------------------------------------------------------------------------------

namespace {

bool is_json_lines_name(const std::string& n) {
  return ends_with(n, ".json") || ends_with(n, ".jsonl") || ends_with(n, ".json.gz") || ends_with(n, ".jsonl.gz");
}

// One JSON-lines record: strict JSON, or a Python literal (2014 metadata) when the first key
// is single-quoted. nullopt after a (lenient) problem.
std::optional<json> read_record(std::string_view line, const std::string& file, std::size_t n,
                                detail::Problems& problems) {
  if (!check_utf8(line, file, n, "", problems)) return std::nullopt;
  std::size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  std::size_t j = i + 1;
  while (j < line.size() && line[j] == ' ') ++j;
  bool loose = i < line.size() && line[i] == '{' && j < line.size() && line[j] == '\'';
  json record;
  try {
    record = loose ? detail::parse_python_literal(line, file, n) : detail::parse_json(line, file, n);
  } catch (const ParseError& e) {
    problems.row("malformed_row", e.where(), e.reason());
    return std::nullopt;
  }
  if (!record.is_object()) {
    problems.row("malformed_row", {file, n, ""}, fmt::format("expected a JSON object, got {}", record.type_name()));
    return std::nullopt;
  }
  return record;
}

// The first of keys that the record has, as a non-empty string (numbers are written out).
std::optional<std::string> id_field(const json& record, std::initializer_list<const char*> keys, const char*& used) {
  for (const char* k : keys) {
    auto it = record.find(k);
    if (it == record.end() || it->is_null()) continue;
    used = k;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number_integer()) return it->dump();
    return std::nullopt;
  }
  used = *keys.begin();
  return std::nullopt;
}

}  // namespace

Dataset load_amazon(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  detail::require_dir(dir, "amazon");
  auto meta = exactly_one(
      dir, files_matching(dir, [](const std::string& n) { return n.rfind("meta", 0) == 0 && is_json_lines_name(n); }),
      "metadata (meta*.json[l][.gz])", "amazon");
  auto reviews = exactly_one(
      dir, files_matching(dir, [](const std::string& n) { return n.rfind("meta", 0) != 0 && is_json_lines_name(n); }),
      "review (*.json[l][.gz], not meta*)", "amazon");
  auto ds = load_amazon_files(meta, reviews, options, report);
  ds.name = detail::dataset_name(dir);
  return ds;
}

Dataset load_amazon_files(const fs::path& metadata, const fs::path& reviews, const LoadOptions& options,
                          LoadReport* report) {
  detail::Problems problems(options, report);
  auto policy = options.unknown_items == UnknownItems::kDefault ? UnknownItems::kError : options.unknown_items;
  Dataset ds;
  ds.name = detail::dataset_name(metadata.parent_path());
  ds.catalog = Catalog(kAmazonAttributes);
  {
    detail::LineReader in(metadata);
    const std::string file = metadata.filename().string();
    std::unordered_map<std::string, std::size_t> first_line;
    std::size_t rows = 0, loose = 0;
    std::string_view line;
    while (in.next(line)) {
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      ++rows;
      const std::size_t n = in.line_number();
      if (line.size() > 1 && line[0] == '{' && line.find('\'') < line.find('"')) ++loose;
      auto record = read_record(line, file, n, problems);
      if (!record) continue;
      const char* key = nullptr;
      auto id = id_field(*record, {"parent_asin", "asin"}, key);
      if (!id || id->empty()) {
        problems.row("malformed_row", {file, n, "asin"}, "item id (asin / parent_asin) is missing or not a string");
        continue;
      }
      auto [it, fresh] = first_line.emplace(*id, n);
      if (!fresh) {
        problems.row("duplicate_item", {file, n, key},
                     fmt::format("duplicate item id {} (first on line {})", detail::quoted(*id), it->second));
        continue;
      }
      // 2014: categories (list of lists); 2018: category (list); 2023: categories (list), store.
      auto title = attribute_text(*record, "title", ", ", {file, n, "title"}, problems);
      auto description = attribute_text(*record, "description", " ", {file, n, "description"}, problems);
      auto brand = attribute_text(*record, record->contains("brand") ? "brand" : "store", ", ", {file, n, "brand"},
                                  problems);
      auto categories = attribute_text(*record, record->contains("categories") ? "categories" : "category", ", ",
                                       {file, n, "categories"}, problems);
      if (!title || !description || !brand || !categories) continue;
      ds.catalog.add(std::move(*id), {std::move(*title), std::move(*description), std::move(*brand),
                                      std::move(*categories)});
    }
    if (rows == 0) throw ParseError({file, 1, "asin"}, "file is empty, expected item metadata lines");
    problems.count("rows:" + file, rows);
    if (loose) problems.count("python_literal_lines", loose);
  }
  {
    detail::LineReader in(reviews);
    const std::string file = reviews.filename().string();
    detail::SequenceBuilder seqs;
    std::size_t rows = 0;
    std::string_view line;
    while (in.next(line)) {
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      ++rows;
      const std::size_t n = in.line_number();
      auto record = read_record(line, file, n, problems);
      if (!record) continue;
      const char* key = nullptr;
      auto user = id_field(*record, {"reviewerID", "user_id"}, key);
      if (!user || user->empty()) {
        problems.row("malformed_row", {file, n, key}, "user id (reviewerID / user_id) is missing or not a string");
        continue;
      }
      auto item_id = id_field(*record, {"parent_asin", "asin"}, key);
      if (!item_id || item_id->empty()) {
        problems.row("malformed_row", {file, n, key}, "item id (asin / parent_asin) is missing or not a string");
        continue;
      }
      Interaction event;
      const char* rk = record->contains("overall") ? "overall" : "rating";
      if (auto it = record->find(rk); it != record->end() && !it->is_null()) {
        std::optional<double> r;
        if (it->is_number()) r = it->get<double>();
        else if (it->is_string()) r = detail::parse_double(it->get<std::string>());
        auto rating = r ? detail::checked_rating(*r) : std::nullopt;
        if (!rating) {
          problems.row("invalid_value", {file, n, rk},
                       fmt::format("expected a finite number within float's range, got {}", detail::shown(*it)));
          continue;
        }
        event.rating = *rating;
      }
      // unixReviewTime is in seconds; the 2023 release's "timestamp" is in milliseconds.
      const char* tk = record->contains("unixReviewTime") ? "unixReviewTime" : "timestamp";
      if (auto it = record->find(tk); it != record->end() && !it->is_null()) {
        std::optional<std::int64_t> t;
        if (it->is_number_unsigned()) {
          if (it->get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
            t = std::int64_t(it->get<std::uint64_t>());
        } else if (it->is_number_integer()) {
          t = it->get<std::int64_t>();
        } else if (it->is_string()) {
          t = detail::parse_int(it->get<std::string>());
        }
        if (t && std::string_view(tk) == "timestamp" && *t >= 100000000000LL) *t /= 1000;
        if (t) t = detail::checked_timestamp(*t);
        if (!t) {
          problems.row("invalid_value", {file, n, tk},
                       fmt::format("expected Unix time as an integer ({}{}), got {}", detail::timestamp_range_text(),
                                   std::string_view(tk) == "timestamp" ? ", or milliseconds" : "", detail::shown(*it)));
          continue;
        }
        event.timestamp = *t;
      }
      auto item = detail::resolve_item(ds.catalog, *item_id, policy, {file, n, key}, problems);
      if (!item) continue;
      event.item = *item;
      seqs.add(*user, event);
    }
    if (rows == 0) throw ParseError({file, 1, "reviewerID"}, "file is empty, expected review lines");
    problems.count("rows:" + file, rows);
    ds.interactions = seqs.finish(true);
  }
  return ds;
}

}  // namespace lamia
