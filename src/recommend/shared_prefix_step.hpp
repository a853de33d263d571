#pragma once
// Internal (not installed): decoding steps for W beams per user that share the user's history.
//
// DecoderImpl::forward(input, &cache) with one cache row per beam copies every user's history
// keys/values W times (KVCache::reorder) and then, at every step and layer, concatenates the whole
// [R*W, H, T + d, Dh] cache with the new key. Here the history's keys/values stay once per user
// ([R, H, T, Dh], never expanded or reordered) and only the generated tokens' keys/values are kept per
// beam, in a preallocated [R*W, H, max_steps, Dh] buffer per layer (reordered by parent, appended in
// place). A step computes, per layer, exactly what DecoderLayerImpl::forward computes for the new
// position (the layer's own q/k/v/out projections, so LoRA adapters apply; pre- or post-LN; the FFN
// through feed_forward), with the attention split in two score blocks: against the user's history keys
// (a batched matmul of the user's W queries [R, H, W, Dh] with its keys [R, H, T, Dh]) and against the
// beam's own generated keys, under one softmax; then the final layer norm, project_out and the LM head
// on the new position only.
//
// Tree mode (exact scoring, step_tree): a level of trie nodes, the same C nodes for every user, is fed
// as C rows per user; each row attends the user's history and its own path (its ancestors' keys and
// values, gathered from the previous level's paths by parent index, plus its own new key). The caller
// keeps the paths of a level only as long as it feeds that level's children, so memory stays bounded
// by the chunk of nodes fed at once.
#include <lamia/nn/decoder.hpp>

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace lamia::detail {

/// The generated tokens' keys and values of some rows: per layer [rows, H, S, Dh] (S tokens per row).
struct GeneratedPaths {
  std::vector<torch::Tensor> keys, values;
  std::int64_t length() const { return keys.empty() ? 0 : keys.front().size(2); }
};

class SharedPrefixDecoder {
 public:
  /// model: in eval mode (no dropout is applied here). history: the cache that
  /// model.forward(histories, &history) filled for R users ([R, H, T, Dh] per layer; the tensors are
  /// shared, not copied). key_mask: [R, T] bool, the history columns a generated token may attend.
  /// beams: W, rows per user (row r * W + w is user r's beam w). max_steps: tokens per beam at most.
  SharedPrefixDecoder(DecoderImpl& model, const KVCache& history, const torch::Tensor& key_mask, std::int64_t beams,
                      std::int64_t max_steps);

  /// Feeds one token per beam and returns the logits at the new position, [R*W, V] in the model's
  /// dtype. parents [R*W] int64: row i continues the generated tokens of row parents[i] of the
  /// previous step (a parent must belong to the same user; ignored at the first step, when no token
  /// was generated yet). tokens [R*W] int64. positions [R*W] int64, 0-based (as DecoderInput's).
  torch::Tensor step(const torch::Tensor& parents, const torch::Tensor& tokens, const torch::Tensor& positions);

  /// Tree mode (independent of step()): feeds one token to each of C nodes for every user and returns
  /// the logits at the new positions, [R*C, V] in the model's dtype (row r * C + c: user r, node c).
  /// parent_paths: the previous level's paths for R*P rows (row r * P + p), or empty at the first
  /// level. parents [C] int64: each node's parent in 0..P-1 (the same for every user; ignored when
  /// parent_paths is empty). tokens [C] int64. positions [R] int64: the new token's position per user.
  /// paths: if not null, receives the new rows' paths (the parent's keys/values then the new ones).
  torch::Tensor step_tree(const GeneratedPaths& parent_paths, const torch::Tensor& parents, const torch::Tensor& tokens,
                          const torch::Tensor& positions, GeneratedPaths* paths);

  /// Tokens generated per beam so far.
  std::int64_t length() const { return length_; }

 private:
  /// The model on one new token per row (W rows per user; tokens and positions [R*W]);
  /// own(layer, k_new, v_new) ([R*W, H, 1, Dh] each) returns the row's own keys and values
  /// [R*W, H, S, Dh], the new ones last. Returns the logits [R*W, V].
  template <class Own>
  torch::Tensor run(const torch::Tensor& tokens, const torch::Tensor& positions, std::int64_t W, Own&& own);

  DecoderImpl& model_;
  std::int64_t users_, beams_, heads_, head_dim_, history_length_, max_steps_, length_ = 0;
  std::vector<torch::Tensor> history_k_, history_v_;  // per layer [R, H, T, Dh]
  std::vector<torch::Tensor> generated_k_, generated_v_;  // per layer [R*W, H, max_steps, Dh]
  torch::Tensor history_masked_;                          // [R, 1, 1, T] bool: true = may NOT attend
};

}  // namespace lamia::detail
