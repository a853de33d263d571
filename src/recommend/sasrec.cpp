#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/recommend/sasrec.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

namespace lamia {
namespace {

struct Encoded {
  torch::Tensor input_ids, position_ids, attention_mask, labels;  // labels: item index, -100 none
  std::int64_t tokens = 0;
};

// Left-padded [START, i_1 .. i_{n-1}] with labels [i_1 .. i_n] (with_target), or [START, i_1 .. i_n]
// for scoring (label-free; the last column predicts the next item).
Encoded encode(const std::vector<const std::vector<ItemIndex>*>& seqs, std::int64_t num_items, std::int64_t max_length,
               bool with_target) {
  const auto B = std::int64_t(seqs.size());
  std::vector<std::vector<ItemIndex>> kept(seqs.size());
  std::int64_t T = 1;
  for (std::int64_t b = 0; b < B; ++b) {
    for (auto i : *seqs[b]) {
      if (i >= 0 && i < num_items) kept[b].push_back(i);
    }
    const auto keep = max_length + (with_target ? 1 : 0);
    if (std::int64_t(kept[b].size()) > keep) kept[b].erase(kept[b].begin(), kept[b].end() - keep);
    T = std::max<std::int64_t>(T, std::int64_t(kept[b].size()) + (with_target ? 0 : 1));
  }
  Encoded e;
  e.input_ids = torch::zeros({B, T}, torch::kInt64);
  e.position_ids = torch::zeros({B, T}, torch::kInt64);
  e.labels = torch::full({B, T}, -100, torch::kInt64);
  auto key = torch::zeros({B, T}, torch::kBool);
  auto* in = e.input_ids.data_ptr<std::int64_t>();
  auto* pos = e.position_ids.data_ptr<std::int64_t>();
  auto* lab = e.labels.data_ptr<std::int64_t>();
  auto* k = key.data_ptr<bool>();
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& s = kept[b];
    const auto n = with_target ? std::int64_t(s.size()) : std::int64_t(s.size()) + 1;  // inputs
    const auto start = T - n;
    for (std::int64_t t = 0; t < n; ++t) {
      in[b * T + start + t] = t == 0 ? 1 : SasRec::kFirstItemToken + s[t - 1];
      pos[b * T + start + t] = t;
      k[b * T + start + t] = true;
      if (with_target) lab[b * T + start + t] = s[t];
    }
    e.tokens += n;
  }
  const auto causal = torch::ones({T, T}, torch::kBool).tril();
  e.attention_mask = causal.unsqueeze(0) & key.unsqueeze(1) & key.unsqueeze(2);
  return e;
}

DecoderInput decoder_input(const Encoded& e, const torch::Device& device) {
  DecoderInput in;
  in.input_ids = e.input_ids.to(device);
  in.position_ids = e.position_ids.to(device);
  in.attention_mask = e.attention_mask.to(device);
  in.token_mask = in.attention_mask.diagonal(0, 1, 2);  // the padding attends nothing: skipped
  in.compute_logits = false;
  return in;
}

// Item logits of hidden states [N, E]: dot products with the item rows of the tied embedding.
torch::Tensor item_logits(DecoderImpl& model, const torch::Tensor& hidden) {
  auto logits = model.lm_logits(hidden);
  return logits.narrow(-1, SasRec::kFirstItemToken, logits.size(-1) - SasRec::kFirstItemToken).to(torch::kFloat);
}

}  // namespace

SasRec::SasRec(std::int64_t num_items, SasRecOptions options, std::uint64_t seed)
    : model(nullptr), num_items_(num_items), options_(options) {
  options_.check();
  if (num_items < 1) throw ValueError(fmt::format("SasRec: num_items must be >= 1, got {}", num_items));
  torch::manual_seed(seed);
  model = Decoder(options_.decoder_options(kFirstItemToken + num_items)
                      .max_position_embeddings(options_.max_length + 2)
                      .pad_token_id(0));
}

torch::Tensor SasRec::score(const std::vector<std::vector<ItemIndex>>& histories, std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<torch::Tensor> parts;
  for (std::size_t begin = 0; begin < histories.size(); begin += std::size_t(batch_size)) {
    const auto end = std::min(histories.size(), begin + std::size_t(batch_size));
    std::vector<const std::vector<ItemIndex>*> seqs;
    for (auto i = begin; i < end; ++i) seqs.push_back(&histories[i]);
    auto e = encode(seqs, num_items_, options_.max_length, false);
    auto hidden = model->forward(decoder_input(e, model->device())).last_hidden_state;
    parts.push_back(item_logits(*model, hidden.select(1, hidden.size(1) - 1)).to(torch::kCPU));
  }
  model->train(was_training);
  if (parts.empty()) return torch::empty({0, num_items_});
  return torch::cat(parts, 0);
}

torch::Tensor SasRec::loss(const std::vector<const std::vector<ItemIndex>*>& sequences, std::int64_t* tokens) {
  auto e = encode(sequences, num_items_, options_.max_length, true);
  if (tokens) *tokens = e.tokens;
  const auto device = model->device();
  auto in = decoder_input(e, device);
  in.output_mask = e.labels.to(device) >= 0;  // the last layer only for the positions with a target
  auto hidden = model->forward(in).last_hidden_state;
  auto labels = e.labels.to(device).reshape({-1});
  auto idx = (labels >= 0).nonzero().reshape({-1});
  if (idx.numel() == 0) throw ValueError("SasRec::loss: no sequence has an item to predict");
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, idx);
  auto target = labels.index_select(0, idx);
  if (options_.loss == SasRecLoss::cross_entropy) {
    return torch::nn::functional::cross_entropy(item_logits(*model, h), target);
  }
  // BCE: the target against uniformly drawn items (from torch's generator, so resume is exact).
  auto items = model->embed_tokens_->weight;  // [V, E]
  auto pos = (h * items.index_select(0, target + kFirstItemToken)).sum(-1).to(torch::kFloat);
  auto neg_ids = torch::randint(num_items_, {h.size(0), options_.negatives}, torch::TensorOptions().dtype(torch::kInt64))
                     .to(device);
  auto neg_emb = items.index_select(0, (neg_ids + kFirstItemToken).reshape({-1})).reshape({h.size(0), options_.negatives, -1});
  auto neg = (h.unsqueeze(1) * neg_emb).sum(-1).to(torch::kFloat);
  return -(torch::log_sigmoid(pos).mean() + torch::log_sigmoid(-neg).mean());
}

std::vector<std::vector<ItemIndex>> sequences_of(const std::vector<SequenceExample>& examples) {
  std::map<UserIndex, const SequenceExample*> longest;
  for (const auto& e : examples) {
    auto& slot = longest[e.user];
    if (!slot || e.history.size() > slot->history.size()) slot = &e;
  }
  std::vector<std::vector<ItemIndex>> out;
  for (const auto& [user, e] : longest) {
    auto s = e->history;
    s.push_back(e->target);
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

class SasRecTask : public TrainingTask {
 public:
  SasRecTask(SasRec& model, const std::vector<std::vector<ItemIndex>>& sequences,
             const std::vector<SequenceExample>& valid, const SasRecTrainerOptions& options)
      : model_(model), sequences_(sequences), valid_(valid), options_(options) {
    if (options.batch_size < 1) throw ValueError(fmt::format("train_sasrec: batch_size must be >= 1, got {}", options.batch_size));
    for (const auto& s : sequences) {
      if (s.size() >= 1) usable_.push_back(&s);
    }
    if (usable_.empty()) throw ValueError("train_sasrec: no training sequence");
  }
  torch::nn::Module& module() override { return *model_.model; }
  std::int64_t num_batches(std::int64_t) override {
    return (std::int64_t(usable_.size()) + options_.batch_size - 1) / options_.batch_size;
  }
  std::vector<const std::vector<ItemIndex>*> batch(std::int64_t epoch, std::int64_t b) {
    if (epoch != cached_epoch_) {
      order_.resize(usable_.size());
      std::iota(order_.begin(), order_.end(), std::size_t(0));
      std::mt19937_64 rng(options_.seed * 1000003ULL + std::uint64_t(epoch));
      std::shuffle(order_.begin(), order_.end(), rng);
      cached_epoch_ = epoch;
    }
    std::vector<const std::vector<ItemIndex>*> out;
    const auto begin = std::size_t(b * options_.batch_size);
    for (auto i = begin; i < std::min(order_.size(), begin + std::size_t(options_.batch_size)); ++i)
      out.push_back(usable_[order_[i]]);
    return out;
  }
  StepOutput train_step(std::int64_t epoch, std::int64_t b) override {
    std::int64_t tokens = 0;
    auto loss = model_.loss(batch(epoch, b), &tokens);
    return {loss, tokens, 0, 0};
  }
  std::optional<double> validation_loss() override {
    if (valid_.empty()) return std::nullopt;
    std::vector<std::vector<ItemIndex>> histories;
    std::vector<std::int64_t> targets;
    for (const auto& e : valid_) {
      histories.push_back(e.history);
      targets.push_back(e.target);
    }
    auto scores = model_.score(histories);
    return torch::nn::functional::cross_entropy(scores, torch::tensor(targets, torch::kInt64)).item<double>();
  }
  std::vector<std::int64_t> fingerprint() override {
    std::uint64_t h = 1469598103934665603ULL;
    for (const auto* s : usable_)
      for (auto i : *s) h = (h ^ std::uint64_t(i)) * 1099511628211ULL;
    return {model_.num_items(), std::int64_t(h), std::int64_t(usable_.size()), options_.batch_size,
            std::int64_t(options_.seed), std::int64_t(model_.options().loss)};
  }

 private:
  SasRec& model_;
  const std::vector<std::vector<ItemIndex>>& sequences_;
  const std::vector<SequenceExample>& valid_;
  SasRecTrainerOptions options_;
  std::vector<const std::vector<ItemIndex>*> usable_;
  std::int64_t cached_epoch_ = -1;
  std::vector<std::size_t> order_;
};

}  // namespace

TrainingResult train_sasrec(SasRec& model, const std::vector<std::vector<ItemIndex>>& sequences,
                            const std::vector<SequenceExample>& valid, const SasRecTrainerOptions& options) {
  SasRecTask task(model, sequences, valid, options);
  auto loop_options = options.loop;
  if (loop_options.seed() == 0) loop_options.seed(options.seed);
  TrainingLoop loop(task, loop_options);
  return loop.run();
}

void save_sasrec(const std::filesystem::path& dir, const SasRec& model) {
  std::filesystem::create_directories(dir);
  save_pretrained(*model.model, dir);
  nlohmann::json meta = {{"format", "lamia-sasrec"}, {"version", 1}, {"num_items", model.num_items()},
                         {"options", model.options()}};
  write_text_atomically(dir / "sasrec.json", meta.dump(2) + "\n");
}

SasRec load_sasrec(const std::filesystem::path& dir) {
  const auto path = dir / "sasrec.json";
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("load_sasrec: '{}' is not valid JSON: {}", path.string(), e.what()));
  }
  if (!meta.is_object() || meta.value("format", "") != "lamia-sasrec" || meta.value("version", 0) != 1)
    throw ValueError(fmt::format("load_sasrec: '{}' is not a lamia SASRec file (version 1)", path.string()));
  SasRecOptions options;
  std::int64_t num_items = 0;
  try {
    options = meta.at("options").get<SasRecOptions>();
    num_items = meta.at("num_items").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(fmt::format("load_sasrec: '{}': {}", path.string(), e.what()));
  }
  SasRec model(num_items, options);
  load_pretrained_weights(*model.model, dir);
  model.model->eval();
  return model;
}

}  // namespace lamia
