// Palette encoder throughput: training tokens/s of the fast path against the reference path on
// the same batches, palette export items/s, and the peak memory of a batch-128 step, for the
// 4-layer d = 256 model trained from scratch on the synthetic catalog.
//   bench_palette_train [--items N] [--steps N] [--batch N] [--threads N] [--device cpu|cuda] [--profile N]
//                       [--layers N --hidden D --heads H] [--pack 0|1] [--fused-attention 0|1] [--torch-adam 0|1]
// --layers/--hidden/--heads: another model shape (24, 1024, 16 is OPT-350M's); --pack and
// --fused-attention: the decoder's KernelPolicy (include/lamia/nn/kernel_policy.hpp) for both paths.
// (on CUDA the peak RSS is the host's; step times include a device synchronisation).
// The two paths run interleaved (fast step i, reference step i, each on its own copy of the same
// initial weights with its own Adam), so that a change of machine load hits both alike. Besides wall
// time, each path's process CPU time and minor page faults are summed over its steps: on a machine
// busier than its cores the CPU time is the steadier figure. --profile N: after the timed steps,
// the top N operators of one more step of each path by self CPU time (LibTorch's legacy profiler).
// The Python PyTorch implementation of the same step is bench/palette_train.py.
// --threads 0 (the default): lamia's default thread count (include/lamia/core/threads.hpp).
#include <lamia/core/threads.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/nn/kernel_policy.hpp>
#include <lamia/nn/optimizer.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

using namespace lamia;

namespace {

// Peak resident set size (kB) since the last reset_peak_rss() (Linux: VmHWM, reset via clear_refs).
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}

long peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

torch::Device g_device = torch::kCPU;

void sync() {
  if (g_device.is_cuda()) torch::cuda::synchronize();
}

struct Timing {
  double seconds = 0;
  double cpu_seconds = 0;
  long minor_faults = 0;
  std::int64_t tokens = 0;
  double loss = 0;
  std::vector<double> losses;  // every step's loss, warm-up included
  long peak_kb = 0;            // VmHWM after the warm-up step
};

struct Usage {
  double cpu = 0;
  long minflt = 0;
};

Usage usage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return {secs(r.ru_utime) + secs(r.ru_stime), r.ru_minflt};
}

// --torch-adam 1: torch's own Adam and clip_grad_norm_ instead of the trainer's multi-tensor ones.
bool g_torch_adam = false;

// One path's encoder, optimizer and running totals.
struct Runner {
  PaletteEncoderImpl& enc;
  PalettePath path;
  std::unique_ptr<torch::optim::Adam> opt;  // the trainer's MultiTensorAdam, or torch's (--torch-adam 1)
  Timing t;
  Runner(PaletteEncoderImpl& e, PalettePath p) : enc(e), path(p) {
    const auto options = torch::optim::AdamOptions(1e-4);
    if (g_torch_adam) opt = std::make_unique<torch::optim::Adam>(e.parameters(), options);
    else opt = std::make_unique<MultiTensorAdam>(e.parameters(), options);
  }

  // Collate, forward, backward, clipping and Adam of one batch, as the trainer's step does.
  double step(const TokenizedCatalog& tc, const std::vector<std::pair<ItemIndex, std::int64_t>>& spec, bool timed) {
    std::vector<SampleLayout> samples;
    for (auto [item, task] : spec) samples.push_back(make_sample(tc, item, task, enc.tokens()));
    const auto u0 = usage();
    const auto start = std::chrono::steady_clock::now();
    auto batch = collate_samples(samples, enc.tokens(), path == PalettePath::kReference).to(g_device);
    opt->zero_grad();
    auto out = enc.forward(batch, path);
    out.loss.backward();
    if (g_torch_adam) torch::nn::utils::clip_grad_norm_(enc.parameters(), 1.0);
    else clip_grad_norm(enc.parameters(), 1.0);
    opt->step();
    sync();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto u1 = usage();
    const double loss = out.loss.item<double>();
    t.losses.push_back(loss);
    if (timed) {
      t.seconds += secs;
      t.cpu_seconds += u1.cpu - u0.cpu;
      t.minor_faults += u1.minflt - u0.minflt;
      t.tokens += batch.num_tokens;
      t.loss += loss;
    }
    return loss;
  }
};

// The top operators of one step by self CPU time (a parent's own time, its children's subtracted).
void print_profile(Runner& r, const TokenizedCatalog& tc, const std::vector<std::pair<ItemIndex, std::int64_t>>& spec,
                   int top) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  r.step(tc, spec, false);
  r.t.losses.pop_back();
  const auto lists = prof::disableProfilerLegacy();
  struct Row {
    double self_us = 0, total_us = 0;
    long calls = 0;
  };
  std::map<std::string, Row> rows;
  double all_self = 0;
  for (const auto& list : lists) {
    struct Open {
      const prof::LegacyEvent* ev;
      double child_us;
    };
    std::vector<Open> stack;
    for (const auto& ev : list) {
      if (ev.kind() == prof::EventKind::PushRange) {
        stack.push_back({&ev, 0.0});
      } else if (ev.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const auto open = stack.back();
        stack.pop_back();
        const double total = open.ev->cpuElapsedUs(ev);
        auto& row = rows[open.ev->name()];
        row.total_us += total;
        row.self_us += total - open.child_us;
        row.calls += 1;
        all_self += total - open.child_us;
        if (!stack.empty()) stack.back().child_us += total;
      }
    }
  }
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  fmt::print("profile of one {} step: {:.1f} ms self CPU in all\n", palette_path_name(r.path), all_self / 1e3);
  fmt::print("  {:<44} {:>10} {:>7} {:>10} {:>6}\n", "operator", "self ms", "self %", "total ms", "calls");
  for (int i = 0; i < top && i < static_cast<int>(sorted.size()); ++i) {
    const auto& [name, row] = sorted[i];
    fmt::print("  {:<44} {:>10.1f} {:>6.1f}% {:>10.1f} {:>6}\n", name.substr(0, 44), row.self_us / 1e3,
               100.0 * row.self_us / all_self, row.total_us / 1e3, row.calls);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t items = 2000, steps = 6, batch_size = 128, threads = 0, profile = 0;
  ScratchModelOptions mo;  // 4 layers, d = 256, 4 heads, BPE vocab 2048
  KernelPolicy policy = kernel_policy();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const auto v = std::atoll(argv[i + 1]);
    if (a == "--device") g_device = torch::Device(argv[i + 1]);
    else if (a == "--items") items = v;
    else if (a == "--steps") steps = v;
    else if (a == "--batch") batch_size = v;
    else if (a == "--threads") threads = v;
    else if (a == "--profile") profile = v;
    else if (a == "--layers") mo.num_layers = v;
    else if (a == "--hidden") mo.hidden_size = v;
    else if (a == "--heads") mo.num_heads = v;
    else if (a == "--pack") policy.pack_padding = v != 0;
    else if (a == "--fused-attention") policy.fused_attention = v != 0;
    else if (a == "--torch-adam") g_torch_adam = v != 0;
    else {
      std::cerr << "usage: bench_palette_train [--items N] [--steps N] [--batch N] [--threads N] [--device cpu|cuda] "
                   "[--profile N] [--layers N --hidden D --heads H] [--pack 0|1] [--fused-attention 0|1] [--torch-adam 0|1]\n";
      return 1;
    }
  }
  const int threads_set = lamia::set_torch_threads(static_cast<int>(threads));
  set_kernel_policy(policy);
  SyntheticOptions so;
  so.num_items = items;
  so.num_users = 0;
  const auto catalog = generate_synthetic(so).dataset.catalog;
  mo.dropout = 0.0;        // the two paths must compute the same function
  auto setup = make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2), mo);
  auto& enc = *setup.encoder;
  std::int64_t params = 0;
  for (const auto& p : enc.parameters()) params += p.numel();
  fmt::print("palette bench: {} items, m = 4, r = 2, L = 4, model {} layers d = {} {} heads ({:.2f} M parameters), "
             "batch {}, {} torch threads, device {}, kernel policy: pack_padding {}, fused_attention {}, optimizer {}\n{}\n",
             catalog.size(), mo.num_layers, mo.hidden_size, mo.num_heads, params / 1e6, batch_size,
             torch::get_num_threads(), g_device.str(), policy.pack_padding, policy.fused_attention,
             g_torch_adam ? "torch::optim::Adam" : "MultiTensorAdam",
             lamia::thread_summary(threads_set));

  PaletteTrainer trainer(setup.encoder, setup.catalog,
                         PaletteTrainerOptions().batch_size(batch_size).validation_fraction(0).device(g_device).loop(
                             PaletteTrainerOptions::default_loop()
                                 .log_every(0)));
  auto all = trainer.epoch_batches(0);
  const std::int64_t warmup = 1;
  all.resize(std::min<std::size_t>(all.size(), static_cast<std::size_t>(steps + warmup)));
  std::int64_t mean_len = 0, n = 0;
  for (const auto& b : all)
    for (auto [item, task] : b) {
      mean_len += make_sample(setup.catalog, item, task, enc.tokens()).size();
      ++n;
    }
  fmt::print("{} timed steps (+{} warm-up) of length-grouped batches, mean sample length {:.1f} tokens\n",
             all.size() - warmup, warmup, double(mean_len) / double(n));

  // Each path starts from the same weights; their steps alternate.
  auto initial = std::dynamic_pointer_cast<PaletteEncoderImpl>(enc.clone());
  auto ref_enc = std::dynamic_pointer_cast<PaletteEncoderImpl>(initial->clone());
  enc.train();
  ref_enc->train();
  Runner fast(enc, PalettePath::kFast), ref(*ref_enc, PalettePath::kReference);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const bool timed = static_cast<std::int64_t>(i) >= warmup;
    if (i == 0) reset_peak_rss();
    fast.step(setup.catalog, all[i], timed);
    if (i == 0) {
      fast.t.peak_kb = peak_rss_kb();
      reset_peak_rss();
    }
    ref.step(setup.catalog, all[i], timed);
    if (i == 0) ref.t.peak_kb = peak_rss_kb();
  }
  const double n_timed = double(all.size() - warmup);
  auto report = [&](const char* name, const Timing& t) {
    fmt::print("train {:<15} {:9.0f} tok/s  {:7.3f} s/step  CPU {:7.3f} s/step ({:9.0f} tok/CPU-s)  {:8.0f} minor faults/step  "
               "peak RSS {:7.1f} MiB  mean loss {:.4f}\n",
               name, t.tokens / t.seconds, t.seconds / n_timed, t.cpu_seconds / n_timed, t.tokens / t.cpu_seconds,
               t.minor_faults / n_timed, t.peak_kb / 1024.0, t.loss / n_timed);
  };
  report("fast path:", fast.t);
  report("reference path:", ref.t);
  fmt::print("fast / reference: {:.2f}x tokens/s (wall), {:.2f}x tokens per CPU second\n",
             (fast.t.tokens / fast.t.seconds) / (ref.t.tokens / ref.t.seconds),
             (fast.t.tokens / fast.t.cpu_seconds) / (ref.t.tokens / ref.t.cpu_seconds));
  auto losses = [](const Timing& t) {
    std::string s;
    for (double l : t.losses) s += fmt::format(" {:.6f}", l);
    return s;
  };
  fmt::print("step losses, fast:     {}\nstep losses, reference:{}\n", losses(fast.t), losses(ref.t));
  if (profile > 0) {
    const auto& spec = all.size() > 1 ? all[1] : all[0];
    print_profile(fast, setup.catalog, spec, static_cast<int>(profile));
    print_profile(ref, setup.catalog, spec, static_cast<int>(profile));
  }

  const auto path = std::filesystem::temp_directory_path() / "lamia_bench_palettes.bin";
  const auto start = std::chrono::steady_clock::now();
  const auto exported = export_palettes(enc, setup.catalog, path, 256);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("export: {} items in {:.2f} s = {:.0f} items/s ({:.1f} MiB file)\n", exported, secs, exported / secs,
             std::filesystem::file_size(path) / 1048576.0);
  std::filesystem::remove(path);
  return 0;
}
