#pragma once
// Beam search constrained to real items, batched over users, with the KV cache.
//
// Per batch of users: one forward pass over the left-padded histories (causal_padded_mask,
// position_ids) fills the cache, one row per user; then L+1 selection steps, each feeding one token
// per beam (attention over the history's key_mask, then every generated token; positions continue
// per row). With use_cache a user's W beams share its history keys/values, which are never expanded
// to the beams: a step attends from the W beams' queries to the user's history keys by a batched
// matrix product and to each beam's own generated keys, which alone are kept per beam (reordered to
// the selected parents, appended in place); without it every step is a full forward. A step is
// gather-based, no loop per beam: for beam nodes v [B*W], the children first[v] + arange(C) masked
// by their count (and by the constraints' allowed nodes), their tokens edge_token[child], candidate
// log-probabilities logp.gather(tokens) from log_softmax over the full vocabulary, scores = beam
// score + candidate, top-W over the W*C candidates of each user. After L+1 steps every live beam is
// a leaf, i.e. a distinct real item; its score is the ID's summed log-probability.
//
// Beam width is max(beam_width, top_k). K larger than the catalog is clamped to the catalog (the
// result has min(top_k, num_items) columns); a user with fewer allowed items than that gets fewer
// (items -1, scores -inf at the end of the row; counts says how many). A user with no allowed item
// is a ValueError naming the row.
//
// Example:
//   lamia::DeviceTrie trie(table, vocab, model->device());
//   auto h = lamia::encode_histories(table, vocab, histories);
//   lamia::BeamSearchOptions options;  // beam 20, top 10, cached
//   auto r = lamia::beam_search(*model, trie, h, options, lamia::ConstraintSet().add(lamia::ExcludeHistory{}));
//   // r.items[b] are user b's top items, best first; r.scores[b] their log-probabilities
#include <lamia/core/options.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/ids/trie.hpp>

#include <torch/types.h>

#include <cstdint>

namespace lamia {

class DecoderImpl;

struct BeamSearchOptions {
  /// Beams kept per user (>= 1); the search uses max(beam_width, top_k).
  std::int64_t beam_width = 20;
  /// Items returned per user (>= 1), clamped to the catalog.
  std::int64_t top_k = 10;
  /// Decode with the KV cache; false re-runs the full forward over history + generated tokens at
  /// every step (same items and scores up to rounding; the baseline RecBench's beam mode uses).
  bool use_cache = true;
  /// Users per batch (>= 1). Memory per batch: the cache, batch * W * (T + L+1) * hidden * layers * 2
  /// floats, plus batch * W * vocabulary floats of log-probabilities, plus the constraints'
  /// [batch, num_nodes] (see constraints.hpp).
  std::int64_t batch_size = 64;
  /// Synchronize the device around every model forward and time it (BeamSearchStats).
  bool profile = false;
};

/// The fields of BeamSearchOptions (JSON, Python).
template <class V>
void visit_fields(BeamSearchOptions& o, V&& v) {
  v.field("beam_width", o.beam_width, "beams kept per user; the search uses max(beam_width, top_k)", options::at_least(1));
  v.field("top_k", o.top_k, "items returned per user, clamped to the catalog", options::at_least(1));
  v.field("use_cache", o.use_cache, "decode with the KV cache (false: full forward at every step)");
  v.field("batch_size", o.batch_size, "users per batch (bounds memory)", options::at_least(1));
  v.field("profile", o.profile, "synchronize the device around every forward and time it (stats)");
}

/// What a search did.
struct BeamSearchStats {
  std::int64_t forward_calls = 0;
  /// Seconds inside the model's forward (and LM head); measured only with options.profile.
  double forward_seconds = 0;
  /// Seconds of the whole search (with options.profile: after a final device synchronization).
  double total_seconds = 0;
};

struct BeamSearchResult {
  torch::Tensor items;   ///< [B, K] int64, best first; -1 after a user's last item
  torch::Tensor scores;  ///< [B, K] float32 summed log-probabilities; -inf where items is -1
  torch::Tensor counts;  ///< [B] int64: items found per user (<= K)
  BeamSearchStats stats;
};

/// The top-K distinct real items per user (see the file comment). model: a Decoder whose
/// vocabulary is trie.vocabulary() and which lives on trie.device() (ValueError naming both
/// otherwise); it runs in eval mode without gradients (its mode is restored afterwards).
/// histories: from encode_histories (any device; moved to the model's). Throws ValueError for an
/// option out of range, a history token outside the vocabulary, or a user with no allowed item.
BeamSearchResult beam_search(DecoderImpl& model, const DeviceTrie& trie, const EncodedHistories& histories,
                             const BeamSearchOptions& options = {}, const ConstraintSet& constraints = {});

namespace functional {

/// One selection step of trie-constrained beam search.
struct BeamStep {
  torch::Tensor scores;   ///< [B, W] float, descending per row; -inf for a dead beam
  torch::Tensor nodes;    ///< [B, W] int64: each beam's new trie node (depth + 1); 0 for a dead beam
  torch::Tensor parents;  ///< [B, W] int64: row of its parent in logp (b * Wc + parent beam)
  torch::Tensor tokens;   ///< [B, W] int64: the vocabulary token chosen (kPad for a dead beam)
};

/// From beams at trie depth `depth` (nodes, scores [B, Wc]; score -inf = dead) and their
/// log-probabilities over the vocabulary logp [B*Wc, V], keeps the W best children
/// (score = beam score + logp[token]) among the allowed ones: children of the beam's node, and
/// with allowed_nodes ([B, num_nodes] bool, undefined = all) only those allowed for the user.
BeamStep trie_beam_step(const DeviceTrie& trie, const torch::Tensor& nodes, const torch::Tensor& scores,
                        const torch::Tensor& logp, std::int64_t depth, std::int64_t W,
                        const torch::Tensor& allowed_nodes = {});

}  // namespace functional

}  // namespace lamia
