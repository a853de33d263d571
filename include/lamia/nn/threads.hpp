#pragma once
// Sets torch's intra-op thread count to lamia's default (include/lamia/core/threads.hpp): the
// machine's physical cores within the cgroup CPU limit, or OMP_NUM_THREADS. Debian's torch starts
// with one thread; lamia's programs (CLI, benches, pylamia at import) call this at startup.

namespace lamia {

/// Calls at::set_num_threads(resolve_thread_count(n)) and returns the count set: n <= 0 means
/// default_thread_count(); n > 0 is used as given (clamped to max_thread_count()). With torch's
/// OpenMP backend this also sets OpenMP's count (lamia's K-Means and faiss follow it).
int set_torch_threads(int n = 0);

/// The OpenBLAS thread count for the palette encoder's GEMM-heavy work at torch's current intra-op
/// count: resolve_palette_blas_threads(at::get_num_threads()) (include/lamia/core/blas_threads.hpp);
/// 0 leaves OpenBLAS as it is. Used as `ScopedBlasThreads gemm(palette_gemm_threads());`.
int palette_gemm_threads();

}  // namespace lamia
