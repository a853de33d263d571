#pragma once
// The generative recommender (paper 4.2.4): a decoder-only transformer that predicts the next item's
// L+1 semantic-ID tokens from a history of items, each written as its own L+1 tokens
// (CodeVocabulary). Two backbones behind one interface (RecommenderModelOptions::backbone):
// "codes", a transformer over code tokens only, trained from scratch; "lm", the language model of
// lamia/nn with the code tokens after its text vocabulary, from scratch or from a Hugging Face OPT
// checkpoint (with LoRA), with the text-token alignment task (lm_backbone.hpp). Decoding is in
// beam_search.hpp (constrained to real items) and exact_scoring.hpp (every item's log-probability).
//
//   auto vocab = lamia::CodeVocabulary::for_table(table);
//   auto model = lamia::make_recommender(vocab, lamia::RecommenderModelOptions::preset("trm3l"));
//   lamia::RecommenderTrainerOptions options;
//   options.loop.epochs(20).checkpoint_path("run/rec.ckpt");
//   auto result = lamia::train_recommender(model, table, split.train, split.valid, options);
//   lamia::save_recommender("run/recommender", model, vocab, table, model_options);
#include <lamia/core/options.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/training_loop.hpp>
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/ids/code_vocabulary.hpp>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lamia {

/// Which model the recommender is (see the file comment).
enum class RecommenderBackbone { codes, lm };
constexpr auto enum_names(RecommenderBackbone) {
  return std::array{std::pair{RecommenderBackbone::codes, "codes"}, std::pair{RecommenderBackbone::lm, "lm"}};
}

/// Each item's text as text-token ids (item i = row i; no BOS): the LM backbone's item text prompts
/// and the alignment task's inputs. Built by the caller with the LM's tokenizer.
using ItemTextTokens = std::vector<std::vector<std::int64_t>>;

/// The recommender transformer (OPT blocks, pre-LN, tied head): its size (TransformerSize; defaults
/// hidden 128, 3 layers, 4 heads, FFN 4 * hidden, dropout 0.1) and its backbone.
struct RecommenderModelOptions : TransformerSize {
  RecommenderModelOptions() : TransformerSize(/*hidden*/ 128, /*layers*/ 3, /*heads*/ 4, /*dropout*/ 0.1) {}
  /// Items of history the model reads (paper: 20); sets the position table's size.
  std::int64_t max_history_items = 20;
  /// "codes" (default): code tokens only, from scratch. "lm": the code tokens after a text vocabulary
  /// (CodeVocabulary::after_text), from scratch with the sizes above or from `pretrained`.
  RecommenderBackbone backbone = RecommenderBackbone::codes;
  /// lm: a Hugging Face OPT folder whose weights start the model (its own sizes and dropout then
  /// apply, the fields above do not); empty: from scratch.
  std::filesystem::path pretrained;
  /// lm with pretrained: LoRA rank on the checkpoint's weights, which stay frozen while the adapters and
  /// the code tokens' embedding rows train (0: every weight trains).
  std::int64_t lora_rank = 0;
  /// lm: text tokens written before each history item's codes (its first ones; 0: codes only).
  std::int64_t item_text_tokens = 0;
  /// lm: an item's text tokens in the alignment task (its first ones); sizes the position table.
  std::int64_t align_text_tokens = 32;

  /// "trm3l", "trm6l", "trm12l": the paper's TRM3L/6L/12L (3, 6, 12 layers). The paper gives no
  /// width; ours is hidden 128, 4 heads, FFN 512 (sized for a CPU; widen for a GPU).
  static RecommenderModelOptions preset(const std::string& name);
  /// Throws ValueError naming the first field out of range.
  void check() const;
};

/// The fields of RecommenderModelOptions (JSON, Python).
template <class V>
void visit_fields(RecommenderModelOptions& o, V&& v) {
  visit_transformer_size_fields(o, v, "transformer blocks (the paper's TRM3L/6L/12L: 3, 6, 12)");
  v.field("max_history_items", o.max_history_items, "items of history the model reads (paper: 20)",
          options::between(1, 100000));
  v.field("backbone", o.backbone, "'codes': code tokens only, from scratch; 'lm': the code tokens after a text vocabulary");
  v.field("pretrained", o.pretrained, "lm: a Hugging Face OPT folder to start from (empty: from scratch)");
  v.field("lora_rank", o.lora_rank, "lm with pretrained: LoRA rank on the checkpoint's weights (0: all weights train)",
          options::at_least(0));
  v.field("item_text_tokens", o.item_text_tokens, "lm: text tokens before each history item's codes (0: codes only)",
          options::at_least(0));
  v.field("align_text_tokens", o.align_text_tokens, "lm: an item's text tokens in the alignment task",
          options::at_least(0));
}

/// {"hidden_size": 128, ...} (the generic field-list JSON, then check()); unknown keys, wrong
/// types and values out of range throw ValueError naming the key.
void to_json(nlohmann::json& j, const RecommenderModelOptions& options);
void from_json(const nlohmann::json& j, RecommenderModelOptions& options);

/// The decoder's options for a vocabulary: vocab.size() tokens, pad = CodeVocabulary::kPad, and
/// positions for [BOS] + (max_history_items + 1) IDs.
DecoderOptions recommender_decoder_options(const CodeVocabulary& vocab, const RecommenderModelOptions& options);
/// A new recommender: backbone "codes", randomly initialised (torch's generator seeded with seed
/// first); "lm", make_lm_recommender (lm_backbone.hpp; vocab must come from CodeVocabulary::after_text).
Decoder make_recommender(const CodeVocabulary& vocab, const RecommenderModelOptions& options, std::uint64_t seed = 0);

/// The label of a position that does not count in the loss.
inline constexpr std::int64_t kRecommenderIgnoreLabel = -100;

/// One training batch: histories left-padded, then the target's L+1 tokens.
struct RecommenderBatch {
  torch::Tensor input_ids;       ///< [B, T] int64
  torch::Tensor position_ids;    ///< [B, T] int64
  torch::Tensor attention_mask;  ///< [B, T, T] bool
  torch::Tensor labels;          ///< [B, T] int64: the next token, -100 where there is no loss
  std::int64_t tokens = 0;       ///< real input tokens
  std::int64_t label_count = 0;  ///< labels that count
  std::int64_t skipped_unknown = 0;
};

/// Builds the batch of examples. The loss counts the target's L+1 tokens; with loss_on_history
/// also every history item's (as the authors' RecBench code does), never BOS, text or padding.
/// With item_text (LM backbone) each history item is preceded by its first item_text_tokens text
/// tokens (the target never is). Throws IndexError for a target the table does not know.
RecommenderBatch make_recommender_batch(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                        const std::vector<const SequenceExample*>& examples,
                                        std::int64_t max_history_items, bool loss_on_history,
                                        const ItemTextTokens* item_text = nullptr, std::int64_t item_text_tokens = 0);

/// encode_histories with each item preceded by its first item_text_tokens text tokens (LM backbone).
EncodedHistories encode_histories(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                  const std::vector<std::vector<ItemIndex>>& histories, std::int64_t max_items,
                                  const ItemTextTokens& item_text, std::int64_t item_text_tokens);

/// Mean cross-entropy over the labels (ignore -100), and the argmax-correct count.
struct RecommenderLoss {
  torch::Tensor loss;
  std::int64_t correct = 0;
  std::int64_t labels = 0;
};
RecommenderLoss recommender_loss(DecoderImpl& model, const RecommenderBatch& batch);

/// The float logits [N, V] of a batch's N labelled positions (row-major: example by example, token by
/// token) and their labels [N], from one forward; only those positions go through the LM head.
struct LabelledLogits {
  torch::Tensor logits;
  torch::Tensor labels;
};
LabelledLogits labelled_logits(DecoderImpl& model, const RecommenderBatch& batch);

struct RecommenderTrainerOptions {
  /// Examples per optimizer step.
  std::int64_t batch_size = 64;
  /// Also count every history item's tokens in the loss (RecBench does; the paper's text does not say).
  bool loss_on_history = false;
  /// Items of history per example (the last ones).
  std::int64_t max_history_items = 20;
  /// Seed of the example order (and of the loop's torch generator: loop.seed).
  std::uint64_t seed = 0;
  /// LM backbone: text tokens before each history item's codes (the model's item_text_tokens).
  std::int64_t item_text_tokens = 0;
  /// LM backbone: the first align_epochs epochs are phase 1, recommendation and text-token alignment
  /// examples (one per item with text) shuffled together; the remaining ones phase 2, recommendation
  /// alone, as the paper trains its LLM recommender. 0: no alignment task. Needs the item texts.
  std::int64_t align_epochs = 0;
  /// LM backbone: an item's text tokens in the alignment task (the model's align_text_tokens).
  std::int64_t align_text_tokens = 32;
  /// Epochs, learning rate, early stopping, checkpoints, progress.
  TrainingLoopOptions loop = TrainingLoopOptions().name("recommender").learning_rate(1e-3).epochs(20);
};

/// The fields of RecommenderTrainerOptions (JSON, Python): its own, then the training loop's
/// flattened (epochs, learning_rate, ...; loop.seed is left to `seed`, loop.log and loop.name to C++).
template <class V>
void visit_fields(RecommenderTrainerOptions& o, V&& v) {
  v.field("batch_size", o.batch_size, "examples per optimizer step", options::at_least(1));
  v.field("loss_on_history", o.loss_on_history, "also count every history item's tokens in the loss (RecBench does)");
  v.field("max_history_items", o.max_history_items, "items of history per example (the last ones)", options::at_least(0));
  v.field("seed", o.seed, "seed of the example order and of torch's generator");
  v.field("item_text_tokens", o.item_text_tokens, "LM backbone: text tokens before each history item's codes",
          options::at_least(0));
  v.field("align_epochs", o.align_epochs,
          "LM backbone: epochs of phase 1 (recommendation and text-token alignment mixed; 0: no alignment)",
          options::at_least(0));
  v.field("align_text_tokens", o.align_text_tokens, "LM backbone: an item's text tokens in the alignment task",
          options::at_least(0));
  // The loop's options (TrainingLoopOptions), flattened.
  visit_training_loop_fields(o.loop, v, "passes over the training examples");
}

/// Trains model in place on train examples, validating on valid (mean target-token loss; none:
/// no early stopping). Resumes from options.loop.checkpoint_path() when it exists; a checkpoint of
/// another table or data is refused (ValueError). The table's codes-only vocabulary.
TrainingResult train_recommender(Decoder model, const SemanticIdTable& table,
                                 const std::vector<SequenceExample>& train,
                                 const std::vector<SequenceExample>& valid, const RecommenderTrainerOptions& options);
/// The same in vocab's layout (the LM backbone: CodeVocabulary::after_text), with the items' texts
/// for item text prompts and the alignment task (options.align_epochs; one entry per table item).
/// Phases: batches are a pure function of (seed, epoch, batch), so a run resumes exactly across the
/// switch. ValueError when alignment or text prompts are asked of a codes-only vocabulary or without
/// texts, and for weight_decay > 0 on a LoRA model (it would move the frozen embedding rows).
TrainingResult train_recommender(Decoder model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                 const std::vector<SequenceExample>& train,
                                 const std::vector<SequenceExample>& valid, const RecommenderTrainerOptions& options,
                                 const ItemTextTokens& item_text = {});

/// Mean target-token cross-entropy of examples (eval mode, no gradient).
double recommender_validation_loss(DecoderImpl& model, const SemanticIdTable& table,
                                   const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                   std::int64_t batch_size = 256);
/// The same in vocab's layout, with item text prompts when item_text is non-null.
double recommender_validation_loss(DecoderImpl& model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                   const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                   std::int64_t batch_size = 256, const ItemTextTokens* item_text = nullptr,
                                   std::int64_t item_text_tokens = 0);


/// A checksum of the item text prompts item_text gives at item_text_tokens (each item's first
/// item_text_tokens tokens, and the item count), as 16 hex digits; save_recommender records it.
std::string item_text_checksum(const ItemTextTokens& item_text, std::int64_t item_text_tokens);

/// A trained recommender folder: the decoder as a Hugging Face OPT folder (config.json,
/// model.safetensors), its LoRA adapters (adapter_model.safetensors, when it has some) and
/// recommender.json (vocabulary with its text layout, model options with the backbone and
/// item_text_tokens, table checksum, and with item_text the checksum of the item text prompts the
/// model was trained with, when options.item_text_tokens > 0). The first form is the table's
/// codes-only vocabulary.
void save_recommender(const std::filesystem::path& dir, const DecoderImpl& model, const SemanticIdTable& table,
                      const RecommenderModelOptions& options);
void save_recommender(const std::filesystem::path& dir, const DecoderImpl& model, const SemanticIdTable& table,
                      const CodeVocabulary& vocab, const RecommenderModelOptions& options,
                      const ItemTextTokens* item_text = nullptr);

struct LoadedRecommender {
  Decoder model{nullptr};
  CodeVocabulary vocab;
  RecommenderModelOptions options;
  std::filesystem::path dir;
  /// item_text_checksum of the prompts it was trained with; empty when none was recorded.
  std::string item_text_checksum;
};
/// Loads a folder written by save_recommender and checks that it was trained on table's IDs:
/// ValueError naming the folder and both layouts or checksums otherwise.
LoadedRecommender load_recommender(const std::filesystem::path& dir, const SemanticIdTable& table);

/// Checks that histories written with item_text_tokens text tokens of item_text before each item
/// (encode_histories, make_recommender_batch, prod_ranks) are what rec was trained with: ValueError
/// naming the folder and both values when item_text_tokens differs from rec.options.item_text_tokens,
/// or both checksums when the prompts differ from the recorded ones (another tokenizer or catalog).
void check_item_text_prompts(const LoadedRecommender& rec, std::int64_t item_text_tokens,
                             const ItemTextTokens& item_text);

}  // namespace lamia
