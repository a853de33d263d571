#pragma once
// RqVae: the trained baseline quantizer of TIGER (Rajput et al., 2023). An MLP
// encoder maps an item embedding to a latent z; L residual codebooks of k codes
// quantize z coarse to fine (code l is the nearest codeword to the residual left
// by levels < l); an MLP decoder reconstructs the embedding from the sum of the
// chosen codewords. Loss = MSE(x, x_hat) + sum_l [ |sg(r_l) - e_l|^2 + beta |r_l - sg(e_l)|^2 ],
// gradients pass the quantizer straight through. Codebooks are initialised with
// K-Means on the first batch; codes unused during an epoch are reset to random
// residuals of the training data.
//
// Example:
//   lamia::RqVae model(lamia::RqVaeOptions(768).num_levels(3).num_codes(256));
//   lamia::RqVaeTrainReport r = lamia::train_rq_vae(model, embeddings);   // n x 768
//   torch::Tensor codes = model->encode(embeddings);                      // n x 3
//   auto table = lamia::SemanticIdTable::from_codes(codes, model->codebook_sizes());
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/arg.h>
#include <lamia/nn/device_codec.hpp>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lamia {

struct RqVaeOptions {
  /// D: dimension of the item embeddings (required).
  /* implicit */ RqVaeOptions(std::int64_t input_dim) : input_dim_(input_dim) {}
  TORCH_ARG(std::int64_t, input_dim);
  /// Hidden widths of the encoder MLP (the decoder mirrors them); TIGER: 512, 256, 128.
  TORCH_ARG(std::vector<std::int64_t>, hidden_dims) = std::vector<std::int64_t>{512, 256, 128};
  /// Latent dimension quantized by the codebooks (TIGER: 32).
  TORCH_ARG(std::int64_t, latent_dim) = 32;
  /// L: residual codebooks (TIGER: 3).
  TORCH_ARG(std::int64_t, num_levels) = 3;
  /// k: codes per codebook (TIGER: 256).
  TORCH_ARG(std::int64_t, num_codes) = 256;
  /// Commitment weight beta (TIGER: 0.25).
  TORCH_ARG(double, beta) = 0.25;
  /// Seed of the parameter initialisation (independent of torch's global generator).
  TORCH_ARG(std::uint64_t, seed) = 0;
};

/// The fields of RqVaeOptions (JSON, Python). input_dim is required by the constructor; the
/// default object (options::Defaults) has 0.
template <class V>
void visit_fields(RqVaeOptions& o, V&& v) {
  v.field("input_dim", o.input_dim(), "D: dimension of the item embeddings (required)", options::at_least(0));
  v.field("hidden_dims", o.hidden_dims(), "hidden widths of the encoder MLP, mirrored by the decoder (TIGER: 512, 256, 128)",
          options::at_least(1));
  v.field("latent_dim", o.latent_dim(), "latent dimension quantized by the codebooks (TIGER: 32)", options::at_least(1));
  v.field("num_levels", o.num_levels(), "L: residual codebooks (TIGER: 3)", options::at_least(1));
  v.field("num_codes", o.num_codes(), "k: codes per codebook (TIGER: 256)", options::at_least(1));
  v.field("beta", o.beta(), "commitment weight (TIGER: 0.25)", options::at_least(0));
  v.field("seed", o.seed(), "seed of the parameter initialisation (independent of torch's global generator)");
}
namespace options {
template <>
struct Defaults<RqVaeOptions> {
  static RqVaeOptions make() { return RqVaeOptions(0); }
};
}  // namespace options

struct RqVaeOutput {
  torch::Tensor reconstruction;      ///< n x D
  torch::Tensor codes;               ///< n x L int64
  torch::Tensor reconstruction_loss; ///< scalar, mean squared error
  torch::Tensor quantization_loss;   ///< scalar, codebook + beta * commitment, summed over levels
  torch::Tensor loss;                ///< reconstruction_loss + quantization_loss
};

class RqVaeImpl : public torch::nn::Cloneable<RqVaeImpl> {
 public:
  explicit RqVaeImpl(RqVaeOptions options);
  void reset() override;

  RqVaeOutput forward(const torch::Tensor& x);
  /// Codes of n x D embeddings, n x L int64 (no gradient). ValueError on a wrong shape or NaN/inf.
  torch::Tensor encode(const torch::Tensor& x);
  /// The latent sum of the chosen codewords decoded back to n x D.
  torch::Tensor decode_codes(const torch::Tensor& codes);
  /// Sets the codebooks to K-Means centroids (faiss) of the latent residuals of x, level by level.
  void init_codebooks_kmeans(const torch::Tensor& x, std::uint64_t seed);
  /// Replaces the codes with zero count by residuals of random rows of x; returns how many per level.
  std::vector<std::int64_t> reset_dead_codes(const torch::Tensor& x, const torch::Tensor& counts,
                                             std::uint64_t seed);
  std::vector<std::int64_t> codebook_sizes() const;

  RqVaeOptions options;
  torch::nn::Sequential encoder{nullptr};
  torch::nn::Sequential decoder{nullptr};
  std::vector<torch::Tensor> codebooks;  ///< L parameters, each k x latent_dim

 private:
  /// Residual quantization of latents z: codes (n x L) and the quantized sum (n x latent).
  std::pair<torch::Tensor, torch::Tensor> quantize(const torch::Tensor& z, torch::Tensor* loss);
};
TORCH_MODULE(RqVae);

struct RqVaeTrainOptions {
  /// Items per batch (TIGER: 1024). The first batch (at least k items) initialises the codebooks.
  std::int64_t batch_size = 1024;
  /// Upper bound on epochs.
  int max_epochs = 200;
  /// Adam learning rate.
  double learning_rate = 1e-3;
  /// Stop when the epoch's mean reconstruction loss has not improved by min_rel_improvement
  /// (relative) for this many epochs.
  int patience = 10;
  double min_rel_improvement = 1e-3;
  /// Reset codes unused during an epoch every this many epochs (0 = never).
  int dead_code_reset_every = 1;
  /// Seed of shuffling, K-Means initialisation and dead-code resets.
  std::uint64_t seed = 0;
  /// Print one progress line per epoch to stderr.
  bool progress = false;
  /// Checkpoint file, written at every epoch end (the shared training loop's: weights, Adam,
  /// early stopping); a run that finds it continues from it. Empty: no checkpoints.
  std::string checkpoint_path;
  /// Device of the training steps (e.g. torch::kCUDA). The codebooks are initialised on the CPU
  /// (faiss), the model is moved to device for training and back to the CPU at the end.
  torch::Device device = torch::kCPU;
};

template <class V>
void visit_fields(RqVaeTrainOptions& o, V&& v) {
  v.field("batch_size", o.batch_size, "items per batch (TIGER: 1024); the first batch initialises the codebooks",
          options::at_least(1));
  v.field("max_epochs", o.max_epochs, "upper bound on epochs", options::at_least(1));
  v.field("learning_rate", o.learning_rate, "Adam learning rate", options::greater_than(0));
  v.field("patience", o.patience, "stop after this many epochs without a relative improvement of min_rel_improvement");
  v.field("min_rel_improvement", o.min_rel_improvement, "relative improvement of the reconstruction loss that counts");
  v.field("dead_code_reset_every", o.dead_code_reset_every, "reset codes unused during an epoch every this many epochs (0: never)");
  v.field("seed", o.seed, "seed of shuffling, K-Means initialisation and dead-code resets");
  v.field("progress", o.progress, "print one progress line per epoch to stderr");
  v.field("checkpoint_path", o.checkpoint_path, "checkpoint written at every epoch end, resumed from when present; empty: none");
  v.field("device", o.device, "device of the training steps; the model ends on the CPU");
}

struct RqVaeTrainReport {
  std::vector<double> reconstruction_loss;  ///< mean per epoch
  std::vector<double> quantization_loss;    ///< mean per epoch
  std::int64_t epochs = 0;
  bool stopped_early = false;
  std::int64_t dead_codes_reset = 0;
  /// Fraction of codes used by the training items at the end, per level.
  std::vector<double> utilization;
  double seconds = 0.0;
  /// options::to_json(*this).
  nlohmann::json to_json() const;
};

template <class V>
void visit_fields(RqVaeTrainReport& o, V&& v) {
  v.field("reconstruction_loss", o.reconstruction_loss, "mean per epoch");
  v.field("quantization_loss", o.quantization_loss, "mean per epoch");
  v.field("epochs", o.epochs, "epochs trained");
  v.field("stopped_early", o.stopped_early, "stopped by patience before max_epochs");
  v.field("dead_codes_reset", o.dead_codes_reset, "codes reset in total");
  v.field("utilization", o.utilization, "fraction of codes used by the training items at the end, per level");
  v.field("seconds", o.seconds, "wall time");
}

inline nlohmann::json RqVaeTrainReport::to_json() const { return options::to_json(*this); }

/// Trains model on n x D float32 CPU embeddings with Adam and early stopping, on the shared training
/// loop (lamia/nn/training_loop.hpp); the model ends on the CPU. Deterministic for fixed
/// options.seed, RqVaeOptions::seed and thread count (on CPU). With checkpoint_path, a run continues
/// from the last epoch end (the report's loss lists then hold this run's epochs).
RqVaeTrainReport train_rq_vae(RqVae& model, const torch::Tensor& embeddings, const RqVaeTrainOptions& options = {});

}  // namespace lamia
