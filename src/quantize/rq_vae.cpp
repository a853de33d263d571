#include <lamia/core/errors.hpp>
#include <lamia/nn/training_loop.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/kmeans.hpp>
#include <lamia/quantize/rq_vae.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <iostream>
#include <numeric>
#include <optional>
#include <random>

namespace lamia {

RqVaeImpl::RqVaeImpl(RqVaeOptions options_) : options(std::move(options_)) {
  TORCH_CHECK_VALUE(options.input_dim() >= 1, "RqVae: input_dim must be >= 1, got ", options.input_dim());
  TORCH_CHECK_VALUE(options.latent_dim() >= 1, "RqVae: latent_dim must be >= 1, got ", options.latent_dim());
  TORCH_CHECK_VALUE(options.num_levels() >= 1, "RqVae: num_levels must be >= 1, got ", options.num_levels());
  TORCH_CHECK_VALUE(options.num_codes() >= 1, "RqVae: num_codes must be >= 1, got ", options.num_codes());
  TORCH_CHECK_VALUE(options.beta() >= 0, "RqVae: beta must be >= 0, got ", options.beta());
  for (auto h : options.hidden_dims()) TORCH_CHECK_VALUE(h >= 1, "RqVae: hidden_dims must be >= 1, got ", h);
  reset();
}

void RqVaeImpl::reset() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  auto mlp = [&](std::vector<std::int64_t> dims) {
    torch::nn::Sequential s;
    for (std::size_t i = 0; i + 1 < dims.size(); ++i) {
      torch::nn::Linear lin(dims[i], dims[i + 1]);
      // PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from our own generator.
      torch::NoGradGuard ng;
      const double bound = 1.0 / std::sqrt(static_cast<double>(dims[i]));
      lin->weight.uniform_(-bound, bound, gen);
      lin->bias.uniform_(-bound, bound, gen);
      s->push_back(lin);
      if (i + 2 < dims.size()) s->push_back(torch::nn::ReLU());
    }
    return s;
  };
  std::vector<std::int64_t> enc{options.input_dim()};
  enc.insert(enc.end(), options.hidden_dims().begin(), options.hidden_dims().end());
  enc.push_back(options.latent_dim());
  std::vector<std::int64_t> dec(enc.rbegin(), enc.rend());
  encoder = register_module("encoder", mlp(enc));
  decoder = register_module("decoder", mlp(dec));
  codebooks.clear();
  for (std::int64_t l = 0; l < options.num_levels(); ++l) {
    auto cb = torch::empty({options.num_codes(), options.latent_dim()});
    {
      torch::NoGradGuard ng;
      cb.normal_(0.0, 1.0, gen);
    }
    codebooks.push_back(register_parameter("codebook_" + std::to_string(l), cb));
  }
}

std::vector<std::int64_t> RqVaeImpl::codebook_sizes() const {
  return std::vector<std::int64_t>(options.num_levels(), options.num_codes());
}

std::pair<torch::Tensor, torch::Tensor> RqVaeImpl::quantize(const torch::Tensor& z, torch::Tensor* loss) {
  auto residual = z;
  auto quantized = torch::zeros_like(z);
  std::vector<torch::Tensor> codes;
  torch::Tensor total = torch::zeros({}, z.options());
  for (const auto& cb : codebooks) {
    // argmin_j |r - e_j|^2 = argmin_j (|e_j|^2 - 2 r.e_j)
    auto dist = cb.detach().pow(2).sum(1).unsqueeze(0) - 2 * torch::mm(residual.detach(), cb.detach().t());
    auto idx = dist.argmin(1);
    auto e = cb.index_select(0, idx);
    if (loss) {
      total = total + torch::mse_loss(e, residual.detach()) + options.beta() * torch::mse_loss(residual, e.detach());
    }
    quantized = quantized + e.detach();
    residual = residual - e.detach();
    codes.push_back(idx);
  }
  if (loss) *loss = total;
  return {torch::stack(codes, 1), quantized};
}

RqVaeOutput RqVaeImpl::forward(const torch::Tensor& x) {
  auto z = encoder->forward(x);
  torch::Tensor qloss;
  auto [codes, quantized] = quantize(z, &qloss);
  // Straight-through: the decoder sees the codewords, the encoder gets the decoder's gradient.
  auto zq = z + (quantized - z).detach();
  auto rec = decoder->forward(zq);
  RqVaeOutput out;
  out.reconstruction = rec;
  out.codes = codes;
  out.reconstruction_loss = torch::mse_loss(rec, x);
  out.quantization_loss = qloss;
  out.loss = out.reconstruction_loss + qloss;
  return out;
}

torch::Tensor RqVaeImpl::encode(const torch::Tensor& x) {
  auto xc = detail::checked_float_tensor(x, 2, "RqVae::encode: embeddings", "n x D");
  if (xc.size(1) != options.input_dim()) {
    throw ValueError(fmt::format("RqVae::encode: embeddings must have dimension {}, got {}", options.input_dim(),
                                 xc.size(1)));
  }
  check_finite(xc.data_ptr<float>(), xc.size(0), xc.size(1), "RqVae::encode: embeddings");
  torch::NoGradGuard ng;
  constexpr std::int64_t kChunk = 8192;
  std::vector<torch::Tensor> parts;
  for (std::int64_t s = 0; s < xc.size(0); s += kChunk) {
    parts.push_back(quantize(encoder->forward(xc.narrow(0, s, std::min(kChunk, xc.size(0) - s))), nullptr).first);
  }
  if (parts.empty()) return torch::empty({0, options.num_levels()}, torch::kInt64);
  return torch::cat(parts, 0);
}

torch::Tensor RqVaeImpl::decode_codes(const torch::Tensor& codes) {
  TORCH_CHECK_VALUE(codes.dim() == 2 && codes.size(1) == options.num_levels(), "RqVae::decode_codes: codes must be n x ",
                    options.num_levels(), ", got shape ", codes.sizes());
  torch::NoGradGuard ng;
  auto c = codes.to(torch::kInt64);
  auto z = torch::zeros({c.size(0), options.latent_dim()});
  for (std::int64_t l = 0; l < options.num_levels(); ++l) z += codebooks[l].index_select(0, c.select(1, l));
  return decoder->forward(z);
}

void RqVaeImpl::init_codebooks_kmeans(const torch::Tensor& x, std::uint64_t seed) {
  torch::NoGradGuard ng;
  auto residual = encoder->forward(x).contiguous();
  const std::int64_t k = options.num_codes();
  TORCH_CHECK_VALUE(residual.size(0) >= k, "RqVae: K-Means initialisation needs at least num_codes = ", k,
                    " items, got ", residual.size(0));
  for (std::int64_t l = 0; l < options.num_levels(); ++l) {
    KMeansOptions ko;
    ko.num_codes = k;
    ko.iterations = 25;
    ko.seed = seed + static_cast<std::uint64_t>(l);
    auto km = kmeans(residual.data_ptr<float>(), residual.size(0), residual.size(1), ko);
    auto cents = torch::from_blob(km.centroids.data(), {k, options.latent_dim()}, torch::kFloat32);
    codebooks[l].copy_(cents);
    auto assign = torch::from_blob(km.assignment.data(), {residual.size(0)}, torch::kInt32).to(torch::kInt64);
    residual = (residual - cents.index_select(0, assign)).contiguous();
  }
}

std::vector<std::int64_t> RqVaeImpl::reset_dead_codes(const torch::Tensor& x, const torch::Tensor& counts,
                                                      std::uint64_t seed) {
  torch::NoGradGuard ng;
  std::mt19937_64 rng(seed);
  auto residual = encoder->forward(x);
  std::vector<std::int64_t> reset;
  for (std::int64_t l = 0; l < options.num_levels(); ++l) {
    auto dead = counts[l].eq(0).nonzero().flatten();
    auto idx = torch::empty({dead.numel()}, torch::kInt64);
    std::uniform_int_distribution<std::int64_t> pick(0, residual.size(0) - 1);
    for (std::int64_t i = 0; i < dead.numel(); ++i) idx[i] = pick(rng);
    if (dead.numel() > 0) codebooks[l].index_copy_(0, dead, residual.index_select(0, idx.to(residual.device())));
    reset.push_back(dead.numel());
    auto d = codebooks[l].pow(2).sum(1).unsqueeze(0) - 2 * torch::mm(residual, codebooks[l].t());
    residual = residual - codebooks[l].index_select(0, d.argmin(1));
  }
  return reset;
}

namespace {

// RQ-VAE training as a task of the shared training loop (lamia/nn/training_loop.hpp): the loop owns
// Adam, the epochs, early stopping and checkpoints; the task owns the batches (a seeded shuffle per
// epoch, a pure function of the seed and the epoch), the code counts of the epoch and the dead-code
// resets, which run at the end of each epoch (in validate(), before the early-stopping check, as the
// TIGER recipe does).
class RqVaeTask : public TrainingTask {
 public:
  RqVaeTask(RqVae model, torch::Tensor x, const RqVaeTrainOptions& options)
      : model_(std::move(model)), x_(std::move(x)), options_(options), n_(x_.size(0)) {}

  torch::nn::Module& module() override { return *model_; }
  std::int64_t num_batches(std::int64_t) override { return (n_ + options_.batch_size - 1) / options_.batch_size; }

  /// The item order of epoch e (0-based): the (e+1)-th shuffle of one std::mt19937_64 seeded with
  /// the seed; epoch 0's order also chose the K-Means initialisation batch.
  const torch::Tensor& order(std::int64_t epoch) {
    if (epoch != order_epoch_) {
      if (epoch < order_epoch_ || order_epoch_ < 0) {  // replay from the start (a resume)
        rng_.seed(options_.seed);
        perm_.resize(n_);
        std::iota(perm_.begin(), perm_.end(), 0);
        order_epoch_ = -1;
      }
      while (order_epoch_ < epoch) {
        std::shuffle(perm_.begin(), perm_.end(), rng_);
        ++order_epoch_;
      }
      order_ = torch::from_blob(perm_.data(), {n_}, torch::kInt64).clone().to(x_.device());
    }
    return order_;
  }

  StepOutput train_step(std::int64_t epoch, std::int64_t batch) override {
    if (epoch != epoch_) start_epoch(epoch);
    const auto s = batch * options_.batch_size;
    auto rows = x_.index_select(0, order(epoch).narrow(0, s, std::min(options_.batch_size, n_ - s)));
    auto out = model_->forward(rows);
    const double rec = out.reconstruction_loss.item<double>(), q = out.quantization_loss.item<double>();
    rec_sum_ += rec;
    q_sum_ += q;
    ++batches_;
    const auto k = model_->options.num_codes();
    for (std::int64_t l = 0; l < model_->options.num_levels(); ++l) counts_[l] += torch::bincount(out.codes.select(1, l), {}, k);
    StepOutput step;
    step.loss = out.loss;
    step.tokens = rows.size(0);
    step.parts = {rec, q};
    return step;
  }

  // The epoch's mean reconstruction loss (what early stopping watches), after the dead-code reset.
  std::optional<ValidationRecord> validate() override {
    if (batches_ == 0) return std::nullopt;
    const double rec = rec_sum_ / batches_, q = q_sum_ / batches_;
    report.reconstruction_loss.push_back(rec);
    report.quantization_loss.push_back(q);
    report.epochs = epoch_ + 1;
    reset_now_ = 0;
    if (options_.dead_code_reset_every > 0 && (epoch_ + 1) % options_.dead_code_reset_every == 0 &&
        epoch_ + 1 < options_.max_epochs) {
      const std::int64_t m = std::min<std::int64_t>(n_, 4096);
      auto sample = x_.index_select(0, order(epoch_).narrow(0, 0, m));
      for (auto r : model_->reset_dead_codes(sample, counts_, options_.seed + 7919ull * std::uint64_t(epoch_ + 1)))
        reset_now_ += r;
      report.dead_codes_reset += reset_now_;
    }
    ValidationRecord record;
    record.loss = rec;
    record.parts = {rec, q};
    return record;
  }
  std::vector<std::string> part_names() override { return {"reconstruction", "quantization"}; }

  std::string validation_line(const std::string& name, const ValidationRecord& record, bool) override {
    std::vector<std::string> used;
    for (std::int64_t l = 0; l < model_->options.num_levels(); ++l)
      used.push_back(std::to_string(counts_[l].gt(0).sum().item<std::int64_t>()));
    return fmt::format("{} epoch {}/{}: reconstruction {:.6g}, quantization {:.6g}, used codes {} of {}, {} reset", name,
                       epoch_ + 1, options_.max_epochs, record.parts[0], record.parts[1], fmt::join(used, "/"),
                       model_->options.num_codes(), reset_now_);
  }

  std::vector<std::int64_t> fingerprint() override {
    const auto& mo = model_->options;
    return {n_, x_.size(1), options_.batch_size, std::int64_t(options_.seed), mo.num_levels(), mo.num_codes(),
            mo.latent_dim(), options_.dead_code_reset_every};
  }
  std::vector<std::string> fingerprint_names() override {
    return {"items", "input_dim", "batch_size", "seed", "num_levels", "num_codes", "latent_dim", "dead_code_reset_every"};
  }

  RqVaeTrainReport report;

 private:
  void start_epoch(std::int64_t epoch) {
    epoch_ = epoch;
    rec_sum_ = q_sum_ = 0;
    batches_ = 0;
    counts_ = torch::zeros({model_->options.num_levels(), model_->options.num_codes()},
                           torch::TensorOptions().dtype(torch::kInt64).device(x_.device()));
  }

  RqVae model_;
  torch::Tensor x_;
  RqVaeTrainOptions options_;
  std::int64_t n_;
  std::mt19937_64 rng_;
  std::vector<std::int64_t> perm_;
  std::int64_t order_epoch_ = -1;
  torch::Tensor order_;
  std::int64_t epoch_ = -1;
  double rec_sum_ = 0, q_sum_ = 0;
  std::int64_t batches_ = 0, reset_now_ = 0;
  torch::Tensor counts_;
};

}  // namespace

RqVaeTrainReport train_rq_vae(RqVae& model, const torch::Tensor& embeddings, const RqVaeTrainOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto x = detail::checked_float_tensor(embeddings, 2, "train_rq_vae: embeddings", "n x D");
  const auto& mo = model->options;
  const std::int64_t n = x.size(0), k = mo.num_codes();
  if (x.size(1) != mo.input_dim()) {
    throw ValueError(fmt::format("train_rq_vae: embeddings must have dimension input_dim = {}, got {}",
                                 mo.input_dim(), x.size(1)));
  }
  if (n < k) throw ValueError(fmt::format("train_rq_vae: needs at least num_codes = {} items, got {}", k, n));
  if (options.batch_size < 1) {
    throw ValueError(fmt::format("train_rq_vae: batch_size must be >= 1, got {}", options.batch_size));
  }
  if (options.max_epochs < 1) {
    throw ValueError(fmt::format("train_rq_vae: max_epochs must be >= 1, got {}", options.max_epochs));
  }
  check_finite(x.data_ptr<float>(), n, x.size(1), "train_rq_vae: embeddings");
  const bool resuming = !options.checkpoint_path.empty() && std::filesystem::exists(options.checkpoint_path);
  model->to(torch::kCPU);  // the K-Means initialisation runs on the CPU
  RqVaeTask task(model, x.to(options.device), options);
  if (!resuming) {  // K-Means initialisation on epoch 0's first batch (at least k items); a resume loads the codebooks
    auto first = task.order(0).to(torch::kCPU).narrow(0, 0, std::max(options.batch_size, k));
    model->init_codebooks_kmeans(x.index_select(0, first).contiguous(), options.seed);
  }
  model->to(options.device);
  const auto batches = task.num_batches(0);
  TrainingLoopOptions loop;
  loop.name("rq-vae")
      .learning_rate(options.learning_rate)
      .epochs(options.max_epochs)
      .grad_clip_norm(0)
      .patience(std::max(options.patience, 1))
      .min_rel_improvement(options.min_rel_improvement)
      .restore_best(false)
      .seed(options.seed)
      .checkpoint_path(options.checkpoint_path)
      .log_every(options.progress ? batches : 0);
  TrainingLoop training(task, loop);
  const auto result = training.run();
  auto report = task.report;
  report.stopped_early = result.stopped_early;
  model->eval();
  model->to(torch::kCPU);
  auto codes = model->encode(x);
  for (std::int64_t l = 0; l < mo.num_levels(); ++l) {
    report.utilization.push_back(
        static_cast<double>(torch::bincount(codes.select(1, l), {}, k).gt(0).sum().item<std::int64_t>()) / k);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace lamia
