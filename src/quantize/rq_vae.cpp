#include <lamia/core/errors.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/kmeans.hpp>
#include <lamia/quantize/rq_vae.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>
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
  model->to(torch::kCPU);  // the K-Means initialisation runs on the CPU
  model->train();
  std::mt19937_64 rng(options.seed);
  std::vector<std::int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  auto shuffled = [&] {
    std::shuffle(perm.begin(), perm.end(), rng);
    return torch::from_blob(perm.data(), {n}, torch::kInt64).clone();
  };
  // K-Means initialisation on the first batch (at least k items).
  auto order = shuffled();
  model->init_codebooks_kmeans(x.index_select(0, order.narrow(0, 0, std::max(options.batch_size, k)).contiguous()),
                               options.seed);
  const auto dev = options.device;
  model->to(dev);
  const auto x_cpu = x;
  x = x.to(dev);
  order = order.to(dev);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(options.learning_rate));
  RqVaeTrainReport report;
  double best = std::numeric_limits<double>::infinity();
  int since_best = 0;
  for (int epoch = 1; epoch <= options.max_epochs; ++epoch) {
    if (epoch > 1) order = shuffled().to(dev);
    auto counts = torch::zeros({mo.num_levels(), k}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
    double rec_sum = 0, q_sum = 0;
    std::int64_t batches = 0;
    for (std::int64_t s = 0; s < n; s += options.batch_size) {
      auto batch = x.index_select(0, order.narrow(0, s, std::min(options.batch_size, n - s)));
      auto out = model->forward(batch);
      opt.zero_grad();
      out.loss.backward();
      opt.step();
      rec_sum += out.reconstruction_loss.item<double>();
      q_sum += out.quantization_loss.item<double>();
      ++batches;
      for (std::int64_t l = 0; l < mo.num_levels(); ++l) counts[l] += torch::bincount(out.codes.select(1, l), {}, k);
    }
    const double rec = rec_sum / batches, q = q_sum / batches;
    report.reconstruction_loss.push_back(rec);
    report.quantization_loss.push_back(q);
    report.epochs = epoch;
    std::int64_t reset_now = 0;
    if (options.dead_code_reset_every > 0 && epoch % options.dead_code_reset_every == 0 && epoch < options.max_epochs) {
      const std::int64_t m = std::min<std::int64_t>(n, 4096);
      auto sample = x.index_select(0, order.narrow(0, 0, m));
      for (auto r : model->reset_dead_codes(sample, counts, options.seed + 7919ull * epoch)) reset_now += r;
      report.dead_codes_reset += reset_now;
    }
    if (options.progress) {
      std::vector<std::string> used;
      for (std::int64_t l = 0; l < mo.num_levels(); ++l) {
        used.push_back(std::to_string(counts[l].gt(0).sum().item<std::int64_t>()));
      }
      std::cerr << fmt::format("rq-vae epoch {}/{}: reconstruction {:.6g}, quantization {:.6g}, used codes {} of {}, "
                               "{} reset, {:.1f}s\n",
                               epoch, options.max_epochs, rec, q, fmt::join(used, "/"), k, reset_now,
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (rec < best * (1.0 - options.min_rel_improvement)) {
      best = rec;
      since_best = 0;
    } else if (++since_best >= options.patience) {
      report.stopped_early = true;
      break;
    }
  }
  model->eval();
  model->to(torch::kCPU);
  auto codes = model->encode(x_cpu);
  for (std::int64_t l = 0; l < mo.num_levels(); ++l) {
    report.utilization.push_back(
        static_cast<double>(torch::bincount(codes.select(1, l), {}, k).gt(0).sum().item<std::int64_t>()) / k);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace lamia
