// bench_quantize_fit: PaletteQuantizer fit time and encode throughput against
// sklearn PCA + KMeans on the same data (bench/quantize_fit.py, run in the same
// invocation), plus RQ-VAE training time to convergence for the
// "training-free vs trained" ratio, and peak RSS.
//
// Each size's palettes are written once to a palette file (streamed, never whole in memory);
// every fit then runs in a child process of its own so that its peak RSS is its own:
//   streamed  PaletteQuantizer::fit(PaletteSource::from_reader(PaletteFileReader))
//   memory    the file loaded into one tensor, then fit(tensor) (sizes up to --memory-max)
//   sklearn   bench/quantize_fit.py on the same file (np.memmap)
//
//   bench_quantize_fit [--sizes 25000,100000] [--million] [--dim 1024] [--pca-dim 64] [--codes 256]
//                      [--positions 4] [--iterations 25] [--restarts 1] [--no-python] [--no-rqvae]
//                      [--memory-max 100000] [--rqvae-items 25000] [--rqvae-max-epochs 50] [--rqvae-device cuda]
//                      [--workdir /tmp/lamia_bench_quantize] [--python /usr/bin/python3] [--threads N]
//                      [--pca-solver exact|randomized] [--pca-max-items M] [--max-points-per-centroid P]
//                      [--modes streamed,fast] [--keep-files] [--fast-pca-max-items 100000]
//                      [--fast-max-points-per-centroid 256] [--read-ahead 2]
// The child fits print their time by phase (PaletteFitReport::phase_seconds). --modes picks the
// fits: streamed (the options above), memory (the file loaded whole), fast (streamed with
// pca.max_items --fast-pca-max-items 100000 and kmeans.max_points_per_centroid
// --fast-max-points-per-centroid 256), and inertia and time are compared with streamed.
// --keep-files keeps (and reuses) the palette files in the workdir.
// --read-ahead N: the streamed fits read the N chunks after each one ahead (PaletteSource::from_reader's
// read_ahead_chunks; 0: none). The child prints a crc32 of the codes it encodes, to compare runs.
// --threads 0 (the default): lamia's default thread count (include/lamia/core/threads.hpp). The child
// fits and the sklearn reference (through threadpoolctl) run with the same count.
#include "bench_util.hpp"

#include <lamia/core/binary_io.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/quantize.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using lamia::bench::now;
using lamia::bench::run_json;

// Palettes with structure: at each position, items are noisy copies of one of
// `clusters` centres lying in a 96-dimensional subspace of R^D. Items [begin, end) of
// a catalog of that seed; any chunking gives the same catalog.
struct PaletteGenerator {
  std::int64_t L, D;
  std::uint64_t seed;
  std::vector<torch::Tensor> basis, centres;  // per position

  PaletteGenerator(std::int64_t L_, std::int64_t D_, std::uint64_t seed_) : L(L_), D(D_), seed(seed_) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const std::int64_t clusters = 1024, sub = std::min<std::int64_t>(96, D);
    for (std::int64_t j = 0; j < L; ++j) {
      basis.push_back(at::normal(0.0, 1.0, {sub, D}, gen) / std::sqrt(static_cast<double>(sub)));
      centres.push_back(torch::mm(at::normal(0.0, 1.0, {clusters, sub}, gen), basis.back()));
    }
  }
  static constexpr std::int64_t kBlock = 4096;  // items generated from one seeded stream
  torch::Tensor operator()(std::int64_t begin, std::int64_t end) const {
    auto x = torch::empty({end - begin, L, D});
    for (std::int64_t b = begin / kBlock * kBlock; b < end; b += kBlock) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003 + static_cast<std::uint64_t>(b / kBlock) + 1);
      for (std::int64_t j = 0; j < L; ++j) {
        const auto sub = basis[j].size(0);
        auto labels = at::randint(0, centres[j].size(0), {kBlock}, gen);
        auto block = centres[j].index_select(0, labels) + 0.3 * torch::mm(at::normal(0.0, 1.0, {kBlock, sub}, gen), basis[j]) +
                     0.02 * at::normal(0.0, 1.0, {kBlock, D}, gen);
        const auto lo = std::max(begin, b), hi = std::min(end, b + kBlock);
        x.narrow(0, lo - begin, hi - lo).select(1, j).copy_(block.narrow(0, lo - b, hi - lo));
      }
    }
    return x;
  }
};

struct Settings {
  std::int64_t D = 1024, d = 64, k = 256, L = 4;
  int iterations = 25, restarts = 1;
  int threads = 0;  // torch / OpenMP threads; 0: lamia's default
  std::string pca_solver = "exact";
  std::int64_t pca_max_items = 0, max_points_per_centroid = 0;
  std::int64_t read_ahead = 2;  // chunks read ahead by the streamed source
  lamia::PaletteQuantizerOptions quantizer() const {
    lamia::PaletteQuantizerOptions o;
    o.pca_dim = d;
    o.kmeans.num_codes = k;
    o.kmeans.iterations = iterations;
    o.kmeans.restarts = restarts;
    o.kmeans.max_points_per_centroid = max_points_per_centroid;
    o.pca.max_items = pca_max_items;
    o.pca.solver = pca_solver == "randomized" ? lamia::PcaSolver::kRandomized : lamia::PcaSolver::kExact;
    return o;
  }
  // The "fast" mode: the PCA on a sample (--fast-pca-max-items, 100k), K-Means on a sample
  // (--fast-max-points-per-centroid, 256 = faiss' default), every item coded.
  std::int64_t fast_pca_max_items = 100000, fast_max_points_per_centroid = 256;
  Settings fast() const {
    Settings f = *this;
    f.pca_max_items = fast_pca_max_items;
    f.max_points_per_centroid = fast_max_points_per_centroid;
    return f;
  }
  std::string args() const {
    return fmt::format("--dim {} --pca-dim {} --codes {} --positions {} --iterations {} --restarts {} --threads {} "
                       "--pca-solver {} --pca-max-items {} --max-points-per-centroid {} --read-ahead {}",
                       D, d, k, L, iterations, restarts, threads, pca_solver, pca_max_items, max_points_per_centroid,
                       read_ahead);
  }
};

// The child process: one fit of the palette file, streamed or loaded whole; one JSON line.
int run_child(const std::string& mode, const std::filesystem::path& file, const Settings& st) {
  lamia::PaletteQuantizer q(st.quantizer());
  // streamed: chunks read from the file; memory: the whole file in one tensor first.
  std::unique_ptr<lamia::PaletteFileReader> reader;
  torch::Tensor loaded;
  lamia::PaletteSource source;
  if (mode == "streamed") {
    reader = std::make_unique<lamia::PaletteFileReader>(file, /*verify_checksum=*/false);
    source = lamia::PaletteSource::from_reader(*reader, 4096, st.read_ahead);
  } else {
    loaded = lamia::load_palettes(file).palettes;
    source = lamia::PaletteSource::from_tensor(loaded);
  }
  const std::int64_t n = source.num_items;
  double t0 = now();
  const lamia::PaletteFitReport report = q.fit(source);
  const double fit_s = now() - t0;
  t0 = now();
  const auto codes = q.encode(source).contiguous();
  const double enc_s = now() - t0;
  const auto codes_crc = lamia::detail::Crc32().update(codes.data_ptr(), static_cast<std::size_t>(codes.numel()) * codes.element_size()).value();
  std::vector<double> inertia;
  for (auto& p : report.positions) inertia.push_back(p.inertia);
  nlohmann::json j{{"fit_seconds", fit_s},
                   {"phase_seconds", report.phase_seconds},
                   {"pca_items", report.pca_items},
                   {"kmeans_fit_points", report.positions.at(0).kmeans_fit_points},
                   {"encode_items_per_s", n / enc_s},
                   {"inertia", inertia},
                   {"colliding_items", report.num_colliding_items},
                   {"codes_crc32", fmt::format("{:08x}", codes_crc)},
                   {"peak_rss_mb", lamia::bench::peak_rss_mib()}};
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes{25000, 100000};
  Settings st;
  std::int64_t rq_items = 25000, memory_max = 100000;
  int rq_epochs = 50;
  std::string rq_device = "cpu", python_exe = "/usr/bin/python3";
  bool python = true, rqvae = true, keep_files = false;
  std::vector<std::string> modes{"streamed", "memory"};
  std::string child_mode;
  std::filesystem::path child_file;
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
      st.D = std::stoll(next());
    } else if (a == "--pca-dim") {
      st.d = std::stoll(next());
    } else if (a == "--codes") {
      st.k = std::stoll(next());
    } else if (a == "--positions") {
      st.L = std::stoll(next());
    } else if (a == "--iterations") {
      st.iterations = std::stoi(next());
    } else if (a == "--restarts") {
      st.restarts = std::stoi(next());
    } else if (a == "--no-python") {
      python = false;
    } else if (a == "--no-rqvae") {
      rqvae = false;
    } else if (a == "--memory-max") {
      memory_max = std::stoll(next());
    } else if (a == "--rqvae-items") {
      rq_items = std::stoll(next());
    } else if (a == "--python") {
      python_exe = next();
    } else if (a == "--rqvae-device") {
      rq_device = next();
    } else if (a == "--rqvae-max-epochs") {
      rq_epochs = std::stoi(next());
    } else if (a == "--pca-solver") {
      st.pca_solver = next();
      if (st.pca_solver != "exact" && st.pca_solver != "randomized") throw std::runtime_error("--pca-solver: exact or randomized");
    } else if (a == "--pca-max-items") {
      st.pca_max_items = std::stoll(next());
    } else if (a == "--max-points-per-centroid") {
      st.max_points_per_centroid = std::stoll(next());
    } else if (a == "--fast-pca-max-items") {
      st.fast_pca_max_items = std::stoll(next());
    } else if (a == "--fast-max-points-per-centroid") {
      st.fast_max_points_per_centroid = std::stoll(next());
    } else if (a == "--modes") {
      modes.clear();
      std::stringstream s(next());
      for (std::string t; std::getline(s, t, ',');) modes.push_back(t);
    } else if (a == "--read-ahead") {
      st.read_ahead = std::stoll(next());
    } else if (a == "--keep-files") {
      keep_files = true;
    } else if (a == "--threads") {
      st.threads = std::stoi(next());
    } else if (a == "--workdir") {
      workdir = next();
    } else if (a == "--child") {
      child_mode = next();
      child_file = next();
    } else {
      std::cerr << "unknown argument " << a << " (see the comment at the top of bench/quantize_fit.cpp)\n";
      return 1;
    }
  }
  st.threads = lamia::set_torch_threads(st.threads);  // children get the resolved count in st.args()
  if (!child_mode.empty()) return run_child(child_mode, child_file, st);
  const auto phase_line = [](const nlohmann::json& r) {
    std::string out;
    for (const auto& [name, sec] : r["phase_seconds"].items()) out += fmt::format(" {} {:.1f}s", name, sec.get<double>());
    return out;
  };
  std::filesystem::create_directories(workdir);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one line at a time, also into a log file
  fmt::print("bench_quantize_fit: D={} -> d={}, k={}, L={}, iterations={}, restarts={}, threads={}\n{}\n", st.D, st.d,
             st.k, st.L, st.iterations, st.restarts, torch::get_num_threads(), lamia::thread_summary(st.threads));
  const PaletteGenerator generate(st.L, st.D, 1);
  const auto self = lamia::bench::self_exe();
  double fit_rq = 0;
  for (auto n : sizes) {
    const auto file = workdir / fmt::format("palettes_{}.bin", n);
    std::vector<std::string> ids(n);
    for (std::int64_t i = 0; i < n; ++i) ids[i] = fmt::format("i{}", i);
    double t0 = now();
    if (keep_files && std::filesystem::exists(file)) {
      fmt::print("n={}: palette file {} reused\n", n, file.string());
    } else {
      lamia::write_palette_file(file, ids, st.L, st.D, generate, PaletteGenerator::kBlock);
      fmt::print("n={}: palette file {:.1f} GB written in {:.1f}s\n", n,
                 static_cast<double>(std::filesystem::file_size(file)) / 1e9, now() - t0);
    }
    std::map<std::string, nlohmann::json> results;
    for (const std::string& mode : modes) {
      if (mode == "memory" && n > memory_max) continue;
      const Settings& ms = mode == "fast" ? st.fast() : st;
      auto r = run_json(fmt::format("{} --child {} {} {}", self, mode == "fast" ? "streamed" : mode, file.string(),
                                    ms.args()));
      if (r.is_null() || r.is_discarded()) {
        fmt::print("n={}: lamia {} fit failed\n", n, mode);
        continue;
      }
      results[mode] = r;
      fmt::print("n={}: lamia {} fit {:.2f}s (PCA on {} items, {}, K-Means on {} points), encode {:.0f} items/s, "
                 "colliding items {}, inertia {:.6g}, peak RSS {:.0f} MB\n  phases:{}\n",
                 n, mode, r["fit_seconds"].get<double>(), r["pca_items"].get<std::int64_t>(), ms.pca_solver,
                 r["kmeans_fit_points"].get<std::int64_t>(), r["encode_items_per_s"].get<double>(),
                 r["colliding_items"].get<std::int64_t>(), fmt::join(r["inertia"].get<std::vector<double>>(), " "),
                 r["peak_rss_mb"].get<double>(), phase_line(r));
      if (mode != "streamed" && results.count("streamed")) {
        const auto a = results["streamed"]["inertia"].get<std::vector<double>>();
        const auto b = r["inertia"].get<std::vector<double>>();
        double ratio = 0;
        for (std::size_t j = 0; j < a.size(); ++j) ratio += b[j] / a[j] / a.size();
        fmt::print("n={}: {} / streamed: fit time x{:.3f}, inertia x{:.5f}\n", n, mode,
                   r["fit_seconds"].get<double>() / results["streamed"]["fit_seconds"].get<double>(), ratio);
      }
    }
    if (n == rq_items && results.count("streamed")) fit_rq = results["streamed"]["fit_seconds"];
    if (python && results.count("streamed")) {
      const auto cmd = fmt::format(
          "{} {}/bench/quantize_fit.py --data {} --pca-dim {} --codes {} --iterations {} --restarts {} --threads {}",
          python_exe, LAMIA_SOURCE_DIR, file.string(), st.d, st.k, st.iterations, st.restarts, st.threads);
      auto ref = run_json(cmd);
      if (ref.is_null() || ref.is_discarded()) {
        fmt::print("n={}: sklearn reference failed ({})\n", n, cmd);
      } else {
        const auto& ours = results["streamed"];
        const double fit_s = ours["fit_seconds"], enc = ours["encode_items_per_s"];
        const double ref_fit = ref["fit_seconds"], ref_enc = ref["encode_items_per_s"];
        const auto inertia = ours["inertia"].get<std::vector<double>>();
        const auto ref_inertia = ref["inertia"].get<std::vector<double>>();
        double ratio_inertia = 0;
        for (std::size_t j = 0; j < inertia.size(); ++j) ratio_inertia += inertia[j] / ref_inertia[j] / inertia.size();
        fmt::print("n={}: sklearn fit {:.2f}s, encode {:.0f} items/s, peak RSS {:.0f} MB, threads {} | streamed lamia: fit "
                   "speed-up x{:.2f}, encode speed-up x{:.2f}, inertia lamia/sklearn {:.4f}, peak RSS lamia/sklearn "
                   "{:.3f}\n",
                   n, ref_fit, ref_enc, ref["peak_rss_mb"].get<double>(), ref.value("threads", nlohmann::json("?")).dump(),
                   ref_fit / fit_s, enc / ref_enc, ratio_inertia,
                   ours["peak_rss_mb"].get<double>() / ref["peak_rss_mb"].get<double>());
      }
    }
    if (!keep_files) std::filesystem::remove(file);
  }
  if (rqvae) {
    // Same data as the palette bench, one embedding per item (position 0).
    auto x = generate(0, rq_items).select(1, 0).contiguous();
    if (fit_rq == 0) {
      lamia::PaletteQuantizer q(st.quantizer());
      const double t0 = now();
      q.fit(generate(0, rq_items));
      fit_rq = now() - t0;
    }
    lamia::RqVae model(lamia::RqVaeOptions(st.D).num_levels(3).num_codes(st.k));
    lamia::RqVaeTrainOptions to;
    to.max_epochs = rq_epochs;
    to.progress = true;
    to.device = torch::Device(rq_device);
    const double t0 = now();
    auto r = lamia::train_rq_vae(model, x, to);
    const double train_s = now() - t0;
    fmt::print("rq-vae n={} on {}: {} epochs ({}), {:.1f}s, reconstruction {:.4g} -> {:.4g}, utilisation {:.2f} | "
               "trained / training-free (PaletteQuantizer fit, L={}) time ratio x{:.1f}, peak RSS {:.0f} MB\n",
               rq_items, rq_device, r.epochs, r.stopped_early ? "early stop" : "epoch cap", train_s,
               r.reconstruction_loss.front(), r.reconstruction_loss.back(), fmt::join(r.utilization, "/"), st.L,
               train_s / fit_rq, lamia::bench::peak_rss_mib());
  }
  return 0;
}
