// load_dataset: one entry point for every format.
#include "loader_util.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/data/synthetic.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace lamia {

const std::vector<std::string>& dataset_formats() {
  static const std::vector<std::string> formats = {"mind", "amazon-lcrec", "amazon", "hm",
                                                   "movielens", "synthetic", "jsonl", "csv"};
  return formats;
}

namespace {

// "synthetic": the built-in generator. dir may be empty (default options), a folder that may
// hold synthetic.json, or a JSON file with SyntheticOptions fields.
Dataset load_synthetic(const std::filesystem::path& dir) {
  SyntheticOptions options;
  if (!dir.empty()) {
    std::error_code ec;
    const bool folder = std::filesystem::is_directory(dir, ec);
    auto file = folder ? dir / "synthetic.json" : dir;
    if (!folder || std::filesystem::exists(std::filesystem::symlink_status(file, ec))) {
      const auto name = file.filename().string();
      auto j = detail::parse_json(read_file(file), name, 1);  // read_file: regular files only
      try {
        from_json(j, options);
      } catch (const ParseError&) {
        throw;
      } catch (const ValueError& e) {  // a field's check: name the file too
        throw ParseError({name, 0, ""}, fmt::format("invalid synthetic options: {}", e.what()));
      } catch (const nlohmann::json::exception& e) {
        throw ParseError({name, 0, ""}, fmt::format("invalid synthetic options: {}", preview(e.what(), 200)));
      }
    }
  }
  return generate_synthetic(options).dataset;
}

}  // namespace

Dataset load_dataset(std::string_view format, const std::filesystem::path& dir, const LoadOptions& options,
                     LoadReport& report) {
  report = LoadReport{};
  if (format == "mind") return load_mind(dir, options, &report);
  if (format == "amazon-lcrec") return load_amazon_lcrec(dir, options, &report);
  if (format == "amazon") return load_amazon(dir, options, &report);
  if (format == "hm") return load_hm(dir, options, &report);
  if (format == "movielens") return load_movielens(dir, options, &report);
  if (format == "synthetic") return load_synthetic(dir);
  if (format == "jsonl") return load_jsonl(dir, options, &report);
  if (format == "csv") return load_csv(dir, options, &report);
  throw ValueError(fmt::format("load_dataset: unknown format '{}' (formats: {})", format,
                               fmt::join(dataset_formats(), ", ")));
}

Dataset load_dataset(std::string_view format, const std::filesystem::path& dir, const LoadOptions& options) {
  LoadReport report;
  return load_dataset(format, dir, options, report);
}

}  // namespace lamia
