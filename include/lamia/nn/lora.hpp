#pragma once
// LoRA (Hu et al. 2021) for the decoder's linear layers, PEFT-compatible:
// y = x W^T + b + (alpha / rank) * dropout(x) A^T B^T, with A [rank, in] drawn
// Kaiming-uniform (bound 1/sqrt(in), as PEFT) and B [out, rank] zero, so a fresh
// adapter leaves the model unchanged. Base weights are frozen when applied.
#include <lamia/core/options.hpp>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lamia {

class DecoderImpl;

/// Options of a LoRA adapter.
///   rank: the inner dimension r (> 0). alpha: scale numerator, the update is scaled
///   by alpha / rank (default 16). dropout: applied to the adapter's input in training
///   (default 0). target_modules: which linear layers of every decoder layer get an
///   adapter, among "q", "k", "v", "out", "fc1", "fc2" (the HF names "q_proj", ...
///   are accepted too); default {"q", "v"} as PEFT's default for OPT.
/// Example: apply_lora(*decoder, LoraOptions(8).alpha(16).target_modules({"q", "k", "v", "out"}));
struct LoraOptions {
  /* implicit */ LoraOptions(int64_t rank) : rank_(rank) {}
  TORCH_ARG(int64_t, rank);
  TORCH_ARG(double, alpha) = 16.0;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(std::vector<std::string>, target_modules) = std::vector<std::string>{"q", "v"};
};

/// The fields of LoraOptions (JSON, Python); rank has no default (0 here: no adapters).
template <class V>
void visit_fields(LoraOptions& o, V&& v) {
  v.field("rank", o.rank(), "r, the adapter's inner dimension (required; 0: no adapters)", options::at_least(0));
  v.field("alpha", o.alpha(), "scale numerator: the update is scaled by alpha / rank", options::greater_than(0));
  v.field("dropout", o.dropout(), "dropout on the adapter's input (training only)", options::from_to_excluded(0, 1));
  v.field("target_modules", o.target_modules(),
          "linear layers of every block that get an adapter, among q, k, v, out, fc1, fc2 (HF names too)");
}
namespace options {
template <>
struct Defaults<LoraOptions> {
  static LoraOptions make() { return LoraOptions(0); }
};
}  // namespace options

/// Options of LoraLinear: a linear layer (weight [out, in], optional bias) that can carry an adapter.
struct LoraLinearOptions {
  LoraLinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
};

/// A linear layer y = x W^T + b with an optional LoRA adapter (parameters "lora_A", "lora_B").
/// Parameters are initialised N(0, 0.02) with zero bias (OPT's init).
class LoraLinearImpl : public torch::nn::Cloneable<LoraLinearImpl> {
 public:
  explicit LoraLinearImpl(LoraLinearOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  /// The adapter's term (alpha/rank) dropout(x) A^T B^T alone; undefined without an active adapter
  /// (none, or merged). forward(x) = linear(x, weight, bias) + this.
  torch::Tensor adapter_term(const torch::Tensor& x);

  /// Adds an adapter (A Kaiming-uniform, B zero). Throws ValueError if one is already there.
  void add_adapter(int64_t rank, double alpha, double dropout);
  bool has_adapter() const { return lora_rank_ > 0; }
  bool merged() const { return merged_; }
  /// W += (alpha/rank) B A; the adapter path is then skipped in forward. No-op when merged.
  void merge();
  /// W -= (alpha/rank) B A. No-op when not merged.
  void unmerge();
  double scaling() const { return lora_rank_ > 0 ? lora_alpha_ / double(lora_rank_) : 0.0; }
  int64_t lora_rank() const { return lora_rank_; }
  double lora_alpha() const { return lora_alpha_; }
  double lora_dropout() const { return lora_dropout_; }

  LoraLinearOptions options;
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
  torch::Tensor lora_A;  // [rank, in] or undefined
  torch::Tensor lora_B;  // [out, rank] or undefined

 private:
  int64_t lora_rank_ = 0;
  double lora_alpha_ = 0.0;
  double lora_dropout_ = 0.0;
  bool merged_ = false;
};
TORCH_MODULE(LoraLinear);

/// Adds adapters to the target linear layers of every decoder layer and freezes every other
/// parameter (requires_grad false); the adapters are trainable. Throws ValueError for an unknown
/// target, a rank < 1, or a decoder that already has adapters.
void apply_lora(DecoderImpl& decoder, const LoraOptions& options);
/// The options the decoder's adapters were created with (ValueError if it has none).
LoraOptions lora_options(const DecoderImpl& decoder);
/// Whether apply_lora was called on the decoder.
bool has_lora(const DecoderImpl& decoder);
/// Folds every adapter into its base weight (exact up to float rounding); forward then skips them.
void merge_lora(DecoderImpl& decoder);
/// Undoes merge_lora.
void unmerge_lora(DecoderImpl& decoder);

/// The adapter tensors under PEFT's names, e.g.
/// "base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight" ([rank, in]).
std::map<std::string, torch::Tensor> lora_state_dict(const DecoderImpl& decoder);
/// Writes the adapters alone to a safetensors file (metadata: rank, alpha, dropout, targets).
void save_lora(const DecoderImpl& decoder, const std::filesystem::path& path);
/// Reads adapters written by save_lora (or PEFT's adapter_model.safetensors). If the decoder has
/// no adapters yet they are created from the file's metadata (or from `fallback` when the file has
/// none); every adapter tensor must be present with the expected shape (ValueError naming it).
void load_lora(DecoderImpl& decoder, const std::filesystem::path& path, const LoraOptions* fallback = nullptr);

}  // namespace lamia
