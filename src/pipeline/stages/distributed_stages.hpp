#pragma once
// What the training stages need from run_pipeline_on_group (include/lamia/pipeline/distributed.hpp):
// the group of this call, and the message that makes the other ranks join a training.
#include <lamia/nn/gradient_sync.hpp>

#include <memory>
#include <string>
#include <vector>

namespace lamia::detail {

/// The group of this call (run_pipeline_on_group, more than one rank), or nullptr: the training
/// stages train over it, the export and the evaluation split their items or users over it.
const std::shared_ptr<GradientSync>& stage_training_group();

/// Whether this process writes the run folder: rank 0, or a call without a group.
bool writes_run_folder();

/// On rank 0 of a group: tells the other ranks that `stage` starts now, so that they run it with
/// their own context and join its training (the first collective of the training loop). Call it
/// before anything else of the stage talks to the group, after what rank 0 must write first.
/// Nothing without a group or on the other ranks.
void begin_distributed_stage(const std::string& stage);

/// On rank 0: every rank's bytes in rank order (its own included); on the other ranks: nothing.
/// Sent in rounds of at most kGatherChunkBytes per rank (one gather each), so that no collective
/// holds more than world_size of them.
std::vector<std::string> gather_bytes_on_rank0(GradientSync& group, const std::string& bytes);
inline constexpr std::int64_t kGatherChunkBytes = 1 << 20;

}  // namespace lamia::detail
