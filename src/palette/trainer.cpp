#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/palette/trainer.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

namespace lamia {

void PaletteTrainerOptions::check() const {
  auto bad = [](const char* name, const std::string& want, const std::string& got) {
    throw ValueError(fmt::format("PaletteTrainerOptions: {} must be {}, got {}", name, want, got));
  };
  if (batch_size_ < 1) bad("batch_size", ">= 1", std::to_string(batch_size_));
  if (!(learning_rate_ > 0)) bad("learning_rate", "> 0", fmt::format("{}", learning_rate_));
  if (weight_decay_ < 0) bad("weight_decay", ">= 0", fmt::format("{}", weight_decay_));
  if (epochs_ < 1) bad("epochs", ">= 1", std::to_string(epochs_));
  if (max_steps_ < 0) bad("max_steps", ">= 0", std::to_string(max_steps_));
  if (grad_clip_norm_ < 0) bad("grad_clip_norm", ">= 0", fmt::format("{}", grad_clip_norm_));
  if (!(validation_fraction_ >= 0 && validation_fraction_ < 1)) {
    bad("validation_fraction", "in [0, 1)", fmt::format("{}", validation_fraction_));
  }
  if (eval_every_ < 0) bad("eval_every", ">= 0", std::to_string(eval_every_));
  if (patience_ < 0) bad("patience", ">= 0", std::to_string(patience_));
  if (group_batches_ < 1) bad("group_batches", ">= 1", std::to_string(group_batches_));
  if (checkpoint_every_ < 0) bad("checkpoint_every", ">= 0", std::to_string(checkpoint_every_));
  if (log_every_ < 0) bad("log_every", ">= 0", std::to_string(log_every_));
}

void apply_palette_lora(PaletteEncoderImpl& encoder, const LoraOptions& options, bool train_embeddings) {
  apply_lora(*encoder.decoder, options);
  if (train_embeddings) {
    for (auto& p : encoder.decoder->embed_tokens_->parameters()) p.set_requires_grad(true);
  }
}

namespace {

std::vector<torch::Tensor> trainable(PaletteEncoderImpl& encoder) {
  std::vector<torch::Tensor> out;
  for (auto& p : encoder.parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

std::int64_t sample_length(const TokenizedCatalog& c, ItemIndex item, std::int64_t task, std::int64_t L) {
  const auto& it = c.items[item];
  return static_cast<std::int64_t>(it.content.size()) + 2 * L + 2 + static_cast<std::int64_t>(it.answers[task].size());
}

struct EvalScope {
  torch::nn::Module& m;
  bool was_training;
  explicit EvalScope(torch::nn::Module& module) : m(module), was_training(module.is_training()) { m.eval(); }
  ~EvalScope() { m.train(was_training); }
};

constexpr std::int64_t kCheckpointFormat = 1;

torch::Tensor string_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<std::int64_t>(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<std::uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_string(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>()), static_cast<std::size_t>(c.numel()));
}

}  // namespace

PaletteTrainer::PaletteTrainer(PaletteEncoder encoder, const TokenizedCatalog& catalog, PaletteTrainerOptions options)
    : encoder_(std::move(encoder)), catalog_(catalog), options_(std::move(options)) {
  options_.check();
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
  auto params = trainable(*encoder_);
  if (params.empty()) throw ValueError("PaletteTrainer: the encoder has no trainable parameter (requires_grad)");
  optimizer_ = std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(options_.learning_rate()).weight_decay(options_.weight_decay()));
}

std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>> PaletteTrainer::epoch_batches(std::int64_t epoch) const {
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
  std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>> batches;
  for (std::size_t w = 0; w < samples.size(); w += window) {
    const auto end = std::min(samples.size(), w + static_cast<std::size_t>(window));
    std::stable_sort(samples.begin() + w, samples.begin() + end, [&](const auto& a, const auto& b) {
      return sample_length(catalog_, a.first, a.second, L) < sample_length(catalog_, b.first, b.second, L);
    });
    for (auto b = w; b < end; b += bs) {
      batches.emplace_back(samples.begin() + b, samples.begin() + std::min(end, b + static_cast<std::size_t>(bs)));
    }
  }
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

PaletteLossRecord PaletteTrainer::evaluate(const std::vector<ItemIndex>& items) {
  PaletteLossRecord rec;
  rec.step = step_;
  if (items.empty()) return rec;
  EvalScope scope(*encoder_);
  torch::NoGradGuard no_grad;
  const auto& tokens = encoder_->tokens();
  const auto& lo = encoder_->options().losses();
  const auto bs = static_cast<std::size_t>(options_.batch_size());
  double gen_sum = 0, intra_sum = 0, inter_sum = 0;
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
      label_tokens += out.label_tokens;
      correct += out.correct_tokens;
      ++batches;
    }
  }
  rec.generation_loss = lo.reduction() == Reduction::kMean ? gen_sum / std::max<double>(1, label_tokens) : gen_sum;
  rec.intra_loss = intra_sum / double(batches);
  rec.inter_loss = inter_sum / double(batches);
  double cl = 0;
  switch (lo.contrastive()) {
    case ContrastiveMode::kBoth: cl = rec.intra_loss + rec.inter_loss; break;
    case ContrastiveMode::kIntraOnly: cl = rec.intra_loss; break;
    case ContrastiveMode::kInterOnly: cl = rec.inter_loss; break;
    case ContrastiveMode::kOff: break;
  }
  rec.loss = rec.generation_loss + lo.gamma() * cl;
  rec.token_accuracy = label_tokens > 0 ? double(correct) / double(label_tokens) : 0.0;
  return rec;
}

void PaletteTrainer::save_checkpoint(const std::filesystem::path& path) const {
  torch::serialize::OutputArchive ar;
  ar.write("format", torch::tensor({kCheckpointFormat}, torch::kInt64));
  torch::serialize::OutputArchive model;
  encoder_->save(model);
  ar.write("model", model);
  torch::serialize::OutputArchive optim;
  optimizer_->save(optim);
  ar.write("optimizer", optim);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("rng", gen.get_state());
  }
  if (options_.device().is_cuda()) {
    // Dropout on the GPU draws from the device's generator: its state resumes too.
    auto gen = at::globalContext().defaultGenerator(options_.device());
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("cuda_rng", gen.get_state());
  }
  const auto& eo = encoder_->options();
  ar.write("state", torch::tensor({step_, epoch_, batch_in_epoch_, best_step_, evaluations_without_improvement_,
                                   static_cast<std::int64_t>(finished_), eo.palette_size(), eo.num_attributes(),
                                   options_.batch_size(), static_cast<std::int64_t>(options_.seed()),
                                   options_.group_batches()},
                                  torch::kInt64));
  ar.write("best_loss", torch::tensor({best_validation_loss_}, torch::kFloat64));
  ar.write("finish_reason", string_tensor(finish_reason_));
  ar.write("train_items", torch::tensor(std::vector<std::int64_t>(train_items_.begin(), train_items_.end()), torch::kInt64));
  ar.write("num_best", torch::tensor({static_cast<std::int64_t>(best_parameters_.size())}, torch::kInt64));
  for (std::size_t i = 0; i < best_parameters_.size(); ++i) ar.write(fmt::format("best_{}", i), best_parameters_[i]);
  write_file_atomically(path, [&](std::ostream& os) { ar.save_to(os); });
}

void PaletteTrainer::load_checkpoint(const std::filesystem::path& path) {
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path.string(), options_.device());
  } catch (const c10::Error& e) {
    throw IOError(fmt::format("cannot read palette checkpoint '{}': {}", path.string(), e.what_without_backtrace()));
  }
  auto read = [&](const char* key) {
    torch::Tensor t;
    if (!ar.try_read(key, t)) {
      throw ValueError(fmt::format("palette checkpoint '{}': missing entry '{}' (not a palette trainer checkpoint?)",
                                   path.string(), key));
    }
    return t.to(torch::kCPU);
  };
  const auto format = read("format")[0].item<std::int64_t>();
  if (format != kCheckpointFormat) {
    throw ValueError(fmt::format("palette checkpoint '{}': format {} (this build reads format {})", path.string(),
                                 format, kCheckpointFormat));
  }
  auto state = read("state");
  if (state.numel() != 11) throw ValueError(fmt::format("palette checkpoint '{}': malformed 'state'", path.string()));
  auto s = state.accessor<std::int64_t, 1>();
  const auto& eo = encoder_->options();
  auto expect = [&](std::int64_t got, std::int64_t want, const char* what) {
    if (got != want) {
      throw ValueError(fmt::format("palette checkpoint '{}' was written with {} = {}, this trainer has {}",
                                   path.string(), what, got, want));
    }
  };
  expect(s[6], eo.palette_size(), "palette_size");
  expect(s[7], eo.num_attributes(), "num_attributes");
  expect(s[8], options_.batch_size(), "batch_size");
  expect(s[9], static_cast<std::int64_t>(options_.seed()), "seed");
  expect(s[10], options_.group_batches(), "group_batches");
  auto items = read("train_items");
  if (!items.equal(torch::tensor(std::vector<std::int64_t>(train_items_.begin(), train_items_.end()), torch::kInt64))) {
    throw ValueError(fmt::format("palette checkpoint '{}' was trained on other items (catalog or validation split differ)",
                                 path.string()));
  }
  try {
    torch::serialize::InputArchive model, optim;
    ar.read("model", model);
    encoder_->load(model);
    ar.read("optimizer", optim);
    optimizer_->load(optim);
  } catch (const c10::Error& e) {
    throw ValueError(fmt::format("palette checkpoint '{}' does not fit this model: {}", path.string(),
                                 e.what_without_backtrace()));
  }
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(read("rng"));
  }
  torch::Tensor cuda_rng;
  if (options_.device().is_cuda() && ar.try_read("cuda_rng", cuda_rng)) {
    // Only a checkpoint written on CUDA has it; one written on the CPU leaves the device's generator as it is.
    auto gen = at::globalContext().defaultGenerator(options_.device());
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(cuda_rng.to(torch::kCPU));
  }
  step_ = s[0];
  epoch_ = s[1];
  batch_in_epoch_ = s[2];
  best_step_ = s[3];
  evaluations_without_improvement_ = s[4];
  finished_ = s[5] != 0;
  best_validation_loss_ = read("best_loss")[0].item<double>();
  finish_reason_ = tensor_string(read("finish_reason"));
  const auto num_best = read("num_best")[0].item<std::int64_t>();
  best_parameters_.clear();
  for (std::int64_t i = 0; i < num_best; ++i) best_parameters_.push_back(read(fmt::format("best_{}", i).c_str()).to(options_.device()));
}

PaletteTrainResult PaletteTrainer::train() {
  using clock = std::chrono::steady_clock;
  const auto run_start = clock::now();
  PaletteTrainResult result;
  std::ostream& log = options_.log() ? *options_.log() : std::cerr;
  const std::filesystem::path ckpt = options_.checkpoint_path();
  std::int64_t last_checkpoint_step = -1;
  if (!ckpt.empty() && options_.resume() && std::filesystem::exists(ckpt)) {
    load_checkpoint(ckpt);
    result.resumed = true;
    result.resumed_at_step = step_;
    last_checkpoint_step = step_;
    if (options_.log_every() > 0) log << fmt::format("palette: resumed from '{}' at step {} (epoch {}, batch {})\n",
                                                     ckpt.string(), step_, epoch_ + 1, batch_in_epoch_);
  } else {
    torch::manual_seed(options_.seed());
  }
  auto save = [&] {
    if (ckpt.empty()) return;
    save_checkpoint(ckpt);
    last_checkpoint_step = step_;
  };
  const auto& tokens = encoder_->tokens();
  const auto params = trainable(*encoder_);
  const bool need_full = encoder_->options().path() == PalettePath::kReference;
  auto all_params = encoder_->parameters();

  auto run_evaluation = [&] {
    if (validation_items_.empty()) return;
    auto rec = evaluate(validation_items_);
    result.validation_history.push_back(rec);
    std::string note;
    if (rec.loss < best_validation_loss_) {
      best_validation_loss_ = rec.loss;
      best_step_ = step_;
      evaluations_without_improvement_ = 0;
      if (options_.restore_best()) {
        torch::NoGradGuard no_grad;
        best_parameters_.clear();
        for (auto& p : all_params) best_parameters_.push_back(p.detach().clone());
      }
      note = " (best)";
    } else {
      ++evaluations_without_improvement_;
      if (options_.patience() > 0 && evaluations_without_improvement_ >= options_.patience()) {
        finished_ = true;
        finish_reason_ = fmt::format("early stopping (no better validation loss in {} evaluations; best {:.4f} at step {})",
                                     evaluations_without_improvement_, best_validation_loss_, best_step_);
      }
    }
    if (options_.log_every() > 0) {
      log << fmt::format("palette validation step {} | loss {:.4f} (gen {:.4f} intra {:.4f} inter {:.4f}) | acc {:.3f}{}\n",
                         step_, rec.loss, rec.generation_loss, rec.intra_loss, rec.inter_loss, rec.token_accuracy, note);
      log.flush();
    }
  };

  // Sums over the current logging interval.
  double s_loss = 0, s_gen = 0, s_intra = 0, s_inter = 0;
  std::int64_t s_correct = 0, s_labels = 0, s_steps = 0, s_tokens = 0, run_tokens = 0;
  double s_seconds = 0, run_seconds = 0;
  encoder_->train();
  bool stop = finished_;
  if (finished_) result.stop_reason = finish_reason_;
  while (!stop) {
    if (epoch_ >= options_.epochs()) {
      result.stop_reason = "epochs done";
      break;
    }
    const auto batches = epoch_batches(epoch_);
    while (batch_in_epoch_ < static_cast<std::int64_t>(batches.size())) {
      if (options_.max_steps() > 0 && step_ >= options_.max_steps()) {
        stop = true;
        result.stop_reason = "max_steps reached";
        break;
      }
      const auto t0 = clock::now();
      const auto& spec = batches[batch_in_epoch_];
      std::vector<SampleLayout> samples;
      samples.reserve(spec.size());
      for (const auto& [item, task] : spec) samples.push_back(make_sample(catalog_, item, task, tokens));
      auto batch = collate_samples(samples, tokens, need_full).to(options_.device());
      optimizer_->zero_grad();
      auto out = encoder_->forward(batch);
      const double loss = out.loss.item<double>();
      auto fail = [&](const std::string& what) {
        std::vector<std::string> ids;
        for (auto item : batch.items) ids.push_back(catalog_.item_ids.empty() ? std::to_string(item) : catalog_.item_ids[item]);
        std::string kept = "no checkpoint was written";
        if (last_checkpoint_step >= 0) {
          kept = fmt::format("the last checkpoint '{}' (step {}) is kept", ckpt.string(), last_checkpoint_step);
        } else if (!ckpt.empty() && std::filesystem::exists(ckpt)) {
          kept = fmt::format("the checkpoint '{}' is kept (not overwritten)", ckpt.string());
        }
        throw ValueError(fmt::format("palette training stopped: {} at step {} (epoch {}, batch {}); items of the batch: {}; {}",
                                     what, step_ + 1, epoch_ + 1, batch_in_epoch_, fmt::join(ids, ", "), kept));
      };
      if (!std::isfinite(loss)) {
        fail(fmt::format("non-finite loss {} (gen {}, intra {}, inter {})", loss, out.generation_loss.item<double>(),
                         out.intra_loss.item<double>(), out.inter_loss.item<double>()));
      }
      out.loss.backward();
      if (options_.grad_clip_norm() > 0) {
        const double norm = torch::nn::utils::clip_grad_norm_(params, options_.grad_clip_norm());
        if (!std::isfinite(norm)) fail(fmt::format("non-finite gradient norm {}", norm));
      }
      optimizer_->step();
      ++step_;
      ++batch_in_epoch_;
      const double secs = std::chrono::duration<double>(clock::now() - t0).count();
      s_loss += loss;
      s_gen += out.generation_loss.item<double>();
      s_intra += out.intra_loss.item<double>();
      s_inter += out.inter_loss.item<double>();
      s_correct += out.correct_tokens;
      s_labels += out.label_tokens;
      s_tokens += batch.num_tokens;
      s_seconds += secs;
      ++s_steps;
      run_tokens += batch.num_tokens;
      run_seconds += secs;
      if (options_.log_every() > 0 && step_ % options_.log_every() == 0) {
        PaletteLossRecord rec;
        rec.step = step_;
        rec.loss = s_loss / s_steps;
        rec.generation_loss = s_gen / s_steps;
        rec.intra_loss = s_intra / s_steps;
        rec.inter_loss = s_inter / s_steps;
        rec.token_accuracy = s_labels > 0 ? double(s_correct) / double(s_labels) : 0.0;
        rec.tokens_per_second = s_seconds > 0 ? double(s_tokens) / s_seconds : 0.0;
        result.train_history.push_back(rec);
        log << fmt::format("palette step {} | epoch {} | loss {:.4f} (gen {:.4f} intra {:.4f} inter {:.4f}) | acc {:.3f} | {:.0f} tok/s\n",
                           step_, epoch_ + 1, rec.loss, rec.generation_loss, rec.intra_loss, rec.inter_loss,
                           rec.token_accuracy, rec.tokens_per_second);
        log.flush();
        s_loss = s_gen = s_intra = s_inter = s_seconds = 0;
        s_correct = s_labels = s_steps = s_tokens = 0;
      }
      const bool eval_now = options_.eval_every() > 0 && step_ % options_.eval_every() == 0;
      if (eval_now) run_evaluation();
      if (eval_now || (options_.checkpoint_every() > 0 && step_ % options_.checkpoint_every() == 0)) save();
      if (finished_) {
        stop = true;
        break;
      }
    }
    if (stop) break;
    ++epoch_;
    batch_in_epoch_ = 0;
    ++result.epochs_completed;
    if (options_.eval_every() == 0) run_evaluation();
    save();
    if (finished_) break;
  }
  if (finished_) result.stop_reason = finish_reason_;
  result.stopped_early = finished_ && finish_reason_.rfind("early stopping", 0) == 0;
  if (last_checkpoint_step != step_) save();
  if (options_.restore_best() && !best_parameters_.empty()) {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < all_params.size() && i < best_parameters_.size(); ++i) all_params[i].copy_(best_parameters_[i]);
  }
  result.steps = step_;
  result.best_validation_loss = best_validation_loss_;
  result.best_step = best_step_;
  result.tokens_per_second = run_seconds > 0 ? double(run_tokens) / run_seconds : 0.0;
  result.seconds = std::chrono::duration<double>(clock::now() - run_start).count();
  if (options_.log_every() > 0) {
    log << fmt::format("palette: {} after {} steps ({:.1f} s, {:.0f} tok/s)\n", result.stop_reason, step_,
                       result.seconds, result.tokens_per_second);
  }
  return result;
}

}  // namespace lamia
