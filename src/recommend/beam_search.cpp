#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/recommend/beam_search.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>

#include "decoding_util.hpp"
#include "shared_prefix_step.hpp"

namespace lamia {

namespace functional {

BeamStep trie_beam_step(const DeviceTrie& trie, const torch::Tensor& nodes, const torch::Tensor& scores,
                        const torch::Tensor& logp, std::int64_t depth, std::int64_t W,
                        const torch::Tensor& allowed_nodes) {
  TORCH_CHECK_VALUE(nodes.dim() == 2 && nodes.scalar_type() == torch::kLong && scores.sizes() == nodes.sizes(),
                    "trie_beam_step: nodes must be [B, Wc] int64 and scores the same shape, got ", nodes.sizes(),
                    " and ", scores.sizes());
  const auto B = nodes.size(0), Wc = nodes.size(1);
  TORCH_CHECK_VALUE(logp.dim() == 2 && logp.size(0) == B * Wc, "trie_beam_step: logp must be [", B * Wc,
                    ", V], got ", logp.sizes());
  TORCH_CHECK_VALUE(depth >= 0 && depth < trie.id_length(), "trie_beam_step: depth must be 0 to ",
                    trie.id_length() - 1, ", got ", depth);
  TORCH_CHECK_VALUE(W >= 1, "trie_beam_step: W must be >= 1, got ", W);
  const auto dev = trie.device();
  const auto ch = trie.children(nodes.reshape({-1}), depth);  // [B*Wc, C]
  const auto C = ch.nodes.size(1);
  auto tokens = trie.edge_token().index_select(0, ch.nodes.reshape({-1})).view({B * Wc, C});
  auto cand = logp.to(dev).gather(1, tokens);
  auto valid = ch.valid;
  if (allowed_nodes.defined()) {
    TORCH_CHECK_VALUE(allowed_nodes.dim() == 2 && allowed_nodes.size(0) == B &&
                          allowed_nodes.size(1) == trie.num_nodes(),
                      "trie_beam_step: allowed_nodes must be [", B, ", ", trie.num_nodes(), "], got ",
                      allowed_nodes.sizes());
    valid = valid & allowed_nodes.gather(1, ch.nodes.view({B, Wc * C})).view({B * Wc, C});
  }
  const auto neg_inf = -std::numeric_limits<float>::infinity();
  auto total = (scores.to(dev, cand.scalar_type()).reshape({B * Wc, 1}) + cand).masked_fill(valid.logical_not(), neg_inf);
  total = total.view({B, Wc * C});
  const auto k = std::min(W, Wc * C);
  auto top = total.topk(k, 1);
  auto best = std::get<0>(top);
  auto idx = std::get<1>(top);
  auto live = best > neg_inf;
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto row0 = (torch::arange(B, opts) * Wc).unsqueeze(1);
  BeamStep step;
  step.scores = best;
  step.nodes = torch::where(live, ch.nodes.view({B, Wc * C}).gather(1, idx), torch::zeros_like(idx));
  step.parents = row0 + idx.div(C, "floor");
  step.tokens =
      torch::where(live, tokens.view({B, Wc * C}).gather(1, idx), torch::full_like(idx, CodeVocabulary::kPad));
  if (k < W) {  // fewer candidates than beams: pad with dead beams
    step.scores = torch::cat({step.scores, torch::full({B, W - k}, neg_inf, best.options())}, 1);
    step.nodes = torch::cat({step.nodes, torch::zeros({B, W - k}, opts)}, 1);
    step.parents = torch::cat({step.parents, row0.expand({B, W - k})}, 1);
    step.tokens = torch::cat({step.tokens, torch::full({B, W - k}, CodeVocabulary::kPad, opts)}, 1);
  }
  return step;
}

}  // namespace functional

BeamSearchResult beam_search(DecoderImpl& model, const DeviceTrie& trie, const EncodedHistories& histories,
                             const BeamSearchOptions& options, const ConstraintSet& constraints) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  if (options.beam_width < 1 || options.top_k < 1 || options.batch_size < 1) {
    throw ValueError(fmt::format("beam_search: beam_width, top_k and batch_size must be >= 1, got {}, {}, {}",
                                 options.beam_width, options.top_k, options.batch_size));
  }
  trie.check_model(model.options().vocab_size(), model.device(), "beam_search");
  detail::check_histories(histories, trie, "beam_search");
  const auto dev = trie.device();
  const auto B = histories.tokens.size(0);
  const auto L1 = trie.id_length();
  const auto K = std::max<std::int64_t>(1, std::min(options.top_k, trie.num_items()));
  const auto W = std::max(options.beam_width, options.top_k);

  detail::EvalGuard eval(model);
  torch::NoGradGuard no_grad;
  BeamSearchResult result;
  detail::ForwardTimer timer{model, options.profile, &result.stats.forward_calls, &result.stats.forward_seconds};

  std::vector<torch::Tensor> all_items, all_scores;
  for (std::int64_t b0 = 0; b0 < B; b0 += options.batch_size) {
    const auto R = std::min(options.batch_size, B - b0);
    const ConstraintContext ctx{trie, histories, b0, b0 + R};
    const auto allowed = constraints.allowed_nodes(ctx);  // throws for a user with nothing allowed
    auto tokens = histories.tokens.narrow(0, b0, R).to(dev);
    auto keys = histories.key_mask.narrow(0, b0, R).to(dev);
    auto pos = histories.position_ids.narrow(0, b0, R).to(dev);
    auto len = histories.lengths.narrow(0, b0, R).to(dev);
    const auto T = tokens.size(1);

    // The histories, once (one row per user).
    KVCache cache;
    DecoderInput in;
    in.input_ids = tokens;
    in.position_ids = pos;
    in.attention_mask = causal_padded_mask(keys);
    auto logp = timer.last_log_probs(in, options.use_cache ? &cache : nullptr);

    auto opts = torch::TensorOptions().dtype(torch::kLong).device(dev);
    auto nodes = torch::zeros({R, 1}, opts);
    auto scores = torch::zeros({R, 1}, torch::TensorOptions().dtype(torch::kFloat).device(dev));
    // Per beam row (b * W + w): its user's positions; without the cache also its history columns
    // and the generated tokens.
    auto len_w = len.repeat_interleave(W, 0);
    std::optional<detail::SharedPrefixDecoder> shared;
    torch::Tensor keys_w, tokens_w, pos_w, generated;
    if (options.use_cache) {
      // A user's beams share its history keys/values (kept once per user); only the generated
      // tokens' keys/values are kept per beam.
      const auto last_position = len.max().item<std::int64_t>() + L1 - 2;
      TORCH_CHECK_INDEX(last_position < model.options().max_position_embeddings(), "beam_search: position ",
                        last_position, " of the last generated token exceeds max_position_embeddings ",
                        model.options().max_position_embeddings());
      shared.emplace(model, cache, keys, W, L1 - 1);
      cache.clear();
    } else {
      keys_w = keys.repeat_interleave(W, 0);
      tokens_w = tokens.repeat_interleave(W, 0);
      pos_w = pos.repeat_interleave(W, 0);
      generated = torch::empty({R, 0}, opts);
    }
    for (std::int64_t depth = 0; depth < L1; ++depth) {
      auto step = functional::trie_beam_step(trie, nodes, scores, logp, depth, W, allowed);
      nodes = step.nodes;
      scores = step.scores;
      if (depth + 1 == L1) break;  // leaves: nothing more to feed
      const auto parents = step.parents.reshape({-1});
      const auto next = step.tokens.reshape({-1, 1});
      if (options.use_cache) {
        logp = timer.log_probs([&] { return shared->step(parents, next, len_w + depth); });
      } else {
        generated = torch::cat({generated.index_select(0, parents), next}, 1);
        DecoderInput s;
        s.input_ids = torch::cat({tokens_w, generated}, 1);
        s.position_ids = torch::cat({pos_w, len_w.unsqueeze(1) + torch::arange(depth + 1, opts).unsqueeze(0)}, 1);
        s.attention_mask = causal_padded_mask(torch::cat({keys_w, torch::ones({R * W, depth + 1}, keys.options())}, 1));
        logp = timer.last_log_probs(s, nullptr);
      }
    }
    auto live = scores > -std::numeric_limits<float>::infinity();
    auto items = torch::where(live, trie.leaf_item().index_select(0, nodes.reshape({-1})).view_as(nodes),
                              torch::full_like(nodes, -1));
    all_items.push_back(items.narrow(1, 0, K).cpu());
    all_scores.push_back(scores.narrow(1, 0, K).cpu());
  }
  if (B == 0) {
    result.items = torch::empty({0, K}, torch::kLong);
    result.scores = torch::empty({0, K}, torch::kFloat);
  } else {
    result.items = torch::cat(all_items, 0);
    result.scores = torch::cat(all_scores, 0);
  }
  result.counts = (result.items >= 0).sum(1);
  if (options.profile) detail::synchronize(dev);
  result.stats.total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace lamia
