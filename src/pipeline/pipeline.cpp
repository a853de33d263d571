// The stage runner of `lamia run`: hashes each stage's configuration section and inputs, skips the
// stages whose manifest record matches, reruns the rest in order, and records what they wrote.
#include "context.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/pipeline/manifest.hpp>
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/pipeline/stage.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <ostream>

namespace lamia {
namespace fs = std::filesystem;

PipelineResult run_pipeline(const PipelineConfig& config, const fs::path& out_dir, std::ostream& log,
                            const PipelineRunOptions& options) {
  const int threads = set_torch_threads(config.threads);  // 0: the machine's cores
  fs::create_directories(out_dir);
  PipelineContext ctx(config, out_dir, log);
  ctx.say(thread_summary(threads));
  {
    nlohmann::json effective;
    to_json(effective, config);
    ctx.write_json("config.json", effective);
  }
  Manifest manifest = Manifest::load(out_dir);
  // A folder whose files were changed behind the manifest's back is refused before anything runs.
  for (const auto& [name, entry] : manifest.artifacts()) verify_artifact(out_dir, entry);

  PipelineResult result;
  const auto stages = pipeline_stages();
  auto wanted_stages = options.only;
  if (!options.until.empty()) wanted_stages.push_back(options.until);
  for (const auto& wanted : wanted_stages) {
    bool known = false;
    std::vector<std::string> names;
    for (const auto& stage : stages) {
      names.push_back(stage->name());
      known = known || stage->name() == wanted;
    }
    if (!known) throw ValueError(fmt::format("pipeline: unknown stage '{}' (stages: {})", wanted, fmt::join(names, ", ")));
  }
  // A completed stage whose outputs are all on disk as recorded.
  auto completed_and_intact = [&](const StageRecord* record) {
    if (!record || !record->completed) return false;
    return std::all_of(record->outputs.begin(), record->outputs.end(), [&](const std::string& output) {
      const auto* entry = manifest.artifact(output);
      return entry && verify_artifact(out_dir, *entry);
    });
  };
  // --until: the stages up to and including it (its name was checked above).
  auto end = stages.end();
  if (!options.until.empty()) {
    end = std::find_if(stages.begin(), stages.end(), [&](const auto& s) { return s->name() == options.until; }) + 1;
  }
  for (auto it = stages.begin(); it != end; ++it) {
    const auto& stage = *it;
    const auto name = stage->name();
    if (!options.only.empty() &&
        std::find(options.only.begin(), options.only.end(), name) == options.only.end()) {
      if (!completed_and_intact(manifest.stage(name))) {
        throw ValueError(fmt::format("pipeline: stage '{}' has not completed in {} (or its artifacts are missing); "
                                     "run without --only first", name, out_dir.string()));
      }
      result.stages_skipped.push_back(name);
      continue;
    }
    const auto config_hash = hash_text(stage->config_section(config).dump());
    std::string inputs;
    for (const auto& input : stage->inputs(config)) {
      const auto* entry = manifest.artifact(input);
      if (!entry) throw ValueError(fmt::format("pipeline: stage '{}' needs artifact '{}', which no stage made", name, input));
      inputs += input + "=" + entry->checksum + ";";
    }
    const auto inputs_hash = hash_text(inputs);
    const auto* record = manifest.stage(name);
    // An output deleted since (or missing) makes the stage run again.
    const bool up_to_date = options.only.empty() && record && record->config_hash == config_hash &&
                            record->inputs_hash == inputs_hash && completed_and_intact(record);
    if (up_to_date) {
      ctx.say(fmt::format("stage {}: up to date", name));
      result.stages_skipped.push_back(name);
      continue;
    }
    if (record && (record->config_hash != config_hash || record->inputs_hash != inputs_hash)) {
      for (const auto& stale : stage->checkpoints(config)) fs::remove_all(out_dir / stale);
    }
    StageRecord started{config_hash, inputs_hash, false, {}};
    manifest.record_stage(name, started, {});
    manifest.save(out_dir);
    const auto t0 = std::chrono::steady_clock::now();
    const auto written = stage->run(ctx);
    std::vector<ArtifactEntry> artifacts;
    for (const auto& spec : written) {
      artifacts.push_back(describe_artifact(out_dir, spec.name, spec.path, name, spec.format_version, config_hash,
                                            inputs_hash));
    }
    manifest.record_stage(name, StageRecord{config_hash, inputs_hash, true, {}}, artifacts);
    manifest.save(out_dir);
    result.stages_run.push_back(name);
    ctx.say(fmt::format("stage {}: done ({:.1f}s)", name,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  }

  // What the stages left (with --until, the later ones may not exist yet).
  auto read_if_made = [&](const char* file) {
    return fs::exists(ctx.path(file)) ? ctx.read_json(file) : nlohmann::json();
  };
  result.dataset = read_if_made("dataset.json");
  result.training = read_if_made("palette_encoder/training.json");
  result.diagnostics = read_if_made("diagnostics.json");
  result.metrics = read_if_made("metrics.json");
  if (!result.diagnostics.contains("tokenizers")) return result;
  for (const auto& [tokenizer, diagnostics] : result.diagnostics.at("tokenizers").items()) {
    result.tokenizers.push_back({tokenizer, ctx.table(tokenizer), diagnostics});
  }
  return result;
}

}  // namespace lamia
