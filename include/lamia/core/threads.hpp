#pragma once
// How many threads lamia uses by default: the machine's physical cores, within the process's
// cgroup CPU limit, unless OMP_NUM_THREADS says otherwise. No torch here: setting torch's
// count is lamia::set_torch_threads (include/lamia/nn/threads.hpp).
//
// Order of precedence for default_thread_count():
//   1. set_default_thread_count(n) in this process (the CLI's global --threads);
//   2. OMP_NUM_THREADS, when it is a positive integer (the first entry of a list "4,2");
//      anything else is ignored, and thread_defaults().omp_note says why;
//   3. min(physical cores, cgroup CPU limit), at least 1.
// Every value is clamped to [1, max_thread_count()] (4 x the hardware threads), so that a
// typo such as OMP_NUM_THREADS=1000000000 cannot start a billion threads.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lamia {

/// The largest thread count lamia will use: 4 x std::thread::hardware_concurrency() (at least 4).
int max_thread_count();

/// What default_thread_count() found, for logs and tests.
struct ThreadDefaults {
  int threads = 1;                  ///< the default (what default_thread_count() returns)
  std::string source;               ///< "the --threads override", "OMP_NUM_THREADS", "physical cores" or "cgroup limit"
  int physical_cores = 1;           ///< among the CPUs this process may run on
  bool physical_cores_from_topology = false;  ///< false: from sched_getaffinity / hardware_concurrency
  int hardware_threads = 1;         ///< std::thread::hardware_concurrency() (at least 1)
  std::optional<int> cgroup_limit;  ///< ceil(quota / period); nullopt: no limit found
  bool omp_set = false;             ///< OMP_NUM_THREADS is present in the environment
  std::string omp_value;            ///< its raw value
  std::optional<int> omp_threads;   ///< its parsed value after clamping; nullopt: unset or ignored
  std::string omp_note;             ///< why it was ignored or clamped ("" when used as is)
  std::optional<int> override_threads;  ///< set_default_thread_count()
};

/// The number of threads lamia uses when none is given (see the top of this header). Never < 1.
int default_thread_count();

/// The same, with where each number came from. Reads the environment and /sys each call.
ThreadDefaults thread_defaults();

/// Makes default_thread_count() return n (clamped) in this process: the CLI's global --threads.
/// n <= 0 removes the override.
void set_default_thread_count(int n);

/// n > 0: n clamped to [1, max_thread_count()]; n <= 0: default_thread_count().
int resolve_thread_count(int n);

/// One line for run and bench logs, e.g.
/// "threads 2 (default: physical cores 2, cgroup limit none, OMP_NUM_THREADS unset)", or
/// "threads 4 (set explicitly; default 2: physical cores 2, cgroup limit none, OMP_NUM_THREADS unset)".
std::string thread_summary(int threads);

// Pure parsers (file or variable contents in, no I/O), exposed for tests.

/// cgroup v2 cpu.max: "max 100000" -> nullopt (no limit); "200000 100000" -> 2;
/// "150000 100000" -> 2 (ceil); malformed -> nullopt.
std::optional<int> parse_cgroup_cpu_max(const std::string& contents);

/// cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us: quota "-1" -> nullopt (no limit);
/// ("200000", "100000") -> 2; malformed -> nullopt.
std::optional<int> parse_cgroup_v1_quota(const std::string& quota, const std::string& period);

/// OMP_NUM_THREADS' value: nullptr or blank -> nullopt (unset); a positive integer, or a list whose
/// first entry is one ("4,2": OpenMP's nested levels) -> that number, clamped to max_threads;
/// anything else ("0", "-1", "abc", "4x") -> nullopt. `why`, when given, receives the reason a
/// value was ignored or clamped ("" otherwise).
std::optional<int> parse_thread_env(const char* value, std::string* why = nullptr,
                                    int max_threads = max_thread_count());

/// Physical cores from sysfs topology: the number of distinct (physical_package_id, core_id)
/// pairs, given each CPU's two file contents. nullopt when the list is empty or a value is malformed.
std::optional<int> count_physical_cores(const std::vector<std::pair<std::string, std::string>>& package_and_core_ids);

}  // namespace lamia
