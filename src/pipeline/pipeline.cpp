// The stage runner of `lamia run`: hashes each stage's configuration section and inputs, skips the
// stages whose manifest record matches, reruns the rest in order, and records what they wrote.
#include "context.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/blas_threads.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/pipeline/manifest.hpp>
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/pipeline/stage.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <signal.h>
#include <string_view>
#include <unistd.h>

namespace lamia {
namespace fs = std::filesystem;

const std::vector<StageCommand>& stage_commands() {
  static const std::vector<StageCommand> all = {
      {"train-palette", {"dataset", "tokenizer", "palette"},
       "Load the dataset, train the BPE tokenizer on its text and train the palette encoder\n"
       "(DIR/palette_encoder/; an interrupted training resumes from DIR/palette_encoder/trainer.ckpt)."},
      {"export-palettes", {"export"},
       "Export the palettes of every item (DIR/palettes.bin, n x L x D) and one mean-pooled embedding per\n"
       "item (DIR/embeddings.bin) with the trained palette encoder.\n"
       "--shard i/n exports the i-th contiguous part of the item order to DIR/shards/ (on one machine or\n"
       "several); --merge checks the n parts and writes DIR/palettes.bin and DIR/embeddings.bin from them,\n"
       "the same bytes as an unsplit export.",
       true},
      {"quantize", {"quantize"},
       "Make the semantic IDs: LAMIA (PCA + K-Means per palette position), residual K-Means and RQ-VAE\n"
       "(DIR/semantic_ids/), with their diagnostics (DIR/diagnostics.json) and a table on stdout."},
      {"train-rec", {"recommend"},
       "Train a generative recommender on each tokenizer's semantic IDs (DIR/recommenders/) and the\n"
       "trained baselines (SASRec: DIR/baselines/); resumes from DIR/checkpoints/recommend/."},
      {"evaluate", {"evaluate"},
       "Evaluate every recommender and baseline on the same test users: constrained beam search, exact\n"
       "ranking, R@K and N@K (DIR/metrics.json and a table on stdout).\n"
       "--shard i/n evaluates the i-th contiguous part of the test users (DIR/eval_shards/); --merge adds\n"
       "the n parts' metric sums and counts up into DIR/metrics.json.",
       true},
  };
  return all;
}

namespace {

std::string command_making(const std::string& stage) {
  for (const auto& c : stage_commands())
    if (std::find(c.stages.begin(), c.stages.end(), stage) != c.stages.end()) return "lamia " + c.command;
  return "lamia run";
}

void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [key, value] : j.items()) flatten(value, prefix.empty() ? key : prefix + "." + key, out);
  } else {
    out[prefix] = j.dump();
  }
}

// "key: A in the folder, B here" for the first few keys whose values differ between the section a stage
// was made with (as the manifest recorded it) and the section of this configuration.
std::string differing_keys(const std::string& recorded, const nlohmann::json& now) {
  if (recorded.empty()) return "its configuration section changed";
  std::map<std::string, std::string> was, is;
  flatten(nlohmann::json::parse(recorded), "", was);
  flatten(now, "", is);
  std::vector<std::string> diffs;
  for (const auto& [key, value] : is) {
    auto it = was.find(key);
    const std::string before = it == was.end() ? "(absent)" : it->second;
    if (before != value) diffs.push_back(fmt::format("{} is {} in the folder, {} here", key, before, value));
  }
  for (const auto& [key, value] : was)
    if (!is.count(key)) diffs.push_back(fmt::format("{} is {} in the folder, absent here", key, value));
  if (diffs.empty()) return "its configuration section changed";
  constexpr std::size_t kShown = 3;
  const auto more = diffs.size() > kShown ? fmt::format(" (and {} more)", diffs.size() - kShown) : std::string();
  diffs.resize(std::min(diffs.size(), kShown));
  return fmt::format("{}{}", fmt::join(diffs, "; "), more);
}

// The process that wrote `name`, when it is a temporary of write_file_atomically
// ("<file>.tmp.<pid>.<counter>", src/core/atomic_file.cpp).
std::optional<long> atomic_temporary_writer(const std::string& name) {
  const auto at = name.rfind(".tmp.");
  if (at == std::string::npos) return std::nullopt;
  const std::string_view rest = std::string_view(name).substr(at + 5);
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(rest.substr(0, dot)) || !digits(rest.substr(dot + 1))) return std::nullopt;
  return std::stol(std::string(rest.substr(0, dot)));
}

// Removes the temporaries that a killed process (SIGKILL, a crash) left in the run folder while it
// was writing a file, so that a rerun's artifact folders and checkpoints hold no stale half-written
// files; the files of a live writer are kept, and so are those inside a recorded artifact (its
// checksum covers them). Returns the paths removed, relative to the folder.
std::vector<std::string> remove_abandoned_temporaries(const fs::path& run_dir, const Manifest& manifest) {
  std::vector<fs::path> recorded;
  for (const auto& [name, entry] : manifest.artifacts()) recorded.push_back(fs::path(entry.path).lexically_normal());
  auto inside_recorded = [&](const fs::path& rel) {
    return std::any_of(recorded.begin(), recorded.end(), [&](const fs::path& artifact) {
      return std::mismatch(artifact.begin(), artifact.end(), rel.begin(), rel.end()).first == artifact.end();
    });
  };
  std::vector<std::string> removed;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(run_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const auto writer = atomic_temporary_writer(it->path().filename().string());
    if (!writer || *writer == long(::getpid())) continue;
    if (::kill(pid_t(*writer), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to ask)
    const auto rel = it->path().lexically_relative(run_dir);
    if (inside_recorded(rel)) continue;
    std::error_code removal;
    if (fs::remove(it->path(), removal)) removed.push_back(rel.generic_string());
  }
  return removed;
}

}  // namespace

PipelineResult run_pipeline(const PipelineConfig& config, const fs::path& out_dir, std::ostream& log,
                            const PipelineRunOptions& options) {
  const auto stages = pipeline_stages();
  std::vector<std::string> names;
  for (const auto& stage : stages) names.push_back(stage->name());
  auto index_of = [&](const std::string& wanted) {
    const auto it = std::find(names.begin(), names.end(), wanted);
    if (it == names.end())
      throw ValueError(fmt::format("pipeline: unknown stage '{}' (stages: {})", wanted, fmt::join(names, ", ")));
    return std::size_t(it - names.begin());
  };
  for (const auto& wanted : options.only) index_of(wanted);
  if (!options.until.empty()) index_of(options.until);
  // A stage command: the stages before its first must be complete and current; none after its last runs.
  std::size_t first = 0, end = stages.size();
  if (!options.stages.empty()) {
    first = stages.size();
    end = 0;
    for (const auto& wanted : options.stages) {
      first = std::min(first, index_of(wanted));
      end = std::max(end, index_of(wanted) + 1);
    }
  }
  if (!options.until.empty()) end = std::min(end, index_of(options.until) + 1);
  // A shard of one stage's work, or the merge of its shards (`--shard i/n`, `--merge`).
  const bool sharded = options.shard.has_value() || options.merge_shards;
  if (sharded) {
    if (options.shard && options.merge_shards) throw ValueError("pipeline: --shard and --merge exclude each other");
    std::vector<std::string> shardable;
    for (const auto& stage : stages)
      if (stage->shardable()) shardable.push_back(stage->name());
    if (options.stages.size() != 1 || !stages[index_of(options.stages.front())]->shardable())
      throw ValueError(fmt::format("pipeline: --shard and --merge apply to one of the stages {} alone, got [{}]",
                                   fmt::join(shardable, ", "), fmt::join(options.stages, ", ")));
    if (options.shard) shard_range(0, *options.shard);  // checks 0 <= i < n
  }

  const int threads = set_torch_threads(config.threads);  // 0: the machine's cores
  set_palette_blas_threads(config.blas_threads);
  Manifest manifest = Manifest::load(out_dir);
  // A folder whose files were changed behind the manifest's back is refused before anything runs.
  for (const auto& [name, entry] : manifest.artifacts()) verify_artifact(out_dir, entry);
  // A completed stage whose outputs are all on disk as recorded.
  auto completed_and_intact = [&](const StageRecord* record) {
    if (!record || !record->completed) return false;
    return std::all_of(record->outputs.begin(), record->outputs.end(), [&](const std::string& output) {
      const auto* entry = manifest.artifact(output);
      return entry && verify_artifact(out_dir, *entry);
    });
  };
  // The hash of a stage's configuration section and of the checksums of the artifacts it reads.
  auto inputs_hash_of = [&](const Stage& stage) {
    std::string inputs;
    for (const auto& input : stage.inputs(config)) {
      const auto* entry = manifest.artifact(input);
      if (!entry)
        throw ValueError(fmt::format("pipeline: stage '{}' needs artifact '{}', which no stage made in {}; run `{}` first",
                                     stage.name(), input, out_dir.string(), command_making(stage.name())));
      inputs += input + "=" + entry->checksum + ";";
    }
    return hash_text(inputs);
  };
  // What a stage's shards record: its hashes and its input artifacts' checksums.
  auto stage_inputs = [&](const Stage& stage, const std::string& config_hash, const std::string& inputs_hash) {
    StageInputs made_from{config_hash, inputs_hash, {}};
    for (const auto& input : stage.inputs(config)) made_from.checksums[input] = manifest.artifact(input)->checksum;
    return made_from;
  };
  for (std::size_t i = 0; i < first; ++i) {
    const auto& stage = *stages[i];
    const auto* record = manifest.stage(stage.name());
    const auto where = fmt::format("pipeline: stage '{}' in {}", stage.name(), out_dir.string());
    const auto hint = fmt::format("run `{}` first (or `lamia run` for every stage)", command_making(stage.name()));
    if (!completed_and_intact(record))
      throw ValueError(fmt::format("{} has not completed (or its artifacts are missing); {}", where, hint));
    const auto section = stage.config_section(config);
    if (record->config_hash != hash_text(section.dump()))
      throw ValueError(fmt::format("{} was made with another configuration ({}); {}", where,
                                   differing_keys(record->config, section), hint));
    if (record->inputs_hash != inputs_hash_of(stage))
      throw ValueError(fmt::format("{} is out of date: an artifact it was made from changed since; {}", where, hint));
  }

  fs::create_directories(out_dir);
  PipelineContext ctx(config, out_dir, log);
  ctx.say(thread_summary(threads) + "; " + blas_thread_summary(threads));
  if (const auto removed = remove_abandoned_temporaries(out_dir, manifest); !removed.empty()) {
    ctx.say(fmt::format("removed {} file(s) an interrupted run was writing: {}", removed.size(),
                        fmt::join(removed, ", ")));
  }
  {
    nlohmann::json effective;
    to_json(effective, config);
    ctx.write_json("config.json", effective);
  }

  PipelineResult result;
  for (auto it = stages.begin(); it != stages.begin() + std::ptrdiff_t(first); ++it) {
    ctx.say(fmt::format("stage {}: up to date", (*it)->name()));
    result.stages_skipped.push_back((*it)->name());
  }
  for (auto it = stages.begin() + std::ptrdiff_t(first); it != stages.begin() + std::ptrdiff_t(end); ++it) {
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
    const auto section = stage->config_section(config);
    const auto config_hash = hash_text(section.dump());
    const auto inputs_hash = inputs_hash_of(*stage);
    const auto* record = manifest.stage(name);
    // An output deleted since (or missing) makes the stage run again.
    const bool up_to_date = !sharded && options.only.empty() && record && record->config_hash == config_hash &&
                            record->inputs_hash == inputs_hash && completed_and_intact(record);
    if (up_to_date) {
      ctx.say(fmt::format("stage {}: up to date", name));
      result.stages_skipped.push_back(name);
      continue;
    }
    if (options.shard) {  // a part of the stage: written beside the folder's artifacts, not recorded
      const auto made_from = stage_inputs(*stage, config_hash, inputs_hash);
      const auto t0 = std::chrono::steady_clock::now();
      stage->run_shard(ctx, *options.shard, made_from);
      result.stages_run.push_back(name);
      ctx.say(fmt::format("stage {}: shard {}/{} done ({:.1f}s)", name, options.shard->index, options.shard->count,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
      continue;
    }
    if (record && (record->config_hash != config_hash || record->inputs_hash != inputs_hash)) {
      for (const auto& stale : stage->checkpoints(config)) fs::remove_all(out_dir / stale);
    }
    StageRecord started{config_hash, inputs_hash, false, {}, section.dump()};
    manifest.record_stage(name, started, {});
    manifest.save(out_dir);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<ArtifactSpec> written;
    if (options.merge_shards) {
      const auto made_from = stage_inputs(*stage, config_hash, inputs_hash);
      written = stage->merge_shards(ctx, made_from);
    } else {
      written = stage->run(ctx);
    }
    std::vector<ArtifactEntry> artifacts;
    for (const auto& spec : written) {
      artifacts.push_back(describe_artifact(out_dir, spec.name, spec.path, name, spec.format_version, config_hash,
                                            inputs_hash));
    }
    manifest.record_stage(name, StageRecord{config_hash, inputs_hash, true, {}, section.dump()}, artifacts);
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
