#pragma once
// `lamia run` and the stage commands on several processes (torchrun): rank 0 runs the pipeline as
// one process would and alone writes the run folder and its manifest; the stages that train
// (palette, recommend) train data-parallel over the group, the export and the evaluation split their
// items and test users over it, the other ranks joining each such stage as rank 0 starts it and writing
// nothing (docs/distributed.md, "The stage commands under torchrun").
#include <lamia/nn/gradient_sync.hpp>
#include <lamia/pipeline/pipeline.hpp>

#include <filesystem>
#include <iosfwd>
#include <memory>

namespace lamia {

/// run_pipeline(config, out_dir, log, options) on every rank of `group` (every rank calls it with the
/// same arguments; a group of one, or none, is run_pipeline itself):
/// - rank 0 runs the stages, skips those that are up to date and writes every file and the manifest;
///   the palette encoder and the generative recommenders train over the group (each rank computes
///   its contiguous shard of every global batch of the configured batch size, the gradients are
///   averaged, each weighed by its share of the batch; TrainingLoopOptions::gradient_sync). The export
///   and the evaluation split over the ranks: rank r computes part r of the items (the test users),
///   the --shard split, and sends it to rank 0, which writes palettes.bin, embeddings.bin and
///   metrics.json as one process does. SASRec, which does not shard, and the other stages run on
///   rank 0 alone while the others wait;
/// - the other ranks read the folder's artifacts as rank 0 left them (the same folder: one machine or
///   a shared file system, or a copy), join each of those stages when rank 0 starts it, and return an empty result
///   once rank 0 has written everything (a barrier ends the call on every rank).
/// ValueError on every rank when the ranks were called with different configurations or options, and
/// for options.shard or options.merge_shards with more than one rank (each shard is its own process).
PipelineResult run_pipeline_on_group(const PipelineConfig& config, const std::filesystem::path& out_dir,
                                     std::ostream& log, const PipelineRunOptions& options,
                                     const std::shared_ptr<GradientSync>& group);

}  // namespace lamia
