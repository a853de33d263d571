// lamia run: the whole pipeline (see include/lamia/pipeline/pipeline.hpp).
#include "command.hpp"
#include "pipeline_args.hpp"

#include <iostream>
#include <memory>

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::run_command {

struct RunArgs {
  lamia::cli::ConfigArgs config;
  std::string out = "runs/default";
  std::vector<std::string> only;
  std::string until;
};

lamia::cli::Command setup(CLI::App& parent) {
  auto args = std::make_shared<RunArgs>();
  auto* app = parent.add_subcommand(
      "run",
      "Run the pipeline as stages: dataset -> tokenizer -> palette (encoder training) -> export (palettes)\n"
      "-> quantize (LAMIA, RQ-VAE, residual K-Means IDs; DIR/diagnostics.json) -> recommend (a generative\n"
      "recommender per tokenizer, SASRec) -> evaluate (DIR/metrics.json). DIR/manifest.json records every\n"
      "artifact: a rerun skips the stages whose configuration and inputs did not change.\n"
      "Without --config it runs the built-in synthetic catalog. The stage commands (train-palette,\n"
      "export-palettes, quantize, train-rec, evaluate) run one step on the same folder.");
  lamia::cli::add_config_args(app, args->config);
  app->add_option("--out,-o", args->out, "Output folder")->capture_default_str();
  app->add_option("--only", args->only,
                  "Run only these stages (dataset, tokenizer, palette, export, quantize, recommend, evaluate) on the\n"
                  "artifacts already in DIR, whatever their configuration, e.g. --only evaluate")
      ->delimiter(',');
  app->add_option("--until", args->until,
                  "Stop after this stage, e.g. --until quantize: the semantic IDs and diagnostics, no recommenders");
  return {app, [args] {
            const auto config = lamia::cli::resolve_config(args->config, args->out, /*folder_config=*/false);
            lamia::PipelineRunOptions run_options;
            run_options.only = args->only;
            run_options.until = args->until;
            const auto result = lamia::cli::run_command_pipeline(config, args->out, run_options);
            if (result) lamia::cli::print_result(*result, args->out, {});  // rank 0 only under torchrun
          }};
}

const lamia::cli::RegisterCommand registered(300, &setup);

}  // namespace lamia::cli::run_command
