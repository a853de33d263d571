// The stage commands: train-palette, export-palettes, quantize, train-rec, evaluate. Each runs its
// stages of the pipeline on a run folder (lamia::stage_commands(), pipeline.hpp), with the folder's
// own config.json unless --config is given, so that one step can be rerun with other settings.
#include "command.hpp"
#include "pipeline_args.hpp"

#include <iostream>
#include <memory>

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::stages_command {

struct StageArgs {
  lamia::cli::ConfigArgs config;
  std::string dir;
};

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
  const auto stages = command.stages;
  return {app, [args, stages] {
            const auto config = lamia::cli::resolve_config(args->config, args->dir, /*folder_config=*/true);
            lamia::PipelineRunOptions run_options;
            run_options.stages = stages;
            auto result = lamia::run_pipeline(config, args->dir, std::cerr, run_options);
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
