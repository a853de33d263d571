// H&M Personalized Fashion Recommendations (Kaggle 2022): articles.csv + transactions_train.csv.
#include "loader_util.hpp"

#include <fmt/format.h>

namespace lamia {

namespace {

// The paper's 7 H&M attributes, in its order.
const std::vector<std::string> kPaperAttributes = {
    "detail_desc",       "product_type_name",           "product_group_name", "graphical_appearance_name",
    "colour_group_name", "perceived_colour_value_name", "index_name"};

bool is_text_column(std::string_view name) {
  return name == "detail_desc" || (name.size() > 5 && name.substr(name.size() - 5) == "_name");
}

// Kaggle's ids are 10 digits with leading zeros; pandas round-trips drop them. Both forms
// map to the 10-digit one so that the two files join whichever way they were written.
std::optional<std::string> article_id(std::string_view raw) {
  if (raw.empty() || raw.size() > 10) return raw.empty() ? std::nullopt : std::optional<std::string>(std::string(raw));
  for (char c : raw)
    if (c < '0' || c > '9') return std::string(raw);
  std::string out(10 - raw.size(), '0');
  out += raw;
  return out;
}

}  // namespace

Dataset load_hm(const std::filesystem::path& dir, const LoadOptions& options, LoadReport* report) {
  auto articles_path = detail::require_file(dir, "articles.csv", "hm");
  auto transactions_path = detail::require_file(dir, "transactions_train.csv", "hm");
  detail::Problems problems(options, report);
  auto policy = options.unknown_items == UnknownItems::kDefault ? UnknownItems::kError : options.unknown_items;

  Dataset ds;
  ds.name = detail::dataset_name(dir);
  {
    detail::CsvReader r(articles_path);
    auto header = detail::Header::read(r, {"article_id", "detail_desc"});
    const std::size_t id_col = header.require("article_id");
    std::vector<std::string> names;
    std::vector<std::size_t> columns;
    for (const auto& a : kPaperAttributes) {
      columns.push_back(header.require(a));
      names.push_back(a);
    }
    for (std::size_t c = 0; c < header.size(); ++c) {
      const auto& n = header.names()[c];
      if (is_text_column(n) && std::find(names.begin(), names.end(), n) == names.end()) {
        names.push_back(n);
        columns.push_back(c);
      }
    }
    ds.catalog = Catalog(names);
    std::unordered_map<std::string, std::size_t> first_line;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      auto id = article_id(r[id_col]);
      if (!id) {
        problems.row("malformed_row", {r.file_name(), r.line(), "article_id"}, "article id is empty");
        continue;
      }
      auto [it, fresh] = first_line.emplace(*id, r.line());
      if (!fresh) {
        problems.row("duplicate_item", {r.file_name(), r.line(), "article_id"},
                     fmt::format("duplicate article id {} (first on line {})", detail::quoted(r[id_col]), it->second));
        continue;
      }
      std::vector<std::string> values;
      values.reserve(columns.size());
      for (auto c : columns) values.emplace_back(r[c]);
      ds.catalog.add(std::move(*id), std::move(values));
    }
    if (rows == 0) throw ParseError({r.file_name(), 2, "article_id"}, "file has a header but no articles");
    problems.count("rows:articles.csv", rows);
  }
  {
    detail::CsvReader r(transactions_path);
    auto header = detail::Header::read(r, {"t_dat", "customer_id", "article_id"});
    const std::size_t date_col = header.require("t_dat");
    const std::size_t user_col = header.require("customer_id");
    const std::size_t item_col = header.require("article_id");
    detail::SequenceBuilder seqs;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      auto date = r[date_col];
      auto t = detail::parse_iso_time(date);
      if (!t) {
        problems.row("invalid_value", {r.file_name(), r.line(), "t_dat"},
                     fmt::format("expected a date YYYY-MM-DD (a real calendar date), got {}", detail::quoted(date)));
        continue;
      }
      if (r[user_col].empty()) {
        problems.row("malformed_row", {r.file_name(), r.line(), "customer_id"}, "customer id is empty");
        continue;
      }
      auto id = article_id(r[item_col]);
      if (!id) {
        problems.row("malformed_row", {r.file_name(), r.line(), "article_id"}, "article id is empty");
        continue;
      }
      auto item = detail::resolve_item(ds.catalog, *id, policy, {r.file_name(), r.line(), "article_id"}, problems);
      if (!item) continue;
      seqs.add(r[user_col], {*item, *t});
    }
    problems.count("rows:transactions_train.csv", rows);
    // Same-day purchases keep their row order (stable sort by date).
    ds.interactions = seqs.finish(true);
  }
  return ds;
}

}  // namespace lamia
