#pragma once
// A stage of `lamia run`: one step of the pipeline with its own configuration section, the
// artifacts it reads and the ones it writes. The runner (pipeline.cpp) hashes the section and the
// input artifacts, skips a stage whose record in the manifest matches and whose artifacts are intact,
// and reruns it otherwise. Stages: dataset, tokenizer, palette, export, quantize, recommend, evaluate
// (one source file each under src/pipeline/stages/).
#include <lamia/pipeline/pipeline_config.hpp>
#include <lamia/pipeline/shard.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lamia {

class PipelineContext;

/// An artifact a stage wrote: its name in the manifest, its path relative to the run folder (a file
/// or a folder), and the version of its format.
struct ArtifactSpec {
  std::string name;
  std::string path;
  int format_version = 1;
};

/// What a stage's output is made from (its manifest record's hashes), for its shards to record.
struct StageInputs {
  std::string config_hash;  ///< of the stage's configuration section
  std::string inputs_hash;  ///< of the checksums of its input artifacts
  std::map<std::string, std::string> checksums;  ///< input artifact name -> "crc32:…"
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string name() const = 0;
  /// Names of the artifacts of earlier stages that it reads.
  virtual std::vector<std::string> inputs(const PipelineConfig& config) const = 0;
  /// The configuration the stage depends on (hashed into its record; a change reruns it).
  virtual nlohmann::json config_section(const PipelineConfig& config) const = 0;
  /// Files of resumable state (checkpoints) that are stale, and deleted, when the stage must rerun
  /// because its configuration or inputs changed.
  virtual std::vector<std::string> checkpoints(const PipelineConfig&) const { return {}; }
  /// Runs the stage (resuming its own checkpoints where it has them) and returns what it wrote.
  virtual std::vector<ArtifactSpec> run(PipelineContext& context) = 0;

  /// Whether the stage's work can be split over processes (run_shard, merge_shards): export, evaluate.
  virtual bool shardable() const { return false; }
  /// Does one shard's part of the work and writes it under the run folder; the manifest is not
  /// changed (a part is no artifact). Only for a shardable stage.
  virtual void run_shard(PipelineContext& context, const ShardSpec& shard, const StageInputs& inputs);
  /// Checks the parts that run_shard wrote (all there, once each, made from these inputs) and writes
  /// from them what run() writes. Only for a shardable stage.
  virtual std::vector<ArtifactSpec> merge_shards(PipelineContext& context, const StageInputs& inputs);
};

/// The stages of `lamia run`, in order.
std::vector<std::unique_ptr<Stage>> pipeline_stages();

}  // namespace lamia
