#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/core/progress.hpp>
#include <lamia/nn/optimizer.hpp>
#include <lamia/nn/training_loop.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>

namespace lamia {
namespace {

// 2: the palette trainer moved onto the loop; runs that ended at their epochs are no longer final.
constexpr std::int64_t kCheckpointFormat = 2;

torch::Tensor string_tensor(const std::string& s) {
  auto t = torch::empty({std::int64_t(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<std::uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_string(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>()), std::size_t(c.numel()));
}

torch::Device module_device(torch::nn::Module& m) {
  auto params = m.parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

// " (gen 1.2000 intra 0.3000)" with the given format for the values; "" without parts.
std::string parts_text(const std::vector<std::string>& names, const std::vector<double>& parts, const char* sep,
                       bool precise) {
  if (parts.empty()) return "";
  std::string out = " (";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += i < names.size() ? names[i] : fmt::format("part{}", i);
    out += precise ? fmt::format(" {}", parts[i]) : fmt::format(" {:.4f}", parts[i]);
  }
  return out + ")";
}

}  // namespace

std::optional<ValidationRecord> TrainingTask::validate() {
  auto loss = validation_loss();
  if (!loss) return std::nullopt;
  ValidationRecord rec;
  rec.loss = *loss;
  return rec;
}

void TrainingTask::set_shard(std::int64_t rank, std::int64_t world_size) {
  if (world_size != 1 || rank != 0) {
    throw ValueError(fmt::format("this training task does not support data-parallel training (rank {} of {})", rank,
                                 world_size));
  }
}

std::string TrainingTask::progress_line(const std::string& name, const TrainingRecord& r, std::int64_t epoch,
                                        std::int64_t batch, std::int64_t num_batches) {
  return fmt::format("{} step {} (epoch {}, batch {}/{}) | loss {:.4f}{} | acc {:.3f} | {:.0f} tok/s", name, r.step,
                     epoch + 1, batch, num_batches, r.loss, parts_text(part_names(), r.parts, " ", false),
                     r.token_accuracy, r.tokens_per_second);
}

std::string TrainingTask::validation_line(const std::string& name, const ValidationRecord& r, bool best) {
  return fmt::format("{} validation step {} | loss {:.4f}{}{}", name, r.step, r.loss,
                     parts_text(part_names(), r.parts, " ", false), best ? " (best)" : "");
}

TrainingLoop::TrainingLoop(TrainingTask& task, TrainingLoopOptions options) : task_(task), options_(std::move(options)) {
  options_.check();
  for (auto& p : task_.module().parameters()) {
    if (p.requires_grad()) params_.push_back(p);
  }
  if (params_.empty()) throw ValueError(fmt::format("{}: the module has no trainable parameter", options_.name()));
  if (const auto& sync = options_.gradient_sync()) {
    if (sync->world_size() < 1 || sync->rank() < 0 || sync->rank() >= sync->world_size()) {
      throw ValueError(fmt::format("{}: gradient_sync has rank {} of world size {}", options_.name(), sync->rank(),
                                   sync->world_size()));
    }
    task_.set_shard(sync->rank(), sync->world_size());
  }
  // torch's Adam in multi-tensor form: the same state and archives, a few kernels per step on a GPU.
  optimizer_ = std::make_unique<MultiTensorAdam>(
      params_, torch::optim::AdamOptions(options_.learning_rate()).weight_decay(options_.weight_decay()));
}

TrainingLoop::~TrainingLoop() = default;

void TrainingLoop::save_checkpoint(const std::filesystem::path& path) const {
  torch::serialize::OutputArchive ar;
  ar.write("format", torch::tensor({kCheckpointFormat}, torch::kInt64));
  torch::serialize::OutputArchive model;
  task_.module().save(model);
  ar.write("model", model);
  torch::serialize::OutputArchive optim;
  optimizer_->save(optim);
  ar.write("optimizer", optim);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("rng", gen.get_state());
  }
  const auto device = module_device(task_.module());
  if (device.is_cuda()) {  // dropout on the GPU draws from the device's generator
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("cuda_rng", gen.get_state());
  }
  ar.write("state", torch::tensor({step_, epoch_, batch_in_epoch_, best_step_, evaluations_without_improvement_,
                                   std::int64_t(finished_)},
                                  torch::kInt64));
  ar.write("fingerprint", torch::tensor(task_.fingerprint(), torch::kInt64));
  ar.write("best_loss", torch::tensor({best_loss_}, torch::kFloat64));
  ar.write("finish_reason", string_tensor(finish_reason_));
  ar.write("num_best", torch::tensor({std::int64_t(best_parameters_.size())}, torch::kInt64));
  for (std::size_t i = 0; i < best_parameters_.size(); ++i) ar.write(fmt::format("best_{}", i), best_parameters_[i]);
  write_file_atomically(path, [&](std::ostream& os) { ar.save_to(os); });
}

void TrainingLoop::load_checkpoint(const std::filesystem::path& path) {
  const auto device = module_device(task_.module());
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    throw IOError(fmt::format("cannot read {} checkpoint '{}': {}", options_.name(), path.string(),
                              e.what_without_backtrace()));
  }
  auto read = [&](const std::string& key) {
    torch::Tensor t;
    if (!ar.try_read(key, t)) {
      throw ValueError(fmt::format("{} checkpoint '{}': missing entry '{}' (not a checkpoint of this trainer?)",
                                   options_.name(), path.string(), key));
    }
    return t.to(torch::kCPU);
  };
  const auto format = read("format")[0].item<std::int64_t>();
  if (format != kCheckpointFormat) {
    throw ValueError(fmt::format("{} checkpoint '{}': format {} (this build reads format {})", options_.name(),
                                 path.string(), format, kCheckpointFormat));
  }
  const auto expected = task_.fingerprint();
  auto fp = read("fingerprint");
  const std::vector<std::int64_t> got(fp.data_ptr<std::int64_t>(), fp.data_ptr<std::int64_t>() + fp.numel());
  if (got != expected) {
    const auto names = task_.fingerprint_names();
    if (names.size() == expected.size() && got.size() == expected.size()) {
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] == expected[i]) continue;
        throw ValueError(fmt::format("{} checkpoint '{}' was written with {} = {}, this trainer has {}; delete it "
                                     "to start over",
                                     options_.name(), path.string(), names[i], got[i], expected[i]));
      }
    }
    throw ValueError(fmt::format("{} checkpoint '{}' belongs to another setup (its data, sizes or seed differ: "
                                 "[{}] vs [{}]); delete it to start over",
                                 options_.name(), path.string(), fmt::join(got, ", "), fmt::join(expected, ", ")));
  }
  auto state = read("state");
  if (state.numel() != 6) throw ValueError(fmt::format("{} checkpoint '{}': malformed 'state'", options_.name(), path.string()));
  auto s = state.accessor<std::int64_t, 1>();
  torch::serialize::InputArchive model, optim;
  if (!ar.try_read("model", model) || !ar.try_read("optimizer", optim)) {
    throw ValueError(fmt::format("{} checkpoint '{}': missing model or optimizer state", options_.name(), path.string()));
  }
  try {
    task_.module().load(model);
    optimizer_->load(optim);
  } catch (const c10::Error& e) {
    throw ValueError(fmt::format("{} checkpoint '{}' does not fit this model: {}", options_.name(), path.string(),
                                 e.what_without_backtrace()));
  }
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(read("rng"));
  }
  if (device.is_cuda()) {
    torch::Tensor cuda_rng;
    if (ar.try_read("cuda_rng", cuda_rng)) {
      auto gen = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(cuda_rng.to(torch::kCPU));
    }
  }
  step_ = s[0];
  epoch_ = s[1];
  batch_in_epoch_ = s[2];
  best_step_ = s[3];
  evaluations_without_improvement_ = s[4];
  finished_ = s[5] != 0;
  best_loss_ = read("best_loss")[0].item<double>();
  finish_reason_ = tensor_string(read("finish_reason"));
  const auto num_best = read("num_best")[0].item<std::int64_t>();
  best_parameters_.clear();
  for (std::int64_t i = 0; i < num_best; ++i) {
    torch::Tensor t;
    if (!ar.try_read(fmt::format("best_{}", i), t)) {
      throw ValueError(fmt::format("{} checkpoint '{}': missing best_{}", options_.name(), path.string(), i));
    }
    best_parameters_.push_back(t);
  }
}

TrainingResult TrainingLoop::run() {
  using clock = std::chrono::steady_clock;
  const auto run_start = clock::now();
  TrainingResult result;
  std::ostream& log = options_.log() ? *options_.log() : std::cerr;
  const std::string& name = options_.name();
  const std::filesystem::path ckpt = options_.checkpoint_path();
  std::int64_t last_checkpoint_step = -1;
  // On a terminal (the log is std::cerr and stderr is one) a bar with step/total, rates, elapsed
  // and ETA under the lines; anywhere else only the lines, as they were (core/progress.hpp).
  std::optional<ProgressBar> bar;
  auto line = [&](const std::string& text) {
    if (bar) {
      bar->write_line(text);
    } else {
      log << text << '\n';
      log.flush();
    }
  };
  if (!ckpt.empty() && options_.resume() && std::filesystem::exists(ckpt)) {
    load_checkpoint(ckpt);
    result.resumed = true;
    result.resumed_at_step = step_;
    result.resumed_at_epoch = epoch_;
    last_checkpoint_step = step_;
    if (options_.log_every() > 0) {
      line(fmt::format("{}: resumed from '{}' at step {} (epoch {}, batch {})", name, ckpt.string(), step_,
                       epoch_ + 1, batch_in_epoch_));
    }
  } else {
    torch::manual_seed(options_.seed());
  }
  GradientSync* sync = options_.gradient_sync().get();
  if (sync) {
    // Every rank must continue from the same point (the same checkpoint, or none), then from rank 0's weights.
    auto state = torch::tensor({double(step_), double(epoch_), double(batch_in_epoch_), double(finished_)},
                               torch::kFloat64);
    auto rank0 = state.clone();
    sync->broadcast({rank0});
    auto differs = torch::tensor({rank0.equal(state) ? 0.0 : 1.0}, torch::kFloat64);
    sync->all_reduce_mean({differs});
    if (differs.item<double>() > 0) {
      throw ValueError(fmt::format("{}: the ranks start from different points (rank {} at step {}, epoch {}; rank 0 "
                                   "at step {}, epoch {}); checkpoint_path must name one file every rank reads",
                                   name, sync->rank(), step_, epoch_ + 1, std::int64_t(rank0[0].item<double>()),
                                   std::int64_t(rank0[1].item<double>()) + 1));
    }
    broadcast_parameters(task_.module(), *sync);
  }
  auto save = [&] {
    if (ckpt.empty()) return;
    if (!sync || sync->rank() == 0) save_checkpoint(ckpt);  // the ranks hold the same state
    last_checkpoint_step = step_;
  };
  auto all_params = task_.module().parameters();
  auto& module = task_.module();
  const auto part_names = task_.part_names();

  auto validate = [&] {
    module.eval();
    std::optional<ValidationRecord> rec;
    {
      torch::NoGradGuard no_grad;
      rec = task_.validate();
    }
    module.train();
    if (!rec) return;
    rec->step = step_;
    if (sync) {  // rank 0's numbers decide early stopping everywhere (a thread count may change last bits)
      std::vector<double> v = {rec->loss, rec->token_accuracy};
      v.insert(v.end(), rec->parts.begin(), rec->parts.end());
      auto t = torch::tensor(v, torch::kFloat64);
      sync->broadcast({t});
      rec->loss = t[0].item<double>();
      rec->token_accuracy = t[1].item<double>();
      for (std::size_t i = 0; i < rec->parts.size(); ++i) rec->parts[i] = t[std::int64_t(i) + 2].item<double>();
    }
    result.validation_history.push_back(*rec);
    // Lower than the best by more than min_rel_improvement of it (any decrease at 0; the first
    // validation always counts: best_loss_ starts at +inf).
    const double rel = options_.min_rel_improvement();
    const bool best = rec->loss < (best_loss_ >= 0 ? best_loss_ * (1.0 - rel) : best_loss_ * (1.0 + rel));
    if (best) {
      best_loss_ = rec->loss;
      best_step_ = step_;
      evaluations_without_improvement_ = 0;
      if (options_.restore_best()) {
        torch::NoGradGuard no_grad;
        best_parameters_.clear();
        for (auto& p : all_params) best_parameters_.push_back(p.detach().clone());
      }
    } else {
      ++evaluations_without_improvement_;
      if (options_.patience() > 0 && evaluations_without_improvement_ >= options_.patience()) {
        finished_ = true;
        finish_reason_ = fmt::format("early stopping (no lower validation loss in {} validations; best {:.4f} at step {})",
                                     evaluations_without_improvement_, best_loss_, best_step_);
      }
    }
    if (options_.log_every() > 0) line(task_.validation_line(name, *rec, best));
  };

  // Sums over the current logging interval.
  double s_loss = 0, s_seconds = 0, run_seconds = 0;
  std::vector<double> s_parts;
  std::int64_t s_steps = 0, s_tokens = 0, s_labels = 0, s_correct = 0, run_tokens = 0;
  module.train();
  bool stop = finished_;
  if (options_.log_every() > 0) {
    ProgressOptions po;
    po.label = name;
    po.items_unit = "tok";
    po.initial = step_;
    bar.emplace(log, 0, std::move(po));
  }
  while (!stop) {
    if (epoch_ >= options_.epochs()) {
      result.stop_reason = "epochs done";
      break;
    }
    const auto num_batches = task_.num_batches(epoch_);
    if (bar) {  // the steps before this epoch, then this epoch's batch count for every epoch left
      auto total = (step_ - batch_in_epoch_) + num_batches * (options_.epochs() - epoch_);
      if (options_.max_steps() > 0) total = std::min(total, options_.max_steps());
      bar->set_total(total);
    }
    while (batch_in_epoch_ < num_batches) {
      if (options_.max_steps() > 0 && step_ >= options_.max_steps()) {
        stop = true;
        result.stop_reason = "max_steps reached";
        break;
      }
      const auto t0 = clock::now();
      optimizer_->zero_grad();
      StepOutput out = task_.train_step(epoch_, batch_in_epoch_);
      double loss = out.loss.item<double>();
      auto fail = [&](const std::string& what) {
        std::string kept = "no checkpoint was written";
        if (last_checkpoint_step >= 0) {
          kept = fmt::format("the last checkpoint '{}' (step {}) is kept", ckpt.string(), last_checkpoint_step);
        } else if (!ckpt.empty() && std::filesystem::exists(ckpt)) {
          kept = fmt::format("the checkpoint '{}' is kept (not overwritten)", ckpt.string());
        }
        const auto batch = task_.describe_batch(epoch_, batch_in_epoch_);
        throw ValueError(fmt::format("{} training stopped: {} at step {} (epoch {}, batch {}){}; {}", name, what,
                                     step_ + 1, epoch_ + 1, batch_in_epoch_, batch.empty() ? "" : "; " + batch, kept));
      };
      if (sync) {
        // The group's loss is the global batch's mean: sum_r weight_r loss_r / sum_r weight_r. Scaling
        // each rank's loss by weight_r / mean(weight) before the gradients are averaged makes the
        // averaged gradient that of the global mean, also for unequal or empty shards (weight 0: no
        // backward, its gradients take part as zeros). Every rank reduces, also after a non-finite
        // loss, so that all of them fail at the same step.
        std::vector<double> v = {out.weight, out.weight * loss};
        for (const auto part : out.parts) v.push_back(out.weight * part);
        auto means = torch::tensor(v, torch::kFloat64);
        sync->all_reduce_mean({means});
        const double mean_weight = means[0].item<double>();
        if (out.weight > 0) (out.loss * (out.weight / mean_weight)).backward();
        average_gradients(params_, *sync);
        loss = means[1].item<double>() / mean_weight;
        for (std::size_t i = 0; i < out.parts.size(); ++i)
          out.parts[i] = means[std::int64_t(i) + 2].item<double>() / mean_weight;
      }
      if (!std::isfinite(loss)) {
        fail(fmt::format("non-finite loss {}{}", loss, parts_text(part_names, out.parts, ", ", true)));
      }
      if (!sync) out.loss.backward();
      if (options_.grad_clip_norm() > 0) {
        const double norm = clip_grad_norm(params_, options_.grad_clip_norm());
        if (!std::isfinite(norm)) fail(fmt::format("non-finite gradient norm {}", norm));
      }
      optimizer_->step();
      ++step_;
      ++batch_in_epoch_;
      const double secs = std::chrono::duration<double>(clock::now() - t0).count();
      s_loss += loss;
      if (s_parts.size() < out.parts.size()) s_parts.resize(out.parts.size(), 0.0);
      for (std::size_t i = 0; i < out.parts.size(); ++i) s_parts[i] += out.parts[i];
      s_seconds += secs;
      run_seconds += secs;
      s_tokens += out.tokens;
      run_tokens += out.tokens;
      s_labels += out.labels;
      s_correct += out.correct;
      ++s_steps;
      if (bar) bar->update(step_, out.tokens);
      // At multiples of log_every, so that a resumed run logs at the same steps as an uninterrupted one.
      if (options_.log_every() > 0 && step_ % options_.log_every() == 0) {
        TrainingRecord rec{step_, s_loss / double(s_steps), s_labels > 0 ? double(s_correct) / double(s_labels) : 0.0,
                           s_seconds > 0 ? double(s_tokens) / s_seconds : 0.0, {}};
        for (auto p : s_parts) rec.parts.push_back(p / double(s_steps));
        result.train_history.push_back(rec);
        line(task_.progress_line(name, rec, epoch_, batch_in_epoch_, num_batches));
        s_loss = s_seconds = 0;
        s_parts.assign(s_parts.size(), 0.0);
        s_steps = s_tokens = s_labels = s_correct = 0;
      }
      const bool validate_now = options_.eval_every() > 0 && step_ % options_.eval_every() == 0;
      if (validate_now) validate();
      if (validate_now || (options_.checkpoint_every() > 0 && step_ % options_.checkpoint_every() == 0)) save();
      if (finished_) {
        stop = true;
        break;
      }
    }
    if (stop) break;
    ++epoch_;
    batch_in_epoch_ = 0;
    if (options_.eval_every() == 0) validate();
    save();
    if (finished_) break;
  }
  // Only early stopping is final (finished_); "epochs done" and "max_steps reached" are pauses that
  // a later run with more epochs or steps continues exactly, from the last weights in the checkpoint.
  if (finished_) result.stop_reason = finish_reason_;
  result.stopped_early = finished_ && finish_reason_.rfind("early stopping", 0) == 0;
  if (last_checkpoint_step != step_) save();
  if (options_.restore_best() && !best_parameters_.empty()) {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < all_params.size() && i < best_parameters_.size(); ++i) {
      all_params[i].copy_(best_parameters_[i]);
    }
  }
  module.eval();
  result.steps = step_;
  result.epochs_completed = epoch_;
  result.best_validation_loss = best_loss_;
  result.best_step = best_step_;
  result.tokens_per_second = run_seconds > 0 ? double(run_tokens) / run_seconds : 0.0;
  result.seconds = std::chrono::duration<double>(clock::now() - run_start).count();
  if (bar) bar->finish();
  if (options_.log_every() > 0) {
    log << fmt::format("{}: {} after {} steps ({:.1f} s, {:.0f} tok/s)\n", name, result.stop_reason, step_,
                       result.seconds, result.tokens_per_second);
    log.flush();
  }
  return result;
}

}  // namespace lamia
