// lamia: the command-line tool. `lamia --help` lists the subcommands.
#include "command.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/allocator.hpp>
#include <lamia/core/blas_threads.hpp>
#include <lamia/core/threads.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <new>
#include <string>
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

// An exception's message as one line: torch's messages carry a C++ backtrace after "Exception
// raised from", which is for developers; other line breaks become "; ". Bounded, so that a message
// quoting a huge value cannot flood the terminal.
std::string one_line_message(std::string message) {
  if (const auto cut = message.find("Exception raised from "); cut != std::string::npos) message.resize(cut);
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  std::string out;
  for (char c : message) {
    if (c == '\n') out += "; ";
    else if (c != '\r') out += c;
  }
  constexpr std::size_t kMaxChars = 4000;
  if (out.size() > kMaxChars) out = out.substr(0, kMaxChars) + "... (message cut)";
  return out.empty() ? "unknown error" : out;
}
}  // namespace lamia::cli

int main(int argc, char** argv) {
#ifdef __linux__
  // Two thread pools would fight over the cores unless told otherwise, and both read their settings
  // when their library is loaded, before main, so the tool re-executes itself once with them set
  // (a variable the user set is kept):
  // - OMP_WAIT_POLICY=PASSIVE: spinning OpenMP workers take the CPU from the working thread as soon
  //   as the machine has other load (a small model ran 40x slower at 2 threads on 2 busy cores);
  // - OPENBLAS_NUM_THREADS=1: OpenBLAS's own threads on top of torch's oversubscribe the cores for
  //   small GEMMs (the amazon-office recommender trained at 2.5k tokens/s with them, 14.3k without;
  //   docs/results.md); the palette encoder's stages raise it for their large GEMMs (config key
  //   `blas_threads`, include/lamia/core/blas_threads.hpp). LAMIA_OPENBLAS_THREADS_DEFAULTED tells
  //   that default from a value the user set, which is kept everywhere.
  bool reexec = false;
  if (!std::getenv("OMP_WAIT_POLICY")) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    reexec = true;
  }
  if (!std::getenv("OPENBLAS_NUM_THREADS")) {
    ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
    ::setenv(lamia::kOpenBlasDefaultedVar, "1", 1);
    reexec = true;
  }
  if (reexec) {
    // The resolved path, not /proc/self/exe itself, so that the process keeps its name ("lamia").
    char self[4096];
    const auto n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
      self[n] = '\0';
      ::execv(self, argv);  // only returns on failure: then go on as we are
    }
  }
#endif
  // Training steps free and allocate the same large buffers again: keep them in the process rather
  // than mmap and fault them in anew every step (include/lamia/core/allocator.hpp).
  lamia::keep_freed_memory();
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
    // --help and --version print and exit 0 as CLI11 does; a usage error is one line and exit 1,
    // like every other failure.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::cerr << "lamia: error: " << lamia::cli::one_line_message(e.what()) << " (lamia --help lists the options)\n";
    return 1;
  }
  lamia::set_default_thread_count(threads);
  // Every failure is one line and exit code 1: lamia's exceptions, the libraries' (nlohmann,
  // std::filesystem, torch) and anything else; never std::terminate's abort with a backtrace.
  try {
    for (auto& c : runners)
      if (c.app->parsed()) c.run();
  } catch (const std::bad_alloc&) {
    std::cerr << "lamia: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lamia: error: " << lamia::cli::one_line_message(e.what()) << "\n";
    return 1;
  } catch (...) {
    std::cerr << "lamia: error: unknown error (an exception that is not a std::exception)\n";
    return 1;
  }
  return 0;
}
