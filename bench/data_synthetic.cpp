// Synthetic catalog generation: throughput (items/s, users/s) and peak memory for 10k, 100k and
// 1M items. Each size runs in a child process (this program re-executed with --one) so that its
// peak RSS (VmHWM) is its own. Reference in the same run: streaming the same items and users
// through SyntheticGenerator without keeping them; the ratios show what holding the Dataset costs.
//
//   bench_data_synthetic                 # 10k, 100k, 1M items; users = items / 10
//   bench_data_synthetic 5000 50000      # other sizes
//   bench_data_synthetic --one 100000    # one size, in this process
#include "bench_util.hpp"

#include <lamia/core/threads.hpp>
#include <lamia/data/synthetic.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using lamia::bench::cpu_seconds;
using lamia::bench::peak_rss_mib;

struct Timer {
  Clock::time_point wall = Clock::now();
  double cpu = cpu_seconds();
  std::pair<double, double> elapsed() const { return {seconds_since(wall), cpu_seconds() - cpu}; }
};

int run_one(std::int64_t items) {
  lamia::SyntheticOptions o;
  o.num_items = items;
  o.num_users = std::max<std::int64_t>(1, items / 10);

  // Reference: stream every item and user, keeping nothing but counts.
  lamia::SyntheticGenerator gen(o);
  lamia::SyntheticItem item;
  std::size_t text_bytes = 0;
  Timer t;
  for (std::int64_t i = 0; i < o.num_items; ++i) {
    gen.item(i, item);
    for (const auto& v : item.values) text_bytes += v.size();
  }
  auto [stream_items_wall, stream_items_cpu] = t.elapsed();
  lamia::SyntheticUser user;
  std::size_t events = 0;
  t = Timer();
  for (std::int64_t u = 0; u < o.num_users; ++u) {
    gen.user(u, user);
    events += user.events.size();
  }
  auto [stream_users_wall, stream_users_cpu] = t.elapsed();
  const double rss_streamed = peak_rss_mib();

  // The full catalog held in memory: items alone, then items and users (with ground truth).
  auto items_only = o;
  items_only.num_users = 0;
  t = Timer();
  std::size_t held = lamia::generate_synthetic(items_only).dataset.catalog.size();
  auto [held_items_wall, held_items_cpu] = t.elapsed();
  t = Timer();
  auto synth = lamia::generate_synthetic(o);
  auto [full_wall, full_cpu] = t.elapsed();
  const double rss_full = peak_rss_mib();

  fmt::print("{} {} {:.4f} {:.4f} {:.4f} {:.4f} {:.4f} {:.4f} {:.4f} {:.4f} {:.1f} {:.1f} {} {}\n", o.num_items,
             o.num_users, stream_items_wall, stream_items_cpu, stream_users_wall, stream_users_cpu, held_items_wall,
             held_items_cpu, full_wall, full_cpu, rss_streamed, rss_full, text_bytes, events);
  return held == std::size_t(items) && synth.dataset.catalog.size() == std::size_t(items) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--one") return run_one(std::atoll(argv[2]));
  std::vector<std::int64_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoll(argv[i]));
  if (sizes.empty()) sizes = {10000, 100000, 1000000};

  fmt::print("synthetic catalog generation, defaults otherwise, users = items / 10\n"
             "throughput per CPU second (wall seconds in brackets); held = generate_synthetic, the Dataset in "
             "memory;\nstreamed = SyntheticGenerator::item/user, nothing kept (the reference)\n");
  fmt::print("threads 1: single-threaded code (no torch); lamia's default elsewhere: {}\n",
             lamia::thread_summary(lamia::default_thread_count()));
  fmt::print("{:>8} {:>7} | {:>11} {:>11} {:>6} | {:>10} {:>10} {:>6} | {:>14} | {:>9} {:>9}\n", "items", "users",
             "items/s str", "items/s held", "ratio", "users/s str", "users/s held", "ratio", "total held s",
             "RSS str", "RSS held");
  for (auto n : sizes) {
    // A child process per size, so that VmHWM is the peak of that size alone.
    std::string cmd = fmt::format("'{}' --one {}", argv[0], n);
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) {
      fmt::print(stderr, "cannot run {}\n", cmd);
      return 1;
    }
    long long items = 0, users = 0;
    double siw = 0, sic = 0, suw = 0, suc = 0, hiw = 0, hic = 0, fw = 0, fc = 0, rss_stream = 0, rss_full = 0;
    unsigned long long bytes = 0, events = 0;
    int got = std::fscanf(pipe, "%lld %lld %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %llu %llu", &items, &users, &siw,
                          &sic, &suw, &suc, &hiw, &hic, &fw, &fc, &rss_stream, &rss_full, &bytes, &events);
    if (pclose(pipe) != 0 || got != 14) {
      fmt::print(stderr, "the child for {} items failed\n", n);
      return 1;
    }
    // Users held = the full run minus the items-only run.
    const double huc = std::max(1e-9, fc - hic);
    fmt::print("{:>8} {:>7} | {:>11.0f} {:>11.0f} {:>6.2f} | {:>10.0f} {:>10.0f} {:>6.2f} | {:>6.2f} [{:>5.2f}] | {:>6.0f} MiB {:>5.0f} MiB\n",
               items, users, double(items) / sic, double(items) / hic, sic / hic, double(users) / suc,
               double(users) / huc, suc / huc, fc, fw, rss_stream, rss_full);
    fmt::print("{:>8} {:>7}   text {:.1f} MiB, {} interactions; held RSS / text = {:.2f}; streamed: items {:.2f} s "
               "[{:.2f}], users {:.2f} s [{:.2f}]\n",
               "", "", double(bytes) / 1048576.0, events, rss_full / (double(bytes) / 1048576.0), sic, siw, suc, suw);
  }
  return 0;
}
