#pragma once
// Internals shared by beam_search.cpp and exact_scoring.cpp (not installed).
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/trie.hpp>

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdint>

namespace lamia::detail {

/// Puts a module in eval mode for a scope and restores its mode afterwards.
class EvalGuard {
 public:
  explicit EvalGuard(DecoderImpl& model) : model_(model), was_training_(model.is_training()) { model_.eval(); }
  ~EvalGuard() { model_.train(was_training_); }
  EvalGuard(const EvalGuard&) = delete;
  EvalGuard& operator=(const EvalGuard&) = delete;

 private:
  DecoderImpl& model_;
  bool was_training_;
};

inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

/// Runs the model and returns float32 log-probabilities at each row's last position, counting
/// calls and (when profiling) the seconds spent in the forward pass and the LM head.
struct ForwardTimer {
  DecoderImpl& model;
  bool profile = false;
  std::int64_t* calls = nullptr;
  double* seconds = nullptr;

  /// float32 log_softmax of the logits that `logits()` returns, timing and counting the call.
  template <class F>
  torch::Tensor log_probs(F&& logits) {
    using Clock = std::chrono::steady_clock;
    if (profile) synchronize(model.device());
    const auto t0 = Clock::now();
    auto out = logits();
    if (profile) {
      synchronize(model.device());
      if (seconds) *seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    if (calls) ++*calls;
    return torch::log_softmax(out.to(torch::kFloat), -1);
  }

  torch::Tensor last_log_probs(DecoderInput input, KVCache* cache) {
    return log_probs([&] {
      input.compute_logits = false;
      auto out = model.forward(input, cache);
      return model.lm_logits(out.last_hidden_state.select(1, -1));
    });
  }
};

/// ValueError unless histories is a well-formed encode_histories batch for trie's vocabulary.
inline void check_histories(const EncodedHistories& h, const DeviceTrie& trie, const char* what) {
  if (!h.tokens.defined() || h.tokens.dim() != 2 || h.tokens.scalar_type() != torch::kLong) {
    throw ValueError(fmt::format("{}: histories.tokens must be [B, T] int64 (from encode_histories)", what));
  }
  const auto B = h.tokens.size(0), T = h.tokens.size(1);
  if (!h.key_mask.defined() || h.key_mask.sizes() != h.tokens.sizes() || h.key_mask.scalar_type() != torch::kBool ||
      !h.position_ids.defined() || h.position_ids.sizes() != h.tokens.sizes() || !h.lengths.defined() ||
      h.lengths.dim() != 1 || h.lengths.size(0) != B) {
    throw ValueError(fmt::format(
        "{}: histories must hold tokens, position_ids, key_mask [B, T] and lengths [B] (B = {}, T = {})", what, B, T));
  }
  if (T == 0) throw ValueError(fmt::format("{}: histories have no token (every row needs at least BOS)", what));
  if (h.tokens.numel() > 0) {
    const auto lo = h.tokens.min().item<std::int64_t>(), hi = h.tokens.max().item<std::int64_t>();
    if (lo < 0 || hi >= trie.vocabulary().size()) {
      throw ValueError(fmt::format("{}: history tokens lie in [{}, {}], outside the trie's vocabulary ({})", what, lo,
                                   hi, trie.layout()));
    }
  }
}

}  // namespace lamia::detail
