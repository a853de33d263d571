// OpenBLAS's thread count for the palette encoder's large GEMMs (include/lamia/core/blas_threads.hpp):
// the scope sets and restores it, the setting resolves as documented, and training and export run
// with it while other work keeps the process's count.
#include "env_guard.hpp"
#include "palette/palette_fixture.hpp"

#include <lamia/core/blas_threads.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette.hpp>

#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <ostream>
#include <set>
#include <streambuf>
#include <unistd.h>  // getpid

using namespace lamia;
using lamia::testing::EnvGuard;

namespace {

// Restores the process-wide settings a test changes.
struct SettingsGuard {
  int torch_threads = at::get_num_threads();
  int palette = palette_blas_threads();
  ~SettingsGuard() {
    at::set_num_threads(torch_threads);
    set_palette_blas_threads(palette);
  }
};

// A log stream that records OpenBLAS's count each time the training loop writes a line.
struct CountingBuf : std::streambuf {
  std::set<int> seen;
  int overflow(int c) override {
    if (c == '\n') seen.insert(blas_thread_count());
    return c;
  }
};

// Catch2 v2 has no SKIP: without OpenBLAS each case is a passing no-op that says so.
bool openblas_here() {
  if (blas_thread_count() > 0) return true;
  WARN("torch's BLAS is not OpenBLAS here: skipped");
  return false;
}

}  // namespace

TEST_CASE("ScopedBlasThreads sets OpenBLAS's count for its scope and restores it", "[palette][threads]") {
  if (!openblas_here()) return;
  const int before = blas_thread_count();
  {
    const ScopedBlasThreads two(before + 1);
    CHECK(blas_thread_count() == before + 1);
    {
      const ScopedBlasThreads nothing(0);  // n <= 0: no change
      CHECK(blas_thread_count() == before + 1);
    }
    CHECK(blas_thread_count() == before + 1);
  }
  CHECK(blas_thread_count() == before);
}

TEST_CASE("the palette encoder's BLAS setting resolves as documented", "[palette][threads]") {
  if (!openblas_here()) return;
  SettingsGuard restore;
  {  // OPENBLAS_NUM_THREADS set by the user: kept unless the setting names a count
    EnvGuard blas("OPENBLAS_NUM_THREADS", "1");
    EnvGuard marker(kOpenBlasDefaultedVar, nullptr);
    set_palette_blas_threads(0);
    CHECK(resolve_palette_blas_threads(3) == 0);
    set_palette_blas_threads(2);
    CHECK(resolve_palette_blas_threads(3) == 2);
  }
  {  // set by the CLI's or pylamia's default: follows torch's count
    EnvGuard blas("OPENBLAS_NUM_THREADS", "1");
    EnvGuard marker(kOpenBlasDefaultedVar, "1");
    set_palette_blas_threads(0);
    CHECK(resolve_palette_blas_threads(3) == 3);
    CHECK(resolve_palette_blas_threads(0) == 1);
    set_palette_blas_threads(-1);
    CHECK(resolve_palette_blas_threads(3) == 0);
    set_palette_blas_threads(-7);  // anything below -1 reads as -1
    CHECK(palette_blas_threads() == -1);
    set_palette_blas_threads(1000000000);  // an absurd count is clamped, as `threads` is
    CHECK(resolve_palette_blas_threads(3) == max_thread_count());
  }
  {  // unset: follows torch's count
    EnvGuard blas("OPENBLAS_NUM_THREADS", nullptr);
    EnvGuard marker(kOpenBlasDefaultedVar, nullptr);
    set_palette_blas_threads(0);
    CHECK(resolve_palette_blas_threads(2) == 2);
    CHECK_THAT(blas_thread_summary(2), Catch::Matches("OpenBLAS \\d+ threads?; palette encoder 2"));
  }
}

TEST_CASE("training and export run OpenBLAS at the palette setting and restore it after", "[palette][threads]") {
  if (!openblas_here()) return;
  SettingsGuard restore;
  EnvGuard marker(kOpenBlasDefaultedVar, "1");  // ctest's OPENBLAS_NUM_THREADS=1 reads as lamia's default
  const ScopedBlasThreads start(1);
  at::set_num_threads(2);
  auto s = make_palette_setup_from_scratch(testing::tiny_catalog(40), PaletteEncoderOptions(4, 2),
                                           testing::tiny_model(32, 0.0, 0));
  for (const int setting : {0, 3, -1}) {
    set_palette_blas_threads(setting);
    const int expected = setting == 0 ? 2 : setting == 3 ? 3 : 1;
    CAPTURE(setting);
    CountingBuf buf;
    std::ostream log(&buf);
    PaletteTrainer trainer(s.encoder, s.catalog,
                           PaletteTrainerOptions().batch_size(8).validation_fraction(0).loop(
                               PaletteTrainerOptions::default_loop().epochs(1).max_steps(4).log_every(1).log(&log)));
    trainer.train();
    REQUIRE_FALSE(buf.seen.empty());
    CHECK(buf.seen == std::set<int>{expected});  // every line: the setting
    CHECK(blas_thread_count() == 1);                                     // and back after
  }
  const auto dir = std::filesystem::temp_directory_path() / ("lamia_blas_threads_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  set_palette_blas_threads(0);
  CHECK(export_palettes(*s.encoder, s.catalog, dir / "palettes.bin", 16) == 40);
  CHECK(blas_thread_count() == 1);
  std::filesystem::remove_all(dir);
}
