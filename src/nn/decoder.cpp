#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/kernel_policy.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <optional>

namespace lamia {
namespace F = torch::nn::functional;

namespace {
std::string shape_str(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}
}  // namespace

// ---------------------------------------------------------------- options

void DecoderOptions::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v <= 0) throw ValueError(fmt::format("DecoderOptions: {} must be > 0, got {}", name, v));
  };
  positive("vocab_size", vocab_size_);
  positive("hidden_size", hidden_size_);
  positive("num_layers", num_layers_);
  positive("num_heads", num_heads_);
  positive("max_position_embeddings", max_position_embeddings_);
  // Sizes a config.json may claim: each below 2^31, so that no tensor's element count (a product of
  // two) nor the position table's max_position_embeddings + 2 overflows int64.
  constexpr int64_t kMaxSize = (int64_t(1) << 31) - 1;
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"vocab_size", vocab_size_}, {"hidden_size", hidden_size_},
                                {"num_layers", num_layers_}, {"num_heads", num_heads_}, {"ffn_dim", ffn_dim_},
                                {"max_position_embeddings", max_position_embeddings_},
                                {"word_embed_proj_dim", word_embed_proj_dim_}}) {
    if (v > kMaxSize) throw ValueError(fmt::format("DecoderOptions: {} must be < 2^31, got {}", name, v));
  }
  if (hidden_size_ % num_heads_ != 0)
    throw ValueError(fmt::format("DecoderOptions: hidden_size ({}) must be divisible by num_heads ({})", hidden_size_,
                                 num_heads_));
  if (ffn_dim_ < 0) throw ValueError(fmt::format("DecoderOptions: ffn_dim must be >= 0, got {}", ffn_dim_));
  if (word_embed_proj_dim_ < 0)
    throw ValueError(fmt::format("DecoderOptions: word_embed_proj_dim must be >= 0, got {}", word_embed_proj_dim_));
  if (!(dropout_ >= 0 && dropout_ < 1))
    throw ValueError(fmt::format("DecoderOptions: dropout must be in [0, 1), got {}", dropout_));
  if (!(attention_dropout_ >= 0 && attention_dropout_ < 1))
    throw ValueError(fmt::format("DecoderOptions: attention_dropout must be in [0, 1), got {}", attention_dropout_));
  if (pad_token_id_ >= vocab_size_)
    throw ValueError(
        fmt::format("DecoderOptions: pad_token_id ({}) must be < vocab_size ({})", pad_token_id_, vocab_size_));
}

void TransformerSize::check_size(const std::string& owner) const {
  auto fail = [&](const char* field, const std::string& rule, const std::string& got) {
    throw ValueError(fmt::format("{}: {} {} (got {})", owner, field, rule, got));
  };
  if (hidden_size < 1) fail("hidden_size", "must be >= 1", std::to_string(hidden_size));
  if (num_layers < 1) fail("num_layers", "must be >= 1", std::to_string(num_layers));
  if (num_heads < 1 || hidden_size % num_heads != 0)
    fail("num_heads", fmt::format("must divide hidden_size {}", hidden_size), std::to_string(num_heads));
  if (ffn_dim < 0) fail("ffn_dim", "must be >= 0", std::to_string(ffn_dim));
  if (!(dropout >= 0 && dropout < 1)) fail("dropout", "must be in [0, 1)", fmt::format("{}", dropout));
}

DecoderOptions TransformerSize::decoder_options(std::int64_t vocab_size) const {
  return DecoderOptions(vocab_size, hidden_size, num_layers, num_heads).ffn_dim(ffn_dim).dropout(dropout);
}

DecoderOptions DecoderOptions::from_hf_config_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ParseError({source, 0, ""}, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ParseError({source, 0, ""}, "expected a JSON object");
  auto get_int = [&](const char* key, bool required, int64_t fallback) -> int64_t {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) throw ParseError({source, 0, key}, "missing (required for OPT)");
      return fallback;
    }
    if (!it->is_number_integer()) throw ParseError({source, 0, key}, "expected an integer, got " + it->dump());
    return it->get<int64_t>();
  };
  auto get_bool = [&](const char* key, bool fallback) -> bool {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw ParseError({source, 0, key}, "expected true or false, got " + it->dump());
    return it->get<bool>();
  };
  auto get_double = [&](const char* key, double fallback) -> double {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw ParseError({source, 0, key}, "expected a number, got " + it->dump());
    return it->get<double>();
  };
  if (j.contains("model_type") && j["model_type"] != "opt")
    throw ValueError(fmt::format("{}: model_type {} is not supported (only \"opt\")", source, j["model_type"].dump()));
  if (j.contains("activation_function") && j["activation_function"] != "relu")
    throw ValueError(fmt::format("{}: activation_function {} is not supported (only \"relu\")", source,
                                 j["activation_function"].dump()));
  if (!get_bool("enable_bias", true)) throw ValueError(source + ": enable_bias false is not supported");
  if (!get_bool("layer_norm_elementwise_affine", true))
    throw ValueError(source + ": layer_norm_elementwise_affine false is not supported");
  if (get_bool("_remove_final_layer_norm", false))
    throw ValueError(source + ": _remove_final_layer_norm true is not supported");
  const auto vocab_size = get_int("vocab_size", true, 0);  // in order: the first missing field is reported
  const auto hidden_size = get_int("hidden_size", true, 0);
  const auto num_layers = get_int("num_hidden_layers", true, 0);
  const auto num_heads = get_int("num_attention_heads", true, 0);
  DecoderOptions o(vocab_size, hidden_size, num_layers, num_heads);
  o.ffn_dim(get_int("ffn_dim", false, 0));
  o.max_position_embeddings(get_int("max_position_embeddings", false, 2048));
  o.word_embed_proj_dim(get_int("word_embed_proj_dim", false, 0));
  o.do_layer_norm_before(get_bool("do_layer_norm_before", true));
  o.dropout(get_double("dropout", 0.1));
  o.attention_dropout(get_double("attention_dropout", 0.0));
  o.pad_token_id(get_int("pad_token_id", false, 1));
  o.tie_word_embeddings(get_bool("tie_word_embeddings", true));
  try {
    o.validate();
  } catch (const ValueError& e) {
    throw ValueError(source + ": " + e.what());
  }
  return o;
}

DecoderOptions DecoderOptions::from_hf_config(const std::filesystem::path& config_json) {
  return from_hf_config_json(read_file(config_json), config_json.string());
}

std::string DecoderOptions::to_hf_config_json(const std::string& torch_dtype) const {
  nlohmann::ordered_json j;
  j["architectures"] = {"OPTForCausalLM"};
  j["model_type"] = "opt";
  j["vocab_size"] = vocab_size_;
  j["hidden_size"] = hidden_size_;
  j["num_hidden_layers"] = num_layers_;
  j["num_attention_heads"] = num_heads_;
  j["ffn_dim"] = resolved_ffn_dim();
  j["max_position_embeddings"] = max_position_embeddings_;
  j["word_embed_proj_dim"] = resolved_embed_dim();
  j["do_layer_norm_before"] = do_layer_norm_before_;
  j["dropout"] = dropout_;
  j["attention_dropout"] = attention_dropout_;
  j["activation_dropout"] = 0.0;
  j["activation_function"] = "relu";
  j["enable_bias"] = true;
  j["layer_norm_elementwise_affine"] = true;
  j["layerdrop"] = 0.0;
  j["init_std"] = 0.02;
  j["pad_token_id"] = pad_token_id_;
  j["bos_token_id"] = 2;
  j["eos_token_id"] = 2;
  j["tie_word_embeddings"] = tie_word_embeddings_;
  j["use_cache"] = true;
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

void DecoderOptions::to_hf_config(const std::filesystem::path& config_json, const std::string& torch_dtype) const {
  write_text_atomically(config_json, to_hf_config_json(torch_dtype));
}

// ---------------------------------------------------------------- KV cache

int64_t KVCache::length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
int64_t KVCache::batch_size() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(0); }
void KVCache::clear() {
  keys.clear();
  values.clear();
}
void KVCache::reorder(const torch::Tensor& indices) {
  if (empty()) return;
  TORCH_CHECK_VALUE(indices.dim() == 1, "KVCache::reorder: indices must be 1-D, got shape ", indices.sizes());
  TORCH_CHECK_VALUE(indices.scalar_type() == torch::kLong, "KVCache::reorder: indices must be int64, got ",
                    indices.scalar_type());
  auto idx = indices.to(keys[0].device());
  if (idx.numel() > 0) {
    auto lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    TORCH_CHECK_INDEX(lo >= 0 && hi < batch_size(), "KVCache::reorder: indices must be in [0, ", batch_size(),
                      "), got values in [", lo, ", ", hi, "]");
  }
  for (auto& k : keys) k = k.index_select(0, idx);
  for (auto& v : values) v = v.index_select(0, idx);
}

// ---------------------------------------------------------------- packed tokens

namespace {
// The flat positions of a mask, true ones first, each part in order. With their count known, a CUDA
// mask is cut from this stable sort: nonzero must synchronise with the device to learn its output's size.
bool sort_instead_of_nonzero(const torch::Tensor& flat, int64_t count) { return count >= 0 && flat.is_cuda(); }
torch::Tensor true_positions_first(const torch::Tensor& flat) {
  return torch::argsort(flat.logical_not().to(torch::kUInt8), /*stable=*/true, 0, false);
}
}  // namespace

torch::Tensor flat_positions(const torch::Tensor& mask, int64_t count) {
  auto flat = mask.reshape({-1});
  if (!sort_instead_of_nonzero(flat, count)) return flat.nonzero().squeeze(1);
  return true_positions_first(flat).narrow(0, 0, count);
}

PackedTokens::PackedTokens(const torch::Tensor& token_mask, int64_t num_real)
    : batch(token_mask.size(0)), length(token_mask.size(1)) {
  auto flat = token_mask.reshape({-1});
  if (!sort_instead_of_nonzero(flat, num_real)) {
    index = flat.nonzero().squeeze(1);
    padding = flat.logical_not().nonzero().squeeze(1);
  } else {
    auto order = true_positions_first(flat);
    index = order.narrow(0, 0, num_real);
    padding = order.narrow(0, num_real, flat.size(0) - num_real);
  }
}

torch::Tensor PackedTokens::pack(const torch::Tensor& padded) const {
  return padded.reshape({batch * length, padded.size(-1)}).index_select(0, index);
}

torch::Tensor PackedTokens::unpack(const torch::Tensor& packed, const torch::Tensor& at) const {
  // Written in place into a fresh tensor (an out-of-place index_copy would copy it once more); with
  // every real row given, only the padding rows need their zeros.
  torch::Tensor flat;
  if (at.defined()) {
    flat = packed.new_zeros({batch * length, packed.size(-1)});
  } else {
    flat = packed.new_empty({batch * length, packed.size(-1)});
    flat.index_fill_(0, padding, 0);
  }
  flat.index_copy_(0, at.defined() ? at : index, packed);
  return flat.view({batch, length, packed.size(-1)});
}

// ---------------------------------------------------------------- functional

namespace functional {
torch::Tensor causal_mask(int64_t length, int64_t past, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto q = torch::arange(length, opts).unsqueeze(1) + past;
  auto k = torch::arange(past + length, opts).unsqueeze(0);
  return k <= q;
}

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double dropout_p, bool training, bool rows_may_be_empty) {
  auto scores = torch::matmul(q, k.transpose(-1, -2));  // [B,H,T,S]
  const bool half = scores.scalar_type() == torch::kHalf || scores.scalar_type() == torch::kBFloat16;
  if (half) scores = scores.to(torch::kFloat);
  torch::Tensor hidden;
  if (mask.defined()) {
    hidden = mask.unsqueeze(1).logical_not();  // [B,1,T,S]
    // Added in place (the product's backward does not read its output, and an addition's passes the
    // gradient through): the same bits as a masked_fill with the lowest value, since |score| is far
    // below half an ulp of it, without the fill's copy forward and its masking backward.
    auto lowest = torch::zeros(hidden.sizes(), scores.options()).masked_fill_(hidden, std::numeric_limits<float>::lowest());
    if (at::infer_size(scores.sizes(), lowest.sizes()) == scores.sizes()) scores.add_(lowest);
    else scores = scores + lowest;  // a mask with more batch entries than the scores
  }
  auto probs = torch::softmax(scores, -1);
  if (hidden.defined() && rows_may_be_empty) probs = probs.masked_fill(hidden, 0.0);  // a row with no key: 0, not uniform
  if (half) probs = probs.to(q.scalar_type());
  if (dropout_p > 0 && training) probs = torch::dropout(probs, dropout_p, true);
  return torch::matmul(probs, v);
}

torch::Tensor fused_masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& mask) {
#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
  if (!mask.defined()) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, /*scale=*/1.0);
  auto allowed = mask.unsqueeze(1);  // [B,1,T,S]
  // A row with no allowed key would be NaN in the fused kernels, and its NaN would reach every key's
  // gradient in the backward even where the row's output is dropped (a packed forward's padding). It
  // reads every key instead (no device sync to find out whether there is such a row), and its output
  // is set to 0 afterwards, which also zeroes what flows back into it.
  auto keyless = allowed.logical_not().all(-1, /*keepdim=*/true);  // [B,1,T,1]
  auto out = at::scaled_dot_product_attention(q, k, v, allowed | keyless, 0.0, false, 1.0);
  return out.masked_fill(keyless, 0.0);
#else
  (void)q, (void)k, (void)v, (void)mask;
  throw ValueError("fused_masked_attention needs LibTorch >= 2.1 (scaled_dot_product_attention with a scale); this "
                   "build has LibTorch " TORCH_VERSION);
#endif
}
}  // namespace functional

// ---------------------------------------------------------------- attention

AttentionImpl::AttentionImpl(int64_t hidden_size_, int64_t num_heads_, double attention_dropout_)
    : hidden_size(hidden_size_), num_heads(num_heads_), head_dim(hidden_size_ / num_heads_),
      attention_dropout(attention_dropout_) {
  reset();
}

void AttentionImpl::reset() {
  TORCH_CHECK_VALUE(num_heads > 0 && hidden_size % num_heads == 0, "Attention: hidden_size (", hidden_size,
                    ") must be divisible by num_heads (", num_heads, ")");
  q_proj = register_module("q_proj", LoraLinear(LoraLinearOptions(hidden_size, hidden_size)));
  k_proj = register_module("k_proj", LoraLinear(LoraLinearOptions(hidden_size, hidden_size)));
  v_proj = register_module("v_proj", LoraLinear(LoraLinearOptions(hidden_size, hidden_size)));
  out_proj = register_module("out_proj", LoraLinear(LoraLinearOptions(hidden_size, hidden_size)));
}

namespace {
// q/k/v as one [.., D] x [D, 3D] GEMM needs the three weights concatenated on every call (a 3D x D copy)
// and, under autograd, the split of its gradient. bench/qkv_fusion.py (docs/nn.md, session 14): with
// gradients the fused path lost at every shape tried (x0.53-0.81 from 256 to 4,096 rows, D = 64-1024,
// OpenBLAS on 1 or 2 threads); without them it won for D <= 256 from 256 rows (x1.07-1.51) and not
// reliably at D = 1024. The scaling is applied to q after the GEMM in every path, so fused and separate
// projections give the same bits and the rule moves speed only.
constexpr int64_t kFuseQkvMinRows = 256;
constexpr int64_t kFuseQkvMaxHidden = 256;

bool fuse_qkv(const torch::Tensor& x, int64_t hidden, std::initializer_list<const torch::Tensor*> params) {
  if (hidden > kFuseQkvMaxHidden || x.numel() < kFuseQkvMinRows * hidden) return false;
  for (const auto* p : params)
    if (!p->defined()) return false;  // a projection without bias
  if (!torch::GradMode::is_enabled()) return true;
  if (x.requires_grad()) return false;
  for (const auto* p : params)
    if (p->requires_grad()) return false;
  return true;
}
}  // namespace

std::array<torch::Tensor, 2> AttentionImpl::project_qkv(const torch::Tensor& x, const torch::Tensor& q_rows) {
  const double scaling = 1.0 / std::sqrt(double(head_dim));
  const auto xq = q_rows.defined() ? x.index_select(0, q_rows) : x;
  const auto D = hidden_size;
  const bool fuse = fuse_qkv(x, D, {&q_proj->weight, &k_proj->weight, &v_proj->weight, &q_proj->bias, &k_proj->bias,
                                   &v_proj->bias});
  torch::Tensor q, kv;
  if (fuse && !q_rows.defined()) {
    auto qkv = torch::linear(x, torch::cat({q_proj->weight, k_proj->weight, v_proj->weight}, 0),
                             torch::cat({q_proj->bias, k_proj->bias, v_proj->bias}, 0));
    q = qkv.narrow(-1, 0, D);
    kv = qkv.narrow(-1, D, 2 * D);
  } else {
    q = torch::linear(xq, q_proj->weight, q_proj->bias);
    kv = fuse ? torch::linear(x, torch::cat({k_proj->weight, v_proj->weight}, 0), torch::cat({k_proj->bias, v_proj->bias}, 0))
              : torch::cat({torch::linear(x, k_proj->weight, k_proj->bias), torch::linear(x, v_proj->weight, v_proj->bias)}, -1);
  }
  // LoRA adapters add their terms to the base projections (exactly nothing while B is zero).
  auto dq = q_proj->adapter_term(xq), dk = k_proj->adapter_term(x), dv = v_proj->adapter_term(x);
  if (dq.defined()) q = q + dq;
  if (dk.defined() || dv.defined()) {
    auto k = kv.narrow(-1, 0, D), v = kv.narrow(-1, D, D);
    kv = torch::cat({dk.defined() ? k + dk : k, dv.defined() ? v + dv : v}, -1);
  }
  return {q * scaling, kv};
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& past_k,
                                     const torch::Tensor& past_v, torch::Tensor* new_k, torch::Tensor* new_v,
                                     bool causal_hint, const PackedTokens* packed) {
  TORCH_CHECK_VALUE(!packed || !past_k.defined(), "Attention: a packed forward takes no KV cache");
  const auto B = packed ? packed->batch : x.size(0), T = packed ? packed->length : x.size(1);
  const bool some_rows = packed && packed->out_rows.defined();
  auto [q_in, kv] = project_qkv(x, some_rows ? packed->out_rows : torch::Tensor());
  if (packed) {  // attention runs on the padded [B, T] layout
    q_in = packed->unpack(q_in, some_rows ? packed->out_index : torch::Tensor());
    kv = packed->unpack(kv);
  }
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, num_heads, head_dim}).transpose(1, 2); };
  auto q = heads(q_in), k = heads(kv.narrow(-1, 0, hidden_size)), v = heads(kv.narrow(-1, hidden_size, hidden_size));
  if (past_k.defined()) {
    k = torch::cat({past_k, k}, 2);
    v = torch::cat({past_v, v}, 2);
  }
  if (new_k) *new_k = k;
  if (new_v) *new_v = v;
  const double p = is_training() ? attention_dropout : 0.0;
  torch::Tensor out;
#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
  if (causal_hint && !past_k.defined()) {
    // Pure causal self-attention: the fused kernel (q is already scaled, hence scale 1).
    out = at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true, /*scale=*/1.0);
  }
#endif
  (void)causal_hint;
  if (!out.defined()) {
    // Packed: padding queries are dropped below, so only real rows need a key to be well defined.
    const bool rows_may_be_empty = !packed || !packed->real_rows_have_keys;
    const bool draws_dropout = p > 0 && is_training();  // dropout keeps lamia's own RNG stream
    if (!draws_dropout && kernel_policy().fused_attention) {
      out = functional::fused_masked_attention(q, k, v, mask);
    } else {
      out = functional::masked_attention(q, k, v, mask, p, is_training(), rows_may_be_empty);
    }
  }
  out = out.transpose(1, 2).reshape({B * T, hidden_size});
  if (packed) out = out.index_select(0, some_rows ? packed->out_index : packed->index);
  else out = out.view({B, T, hidden_size});
  return out_proj->forward(out);
}

// ---------------------------------------------------------------- layer

DecoderLayerImpl::DecoderLayerImpl(DecoderOptions options_) : options(std::move(options_)) { reset(); }

void DecoderLayerImpl::reset() {
  const auto D = options.hidden_size(), F_ = options.resolved_ffn_dim();
  self_attn = register_module("self_attn", Attention(D, options.num_heads(), options.attention_dropout()));
  self_attn_layer_norm = register_module("self_attn_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
  fc1 = register_module("fc1", LoraLinear(LoraLinearOptions(D, F_)));
  fc2 = register_module("fc2", LoraLinear(LoraLinearOptions(F_, D)));
  final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
}

namespace {
// Dropout of x, whose rows are the packed rows `packed` stands for (or the padded layout). The noise is
// drawn over the whole padded [B*T, C] layout, as torch's CPU dropout draws it, and then gathered,
// so a packed forward drops exactly what the padded one drops (same RNG stream, same seed).
torch::Tensor dropout_rows(const torch::Tensor& x, double p, bool training, const PackedTokens* packed) {
  if (!training || p == 0) return x;
  if (!packed) return F::dropout(x, F::DropoutFuncOptions().p(p).training(true));
  const auto& rows = packed->out_rows.defined() ? packed->out_index : packed->index;
  auto noise = torch::empty({packed->batch * packed->length, x.size(-1)}, x.options()).bernoulli_(1 - p).div_(1 - p);
  return x * noise.index_select(0, rows);
}
}  // namespace

torch::Tensor DecoderLayerImpl::feed_forward(const torch::Tensor& x) { return feed_forward(x, nullptr); }

torch::Tensor DecoderLayerImpl::feed_forward(const torch::Tensor& x, const PackedTokens* packed) {
  const bool pre = options.do_layer_norm_before();
  auto h = pre ? final_layer_norm->forward(x) : x;
  // In place on fresh outputs whose producers' backward does not read them (addmm, dropout): two
  // [N, ffn] and [N, D] buffers fewer per layer, which on CPU is memory traffic and page faults.
  auto inner = fc1->forward(h);
  h = fc2->forward(inner.relu_());
  h = dropout_rows(h, options.dropout(), is_training(), packed);
  h.add_(x);
  return pre ? h : final_layer_norm->forward(h);
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& past_k,
                                        const torch::Tensor& past_v, torch::Tensor* new_k, torch::Tensor* new_v,
                                        bool causal_hint, const PackedTokens* packed) {
  const bool pre = options.do_layer_norm_before();
  auto h = pre ? self_attn_layer_norm->forward(x) : x;
  h = self_attn->forward(h, mask, past_k, past_v, new_k, new_v, causal_hint, packed);
  h = dropout_rows(h, options.dropout(), is_training(), packed);
  // h is out_proj's (or dropout's) fresh output, for the rows asked for.
  h.add_(packed && packed->out_rows.defined() ? x.index_select(0, packed->out_rows) : x);
  if (!pre) h = self_attn_layer_norm->forward(h);
  return feed_forward(h, packed);
}

// ---------------------------------------------------------------- decoder

DecoderImpl::DecoderImpl(DecoderOptions options) : options_(std::move(options)) { reset(); }

const DecoderOptions& DecoderImpl::options() const { return options_; }

std::shared_ptr<torch::nn::Module> DecoderImpl::clone(const c10::optional<torch::Device>& device) const {
  auto copy = std::dynamic_pointer_cast<DecoderImpl>(torch::nn::Cloneable<DecoderImpl>::clone(device));
  copy->layer_modules.clear();
  for (std::size_t i = 0; i < copy->layers->size(); ++i)
    copy->layer_modules.emplace_back(copy->layers->ptr<DecoderLayerImpl>(i));
  return copy;
}

void DecoderImpl::reset() {
  options_.validate();
  const auto V = options_.vocab_size(), D = options_.hidden_size(), E = options_.resolved_embed_dim();
  embed_tokens_ = register_module("embed_tokens", torch::nn::Embedding(torch::nn::EmbeddingOptions(V, E)));
  embed_positions = register_module(
      "embed_positions", torch::nn::Embedding(torch::nn::EmbeddingOptions(options_.max_position_embeddings() + 2, D)));
  project_in = nullptr;
  project_out = nullptr;
  if (E != D) {
    project_out = register_module("project_out", torch::nn::Linear(torch::nn::LinearOptions(D, E).bias(false)));
    project_in = register_module("project_in", torch::nn::Linear(torch::nn::LinearOptions(E, D).bias(false)));
  }
  layers = register_module("layers", torch::nn::ModuleList());
  layer_modules.clear();
  for (int64_t i = 0; i < options_.num_layers(); ++i) {
    layer_modules.emplace_back(options_);
    layers->push_back(layer_modules.back());
  }
  final_layer_norm = nullptr;
  if (options_.do_layer_norm_before())
    final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
  lm_head = nullptr;
  if (!options_.tie_word_embeddings())
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(E, V).bias(false)));

  // HF's OPTPreTrainedModel._init_weights: N(0, init_std) for Linear and Embedding, zero biases,
  // the padding row zero; LayerNorm weight 1, bias 0 (torch's default).
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    const auto& name = p.key();
    auto& t = p.value();
    const bool is_norm = name.find("layer_norm") != std::string::npos;
    if (is_norm) continue;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0)
      t.zero_();
    else
      t.normal_(0.0, 0.02);
  }
  const auto pad = options_.pad_token_id();
  if (pad >= 0 && pad < V) embed_tokens_->weight[pad].zero_();
  if (lora.rank() > 0) {
    const LoraOptions again = lora;
    lora = LoraOptions(0);
    apply_lora(*this, again);
  }
}

torch::Device DecoderImpl::device() const { return embed_tokens_->weight.device(); }
torch::Dtype DecoderImpl::dtype() const { return embed_tokens_->weight.scalar_type(); }

torch::Tensor DecoderImpl::embed_tokens(const torch::Tensor& ids) {
  TORCH_CHECK_VALUE(ids.scalar_type() == torch::kLong, "Decoder::embed_tokens: ids must be int64, got ",
                    ids.scalar_type());
  return torch::embedding(embed_tokens_->weight, ids.to(device()), options_.pad_token_id());
}

torch::Tensor DecoderImpl::lm_logits(const torch::Tensor& h) {
  if (lm_head) return lm_head->forward(h);
  return torch::matmul(h, embed_tokens_->weight.t());
}

void DecoderImpl::resize_token_embeddings(int64_t new_vocab_size) {
  TORCH_CHECK_VALUE(new_vocab_size > 0, "Decoder::resize_token_embeddings: new_vocab_size must be > 0, got ",
                    new_vocab_size);
  const auto old = options_.vocab_size();
  if (new_vocab_size == old) return;
  torch::NoGradGuard no_grad;
  auto grow = [&](torch::Tensor& w) {
    auto fresh = torch::empty({new_vocab_size, w.size(1)}, w.options().requires_grad(false));
    fresh.normal_(0.0, 0.02);
    const auto keep = std::min(old, new_vocab_size);
    fresh.narrow(0, 0, keep).copy_(w.narrow(0, 0, keep));
    w.set_data(fresh);
  };
  grow(embed_tokens_->weight);
  if (lm_head) grow(lm_head->weight);
  options_.vocab_size(new_vocab_size);
  embed_tokens_->options.num_embeddings(new_vocab_size);
  if (lm_head) lm_head->options.out_features(new_vocab_size);
  if (options_.pad_token_id() >= new_vocab_size) options_.pad_token_id(-1);
}

DecoderOutput DecoderImpl::forward(const DecoderInput& input) { return forward(input, nullptr); }

DecoderOutput DecoderImpl::forward(const DecoderInput& in, KVCache* cache) {
  const auto dev = device();
  const auto E = options_.resolved_embed_dim();
  TORCH_CHECK_VALUE(in.input_ids.defined() && in.input_ids.dim() == 2, "Decoder::forward: input_ids must be [B,T], got ",
                    shape_str(in.input_ids));
  TORCH_CHECK_VALUE(in.input_ids.scalar_type() == torch::kLong, "Decoder::forward: input_ids must be int64, got ",
                    in.input_ids.scalar_type());
  const auto B = in.input_ids.size(0), T = in.input_ids.size(1);
  const int64_t past = cache ? cache->length() : 0;
  if (cache && !cache->empty()) {
    TORCH_CHECK_VALUE(int64_t(cache->keys.size()) == options_.num_layers() && cache->values.size() == cache->keys.size(),
                      "Decoder::forward: cache has ", cache->keys.size(), " layers, the model ", options_.num_layers());
    TORCH_CHECK_VALUE(cache->batch_size() == B, "Decoder::forward: cache batch size ", cache->batch_size(),
                      " != input batch size ", B, " (reorder the cache to the beams first)");
  }
  const auto S = past + T;
  auto ids = in.input_ids.to(dev);
  auto check_mask = [&](const torch::Tensor& m, const char* name) {
    TORCH_CHECK_VALUE(m.sizes() == in.input_ids.sizes() && m.scalar_type() == torch::kBool, "Decoder::forward: ", name,
                      " must be bool [", B, ", ", T, "], got ", m.scalar_type(), " ", shape_str(m));
  };
  if (in.inputs_embeds.defined() || in.embeds_mask.defined()) {
    TORCH_CHECK_VALUE(in.inputs_embeds.defined() && in.embeds_mask.defined(),
                      "Decoder::forward: inputs_embeds and embeds_mask must be given together");
    TORCH_CHECK_VALUE(in.inputs_embeds.dim() == 3 && in.inputs_embeds.size(0) == B && in.inputs_embeds.size(1) == T &&
                          in.inputs_embeds.size(2) == E,
                      "Decoder::forward: inputs_embeds must be [", B, ", ", T, ", ", E, "], got ",
                      shape_str(in.inputs_embeds));
    check_mask(in.embeds_mask, "embeds_mask");
  }

  // Positions (0-based; the table is offset by 2 as OPT's).
  torch::Tensor pos;
  if (in.position_ids.defined()) {
    TORCH_CHECK_VALUE(in.position_ids.sizes() == in.input_ids.sizes() && in.position_ids.scalar_type() == torch::kLong,
                      "Decoder::forward: position_ids must be int64 [", B, ", ", T, "], got ",
                      in.position_ids.scalar_type(), " ", shape_str(in.position_ids));
    pos = in.position_ids.to(dev);
  } else {
    TORCH_CHECK_INDEX(S <= options_.max_position_embeddings(), "Decoder::forward: sequence length ", S,
                      " exceeds max_position_embeddings ", options_.max_position_embeddings());
    pos = (torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(dev)) + past).unsqueeze(0).expand({B, T});
  }

  // Mask: [B,T,S] bool.
  torch::Tensor mask;
  bool causal_hint = false;
  if (in.attention_mask.defined()) {
    TORCH_CHECK_VALUE(in.attention_mask.dim() == 3 && in.attention_mask.size(0) == B && in.attention_mask.size(1) == T &&
                          in.attention_mask.size(2) == S,
                      "Decoder::forward: attention_mask must be [", B, ", ", T, ", ", S, "], got ",
                      shape_str(in.attention_mask));
    TORCH_CHECK_VALUE(in.attention_mask.scalar_type() == torch::kBool, "Decoder::forward: attention_mask must be bool, got ",
                      in.attention_mask.scalar_type());
    mask = in.attention_mask.to(dev);
  } else {
    mask = functional::causal_mask(T, past, dev).unsqueeze(0).expand({B, T, S});
    causal_hint = true;
  }

  // The real tokens and the outputs asked for; packed per KernelPolicy::pack_padding.
  const bool masked = in.token_mask.defined() || in.output_mask.defined();
  const bool pack = masked && kernel_policy().pack_padding;
  torch::Tensor real, wanted;  // [B, T] bool on dev
  if (masked) {
    TORCH_CHECK_VALUE(!cache, "Decoder::forward: token_mask and output_mask cannot be combined with a KV cache");
    if (in.token_mask.defined()) check_mask(in.token_mask, "token_mask");
    if (in.output_mask.defined()) check_mask(in.output_mask, "output_mask");
    real = in.token_mask.defined() ? in.token_mask.to(dev) : torch::ones({B, T}, ids.options().dtype(torch::kBool));
    if (in.output_mask.defined()) wanted = in.output_mask.to(dev);
  }

  // Every check of the inputs' values, and the counts the packing needs, in one device
  // synchronisation (on a GPU each one drains the queue of kernels).
  std::vector<torch::Tensor> facts;
  enum Fact { kPosLo, kPosHi, kOutside, kLeaks, kKeyless, kReal, kWanted };
  std::array<int, 7> at{};
  at.fill(-1);
  auto note = [&](Fact f, const torch::Tensor& t) {
    at[f] = static_cast<int>(facts.size());
    facts.push_back(t.to(torch::kLong).reshape({}));
  };
  if (in.position_ids.defined() && pos.numel() > 0) {
    note(kPosLo, pos.min());
    note(kPosHi, pos.max());
  }
  if (masked) {
    // A padding key's k and v are not computed when packed (zeros): no real query may see one.
    note(kLeaks, (mask & real.unsqueeze(2) & real.logical_not().unsqueeze(1)).any());
    if (wanted.defined()) note(kOutside, (wanted & real.logical_not()).any());
  }
  if (pack) {
    note(kKeyless, (mask.any(-1).logical_not() & real).any());
    if (dev.is_cuda()) {  // the counts that spare the packing nonzero's synchronisations
      note(kReal, real.sum());
      if (wanted.defined()) note(kWanted, wanted.sum());
    }
  }
  std::array<int64_t, 7> value{};
  value.fill(-1);  // not asked for (a count of -1 is "not known")
  if (!facts.empty()) {
    auto host = torch::stack(facts).cpu();
    const auto* v = host.data_ptr<int64_t>();
    for (int f = 0; f < 7; ++f)
      if (at[f] >= 0) value[f] = v[at[f]];
  }
  if (at[kPosLo] >= 0) {
    TORCH_CHECK_INDEX(value[kPosLo] >= 0 && value[kPosHi] < options_.max_position_embeddings(),
                      "Decoder::forward: position_ids must be in [0, ", options_.max_position_embeddings(),
                      "), got values in [", value[kPosLo], ", ", value[kPosHi], "]");
  }
  if (at[kOutside] >= 0) {
    TORCH_CHECK_VALUE(!value[kOutside], "Decoder::forward: output_mask asks for a position outside token_mask");
  }
  if (at[kLeaks] >= 0) {
    TORCH_CHECK_VALUE(!value[kLeaks], "Decoder::forward: the attention_mask lets a token of token_mask "
                      "attend a padding position (false in token_mask); pass no token_mask, or mask those keys");
  }

  // Token embeddings, replaced by inputs_embeds where embeds_mask is set.
  auto x = torch::embedding(embed_tokens_->weight, ids, options_.pad_token_id());
  if (in.inputs_embeds.defined()) {
    auto em = in.embeds_mask.to(dev).unsqueeze(-1);
    x = torch::where(em, in.inputs_embeds.to(dev, x.scalar_type()), x);
  }
  auto pos_embeds = torch::embedding(embed_positions->weight, pos + 2);

  // Padding left out (KernelPolicy::pack_padding): every per-token operation below runs on the
  // [N, D] rows of the real tokens.
  std::optional<PackedTokens> packed, last_layer;
  if (pack) {
    packed.emplace(real, value[kReal]);
    packed->real_rows_have_keys = value[kKeyless] == 0;
    x = packed->pack(x);
    pos_embeds = packed->pack(pos_embeds);
    if (wanted.defined()) {
      last_layer = packed;
      last_layer->out_index = flat_positions(wanted, value[kWanted]);
      auto row_of = real.reshape({-1}).to(torch::kLong).cumsum(0) - 1;  // flat position -> packed row
      last_layer->out_rows = row_of.index_select(0, last_layer->out_index);
    }
  }
  if (project_in) x = project_in->forward(x);
  auto h = x + pos_embeds;

  DecoderOutput out;
  if (in.output_hidden_states) out.hidden_states.reserve(layer_modules.size() + 1);
  std::vector<torch::Tensor> new_keys(layer_modules.size()), new_values(layer_modules.size());
  // Outside the masks the outputs are 0, packed or not.
  auto padded = [&](const torch::Tensor& t) {
    if (packed) return packed->unpack(t);
    return masked ? t.masked_fill(real.logical_not().unsqueeze(-1), 0) : t;
  };
  for (size_t i = 0; i < layer_modules.size(); ++i) {
    if (in.output_hidden_states) out.hidden_states.push_back(padded(h));
    torch::Tensor pk, pv;
    if (cache && !cache->empty()) {
      pk = cache->keys[i];
      pv = cache->values[i];
    }
    const bool last = i + 1 == layer_modules.size();
    const PackedTokens* rows = last && last_layer ? &*last_layer : packed ? &*packed : nullptr;
    h = layer_modules[i]->forward(h, mask, pk, pv, cache ? &new_keys[i] : nullptr, cache ? &new_values[i] : nullptr,
                                  causal_hint, rows);
  }
  if (final_layer_norm) h = final_layer_norm->forward(h);
  if (project_out) h = project_out->forward(h);
  if (packed) h = packed->unpack(h, last_layer ? last_layer->out_index : torch::Tensor());
  else if (masked) h = h.masked_fill((wanted.defined() ? wanted : real).logical_not().unsqueeze(-1), 0);
  if (in.output_hidden_states) out.hidden_states.push_back(h);
  out.last_hidden_state = h;
  if (in.compute_logits) out.logits = lm_logits(h);
  if (cache) {
    cache->keys = std::move(new_keys);
    cache->values = std::move(new_values);
  }
  return out;
}

}  // namespace lamia
