#include "sequence_batch.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/ids/detail/left_padded.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/lm_backbone.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>

namespace lamia {
namespace {

constexpr std::int64_t kIgnore = kRecommenderIgnoreLabel;
// 1: codes backbone only; 2: the vocabulary may carry a text layout, the options a backbone, the
// folder LoRA adapters (version 1 folders still load).
constexpr int kRecommenderFormat = 2;
constexpr const char* kAdapterFile = "adapter_model.safetensors";

}  // namespace

DecoderOptions recommender_decoder_options(const CodeVocabulary& vocab, const RecommenderModelOptions& options) {
  options.check();
  const auto positions = 1 + (options.max_history_items + 1) * vocab.num_levels();
  return options.decoder_options(vocab.size())
      .max_position_embeddings(positions)
      .pad_token_id(CodeVocabulary::kPad);
}

Decoder make_recommender(const CodeVocabulary& vocab, const RecommenderModelOptions& options, std::uint64_t seed) {
  if (options.backbone == RecommenderBackbone::lm) return make_lm_recommender(vocab, options, seed);
  if (vocab.text_vocab_size() > 0) {
    throw ValueError(fmt::format("make_recommender: backbone 'codes' with a vocabulary after {} text tokens (set "
                                 "backbone 'lm', or use CodeVocabulary::for_table)", vocab.text_vocab_size()));
  }
  torch::manual_seed(seed);
  return Decoder(recommender_decoder_options(vocab, options));
}

namespace {

// The known items of a history (unknown ones counted in skipped), its last max_items (0: all).
std::vector<ItemIndex> kept_items(const SemanticIdTable& table, const std::vector<ItemIndex>& history,
                                  std::int64_t max_items, std::int64_t& skipped) {
  std::vector<ItemIndex> kept;
  for (auto item : history) {
    if (item < 0 || item >= table.num_items()) ++skipped;
    else kept.push_back(item);
  }
  if (max_items > 0 && std::int64_t(kept.size()) > max_items) kept.erase(kept.begin(), kept.end() - max_items);
  return kept;
}

// The recommendation sequence of an example: [BOS, (text) codes of each kept history item..., the
// target's codes]; the target's codes are labelled, the history items' with loss_on_history.
detail::LabelledSequence recommendation_sequence(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                                 const SequenceExample& ex, std::int64_t max_history_items,
                                                 bool loss_on_history, const ItemTextTokens* item_text,
                                                 std::int64_t item_text_tokens, std::int64_t& skipped_unknown) {
  if (ex.target < 0 || ex.target >= table.num_items()) {
    throw IndexError(fmt::format("recommender batch: target item {} of user {} is not in the semantic-ID table "
                                 "({} items)", ex.target, ex.user, table.num_items()));
  }
  const auto kept = kept_items(table, ex.history, max_history_items, skipped_unknown);
  detail::LabelledSequence s;
  s.push(vocab.bos(), false);
  for (auto item : kept) detail::append_item(s, table, vocab, item, item_text, item_text_tokens, loss_on_history);
  detail::append_item(s, table, vocab, ex.target, nullptr, 0, true);
  return s;
}

void check_text_prompts(const CodeVocabulary& vocab, const ItemTextTokens* item_text, std::int64_t item_text_tokens,
                        const char* what) {
  if (item_text_tokens < 0) throw ValueError(fmt::format("{}: item_text_tokens must be >= 0, got {}", what, item_text_tokens));
  if (item_text_tokens > 0 && !item_text) throw ValueError(fmt::format("{}: item_text_tokens > 0 needs the item texts", what));
  if (item_text_tokens > 0 && vocab.text_vocab_size() == 0) {
    throw ValueError(fmt::format("{}: item text prompts need the LM backbone's vocabulary (CodeVocabulary::after_text)",
                                 what));
  }
}

}  // namespace

RecommenderBatch make_recommender_batch(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                        const std::vector<const SequenceExample*>& examples,
                                        std::int64_t max_history_items, bool loss_on_history,
                                        const ItemTextTokens* item_text, std::int64_t item_text_tokens) {
  check_text_prompts(vocab, item_text, item_text_tokens, "make_recommender_batch");
  std::int64_t skipped = 0;
  std::vector<detail::LabelledSequence> seqs;
  seqs.reserve(examples.size());
  for (const auto* ex : examples)
    seqs.push_back(recommendation_sequence(table, vocab, *ex, max_history_items, loss_on_history, item_text,
                                           item_text_tokens, skipped));
  auto out = detail::batch_of_sequences(seqs, vocab.pad());
  out.skipped_unknown = skipped;
  return out;
}

EncodedHistories encode_histories(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                  const std::vector<std::vector<ItemIndex>>& histories, std::int64_t max_items,
                                  const ItemTextTokens& item_text, std::int64_t item_text_tokens) {
  check_text_prompts(vocab, &item_text, item_text_tokens, "encode_histories");
  if (item_text_tokens == 0) return encode_histories(table, vocab, histories, max_items);
  vocab.check_table(table, "encode_histories");
  if (max_items < 0) throw ValueError(fmt::format("encode_histories: max_items must be >= 0, got {}", max_items));
  // The codes-only encoding does the skipping and the cut; the text goes in front of each kept item.
  std::vector<detail::LabelledSequence> seqs(histories.size());
  EncodedHistories counts;
  for (std::size_t b = 0; b < histories.size(); ++b) {
    const auto kept = kept_items(table, histories[b], max_items, counts.skipped_unknown);
    if (kept.empty()) ++counts.empty_rows;
    seqs[b].push(vocab.bos(), false);
    for (auto item : kept) detail::append_item(seqs[b], table, vocab, item, &item_text, item_text_tokens, false);
  }
  auto out = detail::left_padded_histories(
      std::int64_t(seqs.size()),
      [&](std::int64_t b) -> const std::vector<std::int64_t>& { return seqs[std::size_t(b)].tokens; }, vocab.pad());
  out.skipped_unknown = counts.skipped_unknown;
  out.empty_rows = counts.empty_rows;
  return out;
}

LabelledLogits labelled_logits(DecoderImpl& model, const RecommenderBatch& batch) {
  const auto device = model.device();
  DecoderInput in;
  in.input_ids = batch.input_ids.to(device);
  in.position_ids = batch.position_ids.to(device);
  in.attention_mask = batch.attention_mask.to(device);
  auto labels = batch.labels.to(device);
  // Padding (its diagonal is off: it attends nothing) and the unlabelled rows' last layer are skipped.
  in.token_mask = in.attention_mask.diagonal(0, 1, 2);
  in.output_mask = labels != kIgnore;
  in.compute_logits = false;
  auto hidden = model.forward(in).last_hidden_state;  // [B, T, E]
  // Only the labelled positions go through the LM head (most positions have none without loss_on_history).
  auto flat_hidden = hidden.reshape({-1, hidden.size(-1)});
  auto idx = (labels != kIgnore).reshape({-1}).nonzero().reshape({-1});
  return {model.lm_logits(flat_hidden.index_select(0, idx)).to(torch::kFloat),
          labels.reshape({-1}).index_select(0, idx)};
}

RecommenderLoss recommender_loss(DecoderImpl& model, const RecommenderBatch& batch) {
  auto [logits, target] = labelled_logits(model, batch);
  RecommenderLoss out;
  out.loss = torch::nn::functional::cross_entropy(logits, target);
  {
    torch::NoGradGuard no_grad;
    out.correct = (logits.argmax(-1) == target).sum().item<std::int64_t>();
  }
  out.labels = target.numel();
  return out;
}

namespace {

std::vector<const SequenceExample*> pointers(const std::vector<SequenceExample>& examples, std::size_t begin,
                                             std::size_t end) {
  std::vector<const SequenceExample*> out;
  for (auto i = begin; i < end; ++i) out.push_back(&examples[i]);
  return out;
}

// Phase 1 (epoch < align_epochs): the recommendation examples and one alignment example per item with
// text, shuffled together; phase 2: the recommendation examples alone. Index i < train.size() of an
// epoch's order is a recommendation example, train.size() + j the alignment example of align_items_[j].
class RecommenderTask : public TrainingTask {
 public:
  RecommenderTask(Decoder model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                  const std::vector<SequenceExample>& train, const std::vector<SequenceExample>& valid,
                  const RecommenderTrainerOptions& options, const ItemTextTokens& item_text)
      : model_(std::move(model)), table_(table), vocab_(vocab), train_(train), valid_(valid), options_(options),
        item_text_(item_text) {
    vocab_.check_table(table, "train_recommender");
    if (model_->options().vocab_size() != vocab_.size()) {
      throw ValueError(fmt::format("train_recommender: the model has {} tokens but the vocabulary {} "
                                   "(level sizes [{}], {} text tokens)", model_->options().vocab_size(), vocab_.size(),
                                   fmt::join(vocab_.level_sizes(), ", "), vocab_.text_vocab_size()));
    }
    if (options.batch_size < 1) throw ValueError(fmt::format("train_recommender: batch_size must be >= 1, got {}", options.batch_size));
    if (train.empty()) throw ValueError("train_recommender: no training examples");
    const bool needs_text = options.align_epochs > 0 || options.item_text_tokens > 0;
    if (needs_text && vocab_.text_vocab_size() == 0) {
      throw ValueError("train_recommender: align_epochs and item_text_tokens need the LM backbone (a vocabulary "
                       "after a text vocabulary, CodeVocabulary::after_text)");
    }
    if (needs_text && std::int64_t(item_text.size()) != table.num_items()) {
      throw ValueError(fmt::format("train_recommender: align_epochs and item_text_tokens need one text per item: "
                                   "{} texts for {} items", item_text.size(), table.num_items()));
    }
    if (options.align_epochs > 0) {
      for (std::int64_t i = 0; i < table.num_items(); ++i)
        if (!item_text[std::size_t(i)].empty()) align_items_.push_back(ItemIndex(i));
      if (align_items_.empty()) throw ValueError("train_recommender: align_epochs > 0 but no item has text tokens");
    }
    text_ = needs_text ? &item_text_ : nullptr;
  }
  torch::nn::Module& module() override { return *model_; }
  bool aligning(std::int64_t epoch) const { return epoch < options_.align_epochs; }
  std::size_t examples_in(std::int64_t epoch) const {
    return train_.size() + (aligning(epoch) ? align_items_.size() : 0);
  }
  std::int64_t num_batches(std::int64_t epoch) override {
    return (std::int64_t(examples_in(epoch)) + options_.batch_size - 1) / options_.batch_size;
  }
  std::vector<std::size_t> order(std::int64_t epoch) {
    std::vector<std::size_t> idx(examples_in(epoch));
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    std::mt19937_64 rng(options_.seed * 1000003ULL + std::uint64_t(epoch));
    std::shuffle(idx.begin(), idx.end(), rng);
    return idx;
  }
  std::vector<std::size_t> batch_indices(std::int64_t epoch, std::int64_t batch) {
    if (epoch != cached_epoch_) {
      order_ = order(epoch);
      cached_epoch_ = epoch;
    }
    const auto begin = std::size_t(batch * options_.batch_size);
    const auto end = std::min(order_.size(), begin + std::size_t(options_.batch_size));
    // This rank's contiguous part of the global batch (all of it without data parallelism).
    const auto [from, to] = shard_bounds(std::int64_t(end - begin), rank_, world_size_, "train_recommender");
    return std::vector<std::size_t>(order_.begin() + std::ptrdiff_t(begin) + from,
                                    order_.begin() + std::ptrdiff_t(begin) + to);
  }
  void set_shard(std::int64_t rank, std::int64_t world_size) override {
    shard_bounds(options_.batch_size, rank, world_size, "train_recommender");  // checks the rank
    rank_ = rank;
    world_size_ = world_size;
  }
  StepOutput train_step(std::int64_t epoch, std::int64_t batch) override {
    std::vector<detail::LabelledSequence> seqs;
    std::int64_t skipped = 0;
    for (auto i : batch_indices(epoch, batch)) {
      if (i < train_.size()) {
        seqs.push_back(recommendation_sequence(table_, vocab_, train_[i], options_.max_history_items,
                                               options_.loss_on_history, text_, options_.item_text_tokens, skipped));
      } else {
        detail::LabelledSequence a;
        a.push(vocab_.bos(), false);
        detail::append_item(a, table_, vocab_, align_items_[i - train_.size()], &item_text_,
                            options_.align_text_tokens, /*label_codes=*/true);
        seqs.push_back(std::move(a));
      }
    }
    if (seqs.empty()) return {torch::zeros({}), 0, 0, 0, {}, 0.0};  // an empty shard (a batch smaller than the group)
    auto b = detail::batch_of_sequences(seqs, vocab_.pad());
    auto loss = recommender_loss(*model_, b);
    // The loss is a mean over label tokens: the shards weigh theirs (data parallelism).
    return {loss.loss, b.tokens, loss.labels, loss.correct, {}, double(loss.labels)};
  }
  std::optional<double> validation_loss() override {
    if (valid_.empty()) return std::nullopt;
    return recommender_validation_loss(*model_, table_, vocab_, valid_, options_.max_history_items, 256, text_,
                                       options_.item_text_tokens);
  }
  std::string describe_batch(std::int64_t epoch, std::int64_t batch) override {
    std::vector<std::int64_t> users, items;
    for (auto i : batch_indices(epoch, batch)) {
      if (i < train_.size()) users.push_back(train_[i].user);
      else items.push_back(align_items_[i - train_.size()]);
    }
    if (items.empty()) return fmt::format("users {}", fmt::join(users, ", "));
    return fmt::format("users {}; alignment items {}", fmt::join(users, ", "), fmt::join(items, ", "));
  }
  std::vector<std::int64_t> fingerprint() override {
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
    for (const auto& e : train_) {
      mix(std::uint64_t(e.target));
      for (auto i : e.history) mix(std::uint64_t(i));
    }
    std::vector<std::int64_t> out = {std::int64_t(table_checksum(table_)), std::int64_t(h), std::int64_t(train_.size()),
                                     options_.batch_size, std::int64_t(options_.seed), options_.max_history_items,
                                     std::int64_t(options_.loss_on_history)};
    if (vocab_.text_vocab_size() > 0) {  // the LM backbone's setup (the codes backbone's fingerprint is unchanged)
      std::uint64_t t = 1469598103934665603ULL;
      if (text_) {
        for (const auto& tokens : item_text_) {
          t = (t ^ tokens.size()) * 1099511628211ULL;
          for (auto x : tokens) t = (t ^ std::uint64_t(x)) * 1099511628211ULL;
        }
      }
      out.insert(out.end(), {vocab_.text_vocab_size(), vocab_.bos(), vocab_.pad(), options_.item_text_tokens,
                             options_.align_epochs, options_.align_text_tokens, std::int64_t(t)});
    }
    return out;
  }

 private:
  Decoder model_;
  const SemanticIdTable& table_;
  CodeVocabulary vocab_;
  const std::vector<SequenceExample>& train_;
  const std::vector<SequenceExample>& valid_;
  RecommenderTrainerOptions options_;
  const ItemTextTokens& item_text_;
  const ItemTextTokens* text_ = nullptr;  // item text prompts and alignment: &item_text_ when used
  std::vector<ItemIndex> align_items_;
  std::int64_t cached_epoch_ = -1;
  std::vector<std::size_t> order_;
  std::int64_t rank_ = 0, world_size_ = 1;
};

}  // namespace

double recommender_validation_loss(DecoderImpl& model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                   const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                   std::int64_t batch_size, const ItemTextTokens* item_text,
                                   std::int64_t item_text_tokens) {
  if (examples.empty()) throw ValueError("recommender_validation_loss: no examples");
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  double total = 0;
  std::int64_t count = 0;
  for (std::size_t begin = 0; begin < examples.size(); begin += std::size_t(batch_size)) {
    const auto end = std::min(examples.size(), begin + std::size_t(batch_size));
    auto batch = make_recommender_batch(table, vocab, pointers(examples, begin, end), max_history_items, false,
                                        item_text, item_text ? item_text_tokens : 0);
    auto loss = recommender_loss(model, batch);
    total += loss.loss.item<double>() * double(loss.labels);
    count += loss.labels;
  }
  model.train(was_training);
  return total / double(count);
}

double recommender_validation_loss(DecoderImpl& model, const SemanticIdTable& table,
                                   const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                   std::int64_t batch_size) {
  return recommender_validation_loss(model, table, CodeVocabulary::for_table(table), examples, max_history_items,
                                     batch_size);
}

TrainingResult train_recommender(Decoder model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                 const std::vector<SequenceExample>& train,
                                 const std::vector<SequenceExample>& valid, const RecommenderTrainerOptions& options,
                                 const ItemTextTokens& item_text) {
  if (has_lora(*model) && options.loop.weight_decay() > 0) {
    throw ValueError(fmt::format("train_recommender: weight_decay {} on a LoRA model would move the checkpoint's frozen "
                                 "embedding rows; use 0", options.loop.weight_decay()));
  }
  RecommenderTask task(model, table, vocab, train, valid, options, item_text);
  auto loop_options = options.loop;
  if (loop_options.seed() == 0) loop_options.seed(options.seed);
  TrainingLoop loop(task, loop_options);
  return loop.run();
}

TrainingResult train_recommender(Decoder model, const SemanticIdTable& table,
                                 const std::vector<SequenceExample>& train,
                                 const std::vector<SequenceExample>& valid, const RecommenderTrainerOptions& options) {
  return train_recommender(std::move(model), table, CodeVocabulary::for_table(table), train, valid, options);
}

void save_recommender(const std::filesystem::path& dir, const DecoderImpl& model, const SemanticIdTable& table,
                      const RecommenderModelOptions& options) {
  save_recommender(dir, model, table, CodeVocabulary::for_table(table), options);
}

std::string item_text_checksum(const ItemTextTokens& item_text, std::int64_t item_text_tokens) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the prompts' lengths and tokens
  auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
  mix(item_text.size());
  for (const auto& tokens : item_text) {
    const auto n = std::min<std::size_t>(tokens.size(), std::size_t(std::max<std::int64_t>(item_text_tokens, 0)));
    mix(n);
    for (std::size_t i = 0; i < n; ++i) mix(std::uint64_t(tokens[i]));
  }
  return fmt::format("{:016x}", h);
}

void save_recommender(const std::filesystem::path& dir, const DecoderImpl& model, const SemanticIdTable& table,
                      const CodeVocabulary& vocab, const RecommenderModelOptions& options,
                      const ItemTextTokens* item_text) {
  vocab.check_table(table, "save_recommender");
  if (model.options().vocab_size() != vocab.size()) {
    throw ValueError(fmt::format("save_recommender: the model has {} tokens, the vocabulary {}",
                                 model.options().vocab_size(), vocab.size()));
  }
  if ((options.backbone == RecommenderBackbone::lm) != (vocab.text_vocab_size() > 0)) {
    throw ValueError(fmt::format("save_recommender: backbone '{}' with a vocabulary of {} text tokens",
                                 options.backbone == RecommenderBackbone::lm ? "lm" : "codes", vocab.text_vocab_size()));
  }
  std::filesystem::create_directories(dir);
  save_pretrained(model, dir);  // the base weights (the grown embedding included), without adapters
  if (has_lora(model)) save_lora(model, dir / kAdapterFile);
  else std::filesystem::remove(dir / kAdapterFile);
  nlohmann::json meta = {{"format", "lamia-recommender"},
                         {"version", kRecommenderFormat},
                         {"vocabulary", vocab},
                         {"model", options},
                         {"table_items", table.num_items()},
                         {"table_checksum", fmt::format("{:016x}", table_checksum(table))}};
  // The prompts the histories carried (options.item_text_tokens, in "model"): evaluating with other
  // ones is refused (check_item_text_prompts).
  if (item_text && options.item_text_tokens > 0)
    meta["item_text_checksum"] = item_text_checksum(*item_text, options.item_text_tokens);
  write_text_atomically(dir / "recommender.json", meta.dump(2) + "\n");
}

LoadedRecommender load_recommender(const std::filesystem::path& dir, const SemanticIdTable& table) {
  const auto meta_path = dir / "recommender.json";
  std::ifstream in(meta_path);
  if (!in) throw IOError(fmt::format("load_recommender: cannot read '{}'", meta_path.string()));
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("load_recommender: '{}' is not valid JSON: {}", meta_path.string(), e.what()));
  }
  if (!meta.is_object() || meta.value("format", "") != "lamia-recommender") {
    throw ValueError(fmt::format("load_recommender: '{}' is not a lamia recommender file", meta_path.string()));
  }
  const auto version = meta.value("version", -1);
  if (version < 1 || version > kRecommenderFormat) {
    throw ValueError(fmt::format("load_recommender: '{}' has version {} (this build reads 1 to {})",
                                 meta_path.string(), version, kRecommenderFormat));
  }
  LoadedRecommender out;
  out.dir = dir;
  try {
    out.vocab = meta.at("vocabulary").get<CodeVocabulary>();
    out.options = meta.at("model").get<RecommenderModelOptions>();
    if (meta.contains("item_text_checksum")) out.item_text_checksum = meta.at("item_text_checksum").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("load_recommender: '{}': {}", meta_path.string(), e.what()));
  }
  const auto table_vocab = CodeVocabulary::for_table(table);
  const auto expected = fmt::format("{:016x}", table_checksum(table));
  const auto got = meta.value("table_checksum", std::string());
  if (out.vocab.level_sizes() != table_vocab.level_sizes() || got != expected) {
    throw ValueError(fmt::format("load_recommender: '{}' was trained on other semantic IDs (level sizes [{}], "
                                 "checksum {}) than this table (level sizes [{}], checksum {})",
                                 dir.string(), fmt::join(out.vocab.level_sizes(), ", "), got,
                                 fmt::join(table_vocab.level_sizes(), ", "), expected));
  }
  if ((out.options.backbone == RecommenderBackbone::lm) != (out.vocab.text_vocab_size() > 0)) {
    throw ValueError(fmt::format("load_recommender: '{}': backbone and vocabulary disagree ({} text tokens)",
                                 dir.string(), out.vocab.text_vocab_size()));
  }
  out.model = load_pretrained(dir);
  if (std::filesystem::exists(dir / kAdapterFile)) load_lora(*out.model, dir / kAdapterFile);
  if (out.model->options().vocab_size() != out.vocab.size()) {
    throw ValueError(fmt::format("load_recommender: '{}': the model has {} tokens, recommender.json says {}",
                                 dir.string(), out.model->options().vocab_size(), out.vocab.size()));
  }
  out.model->eval();
  return out;
}

void check_item_text_prompts(const LoadedRecommender& rec, std::int64_t item_text_tokens,
                             const ItemTextTokens& item_text) {
  const auto trained = rec.options.item_text_tokens;
  if (item_text_tokens != trained) {
    throw ValueError(fmt::format("recommender '{}' was trained with item_text_tokens = {} (text tokens before each "
                                 "history item's codes), the histories would have item_text_tokens = {}",
                                 rec.dir.string(), trained, item_text_tokens));
  }
  if (trained == 0 || rec.item_text_checksum.empty()) return;
  const auto got = item_text_checksum(item_text, trained);
  if (got != rec.item_text_checksum) {
    throw ValueError(fmt::format("recommender '{}' was trained on item text prompts with checksum {}, these have {} "
                                 "({} item texts; another tokenizer or catalog?)",
                                 rec.dir.string(), rec.item_text_checksum, got, item_text.size()));
  }
}

}  // namespace lamia
