// Loader benchmark: loads the real samples (MovieLens ratings, Amazon Office, H&M, MIND) and
// prints rows per second (catalog items + interactions) and peak RSS against the Python
// reference bench/data_loaders.py (json / csv modules, same shape), run as subprocesses.
// Each measurement runs in a fresh process so that peak RSS is that load's alone.
//
//   build/bench_data_loaders [SHARED_DATA_DIR] [--repeat N]
#include <lamia/core/threads.hpp>
#include <lamia/data/loaders.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>

namespace fs = std::filesystem;

namespace {

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Child mode: load `repeat` times, print {"seconds": best, "rows": n, "peak_rss_kb": k}.
int child(const std::string& format, const fs::path& dir, int repeat) {
  if (format == "none") {
    std::cout << nlohmann::json{{"peak_rss_kb", peak_rss_kb()}}.dump() << "\n";
    return 0;
  }
  double best = std::numeric_limits<double>::infinity();
  std::size_t rows = 0;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto ds = lamia::load_dataset(format, dir);
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    rows = ds.catalog.size() + ds.interactions.size();
  }
  std::cout << nlohmann::json{{"seconds", best}, {"rows", rows}, {"peak_rss_kb", peak_rss_kb()}}.dump() << "\n";
  return 0;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

nlohmann::json run_json(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + command);
  std::string out;
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  if (status != 0) throw std::runtime_error(fmt::format("'{}' failed (status {}): {}", command, status, out));
  return nlohmann::json::parse(out);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 5 && std::string(argv[1]) == "--child") return child(argv[2], argv[3], std::stoi(argv[4]));
    fs::path data = LAMIA_SHARED_DATA_DIR;
    int repeat = 5;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--repeat" && i + 1 < argc) repeat = std::stoi(argv[++i]);
      else data = a;
    }
    if (!fs::is_directory(data)) {
      std::cerr << "bench_data_loaders: " << data.string() << " is absent (the real datasets live in ../shared/data)\n";
      return 1;
    }
    const std::string self = fs::canonical("/proc/self/exe").string();
    const std::string script = std::string(LAMIA_SOURCE_DIR) + "/bench/data_loaders.py";
    const std::string python = "/usr/bin/python3";

    auto cpp_base = run_json(quote(self) + " --child none . 0");
    auto py_base = run_json(python + " " + quote(script) + " --baseline");
    fmt::print("Baseline peak RSS (empty process): C++ {:.1f} MiB, Python {:.1f} MiB\n",
               cpp_base["peak_rss_kb"].get<double>() / 1024, py_base["peak_rss_kb"].get<double>() / 1024);
    fmt::print("best of {} loads each; rows = catalog items + interactions; RSS = peak of the process\n", repeat);
    fmt::print("threads 1: single-threaded code (no torch); lamia's default elsewhere: {}\n",
               lamia::thread_summary(lamia::default_thread_count()));
    fmt::print("\n");
    fmt::print("{:<24} {:>9} {:>12} {:>12} {:>7} {:>10} {:>10} {:>7}\n", "dataset", "rows", "C++ rows/s",
               "Py rows/s", "speed", "C++ MiB", "Py MiB", "memory");
    struct Set {
      const char* format;
      const char* folder;
    };
    for (const auto& s : {Set{"movielens", "movielens-latest-small"}, Set{"amazon-lcrec", "amazon-office"},
                          Set{"hm", "hm-sample"}, Set{"mind", "mind-small-subset"}}) {
      auto dir = data / s.folder;
      if (!fs::is_directory(dir)) {
        fmt::print("{:<24} absent\n", s.folder);
        continue;
      }
      auto c = run_json(fmt::format("{} --child {} {} {}", quote(self), s.format, quote(dir.string()), repeat));
      auto p = run_json(fmt::format("{} {} --format {} --path {} --repeat {}", python, quote(script), s.format,
                                    quote(dir.string()), repeat));
      double c_rate = c["rows"].get<double>() / c["seconds"].get<double>();
      double p_rate = p["rows"].get<double>() / p["seconds"].get<double>();
      double c_mib = c["peak_rss_kb"].get<double>() / 1024, p_mib = p["peak_rss_kb"].get<double>() / 1024;
      fmt::print("{:<24} {:>9} {:>12.0f} {:>12.0f} {:>6.1f}x {:>10.1f} {:>10.1f} {:>6.2f}x\n", s.folder,
                 c["rows"].get<std::size_t>(), c_rate, p_rate, c_rate / p_rate, c_mib, p_mib, c_mib / p_mib);
    }
    fmt::print("\nspeed: C++ rows/s over Python rows/s (higher is better); memory: C++ peak over Python peak\n");
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_data_loaders: " << e.what() << "\n";
    return 1;
  }
}
