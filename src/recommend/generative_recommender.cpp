#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/recommend/generative_recommender.hpp>

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
constexpr int kRecommenderFormat = 1;

}  // namespace

RecommenderModelOptions RecommenderModelOptions::preset(const std::string& name) {
  RecommenderModelOptions o;
  if (name == "trm3l") o.num_layers = 3;
  else if (name == "trm6l") o.num_layers = 6;
  else if (name == "trm12l") o.num_layers = 12;
  else throw ValueError(fmt::format("recommender preset '{}' is unknown (allowed: trm3l, trm6l, trm12l)", name));
  return o;
}

void RecommenderModelOptions::check() const {
  auto fail = [](const char* field, const std::string& rule, const std::string& got) {
    throw ValueError(fmt::format("recommender model: {} {} (got {})", field, rule, got));
  };
  if (hidden_size < 1) fail("hidden_size", "must be >= 1", std::to_string(hidden_size));
  if (num_layers < 1) fail("num_layers", "must be >= 1", std::to_string(num_layers));
  if (num_heads < 1 || hidden_size % num_heads != 0)
    fail("num_heads", fmt::format("must divide hidden_size {}", hidden_size), std::to_string(num_heads));
  if (ffn_dim < 0) fail("ffn_dim", "must be >= 0", std::to_string(ffn_dim));
  if (!(dropout >= 0 && dropout < 1)) fail("dropout", "must be in [0, 1)", fmt::format("{}", dropout));
  if (max_history_items < 1 || max_history_items > 100000)
    fail("max_history_items", "must be 1 to 100000", std::to_string(max_history_items));
}

void to_json(nlohmann::json& j, const RecommenderModelOptions& o) { j = options::to_json(o); }

void from_json(const nlohmann::json& j, RecommenderModelOptions& o) {
  RecommenderModelOptions r = o;
  options::from_json(j, r);
  r.check();
  o = r;
}

DecoderOptions recommender_decoder_options(const CodeVocabulary& vocab, const RecommenderModelOptions& options) {
  options.check();
  const auto positions = 1 + (options.max_history_items + 1) * vocab.num_levels();
  return DecoderOptions(vocab.size(), options.hidden_size, options.num_layers, options.num_heads)
      .ffn_dim(options.ffn_dim)
      .dropout(options.dropout)
      .max_position_embeddings(positions)
      .pad_token_id(CodeVocabulary::kPad);
}

Decoder make_recommender(const CodeVocabulary& vocab, const RecommenderModelOptions& options, std::uint64_t seed) {
  torch::manual_seed(seed);
  return Decoder(recommender_decoder_options(vocab, options));
}

RecommenderBatch make_recommender_batch(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                        const std::vector<const SequenceExample*>& examples,
                                        std::int64_t max_history_items, bool loss_on_history) {
  RecommenderBatch out;
  const auto W = vocab.num_levels();
  const auto B = std::int64_t(examples.size());
  std::vector<std::vector<std::int64_t>> seqs(examples.size());
  std::int64_t longest = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& ex = *examples[b];
    if (ex.target < 0 || ex.target >= table.num_items()) {
      throw IndexError(fmt::format("recommender batch: target item {} of user {} is not in the semantic-ID table "
                                   "({} items)", ex.target, ex.user, table.num_items()));
    }
    std::vector<ItemIndex> kept;
    for (auto item : ex.history) {
      if (item < 0 || item >= table.num_items()) ++out.skipped_unknown;
      else kept.push_back(item);
    }
    if (max_history_items > 0 && std::int64_t(kept.size()) > max_history_items)
      kept.erase(kept.begin(), kept.end() - max_history_items);
    auto& s = seqs[b];
    s.resize(std::size_t(1 + (kept.size() + 1) * W));
    s[0] = CodeVocabulary::kBos;
    for (std::size_t i = 0; i < kept.size(); ++i) vocab.item_tokens(table, kept[i], s.data() + 1 + i * W);
    vocab.item_tokens(table, ex.target, s.data() + 1 + kept.size() * W);
    longest = std::max<std::int64_t>(longest, std::int64_t(s.size()) - 1);
  }
  const auto T = longest;
  out.input_ids = torch::full({B, T}, CodeVocabulary::kPad, torch::kInt64);
  out.position_ids = torch::zeros({B, T}, torch::kInt64);
  out.labels = torch::full({B, T}, kIgnore, torch::kInt64);
  auto key_mask = torch::zeros({B, T}, torch::kBool);
  auto* in = out.input_ids.data_ptr<std::int64_t>();
  auto* pos = out.position_ids.data_ptr<std::int64_t>();
  auto* lab = out.labels.data_ptr<std::int64_t>();
  auto* key = key_mask.data_ptr<bool>();
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[b];
    const auto n = std::int64_t(s.size()) - 1;  // inputs: all but the last token
    const auto start = T - n;
    for (std::int64_t t = 0; t < n; ++t) {
      in[b * T + start + t] = s[t];
      pos[b * T + start + t] = t;
      key[b * T + start + t] = true;
      // label s[t+1]; the target's tokens are the last W labels
      if (loss_on_history || t + 1 >= n + 1 - W) {
        lab[b * T + start + t] = s[t + 1];
        ++out.label_count;
      }
    }
    out.tokens += n;
  }
  out.attention_mask = causal_padded_mask(key_mask);
  return out;
}

LabelledLogits labelled_logits(DecoderImpl& model, const RecommenderBatch& batch) {
  const auto device = model.device();
  DecoderInput in;
  in.input_ids = batch.input_ids.to(device);
  in.position_ids = batch.position_ids.to(device);
  in.attention_mask = batch.attention_mask.to(device);
  in.compute_logits = false;
  auto hidden = model.forward(in).last_hidden_state;  // [B, T, E]
  auto labels = batch.labels.to(device);
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

class RecommenderTask : public TrainingTask {
 public:
  RecommenderTask(Decoder model, const SemanticIdTable& table, const std::vector<SequenceExample>& train,
                  const std::vector<SequenceExample>& valid, const RecommenderTrainerOptions& options)
      : model_(std::move(model)), table_(table), vocab_(CodeVocabulary::for_table(table)), train_(train),
        valid_(valid), options_(options) {
    vocab_.check_table(table, "train_recommender");
    if (model_->options().vocab_size() != vocab_.size()) {
      throw ValueError(fmt::format("train_recommender: the model has {} tokens but the table's IDs need {} "
                                   "(level sizes [{}])", model_->options().vocab_size(), vocab_.size(),
                                   fmt::join(vocab_.level_sizes(), ", ")));
    }
    if (options.batch_size < 1) throw ValueError(fmt::format("train_recommender: batch_size must be >= 1, got {}", options.batch_size));
    if (train.empty()) throw ValueError("train_recommender: no training examples");
  }
  torch::nn::Module& module() override { return *model_; }
  std::int64_t num_batches(std::int64_t) override {
    return (std::int64_t(train_.size()) + options_.batch_size - 1) / options_.batch_size;
  }
  std::vector<std::size_t> order(std::int64_t epoch) {
    std::vector<std::size_t> idx(train_.size());
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    std::mt19937_64 rng(options_.seed * 1000003ULL + std::uint64_t(epoch));
    std::shuffle(idx.begin(), idx.end(), rng);
    return idx;
  }
  std::vector<const SequenceExample*> batch_examples(std::int64_t epoch, std::int64_t batch) {
    if (epoch != cached_epoch_) {
      order_ = order(epoch);
      cached_epoch_ = epoch;
    }
    const auto begin = std::size_t(batch * options_.batch_size);
    const auto end = std::min(order_.size(), begin + std::size_t(options_.batch_size));
    std::vector<const SequenceExample*> out;
    for (auto i = begin; i < end; ++i) out.push_back(&train_[order_[i]]);
    return out;
  }
  StepOutput train_step(std::int64_t epoch, std::int64_t batch) override {
    auto b = make_recommender_batch(table_, vocab_, batch_examples(epoch, batch), options_.max_history_items,
                                    options_.loss_on_history);
    auto loss = recommender_loss(*model_, b);
    return {loss.loss, b.tokens, loss.labels, loss.correct};
  }
  std::optional<double> validation_loss() override {
    if (valid_.empty()) return std::nullopt;
    return recommender_validation_loss(*model_, table_, valid_, options_.max_history_items);
  }
  std::string describe_batch(std::int64_t epoch, std::int64_t batch) override {
    std::vector<std::int64_t> users;
    for (const auto* e : batch_examples(epoch, batch)) users.push_back(e->user);
    return fmt::format("users {}", fmt::join(users, ", "));
  }
  std::vector<std::int64_t> fingerprint() override {
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
    for (const auto& e : train_) {
      mix(std::uint64_t(e.target));
      for (auto i : e.history) mix(std::uint64_t(i));
    }
    return {std::int64_t(table_checksum(table_)), std::int64_t(h), std::int64_t(train_.size()),
            options_.batch_size, std::int64_t(options_.seed), options_.max_history_items,
            std::int64_t(options_.loss_on_history)};
  }

 private:
  Decoder model_;
  const SemanticIdTable& table_;
  CodeVocabulary vocab_;
  const std::vector<SequenceExample>& train_;
  const std::vector<SequenceExample>& valid_;
  RecommenderTrainerOptions options_;
  std::int64_t cached_epoch_ = -1;
  std::vector<std::size_t> order_;
};

}  // namespace

double recommender_validation_loss(DecoderImpl& model, const SemanticIdTable& table,
                                   const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                   std::int64_t batch_size) {
  if (examples.empty()) throw ValueError("recommender_validation_loss: no examples");
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const auto vocab = CodeVocabulary::for_table(table);
  double total = 0;
  std::int64_t count = 0;
  for (std::size_t begin = 0; begin < examples.size(); begin += std::size_t(batch_size)) {
    const auto end = std::min(examples.size(), begin + std::size_t(batch_size));
    auto batch = make_recommender_batch(table, vocab, pointers(examples, begin, end), max_history_items, false);
    auto loss = recommender_loss(model, batch);
    total += loss.loss.item<double>() * double(loss.labels);
    count += loss.labels;
  }
  model.train(was_training);
  return total / double(count);
}

TrainingResult train_recommender(Decoder model, const SemanticIdTable& table,
                                 const std::vector<SequenceExample>& train,
                                 const std::vector<SequenceExample>& valid, const RecommenderTrainerOptions& options) {
  RecommenderTask task(model, table, train, valid, options);
  auto loop_options = options.loop;
  if (loop_options.seed() == 0) loop_options.seed(options.seed);
  TrainingLoop loop(task, loop_options);
  return loop.run();
}


void save_recommender(const std::filesystem::path& dir, const DecoderImpl& model, const SemanticIdTable& table,
                      const RecommenderModelOptions& options) {
  const auto vocab = CodeVocabulary::for_table(table);
  if (model.options().vocab_size() != vocab.size()) {
    throw ValueError(fmt::format("save_recommender: the model has {} tokens, the table's IDs need {}",
                                 model.options().vocab_size(), vocab.size()));
  }
  std::filesystem::create_directories(dir);
  save_pretrained(model, dir);
  nlohmann::json meta = {{"format", "lamia-recommender"},
                         {"version", kRecommenderFormat},
                         {"vocabulary", vocab},
                         {"model", options},
                         {"table_items", table.num_items()},
                         {"table_checksum", fmt::format("{:016x}", table_checksum(table))}};
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
  if (meta.value("version", -1) != kRecommenderFormat) {
    throw ValueError(fmt::format("load_recommender: '{}' has version {} (this build reads {})", meta_path.string(),
                                 meta.value("version", -1), kRecommenderFormat));
  }
  LoadedRecommender out;
  try {
    out.vocab = meta.at("vocabulary").get<CodeVocabulary>();
    out.options = meta.at("model").get<RecommenderModelOptions>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("load_recommender: '{}': {}", meta_path.string(), e.what()));
  }
  const auto table_vocab = CodeVocabulary::for_table(table);
  const auto expected = fmt::format("{:016x}", table_checksum(table));
  const auto got = meta.value("table_checksum", std::string());
  if (out.vocab != table_vocab || got != expected) {
    throw ValueError(fmt::format("load_recommender: '{}' was trained on other semantic IDs (level sizes [{}], "
                                 "checksum {}) than this table (level sizes [{}], checksum {})",
                                 dir.string(), fmt::join(out.vocab.level_sizes(), ", "), got,
                                 fmt::join(table_vocab.level_sizes(), ", "), expected));
  }
  out.model = load_pretrained(dir);
  if (out.model->options().vocab_size() != out.vocab.size()) {
    throw ValueError(fmt::format("load_recommender: '{}': the model has {} tokens, recommender.json says {}",
                                 dir.string(), out.model->options().vocab_size(), out.vocab.size()));
  }
  out.model->eval();
  return out;
}

}  // namespace lamia
