#pragma once
// PaletteEncoder: a decoder LM trained to compress an item's content into L palette vectors
// (paper 4.2.1-4.2.2, DESIGN.md "Palette encoder"). It owns the decoder and the ids of its
// special tokens; forward() runs the dual forward on a PaletteBatch and returns the loss parts
// and the palettes (in the autograd graph), encode() runs pass 1 only.
//
//   auto tokens = add_palette_tokens(*tokenizer, *decoder, /*L=*/4, catalog.attribute_names());
//   PaletteEncoder enc(PaletteEncoderOptions(/*m=*/4, /*r=*/2), decoder, tokens);
//   auto out = enc(collate_samples(samples, tokens));   // out.loss.backward()
#include <lamia/core/options.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/palette/attention_mask.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/losses.hpp>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <utility>
#include <string>
#include <vector>

namespace lamia {

class Tokenizer;

/// Largest palette size the encoder accepts.
inline constexpr std::int64_t kMaxPaletteSize = 16;

/// Which dual-forward implementation forward() runs.
enum class PalettePath {
  /// Pass 1 on [content; LaP] once per distinct item, pass 2 on [LdP; task] per sample.
  kFast,
  /// Both passes on the whole four-block sequence under the hierarchical mask (the definition).
  kReference,
};
const char* palette_path_name(PalettePath path);
/// The names of palette_path_name, for JSON and Python (lamia/core/options.hpp).
constexpr auto enum_names(PalettePath) {
  return std::array{std::pair{PalettePath::kFast, "fast"}, std::pair{PalettePath::kReference, "reference"}};
}

/// Options of the palette encoder; defaults are the paper's.
struct PaletteEncoderOptions {
  /// m attributes (one task each), of which the first r form the content block.
  PaletteEncoderOptions(std::int64_t num_attributes, std::int64_t num_content_attributes)
      : num_attributes_(num_attributes), num_content_attributes_(num_content_attributes) {}
  /// m: number of attributes = number of tasks (>= 1).
  TORCH_ARG(std::int64_t, num_attributes);
  /// r: attributes in the content block (1 <= r <= m); tasks i > r are predictions.
  TORCH_ARG(std::int64_t, num_content_attributes);
  /// L: palette vectors per item (1 .. 16, default 4).
  TORCH_ARG(std::int64_t, palette_size) = 4;
  /// Token budget of each `name: value` piece of the content block.
  TORCH_ARG(std::int64_t, attribute_token_budget) = 64;
  /// Token budget of an answer (eos not counted).
  TORCH_ARG(std::int64_t, answer_token_budget) = 32;
  /// Loss weights, margins, reduction and the contrastive ablation switch.
  TORCH_ARG(PaletteLossOptions, losses) = {};
  /// The path forward(batch) runs.
  TORCH_ARG(PalettePath, path) = PalettePath::kFast;
  /// Which LdP vectors each task reads: all (the paper) or LdP_(i mod L) for task i.
  TORCH_ARG(TaskRouting, task_routing) = TaskRouting::kAll;

 public:
  /// The block-layout options these imply.
  BlockLayoutOptions layout() const;
  /// Throws ValueError on an option out of range.
  void check() const;
};

/// The fields of PaletteEncoderOptions (JSON, Python). m and r are required by the constructor;
/// the default object (options::Defaults) has 0 for both, which the pipeline reads as "the catalog's".
template <class V>
void visit_fields(PaletteEncoderOptions& o, V&& v) {
  v.field("num_attributes", o.num_attributes(), "m: attributes = tasks (required)", options::at_least(0));
  v.field("num_content_attributes", o.num_content_attributes(), "r: attributes in the content block (1 <= r <= m)",
          options::at_least(0));
  v.field("palette_size", o.palette_size(), "L: palette vectors per item", options::between(1, kMaxPaletteSize));
  v.field("attribute_token_budget", o.attribute_token_budget(), "token budget of each `name: value` piece of the content",
          options::at_least(1));
  v.field("answer_token_budget", o.answer_token_budget(), "token budget of an answer (eos not counted)",
          options::at_least(1));
  v.field("losses", o.losses(), "loss weights, margins, reduction and the contrastive ablation switch");
  v.field("path", o.path(), "the dual-forward implementation: fast (pass 1 once per item) or reference");
  v.field("task_routing", o.task_routing(),
          "LdP vectors a task reads: all (paper) or one_position (task i reads only LdP_(i mod L); positive control)");
}
namespace options {
template <>
struct Defaults<PaletteEncoderOptions> {
  static PaletteEncoderOptions make() { return PaletteEncoderOptions(0, 0); }
};
}  // namespace options

/// What forward() returns. Losses are 0-d tensors in the graph.
struct PaletteEncoderOutput {
  torch::Tensor loss;             ///< L_gen + gamma (selected contrastive terms)
  torch::Tensor generation_loss;  ///< L_gen
  torch::Tensor intra_loss;       ///< L_intra (always computed, enters loss per options)
  torch::Tensor inter_loss;       ///< L_inter
  torch::Tensor decorrelation_loss;  ///< cross-correlation penalty (always computed, weighted per options)
  torch::Tensor palettes;         ///< [U, L, E], one row per distinct item (batch.items order)
  std::int64_t correct_tokens = 0;  ///< teacher-forced argmax hits on labelled tokens
  std::int64_t label_tokens = 0;    ///< labelled tokens (answer + eos)
};

/// Adds the special tokens <LaP_1>..<LaP_L>, <LdP_1>..<LdP_L> and one <task_NAME> per attribute to
/// the tokenizer, grows the decoder's embeddings to the tokenizer's vocabulary, and returns their
/// ids with eos / pad / bos (bos only when the tokenizer prepends one). Throws ValueError when L
/// is outside 1..16 or the tokenizer has no eos.
PaletteTokens add_palette_tokens(Tokenizer& tokenizer, DecoderImpl& decoder, std::int64_t palette_size,
                                 const std::vector<std::string>& attribute_names);

class PaletteEncoderImpl : public torch::nn::Cloneable<PaletteEncoderImpl> {
 public:
  /// decoder: the backbone (pretrained or fresh, possibly with LoRA); tokens: from
  /// add_palette_tokens. Throws ValueError when tokens and options disagree (L, m) or an id is
  /// outside the decoder's vocabulary.
  PaletteEncoderImpl(PaletteEncoderOptions options, Decoder decoder, PaletteTokens tokens);

  /// The encoder has no parameters of its own (the decoder's are set when it is built or loaded).
  void reset() override;
  /// A deep copy: a new decoder of the same options (and LoRA adapters) with copies of every
  /// parameter and buffer, the same tokens and options, on device when given.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<torch::Device>& device = c10::nullopt) const override;

  /// Dual forward along options.path().
  PaletteEncoderOutput forward(const PaletteBatch& batch);
  /// Dual forward along the given path; the batch needs its full layout for kReference.
  PaletteEncoderOutput forward(const PaletteBatch& batch, PalettePath path);
  /// Pass 1 only: the palettes [U, L, E] of batch.items (in the graph unless under NoGradGuard).
  torch::Tensor encode(const PaletteBatch& batch);

  const PaletteEncoderOptions& options() const noexcept { return options_; }
  PaletteEncoderOptions& options() noexcept { return options_; }
  const PaletteTokens& tokens() const noexcept { return tokens_; }
  /// E: the palette dimension (the decoder's word_embed_proj_dim, or hidden size).
  std::int64_t palette_dim() const;

  Decoder decoder{nullptr};

 private:
  PaletteEncoderOutput finish(const torch::Tensor& hidden, const torch::Tensor& labels, const torch::Tensor& palettes);
  torch::Tensor sample_mask(const PaletteSegment& segment, const PaletteBatch& batch) const;
  PaletteEncoderOptions options_;
  PaletteTokens tokens_;
};
TORCH_MODULE(PaletteEncoder);

}  // namespace lamia
