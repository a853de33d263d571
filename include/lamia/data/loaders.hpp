#pragma once
// Loaders for the native formats of the recommendation datasets lamia reads:
// MIND, Amazon (LC-Rec form and raw review/metadata form), H&M, MovieLens,
// a generic JSON-lines / CSV form with a field mapping, and the synthetic catalog.
//
// Every loader returns a Dataset (Catalog + Interactions). Bad input never passes
// silently: by default a malformed row throws lamia::ParseError whose message starts
// with `file:line: field 'x': `; with LoadOptions::lenient the row is skipped and the
// problem is counted in a LoadReport. Problems that leave nothing to load (a missing
// file or column, an empty file) throw in both modes.
//
// Example:
//   lamia::LoadReport report;
//   auto ds = lamia::load_dataset("movielens", "data/ml-latest-small", {}, report);
#include <lamia/core/errors.hpp>
#include <lamia/data/interactions.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <filesystem>
#include <map>
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

/// The formats load_dataset accepts: mind, amazon-lcrec, amazon, hm, movielens, synthetic, jsonl, csv.
const std::vector<std::string>& dataset_formats();

/// Loads the dataset in dir, stored in the given format (see dataset_formats()).
/// Throws ValueError for an unknown format, IOError when dir or a required file is
/// missing, ParseError for malformed content (see LoadOptions::lenient).
Dataset load_dataset(std::string_view format, const std::filesystem::path& dir, const LoadOptions& options = {});
/// As above, and fills report (cleared first) with what was skipped, added and read.
Dataset load_dataset(std::string_view format, const std::filesystem::path& dir, const LoadOptions& options,
                     LoadReport& report);

/// MIND: dir/news.tsv (id, category, subcategory, title, abstract, url, title and abstract
/// entities; tab-separated, no header, no quoting) and dir/behaviors.tsv (impression id,
/// user id, "M/D/YYYY h:mm:ss AM/PM" time, space-separated history, "N1-1 N2-0" impressions).
/// Attributes: title, abstract, category, subcategory. Each user's sequence is the history
/// of their first impression row (oldest first, no timestamp), then every clicked impression
/// at its time (UTC), in time order. Default for unknown news ids: kAdd.
Dataset load_mind(const std::filesystem::path& dir, const LoadOptions& options = {}, LoadReport* report = nullptr);

/// Amazon in LC-Rec / LETTER form: dir/<name>.item.json ({id: {title, description, brand,
/// categories}}) and dir/<name>.inter.json ({user: [item ids in order]}); no timestamps.
/// Attributes: title, description, brand, categories. Default for unknown items: kError.
Dataset load_amazon_lcrec(const std::filesystem::path& dir, const LoadOptions& options = {},
                          LoadReport* report = nullptr);

/// Raw Amazon reviews: one metadata file (name starting with "meta", JSON lines, optionally
/// gzipped; the 2014 "loose JSON" Python-literal lines are accepted too) and one review file
/// (JSON lines, optionally gzipped) in dir. Keys of the 2014, 2018 and 2023 releases are
/// understood (asin / parent_asin, reviewerID / user_id, overall / rating, unixReviewTime /
/// timestamp in ms). Ratings are kept as given (no filtering); each user's reviews are sorted
/// by time. Attributes: title, description, brand, categories. Default for unknown items: kError.
Dataset load_amazon(const std::filesystem::path& dir, const LoadOptions& options = {}, LoadReport* report = nullptr);
/// The same with both files named.
Dataset load_amazon_files(const std::filesystem::path& metadata, const std::filesystem::path& reviews,
                          const LoadOptions& options = {}, LoadReport* report = nullptr);

/// H&M: dir/articles.csv and dir/transactions_train.csv (customers.csv is not read).
/// Attributes: the 7 of the paper (detail_desc, product_type_name, product_group_name,
/// graphical_appearance_name, colour_group_name, perceived_colour_value_name, index_name),
/// then the other text columns (*_name) in file order. Numeric article ids are written in
/// Kaggle's 10-digit zero-padded form in both files. Each user's purchases are ordered by
/// date, then row order. Default for unknown articles: kError.
Dataset load_hm(const std::filesystem::path& dir, const LoadOptions& options = {}, LoadReport* report = nullptr);

/// MovieLens: dir/movies.csv + dir/ratings.csv [+ dir/tags.csv] (ml-latest, ml-25m, ...)
/// or ml-100k's dir/u.item + dir/u.data [+ dir/u.genre] (latin-1, converted to UTF-8).
/// Attributes: title, genres (pipe-separated as in the source), tags (distinct tags of the
/// movie in first-use order, pipe-separated). Ratings are kept as given; each user's
/// ratings are sorted by time (stable). Default for unknown movies: kError.
Dataset load_movielens(const std::filesystem::path& dir, const LoadOptions& options = {},
                       LoadReport* report = nullptr);

/// Generic JSON lines (format "jsonl") or CSV/TSV (format "csv") with options.mapping.
/// Default for unknown items: kError when an items file exists, kAdd when there is none.
Dataset load_jsonl(const std::filesystem::path& dir, const LoadOptions& options = {}, LoadReport* report = nullptr);
Dataset load_csv(const std::filesystem::path& dir, const LoadOptions& options = {}, LoadReport* report = nullptr);

}  // namespace lamia
