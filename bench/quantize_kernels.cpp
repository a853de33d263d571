// bench_quantize_kernels: the quantizer's K-Means and its palette-file reads against what they
// replaced, measured in the same process (issue #13):
//   kmeans  lamia::kmeans' kernels (detail::KMeansKernel::kBlocked, and kTiled where the CPU has
//           AVX2 and FMA) against faiss::Clustering after the tensor k-means++ (kFaiss, lamia before
//           issue #13) on the same n x d points, same seed: seconds of k-means++, the Lloyd
//           iterations and the final assignment, the ratios, and whether each gives faiss' bits
//           (centroids, codes, objective, inertia), or how far it is from them.
//   read    passes over a palette file (n x L x D, written here), a chunk of 4096 items at a time,
//           each chunk summed: pread into a buffer (read_into), copies out of the map (view and
//           memcpy), and the map's own floats (view, as PaletteSource::from_reader reads it), the
//           previous chunk's pages released (release) in both map modes; wall time, user and
//           system CPU (getrusage), and the peak RSS of each (VmHWM reset through
//           /proc/self/clear_refs). The modes take turns, after one pass to warm the cache.
//           --no-release: the map modes keep the pages they read (the whole file ends up resident).
//
//   bench_quantize_kernels [--sizes 100000] [--dim 64] [--codes 256] [--iterations 25] [--repeats 1]
//                          [--read-items 100000] [--positions 4] [--palette-dim 1024] [--passes 3]
//                          [--workdir /tmp/lamia_bench_kernels] [--keep-files] [--no-kmeans] [--no-read]
//                          [--no-release] [--threads N]
// The points are a mixture of 1024 Gaussian clusters in d dimensions (like the PCA projections of
// bench_quantize_fit's palettes); the palette file has ids of 8 bytes, so that its floats are
// aligned and a view is possible (PaletteFileReader::view gives none for misaligned floats).
#include "bench_util.hpp"

#include <lamia/core/threads.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/quantize.hpp>
#include <lamia/quantize/detail/kmeans_kernels.hpp>
#include <lamia/quantize/detail/kmeans_tiled.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using lamia::bench::now;

struct Usage {
  double wall = 0, user = 0, sys = 0;
};

Usage usage_now() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return {now(), sec(ru.ru_utime), sec(ru.ru_stime)};
}

Usage since(const Usage& a) {
  const Usage b = usage_now();
  return {b.wall - a.wall, b.user - a.user, b.sys - a.sys};
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0.0;
}

torch::Tensor mixture(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto centres = at::normal(0.0, 1.0, {1024, d}, gen);
  const auto labels = at::randint(0, 1024, {n}, gen);
  return (centres.index_select(0, labels) + 0.3 * at::normal(0.0, 1.0, {n, d}, gen)).contiguous();
}

bool same_bits(const lamia::KMeansResult& a, const lamia::KMeansResult& b) {
  return a.centroids.size() == b.centroids.size() &&
         std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * sizeof(float)) == 0 &&
         a.assignment == b.assignment && a.objective == b.objective && a.inertia == b.inertia;
}

// How b differs from the reference a (after same_bits said they differ).
void print_difference(const char* name, const lamia::KMeansResult& a, const lamia::KMeansResult& b) {
  std::int64_t codes = 0, first = -1;
  for (std::size_t i = 0; i < a.assignment.size(); ++i) codes += a.assignment[i] != b.assignment[i];
  double rel = 0;
  for (std::size_t i = 0; i < a.objective[0].size(); ++i) {
    if (a.objective[0][i] != b.objective[0][i] && first < 0) first = static_cast<std::int64_t>(i);
    rel = std::max(rel, std::abs(a.objective[0][i] / b.objective[0][i] - 1));
  }
  float diff = 0;
  for (std::size_t i = 0; i < a.centroids.size(); ++i) diff = std::max(diff, std::abs(a.centroids[i] - b.centroids[i]));
  fmt::print("  {} differs: {} codes, first iteration whose objective differs {} (of {}, largest relative difference "
             "{:.3g}), max |centroid diff| {:.3g}, inertia {} / faiss - 1 = {:.3g}\n",
             name, codes, first, a.objective[0].size(), rel, diff, name, b.inertia / a.inertia - 1);
}

void bench_kmeans(std::int64_t n, std::int64_t d, std::int64_t k, int iterations, int repeats) {
  const auto x = mixture(n, d, 7);
  lamia::KMeansOptions o;
  o.num_codes = k;
  o.iterations = iterations;
  using lamia::detail::KMeansKernel;
  struct Row {
    const char* name;
    KMeansKernel kernel;
    double seeding = 0, iterations = 0, assignment = 0, cpu = 0;
    lamia::KMeansResult result;
    double total() const { return seeding + iterations + assignment; }
  };
  std::vector<Row> rows = {{"faiss", KMeansKernel::kFaiss}, {"blocked", KMeansKernel::kBlocked}};
  if (lamia::detail::tiled_kmeans_supported()) rows.push_back({"tiled", KMeansKernel::kTiled});
  const std::size_t m = rows.size();
  for (int r = 0; r < repeats; ++r) {
    // Rotate the order, so that none always runs first or last on a warm (or loaded) machine.
    for (std::size_t turn = 0; turn < m; ++turn) {
      Row& row = rows[(turn + static_cast<std::size_t>(r)) % m];
      const Usage u = usage_now();
      auto res = lamia::detail::kmeans_with(x.data_ptr<float>(), n, d, o, row.kernel);
      const Usage du = since(u);
      row.seeding += res.seconds_seeding / repeats;
      row.iterations += res.seconds_iterations / repeats;
      row.assignment += res.seconds_assignment / repeats;
      row.cpu += (du.user + du.sys) / repeats;
      row.result = std::move(res);
    }
  }
  const Row& faiss = rows[0];
  fmt::print("kmeans n={} d={} k={} iterations={} (mean of {}), inertia faiss {:.9g}\n", n, d, k, iterations, repeats,
             faiss.result.inertia);
  for (std::size_t i = 1; i < m; ++i) {
    const bool same = same_bits(faiss.result, rows[i].result);
    fmt::print("  {}: same bits as faiss: {} (inertia {:.9g})\n", rows[i].name, same ? "yes" : "NO",
               rows[i].result.inertia);
    if (!same) print_difference(rows[i].name, faiss.result, rows[i].result);
  }
  for (const Row& a : rows) {
    fmt::print("  {:<8} k-means++ {:7.2f}s  Lloyd {:7.2f}s  assignment {:6.2f}s  total {:7.2f}s  process CPU {:7.2f}s\n",
               a.name, a.seeding, a.iterations, a.assignment, a.total(), a.cpu);
  }
  for (std::size_t i = 1; i < m; ++i) {
    fmt::print("  faiss / {}: k-means++ x{:.2f}, Lloyd x{:.2f}, total x{:.2f}\n", rows[i].name,
               faiss.seeding / rows[i].seeding, faiss.iterations / rows[i].iterations, faiss.total() / rows[i].total());
  }
}

// One pass over the file; returns the sum of every float (so that no read is optimised away).
double read_pass(const std::string& mode, const std::filesystem::path& file, std::int64_t chunk, bool release) {
  const bool pread = mode == "pread";
  lamia::PaletteFileReader reader(file, /*verify_checksum=*/false,
                                  pread ? lamia::PaletteFileAccess::kPread : lamia::PaletteFileAccess::kMapped);
  const std::int64_t n = reader.num_items(), row = reader.palette_size() * reader.dim();
  std::vector<float> buffer(static_cast<std::size_t>(std::min(chunk, n) * row));
  double total = 0;
  std::int64_t prev_b = 0, prev_e = 0;
  for (std::int64_t b = 0; b < n; b += chunk) {
    const std::int64_t e = std::min(n, b + chunk);
    const float* p = nullptr;
    if (mode != "pread") {
      p = reader.view(b, e);
      if (!p) throw std::runtime_error("the file's floats are not aligned: no view");
      if (release) reader.release(prev_b, prev_e);
      prev_b = b;
      prev_e = e;
      if (mode == "copy") {  // what read_into did out of the map before it went back to pread
        std::memcpy(buffer.data(), p, static_cast<std::size_t>((e - b) * row) * sizeof(float));
        p = buffer.data();
      }
    } else {
      reader.read_into(b, e, buffer.data());
      p = buffer.data();
    }
    float lane[8] = {};
    const std::int64_t m = (e - b) * row;
    for (std::int64_t i = 0; i + 8 <= m; i += 8)
      for (int l = 0; l < 8; ++l) lane[l] += p[i + l];
    for (float v : lane) total += v;
  }
  return total;
}

void bench_read(std::int64_t n, std::int64_t L, std::int64_t D, int passes, const std::filesystem::path& workdir,
                bool keep, bool release) {
  const auto file = workdir / fmt::format("palettes_aligned_{}.bin", n);
  if (!(keep && std::filesystem::exists(file))) {
    std::vector<std::string> ids(n);
    for (std::int64_t i = 0; i < n; ++i) ids[i] = fmt::format("i{:07d}", i);  // 4 + 8 bytes per item
    const double t0 = now();
    lamia::write_palette_file(file, ids, L, D, [&](std::int64_t b, std::int64_t e) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + static_cast<std::uint64_t>(b));
      return at::normal(0.0, 1.0, {e - b, L, D}, gen);
    }, 4096);
    fmt::print("read: palette file {} ({:.2f} GB) written in {:.1f}s\n", file.string(),
               static_cast<double>(std::filesystem::file_size(file)) / 1e9, now() - t0);
  }
  const double gb = static_cast<double>(std::filesystem::file_size(file)) / 1e9;
  const std::vector<std::string> modes{"pread", "copy", "view"};
  read_pass("pread", file, 4096, release);  // warm the page cache
  struct Row {
    double wall = 0, user = 0, sys = 0, peak = 0, check = 0;
  };
  std::map<std::string, Row> rows;
  for (int p = 0; p < passes; ++p) {
    for (std::size_t i = 0; i < modes.size(); ++i) {
      const auto& mode = modes[(i + p) % modes.size()];
      reset_peak_rss();
      const double rss0 = rss_mib();
      const Usage u = usage_now();
      const double sum = read_pass(mode, file, 4096, release);
      const Usage du = since(u);
      auto& r = rows[mode];
      r.wall += du.wall / passes;
      r.user += du.user / passes;
      r.sys += du.sys / passes;
      r.peak = std::max(r.peak, lamia::bench::peak_rss_mib() - rss0);
      r.check = sum;
    }
  }
  fmt::print("read n={} x {} x {} ({:.2f} GB, in the page cache), chunks of 4096 items, mean of {} passes:\n", n, L, D,
             gb, passes);
  for (const auto& mode : modes) {
    const auto& r = rows[mode];
    fmt::print("  {:<6} {:6.2f}s ({:5.2f} GB/s)  user {:6.2f}s  sys {:6.2f}s  peak RSS +{:.0f} MB  sum {:.6g}\n", mode,
               r.wall, gb / r.wall, r.user, r.sys, r.peak, r.check);
  }
  fmt::print("  pread / copy out of the map: wall x{:.2f}, CPU x{:.2f} | pread / view: wall x{:.2f}, CPU x{:.2f}\n",
             rows["pread"].wall / rows["copy"].wall,
             (rows["pread"].user + rows["pread"].sys) / (rows["copy"].user + rows["copy"].sys),
             rows["pread"].wall / rows["view"].wall,
             (rows["pread"].user + rows["pread"].sys) / (rows["view"].user + rows["view"].sys));
  if (!keep) std::filesystem::remove(file);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes{100000};
  std::int64_t d = 64, k = 256, read_items = 100000, L = 4, D = 1024;
  int iterations = 25, repeats = 1, passes = 3, threads = 0;
  bool do_kmeans = true, do_read = true, keep = false, release = true;
  std::filesystem::path workdir = std::filesystem::temp_directory_path() / "lamia_bench_kernels";
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
    } else if (a == "--dim") {
      d = std::stoll(next());
    } else if (a == "--codes") {
      k = std::stoll(next());
    } else if (a == "--iterations") {
      iterations = std::stoi(next());
    } else if (a == "--repeats") {
      repeats = std::stoi(next());
    } else if (a == "--read-items") {
      read_items = std::stoll(next());
    } else if (a == "--positions") {
      L = std::stoll(next());
    } else if (a == "--palette-dim") {
      D = std::stoll(next());
    } else if (a == "--passes") {
      passes = std::stoi(next());
    } else if (a == "--workdir") {
      workdir = next();
    } else if (a == "--keep-files") {
      keep = true;
    } else if (a == "--no-kmeans") {
      do_kmeans = false;
    } else if (a == "--no-read") {
      do_read = false;
    } else if (a == "--no-release") {
      release = false;
    } else if (a == "--threads") {
      threads = std::stoi(next());
    } else {
      std::cerr << "unknown argument " << a << " (see the comment at the top of bench/quantize_kernels.cpp)\n";
      return 1;
    }
  }
  threads = lamia::set_torch_threads(threads);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  fmt::print("bench_quantize_kernels: threads={}\n{}\n", threads, lamia::thread_summary(threads));
  if (do_kmeans)
    for (auto n : sizes) bench_kmeans(n, d, k, iterations, repeats);
  if (do_read) {
    std::filesystem::create_directories(workdir);
    bench_read(read_items, L, D, passes, workdir, keep, release);
  }
  return 0;
}
