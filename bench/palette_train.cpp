// Palette encoder throughput: training tokens/s of the fast path against the reference path on
// the same batches, palette export items/s, and the peak memory of a batch-128 step, for the
// 4-layer d = 256 model trained from scratch on the synthetic catalog.
//   bench_palette_train [--items N] [--steps N] [--batch N] [--threads N] [--device cpu|cuda]
// (on CUDA the peak RSS is the host's; step times include a device synchronisation).
// The Python PyTorch implementation of the same step is bench/palette_train.py.
// --threads 0 (the default): lamia's default thread count (include/lamia/core/threads.hpp).
#include <lamia/core/threads.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
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
  std::int64_t tokens = 0;
  double loss = 0;
  long peak_kb = 0;
};

Timing run_steps(PaletteEncoderImpl& enc, const TokenizedCatalog& tc,
                 const std::vector<std::vector<std::pair<ItemIndex, std::int64_t>>>& batches, PalettePath path,
                 std::int64_t warmup) {
  torch::optim::Adam opt(enc.parameters(), torch::optim::AdamOptions(1e-4));
  Timing t;
  reset_peak_rss();
  for (std::size_t i = 0; i < batches.size(); ++i) {
    std::vector<SampleLayout> samples;
    for (auto [item, task] : batches[i]) samples.push_back(make_sample(tc, item, task, enc.tokens()));
    const auto start = std::chrono::steady_clock::now();
    auto batch = collate_samples(samples, enc.tokens(), path == PalettePath::kReference).to(g_device);
    opt.zero_grad();
    auto out = enc.forward(batch, path);
    out.loss.backward();
    torch::nn::utils::clip_grad_norm_(enc.parameters(), 1.0);
    opt.step();
    sync();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (static_cast<std::int64_t>(i) >= warmup) {
      t.seconds += secs;
      t.tokens += batch.num_tokens;
      t.loss += out.loss.item<double>();
    }
  }
  t.peak_kb = peak_rss_kb();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t items = 2000, steps = 6, batch_size = 128, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const auto v = std::atoll(argv[i + 1]);
    if (a == "--device") g_device = torch::Device(argv[i + 1]);
    else if (a == "--items") items = v;
    else if (a == "--steps") steps = v;
    else if (a == "--batch") batch_size = v;
    else if (a == "--threads") threads = v;
    else {
      std::cerr << "usage: bench_palette_train [--items N] [--steps N] [--batch N] [--threads N] [--device cpu|cuda]\n";
      return 1;
    }
  }
  const int threads_set = lamia::set_torch_threads(static_cast<int>(threads));
  SyntheticOptions so;
  so.num_items = items;
  so.num_users = 0;
  const auto catalog = generate_synthetic(so).dataset.catalog;
  ScratchModelOptions mo;  // 4 layers, d = 256, 4 heads, BPE vocab 2048
  mo.dropout = 0.0;        // the two paths must compute the same function
  auto setup = make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2), mo);
  auto& enc = *setup.encoder;
  std::int64_t params = 0;
  for (const auto& p : enc.parameters()) params += p.numel();
  fmt::print("palette bench: {} items, m = 4, r = 2, L = 4, model 4 layers d = 256 ({:.2f} M parameters), batch {}, "
             "{} torch threads, device {}\n{}\n",
             catalog.size(), params / 1e6, batch_size, torch::get_num_threads(), g_device.str(),
             lamia::thread_summary(threads_set));

  PaletteTrainer trainer(setup.encoder, setup.catalog,
                         PaletteTrainerOptions().batch_size(batch_size).validation_fraction(0).log_every(0).device(g_device));
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

  // Each path starts from the same weights.
  auto initial = std::dynamic_pointer_cast<PaletteEncoderImpl>(enc.clone());
  enc.train();
  auto fast = run_steps(enc, setup.catalog, all, PalettePath::kFast, warmup);
  auto ref_enc = std::dynamic_pointer_cast<PaletteEncoderImpl>(initial->clone());
  ref_enc->train();
  auto ref = run_steps(*ref_enc, setup.catalog, all, PalettePath::kReference, warmup);
  const double fast_tps = fast.tokens / fast.seconds, ref_tps = ref.tokens / ref.seconds;
  fmt::print("train fast path:      {:9.0f} tok/s  {:7.3f} s/step  peak RSS {:7.1f} MiB  mean loss {:.4f}\n", fast_tps,
             fast.seconds / double(all.size() - warmup), fast.peak_kb / 1024.0, fast.loss / double(all.size() - warmup));
  fmt::print("train reference path: {:9.0f} tok/s  {:7.3f} s/step  peak RSS {:7.1f} MiB  mean loss {:.4f}\n", ref_tps,
             ref.seconds / double(all.size() - warmup), ref.peak_kb / 1024.0, ref.loss / double(all.size() - warmup));
  fmt::print("fast / reference: {:.2f}x tokens/s\n", fast_tps / ref_tps);

  const auto path = std::filesystem::temp_directory_path() / "lamia_bench_palettes.bin";
  const auto start = std::chrono::steady_clock::now();
  const auto exported = export_palettes(enc, setup.catalog, path, 256);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("export: {} items in {:.2f} s = {:.0f} items/s ({:.1f} MiB file)\n", exported, secs, exported / secs,
             std::filesystem::file_size(path) / 1048576.0);
  std::filesystem::remove(path);
  return 0;
}
