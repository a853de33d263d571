// Decoder throughput: forward and forward+backward tokens/s for three shapes, achieved GFLOP/s as a
// fraction of this machine's float32 matmul peak (measured here), and KV-cache decoding against full
// recompute per generated token. The Python reference (same model in plain PyTorch) is
// bench/nn_decoder.py. Usage: bench_nn_decoder [--quick] [--cuda | --device cpu|cuda] [--threads N]
// --threads 0 (the default): lamia's default thread count (include/lamia/core/threads.hpp).
// The peak is the best float32 matmul rate over square sizes (512..4096 on the CPU, 1024..8192 on
// CUDA), measured with the same thread setting as the models.
#include <lamia/core/threads.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/threads.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace lamia;
using Clock = std::chrono::steady_clock;

namespace {
torch::Device g_device = torch::kCPU;

void sync() {
  if (g_device.is_cuda()) torch::cuda::synchronize();
}

// Median-free simple timing: warm up once, then `iters` runs; seconds per run.
double time_it(int iters, const std::function<void()>& f) {
  f();
  sync();
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) f();
  sync();
  return std::chrono::duration<double>(Clock::now() - t0).count() / iters;
}

struct Peak {
  double gflops = 0;  // the best over all sizes
  int64_t size = 0;   // the size that gave it
  std::string by_size;
};

// The float32 matmul peak: the best GFLOP/s over several square sizes (best of two timings each; a
// timing is one warm-up plus at least one matmul, about 2e10 flops on the CPU, 2e13 on CUDA), so that
// the reference is not one size's cache or blocking behaviour.
Peak matmul_peak() {
  const std::vector<int64_t> sizes =
      g_device.is_cuda() ? std::vector<int64_t>{1024, 2048, 4096, 8192} : std::vector<int64_t>{512, 1024, 2048, 4096};
  torch::NoGradGuard ng;
  Peak peak;
  for (const int64_t n : sizes) {
    auto a = torch::randn({n, n}, torch::TensorOptions().device(g_device));
    auto b = torch::randn({n, n}, torch::TensorOptions().device(g_device));
    const double flops = 2.0 * double(n) * double(n) * double(n);
    const double budget = g_device.is_cuda() ? 2e13 : 2e10;  // flops per timing
    const int iters = std::max(1, int(budget / flops));
    double best = 0;
    for (int rep = 0; rep < 2; ++rep) {
      const double s = time_it(iters, [&] { auto c = torch::matmul(a, b); });
      best = std::max(best, flops / s / 1e9);
    }
    peak.by_size += fmt::format("{}{}: {:.1f}", peak.by_size.empty() ? "" : ", ", n, best);
    if (best > peak.gflops) {
      peak.gflops = best;
      peak.size = n;
    }
  }
  return peak;
}

struct Shape {
  const char* name;
  DecoderOptions options;
  int64_t batch, seq;
  int iters;
};

// Matmul FLOPs of one forward pass (attention over all T keys as computed; LM head included).
double forward_flops(const DecoderOptions& o, int64_t B, int64_t T) {
  const double D = double(o.hidden_size()), F = double(o.resolved_ffn_dim()), E = double(o.resolved_embed_dim()),
               V = double(o.vocab_size()), L = double(o.num_layers());
  double per_token = L * (2 * 4 * D * D + 2 * 2 * D * F + 2 * 2 * T * D) + 2 * E * V;
  if (E != D) per_token += 2 * 2 * E * D;
  return per_token * double(B * T);
}
}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int threads_arg = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--cuda")) g_device = torch::kCUDA;
    if (!std::strcmp(argv[i], "--device") && i + 1 < argc) g_device = torch::Device(argv[++i]);
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads_arg = std::atoi(argv[++i]);
  }
  const int threads = lamia::set_torch_threads(threads_arg);  // before the peak: the same setting for both
  torch::manual_seed(0);
  const Peak measured = matmul_peak();
  const double peak = measured.gflops;
  fmt::print("device {}  threads {}  float32 matmul peak {:.1f} GFLOP/s (best over n x n matmuls, at n = {})\n",
             g_device.str(), torch::get_num_threads(), peak, measured.size);
  fmt::print("{}\nmatmul GFLOP/s by n: {}\n", lamia::thread_summary(threads), measured.by_size);

  std::vector<Shape> shapes = {
      {"tiny (V=1000 D=64 L=2)", DecoderOptions(1000, 64, 2, 4).dropout(0.0), 8, 64, quick ? 5 : 20},
      {"small (V=8192 D=256 L=4)", DecoderOptions(8192, 256, 4, 4).dropout(0.0), 8, 128, quick ? 2 : 5},
      {"OPT-350M shape (V=50272 D=1024 L=24 E=512 post-LN)",
       DecoderOptions(50272, 1024, 24, 16).ffn_dim(4096).word_embed_proj_dim(512).do_layer_norm_before(false).dropout(0.0),
       g_device.is_cuda() ? 8 : 1, 128, quick ? 1 : 2},
  };
  fmt::print("{:<52} {:>12} {:>14} {:>10} {:>14} {:>10}\n", "shape (B x T)", "fwd tok/s", "fwd GFLOP/s", "of peak",
             "fwd+bwd tok/s", "of peak");
  for (auto& s : shapes) {
    Decoder d(s.options);
    d->to(g_device);
    d->train();  // dropout 0: same math, autograd on
    DecoderInput in;
    in.input_ids = torch::randint(s.options.vocab_size(), {s.batch, s.seq}, torch::TensorOptions().dtype(torch::kLong).device(g_device));
    const double fl = forward_flops(s.options, s.batch, s.seq);
    double tf;
    {
      torch::NoGradGuard ng;
      tf = time_it(s.iters, [&] { d->forward(in); });
    }
    const double tb = time_it(s.iters, [&] {
      auto out = d->forward(in);
      out.logits.to(torch::kFloat).mean().backward();
      d->zero_grad();
    });
    const double tokens = double(s.batch * s.seq);
    fmt::print("{:<52} {:>12.0f} {:>14.1f} {:>9.0f}% {:>14.0f} {:>9.0f}%\n",
               fmt::format("{} ({}x{})", s.name, s.batch, s.seq), tokens / tf, fl / tf / 1e9, 100 * fl / tf / 1e9 / peak,
               tokens / tb, 100 * 3 * fl / tb / 1e9 / peak);
  }

  // Incremental decoding: prompt of 32, generate 32 tokens greedily, batch 4 (beams).
  {
    auto o = DecoderOptions(8192, 256, 4, 4).dropout(0.0);
    Decoder d(o);
    d->to(g_device);
    d->eval();
    torch::NoGradGuard ng;
    const int64_t B = 4, P = 32, N = quick ? 16 : 32;
    auto prompt = torch::randint(o.vocab_size(), {B, P}, torch::TensorOptions().dtype(torch::kLong).device(g_device));
    torch::Tensor cached_tokens, full_tokens;
    const double t_cache = time_it(1, [&] {
      KVCache cache;
      DecoderInput in;
      in.input_ids = prompt;
      auto logits = d->forward(in, &cache).logits;
      std::vector<torch::Tensor> toks;
      for (int64_t i = 0; i < N; ++i) {
        auto next = logits.select(1, logits.size(1) - 1).argmax(-1, true);
        toks.push_back(next);
        cache.reorder(torch::arange(B, torch::TensorOptions().dtype(torch::kLong).device(g_device)));  // beam bookkeeping
        DecoderInput step;
        step.input_ids = next;
        logits = d->forward(step, &cache).logits;
      }
      cached_tokens = torch::cat(toks, 1);
    });
    const double t_full = time_it(1, [&] {
      auto seq = prompt;
      for (int64_t i = 0; i < N; ++i) {
        DecoderInput in;
        in.input_ids = seq;
        in.compute_logits = true;
        auto logits = d->forward(in).logits;
        seq = torch::cat({seq, logits.select(1, seq.size(1) - 1).argmax(-1, true)}, 1);
      }
      full_tokens = seq.narrow(1, P, N);
    });
    fmt::print("\nKV-cache greedy decoding (D=256 L=4, batch {}, prompt {}, {} new tokens): cached {:.2f} ms/token, "
               "full recompute {:.2f} ms/token, speedup x{:.1f}, same tokens: {}\n",
               B, P, N, 1e3 * t_cache / N, 1e3 * t_full / N, t_full / t_cache,
               torch::equal(cached_tokens, full_tokens) ? "yes" : "no");
  }
  return 0;
}
