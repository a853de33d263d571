// bench_quantize_fit: PaletteQuantizer fit time and encode throughput against
// sklearn PCA + KMeans on the same data (bench/quantize_fit.py, run in the same
// invocation), plus RQ-VAE training time to convergence for the
// "training-free vs trained" ratio, and peak RSS.
//
//   bench_quantize_fit [--sizes 25000,100000] [--million] [--dim 1024] [--pca-dim 64] [--codes 256]
//                      [--positions 4] [--iterations 25] [--restarts 1] [--no-python] [--no-rqvae]
//                      [--rqvae-items 25000] [--rqvae-max-epochs 50] [--workdir /tmp/lamia_bench_quantize]
#include <lamia/quantize.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// Palettes with structure: at each position, items are noisy copies of one of
// `clusters` centres lying in a 96-dimensional subspace of R^D.
torch::Tensor make_palettes(std::int64_t n, std::int64_t L, std::int64_t D, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t clusters = 1024, sub = std::min<std::int64_t>(96, D);
  auto x = torch::empty({n, L, D});
  for (std::int64_t j = 0; j < L; ++j) {
    auto basis = at::normal(0.0, 1.0, {sub, D}, gen) / std::sqrt(static_cast<double>(sub));
    auto centres = torch::mm(at::normal(0.0, 1.0, {clusters, sub}, gen), basis);
    auto labels = at::randint(0, clusters, {n}, gen);
    x.select(1, j).copy_(centres.index_select(0, labels) + 0.3 * torch::mm(at::normal(0.0, 1.0, {n, sub}, gen), basis) +
                         0.02 * at::normal(0.0, 1.0, {n, D}, gen));
  }
  return x;
}

void write_npy(const std::filesystem::path& path, const torch::Tensor& x) {
  std::string shape;
  for (auto s : x.sizes()) shape += std::to_string(s) + ", ";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  const std::size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(x.data_ptr()), static_cast<std::streamsize>(x.numel() * 4));
}

nlohmann::json run_python(const std::string& cmd) {
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) return nullptr;
  const auto line = out.substr(out.rfind('{'));
  return nlohmann::json::parse(line, nullptr, false);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes{25000, 100000};
  std::int64_t D = 1024, d = 64, k = 256, L = 4, rq_items = 25000;
  int iterations = 25, restarts = 1, rq_epochs = 50;
  bool python = true, rqvae = true;
  std::filesystem::path workdir = std::filesystem::temp_directory_path() / "lamia_bench_quantize";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--sizes") {
      sizes.clear();
      std::stringstream s(next());
      for (std::string t; std::getline(s, t, ',');) sizes.push_back(std::stoll(t));
    } else if (a == "--million") {
      sizes.push_back(1000000);
    } else if (a == "--dim") {
      D = std::stoll(next());
    } else if (a == "--pca-dim") {
      d = std::stoll(next());
    } else if (a == "--codes") {
      k = std::stoll(next());
    } else if (a == "--positions") {
      L = std::stoll(next());
    } else if (a == "--iterations") {
      iterations = std::stoi(next());
    } else if (a == "--restarts") {
      restarts = std::stoi(next());
    } else if (a == "--no-python") {
      python = false;
    } else if (a == "--no-rqvae") {
      rqvae = false;
    } else if (a == "--rqvae-items") {
      rq_items = std::stoll(next());
    } else if (a == "--rqvae-max-epochs") {
      rq_epochs = std::stoi(next());
    } else if (a == "--workdir") {
      workdir = next();
    } else {
      std::cerr << "unknown argument " << a << " (see the comment at the top of bench/quantize_fit.cpp)\n";
      return 1;
    }
  }
  std::filesystem::create_directories(workdir);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one line at a time, also into a log file
  fmt::print("bench_quantize_fit: D={} -> d={}, k={}, L={}, iterations={}, restarts={}, threads={}\n", D, d, k, L,
             iterations, restarts, torch::get_num_threads());
  double fit_25k = 0;
  for (auto n : sizes) {
    auto x = make_palettes(n, L, D, 1);
    lamia::PaletteQuantizerOptions o;
    o.pca_dim = d;
    o.num_codes = k;
    o.iterations = iterations;
    o.restarts = restarts;
    lamia::PaletteQuantizer q(o);
    double t0 = now();
    auto report = q.fit(x);
    const double fit_s = now() - t0;
    if (n == rq_items) fit_25k = fit_s;
    t0 = now();
    auto codes = q.encode(x);
    const double enc_s = now() - t0;
    std::vector<double> inertia;
    for (auto& p : report.positions) inertia.push_back(p.inertia);
    fmt::print("n={}: lamia fit {:.2f}s, encode {:.0f} items/s, colliding items {}, inertia {:.4g}, peak RSS {:.0f} MB\n",
               n, fit_s, n / enc_s, report.num_colliding_items, fmt::join(inertia, " "), peak_rss_mb());
    if (python) {
      const auto npy = workdir / fmt::format("palettes_{}.npy", n);
      write_npy(npy, x);
      const auto cmd = fmt::format(
          "/usr/bin/python3 {}/bench/quantize_fit.py --data {} --pca-dim {} --codes {} --iterations {} --restarts {}",
          LAMIA_SOURCE_DIR, npy.string(), d, k, iterations, restarts);
      auto ref = run_python(cmd);
      std::filesystem::remove(npy);
      if (ref.is_null() || ref.is_discarded()) {
        fmt::print("n={}: sklearn reference failed ({})\n", n, cmd);
      } else {
        const double ref_fit = ref["fit_seconds"], ref_enc = ref["encode_items_per_s"];
        std::vector<double> ref_inertia = ref["inertia"];
        double ratio_inertia = 0;
        for (std::size_t j = 0; j < inertia.size(); ++j) ratio_inertia += inertia[j] / ref_inertia[j] / inertia.size();
        fmt::print("n={}: sklearn fit {:.2f}s, encode {:.0f} items/s, peak RSS {:.0f} MB | fit speed-up x{:.2f}, "
                   "encode speed-up x{:.2f}, inertia lamia/sklearn {:.4f}\n",
                   n, ref_fit, ref_enc, static_cast<double>(ref["peak_rss_mb"]), ref_fit / fit_s,
                   (n / enc_s) / ref_enc, ratio_inertia);
      }
    }
  }
  if (rqvae) {
    // Same data as the palette bench, one embedding per item (position 0).
    auto x = make_palettes(rq_items, L, D, 1).select(1, 0).contiguous();
    if (fit_25k == 0) {
      lamia::PaletteQuantizerOptions o;
      o.pca_dim = d;
      o.num_codes = k;
      o.iterations = iterations;
      o.restarts = restarts;
      lamia::PaletteQuantizer q(o);
      const double t0 = now();
      q.fit(make_palettes(rq_items, L, D, 1));
      fit_25k = now() - t0;
    }
    lamia::RqVae model(lamia::RqVaeOptions(D).num_levels(3).num_codes(k));
    lamia::RqVaeTrainOptions to;
    to.max_epochs = rq_epochs;
    to.progress = true;
    const double t0 = now();
    auto r = lamia::train_rq_vae(model, x, to);
    const double train_s = now() - t0;
    fmt::print("rq-vae n={}: {} epochs ({}), {:.1f}s, reconstruction {:.4g} -> {:.4g}, utilisation {:.2f} | "
               "trained / training-free (PaletteQuantizer fit, L={}) time ratio x{:.1f}, peak RSS {:.0f} MB\n",
               rq_items, r.epochs, r.stopped_early ? "early stop" : "epoch cap", train_s,
               r.reconstruction_loss.front(), r.reconstruction_loss.back(), fmt::join(r.utilization, "/"), L,
               train_s / fit_25k, peak_rss_mb());
  }
  return 0;
}
