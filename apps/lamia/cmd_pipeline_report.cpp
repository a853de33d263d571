// lamia report: tables and plots of a `lamia run` folder (include/lamia/pipeline/report.hpp, docs/report.md).
#include "command.hpp"

#include <lamia/pipeline/report.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

#ifdef __linux__
#include <unistd.h>
#endif

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::report_command {

struct ReportArgs {
  std::string dir;
  std::string out;
  std::vector<std::string> runs;
  std::int64_t map_items = 3000;
  std::uint64_t seed = 2024;
};

// The folder of the running executable (for the installed share/lamia/report.py), or empty.
std::filesystem::path executable_dir() {
#ifdef __linux__
  char self[4096];
  const auto n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    return std::filesystem::path(self).parent_path();
  }
#endif
  return {};
}

lamia::cli::Command setup(CLI::App& parent) {
  auto args = std::make_shared<ReportArgs>();
  auto* app = parent.add_subcommand(
      "report",
      "Write DIR/report.md and a self-contained DIR/report.html (figures inlined) for a `lamia run` folder:\n"
      "the training curves each stage recorded, code utilisation per position, the AMI between positions,\n"
      "R@K against ID length (this run and --runs), a 2-D map of the items coloured by code per position,\n"
      "and the metrics and tokenizer tables (docs/report.md). The plots are drawn by python/pylamia/report.py\n"
      "with matplotlib (interpreter: $LAMIA_PYTHON, else the one lamia was built with; script:\n"
      "$LAMIA_REPORT_SCRIPT, else share/lamia/report.py beside the executable, else the source tree).");
  app->add_option("DIR", args->dir, "The run folder (made by `lamia run --out DIR`)")->required();
  app->add_option("--out,-o", args->out,
                  "Output prefix: writes PREFIX.md, PREFIX.html and PREFIX/figures/*.png (default DIR/report)");
  app->add_option("--runs", args->runs,
                  "More run folders (e.g. the same config at other palette sizes): their metrics join the R@K\n"
                  "against ID length figure");
  app->add_option("--map-items", args->map_items, "Items drawn on the 2-D map (a seeded sample when the catalog has more)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{1} << 40));
  app->add_option("--seed", args->seed, "Seed of the map's sample")->capture_default_str();
  return {app, [args] {
            lamia::ReportOptions options;
            options.out_prefix = args->out;
            for (const auto& r : args->runs) options.runs.emplace_back(r);
            options.map.max_items = args->map_items;
            options.map.seed = args->seed;
            const auto files = lamia::write_report(args->dir, options, executable_dir());
            std::cerr << files.log;
            std::cout << "written: " << files.markdown.string() << ", " << files.html.string() << "\n";
          }};
}

const lamia::cli::RegisterCommand registered(900, &setup);

}  // namespace lamia::cli::report_command
