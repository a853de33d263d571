#pragma once
// Data-parallel training: what the training loop needs from a process group (the processes that
// train one model together), with no dependency on a communication library. lamia's
// implementation on c10d's Gloo process group is lamia::GlooProcessGroup
// (lamia/distributed/process_group.hpp, built where LibTorch ships c10d's Gloo headers).
//
//   auto group = std::make_shared<lamia::GlooProcessGroup>(lamia::ProcessGroupOptions::from_environment());
//   TrainingLoopOptions().gradient_sync(group)   // each rank trains on its shard of every batch
//
// With a GradientSync the TrainingLoop asks its task for this rank's shard of every global batch
// (TrainingTask::set_shard), copies rank 0's parameters and buffers to every rank when it starts,
// and after each backward() replaces every gradient by its mean over the ranks, so that every rank
// takes the same step: one step on the mean of the shards' losses (what PyTorch's DDP computes).
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace lamia {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  /// This process's rank in [0, world_size()).
  virtual std::int64_t rank() const = 0;
  virtual std::int64_t world_size() const = 0;
  /// Overwrites every rank's tensors with rank 0's values (in place; the same shapes and dtypes on
  /// every rank, in the same order).
  virtual void broadcast(const std::vector<torch::Tensor>& tensors) = 0;
  /// Replaces every tensor by its mean over the ranks (in place; floating-point tensors).
  virtual void all_reduce_mean(const std::vector<torch::Tensor>& tensors) = 0;
  /// Every rank's tensor on rank 0 (the same shape and dtype on every rank, CPU): on rank 0 the
  /// world_size tensors in rank order (its own a copy), on the other ranks nothing. For results that
  /// rank 0 alone writes (the export and the evaluation under torchrun).
  virtual std::vector<torch::Tensor> gather(const torch::Tensor& tensor) = 0;
  /// Every rank's tensor on every rank (the same shape and dtype on every rank): the world_size
  /// tensors in rank order, on the CPU. The default is gather() then broadcast(); GlooProcessGroup
  /// does it in one collective. For the palette encoder's losses over the global batch.
  virtual std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor);
};

/// Rank 0's parameters and buffers (all of them, trainable or not) into every rank's module.
void broadcast_parameters(torch::nn::Module& module, GradientSync& sync);

/// After backward(): every parameter's gradient becomes its mean over the ranks. An undefined
/// gradient (a parameter the loss did not reach) takes part as zeros, so that every rank reduces
/// the same tensors.
void average_gradients(const std::vector<torch::Tensor>& parameters, GradientSync& sync);

/// The rank-th contiguous part [begin, end) of n items over world_size ranks (sizes differ by at
/// most one; pylamia.distributed.shard's split). Empty for some ranks when n < world_size.
/// ValueError naming `what` for a rank outside [0, world_size).
std::pair<std::int64_t, std::int64_t> shard_bounds(std::int64_t n, std::int64_t rank, std::int64_t world_size,
                                                   const char* what);

}  // namespace lamia
