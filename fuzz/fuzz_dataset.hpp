#pragma once
// The dataset targets: the fuzzer's bytes become the files of a dataset folder, which is loaded
// as `lamia stats` does (strict, then lenient), checked (fuzz_util.hpp, check_dataset) and
// summarised (compute_statistics, the report as JSON).
#include "fuzz_util.hpp"

#include <lamia/data/loaders.hpp>
#include <lamia/data/statistics.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace lamia::fuzz {

/// Longest accepted error message of a loader (values are quoted cut to 60 bytes, parser reasons
/// to 200, field names to 120; the scratch paths are about 60 bytes).
inline constexpr std::size_t kMaxLoaderMessageBytes = 2048;

/// One file of a dataset folder: its name there and, for a part the input does not give, the
/// tests/data file whose content it gets.
struct DatasetFile {
  std::string name;
  std::string fallback;  // relative to tests/data; "" = leave the file out
};

/// Writes the parts of data into a fresh folder as files (see split()) and loads it in format.
inline void fuzz_dataset(std::string_view format, const std::vector<DatasetFile>& files, const std::uint8_t* data,
                         std::size_t size) {
  const auto parts = split(data, size, files.size());
  const auto dir = scratch().fresh_dir();
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (i < parts.size())
      write_file(dir / files[i].name, parts[i]);
    else if (!files[i].fallback.empty())
      write_file(dir / files[i].name, test_file(files[i].fallback));
  }
  // Strict with the format's unknown-item policy, then lenient with skip or add (by the input's
  // size, so that one input always takes the same path).
  for (int mode = 0; mode < 2; ++mode) {
    LoadOptions options;
    if (mode == 1) {
      options.lenient = true;
      options.unknown_items = size % 2 ? UnknownItems::kSkip : UnknownItems::kAdd;
    }
    expect_clean(
        [&] {
          LoadReport report;
          const Dataset ds = load_dataset(format, dir, options, report);
          check_dataset(ds.catalog, ds.interactions);
          auto out = compute_statistics(ds).to_json();
          out["load_report"] = report.to_json();
          (void)out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          for (const auto& m : report.messages) (void)m.str();
        },
        kMaxLoaderMessageBytes);
  }
}

}  // namespace lamia::fuzz
