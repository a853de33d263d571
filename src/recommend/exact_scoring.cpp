#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/recommend/exact_scoring.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <set>
#include <vector>

#include "decoding_util.hpp"
#include "shared_prefix_step.hpp"

namespace lamia {

torch::Tensor score_all_items(DecoderImpl& model, const DeviceTrie& trie, const EncodedHistories& histories,
                              const ExactScoringOptions& options) {
  if (options.max_rows < 1 || options.batch_size < 1) {
    throw ValueError(fmt::format("score_all_items: max_rows and batch_size must be >= 1, got {} and {}",
                                 options.max_rows, options.batch_size));
  }
  trie.check_model(model.options().vocab_size(), model.device(), "score_all_items");
  detail::check_histories(histories, trie, "score_all_items");
  const auto dev = trie.device();
  const auto B = histories.tokens.size(0);
  const auto N = trie.num_nodes(), n = trie.num_items();
  const auto L1 = trie.id_length();  // depths 1..L1; depths 1..L1-1 are fed
  const auto fopts = torch::TensorOptions().dtype(torch::kFloat).device(dev);
  const auto lopts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto out = torch::empty({B, n}, fopts);
  if (B == 0 || n == 0) return out;

  const auto users = std::min(options.batch_size, options.max_rows);
  // Host copies for the chunk ranges: the children of nodes [a, b) are [first[a], first[b-1] + count[b-1]).
  const auto first_child = trie.first_child().cpu(), num_children = trie.num_children().cpu();
  const auto* pf = first_child.data_ptr<std::int64_t>();
  const auto* pc = num_children.data_ptr<std::int64_t>();
  const auto& edge = trie.edge_token();
  const auto& parent = trie.parent();

  detail::EvalGuard eval(model);
  torch::NoGradGuard no_grad;
  detail::ForwardTimer timer{model, false, nullptr, nullptr};

  for (std::int64_t u0 = 0; u0 < B; u0 += users) {
    const auto U = std::min(users, B - u0);
    const auto C = std::max<std::int64_t>(1, options.max_rows / U);  // nodes per pass
    auto keys = histories.key_mask.narrow(0, u0, U).to(dev);
    auto len = histories.lengths.narrow(0, u0, U).to(dev);
    const auto last_position = len.max().item<std::int64_t>() + L1 - 2;
    TORCH_CHECK_INDEX(last_position < model.options().max_position_embeddings(), "score_all_items: position ",
                      last_position, " of the last fed token exceeds max_position_embeddings ",
                      model.options().max_position_embeddings());
    KVCache history;
    DecoderInput in;
    in.input_ids = histories.tokens.narrow(0, u0, U).to(dev);
    in.position_ids = histories.position_ids.narrow(0, u0, U).to(dev);
    in.attention_mask = causal_padded_mask(keys);
    // Log-probabilities at each row's last real token (histories may be padded on either side).
    auto logp0 = timer.log_probs([&] {
      in.compute_logits = false;
      auto hidden = model.forward(in, &history).last_hidden_state;  // [U, T, D]
      auto last = (torch::arange(keys.size(1), lopts).unsqueeze(0) * keys).amax(1);
      return model.lm_logits(hidden.gather(1, last.view({U, 1, 1}).expand({U, 1, hidden.size(2)})).squeeze(1));
    });  // [U, V]
    detail::SharedPrefixDecoder shared(model, history, keys, /*beams*/ 1, /*max_steps*/ 0);
    history.clear();

    // Summed log-probability of every node's prefix, per user.
    auto node_lp = torch::zeros({U, N}, fopts);
    {
      const auto a = trie.depth_begin(1), m = trie.depth_size(1);
      node_lp.narrow(1, a, m).copy_(logp0.gather(1, edge.narrow(0, a, m).unsqueeze(0).expand({U, m})));
    }
    // Feeds the nodes [lo, hi) of depth d in chunks of C, each chunk's children right after it.
    // parent_paths: the paths of the depth d - 1 nodes [parent_lo, ...) (empty at depth 1).
    std::function<void(std::int64_t, std::int64_t, std::int64_t, const detail::GeneratedPaths&, std::int64_t)> feed =
        [&](std::int64_t d, std::int64_t lo, std::int64_t hi, const detail::GeneratedPaths& parent_paths,
            std::int64_t parent_lo) {
          const bool keep = d + 1 < L1;  // the children are fed too
          for (std::int64_t c0 = lo; c0 < hi; c0 += C) {
            const auto c1 = std::min(c0 + C, hi), Cc = c1 - c0;
            auto nodes = torch::arange(c0, c1, lopts);
            detail::GeneratedPaths paths;
            auto logits = shared.step_tree(parent_paths, parent.index_select(0, nodes) - parent_lo,
                                           edge.index_select(0, nodes), len + (d - 1), keep ? &paths : nullptr)
                              .to(torch::kFloat);  // [U*Cc, V]
            const auto V = logits.size(1);
            auto lse = logits.logsumexp(-1).view({U, Cc});
            // The chunk's children [f0, f1): parent's prefix + log-softmax at the child's token.
            const auto f0 = pf[c0], f1 = pf[c1 - 1] + pc[c1 - 1];
            auto children = torch::arange(f0, f1, lopts);
            auto local = parent.index_select(0, children) - c0;  // [K] in 0..Cc-1
            auto at = (local * V + edge.index_select(0, children)).unsqueeze(0).expand({U, f1 - f0});
            auto lp = logits.reshape({U, Cc * V}).gather(1, at) - lse.index_select(1, local) +
                      node_lp.narrow(1, c0, Cc).index_select(1, local);
            node_lp.narrow(1, f0, f1 - f0).copy_(lp);
            if (keep) feed(d + 1, f0, f1, paths, c0);
          }
        };
    feed(1, trie.depth_begin(1), trie.depth_begin(2), detail::GeneratedPaths{}, 0);
    out.narrow(0, u0, U).copy_(node_lp.index_select(1, trie.item_leaf()));
  }
  return out;
}

double beam_exact_agreement(const torch::Tensor& beam_items, const torch::Tensor& exact_scores, std::int64_t K) {
  TORCH_CHECK_VALUE(beam_items.dim() == 2 && exact_scores.dim() == 2 && beam_items.size(0) == exact_scores.size(0),
                    "beam_exact_agreement: beam_items [B, K'] and exact_scores [B, num_items] expected, got ",
                    beam_items.sizes(), " and ", exact_scores.sizes());
  TORCH_CHECK_VALUE(K >= 1 && K <= beam_items.size(1), "beam_exact_agreement: K must be 1 to ", beam_items.size(1),
                    " (the beam's columns), got ", K);
  const auto B = beam_items.size(0);
  if (B == 0) return 0.0;
  const auto Ke = std::min(K, exact_scores.size(1));
  auto beam = beam_items.narrow(1, 0, K).to(torch::kCPU, torch::kLong).contiguous();
  auto top = exact_scores.to(torch::kCPU, torch::kFloat).topk(Ke, 1);
  auto best = std::get<0>(top).contiguous();
  auto idx = std::get<1>(top).contiguous();
  const auto* pb = beam.data_ptr<std::int64_t>();
  const auto* ps = best.data_ptr<float>();
  const auto* pi = idx.data_ptr<std::int64_t>();
  std::int64_t agree = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    std::set<std::int64_t> a, e;
    for (std::int64_t k = 0; k < K; ++k) {
      if (pb[b * K + k] >= 0) a.insert(pb[b * K + k]);
    }
    for (std::int64_t k = 0; k < Ke; ++k) {
      if (ps[b * Ke + k] > -std::numeric_limits<float>::infinity()) e.insert(pi[b * Ke + k]);
    }
    agree += a == e;
  }
  return double(agree) / double(B);
}

}  // namespace lamia
