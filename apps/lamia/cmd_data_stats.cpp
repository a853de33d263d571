// lamia stats: loads a dataset and prints its statistics as one JSON object.
#include "command.hpp"

#include <lamia/data/loaders.hpp>
#include <lamia/data/statistics.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::stats_command {

struct StatsArgs {
  std::string format;
  std::string path;
  bool lenient = false;
  std::string unknown_items = "default";
};

lamia::cli::Command setup(CLI::App& parent) {
  auto args = std::make_shared<StatsArgs>();
  auto* app = parent.add_subcommand(
      "stats",
      "Load a dataset and print its statistics (items, users, interactions, ...) as one JSON object.\n"
      "Warnings of a lenient load go to stderr and into the object's \"load_report\".");
  app->add_option("--format,-f", args->format,
                  fmt::format("Dataset format: {}", fmt::join(lamia::dataset_formats(), ", ")))
      ->required();
  app->add_option("--path,-p", args->path, "Dataset folder (synthetic: optional folder or JSON options file)");
  app->add_flag("--lenient", args->lenient, "Skip and count malformed rows instead of failing on the first one");
  app->add_option("--unknown-items", args->unknown_items,
                  "Interactions with an unknown item id: default (the format's), error, skip, add");
  return {app, [args] {
            if (args->path.empty() && args->format != "synthetic")
              throw lamia::ValueError(fmt::format("stats: --path is required for format '{}'", args->format));
            lamia::LoadOptions options;
            options.lenient = args->lenient;
            options.unknown_items = lamia::parse_unknown_items(args->unknown_items);
            lamia::LoadReport report;
            auto dataset = lamia::load_dataset(args->format, args->path, options, report);
            auto out = lamia::compute_statistics(dataset).to_json();
            out["format"] = args->format;
            out["load_report"] = report.to_json();
            for (const auto& m : report.messages) std::cerr << "lamia: warning: " << m.str() << "\n";
            // The messages are the first few; the totals say how many there were.
            for (const auto& [kind, n] : report.warnings)
              std::cerr << fmt::format("lamia: warning: {} rows skipped: {}\n", n, kind);
            if (auto it = report.counts.find("unknown_item_skipped"); it != report.counts.end())
              std::cerr << fmt::format("lamia: warning: {} interactions with unknown item ids skipped\n", it->second);
            // Values from the input (a folder name) need not be UTF-8: such bytes become U+FFFD
            // instead of failing the dump.
            std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
          }};
}

const lamia::cli::RegisterCommand registered(200, &setup);

}  // namespace lamia::cli::stats_command
