#pragma once
// One training loop for every model lamia trains (Adam, gradient clipping, early stopping on a
// validation loss, progress lines with rate, checkpoints that resume exactly): a task says what a
// batch is and what its loss is; the loop owns the optimizer, the schedule and the checkpoint.
//
//   struct MyTask : lamia::TrainingTask { ... };
//   MyTask task(...);
//   lamia::TrainingLoop loop(task, lamia::TrainingLoopOptions().epochs(5).checkpoint_path("run/x.ckpt"));
//   auto result = loop.run();   // resumes from run/x.ckpt when it exists
//
// Exact resume: the checkpoint holds the weights, Adam's state, torch's CPU (and CUDA) generator,
// the position in the epoch, the early-stopping state and the best weights, and the task's
// batches must be a pure function of (seed, epoch, batch index), so that a run killed at any point
// and resumed ends with the same weights as an uninterrupted one.
#include <lamia/core/options.hpp>
#include <lamia/nn/gradient_sync.hpp>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace torch::optim {
class Optimizer;
}

namespace lamia {

/// Where progress lines go (not owned). A typedef: TORCH_ARG spells `const T&` textually.
using TrainingLogStream = std::ostream*;

struct TrainingLoopOptions {
  /// Adam's learning rate.
  TORCH_ARG(double, learning_rate) = 1e-3;
  /// Adam's (L2) weight decay.
  TORCH_ARG(double, weight_decay) = 0.0;
  /// Passes over the training batches.
  TORCH_ARG(std::int64_t, epochs) = 10;
  /// Stop after this many optimizer steps in total (0: no limit).
  TORCH_ARG(std::int64_t, max_steps) = 0;
  /// Clip the global gradient norm to this value (0: no clipping).
  TORCH_ARG(double, grad_clip_norm) = 1.0;
  /// Validate every this many steps (0: at the end of each epoch only).
  TORCH_ARG(std::int64_t, eval_every) = 0;
  /// Stop after this many validations without a lower validation loss (0: never stop early).
  TORCH_ARG(std::int64_t, patience) = 3;
  /// A validation loss counts as lower only below best * (1 - min_rel_improvement) (0: any
  /// decrease; RQ-VAE's recipe stops on a relative improvement).
  TORCH_ARG(double, min_rel_improvement) = 0.0;
  /// Put the best validation weights back into the model when training ends.
  TORCH_ARG(bool, restore_best) = true;
  /// Seed of torch's generator at the start (dropout, sampling inside the task).
  TORCH_ARG(std::uint64_t, seed) = 0;
  /// Checkpoint file; empty: no checkpoints.
  TORCH_ARG(std::string, checkpoint_path) = "";
  /// Also write a checkpoint every this many steps (0: at validations, epoch ends and the end).
  TORCH_ARG(std::int64_t, checkpoint_every) = 0;
  /// Continue from checkpoint_path when it exists.
  TORCH_ARG(bool, resume) = true;
  /// Print a progress line at every step that is a multiple of this (0: silent), and a last line.
  TORCH_ARG(std::int64_t, log_every) = 50;
  /// Where progress lines go (nullptr: std::cerr).
  TORCH_ARG(TrainingLogStream, log) = nullptr;
  /// Names the loop in progress lines and errors ("recommender", "sasrec", ...).
  TORCH_ARG(std::string, name) = "training";
  /// Data-parallel training (nn/gradient_sync.hpp; nullptr: this process alone). Each rank trains
  /// on its shard of every batch (TrainingTask::set_shard), starts from rank 0's parameters and
  /// averages the gradients after backward(), each rank's loss weighed by its share of the global
  /// batch (StepOutput::weight); the logged loss is the weighted mean over the ranks, rank 0's
  /// validation loss decides for all, and only rank 0 writes checkpoints (every rank resumes from
  /// checkpoint_path, which must therefore be on storage every rank reads).
  TORCH_ARG(std::shared_ptr<GradientSync>, gradient_sync) = nullptr;

 public:
  /// Throws ValueError naming the first option out of range.
  void check() const;
};

/// The loop's fields as a trainer flattens them into its own field list (JSON, Python: epochs,
/// learning_rate, ...); seed, name and log stay with the trainer and C++. epoch_doc is the doc of
/// `epochs` ("passes over the training examples"). min_rel_improvement is C++ only (RQ-VAE).
template <class V>
void visit_training_loop_fields(TrainingLoopOptions& o, V&& v, const char* epoch_doc) {
  v.field("epochs", o.epochs(), epoch_doc, options::at_least(0));
  v.field("learning_rate", o.learning_rate(), "Adam's learning rate", options::greater_than(0));
  v.field("weight_decay", o.weight_decay(), "Adam's (L2) weight decay", options::at_least(0));
  v.field("max_steps", o.max_steps(), "stop after this many optimizer steps in total (0: no limit)",
          options::at_least(0));
  v.field("grad_clip_norm", o.grad_clip_norm(), "clip the global gradient norm to this value (0: no clipping)",
          options::at_least(0));
  v.field("eval_every", o.eval_every(), "validate every this many steps (0: at the end of each epoch only)",
          options::at_least(0));
  v.field("patience", o.patience(), "stop after this many validations without a lower loss (0: never)",
          options::at_least(0));
  v.field("restore_best", o.restore_best(), "put the best validation weights back when training ends");
  v.field("checkpoint_path", o.checkpoint_path(), "checkpoint file; empty: no checkpoints");
  v.field("checkpoint_every", o.checkpoint_every(),
          "also write a checkpoint every this many steps (0: at validations, epoch ends and the end)",
          options::at_least(0));
  v.field("resume", o.resume(), "continue from checkpoint_path when it exists");
  v.field("log_every", o.log_every(), "print a progress line every this many steps (0: silent)",
          options::at_least(0));
}

/// What one training step of a task computed.
struct StepOutput {
  torch::Tensor loss;          ///< scalar, with autograd
  std::int64_t tokens = 0;     ///< input tokens processed (for the rate)
  std::int64_t labels = 0;     ///< predictions in the loss
  std::int64_t correct = 0;    ///< of those, argmax-correct (0 when the task does not count)
  std::vector<double> parts;   ///< the loss's named parts (TrainingTask::part_names), averaged in the records
  /// Data-parallel training: how many things the loss is a mean over on this rank (e.g. its label
  /// tokens), so that the group's loss is the mean over the global batch (sum of weight x loss over
  /// the ranks, divided by the sum of the weights); 0 for an empty shard, whose loss is then ignored.
  double weight = 1.0;
};

/// Averages over one logging interval.
struct TrainingRecord {
  std::int64_t step = 0;
  double loss = 0.0;
  double token_accuracy = 0.0;
  double tokens_per_second = 0.0;
  std::vector<double> parts;  ///< means of StepOutput::parts
};

/// One validation: the loss early stopping looks at, and what else the task measured.
struct ValidationRecord {
  std::int64_t step = 0;
  double loss = 0.0;
  double token_accuracy = 0.0;
  std::vector<double> parts;  ///< named by TrainingTask::part_names
};

/// What is trained. Batches must be deterministic in (seed, epoch, batch) for exact resume.
class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  /// The module whose parameters with requires_grad are optimized (and saved).
  virtual torch::nn::Module& module() = 0;
  virtual std::int64_t num_batches(std::int64_t epoch) = 0;
  /// Forward pass of one batch in training mode; the loop does backward and the step.
  virtual StepOutput train_step(std::int64_t epoch, std::int64_t batch) = 0;
  /// Validation loss (lower is better), or nullopt when there is no validation data.
  virtual std::optional<double> validation_loss() { return std::nullopt; }
  /// A whole validation record (loss, parts, accuracy); the loop sets its step. The default wraps
  /// validation_loss(). Runs in eval mode without gradients.
  virtual std::optional<ValidationRecord> validate();
  /// Names of StepOutput::parts and ValidationRecord::parts (in errors and default log lines).
  virtual std::vector<std::string> part_names() { return {}; }
  /// Words that identify a batch in an error (e.g. its users), for a non-finite loss.
  virtual std::string describe_batch(std::int64_t /*epoch*/, std::int64_t /*batch*/) { return ""; }
  /// Data-parallel training: from now on train_step(epoch, batch) computes the loss of the rank-th
  /// of world_size contiguous parts of the batch (shard_bounds; empty when the batch is smaller than
  /// world_size: then StepOutput::weight 0 and a loss without gradient). The default accepts only
  /// world_size 1 (ValueError otherwise).
  virtual void set_shard(std::int64_t rank, std::int64_t world_size);
  /// Numbers that must match for a checkpoint to resume this task (sizes, seed, data).
  virtual std::vector<std::int64_t> fingerprint() = 0;
  /// Names of the fingerprint's numbers (empty: a mismatch prints both lists; else it names the first).
  virtual std::vector<std::string> fingerprint_names() { return {}; }
  /// The progress line of a logging interval (no newline); `name` is TrainingLoopOptions::name.
  virtual std::string progress_line(const std::string& name, const TrainingRecord& record, std::int64_t epoch,
                                    std::int64_t batch, std::int64_t num_batches);
  /// The line of a validation (no newline); best: it is the lowest validation loss so far.
  virtual std::string validation_line(const std::string& name, const ValidationRecord& record, bool best);
};

struct TrainingResult {
  std::int64_t steps = 0;  ///< optimizer steps in total (resumed ones included)
  std::int64_t epochs_completed = 0;  ///< in total (resumed ones included)
  bool resumed = false;
  std::int64_t resumed_at_step = 0;
  std::int64_t resumed_at_epoch = 0;  ///< epochs completed before this run
  bool stopped_early = false;
  std::string stop_reason;  ///< "epochs done", "max_steps reached", "early stopping (...)"
  std::vector<TrainingRecord> train_history;         ///< this run
  std::vector<ValidationRecord> validation_history;  ///< this run
  double best_validation_loss = std::numeric_limits<double>::infinity();
  std::int64_t best_step = -1;
  double tokens_per_second = 0.0;
  double seconds = 0.0;
};

class TrainingLoop {
 public:
  TrainingLoop(TrainingTask& task, TrainingLoopOptions options);
  ~TrainingLoop();
  /// Trains to the end (resuming when a checkpoint exists and resume is set). A non-finite loss or
  /// gradient norm throws ValueError naming the step and the batch; the checkpoint on disk is kept.
  /// Only early stopping is final: a run that ended at its epochs or max_steps continues from its
  /// checkpoint when called again with more of them. The module ends in eval mode with the best
  /// validation weights (restore_best); the checkpoint keeps the last ones.
  TrainingResult run();
  /// Writes the whole state atomically.
  void save_checkpoint(const std::filesystem::path& path) const;
  /// Restores a state written by save_checkpoint; ValueError when it belongs to another task setup.
  void load_checkpoint(const std::filesystem::path& path);
  std::int64_t step() const noexcept { return step_; }
  /// The epoch training is in (epochs completed).
  std::int64_t epoch() const noexcept { return epoch_; }
  const TrainingLoopOptions& options() const noexcept { return options_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  TrainingTask& task_;
  TrainingLoopOptions options_;
  std::vector<torch::Tensor> params_;  // trainable
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::int64_t step_ = 0, epoch_ = 0, batch_in_epoch_ = 0;
  double best_loss_ = std::numeric_limits<double>::infinity();
  std::int64_t best_step_ = -1, evaluations_without_improvement_ = 0;
  std::vector<torch::Tensor> best_parameters_;
  bool finished_ = false;
  std::string finish_reason_;
};

}  // namespace lamia
