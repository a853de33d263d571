#pragma once
// OpenBLAS's own thread count, for a scope, and how many threads the palette encoder's GEMMs get.
//
// Debian's torch calls the system BLAS (OpenBLAS, pthread build), which runs every matrix product on
// a thread pool of its own, next to torch's OpenMP pool. Which of the two should parallelize depends
// on the work, measured on 2 cores (docs/palette.md, "Session 13"; bench/blas_pools.py):
// - the palette encoder (the default's d = 128, the bench's 256): the step is mostly large GEMMs,
//   which torch 1.13 hands to BLAS whole, so with OpenBLAS on one thread they run on one core whatever
//   `threads` says; on as many OpenBLAS threads as `threads` the step ran 1.47x faster on a quiet
//   machine (and the results change in the last bits: OpenBLAS on 2 threads rounds some products
//   differently than on one; each setting is deterministic);
// - the recommender's small GEMMs (hidden 64) gained nothing from OpenBLAS's threads, and lost 5.7x
//   on a busy machine, where spinning OpenBLAS workers take turns with torch's;
// - the quantizer's blocked kernels call BLAS from OpenMP's workers, one block each: one thread, which
//   also keeps their results independent of the thread count.
// So lamia starts OpenBLAS on one thread (the CLI and pylamia set OPENBLAS_NUM_THREADS=1 unless you
// did) and raises it for the palette encoder's training, evaluation and export only.
// Another BLAS (MKL, reference BLAS, Accelerate) is left alone: the scopes do nothing.

#include <string>

namespace lamia {

/// OpenBLAS's thread count now; 0 when the process's BLAS is not OpenBLAS (or it was not found).
int blas_thread_count();

/// Sets OpenBLAS's thread count to n (n >= 1) for the scope's lifetime and restores it after; n <= 0,
/// or a BLAS other than OpenBLAS: does nothing. Not for concurrent use from several threads (OpenBLAS's
/// count is process-wide).
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int n);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int saved_ = 0;  ///< 0: nothing to restore
};

/// OpenBLAS threads for the palette encoder's training, evaluation and export (config key
/// `blas_threads`, pylamia.set_palette_blas_threads): n >= 1 uses n; 0 (the default) follows torch's
/// intra-op count (lamia's `threads`), unless OPENBLAS_NUM_THREADS was set by the user (and not by the
/// CLI's or pylamia's default, see kOpenBlasDefaultedVar): then that setting is kept. -1: leave
/// OpenBLAS as it is (the behaviour before this setting existed).
void set_palette_blas_threads(int n);
int palette_blas_threads();

/// What the palette encoder's scopes set, given torch's intra-op count: n >= 1 for a count, 0 for
/// "leave OpenBLAS alone" (palette_blas_threads() = -1, a user's OPENBLAS_NUM_THREADS, no OpenBLAS).
int resolve_palette_blas_threads(int torch_threads);

/// Set (to "1") by the CLI and pylamia when they set OPENBLAS_NUM_THREADS=1 themselves, so that the
/// default above can tell their default from a user's own setting.
inline constexpr const char* kOpenBlasDefaultedVar = "LAMIA_OPENBLAS_THREADS_DEFAULTED";

/// One line for logs, e.g. "OpenBLAS 1 thread; palette encoder 2", or "BLAS: not OpenBLAS (threads
/// left to it)".
std::string blas_thread_summary(int torch_threads);

}  // namespace lamia
