#pragma once
// Exact full-catalog scoring: the log-probability of every item's full ID for each user, walking
// the trie so that a prefix is fed to the model once for all the items below it.
//
// Per batch of users: one forward pass over the histories fills a history cache (one row per user),
// kept once (detail::SharedPrefixDecoder, as beam search's step). Then the trie is fed level by level:
// a chunk of C consecutive nodes of depth d (the same nodes for every user) goes through the model
// as C rows per user, each fed its edge token at position history length + d - 1 and attending the
// user's history (one batched matrix product per user for its C rows) and its own path (its
// ancestors' keys and values, gathered by parent index from the chunk of depth d - 1 that holds
// them, plus its own). Node scores: depth 1 = log-softmax of the history's last position at the
// node's token; depth d + 1 = the parent's + log-softmax of the parent's logits at the child's
// token. The children of a chunk are a contiguous run of depth d + 1, fed next in chunks of C
// (depth first over chunks), so a chunk's paths are kept only while its children are fed.
// Work per user: every node of depths 1..L fed once, attending T + depth keys.
//
// Memory: a forward pass holds max_rows (user, node) rows (C = max_rows / users nodes per user) and
// their logits (max_rows * vocabulary floats); the paths kept for the chunks being fed take at most
// max_rows * L * (1 + L) / 2 * hidden * layers * 2 values; the history cache users * T * hidden *
// layers * 2; the scores of a batch, users * num_nodes floats.
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
  /// (user, trie node) rows per forward pass (>= 1): the chunk of a trie level fed at once is
  /// max_rows / users nodes (at least 1); bounds memory (see the file comment).
  std::int64_t max_rows = 4096;
  /// Users whose histories are run together (>= 1); lowered to max_rows (at least one node per user
  /// per pass).
  std::int64_t batch_size = 64;
};

/// The fields of ExactScoringOptions (JSON, Python).
template <class V>
void visit_fields(ExactScoringOptions& o, V&& v) {
  v.field("max_rows", o.max_rows, "(user, trie node) rows per forward pass (the level chunk; bounds memory)",
          options::at_least(1));
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
