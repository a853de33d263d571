#pragma once
// Training the palette encoder: samples are (item, task) pairs of the training items, shuffled
// per epoch and grouped by length into batches; lamia's TrainingLoop does the rest (Adam with
// gradient clipping, early stopping on a held-out slice of items, checkpoints that resume exactly
// where training stopped: weights, optimizer state, torch's RNG state (and the CUDA generator's
// when training on CUDA), data order, early-stopping state).
//
//   PaletteTrainer trainer(encoder, tokenized, PaletteTrainerOptions().loop(
//       PaletteTrainerOptions::default_loop().max_steps(2000).checkpoint_path("run/palette.ckpt")));
//   auto result = trainer.train();   // resumes from run/palette.ckpt when it exists
#include <lamia/core/options.hpp>
#include <lamia/nn/device_codec.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/nn/training_loop.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/palette_encoder.hpp>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace lamia {

/// Options of PaletteTrainer; defaults are the paper's where it gives them (Adam, lr 1e-4, batch 128).
/// What belongs to palette training is listed here; the optimizer, the budget, early stopping,
/// checkpoints, progress lines and data parallelism are the shared loop's (`loop`, whose seed and
/// name the trainer sets: seed from `seed`, name "palette").
///
///   auto o = PaletteTrainerOptions().batch_size(32).loop(PaletteTrainerOptions::default_loop().epochs(3));
///   o.loop().checkpoint_path("run/palette.ckpt");
struct PaletteTrainerOptions {
  /// Samples ((item, task) pairs) per optimizer step.
  TORCH_ARG(std::int64_t, batch_size) = 128;
  /// Share of the items held out for validation / early stopping (0 <= f < 1; 0: none).
  TORCH_ARG(double, validation_fraction) = 0.05;
  /// Length grouping: samples are sorted by length within windows of this many batches.
  TORCH_ARG(std::int64_t, group_batches) = 32;
  /// Seed of the item split, the data order and torch's generator (dropout, LoRA init).
  TORCH_ARG(std::uint64_t, seed) = 0;
  /// Device the model and the batches are moved to.
  TORCH_ARG(torch::Device, device) = torch::Device(torch::kCPU);
  /// The training loop's options (nn/training_loop.hpp). Data-parallel training
  /// (`loop().gradient_sync(...)`): each rank trains on its contiguous shard of every batch of
  /// batch_size samples; the palettes of the whole batch are gathered from every rank at each step
  /// for the intra/inter/decorrelation losses (docs/distributed.md).
  TORCH_ARG(TrainingLoopOptions, loop) = default_loop();
  /// Data-parallel training only (C++, not in JSON): each rank computes the intra/inter/decorrelation
  /// losses on its own shard's palettes, as a smaller batch would (before issue 13), instead of on the
  /// global batch's palettes gathered from every rank (the default, exact: one process's step).
  TORCH_ARG(bool, shard_local_losses) = false;

 public:
  /// The loop's palette defaults: lr 1e-4 (the paper's), 1 epoch, validation every 500 steps,
  /// patience 5.
  static TrainingLoopOptions default_loop() {
    return TrainingLoopOptions().name("palette").learning_rate(1e-4).epochs(1).eval_every(500).patience(5);
  }
  /// Throws ValueError on an option out of range.
  void check() const;
};

/// The fields of PaletteTrainerOptions (JSON, Python): its own and the loop's, flattened
/// (palette.trainer.epochs, ...); the loop's log, name and gradient_sync are set in C++.
template <class V>
void visit_fields(PaletteTrainerOptions& o, V&& v) {
  v.field("batch_size", o.batch_size(), "samples ((item, task) pairs) per optimizer step (paper: 128)", options::at_least(1));
  visit_training_loop_fields(o.loop(), v, "passes over the training samples");
  v.field("validation_fraction", o.validation_fraction(), "share of the items held out for validation (0: none)",
          options::from_to_excluded(0, 1));
  v.field("group_batches", o.group_batches(), "samples are sorted by length within windows of this many batches",
          options::at_least(1));
  v.field("seed", o.seed(), "seed of the item split, the data order and torch's generator");
  v.field("device", o.device(), "device the model and the batches are moved to");
}

/// Losses averaged over one logging interval (or over the validation set).
struct PaletteLossRecord {
  std::int64_t step = 0;
  double loss = 0.0;
  double generation_loss = 0.0;
  double intra_loss = 0.0;
  double inter_loss = 0.0;
  double decorrelation_loss = 0.0;
  double token_accuracy = 0.0;    ///< teacher-forced, on the labelled tokens
  double tokens_per_second = 0.0; ///< non-padding tokens of the full layouts (training records only)
};

template <class V>
void visit_fields(PaletteLossRecord& o, V&& v) {
  v.field("step", o.step, "optimizer step at the end of the interval");
  v.field("loss", o.loss, "total loss");
  v.field("generation_loss", o.generation_loss, "next-token cross-entropy of the tasks");
  v.field("intra_loss", o.intra_loss, "intra-palette hinge loss (weighted)");
  v.field("inter_loss", o.inter_loss, "inter-palette hinge loss (weighted)");
  v.field("decorrelation_loss", o.decorrelation_loss, "cross-correlation penalty between positions (unweighted)");
  v.field("token_accuracy", o.token_accuracy, "teacher-forced, on the labelled tokens");
  v.field("tokens_per_second", o.tokens_per_second, "non-padding tokens of the full layouts (training records only)");
}

/// What train() did.
struct PaletteTrainResult {
  std::int64_t steps = 0;            ///< optimizer steps taken in total (resumed ones included)
  std::int64_t epochs_completed = 0;
  bool resumed = false;              ///< started from a checkpoint
  std::int64_t resumed_at_step = 0;
  bool stopped_early = false;
  std::string stop_reason;           ///< "epochs done", "max_steps reached", "early stopping (...)"
  std::vector<PaletteLossRecord> train_history;       ///< one per log interval (this run)
  std::vector<PaletteLossRecord> validation_history;  ///< one per evaluation (this run)
  double best_validation_loss = 0.0;  ///< +inf without validation items
  std::int64_t best_step = -1;
  double tokens_per_second = 0.0;     ///< over this run's training steps
  double seconds = 0.0;
};

template <class V>
void visit_fields(PaletteTrainResult& o, V&& v) {
  v.field("steps", o.steps, "optimizer steps taken in total (resumed ones included)");
  v.field("epochs_completed", o.epochs_completed, "epochs completed");
  v.field("resumed", o.resumed, "started from a checkpoint");
  v.field("resumed_at_step", o.resumed_at_step, "the step the checkpoint was at");
  v.field("stopped_early", o.stopped_early, "stopped by early stopping");
  v.field("stop_reason", o.stop_reason, "'epochs done', 'max_steps reached', 'early stopping (...)'");
  v.field("train_history", o.train_history, "one record per log interval (this run)");
  v.field("validation_history", o.validation_history, "one record per evaluation (this run)");
  v.field("best_validation_loss", o.best_validation_loss, "+inf without validation items");
  v.field("best_step", o.best_step, "step of the best validation loss (-1: none)");
  v.field("tokens_per_second", o.tokens_per_second, "over this run's training steps");
  v.field("seconds", o.seconds, "wall time");
}

/// Adds LoRA adapters to the encoder's decoder (freezing its other weights) and, when
/// train_embeddings, makes the token embedding matrix trainable again so that the new LaP, LdP and
/// task tokens learn (PEFT's modules_to_save = ["embed_tokens"]).
void apply_palette_lora(PaletteEncoderImpl& encoder, const LoraOptions& options, bool train_embeddings = true);

class PaletteTrainingTask;
class TrainingLoop;

/// The palette encoder's training task on lamia's one TrainingLoop (nn/training_loop.hpp), which
/// owns Adam, clipping, validation, early stopping, progress lines and checkpoints.
class PaletteTrainer {
 public:
  /// Splits the items of catalog into training and validation items (seeded). The encoder is
  /// trained in place; only its parameters with requires_grad are optimized.
  PaletteTrainer(PaletteEncoder encoder, const TokenizedCatalog& catalog, PaletteTrainerOptions options = {});
  ~PaletteTrainer();
  PaletteTrainer(PaletteTrainer&&) noexcept;
  PaletteTrainer& operator=(PaletteTrainer&&) noexcept;

  /// Trains (resuming from options.loop().checkpoint_path() when it exists and resume is set).
  /// A non-finite loss or gradient norm throws ValueError naming the step and the batch's item
  /// ids; the last checkpoint on disk is left as it was. The encoder stays in training mode.
  PaletteTrainResult train();

  /// Mean losses and token accuracy of every task of items (no gradient, eval mode).
  PaletteLossRecord evaluate(const std::vector<ItemIndex>& items);

  /// Writes the whole training state atomically. Throws IOError on failure.
  void save_checkpoint(const std::filesystem::path& path) const;
  /// Restores a state written by save_checkpoint. Throws IOError when it cannot be read and
  /// ValueError when it belongs to another setup (palette size, tasks, batch size, seed, items).
  void load_checkpoint(const std::filesystem::path& path);

  const std::vector<ItemIndex>& train_items() const noexcept;
  const std::vector<ItemIndex>& validation_items() const noexcept;
  /// The batches of an epoch, as lists of (item, task) samples (deterministic in seed and epoch).
  std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>> epoch_batches(std::int64_t epoch) const;
  std::int64_t step() const noexcept;
  const PaletteTrainerOptions& options() const noexcept { return options_; }
  PaletteEncoder encoder() const { return encoder_; }
  torch::optim::Optimizer& optimizer();

 private:
  PaletteEncoder encoder_;
  PaletteTrainerOptions options_;
  std::unique_ptr<PaletteTrainingTask> task_;
  std::unique_ptr<TrainingLoop> loop_;
};

}  // namespace lamia
