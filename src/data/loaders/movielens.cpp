// MovieLens (GroupLens): movies.csv + ratings.csv [+ tags.csv], or ml-100k's u.item + u.data.
#include "loader_util.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace lamia {

namespace {

namespace fs = std::filesystem;
using detail::CsvReader;

const std::vector<std::string> kAttributes = {"title", "genres", "tags"};
// ml-100k's genres when u.genre is absent (its order, flag columns 5..23 of u.item).
const std::vector<std::string> kMl100kGenres = {
    "unknown", "Action",    "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama", "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance", "Sci-Fi",    "Thriller",  "War",       "Western"};

// Any file type: a directory or FIFO by an expected name gets the reader's own message.
bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

// One rating row: user, item, rating, time. Returns false after a (lenient) problem.
bool add_rating(CsvReader& r, std::size_t user_col, std::size_t item_col, std::size_t rating_col,
                std::size_t time_col, const std::vector<std::string>& names, Catalog& catalog, UnknownItems policy,
                detail::SequenceBuilder& seqs, detail::Problems& problems) {
  if (r[user_col].empty()) {
    problems.row("malformed_row", {r.file_name(), r.line(), names[user_col]}, "user id is empty");
    return false;
  }
  auto number = detail::parse_double(r[rating_col]);
  auto rating = number ? detail::checked_rating(*number) : std::nullopt;
  if (!rating) {
    problems.row("invalid_value", {r.file_name(), r.line(), names[rating_col]},
                 fmt::format("expected a finite number within float's range, got {}", detail::quoted(r[rating_col])));
    return false;
  }
  auto seconds = detail::parse_int(r[time_col]);
  auto time = seconds ? detail::checked_timestamp(*seconds) : std::nullopt;
  if (!time) {
    problems.row("invalid_value", {r.file_name(), r.line(), names[time_col]},
                 fmt::format("expected {}, got {}", detail::timestamp_range_text(), detail::quoted(r[time_col])));
    return false;
  }
  auto item = detail::resolve_item(catalog, r[item_col], policy, {r.file_name(), r.line(), names[item_col]}, problems);
  if (!item) return false;
  Interaction e;
  e.item = *item;
  e.timestamp = *time;
  e.rating = *rating;
  seqs.add(r[user_col], e);
  return true;
}

Dataset load_ml100k(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  detail::Problems problems(options, report);
  auto policy = options.unknown_items == UnknownItems::kDefault ? UnknownItems::kError : options.unknown_items;
  const detail::CsvDialect pipe{'|', false};
  Dataset ds;
  ds.name = detail::dataset_name(dir);
  ds.catalog = Catalog(kAttributes);

  std::vector<std::string> genres = kMl100kGenres;
  if (file_exists(dir / "u.genre")) {
    genres.clear();
    CsvReader r(dir / "u.genre", pipe);
    while (r.next()) {
      if (r.size() != 2) {
        throw ParseError({r.file_name(), r.line(), "genre"}, fmt::format("expected 'name|index', got {} fields", r.size()));
      }
      genres.push_back(detail::latin1_to_utf8(r[0]));
    }
  }
  {
    CsvReader r(detail::require_file(dir, "u.item", "movielens"), pipe);
    std::vector<std::string> names = {"movie_id", "title", "release_date", "video_release_date", "imdb_url"};
    for (const auto& g : genres) names.push_back("genre:" + g);
    std::unordered_map<std::string, std::size_t> first_line;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      // Latin-1 is never invalid: only the field count is checked.
      if (r.size() != names.size()) {
        problems.row("malformed_row", {r.file_name(), r.line(), r.size() < names.size() ? names[r.size()] : "genres"},
                     fmt::format("row has {} fields, expected {} (truncated or malformed row)", r.size(), names.size()));
        continue;
      }
      std::string id(r[0]);
      if (!detail::parse_int(id)) {
        problems.row("invalid_value", {r.file_name(), r.line(), "movie_id"}, fmt::format("expected an integer, got {}", detail::quoted(id)));
        continue;
      }
      auto [it, fresh] = first_line.emplace(id, r.line());
      if (!fresh) {
        problems.row("duplicate_item", {r.file_name(), r.line(), "movie_id"},
                     fmt::format("duplicate movie id {} (first on line {})", detail::quoted(id), it->second));
        continue;
      }
      std::string g;
      for (std::size_t k = 0; k < genres.size(); ++k) {
        if (r[5 + k] == "1") {
          if (!g.empty()) g += '|';
          g += genres[k];
        }
      }
      ds.catalog.add(std::move(id), {detail::latin1_to_utf8(r[1]), std::move(g), ""});
    }
    if (rows == 0) throw ParseError({r.file_name(), 1, "movie_id"}, "file is empty, expected movies");
    problems.count("rows:u.item", rows);
  }
  {
    CsvReader r(detail::require_file(dir, "u.data", "movielens"), {'\t', false});
    const std::vector<std::string> names = {"user_id", "item_id", "rating", "timestamp"};
    detail::SequenceBuilder seqs;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, names, problems)) continue;
      add_rating(r, 0, 1, 2, 3, names, ds.catalog, policy, seqs, problems);
    }
    if (rows == 0) throw ParseError({r.file_name(), 1, "user_id"}, "file is empty, expected ratings");
    problems.count("rows:u.data", rows);
    ds.interactions = seqs.finish(true);
  }
  return ds;
}

}  // namespace

Dataset load_movielens(const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  detail::require_dir(dir, "movielens");
  if (!file_exists(dir / "movies.csv") && file_exists(dir / "u.item")) return load_ml100k(dir, options, report);
  auto movies_path = detail::require_file(dir, "movies.csv", "movielens");
  auto ratings_path = detail::require_file(dir, "ratings.csv", "movielens");
  detail::Problems problems(options, report);
  auto policy = options.unknown_items == UnknownItems::kDefault ? UnknownItems::kError : options.unknown_items;

  Dataset ds;
  ds.name = detail::dataset_name(dir);
  ds.catalog = Catalog(kAttributes);
  {
    CsvReader r(movies_path);
    auto header = detail::Header::read(r, {"movieId", "title", "genres"});
    const auto id_col = header.require("movieId"), title_col = header.require("title"),
               genres_col = header.require("genres");
    std::unordered_map<std::string, std::size_t> first_line;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      std::string id(r[id_col]);
      if (id.empty()) {
        problems.row("malformed_row", {r.file_name(), r.line(), "movieId"}, "movie id is empty");
        continue;
      }
      auto [it, fresh] = first_line.emplace(id, r.line());
      if (!fresh) {
        problems.row("duplicate_item", {r.file_name(), r.line(), "movieId"},
                     fmt::format("duplicate movie id {} (first on line {})", detail::quoted(id), it->second));
        continue;
      }
      ds.catalog.add(std::move(id), {std::string(r[title_col]), std::string(r[genres_col]), ""});
    }
    if (rows == 0) throw ParseError({r.file_name(), 2, "movieId"}, "file has a header but no movies");
    problems.count("rows:movies.csv", rows);
  }
  if (file_exists(dir / "tags.csv")) {
    CsvReader r(dir / "tags.csv");
    auto header = detail::Header::read(r, {"userId", "movieId", "tag", "timestamp"});
    const auto item_col = header.require("movieId"), tag_col = header.require("tag");
    const std::size_t tags_attr = ds.catalog.attribute_index("tags");
    // Distinct tags per movie, in first-use order.
    std::vector<std::vector<std::string>> tags(ds.catalog.size());
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      auto item = detail::resolve_item(ds.catalog, r[item_col], policy, {r.file_name(), r.line(), "movieId"}, problems);
      if (!item) continue;
      if (std::size_t(*item) >= tags.size()) tags.resize(std::size_t(*item) + 1);
      auto tag = r[tag_col];
      auto& list = tags[std::size_t(*item)];
      if (!tag.empty() && std::find(list.begin(), list.end(), tag) == list.end()) list.emplace_back(tag);
    }
    for (std::size_t i = 0; i < tags.size(); ++i) {
      if (tags[i].empty()) continue;
      std::string joined;
      for (const auto& t : tags[i]) {
        if (!joined.empty()) joined += '|';
        joined += t;
      }
      ds.catalog.set_value(ItemIndex(i), tags_attr, std::move(joined));
    }
    problems.count("rows:tags.csv", rows);
  }
  {
    CsvReader r(ratings_path);
    auto header = detail::Header::read(r, {"userId", "movieId", "rating", "timestamp"});
    const auto user_col = header.require("userId"), item_col = header.require("movieId"),
               rating_col = header.require("rating"), time_col = header.require("timestamp");
    detail::SequenceBuilder seqs;
    std::size_t rows = 0;
    while (r.next()) {
      ++rows;
      if (!detail::check_record(r, header.names(), problems)) continue;
      add_rating(r, user_col, item_col, rating_col, time_col, header.names(), ds.catalog, policy, seqs, problems);
    }
    problems.count("rows:ratings.csv", rows);
    ds.interactions = seqs.finish(true);
  }
  return ds;
}

}  // namespace lamia
