// MIND: news.tsv + behaviors.tsv (https://msnews.github.io).
#include "loader_util.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace lamia {

namespace {

using detail::CsvReader;

const std::vector<std::string> kNewsColumns = {"news_id", "category",  "subcategory",     "title",
                                               "abstract", "url",      "title_entities", "abstract_entities"};
const std::vector<std::string> kBehaviorColumns = {"impression_id", "user_id", "time", "history", "impressions"};

// "11/12/2019 2:14:46 PM" -> Unix seconds (MIND times carry no zone; read as UTC).
std::optional<std::int64_t> parse_mind_time(std::string_view t) {
  unsigned v[6] = {0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  const char seps[6] = {'/', '/', ' ', ':', ':', ' '};
  for (int k = 0; k < 6; ++k) {
    std::size_t digits = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9' && digits < 4) {
      v[k] = v[k] * 10 + unsigned(t[i++] - '0');
      ++digits;
    }
    if (digits == 0 || i >= t.size() || t[i] != seps[k]) return std::nullopt;
    ++i;
  }
  auto ampm = t.substr(i);
  unsigned month = v[0], day = v[1], year = v[2], hour = v[3], minute = v[4], second = v[5];
  if (day < 1 || day > detail::days_in_month(year, month) || hour < 1 || hour > 12 || minute > 59 || second > 60)
    return std::nullopt;
  if (ampm == "AM") {
    if (hour == 12) hour = 0;
  } else if (ampm == "PM") {
    if (hour != 12) hour += 12;
  } else {
    return std::nullopt;
  }
  return detail::days_from_civil(year, month, day) * 86400 + std::int64_t(hour) * 3600 + minute * 60 + second;
}

template <class F>
void for_each_token(std::string_view s, F&& f) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) f(s.substr(i, j - i));
    i = j;
  }
}

}  // namespace

Dataset load_mind(const std::filesystem::path& dir, const LoadOptions& options, LoadReport* report) {
  auto news_path = detail::require_file(dir, "news.tsv", "mind");
  auto behaviors_path = detail::require_file(dir, "behaviors.tsv", "mind");
  detail::Problems problems(options, report);
  auto policy = options.unknown_items == UnknownItems::kDefault ? UnknownItems::kAdd : options.unknown_items;
  const detail::CsvDialect tsv{'\t', false};

  Dataset ds;
  ds.name = detail::dataset_name(dir);
  ds.catalog = Catalog({"title", "abstract", "category", "subcategory"});
  {
    CsvReader r(news_path, tsv);
    r.set_field_names(kNewsColumns);
    std::size_t rows = 0;
    std::unordered_map<std::string, std::size_t> first_line;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, kNewsColumns, problems)) continue;
      std::string id(r[0]);
      if (id.empty()) {
        problems.row("malformed_row", {r.file_name(), r.line(), "news_id"}, "news id is empty");
        continue;
      }
      auto [it, fresh] = first_line.emplace(id, r.line());
      if (!fresh) {
        problems.row("duplicate_item", {r.file_name(), r.line(), "news_id"},
                     fmt::format("duplicate news id {} (first on line {})", detail::quoted(id), it->second));
        continue;
      }
      ds.catalog.add(std::move(id), {std::string(r[3]), std::string(r[4]), std::string(r[1]), std::string(r[2])});
    }
    if (rows == 0) throw ParseError({r.file_name(), 1, "news_id"}, "file is empty, expected news rows");
    problems.count("rows:news.tsv", rows);
  }

  // Impressions of each user, then: history of the user's first row + clicks in time order.
  struct Click {
    std::int64_t time;
    ItemIndex item;
  };
  std::vector<std::string> users;
  std::unordered_map<std::string, std::size_t> user_index;
  std::vector<std::vector<Interaction>> history;
  std::vector<std::string> history_text;  // to detect rows whose history differs
  std::vector<std::vector<Click>> clicks;
  {
    CsvReader r(behaviors_path, tsv);
    r.set_field_names(kBehaviorColumns);
    std::size_t rows = 0, history_entries = 0, clicked = 0, differing = 0;
    std::vector<Interaction> row_history;
    std::vector<Click> row_clicks;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, kBehaviorColumns, problems)) continue;
      auto user = r[1];
      if (user.empty()) {
        problems.row("malformed_row", {r.file_name(), r.line(), "user_id"}, "user id is empty");
        continue;
      }
      auto time = parse_mind_time(r[2]);
      if (!time) {
        problems.row("invalid_value", {r.file_name(), r.line(), "time"},
                     fmt::format("expected a time like '11/12/2019 2:14:46 PM' (a real calendar date), got {}", detail::quoted(r[2])));
        continue;
      }
      auto it = user_index.find(std::string(user));
      bool new_user = it == user_index.end();
      row_history.clear();
      row_clicks.clear();
      bool bad = false;
      if (new_user) {
        for_each_token(r[3], [&](std::string_view id) {
          ++history_entries;
          if (auto item = detail::resolve_item(ds.catalog, id, policy, {r.file_name(), r.line(), "history"}, problems))
            row_history.push_back({*item, Interaction::kNoTimestamp});
        });
      } else {
        std::size_t n = 0;
        for_each_token(r[3], [&](std::string_view) { ++n; });
        history_entries += n;
        if (r[3] != history_text[it->second]) ++differing;
      }
      for_each_token(r[4], [&](std::string_view token) {
        if (bad) return;
        auto dash = token.rfind('-');
        // The MIND test split has no labels ("N123"): not a click.
        if (dash == std::string_view::npos) return;
        auto label = token.substr(dash + 1);
        if (label != "0" && label != "1") {
          problems.row("invalid_value", {r.file_name(), r.line(), "impressions"},
                       fmt::format("expected 'NEWSID-0' or 'NEWSID-1', got {}", detail::quoted(token)));
          bad = true;
          return;
        }
        if (label == "0") return;
        ++clicked;
        if (auto item = detail::resolve_item(ds.catalog, token.substr(0, dash), policy,
                                             {r.file_name(), r.line(), "impressions"}, problems))
          row_clicks.push_back({*time, *item});
      });
      if (bad) continue;
      if (new_user) {
        it = user_index.emplace(std::string(user), users.size()).first;
        users.emplace_back(user);
        history.push_back(row_history);
        history_text.emplace_back(r[3]);
        clicks.emplace_back();
      }
      auto& c = clicks[it->second];
      c.insert(c.end(), row_clicks.begin(), row_clicks.end());
    }
    if (rows == 0) throw ParseError({r.file_name(), 1, "impression_id"}, "file is empty, expected impression rows");
    problems.count("rows:behaviors.tsv", rows);
    problems.count("history_entries", history_entries);
    problems.count("clicked_impressions", clicked);
    if (differing) problems.count("history_differs_from_first_row", differing);
  }

  for (std::size_t u = 0; u < users.size(); ++u) {
    auto& c = clicks[u];
    std::stable_sort(c.begin(), c.end(), [](const Click& a, const Click& b) { return a.time < b.time; });
    std::vector<Interaction> seq = std::move(history[u]);
    for (const auto& k : c) seq.push_back({k.item, k.time});
    if (seq.empty()) continue;  // users with nothing known (kSkip) are left out
    ds.interactions.set_sequence(ds.interactions.user(users[u]), std::move(seq));
  }
  return ds;
}

}  // namespace lamia
