#include <lamia/core/blas_threads.hpp>
#include <lamia/core/threads.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include <dlfcn.h>
#include <fmt/format.h>

namespace lamia {
namespace {
struct OpenBlasThreadApi {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
};

// Looked up once: torch links the BLAS before main, so what is not loaded by the first call is not used.
const OpenBlasThreadApi& openblas() {
  static const OpenBlasThreadApi api = [] {
    OpenBlasThreadApi a;
    void* lib = ::dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);  // loaded already, or not used
    void* where = lib ? lib : RTLD_DEFAULT;
    a.set = reinterpret_cast<void (*)(int)>(::dlsym(where, "openblas_set_num_threads"));
    a.get = reinterpret_cast<int (*)()>(::dlsym(where, "openblas_get_num_threads"));
    if (!a.set || !a.get) a = {};
    return a;  // (the handle stays open: the library is in use for the process's lifetime)
  }();
  return api;
}

std::atomic<int> g_palette_blas_threads{0};

bool user_set_openblas_threads() {
  const char* value = std::getenv("OPENBLAS_NUM_THREADS");
  const char* defaulted = std::getenv(kOpenBlasDefaultedVar);
  return value && *value && !(defaulted && std::string(defaulted) == "1");
}
}  // namespace

int blas_thread_count() { return openblas().get ? openblas().get() : 0; }

ScopedBlasThreads::ScopedBlasThreads(int n) {
  const auto& api = openblas();
  if (n <= 0 || !api.set) return;
  const int now = api.get();
  if (now == n) return;
  saved_ = now;
  api.set(n);
}

ScopedBlasThreads::~ScopedBlasThreads() {
  if (saved_ > 0) openblas().set(saved_);
}

void set_palette_blas_threads(int n) { g_palette_blas_threads.store(n < -1 ? -1 : n); }

int palette_blas_threads() { return g_palette_blas_threads.load(); }

int resolve_palette_blas_threads(int torch_threads) {
  if (!openblas().set) return 0;
  const int n = palette_blas_threads();
  if (n >= 1) return std::min(n, max_thread_count());
  if (n < 0 || user_set_openblas_threads()) return 0;
  return std::clamp(torch_threads, 1, max_thread_count());
}

std::string blas_thread_summary(int torch_threads) {
  if (!openblas().get) return "BLAS: not OpenBLAS (its threads are left to it)";
  const int now = blas_thread_count();
  const int palette = resolve_palette_blas_threads(torch_threads);
  const auto palette_part = palette > 0 ? fmt::format("{}", palette) : fmt::format("{} (left as is)", now);
  return fmt::format("OpenBLAS {} thread{}{}; palette encoder {}", now, now == 1 ? "" : "s",
                     user_set_openblas_threads() ? " (OPENBLAS_NUM_THREADS)" : "", palette_part);
}

}  // namespace lamia
