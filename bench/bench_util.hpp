#pragma once
// Pieces the benchmarks share (header-only, bench/ only): clocks, peak memory, child processes that
// report one JSON line, and the random semantic-ID tables, histories and models of the decoding
// benches. Each benchmark that runs its measurements in child processes (so that a peak RSS is one
// measurement's alone) re-executes itself (self_exe()) and reads the child's last JSON line.
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/nn/decoder.hpp>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace lamia::bench {

/// Seconds on the monotonic clock.
inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Reads "--name N" pairs into the integers `flags` names; on an unknown name or a name without a
/// value prints `usage` to stderr and returns false.
inline bool parse_int_flags(int argc, char** argv, const std::vector<std::pair<std::string, std::int64_t*>>& flags,
                            const char* usage) {
  for (int i = 1; i < argc; i += 2) {
    bool known = false;
    for (const auto& [name, value] : flags) {
      if (i + 1 < argc && name == argv[i]) {
        *value = std::atoll(argv[i + 1]);
        known = true;
      }
    }
    if (!known) {
      std::fprintf(stderr, "usage: %s\n", usage);
      return false;
    }
  }
  return true;
}

/// Process CPU seconds (all threads): on a shared machine wall time alone measures the neighbours.
inline double cpu_seconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

/// Peak resident set size of this process in MiB (VmHWM; 0 where /proc is absent).
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0.0;
}

/// This program's path, to re-run it as a child.
inline std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

/// Runs a shell command and parses the last line of its stdout that starts a JSON object (the
/// child's result; earlier lines may be progress). null when the command fails or prints none.
inline nlohmann::json run_json(const std::string& cmd) {
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) return nullptr;
  const auto start = out.rfind("\n{");
  const auto line = start == std::string::npos ? out : out.substr(start + 1);
  auto j = nlohmann::json::parse(line, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

/// Wall time, CPU time and peak RSS of child processes run with /bin/sh -c, waited for with wait4.
struct ChildUsage {
  double wall = 0, user = 0, sys = 0, max_rss_mib = 0;
  int status = -1;
};

/// Starts every command at once and waits for all of them; one ChildUsage each (wall: from the
/// common start to that child's end).
inline std::vector<ChildUsage> run_concurrently(const std::vector<std::string>& commands) {
  const double t0 = now();
  std::vector<pid_t> pids;
  for (const auto& c : commands) {
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", c.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<ChildUsage> out(commands.size());
  for (std::size_t left = pids.size(); left > 0; --left) {
    int status = 0;
    rusage u{};
    const pid_t pid = wait4(-1, &status, 0, &u);
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (pids[i] != pid) continue;
      out[i].wall = now() - t0;
      out[i].user = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6;
      out[i].sys = u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
      out[i].max_rss_mib = u.ru_maxrss / 1024.0;
      out[i].status = status;
    }
  }
  return out;
}

/// Least-squares slope of log(y) against log(x): y ~ x^slope. NaN with fewer than two points.
inline double loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t m = std::min(x.size(), y.size());
  if (m < 2) return std::nan("");
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < m; ++i) {
    const double a = std::log(x[i]), b = std::log(std::max(y[i], 1e-12));
    sx += a;
    sy += b;
    sxx += a * a;
    sxy += a * b;
  }
  return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

/// A table of n items with uniformly random codes (L levels of k codes).
inline SemanticIdTable random_table(std::int64_t n, std::int64_t L, std::int64_t k, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int32_t> codes(std::size_t(n * L));
  for (auto& c : codes) c = std::int32_t(rng() % std::uint32_t(k));
  return SemanticIdTable::from_codes(codes.data(), n, L, std::vector<std::int64_t>(std::size_t(L), k));
}

/// Histories of `length` uniformly random items of a catalog of n.
inline std::vector<std::vector<ItemIndex>> random_histories(std::int64_t users, std::int64_t n, std::uint32_t seed,
                                                            int length = 20) {
  std::mt19937 rng(seed);
  std::vector<std::vector<ItemIndex>> h(static_cast<std::size_t>(users));
  for (auto& row : h)
    for (int t = 0; t < length; ++t) row.push_back(ItemIndex(rng() % std::uint32_t(n)));
  return h;
}

/// A small decoder with random weights (torch seed 0) over the code vocabulary, in eval mode.
inline Decoder random_model(const CodeVocabulary& vocab, std::int64_t hidden, std::int64_t layers,
                            torch::Device device = torch::kCPU) {
  torch::manual_seed(0);
  Decoder model(DecoderOptions(vocab.size(), hidden, layers, 4)
                    .dropout(0)
                    .pad_token_id(CodeVocabulary::kPad)
                    .max_position_embeddings(256));
  model->eval();
  model->to(device);
  return model;
}

}  // namespace lamia::bench
