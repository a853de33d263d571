// The stage commands: train-palette, export-palettes, quantize, train-rec, evaluate. Each runs its
// stages of the pipeline on a run folder (lamia::stage_commands(), pipeline.hpp), with the folder's
// own config.json unless --config is given, so that one step can be rerun with other settings.
#include "command.hpp"
#include "pipeline_args.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::stages_command {

struct StageArgs {
  lamia::cli::ConfigArgs config;
  std::string dir;
  std::string shard;  // --shard i/n
  bool merge = false;
};

// What a --shard run wrote (the stage's own files under DIR).
std::vector<std::string> shard_files(const std::string& dir, const std::string& command, const lamia::ShardSpec& shard) {
  if (command == "evaluate") return {dir + "/eval_shards/" + lamia::shard_file_name("evaluate", shard, ".json")};
  return {dir + "/shards/" + lamia::shard_file_name("palettes", shard, ".bin"),
          dir + "/shards/" + lamia::shard_file_name("embeddings", shard, ".bin")};
}

lamia::cli::Command setup_stage(CLI::App& parent, const lamia::StageCommand& command) {
  auto args = std::make_shared<StageArgs>();
  auto* app = parent.add_subcommand(
      command.command,
      command.help +
          "\nRuns on the run folder DIR with DIR/config.json (or --config, or the built-in default for a new\n"
          "folder), skips what is up to date, and refuses to run before the stages it needs are complete and\n"
          "current. --set changes one key, e.g. --set quantize.lamia.kmeans.num_codes=64.");
  app->add_option("DIR", args->dir, "Run folder (made by `lamia run` or the earlier stage commands)")->required();
  lamia::cli::add_config_args(app, args->config);
  if (command.shardable) {
    auto* shard = app->add_option("--shard", args->shard,
                                  "i/n: run only the i-th of n contiguous parts (0 <= i < n; sizes differ by at most one)\n"
                                  "and write it under DIR (the manifest is not changed); docs/distributed.md");
    app->add_flag("--merge", args->merge,
                  "Check the n parts written by --shard (each once, all made from this folder's inputs) and\n"
                  "write from them what the command writes without --shard, recorded in the manifest")
        ->excludes(shard);
  }
  const auto stages = command.stages;
  const auto name = command.command;
  return {app, [args, stages, name] {
            lamia::PipelineRunOptions run_options;
            if (!args->shard.empty()) run_options.shard = lamia::parse_shard(args->shard);
            run_options.merge_shards = args->merge;
            const auto config = lamia::cli::resolve_config(args->config, args->dir, /*folder_config=*/true);
            run_options.stages = stages;
            auto ran = lamia::cli::run_command_pipeline(config, args->dir, run_options);
            if (!ran) return;  // a rank other than 0 under torchrun: rank 0 prints
            const auto& result = *ran;
            if (run_options.shard) {
              std::cout << fmt::format("shard {}/{} written: {}\n", run_options.shard->index, run_options.shard->count,
                                       fmt::join(shard_files(args->dir, name, *run_options.shard), ", "));
              return;
            }
            lamia::cli::print_result(result, args->dir, stages);
          }};
}

// One registration per stage command, in pipeline order after `run` (300).
template <std::size_t I>
lamia::cli::Command setup(CLI::App& parent) {
  return setup_stage(parent, lamia::stage_commands().at(I));
}
const lamia::cli::RegisterCommand r0(310, &setup<0>), r1(311, &setup<1>), r2(312, &setup<2>), r3(313, &setup<3>),
    r4(314, &setup<4>);

}  // namespace lamia::cli::stages_command
