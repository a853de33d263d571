#pragma once
// Exact full-catalog scoring: the log-probability of every item's full ID for each user, walking
// the trie so that a prefix is fed to the model once for all the items below it.
//
// Per batch of users: one forward pass over the histories fills a history cache (one row per
// user). Then, depth by depth (1..L), every trie node of that depth is fed once per user (its edge
// token, at position history length + depth - 1), attending the user's history and its own path
// (its ancestors' keys and values, kept from the previous depths). Nodes go through the model as
// "tree attention" rows: a row holds nodes_per_row consecutive nodes of one depth for one user; its
// cache is the user's history followed, per ancestor depth, by the run of nodes_per_row nodes that
// holds their ancestors (the ancestors of consecutive nodes are consecutive); the attention mask
// lets each node see the history, its own ancestors and itself. The history is thus copied once per
// row rather than once per node, and attention is a real matrix product. The log-probabilities at
// a node score all its children, so logp(item) = sum over the ID's L+1 tokens, each prefix's term
// computed once. Work per user: sum over depths 1..L of that depth's nodes (<= L n), each
// attending T + depth * nodes_per_row keys (the ones it may not see are masked).
//
// Memory: the trie is cut into groups of first-level subtrees so that the keys and values kept
// between depths cover about max_rows nodes (a first-level subtree wider than that is one group);
// they take batch * group nodes * hidden * layers * 2 floats. One pass holds max_rows / nodes_per_row
// rows of (T + L * nodes_per_row) cache entries (hidden * layers * 2 floats each) and max_rows *
// vocabulary floats of log-probabilities; the scores of a batch, batch * num_nodes floats.
//
// Example:
//   auto exact = lamia::score_all_items(*model, trie, histories);            // [B, num_items]
//   exact.masked_fill_(constraints.banned_items({trie, histories, 0, B}), -INFINITY);
//   double agree = lamia::beam_exact_agreement(beam.items, exact, 10);
#include <lamia/core/options.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/trie.hpp>

#include <torch/types.h>

#include <cstdint>

namespace lamia {

class DecoderImpl;

struct ExactScoringOptions {
  /// (user, trie node) pairs per forward pass (>= 1): bounds memory (see the file comment).
  std::int64_t max_rows = 4096;
  /// Consecutive nodes of one depth fed as one row (>= 1): more amortizes the history's copy and
  /// makes larger matrix products, but each node attends up to L * nodes_per_row masked keys.
  std::int64_t nodes_per_row = 32;
  /// Users whose histories are run together (>= 1); lowered so that users * the widest trie depth
  /// (1..L) stays <= max_rows where possible (at least 1 user).
  std::int64_t batch_size = 64;
};

/// The fields of ExactScoringOptions (JSON, Python).
template <class V>
void visit_fields(ExactScoringOptions& o, V&& v) {
  v.field("max_rows", o.max_rows, "(user, trie node) pairs per forward pass (bounds memory)", options::at_least(1));
  v.field("nodes_per_row", o.nodes_per_row, "consecutive nodes of one depth fed as one row", options::at_least(1));
  v.field("batch_size", o.batch_size, "users whose histories are run together", options::at_least(1));
}

/// [B, num_items] float32 on the trie's device: log p(item's L+1 tokens | history) for every
/// item and user (log_softmax over the full vocabulary at each step, summed). model: as for
/// beam_search (vocabulary and device of the trie, else ValueError naming both; eval mode, no
/// gradient, its mode restored).
torch::Tensor score_all_items(DecoderImpl& model, const DeviceTrie& trie, const EncodedHistories& histories,
                              const ExactScoringOptions& options = {});

/// The share of users (0..1) whose beam-search top-K set (the first K entries of beam_items
/// [B, >= K] int64, -1 ignored) equals the exact top-K set (the K best of exact_scores
/// [B, num_items], -inf entries, e.g. banned items, never counted). Both sides hold fewer than K
/// items when fewer than K have a finite exact score. ValueError for mismatched shapes or
/// K < 1 or K > beam_items.size(1).
double beam_exact_agreement(const torch::Tensor& beam_items, const torch::Tensor& exact_scores, std::int64_t K);

}  // namespace lamia
