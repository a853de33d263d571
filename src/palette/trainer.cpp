#include "eval_scope.hpp"
#include <lamia/core/blas_threads.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/nn/training_loop.hpp>
#include <lamia/palette/trainer.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace lamia {

void apply_palette_lora(PaletteEncoderImpl& encoder, const LoraOptions& options, bool train_embeddings) {
  apply_lora(*encoder.decoder, options);
  if (train_embeddings) {
    for (auto& p : encoder.decoder->embed_tokens_->parameters()) p.set_requires_grad(true);
  }
}

namespace {

std::int64_t sample_length(const TokenizedCatalog& c, ItemIndex item, std::int64_t task, std::int64_t L) {
  const auto& it = c.items[item];
  return static_cast<std::int64_t>(it.content.size()) + 2 * L + 2 + static_cast<std::int64_t>(it.answers[task].size());
}

using detail::EvalScope;

PaletteLossRecord palette_record(std::int64_t step, double loss, const std::vector<double>& parts, double accuracy,
                                 double tokens_per_second) {
  PaletteLossRecord rec;
  rec.step = step;
  rec.loss = loss;
  if (parts.size() == 4) {
    rec.generation_loss = parts[0];
    rec.intra_loss = parts[1];
    rec.inter_loss = parts[2];
    rec.decorrelation_loss = parts[3];
  }
  rec.token_accuracy = accuracy;
  rec.tokens_per_second = tokens_per_second;
  return rec;
}

}  // namespace

/// What a palette batch is and what its loss is; the TrainingLoop does the rest.
class PaletteTrainingTask : public TrainingTask {
 public:
  using Batches = std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>>;

  PaletteTrainingTask(PaletteEncoder encoder, const TokenizedCatalog& catalog, const PaletteTrainerOptions& options)
      : encoder_(std::move(encoder)), catalog_(catalog), options_(options) {
    if (!encoder_) throw ValueError("PaletteTrainer: the encoder is empty (nullptr)");
    const auto& tokens = encoder_->tokens();
    if (catalog_.num_attributes() != tokens.num_tasks()) {
      throw ValueError(fmt::format("PaletteTrainer: the catalog has {} attributes, the encoder {} tasks",
                                   catalog_.num_attributes(), tokens.num_tasks()));
    }
    if (catalog_.num_content_attributes != encoder_->options().num_content_attributes()) {
      throw ValueError(fmt::format("PaletteTrainer: the catalog was tokenized with r = {}, the encoder has r = {}",
                                   catalog_.num_content_attributes, encoder_->options().num_content_attributes()));
    }
    const auto n = static_cast<std::int64_t>(catalog_.size());
    if (n < 1) throw ValueError("PaletteTrainer: the catalog has no items");
    std::vector<ItemIndex> all(n);
    std::iota(all.begin(), all.end(), 0);
    std::mt19937_64 rng(options_.seed());
    std::shuffle(all.begin(), all.end(), rng);
    auto n_val = static_cast<std::int64_t>(std::floor(options_.validation_fraction() * double(n)));
    if (options_.validation_fraction() > 0 && n_val == 0 && n >= 2) n_val = 1;
    validation_items_.assign(all.begin(), all.begin() + n_val);
    train_items_.assign(all.begin() + n_val, all.end());
    std::sort(validation_items_.begin(), validation_items_.end());
    std::sort(train_items_.begin(), train_items_.end());
    if (train_items_.empty()) throw ValueError("PaletteTrainer: no training items left after the validation split");
    encoder_->to(options_.device());
    bool any_trainable = false;
    for (auto& p : encoder_->parameters()) any_trainable = any_trainable || p.requires_grad();
    if (!any_trainable) throw ValueError("PaletteTrainer: the encoder has no trainable parameter (requires_grad)");
  }

  torch::nn::Module& module() override { return *encoder_; }
  std::int64_t num_batches(std::int64_t epoch) override { return static_cast<std::int64_t>(batches(epoch).size()); }

  StepOutput train_step(std::int64_t epoch, std::int64_t batch) override {
    const auto& tokens = encoder_->tokens();
    const auto& spec = batches(epoch)[batch];
    const auto [begin, end] = shard_bounds(std::int64_t(spec.size()), rank_, world_size_, "PaletteTrainer");
    GradientSync* sync = world_size_ > 1 && !options_.shard_local_losses() ? options_.loop().gradient_sync().get()
                                                                            : nullptr;
    // With the losses' reduction "sum" the global batch's loss is the sum of the shards' sums, which
    // the loop's weighted mean (weights: label tokens) cannot rebuild. Every rank, an empty one too,
    // then weighs 1, so that the loop's mean is the plain mean over the ranks, and multiplies its sums
    // by the world size: the mean of the ranks' losses, and the average of their gradients, are the
    // whole batch's.
    const bool sums = world_size_ > 1 && encoder_->options().losses().reduction() == Reduction::kSum;
    const auto ranks = double(world_size_);
    if (begin == end) {  // a batch smaller than the group: this rank's shard is empty
      last_items_.clear();
      if (!sums) {  // it weighs nothing
        if (sync) global_palettes(*sync, spec, torch::Tensor(), 0.0);  // every rank joins the gather
        return {torch::zeros({}), 0, 0, 0, {0.0, 0.0, 0.0, 0.0}, 0.0};
      }
      // Weight 1: no generation loss, the whole batch's terms (every rank holds their value), and a
      // loss the loop's backward() reaches no parameter from (their gradients average in as zeros).
      auto loss = torch::zeros({}, torch::requires_grad());
      std::vector<double> parts = {0.0, 0.0, 0.0, 0.0};
      if (sync) {
        const auto palettes = global_palettes(*sync, spec, torch::Tensor(), 1.0).first;
        const auto terms = PaletteLossImpl(encoder_->options().losses())
                               .combine_scaled(torch::zeros({}, palettes.options()), palettes, 0.0);
        loss = loss + terms.total.detach().to(torch::kCPU, torch::kFloat32);
        parts = {0.0, terms.intra.item<double>(), terms.inter.item<double>(), terms.decorrelation.item<double>()};
      }
      return {loss, 0, 0, 0, parts, 1.0};
    }
    std::vector<SampleLayout> samples;
    samples.reserve(std::size_t(end - begin));
    for (auto k = begin; k < end; ++k) {
      samples.push_back(make_sample(catalog_, spec[std::size_t(k)].first, spec[std::size_t(k)].second, tokens));
    }
    const bool need_full = encoder_->options().path() == PalettePath::kReference;
    auto b = collate_samples(samples, tokens, need_full).to(options_.device());
    last_items_ = b.items;
    auto out = encoder_->forward(b);
    StepOutput step;
    step.loss = out.loss;
    // The generation loss is a mean over label tokens: the shards weigh their tokens (sums: 1 each).
    step.weight = sums ? 1.0 : double(out.label_tokens);
    if (sums) out.generation_loss = out.generation_loss * ranks;
    if (sync) {
      // The intra/inter/decorrelation losses of the global batch: every rank computes them on the
      // palettes of all the batch's items, its own in the graph. Their gradient is scaled by the
      // inverse of this rank's weight share, which the loop's weighting (weight / sum of weights)
      // undoes, so that the ranks' gradients add up to the global batch's.
      const auto [palettes, total_weight] = global_palettes(*sync, spec, out.palettes, step.weight);
      // A non-empty shard has label tokens (every answer ends with eos); 0 would leave no gradient.
      const double scale = step.weight > 0 ? total_weight / step.weight : 0.0;
      auto parts = PaletteLossImpl(encoder_->options().losses()).combine_scaled(out.generation_loss, palettes, scale);
      step.loss = parts.total;
      out.intra_loss = parts.intra;
      out.inter_loss = parts.inter;
      out.decorrelation_loss = parts.decorrelation;
    } else if (sums) {  // the terms within the shard, each a sum over it: the shards' sums add up
      step.loss = out.loss * ranks;
      out.intra_loss = out.intra_loss * ranks;
      out.inter_loss = out.inter_loss * ranks;
      out.decorrelation_loss = out.decorrelation_loss * ranks;
    }
    step.tokens = b.num_tokens;
    step.labels = out.label_tokens;
    step.correct = out.correct_tokens;
    step.parts = {out.generation_loss.item<double>(), out.intra_loss.item<double>(), out.inter_loss.item<double>(),
                  out.decorrelation_loss.item<double>()};
    return step;
  }

  /// Data-parallel: the palettes [G, L, D] of the global batch's distinct items, in the order one
  /// process's batch has them (first appearance), and the sum of the ranks' weights. An item whose
  /// samples fall into several shards counts once, owned by the first rank that holds it: that rank's
  /// row of `mine` ([N, L, D], this shard's items in collate order; undefined for an empty shard)
  /// stays in the graph, every other row is the gathered (detached) copy of its owner's.
  std::pair<torch::Tensor, double> global_palettes(GradientSync& sync, const Batches::value_type& spec,
                                                   const torch::Tensor& mine, double weight) {
    const auto R = world_size_;
    const auto L = encoder_->options().palette_size();
    const auto D = encoder_->palette_dim();
    // Every rank reads the same global batch, so each knows every shard's items without asking.
    std::vector<std::vector<ItemIndex>> items(static_cast<std::size_t>(R));
    std::int64_t most = 0;
    for (std::int64_t r = 0; r < R; ++r) {
      const auto [b, e] = shard_bounds(std::int64_t(spec.size()), r, R, "PaletteTrainer");
      auto& list = items[std::size_t(r)];
      for (auto k = b; k < e; ++k) {
        const auto item = spec[std::size_t(k)].first;
        if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
      }
      most = std::max(most, std::int64_t(list.size()));
    }
    const auto own = std::int64_t(items[std::size_t(rank_)].size());
    TORCH_INTERNAL_ASSERT(!mine.defined() || (mine.dim() == 3 && mine.size(0) == own && mine.size(1) == L &&
                                              mine.size(2) == D),
                          "PaletteTrainer: the shard's palettes do not match its items");
    // One collective: this rank's palettes padded to the largest shard's item count, then its weight;
    // float64 holds any palette dtype and the weight exactly.
    auto send = torch::zeros({most * L * D + 1}, torch::kFloat64);
    if (own > 0) send.narrow(0, 0, own * L * D).copy_(mine.detach().reshape({-1}).to(torch::kCPU, torch::kFloat64));
    send[most * L * D] = weight;
    const auto got = sync.all_gather(send);
    TORCH_INTERNAL_ASSERT(std::int64_t(got.size()) == R, "PaletteTrainer: all_gather returned ", got.size(),
                          " tensors");
    double total_weight = 0;
    for (const auto& g : got) total_weight += g[most * L * D].item<double>();
    const auto options = mine.defined() ? mine.options() : encoder_->decoder->parameters().front().options();
    auto others = torch::stack(got).narrow(1, 0, most * L * D).reshape({R * most, L, D}).to(options);
    auto pool = own > 0 ? torch::cat({mine, others}) : others;  // own rows first, then rank r's at own + r * most
    std::vector<std::int64_t> index;
    std::vector<ItemIndex> seen;
    for (std::int64_t r = 0; r < R; ++r) {
      const auto& list = items[std::size_t(r)];
      for (std::int64_t i = 0; i < std::int64_t(list.size()); ++i) {
        if (std::find(seen.begin(), seen.end(), list[std::size_t(i)]) != seen.end()) continue;
        seen.push_back(list[std::size_t(i)]);
        index.push_back(r == rank_ ? i : own + r * most + i);
      }
    }
    auto rows = torch::tensor(index, torch::kInt64).to(pool.device());
    return {pool.index_select(0, rows), total_weight};
  }

  std::optional<ValidationRecord> validate() override {
    if (validation_items_.empty()) return std::nullopt;
    const auto rec = evaluate(validation_items_);
    return ValidationRecord{0, rec.loss, rec.token_accuracy,
                            {rec.generation_loss, rec.intra_loss, rec.inter_loss, rec.decorrelation_loss}};
  }

  void set_shard(std::int64_t rank, std::int64_t world_size) override {
    shard_bounds(options_.batch_size(), rank, world_size, "PaletteTrainer");  // checks the rank
    rank_ = rank;
    world_size_ = world_size;
  }

  std::vector<std::string> part_names() override { return {"gen", "intra", "inter", "decor"}; }

  std::string describe_batch(std::int64_t, std::int64_t) override {
    std::vector<std::string> ids;
    for (auto item : last_items_) ids.push_back(catalog_.item_ids.empty() ? std::to_string(item) : catalog_.item_ids[item]);
    return fmt::format("items of the batch: {}", fmt::join(ids, ", "));
  }

  std::vector<std::int64_t> fingerprint() override {
    const auto& eo = encoder_->options();
    std::uint64_t h = 1469598103934665603ULL;
    for (auto item : train_items_) h = (h ^ static_cast<std::uint64_t>(item)) * 1099511628211ULL;
    return {eo.palette_size(), eo.num_attributes(), options_.batch_size(), static_cast<std::int64_t>(options_.seed()),
            options_.group_batches(), static_cast<std::int64_t>(train_items_.size()), static_cast<std::int64_t>(h)};
  }
  std::vector<std::string> fingerprint_names() override {
    return {"palette_size", "num_attributes", "batch_size", "seed", "group_batches",
            "training items (catalog or validation split differ)",
            "a hash of the training items (catalog or validation split differ)"};
  }

  std::string progress_line(const std::string& name, const TrainingRecord& r, std::int64_t epoch, std::int64_t,
                            std::int64_t) override {
    return fmt::format("{} step {} | epoch {} | loss {:.4f} ({}) | acc {:.3f} | {:.0f} tok/s", name, r.step, epoch + 1,
                       r.loss, parts_text(r.parts), r.token_accuracy, r.tokens_per_second);
  }
  std::string validation_line(const std::string& name, const ValidationRecord& r, bool best) override {
    return fmt::format("{} validation step {} | loss {:.4f} ({}) | acc {:.3f}{}", name, r.step, r.loss,
                       parts_text(r.parts), r.token_accuracy, best ? " (best)" : "");
  }

  // "gen 1.2345 intra 0.1234 inter 0.0123", with " decor x" when the decorrelation penalty is weighted.
  std::string parts_text(const std::vector<double>& parts) const {
    auto text = fmt::format("gen {:.4f} intra {:.4f} inter {:.4f}", parts.at(0), parts.at(1), parts.at(2));
    if (encoder_->options().losses().decorrelation_weight() > 0) text += fmt::format(" decor {:.4f}", parts.at(3));
    return text;
  }

  Batches epoch_batches(std::int64_t epoch) const {
    const auto m = catalog_.num_attributes();
    const auto L = encoder_->options().palette_size();
    std::vector<std::pair<ItemIndex, std::int64_t>> samples;
    samples.reserve(train_items_.size() * m);
    for (auto item : train_items_)
      for (std::int64_t t = 0; t < m; ++t) samples.emplace_back(item, t);
    std::mt19937_64 rng(options_.seed() + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(epoch + 1));
    std::shuffle(samples.begin(), samples.end(), rng);
    const auto bs = options_.batch_size();
    const auto window = bs * options_.group_batches();
    Batches out;
    for (std::size_t w = 0; w < samples.size(); w += window) {
      const auto end = std::min(samples.size(), w + static_cast<std::size_t>(window));
      std::stable_sort(samples.begin() + w, samples.begin() + end, [&](const auto& a, const auto& b) {
        return sample_length(catalog_, a.first, a.second, L) < sample_length(catalog_, b.first, b.second, L);
      });
      for (auto b = w; b < end; b += bs) {
        out.emplace_back(samples.begin() + b, samples.begin() + std::min(end, b + static_cast<std::size_t>(bs)));
      }
    }
    std::shuffle(out.begin(), out.end(), rng);
    return out;
  }

  /// Mean losses and token accuracy of every task of items (step 0).
  PaletteLossRecord evaluate(const std::vector<ItemIndex>& items) {
    PaletteLossRecord rec;
    if (items.empty()) return rec;
    EvalScope scope(*encoder_);
    torch::NoGradGuard no_grad;
    const auto& tokens = encoder_->tokens();
    const auto& lo = encoder_->options().losses();
    const auto bs = static_cast<std::size_t>(options_.batch_size());
    double gen_sum = 0, intra_sum = 0, inter_sum = 0, decorrelation_sum = 0;
    std::int64_t label_tokens = 0, correct = 0, batches = 0;
    for (std::int64_t task = 0; task < tokens.num_tasks(); ++task) {
      for (std::size_t b = 0; b < items.size(); b += bs) {
        std::vector<SampleLayout> samples;
        for (auto k = b; k < std::min(items.size(), b + bs); ++k) samples.push_back(make_sample(catalog_, items[k], task, tokens));
        auto batch = collate_samples(samples, tokens, false).to(options_.device());
        auto out = encoder_->forward(batch, PalettePath::kFast);
        const double g = out.generation_loss.item<double>();
        gen_sum += lo.reduction() == Reduction::kMean ? g * double(out.label_tokens) : g;
        intra_sum += out.intra_loss.item<double>();
        inter_sum += out.inter_loss.item<double>();
        decorrelation_sum += out.decorrelation_loss.item<double>();
        label_tokens += out.label_tokens;
        correct += out.correct_tokens;
        ++batches;
      }
    }
    rec.generation_loss = lo.reduction() == Reduction::kMean ? gen_sum / std::max<double>(1, label_tokens) : gen_sum;
    rec.intra_loss = intra_sum / double(batches);
    rec.inter_loss = inter_sum / double(batches);
    rec.decorrelation_loss = decorrelation_sum / double(batches);
    rec.loss = palette_total_loss(lo, rec.generation_loss, rec.intra_loss, rec.inter_loss, rec.decorrelation_loss);
    rec.token_accuracy = label_tokens > 0 ? double(correct) / double(label_tokens) : 0.0;
    return rec;
  }

  std::vector<ItemIndex> train_items_, validation_items_;

 private:
  const Batches& batches(std::int64_t epoch) {
    if (epoch != cached_epoch_) {
      cached_batches_ = epoch_batches(epoch);
      cached_epoch_ = epoch;
    }
    return cached_batches_;
  }

  PaletteEncoder encoder_;
  const TokenizedCatalog& catalog_;
  PaletteTrainerOptions options_;
  std::int64_t cached_epoch_ = -1;
  Batches cached_batches_;
  std::vector<ItemIndex> last_items_;
  std::int64_t rank_ = 0, world_size_ = 1;  // this process's shard of every batch
};

PaletteTrainer::PaletteTrainer(PaletteEncoder encoder, const TokenizedCatalog& catalog, PaletteTrainerOptions options)
    : encoder_(std::move(encoder)), options_(std::move(options)) {
  options_.check();
  task_ = std::make_unique<PaletteTrainingTask>(encoder_, catalog, options_);
  auto loop = options_.loop();
  loop.name("palette").seed(options_.seed());
  loop_ = std::make_unique<TrainingLoop>(*task_, std::move(loop));
}

PaletteTrainer::~PaletteTrainer() = default;
PaletteTrainer::PaletteTrainer(PaletteTrainer&&) noexcept = default;
PaletteTrainer& PaletteTrainer::operator=(PaletteTrainer&&) noexcept = default;

const std::vector<ItemIndex>& PaletteTrainer::train_items() const noexcept { return task_->train_items_; }
const std::vector<ItemIndex>& PaletteTrainer::validation_items() const noexcept { return task_->validation_items_; }
std::int64_t PaletteTrainer::step() const noexcept { return loop_->step(); }
torch::optim::Optimizer& PaletteTrainer::optimizer() { return loop_->optimizer(); }

std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>> PaletteTrainer::epoch_batches(std::int64_t epoch) const {
  return task_->epoch_batches(epoch);
}

PaletteLossRecord PaletteTrainer::evaluate(const std::vector<ItemIndex>& items) {
  const ScopedBlasThreads gemm(palette_gemm_threads());
  auto rec = task_->evaluate(items);
  rec.step = loop_->step();
  return rec;
}

void PaletteTrainer::save_checkpoint(const std::filesystem::path& path) const { loop_->save_checkpoint(path); }

void PaletteTrainer::load_checkpoint(const std::filesystem::path& path) { loop_->load_checkpoint(path); }

PaletteTrainResult PaletteTrainer::train() {
  // The step is mostly large GEMMs, which torch hands to BLAS whole: OpenBLAS gets the cores while it
  // runs (include/lamia/core/blas_threads.hpp; 1.47x on 2 cores, docs/palette.md "Session 13").
  const ScopedBlasThreads gemm(palette_gemm_threads());
  const auto r = loop_->run();
  encoder_->train();  // the loop ends in eval mode; this trainer always left the encoder in training mode
  PaletteTrainResult result;
  result.steps = r.steps;
  result.epochs_completed = r.epochs_completed - r.resumed_at_epoch;  // in this run
  result.resumed = r.resumed;
  result.resumed_at_step = r.resumed_at_step;
  result.stopped_early = r.stopped_early;
  result.stop_reason = r.stop_reason;
  for (const auto& t : r.train_history) {
    result.train_history.push_back(palette_record(t.step, t.loss, t.parts, t.token_accuracy, t.tokens_per_second));
  }
  for (const auto& v : r.validation_history) {
    result.validation_history.push_back(palette_record(v.step, v.loss, v.parts, v.token_accuracy, 0.0));
  }
  result.best_validation_loss = r.best_validation_loss;
  result.best_step = r.best_step;
  result.tokens_per_second = r.tokens_per_second;
  result.seconds = r.seconds;
  return result;
}

}  // namespace lamia
