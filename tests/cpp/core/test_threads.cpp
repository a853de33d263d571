// lamia's default thread count: the pure parsers (cgroup v1/v2, OMP_NUM_THREADS, sysfs topology)
// and the detection on this machine.
#include <catch2/catch.hpp>

#include "../env_guard.hpp"

#include <lamia/core/threads.hpp>

#include <cstdlib>
#include <optional>
#include <string>

using lamia::parse_cgroup_cpu_max;
using lamia::parse_cgroup_v1_quota;
using lamia::parse_thread_env;

namespace {
using lamia::testing::EnvGuard;
}  // namespace

TEST_CASE("cgroup v2 cpu.max", "[threads]") {
  CHECK_FALSE(parse_cgroup_cpu_max("max 100000").has_value());
  CHECK_FALSE(parse_cgroup_cpu_max("max 100000\n").has_value());
  CHECK(parse_cgroup_cpu_max("200000 100000") == 2);
  CHECK(parse_cgroup_cpu_max("200000 100000\n") == 2);
  CHECK(parse_cgroup_cpu_max("150000 100000") == 2);  // 1.5 CPUs: ceil
  CHECK(parse_cgroup_cpu_max("50000 100000") == 1);
  CHECK(parse_cgroup_cpu_max("100000 100000") == 1);
  CHECK(parse_cgroup_cpu_max("1600000 100000") == 16);
  CHECK_FALSE(parse_cgroup_cpu_max("").has_value());
  CHECK_FALSE(parse_cgroup_cpu_max("200000").has_value());
  CHECK_FALSE(parse_cgroup_cpu_max("abc 100000").has_value());
  CHECK_FALSE(parse_cgroup_cpu_max("200000 0").has_value());
  CHECK_FALSE(parse_cgroup_cpu_max("-1 100000").has_value());
  CHECK_FALSE(parse_cgroup_cpu_max("200000 100000 7").has_value());
}

TEST_CASE("cgroup v1 quota and period", "[threads]") {
  CHECK_FALSE(parse_cgroup_v1_quota("-1", "100000").has_value());
  CHECK_FALSE(parse_cgroup_v1_quota("-1\n", "100000\n").has_value());
  CHECK(parse_cgroup_v1_quota("200000", "100000") == 2);
  CHECK(parse_cgroup_v1_quota("200000\n", "100000\n") == 2);
  CHECK(parse_cgroup_v1_quota("250000", "100000") == 3);
  CHECK(parse_cgroup_v1_quota("10000", "100000") == 1);
  CHECK_FALSE(parse_cgroup_v1_quota("", "100000").has_value());
  CHECK_FALSE(parse_cgroup_v1_quota("200000", "0").has_value());
  CHECK_FALSE(parse_cgroup_v1_quota("x", "100000").has_value());
}

TEST_CASE("OMP_NUM_THREADS values", "[threads]") {
  std::string why = "stale";
  CHECK(parse_thread_env("4", &why, 64) == 4);
  CHECK(why.empty());
  CHECK(parse_thread_env(" 4\n", &why, 64) == 4);
  CHECK(parse_thread_env("4,2", &why, 64) == 4);  // nested levels: the outer one

  CHECK_FALSE(parse_thread_env(nullptr, &why, 64).has_value());
  CHECK(why.empty());  // unset is not an error
  CHECK_FALSE(parse_thread_env("", &why, 64).has_value());
  CHECK(why == "empty");
  CHECK_FALSE(parse_thread_env("   ", &why, 64).has_value());
  CHECK(why == "empty");

  for (const char* bad : {"0", "-1", "abc", "4x", "1.5", "+", "-"}) {
    INFO(bad);
    why.clear();
    CHECK_FALSE(parse_thread_env(bad, &why, 64).has_value());
    CHECK(why == "not a positive integer");
  }

  // Absurd values are clamped, not rejected, and the reason says so.
  CHECK(parse_thread_env("99999999999", &why, 64) == 64);
  CHECK(why.find("clamped to 64") != std::string::npos);
  CHECK(parse_thread_env("1000000000", &why, 64) == 64);
  CHECK(parse_thread_env("99999999999999999999999999", &why, 64) == 64);  // beyond long long
  CHECK(parse_thread_env("65", &why, 64) == 64);
  CHECK(parse_thread_env("64", &why, 64) == 64);
  CHECK(why.empty());
  CHECK(parse_thread_env("4") == 4);  // default maximum: 4 x hardware threads >= 4
  CHECK(lamia::max_thread_count() >= 4);
}

TEST_CASE("physical cores from sysfs topology", "[threads]") {
  using V = std::vector<std::pair<std::string, std::string>>;
  CHECK(lamia::count_physical_cores(V{{"0\n", "0\n"}, {"0\n", "1\n"}}) == 2);
  CHECK(lamia::count_physical_cores(V{{"0", "0"}, {"0", "0"}, {"0", "1"}, {"0", "1"}}) == 2);  // SMT siblings
  CHECK(lamia::count_physical_cores(V{{"0", "0"}, {"1", "0"}}) == 2);                          // two sockets
  CHECK(lamia::count_physical_cores(V{{"-1", "0"}}) == 1);
  CHECK_FALSE(lamia::count_physical_cores(V{}).has_value());
  CHECK_FALSE(lamia::count_physical_cores(V{{"0", "x"}}).has_value());
}

TEST_CASE("default thread count on this machine", "[threads]") {
  SECTION("without OMP_NUM_THREADS") {
    EnvGuard env("OMP_NUM_THREADS", nullptr);
    const auto d = lamia::thread_defaults();
    CHECK(d.threads >= 1);
    CHECK(d.physical_cores >= 1);
    CHECK(d.threads <= d.physical_cores);
    if (d.cgroup_limit) CHECK(d.threads <= *d.cgroup_limit);
    CHECK_FALSE(d.omp_set);
    CHECK(lamia::default_thread_count() == d.threads);
    const auto line = lamia::thread_summary(d.threads);
    INFO(line);
    CHECK(line.rfind("threads " + std::to_string(d.threads) + " (default", 0) == 0);
    CHECK(line.find("OMP_NUM_THREADS unset") != std::string::npos);
    CHECK(lamia::thread_summary(d.threads + 1).find("set explicitly") != std::string::npos);
  }
  SECTION("OMP_NUM_THREADS wins when valid") {
    EnvGuard env("OMP_NUM_THREADS", "3");
    CHECK(lamia::default_thread_count() == 3);
    CHECK(lamia::thread_defaults().source == "OMP_NUM_THREADS");
  }
  SECTION("an invalid OMP_NUM_THREADS is ignored with its reason") {
    EnvGuard unset("OMP_NUM_THREADS", nullptr);
    const int plain = lamia::default_thread_count();
    EnvGuard env("OMP_NUM_THREADS", "abc");
    CHECK(lamia::default_thread_count() == plain);
    const auto line = lamia::thread_summary(plain);
    INFO(line);
    CHECK(line.find("OMP_NUM_THREADS 'abc' ignored: not a positive integer") != std::string::npos);
  }
  SECTION("an absurd OMP_NUM_THREADS is clamped") {
    EnvGuard env("OMP_NUM_THREADS", "1000000000");
    CHECK(lamia::default_thread_count() == lamia::max_thread_count());
  }
  SECTION("the process override wins, and 0 removes it") {
    EnvGuard env("OMP_NUM_THREADS", "3");
    lamia::set_default_thread_count(5);
    CHECK(lamia::default_thread_count() == 5);
    CHECK(lamia::resolve_thread_count(0) == 5);
    CHECK(lamia::resolve_thread_count(2) == 2);
    lamia::set_default_thread_count(0);
    CHECK(lamia::default_thread_count() == 3);
    CHECK(lamia::resolve_thread_count(1000000000) == lamia::max_thread_count());
  }
}
