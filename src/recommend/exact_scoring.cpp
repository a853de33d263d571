#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/recommend/exact_scoring.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <set>
#include <vector>

#include "decoding_util.hpp"

namespace lamia {

namespace {

/// A run of first-level subtrees: per depth d (1..L+1) the node range [lo[d], hi[d]).
struct SubtreeGroup {
  std::vector<std::int64_t> lo, hi;
};

/// Cuts the first-level subtrees into groups whose widest fed depth (1..L) times users stays
/// <= max_rows (a single subtree may exceed it).
std::vector<SubtreeGroup> subtree_groups(const DeviceTrie& trie, std::int64_t users, std::int64_t max_rows) {
  const auto L1 = trie.id_length();
  auto first = trie.first_child().cpu();
  auto count = trie.num_children().cpu();
  const auto* pf = first.data_ptr<std::int64_t>();
  const auto* pc = count.data_ptr<std::int64_t>();
  std::vector<SubtreeGroup> groups;
  const auto a1 = trie.depth_begin(1), b1 = trie.depth_begin(2);
  // Range of v's descendants at each depth 1..L1: start[d], end[d].
  auto extent = [&](std::int64_t v, std::vector<std::int64_t>& start, std::vector<std::int64_t>& end) {
    start.assign(L1 + 1, 0);
    end.assign(L1 + 1, 0);
    start[1] = v;
    end[1] = v + 1;
    for (std::int64_t d = 1; d < L1; ++d) {
      start[d + 1] = pf[start[d]];
      end[d + 1] = pf[end[d] - 1] + pc[end[d] - 1];
    }
  };
  std::vector<std::int64_t> s, e;
  SubtreeGroup current;
  for (std::int64_t v = a1; v < b1; ++v) {
    extent(v, s, e);
    if (current.lo.empty()) {
      current.lo = s;
      current.hi = e;
      continue;
    }
    std::int64_t widest = 0;
    for (std::int64_t d = 1; d < L1; ++d) widest = std::max(widest, e[d] - current.lo[d]);
    if (widest * users <= max_rows) {
      current.hi = e;
    } else {
      groups.push_back(current);
      current.lo = s;
      current.hi = e;
    }
  }
  if (!current.lo.empty()) groups.push_back(current);
  return groups;
}

}  // namespace

torch::Tensor score_all_items(DecoderImpl& model, const DeviceTrie& trie, const EncodedHistories& histories,
                              const ExactScoringOptions& options) {
  if (options.max_rows < 1 || options.batch_size < 1 || options.nodes_per_row < 1) {
    throw ValueError(fmt::format("score_all_items: max_rows, batch_size and nodes_per_row must be >= 1, got {}, {} "
                                 "and {}",
                                 options.max_rows, options.batch_size, options.nodes_per_row));
  }
  trie.check_model(model.options().vocab_size(), model.device(), "score_all_items");
  detail::check_histories(histories, trie, "score_all_items");
  const auto dev = trie.device();
  const auto B = histories.tokens.size(0);
  const auto N = trie.num_nodes(), n = trie.num_items();
  const auto L1 = trie.id_length();
  const auto G = options.nodes_per_row;
  const auto fopts = torch::TensorOptions().dtype(torch::kFloat).device(dev);
  const auto lopts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto out = torch::empty({B, n}, fopts);
  if (B == 0 || n == 0) return out;

  std::int64_t widest = 1;
  for (std::int64_t d = 1; d < L1; ++d) widest = std::max(widest, trie.depth_size(d));
  const auto users = std::min(options.batch_size, std::max<std::int64_t>(1, options.max_rows / widest));
  const auto groups = subtree_groups(trie, users, options.max_rows);
  const auto rows_per_pass = std::max<std::int64_t>(1, options.max_rows / G);

  detail::EvalGuard eval(model);
  torch::NoGradGuard no_grad;
  detail::ForwardTimer timer{model, false, nullptr, nullptr};
  const auto& edge = trie.edge_token();
  const auto& parent = trie.parent();
  const auto slot = torch::arange(G, lopts);
  const auto eye = torch::eye(G, torch::TensorOptions().dtype(torch::kBool).device(dev));

  for (std::int64_t u0 = 0; u0 < B; u0 += users) {
    const auto U = std::min(users, B - u0);
    auto keys = histories.key_mask.narrow(0, u0, U).to(dev);
    auto len = histories.lengths.narrow(0, u0, U).to(dev);
    const auto T = keys.size(1);
    KVCache history;
    DecoderInput in;
    in.input_ids = histories.tokens.narrow(0, u0, U).to(dev);
    in.position_ids = histories.position_ids.narrow(0, u0, U).to(dev);
    in.attention_mask = causal_padded_mask(keys);
    auto logp0 = timer.last_log_probs(in, &history);  // [U, V]
    const auto layers = history.keys.size();

    // Summed log-probability of every node's prefix, per user; column N takes the padding slots.
    auto node_lp = torch::zeros({U, N + 1}, fopts);
    {
      const auto a = trie.depth_begin(1), m = trie.depth_size(1);
      node_lp.narrow(1, a, m).copy_(logp0.gather(1, edge.narrow(0, a, m).unsqueeze(0).expand({U, m})));
    }
    auto flat_lp = node_lp.view({-1});

    for (const auto& g : groups) {
      // The keys and values of the group's nodes at each fed depth, per user:
      // [U * n_d + 1, H, Dh] per layer (row u * n_d + (node - lo_d); the last row takes padding).
      std::vector<std::vector<torch::Tensor>> store_k(static_cast<std::size_t>(L1)), store_v(static_cast<std::size_t>(L1));
      for (std::int64_t d = 1; d < L1; ++d) {
        const auto lo = g.lo[d], nd = g.hi[d] - g.lo[d];
        const auto chunks = (nd + G - 1) / G;
        const auto rows = U * chunks;
        const bool keep = d + 1 < L1;
        for (std::int64_t r0 = 0; r0 < rows; r0 += rows_per_pass) {
          const auto R = std::min(rows_per_pass, rows - r0);
          auto ridx = torch::arange(r0, r0 + R, lopts);
          auto u = ridx.div(chunks, "floor");                                  // [R]
          auto local = (ridx.remainder(chunks) * G).unsqueeze(1) + slot.unsqueeze(0);  // [R, G]
          auto valid = local < nd;
          auto node = lo + torch::where(valid, local, torch::zeros_like(local));       // [R, G]
          // Row cache: the user's history, then per ancestor depth d' the run of G nodes that starts
          // at the first node's ancestor (the ancestors of G consecutive nodes are consecutive).
          std::vector<torch::Tensor> ks(layers), vs(layers);
          for (std::size_t l = 0; l < layers; ++l) {
            ks[l] = history.keys[l].index_select(0, u);
            vs[l] = history.values[l].index_select(0, u);
          }
          std::vector<torch::Tensor> mask_parts{keys.index_select(0, u).unsqueeze(1).expand({R, G, T})};
          std::vector<torch::Tensor> ancestors(static_cast<std::size_t>(d));  // ancestors[d'] [R, G]
          {
            auto a = node;
            for (std::int64_t dd = d - 1; dd >= 1; --dd) {
              a = parent.index_select(0, a.reshape({-1})).view({R, G});
              ancestors[std::size_t(dd)] = a;
            }
          }
          for (std::int64_t dd = 1; dd < d; ++dd) {
            const auto alo = g.lo[dd], an = g.hi[dd] - g.lo[dd];
            auto entry = ancestors[std::size_t(dd)].select(1, 0).unsqueeze(1) + slot.unsqueeze(0);  // [R, G]
            auto in_range = entry < alo + an;
            auto row = torch::where(in_range, u.unsqueeze(1) * an + (entry - alo), torch::full_like(entry, U * an));
            for (std::size_t l = 0; l < layers; ++l) {
              const auto H = store_k[dd][l].size(1), Dh = store_k[dd][l].size(2);
              ks[l] = torch::cat({ks[l], store_k[dd][l].index_select(0, row.reshape({-1})).view({R, G, H, Dh}).transpose(1, 2)}, 2);
              vs[l] = torch::cat({vs[l], store_v[dd][l].index_select(0, row.reshape({-1})).view({R, G, H, Dh}).transpose(1, 2)}, 2);
            }
            // query i may attend entry j iff entry j is node i's ancestor at depth dd
            mask_parts.push_back(in_range.unsqueeze(1) &
                                 (entry.unsqueeze(1) == ancestors[std::size_t(dd)].unsqueeze(2)));
          }
          mask_parts.push_back(eye.unsqueeze(0).expand({R, G, G}));
          KVCache cache;
          cache.keys = std::move(ks);
          cache.values = std::move(vs);
          const auto past = cache.keys[0].size(2);
          DecoderInput s;
          s.input_ids = edge.index_select(0, node.reshape({-1})).view({R, G});
          s.position_ids = (len.index_select(0, u) + (d - 1)).unsqueeze(1).expand({R, G}).contiguous();
          s.attention_mask = torch::cat(mask_parts, 2);
          s.compute_logits = false;
          auto o = model.forward(s, &cache);
          auto logp = torch::log_softmax(model.lm_logits(o.last_hidden_state).to(torch::kFloat), -1)
                          .view({R * G, -1});  // [R*G, V]
          if (keep) {
            auto target = torch::where(valid, u.unsqueeze(1) * nd + (node - lo), torch::full_like(node, U * nd));
            for (std::size_t l = 0; l < layers; ++l) {
              auto k_new = cache.keys[l].narrow(2, past, G).transpose(1, 2);  // [R, G, H, Dh]
              auto v_new = cache.values[l].narrow(2, past, G).transpose(1, 2);
              if (store_k[d].size() < layers) {
                store_k[d].resize(layers);
                store_v[d].resize(layers);
              }
              if (!store_k[d][l].defined()) {
                store_k[d][l] = torch::zeros({U * nd + 1, k_new.size(2), k_new.size(3)}, k_new.options());
                store_v[d][l] = torch::zeros({U * nd + 1, v_new.size(2), v_new.size(3)}, v_new.options());
              }
              store_k[d][l].index_put_({target.reshape({-1})}, k_new.reshape({R * G, k_new.size(2), k_new.size(3)}));
              store_v[d][l].index_put_({target.reshape({-1})}, v_new.reshape({R * G, v_new.size(2), v_new.size(3)}));
            }
          }
          // Every child of these nodes: its prefix = the node's + logp[child's token].
          auto flat_node = node.reshape({-1});
          auto uu = u.unsqueeze(1).expand({R, G}).reshape({-1});
          auto ch = trie.children(flat_node, d);  // [R*G, C]
          auto base = (uu * (N + 1)).unsqueeze(1);
          auto lp = logp.gather(1, edge.index_select(0, ch.nodes.reshape({-1})).view_as(ch.nodes)) +
                    flat_lp.index_select(0, uu * (N + 1) + flat_node).unsqueeze(1);
          auto target = torch::where(ch.valid & valid.reshape({-1, 1}), base + ch.nodes, base + N);
          flat_lp.index_put_({target.reshape({-1})}, lp.reshape({-1}));
        }
      }
    }
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
