// Generic datasets: JSON lines or CSV/TSV files with a FieldMapping.
#include "loader_util.hpp"

#include <lamia/data/detail/json_io.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace lamia {

namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;  // not `json`: amazon.cpp means nlohmann::json by it (unity build)

std::optional<fs::path> find_with_ext(const fs::path& dir, const std::string& stem,
                                      std::initializer_list<const char*> exts) {
  for (const char* e : exts) {
    auto p = dir / (stem + e);
    std::error_code ec;
    // Any file type: a directory or FIFO by that name gets the reader's own message.
    if (fs::exists(fs::symlink_status(p, ec))) return p;
  }
  return std::nullopt;
}

// A timestamp field: Unix seconds (integer, decimal, or digits in a string) or ISO 8601, within
// limits::kMinTimestamp..kMaxTimestamp (never wrapped, never the "no timestamp" sentinel).
std::optional<std::int64_t> parse_time_text(std::string_view t) {
  if (auto v = detail::parse_int(t)) return detail::checked_timestamp(*v);
  if (auto d = detail::parse_double(t)) return detail::checked_timestamp(*d);
  return detail::parse_iso_time(t);
}

std::optional<std::int64_t> parse_time_json(const ordered_json& v) {
  if (v.is_number_unsigned()) {  // may exceed int64: compare before converting
    const auto u = v.get<std::uint64_t>();
    return u > std::uint64_t(limits::kMaxTimestamp) ? std::nullopt : detail::checked_timestamp(std::int64_t(u));
  }
  if (v.is_number_integer()) return detail::checked_timestamp(v.get<std::int64_t>());
  if (v.is_number_float()) return detail::checked_timestamp(v.get<double>());
  if (v.is_string()) return parse_time_text(v.get_ref<const std::string&>());
  return std::nullopt;
}

const std::string kTimeExpected = "expected " + detail::timestamp_range_text() + " or an ISO 8601 date";

std::optional<std::string> id_text(const ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  return std::nullopt;
}

// Records of a JSON-lines file with their line numbers; blank lines skipped.
std::vector<std::pair<std::size_t, ordered_json>> read_json_lines(const fs::path& path, const std::string& first_field,
                                                          detail::Problems& problems, std::size_t& rows) {
  detail::LineReader in(path);
  const std::string file = path.filename().string();
  std::vector<std::pair<std::size_t, ordered_json>> out;
  std::string_view line;
  rows = 0;
  while (in.next(line)) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    ++rows;
    const std::size_t n = in.line_number();
    if (auto bad = detail::find_invalid_utf8(line); bad != std::string_view::npos) {
      problems.row("invalid_utf8", {file, n, detail::json_key_before(line, bad)}, fmt::format("invalid UTF-8 at column {}", bad + 1));
      continue;
    }
    ordered_json record;
    try {
      record = detail::parse_ordered_json(line, file, n);
    } catch (const ParseError& e) {
      problems.row("malformed_row", e.where(), e.reason());
      continue;
    }
    if (!record.is_object()) {
      problems.row("malformed_row", {file, n, ""}, fmt::format("expected a JSON object, got {}", record.type_name()));
      continue;
    }
    out.emplace_back(n, std::move(record));
  }
  if (rows == 0) throw ParseError({file, 1, first_field}, "file is empty, expected JSON lines");
  problems.count("rows:" + file, rows);
  return out;
}

struct Event {
  std::string user;
  Interaction interaction;
};


// With an items file, an unknown id in the interactions is an error by default; without one, the
// interactions define the items, so unknown ids are added.
UnknownItems unknown_item_policy(const LoadOptions& options, bool has_items_file) {
  if (options.unknown_items != UnknownItems::kDefault) return options.unknown_items;
  return has_items_file ? UnknownItems::kError : UnknownItems::kAdd;
}

}  // namespace

Dataset load_jsonl(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  detail::require_dir(dir, "jsonl");
  const auto& map = options.mapping;
  auto items_path = find_with_ext(dir, map.items_file, {".jsonl", ".json", ".jsonl.gz", ".json.gz"});
  auto inter_path = find_with_ext(dir, map.interactions_file, {".jsonl", ".json", ".jsonl.gz", ".json.gz"});
  if (!inter_path)
    throw IOError(fmt::format("{}: jsonl dataset needs '{}.jsonl' (or .json, .jsonl.gz), which is missing "
                              "(the folder holds: {})",
                              dir.string(), map.interactions_file, detail::list_dir(dir)));
  detail::Problems problems(options, report);
  auto policy = unknown_item_policy(options, items_path.has_value());
  Dataset ds;
  ds.name = detail::dataset_name(dir);
  std::vector<std::string> attributes = map.text_fields;
  if (items_path) {
    std::size_t rows = 0;
    auto records = read_json_lines(*items_path, map.item_id, problems, rows);
    const std::string file = items_path->filename().string();
    if (attributes.empty()) {
      for (const auto& [n, r] : records)
        for (const auto& [k, v] : r.items())
          if (k != map.item_id && std::find(attributes.begin(), attributes.end(), k) == attributes.end())
            attributes.push_back(k);
    }
    ds.catalog = Catalog(attributes);
    std::unordered_map<std::string, std::size_t> first_line;
    for (auto& [n, r] : records) {
      auto it = r.find(map.item_id);
      std::optional<std::string> id;
      if (it != r.end()) id = id_text(*it);
      if (!id || id->empty()) {
        problems.row("malformed_row", {file, n, map.item_id}, "item id is missing, empty or not a string/integer");
        continue;
      }
      auto [seen, fresh] = first_line.emplace(*id, n);
      if (!fresh) {
        problems.row("duplicate_item", {file, n, map.item_id},
                     fmt::format("duplicate item id {} (first on line {})", detail::quoted(*id), seen->second));
        continue;
      }
      std::vector<std::string> values;
      for (const auto& a : attributes) {
        auto v = r.find(a);
        values.push_back(v == r.end() ? std::string() : detail::json_text(*v));
      }
      ds.catalog.add(std::move(*id), std::move(values));
    }
  } else {
    ds.catalog = Catalog(attributes);
  }
  {
    std::size_t rows = 0;
    auto records = read_json_lines(*inter_path, map.user_id, problems, rows);
    const std::string file = inter_path->filename().string();
    detail::SequenceBuilder seqs;
    for (auto& [n, r] : records) {
      auto u = r.find(map.user_id);
      std::optional<std::string> user;
      if (u != r.end()) user = id_text(*u);
      if (!user || user->empty()) {
        problems.row("malformed_row", {file, n, map.user_id}, "user id is missing, empty or not a string/integer");
        continue;
      }
      auto i = r.find(map.item_id);
      std::optional<std::string> item_id;
      if (i != r.end()) item_id = id_text(*i);
      if (!item_id || item_id->empty()) {
        problems.row("malformed_row", {file, n, map.item_id}, "item id is missing, empty or not a string/integer");
        continue;
      }
      Interaction e;
      if (!map.timestamp.empty()) {
        if (auto t = r.find(map.timestamp); t != r.end() && !t->is_null()) {
          auto v = parse_time_json(*t);
          if (!v) {
            problems.row("invalid_value", {file, n, map.timestamp}, fmt::format("{}, got {}", kTimeExpected, detail::shown(*t)));
            continue;
          }
          e.timestamp = *v;
        }
      }
      if (!map.rating.empty()) {
        if (auto t = r.find(map.rating); t != r.end() && !t->is_null()) {
          std::optional<double> v;
          if (t->is_number()) v = t->get<double>();
          else if (t->is_string()) v = detail::parse_double(t->get_ref<const std::string&>());
          auto rating = v ? detail::checked_rating(*v) : std::nullopt;
          if (!rating) {
            problems.row("invalid_value", {file, n, map.rating},
                         fmt::format("expected a finite number within float's range, got {}", detail::shown(*t)));
            continue;
          }
          e.rating = *rating;
        }
      }
      auto item = detail::resolve_item(ds.catalog, *item_id, policy, {file, n, map.item_id}, problems);
      if (!item) continue;
      e.item = *item;
      seqs.add(*user, e);
    }
    ds.interactions = seqs.finish(map.sort_by_timestamp);
  }
  return ds;
}

Dataset load_csv(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  detail::require_dir(dir, "csv");
  const auto& map = options.mapping;
  auto items_path = find_with_ext(dir, map.items_file, {".csv", ".tsv", ".csv.gz", ".tsv.gz"});
  auto inter_path = find_with_ext(dir, map.interactions_file, {".csv", ".tsv", ".csv.gz", ".tsv.gz"});
  if (!inter_path)
    throw IOError(fmt::format("{}: csv dataset needs '{}.csv' (or .tsv), which is missing (the folder holds: {})",
                              dir.string(), map.interactions_file, detail::list_dir(dir)));
  auto dialect = [](const fs::path& p) {
    auto n = p.filename().string();
    return detail::CsvDialect{n.find(".tsv") != std::string::npos ? '\t' : ',', true};
  };
  detail::Problems problems(options, report);
  auto policy = unknown_item_policy(options, items_path.has_value());
  Dataset ds;
  ds.name = detail::dataset_name(dir);
  std::vector<std::string> attributes = map.text_fields;
  if (items_path) {
    detail::CsvReader r(*items_path, dialect(*items_path));
    auto header = detail::Header::read(r, {map.item_id});
    const auto id_col = header.require(map.item_id);
    std::vector<std::size_t> columns;
    if (attributes.empty()) {
      for (std::size_t c = 0; c < header.size(); ++c)
        if (c != id_col) {
          attributes.push_back(header.names()[c]);
          columns.push_back(c);
        }
    } else {
      for (const auto& a : attributes) columns.push_back(header.require(a));
    }
    ds.catalog = Catalog(attributes);
    std::unordered_map<std::string, std::size_t> first_line;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      std::string id(r[id_col]);
      if (id.empty()) {
        problems.row("malformed_row", {r.file_name(), r.line(), map.item_id}, "item id is empty");
        continue;
      }
      auto [seen, fresh] = first_line.emplace(id, r.line());
      if (!fresh) {
        problems.row("duplicate_item", {r.file_name(), r.line(), map.item_id},
                     fmt::format("duplicate item id {} (first on line {})", detail::quoted(id), seen->second));
        continue;
      }
      std::vector<std::string> values;
      for (auto c : columns) values.emplace_back(r[c]);
      ds.catalog.add(std::move(id), std::move(values));
    }
    if (rows == 0) throw ParseError({r.file_name(), 2, map.item_id}, "file has a header but no items");
    problems.count("rows:" + r.file_name(), rows);
  } else {
    ds.catalog = Catalog(attributes);
  }
  {
    detail::CsvReader r(*inter_path, dialect(*inter_path));
    auto header = detail::Header::read(r, {map.user_id, map.item_id});
    const auto user_col = header.require(map.user_id), item_col = header.require(map.item_id);
    auto time_col = map.timestamp.empty() ? std::nullopt : header.find(map.timestamp);
    auto rating_col = map.rating.empty() ? std::nullopt : header.find(map.rating);
    detail::SequenceBuilder seqs;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      if (r[user_col].empty()) {
        problems.row("malformed_row", {r.file_name(), r.line(), map.user_id}, "user id is empty");
        continue;
      }
      Interaction e;
      if (time_col && !r[*time_col].empty()) {
        auto v = parse_time_text(r[*time_col]);
        if (!v) {
          problems.row("invalid_value", {r.file_name(), r.line(), map.timestamp},
                       fmt::format("{}, got {}", kTimeExpected, detail::quoted(r[*time_col])));
          continue;
        }
        e.timestamp = *v;
      }
      if (rating_col && !r[*rating_col].empty()) {
        auto v = detail::parse_double(r[*rating_col]);
        auto rating = v ? detail::checked_rating(*v) : std::nullopt;
        if (!rating) {
          problems.row("invalid_value", {r.file_name(), r.line(), map.rating},
                       fmt::format("expected a finite number within float's range, got {}", detail::quoted(r[*rating_col])));
          continue;
        }
        e.rating = *rating;
      }
      auto item = detail::resolve_item(ds.catalog, r[item_col], policy, {r.file_name(), r.line(), map.item_id}, problems);
      if (!item) continue;
      e.item = *item;
      seqs.add(r[user_col], e);
    }
    if (rows == 0) throw ParseError({r.file_name(), 2, map.user_id}, "file has a header but no interactions");
    problems.count("rows:" + r.file_name(), rows);
    ds.interactions = seqs.finish(map.sort_by_timestamp);
  }
  return ds;
}

}  // namespace lamia
