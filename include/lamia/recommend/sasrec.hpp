#pragma once
// SASRec (Kang & McAuley 2018), the ID-based baseline of the paper's Table 3: a causal transformer
// over item ids that predicts the next item at every position. Built from lamia's OPT blocks
// (learned positions, pre-LN, ReLU FFN, item embeddings tied with the output), so it differs from
// the original only in block details (the original also uses pre-LN-like query normalisation).
// Two losses, because the literature uses both and the choice changes its ranking against
// generative models (DESIGN.md, "Evaluation protocol"):
//   cross_entropy: full softmax over every item (RecBole's default);
//   bce: the original paper's, one positive against `negatives` uniformly sampled items per position.
//
//   lamia::SasRec model(num_items, lamia::SasRecOptions{});
//   lamia::train_sasrec(model, lamia::sequences_of(split.train), split.valid, {});
//   auto scores = model.score({{3, 17, 5}});   // [1, num_items]
#include <lamia/core/options.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/training_loop.hpp>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lamia {

enum class SasRecLoss { cross_entropy, bce };
constexpr auto enum_names(SasRecLoss) {
  return std::array{std::pair{SasRecLoss::cross_entropy, "cross_entropy"}, std::pair{SasRecLoss::bce, "bce"}};
}

/// The transformer's size (TransformerSize; defaults hidden 64, 2 layers, 2 heads, dropout 0.2,
/// FFN 4 * hidden) and what SASRec adds.
struct SasRecOptions : TransformerSize {
  SasRecOptions() : TransformerSize(/*hidden*/ 64, /*layers*/ 2, /*heads*/ 2, /*dropout*/ 0.2) {}
  /// Items per sequence the model reads (the last ones).
  std::int64_t max_length = 20;
  SasRecLoss loss = SasRecLoss::cross_entropy;
  /// Sampled negatives per position (bce only).
  std::int64_t negatives = 1;
  void check() const;
};
/// The fields of SasRecOptions (JSON, Python).
template <class V>
void visit_fields(SasRecOptions& o, V&& v) {
  visit_transformer_size_fields(o, v, "transformer blocks");  // the item embeddings are hidden_size wide
  v.field("max_length", o.max_length, "items per sequence the model reads (the last ones)", options::between(1, 100000));
  v.field("loss", o.loss, "cross_entropy: full softmax over every item; bce: one sampled negative set per position");
  v.field("negatives", o.negatives, "sampled negatives per position (bce only)", options::between(1, 100000));
}
/// {"hidden_size": 64, ..., "loss": "cross_entropy" | "bce"} (the generic field-list JSON, then
/// check()); unknown keys, wrong types and values out of range throw ValueError naming the key.
void to_json(nlohmann::json& j, const SasRecOptions& options);
void from_json(const nlohmann::json& j, SasRecOptions& options);

class SasRec {
 public:
  /// Token layout: 0 pad, 1 start, item i = 2 + i.
  static constexpr std::int64_t kFirstItemToken = 2;
  SasRec(std::int64_t num_items, SasRecOptions options, std::uint64_t seed = 0);
  /// [B, num_items] float scores of every item after each history (last max_length items;
  /// unknown items are skipped). Eval mode, no gradient.
  torch::Tensor score(const std::vector<std::vector<ItemIndex>>& histories, std::int64_t batch_size = 256);
  /// Training loss of sequences (each predicts every item from the ones before it).
  torch::Tensor loss(const std::vector<const std::vector<ItemIndex>*>& sequences, std::int64_t* tokens = nullptr);
  std::int64_t num_items() const noexcept { return num_items_; }
  const SasRecOptions& options() const noexcept { return options_; }
  Decoder model;

 private:
  std::int64_t num_items_;
  SasRecOptions options_;
};

struct SasRecTrainerOptions {
  std::int64_t batch_size = 128;
  std::uint64_t seed = 0;
  TrainingLoopOptions loop = TrainingLoopOptions().name("sasrec").learning_rate(1e-3).epochs(50);
};

/// The fields of SasRecTrainerOptions (JSON, Python): its own, then the training loop's flattened
/// (epochs, learning_rate, ...; loop.seed is left to `seed`, loop.log and loop.name to C++).
template <class V>
void visit_fields(SasRecTrainerOptions& o, V&& v) {
  v.field("batch_size", o.batch_size, "sequences per optimizer step", options::at_least(1));
  v.field("seed", o.seed, "seed of the sequence order and of torch's generator");
  // The loop's options (TrainingLoopOptions), flattened.
  visit_training_loop_fields(o.loop, v, "passes over the training sequences");
}

/// One training sequence per user: the longest history + [target] among the user's examples.
std::vector<std::vector<ItemIndex>> sequences_of(const std::vector<SequenceExample>& examples);

/// Trains in place; validation loss = mean full-softmax cross-entropy of valid targets.
TrainingResult train_sasrec(SasRec& model, const std::vector<std::vector<ItemIndex>>& sequences,
                            const std::vector<SequenceExample>& valid, const SasRecTrainerOptions& options);

/// A trained SASRec folder: the transformer as a Hugging Face OPT folder and sasrec.json (items, options).
void save_sasrec(const std::filesystem::path& dir, const SasRec& model);
/// Loads a folder written by save_sasrec; ValueError naming the file when it is not one.
SasRec load_sasrec(const std::filesystem::path& dir);

}  // namespace lamia
