#include "shared_prefix_step.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <utility>

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

template <class Own>
torch::Tensor SharedPrefixDecoder::run(const torch::Tensor& tokens, const torch::Tensor& positions, std::int64_t W,
                                       Own&& own) {
  const auto R = users_, N = users_ * W, H = heads_, Dh = head_dim_, T = history_length_;
  const auto dev = model_.device();
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
    const auto [gk, gv] = own(l, attn.k_proj->forward(a).view({N, H, 1, Dh}), attn.v_proj->forward(a).view({N, H, 1, Dh}));
    const auto S = gk.size(2);  // [N, H, S, Dh]

    // Scores: the user's W queries against its history keys, each row's query against its own keys.
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
  return model_.lm_logits(h.select(1, 0));
}

torch::Tensor SharedPrefixDecoder::step(const torch::Tensor& parents, const torch::Tensor& tokens,
                                        const torch::Tensor& positions) {
  const auto N = users_ * beams_;
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
  auto logits = run(tokens, positions, beams_, [&](std::size_t l, const torch::Tensor& k, const torch::Tensor& v) {
    generated_k_[l].narrow(2, d, 1).copy_(k);
    generated_v_[l].narrow(2, d, 1).copy_(v);
    return std::make_pair(generated_k_[l].narrow(2, 0, S), generated_v_[l].narrow(2, 0, S));
  });
  ++length_;
  return logits;
}

torch::Tensor SharedPrefixDecoder::step_tree(const GeneratedPaths& parent_paths, const torch::Tensor& parents,
                                             const torch::Tensor& tokens, const torch::Tensor& positions,
                                             GeneratedPaths* paths) {
  const auto R = users_, C = tokens.numel();
  const auto dev = model_.device();
  const auto lopts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  TORCH_CHECK_VALUE(C >= 1 && positions.numel() == R, "SharedPrefixDecoder::step_tree: tokens must hold >= 1 value and "
                    "positions ", R, " (one per user), got ", C, " and ", positions.numel());
  const bool first = parent_paths.keys.empty();
  torch::Tensor rows;  // [R*C]: each row's parent row in parent_paths
  if (!first) {
    TORCH_CHECK_VALUE(parent_paths.keys.size() == history_k_.size() && parent_paths.values.size() == history_k_.size() &&
                          parent_paths.keys.front().size(0) % R == 0,
                      "SharedPrefixDecoder::step_tree: parent_paths must hold ", history_k_.size(),
                      " layers of users x parents rows");
    TORCH_CHECK_VALUE(parents.defined() && parents.numel() == C, "SharedPrefixDecoder::step_tree: parents must hold ", C,
                      " values");
    const auto P = parent_paths.keys.front().size(0) / R;
    rows = (torch::arange(R, lopts).unsqueeze(1) * P + parents.reshape({1, C}).to(dev)).reshape({R * C});
  }
  if (paths) {
    paths->keys.assign(history_k_.size(), {});
    paths->values.assign(history_k_.size(), {});
  }
  const auto t = tokens.reshape({1, C}).to(dev).expand({R, C}).reshape({R * C});
  const auto p = positions.reshape({R, 1}).to(dev).expand({R, C}).reshape({R * C});
  return run(t, p, C, [&](std::size_t l, const torch::Tensor& k, const torch::Tensor& v) {
    auto gk = first ? k : torch::cat({parent_paths.keys[l].index_select(0, rows), k}, 2);
    auto gv = first ? v : torch::cat({parent_paths.values[l].index_select(0, rows), v}, 2);
    if (paths) {
      paths->keys[l] = gk;
      paths->values[l] = gv;
    }
    return std::make_pair(gk, gv);
  });
}

}  // namespace lamia::detail
