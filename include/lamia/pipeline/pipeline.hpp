#pragma once
// The whole pipeline as `lamia run` runs it, as a sequence of stages (stage.hpp):
//   dataset -> tokenizer (BPE trained on the catalog) -> palette (the palette encoder trained) ->
//   export (palettes of all items, mean-pooled embeddings) -> quantize (LAMIA, RQ-VAE and residual
//   K-Means semantic IDs, diagnostics) -> recommend (a generative recommender per tokenizer, and the
//   ID-based baselines) -> evaluate (constrained beam search, exact ranking, metrics).
// Everything it writes goes under one output folder (see docs/pipeline.md), with manifest.json
// recording every artifact; a rerun skips the stages whose configuration and inputs are unchanged.
#include <lamia/pipeline/pipeline_config.hpp>
#include <lamia/pipeline/shard.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace lamia {

struct PipelineResult {
  nlohmann::json dataset;      ///< statistics of the dataset (dataset.json)
  nlohmann::json training;     ///< palette-encoder training summary
  nlohmann::json diagnostics;  ///< what diagnostics.json holds
  nlohmann::json metrics;      ///< what metrics.json holds (null when the evaluate stage did not run)
  std::vector<TokenizerResult> tokenizers;
  std::vector<std::string> stages_run;      ///< in this call
  std::vector<std::string> stages_skipped;  ///< up to date
};

/// Which stages a call runs.
struct PipelineRunOptions {
  /// Empty: every stage, skipping those that are up to date. Otherwise exactly these stages run (in
  /// pipeline order) with the configuration's sections, on the artifacts the other stages left in
  /// out_dir as they are (they must be complete and intact; their configuration is not compared):
  /// `lamia run --only evaluate` re-evaluates with other settings without retraining.
  std::vector<std::string> only;
  /// Non-empty: stop after this stage (the stages before it run or are skipped as usual), e.g.
  /// `lamia run --until quantize` makes the semantic IDs and their diagnostics without recommending.
  std::string until;
  /// Non-empty: a stage command (`lamia quantize DIR`). These stages run as `lamia run` would run
  /// them (skipped when up to date); every stage before the first of them must have completed in
  /// out_dir and be up to date for this configuration, else a ValueError names the stage, the keys
  /// of its section that differ, and the command that makes it; no stage after the last of them runs.
  std::vector<std::string> stages;
  /// With `stages` naming one shardable stage (export, evaluate): run only this shard's part of it
  /// (`lamia export-palettes DIR --shard i/n`), written under DIR/shards/ or DIR/eval_shards/; the
  /// manifest is not changed.
  std::optional<ShardSpec> shard;
  /// With `stages` naming one shardable stage: check the shards and write the stage's artifacts from
  /// them, recorded in the manifest as if the stage had run (`--merge`).
  bool merge_shards = false;
};

/// The stage commands of the `lamia` tool: each runs a few consecutive stages on a run folder.
struct StageCommand {
  std::string command;              ///< e.g. "quantize"
  std::vector<std::string> stages;  ///< e.g. {"quantize"}
  std::string help;
  /// Its stage can be split over processes: --shard i/n and --merge (PipelineRunOptions::shard).
  bool shardable = false;
};
const std::vector<StageCommand>& stage_commands();

/// Runs the stages into out_dir (created if needed; files are written atomically, the manifest after
/// every stage). Progress goes to log when config.progress is set. Throws ValueError naming the artifact
/// when a file of out_dir does not match its manifest entry, and naming the stage for an unknown
/// name in options.only or a stage that `only` skips but that has not completed.
PipelineResult run_pipeline(const PipelineConfig& config, const std::filesystem::path& out_dir, std::ostream& log,
                            const PipelineRunOptions& options = {});

}  // namespace lamia
