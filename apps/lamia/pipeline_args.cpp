#include "pipeline_args.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/distributed/environment.hpp>
#include <lamia/pipeline/distributed.hpp>
#include <lamia/pipeline/metrics_table.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace lamia::cli {
namespace fs = std::filesystem;

void add_config_args(CLI::App* app, ConfigArgs& args) {
  app->add_option("--config,-c", args.config, "JSON configuration (docs/pipeline.md); every key is optional")
      ->check(CLI::ExistingFile);
  app->add_option("--set", args.sets,
                  "Override one key, e.g. --set palette.trainer.epochs=2 --set recommend.tokenizers='[\"lamia\"]'\n"
                  "(the value is read as JSON, or else as a string)");
  app->add_flag("--quiet,-q", args.quiet, "No progress lines on stderr");
}

namespace {

// "a.b.c=VALUE" into j: objects are made along the path; VALUE is JSON when it parses, else a string.
void apply_set(nlohmann::json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ValueError(fmt::format("--set '{}': expected KEY=VALUE, e.g. palette.trainer.epochs=2", assignment));
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  nlohmann::json value;
  try {
    value = detail::parse_json(text, "--set " + key, 1);
  } catch (const ValueError&) {
    value = text;  // a bare word: a string
  }
  nlohmann::json* node = &j;
  std::size_t start = 0;
  while (true) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw ValueError(fmt::format("--set '{}': empty key segment", assignment));
    if (node->is_null()) *node = nlohmann::json::object();  // a section the config file left out
    if (!node->is_object())
      throw ValueError(fmt::format("--set '{}': '{}' is not a section", assignment, key.substr(0, start - 1)));
    node = &(*node)[part];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  *node = std::move(value);
}

}  // namespace

PipelineConfig resolve_config(const ConfigArgs& args, const std::string& run_dir, bool folder_config) {
  std::string source = "the built-in default";
  nlohmann::json j = nlohmann::json::object();
  fs::path file = args.config;
  if (file.empty() && folder_config && fs::exists(fs::path(run_dir) / "config.json")) file = fs::path(run_dir) / "config.json";
  if (!file.empty()) {
    source = file.string();
    j = load_pipeline_config_json(file);
  }
  for (const auto& s : args.sets) apply_set(j, s);
  PipelineConfig config;
  try {
    from_json(j, config);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}{}: {}", source, args.sets.empty() ? "" : " with --set", e.what()));
  }
  if (args.quiet) config.progress = false;
  return config;
}

std::optional<PipelineResult> run_command_pipeline(const PipelineConfig& config, const std::string& run_dir,
                                                   const PipelineRunOptions& options) {
  // Every wait of a rank is bounded by this: the ranks other than 0 wait while rank 0 runs the stages
  // that do not split over the group (dataset, tokenizer, quantize, SASRec), which
  // can take hours on a large catalog. A rank that dies closes its connections and fails the others
  // at once; the timeout only bounds a rank that hangs alive.
  constexpr double kRankWaitSeconds = 24 * 3600;
  const auto group = join_environment_process_group(kRankWaitSeconds);
  if (!group) return run_pipeline(config, run_dir, std::cerr, options);
  auto result = run_pipeline_on_group(config, run_dir, std::cerr, options, group);
  if (group->rank() != 0) {
    if (config.progress)
      std::cerr << fmt::format("rank {} of {}: done (rank 0 wrote {})\n", group->rank(), group->world_size(), run_dir);
    return std::nullopt;
  }
  return result;
}

void print_result(const PipelineResult& result, const std::string& run_dir, const std::vector<std::string>& stages) {
  auto in_call = [&](const std::string& stage) {
    if (!stages.empty() && std::find(stages.begin(), stages.end(), stage) == stages.end()) return false;
    const auto& ran = result.stages_run;
    const auto& skipped = result.stages_skipped;
    return std::find(ran.begin(), ran.end(), stage) != ran.end() ||
           std::find(skipped.begin(), skipped.end(), stage) != skipped.end();
  };
  std::vector<std::string> written;
  if (in_call("palette") && !result.training.is_null()) {
    const auto& t = result.training;
    std::cout << fmt::format("palette encoder: {} steps, {} epochs ({}), {:.1f}s", t.value("steps", 0),
                             t.value("epochs_completed", 0), t.value("stop_reason", std::string("?")),
                             t.value("seconds", 0.0));
    if (t.contains("before") && t.contains("after"))
      std::cout << fmt::format("; held-out loss {:.4f} -> {:.4f}", t["before"].value("loss", 0.0),
                               t["after"].value("loss", 0.0));
    std::cout << "\n";
    written.push_back(run_dir + "/palette_encoder/");
  }
  if (in_call("export")) written.push_back(run_dir + "/palettes.bin");
  if (in_call("quantize") && !result.tokenizers.empty()) {
    print_comparison(std::cout, result.tokenizers);
    written.push_back(run_dir + "/diagnostics.json");
  }
  if (in_call("recommend")) written.push_back(run_dir + "/recommenders/");
  if (in_call("evaluate") && !result.metrics.is_null()) {
    std::cout << "\n";
    print_metrics(std::cout, result.metrics);
    written.push_back(run_dir + "/metrics.json");
  }
  if (!written.empty()) std::cout << "\nwritten: " << fmt::format("{}", fmt::join(written, ", ")) << "\n";
}

}  // namespace lamia::cli
