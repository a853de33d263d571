#include "shared_prefix_step.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace lamia::detail {

SharedPrefixDecoder::SharedPrefixDecoder(DecoderImpl& model, const KVCache& history, const torch::Tensor& key_mask,
                                         std::int64_t beams, std::int64_t max_steps)
    : model_(model), users_(history.batch_size()), beams_(beams), heads_(model.options().num_heads()),
      head_dim_(model.options().hidden_size() / model.options().num_heads()), history_length_(history.length()),
      max_steps_(max_steps) {
  TORCH_CHECK_VALUE(!model.is_training(), "SharedPrefixDecoder: the model must be in eval mode");
  TORCH_CHECK_VALUE(int64_t(history.keys.size()) == model.options().num_layers() &&
                        history.values.size() == history.keys.size(),
                    "SharedPrefixDecoder: the history cache has ", history.keys.size(), " layers, the model ",
                    model.options().num_layers());
  TORCH_CHECK_VALUE(beams >= 1 && max_steps >= 0, "SharedPrefixDecoder: beams must be >= 1 and max_steps >= 0, got ",
                    beams, " and ", max_steps);
  TORCH_CHECK_VALUE(key_mask.dim() == 2 && key_mask.size(0) == users_ && key_mask.size(1) == history_length_ &&
                        key_mask.scalar_type() == torch::kBool,
                    "SharedPrefixDecoder: key_mask must be bool [", users_, ", ", history_length_, "], got ",
                    key_mask.scalar_type(), " ", key_mask.sizes());
  const auto dev = model.device();
  for (std::size_t l = 0; l < history.keys.size(); ++l) {
    history_k_.push_back(history.keys[l]);
    history_v_.push_back(history.values[l]);
    const auto opts = history.keys[l].options();
    generated_k_.push_back(torch::empty({users_ * beams_, heads_, max_steps_, head_dim_}, opts));
    generated_v_.push_back(torch::empty({users_ * beams_, heads_, max_steps_, head_dim_}, opts));
  }
  history_masked_ = key_mask.to(dev).logical_not().view({users_, 1, 1, history_length_});
}

torch::Tensor SharedPrefixDecoder::step(const torch::Tensor& parents, const torch::Tensor& tokens,
                                        const torch::Tensor& positions) {
  const auto R = users_, W = beams_, N = users_ * beams_, H = heads_, Dh = head_dim_, T = history_length_;
  const auto d = length_, S = length_ + 1;
  TORCH_CHECK_VALUE(d < max_steps_, "SharedPrefixDecoder::step: already ", d, " of ", max_steps_, " steps");
  TORCH_CHECK_VALUE(tokens.numel() == N && positions.numel() == N, "SharedPrefixDecoder::step: tokens and positions must "
                    "hold ", N, " values (users x beams), got ", tokens.numel(), " and ", positions.numel());
  const auto dev = model_.device();
  if (d > 0) {
    TORCH_CHECK_VALUE(parents.defined() && parents.numel() == N, "SharedPrefixDecoder::step: parents must hold ", N,
                      " values");
    const auto p = parents.reshape({N}).to(dev);
    for (auto* part : {&generated_k_, &generated_v_}) {
      for (auto& t : *part) {
        auto kept = t.narrow(2, 0, d);
        kept.copy_(kept.index_select(0, p));
      }
    }
  }
  // Embeddings as DecoderImpl::forward: token (project_in when E != D) + learned position (offset 2).
  auto x = torch::embedding(model_.embed_tokens_->weight, tokens.reshape({N, 1}).to(dev), model_.options().pad_token_id());
  auto pos_embeds = torch::embedding(model_.embed_positions->weight, positions.reshape({N, 1}).to(dev) + 2);
  if (model_.project_in) x = model_.project_in->forward(x);
  auto h = x + pos_embeds;  // [N, 1, D]

  const double scaling = 1.0 / std::sqrt(double(Dh));
  for (std::size_t l = 0; l < model_.layer_modules.size(); ++l) {
    auto& layer = *model_.layer_modules[l];
    auto& attn = *layer.self_attn;
    // DecoderLayerImpl::forward for the new position (eval: no dropout).
    const bool pre = layer.options.do_layer_norm_before();
    auto a = pre ? layer.self_attn_layer_norm->forward(h) : h;
    auto q = attn.q_proj->forward(a).view({N, H, Dh}) * scaling;
    generated_k_[l].narrow(2, d, 1).copy_(attn.k_proj->forward(a).view({N, H, 1, Dh}));
    generated_v_[l].narrow(2, d, 1).copy_(attn.v_proj->forward(a).view({N, H, 1, Dh}));
    const auto gk = generated_k_[l].narrow(2, 0, S), gv = generated_v_[l].narrow(2, 0, S);  // [N, H, S, Dh]

    // Scores: the user's W queries against its history keys, each beam's query against its own keys.
    auto s_hist = torch::matmul(q.view({R, W, H, Dh}).permute({0, 2, 1, 3}), history_k_[l].transpose(-1, -2));  // [R,H,W,T]
    auto s_gen = (gk * q.unsqueeze(2)).sum(-1).view({R, W, H, S}).permute({0, 2, 1, 3});                      // [R,H,W,S]
    const bool half = s_hist.scalar_type() == torch::kHalf || s_hist.scalar_type() == torch::kBFloat16;
    if (half) {  // as functional::masked_attention: the softmax in float32
      s_hist = s_hist.to(torch::kFloat);
      s_gen = s_gen.to(torch::kFloat);
    }
    s_hist = s_hist.masked_fill(history_masked_, std::numeric_limits<float>::lowest());
    auto probs = torch::softmax(torch::cat({s_hist, s_gen}, -1), -1);  // [R, H, W, T + S]
    if (half) probs = probs.to(q.scalar_type());
    auto o_hist = torch::matmul(probs.narrow(-1, 0, T), history_v_[l]);  // [R, H, W, Dh]
    auto o_gen = (probs.narrow(-1, T, S).permute({0, 2, 1, 3}).reshape({N, H, S, 1}) * gv).sum(2);  // [N, H, Dh]
    auto o = o_hist.permute({0, 2, 1, 3}).reshape({N, H, Dh}) + o_gen;
    auto r = h + attn.out_proj->forward(o.reshape({N, 1, H * Dh}));
    if (!pre) r = layer.self_attn_layer_norm->forward(r);
    h = layer.feed_forward(r);
  }
  if (model_.final_layer_norm) h = model_.final_layer_norm->forward(h);
  if (model_.project_out) h = model_.project_out->forward(h);
  ++length_;
  return model_.lm_logits(h.select(1, 0));
}

}  // namespace lamia::detail
