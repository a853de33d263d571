#pragma once
// What the training stages need from run_pipeline_on_group (include/lamia/pipeline/distributed.hpp):
// the group of this call, and the message that makes the other ranks join a training.
#include <lamia/nn/gradient_sync.hpp>

#include <memory>
#include <string>

namespace lamia::detail {

/// The group the training stages of this call train over (run_pipeline_on_group), or nullptr.
const std::shared_ptr<GradientSync>& stage_training_group();

/// Whether this process writes the run folder: rank 0, or a call without a group.
bool writes_run_folder();

/// On rank 0 of a group: tells the other ranks that `stage` starts now, so that they run it with
/// their own context and join its training (the first collective of the training loop). Call it
/// before anything else of the stage talks to the group, after what rank 0 must write first.
/// Nothing without a group or on the other ranks.
void begin_distributed_stage(const std::string& stage);

}  // namespace lamia::detail
