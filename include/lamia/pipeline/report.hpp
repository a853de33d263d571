#pragma once
// `lamia report DIR`: the report of a `lamia run` folder (docs/report.md). The C++ side computes
// what is heavy or binary (the 2-D map of the items' palettes, the ID length of every recommender's
// semantic IDs) into DIR/report/*.json, written atomically; python/pylamia/report.py (json, numpy,
// matplotlib) reads those and the run's JSON files and writes PREFIX.md, PREFIX.html (figures inlined
// as base64 PNG) and PREFIX/figures/*.png, each atomically.
//
//   lamia::ReportOptions options;
//   options.runs = {"runs/l2", "runs/l8"};               // more runs for R@K against ID length
//   auto written = lamia::write_report("runs/default", options, "/usr/local/bin");
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lamia {

/// Options of the 2-D map of items (paper Figure 7).
struct ReportMapOptions {
  /// The codes that colour the map: DIR/semantic_ids/<tokenizer>.bin (a per-position tokenizer).
  std::string tokenizer = "lamia";
  /// At most this many items are drawn (a seeded sample without replacement; all when fewer).
  std::int64_t max_items = 3000;
  std::uint64_t seed = 2024;
};

/// Throws IOError "<dir>: not a lamia run folder (no manifest.json; `lamia run --out DIR` makes one)"
/// when dir has no manifest.json, and ParseError naming the file when it is not a manifest.
void require_run_folder(const std::filesystem::path& dir);

/// The 2-D map of items per palette position: the palettes of a seeded sample of items
/// (DIR/palettes.bin), projected per position onto that position's first two principal components
/// (fitted on the sample), with each item's code at that position (DIR/semantic_ids/<tokenizer>.bin).
///   {"tokenizer", "num_items", "sampled", "seed", "palette_dim", "items": [the sampled item indices],
///    "positions": [{"position", "codebook_size", "explained_variance_ratio": [r1, r2],
///                   "x": [...], "y": [...], "code": [...]}]}
/// Returns {"available": false, "reason": ...} when the run has no palettes or no such codes
/// (recorded in the manifest as not made); throws (naming the file) when a file the manifest records
/// is missing or corrupt, or when the two files disagree on the number of items or positions.
nlohmann::json report_item_map(const std::filesystem::path& run_dir, const ReportMapOptions& options = {});

/// The ID length of each recommender of a run, read from DIR/recommenders/<name>/semantic_ids.bin:
///   {"run": dir, "tokenizers": {name: {"levels": L, "id_length": L + 1, "codebook_sizes": [...]}}}
nlohmann::json report_id_lengths(const std::filesystem::path& run_dir);

struct ReportOptions {
  /// Output files PREFIX.md, PREFIX.html and PREFIX/figures/; empty: DIR/report.
  std::filesystem::path out_prefix;
  /// More run folders whose metrics join R@K against ID length.
  std::vector<std::filesystem::path> runs;
  ReportMapOptions map;
  /// The interpreter; empty: report_python().
  std::string python;
  /// The script; empty: find_report_script(executable_dir).
  std::filesystem::path script;
};

struct ReportFiles {
  std::filesystem::path markdown, html;
  /// What the script printed (warnings), already without the lines that name the written files.
  std::string log;
};

/// Computes DIR/report/map.json and DIR/report/id_lengths.json, then runs the script. A failure of
/// the script (a missing or corrupt file, matplotlib not installed) throws with the script's one-line
/// message; the report files are then left as they were.
ReportFiles write_report(const std::filesystem::path& run_dir, const ReportOptions& options,
                         const std::filesystem::path& executable_dir);

/// The interpreter that runs the script: $LAMIA_PYTHON, else the one lamia was configured with
/// (CMake's Python3_EXECUTABLE, compile definition LAMIA_PYTHON_EXECUTABLE), else "python3" on PATH.
std::string report_python();

/// The script: $LAMIA_REPORT_SCRIPT, else executable_dir/../share/lamia/report.py (installed), else
/// python/pylamia/report.py of the source tree lamia was built from. Throws IOError listing the
/// places tried when none exists.
std::filesystem::path find_report_script(const std::filesystem::path& executable_dir);

}  // namespace lamia
