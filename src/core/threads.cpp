#include <lamia/core/threads.hpp>

#include <fmt/format.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <thread>

namespace lamia {
namespace fs = std::filesystem;
namespace {

std::atomic<int> g_override{0};

std::string trim(const std::string& s) {
  const auto* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// A whole string of decimal digits (optionally signed when allow_sign) as a long long; nullopt
/// when it is anything else or does not fit.
std::optional<long long> parse_integer(const std::string& s, bool allow_sign = false) {
  const std::string t = trim(s);
  const std::string digits = allow_sign && !t.empty() && t[0] == '-' ? t.substr(1) : t;
  if (!all_digits(digits)) return std::nullopt;
  long long v = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc() || r.ptr != t.data() + t.size()) return std::nullopt;
  return v;
}

int clamp_to_int(long long v) {
  return static_cast<int>(std::clamp<long long>(v, 1, std::numeric_limits<int>::max()));
}

std::optional<int> ceil_ratio(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return clamp_to_int(quota / period + (quota % period != 0 ? 1 : 0));
}

std::optional<std::string> read_small_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int hardware_threads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

/// Physical cores among the CPUs this process may run on; `from_topology` says whether sysfs answered.
int detect_physical_cores(bool& from_topology) {
  from_topology = false;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return hardware_threads();
  const int allowed = CPU_COUNT(&set);
  std::vector<std::pair<std::string, std::string>> ids;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const fs::path dir = fs::path("/sys/devices/system/cpu") / fmt::format("cpu{}", cpu) / "topology";
    auto package = read_small_file(dir / "physical_package_id");
    auto core = read_small_file(dir / "core_id");
    if (!package || !core) return std::max(1, allowed);
    ids.emplace_back(std::move(*package), std::move(*core));
  }
  if (auto n = count_physical_cores(ids)) {
    from_topology = true;
    return *n;
  }
  return std::max(1, allowed);
}

/// This process's cgroup paths from /proc/self/cgroup: the v2 path ("0::/x") and the v1 path of
/// the hierarchy holding the cpu controller.
void own_cgroup_paths(std::string& v2, std::string& v1_cpu) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find(':'), b = line.find(':', a == std::string::npos ? 0 : a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (id == "0" && controllers.empty()) v2 = path;
    std::stringstream s(controllers);
    for (std::string c; std::getline(s, c, ',');)
      if (c == "cpu") v1_cpu = path;
  }
}

/// Applies read(dir) to base/path and each of its parents up to base; the smallest limit found.
template <class Read>
std::optional<int> smallest_up_the_tree(const fs::path& base, const std::string& path, Read read) {
  std::optional<int> best;
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return best;
  fs::path rel = fs::path(path).relative_path();
  for (;;) {
    const fs::path dir = rel.empty() ? base : base / rel;
    if (auto v = read(dir)) best = best ? std::min(*best, *v) : *v;
    if (rel.empty()) break;
    rel = rel.parent_path();
  }
  return best;
}

std::optional<int> min_opt(std::optional<int> a, std::optional<int> b) {
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

std::optional<int> detect_cgroup_limit() {
  std::string v2 = "/", v1 = "/";
  own_cgroup_paths(v2, v1);
  std::optional<int> limit;
  auto read_v2 = [](const fs::path& dir) -> std::optional<int> {
    auto s = read_small_file(dir / "cpu.max");
    return s ? parse_cgroup_cpu_max(*s) : std::nullopt;
  };
  auto read_v1 = [](const fs::path& dir) -> std::optional<int> {
    auto q = read_small_file(dir / "cpu.cfs_quota_us"), p = read_small_file(dir / "cpu.cfs_period_us");
    return q && p ? parse_cgroup_v1_quota(*q, *p) : std::nullopt;
  };
  for (const char* base : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    limit = min_opt(limit, smallest_up_the_tree(base, v2, read_v2));
  for (const char* base : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"})
    limit = min_opt(limit, smallest_up_the_tree(base, v1, read_v1));
  return limit;
}

}  // namespace

int max_thread_count() { return std::max(4, 4 * hardware_threads()); }

std::optional<int> parse_cgroup_cpu_max(const std::string& contents) {
  std::istringstream s(contents);
  std::string quota, period, extra;
  if (!(s >> quota >> period) || (s >> extra)) return std::nullopt;
  if (quota == "max") return std::nullopt;
  const auto q = parse_integer(quota), p = parse_integer(period);
  if (!q || !p) return std::nullopt;
  return ceil_ratio(*q, *p);
}

std::optional<int> parse_cgroup_v1_quota(const std::string& quota, const std::string& period) {
  const auto q = parse_integer(quota, /*allow_sign=*/true), p = parse_integer(period);
  if (!q || !p) return std::nullopt;
  return ceil_ratio(*q, *p);  // quota -1: no limit
}

std::optional<int> parse_thread_env(const char* value, std::string* why, int max_threads) {
  auto explain = [&](std::string reason) {
    if (why) *why = std::move(reason);
  };
  explain("");
  if (!value) return std::nullopt;
  const std::string raw = value;
  std::string first = trim(raw);
  if (first.empty()) {
    explain("empty");
    return std::nullopt;
  }
  first = trim(first.substr(0, first.find(',')));  // "4,2": OpenMP's nested levels; the outer one counts
  if (!all_digits(first)) {
    explain("not a positive integer");
    return std::nullopt;
  }
  long long v = 0;
  const auto r = std::from_chars(first.data(), first.data() + first.size(), v);
  const bool too_large = r.ec == std::errc::result_out_of_range;
  if (!too_large && v <= 0) {
    explain("not a positive integer");
    return std::nullopt;
  }
  max_threads = std::max(1, max_threads);
  if (too_large || v > max_threads) {
    explain(fmt::format("clamped to {} (4 x the hardware threads)", max_threads));
    return max_threads;
  }
  return static_cast<int>(v);
}

std::optional<int> count_physical_cores(const std::vector<std::pair<std::string, std::string>>& package_and_core_ids) {
  std::set<std::pair<long long, long long>> cores;
  for (const auto& [package, core] : package_and_core_ids) {
    const auto p = parse_integer(package, /*allow_sign=*/true), c = parse_integer(core, /*allow_sign=*/true);
    if (!p || !c) return std::nullopt;
    cores.emplace(*p, *c);
  }
  if (cores.empty()) return std::nullopt;
  return static_cast<int>(cores.size());
}

ThreadDefaults thread_defaults() {
  ThreadDefaults d;
  d.hardware_threads = hardware_threads();
  d.physical_cores = detect_physical_cores(d.physical_cores_from_topology);
  d.cgroup_limit = detect_cgroup_limit();
  const char* omp = std::getenv("OMP_NUM_THREADS");
  d.omp_set = omp != nullptr;
  if (omp) d.omp_value = omp;
  d.omp_threads = parse_thread_env(omp, &d.omp_note);
  if (const int o = g_override.load(); o > 0) d.override_threads = std::min(o, max_thread_count());

  if (d.override_threads) {
    d.threads = *d.override_threads;
    d.source = "the --threads override";
  } else if (d.omp_threads) {
    d.threads = *d.omp_threads;
    d.source = "OMP_NUM_THREADS";
  } else if (d.cgroup_limit && *d.cgroup_limit < d.physical_cores) {
    d.threads = *d.cgroup_limit;
    d.source = "cgroup limit";
  } else {
    d.threads = d.physical_cores;
    d.source = "physical cores";
  }
  d.threads = std::clamp(d.threads, 1, max_thread_count());
  return d;
}

int default_thread_count() { return thread_defaults().threads; }

void set_default_thread_count(int n) { g_override.store(n > 0 ? n : 0); }

int resolve_thread_count(int n) { return n > 0 ? std::min(n, max_thread_count()) : default_thread_count(); }

std::string thread_summary(int threads) {
  const ThreadDefaults d = thread_defaults();
  std::string facts = fmt::format("{} {}, cgroup limit {}, OMP_NUM_THREADS ",
                                  d.physical_cores_from_topology ? "physical cores" : "CPUs (no topology)",
                                  d.physical_cores, d.cgroup_limit ? std::to_string(*d.cgroup_limit) : "none");
  if (!d.omp_set) {
    facts += "unset";
  } else {
    facts += fmt::format("'{}'", d.omp_value);
    if (!d.omp_threads) facts += " ignored: " + d.omp_note;
    else if (!d.omp_note.empty()) facts += " " + d.omp_note;
  }
  if (threads == d.threads) return fmt::format("threads {} (default, from {}: {})", threads, d.source, facts);
  return fmt::format("threads {} (set explicitly; default {}: {})", threads, d.threads, facts);
}

}  // namespace lamia
