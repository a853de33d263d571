// lamia: the command-line tool. `lamia --help` lists the subcommands.
#include "command.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/threads.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>

#ifdef __linux__
#include <unistd.h>
#endif

namespace lamia::cli {
std::vector<CommandEntry>& commands() {
  static std::vector<CommandEntry> all;
  return all;
}
}  // namespace lamia::cli

int main(int argc, char** argv) {
#ifdef __linux__
  // OpenMP worker threads that spin while they wait take the CPU from the thread doing the work as
  // soon as the machine has any other load (measured on 2 busy cores: a small model 40x slower at 2
  // threads than at 1). libgomp reads OMP_WAIT_POLICY when it is loaded, before main, so the tool
  // re-executes itself once with PASSIVE unless the user chose a policy.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    // The resolved path, not /proc/self/exe itself, so that the process keeps its name ("lamia").
    char self[4096];
    const auto n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
      self[n] = '\0';
      ::execv(self, argv);  // only returns on failure: then go on as we are
    }
  }
#endif
  CLI::App app{"lamia: semantic IDs from item palettes, and generative recommendation with them"};
  app.require_subcommand(1);
  // Global: `lamia --threads N run` or `lamia run --threads N` (fallthrough hands a subcommand's
  // unknown options to this app). It sets lamia's default thread count for the process, which every
  // torch-using command applies with lamia::set_torch_threads (`run` does so from the config's
  // "threads", where 0 means this default). This file stays torch-free: the CLI also builds without
  // the torch components (LAMIA_ONLY="core;data").
  int threads = 0;
  app.add_option("--threads", threads,
                 "Threads for torch, OpenMP and faiss (default 0: the machine's physical cores within the cgroup "
                 "CPU limit, or OMP_NUM_THREADS); a config's explicit \"threads\" still wins")
      ->check(CLI::Range(0, lamia::max_thread_count()));
  app.fallthrough();
  auto& all = lamia::cli::commands();
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  std::vector<lamia::cli::Command> runners;
  for (const auto& c : all) runners.push_back(c.setup(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  lamia::set_default_thread_count(threads);
  try {
    for (auto& c : runners)
      if (c.app->parsed()) c.run();
  } catch (const std::exception& e) {
    std::cerr << "lamia: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
