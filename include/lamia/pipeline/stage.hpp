#pragma once
// A stage of `lamia run`: one step of the pipeline with its own configuration section, the
// artifacts it reads and the ones it writes. The runner (pipeline.cpp) hashes the section and the
// input artifacts, skips a stage whose record in the manifest matches and whose artifacts are intact,
// and reruns it otherwise. Stages: dataset, tokenizer, palette, export, quantize, recommend, evaluate
// (one source file each under src/pipeline/stages/).
#include <lamia/pipeline/pipeline_config.hpp>

#include <nlohmann/json.hpp>

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
};

/// The stages of `lamia run`, in order.
std::vector<std::unique_ptr<Stage>> pipeline_stages();

}  // namespace lamia
