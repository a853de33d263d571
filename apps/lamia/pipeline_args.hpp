#pragma once
// What `lamia run` and the stage commands share: where the configuration comes from (a file, the run
// folder's config.json, or the built-in default), --set overrides, and printing what a call did.
#include <lamia/pipeline/pipeline.hpp>

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace lamia::cli {

struct ConfigArgs {
  std::string config;             ///< --config FILE
  std::vector<std::string> sets;  ///< --set KEY=VALUE, applied in order
  bool quiet = false;
};

void add_config_args(CLI::App* app, ConfigArgs& args);

/// The configuration of a call: --config FILE, else (when folder_config) DIR/config.json if it exists,
/// else the built-in default; then every --set. Errors name the file or the --set and the key.
PipelineConfig resolve_config(const ConfigArgs& args, const std::string& run_dir, bool folder_config);

/// run_pipeline for a command on DIR. When torchrun's variables say WORLD_SIZE > 1, every rank joins
/// their Gloo process group and runs run_pipeline_on_group (lamia/pipeline/distributed.hpp): rank 0
/// writes the folder and returns the result, the other ranks train with it and return nullopt.
std::optional<PipelineResult> run_command_pipeline(const PipelineConfig& config, const std::string& run_dir,
                                                   const PipelineRunOptions& options);

/// The tables of a call: the tokenizer comparison when `quantize` ran or was skipped as up to date in
/// it, the metrics when `evaluate` did, and the files written.
void print_result(const PipelineResult& result, const std::string& run_dir, const std::vector<std::string>& stages);

}  // namespace lamia::cli
