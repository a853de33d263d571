#pragma once
// The loaders of the dataset formats (see include/lamia/data/loaders.hpp for the overview).
#include <lamia/core/errors.hpp>
#include <lamia/data/interactions.hpp>
#include <lamia/data/loaders/load_options.hpp>
#include <lamia/data/loaders/load_report.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lamia {

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
