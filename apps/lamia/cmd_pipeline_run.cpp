// lamia run: the whole pipeline (see include/lamia/pipeline/pipeline.hpp).
#include "command.hpp"

#include <lamia/pipeline/metrics_table.hpp>
#include <lamia/pipeline/pipeline.hpp>

#include <iostream>
#include <memory>

namespace {

struct RunArgs {
  std::string config;
  std::string out = "runs/default";
  bool quiet = false;
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
      "Without --config it runs the built-in synthetic catalog.");
  app->add_option("--config,-c", args->config, "JSON configuration (docs/pipeline.md); every key is optional")
      ->check(CLI::ExistingFile);
  app->add_option("--out,-o", args->out, "Output folder")->capture_default_str();
  app->add_flag("--quiet,-q", args->quiet, "No progress lines on stderr");
  app->add_option("--only", args->only,
                  "Run only these stages (dataset, tokenizer, palette, export, quantize, recommend, evaluate) on the\n"
                  "artifacts already in DIR, e.g. --only evaluate to re-evaluate with other settings")
      ->delimiter(',');
  app->add_option("--until", args->until,
                  "Stop after this stage, e.g. --until quantize: the semantic IDs and diagnostics, no recommenders");
  return {app, [args] {
            lamia::PipelineConfig config;
            if (!args->config.empty()) config = lamia::load_pipeline_config(args->config);
            if (args->quiet) config.progress = false;
            lamia::PipelineRunOptions run_options;
            run_options.only = args->only;
            run_options.until = args->until;
            auto result = lamia::run_pipeline(config, args->out, std::cerr, run_options);
            lamia::print_comparison(std::cout, result.tokenizers);
            std::cout << "\n";
            lamia::print_metrics(std::cout, result.metrics);
            std::cout << "\nwritten: " << args->out << "/diagnostics.json";
            if (!result.metrics.is_null()) std::cout << ", " << args->out << "/metrics.json";
            std::cout << "\n";
          }};
}

const lamia::cli::RegisterCommand registered(300, &setup);

}  // namespace
