#pragma once
// The decoder language model: OPT (Zhang et al. 2022) exactly as Hugging Face's
// OPTForCausalLM computes it, with an arbitrary per-sample attention mask, input
// embeddings at chosen positions (the palette encoder's second pass), hidden states
// of every layer, a KV cache for incremental decoding and LoRA adapters.
#include <lamia/core/options.hpp>
#include <lamia/nn/lora.hpp>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace lamia {

/// Architecture of an OPT decoder.
///   vocab_size, hidden_size (D), num_layers, num_heads (D % num_heads == 0).
///   ffn_dim: FFN inner size, 0 -> 4 * hidden_size. max_position_embeddings: learned positions
///   (the table has 2 more rows: OPT's offset). word_embed_proj_dim (E): token-embedding size,
///   0 -> hidden_size; when E != D, project_in (E->D) and project_out (D->E) are used (OPT-350M:
///   E = 512, D = 1024). do_layer_norm_before: pre-LN (true) or post-LN (false, OPT-350M, which
///   then has no final layer norm). dropout: on attention output and FFN output (training only);
///   attention_dropout: on attention probabilities. pad_token_id: the embedding row that gets no
///   gradient. tie_word_embeddings: the LM head is the token embedding matrix.
/// Example: Decoder d(DecoderOptions(/*vocab*/ 1000, /*D*/ 64, /*layers*/ 2, /*heads*/ 4).dropout(0));
struct DecoderOptions {
  DecoderOptions(int64_t vocab_size, int64_t hidden_size, int64_t num_layers, int64_t num_heads)
      : vocab_size_(vocab_size), hidden_size_(hidden_size), num_layers_(num_layers), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, vocab_size);
  TORCH_ARG(int64_t, hidden_size);
  TORCH_ARG(int64_t, num_layers);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(int64_t, ffn_dim) = 0;
  TORCH_ARG(int64_t, max_position_embeddings) = 2048;
  TORCH_ARG(int64_t, word_embed_proj_dim) = 0;
  TORCH_ARG(bool, do_layer_norm_before) = true;
  TORCH_ARG(double, dropout) = 0.1;
  TORCH_ARG(double, attention_dropout) = 0.0;
  TORCH_ARG(int64_t, pad_token_id) = 1;
  TORCH_ARG(bool, tie_word_embeddings) = true;

 public:
  /// ffn_dim with 0 resolved.
  int64_t resolved_ffn_dim() const { return ffn_dim_ > 0 ? ffn_dim_ : 4 * hidden_size_; }
  /// word_embed_proj_dim with 0 resolved.
  int64_t resolved_embed_dim() const { return word_embed_proj_dim_ > 0 ? word_embed_proj_dim_ : hidden_size_; }
  /// Throws ValueError naming the first inconsistent field.
  void validate() const;

  /// Reads a Hugging Face OPT config.json. ParseError (file, field) for a missing or wrong field,
  /// ValueError for an architecture we do not implement (model_type != "opt", activation != relu,
  /// enable_bias false, layer_norm_elementwise_affine false, _remove_final_layer_norm true).
  static DecoderOptions from_hf_config(const std::filesystem::path& config_json);
  /// The same, from the JSON text (`source` names it in errors).
  static DecoderOptions from_hf_config_json(const std::string& json, const std::string& source = "config.json");
  /// A Hugging Face OPT config.json (model_type "opt", architectures ["OPTForCausalLM"]).
  std::string to_hf_config_json(const std::string& torch_dtype = "float32") const;
  /// Writes to_hf_config_json() to path atomically.
  void to_hf_config(const std::filesystem::path& config_json, const std::string& torch_dtype = "float32") const;
};

/// The fields of DecoderOptions (JSON, Python). The first four have no default (0 here; validate()
/// and the Decoder refuse 0).
template <class V>
void visit_fields(DecoderOptions& o, V&& v) {
  v.field("vocab_size", o.vocab_size(), "tokens in the vocabulary (required)", options::at_least(0));
  v.field("hidden_size", o.hidden_size(), "D, the width of the blocks (required)", options::at_least(0));
  v.field("num_layers", o.num_layers(), "decoder blocks (required)", options::at_least(0));
  v.field("num_heads", o.num_heads(), "attention heads, dividing hidden_size (required)", options::at_least(0));
  v.field("ffn_dim", o.ffn_dim(), "FFN inner size; 0: 4 * hidden_size", options::at_least(0));
  v.field("max_position_embeddings", o.max_position_embeddings(),
          "learned positions (the table has 2 more rows: OPT's offset)", options::at_least(1));
  v.field("word_embed_proj_dim", o.word_embed_proj_dim(),
          "E, the token-embedding size; 0: hidden_size; E != D adds project_in/out (OPT-350M: 512)",
          options::at_least(0));
  v.field("do_layer_norm_before", o.do_layer_norm_before(),
          "pre-LN (true) or post-LN (false: OPT-350M, which then has no final layer norm)");
  v.field("dropout", o.dropout(), "dropout on attention and FFN outputs (training only)", options::from_to_excluded(0, 1));
  v.field("attention_dropout", o.attention_dropout(), "dropout on attention probabilities",
          options::from_to_excluded(0, 1));
  v.field("pad_token_id", o.pad_token_id(), "the embedding row that gets no gradient", options::at_least(0));
  v.field("tie_word_embeddings", o.tie_word_embeddings(), "the LM head is the token embedding matrix");
}
namespace options {
template <>
struct Defaults<DecoderOptions> {
  static DecoderOptions make() { return DecoderOptions(0, 0, 0, 0); }
};
}  // namespace options

/// The size of a decoder that lamia builds from scratch (the scratch palette encoder, the generative
/// recommender, SASRec): the DecoderOptions a user picks, while the vocabulary, the positions and the
/// padding follow from the task. Each owner derives from it, sets its own defaults in its constructor
/// and lists these fields with visit_transformer_size_fields, so every config section spells them
/// alike (hidden_size, num_layers, num_heads, ffn_dim, dropout).
struct TransformerSize {
  TransformerSize() = default;
  TransformerSize(std::int64_t hidden, std::int64_t layers, std::int64_t heads, double dropout_rate)
      : hidden_size(hidden), num_layers(layers), num_heads(heads), dropout(dropout_rate) {}
  std::int64_t hidden_size = 128;
  std::int64_t num_layers = 2;
  std::int64_t num_heads = 4;
  std::int64_t ffn_dim = 0;  ///< FFN inner size; 0: 4 * hidden_size
  double dropout = 0.1;

  /// ValueError "<owner>: <field> must ... (got ...)" for the first field out of range
  /// (num_heads must divide hidden_size).
  void check_size(const std::string& owner) const;
  /// DecoderOptions(vocab_size, hidden_size, num_layers, num_heads) with this ffn_dim and dropout.
  DecoderOptions decoder_options(std::int64_t vocab_size) const;
};

/// The fields of TransformerSize, as its owners flatten them into their own field lists;
/// layers_doc is the doc of num_layers ("decoder blocks", "the paper's TRM3L/6L/12L: 3, 6, 12").
template <class V>
void visit_transformer_size_fields(TransformerSize& o, V&& v, const char* layers_doc) {
  v.field("hidden_size", o.hidden_size, "width of the transformer", options::at_least(1));
  v.field("num_layers", o.num_layers, layers_doc, options::at_least(1));
  v.field("num_heads", o.num_heads, "attention heads (must divide hidden_size)", options::at_least(1));
  v.field("ffn_dim", o.ffn_dim, "FFN inner size; 0: 4 * hidden_size", options::at_least(0));
  v.field("dropout", o.dropout, "dropout of the blocks", options::from_to_excluded(0, 1));
}

/// Inputs of one forward pass. Tensors may live anywhere: they are moved to the module's device.
struct DecoderInput {
  torch::Tensor input_ids;       // [B,T] int64, required (defines B,T)
  torch::Tensor position_ids;    // [B,T] int64, 0-based; undefined -> 0..T-1 (past..past+T-1 with a cache). OPT's offset (2) is added inside.
  torch::Tensor attention_mask;  // [B,T,T] bool ([B,T,past+T] with a cache), true = query row may attend key column. Undefined -> causal.
                                 // Used INSTEAD of causal when given. A row with no allowed key attends nothing (attention output 0, no NaN).
  torch::Tensor inputs_embeds;   // [B,T,E] float, used where embeds_mask is true in place of the token embedding (position embedding still added)
  torch::Tensor embeds_mask;     // [B,T] bool
  torch::Tensor token_mask;      // [B,T] bool, optional: the real tokens (false = padding). The per-token work (embeddings,
                                 // layer norms, projections, FFN) then runs on the real tokens only and every output is 0
                                 // at the other positions. A real token's row must not attend a padding key. No KV cache.
  torch::Tensor output_mask;     // [B,T] bool, optional, within token_mask (all tokens when that is undefined): the
                                 // positions whose last_hidden_state / logits are used. The last layer then computes
                                 // keys and values for every token but queries, attention output and FFN for these
                                 // only; the final outputs are 0 elsewhere (the hidden_states of earlier layers are not).
  bool output_hidden_states = false;
  bool compute_logits = true;
};

/// Outputs of one forward pass (as Hugging Face's OPTForCausalLM).
struct DecoderOutput {
  torch::Tensor last_hidden_state;           // [B,T,E]: after the final layer norm and project_out, as HF OPTModel returns
  torch::Tensor logits;                      // [B,T,V] or undefined
  std::vector<torch::Tensor> hidden_states;  // num_layers + 1 entries when requested (as HF): the input of every layer
                                             // ([B,T,D]), then last_hidden_state
};

/// Keys and values of every layer for incremental decoding. Filled by forward(input, &cache).
/// For beam search keep one row per beam and call reorder(parent_beam_indices) after each step.
struct KVCache {
  std::vector<torch::Tensor> keys;    // one per layer, [B, num_heads, S, head_dim]
  std::vector<torch::Tensor> values;  // one per layer, [B, num_heads, S, head_dim]
  /// S, the number of cached positions (0 when empty).
  int64_t length() const;
  /// B (0 when empty).
  int64_t batch_size() const;
  bool empty() const { return keys.empty(); }
  void clear();
  /// Keeps rows `indices` ([N] int64, any order, repeats allowed): cache row i becomes old row indices[i].
  void reorder(const torch::Tensor& indices);
};

/// The flat positions of the true entries of mask, in order; count (their number, -1 if not known)
/// spares a CUDA mask nonzero's device synchronisation.
torch::Tensor flat_positions(const torch::Tensor& mask, int64_t count = -1);

/// The real tokens of a [B, T] batch, for the packed forward (DecoderInput::token_mask): the rows of
/// the [N, C] packed tensors are the positions b * T + t where the mask is true, in order.
/// A layer may be asked for the outputs of a subset of the rows only (out_rows, DecoderInput::output_mask).
struct PackedTokens {
  /// token_mask [B, T] bool; num_real, its number of true entries where known (-1: not known), lets
  /// a CUDA mask be packed without a device synchronisation.
  explicit PackedTokens(const torch::Tensor& token_mask, int64_t num_real = -1);
  torch::Tensor index;                            ///< [N] int64 flat positions
  torch::Tensor padding;                          ///< [B * T - N] int64 flat positions of the padding
  int64_t batch = 0, length = 0;
  /// Every real token's query may attend at least one key (set by Decoder::forward from the mask): the
  /// attention can then skip zeroing the probabilities of rows without a key, which only padding has.
  bool real_rows_have_keys = false;
  torch::Tensor out_rows;   ///< [M] int64 rows of the packed tensors whose outputs are needed; undefined: all
  torch::Tensor out_index;  ///< [M] int64 their flat positions (index[out_rows])
  torch::Tensor pack(const torch::Tensor& padded) const;  ///< [B, T, C] -> [N, C]
  /// [K, C] rows at the flat positions `at` (default: index) -> [B, T, C], zeros elsewhere.
  torch::Tensor unpack(const torch::Tensor& packed, const torch::Tensor& at = {}) const;
};

namespace functional {
/// softmax(q k^T, masked) v for q [B,H,T,Dh] (already scaled), k, v [B,H,S,Dh], mask [B,T,S] bool
/// (true = may attend; undefined = all). Masked scores use the dtype's lowest value, softmax runs in
/// float32 for half types, and masked probabilities are set to 0 afterwards, so a row with no
/// allowed key yields zeros (never NaN, forward or backward). dropout_p applies to the probabilities
/// when training. rows_may_be_empty = false promises that the rows of interest each have an allowed
/// key and skips that zeroing (a row without one then gets a uniform distribution, not zeros).
torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double dropout_p = 0.0, bool training = false,
                               bool rows_may_be_empty = true);
/// The same function through at::scaled_dot_product_attention (LibTorch >= 2.1; ValueError before),
/// without dropout: rows with no allowed key give zeros here too. KernelPolicy::fused_attention
/// makes the decoder use it.
torch::Tensor fused_masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& mask);
/// [T, past + T] bool: query i may attend key j iff j <= past + i.
torch::Tensor causal_mask(int64_t length, int64_t past, const torch::Device& device);
}  // namespace functional

/// OPT multi-head self-attention (q_proj, k_proj, v_proj, out_proj; q scaled by head_dim^-0.5).
class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  AttentionImpl(int64_t hidden_size, int64_t num_heads, double attention_dropout);
  void reset() override;
  /// x [B,T,D]; mask [B,T,S] bool or undefined (all keys). With past_k/past_v ([B,H,P,Dh], may be
  /// undefined) the new keys/values are appended and returned through new_k/new_v when non-null.
  /// With `packed`, x and the result are the packed rows [N,D] of the batch's real tokens.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& past_k = {},
                        const torch::Tensor& past_v = {}, torch::Tensor* new_k = nullptr,
                        torch::Tensor* new_v = nullptr, bool causal_hint = false, const PackedTokens* packed = nullptr);
  /// q (scaled by head_dim^-0.5) of the rows q_rows of x (all when undefined), and k and v of every
  /// row side by side: {q [.., D], kv [.., 2D]}, LoRA adapters' terms included. On many rows the
  /// GEMMs run on the weights concatenated (one GEMM when every row needs its q), with the same bits.
  std::array<torch::Tensor, 2> project_qkv(const torch::Tensor& x, const torch::Tensor& q_rows = {});
  int64_t hidden_size, num_heads, head_dim;
  double attention_dropout;
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

/// One OPT decoder layer: self-attention and ReLU FFN, each with residual and pre- or post-LN.
class DecoderLayerImpl : public torch::nn::Cloneable<DecoderLayerImpl> {
 public:
  explicit DecoderLayerImpl(DecoderOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& past_k = {},
                        const torch::Tensor& past_v = {}, torch::Tensor* new_k = nullptr,
                        torch::Tensor* new_v = nullptr, bool causal_hint = false, const PackedTokens* packed = nullptr);
  /// The feed-forward block alone (with its residual and layer norm), for tests.
  torch::Tensor feed_forward(const torch::Tensor& x);
  /// The same on the rows of a packed forward (their dropout drawn as on the padded layout).
  torch::Tensor feed_forward(const torch::Tensor& x, const PackedTokens* packed);
  DecoderOptions options;
  Attention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr};
  LoraLinear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(DecoderLayer);

/// OPT decoder with LM head. Parameter names follow Hugging Face's without the "model.decoder."
/// prefix ("embed_tokens.weight", "layers.0.self_attn.q_proj.weight", ..., "lm_head.weight" when
/// untied). Initialisation as HF: N(0, 0.02) weights, zero biases, the pad row zero.
/// Example:
///   Decoder d(DecoderOptions(1000, 64, 2, 4));
///   DecoderInput in; in.input_ids = torch::randint(1000, {2, 8});
///   auto logits = d->forward(in).logits;  // [2, 8, 1000]
class DecoderImpl : public torch::nn::Cloneable<DecoderImpl> {
 public:
  explicit DecoderImpl(DecoderOptions options);
  void reset() override;
  /// A deep copy. Cloneable's clone replaces the layers inside the ModuleList, so the typed
  /// layer_modules are re-pointed at the cloned layers (else they would be the reset ones).
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<torch::Device>& device = c10::nullopt) const override;
  DecoderOutput forward(const DecoderInput& input);
  /// Incremental forward: attends over cache->length() cached positions plus the T new ones and
  /// appends the new keys/values to *cache (cache may be empty; nullptr = forward(input)).
  DecoderOutput forward(const DecoderInput& input, KVCache* cache);
  torch::Tensor embed_tokens(const torch::Tensor& ids);           // [B,T,E]
  void resize_token_embeddings(int64_t new_vocab_size);             // keeps old rows; new rows ~ N(0, 0.02) seeded by torch's generator; tied head follows
  const DecoderOptions& options() const;
  /// logits for hidden states [.., E].
  torch::Tensor lm_logits(const torch::Tensor& last_hidden_state);
  /// The device and dtype of the parameters.
  torch::Device device() const;
  torch::Dtype dtype() const;

  DecoderOptions options_;
  torch::nn::Embedding embed_tokens_{nullptr};
  torch::nn::Embedding embed_positions{nullptr};
  torch::nn::Linear project_in{nullptr}, project_out{nullptr};  // when E != D
  torch::nn::ModuleList layers{nullptr};
  std::vector<DecoderLayer> layer_modules;
  torch::nn::LayerNorm final_layer_norm{nullptr};  // when do_layer_norm_before
  torch::nn::Linear lm_head{nullptr};              // when not tied
  LoraOptions lora{0};                             // rank 0: no adapters
};
TORCH_MODULE(Decoder);

}  // namespace lamia
