#include <lamia/core/blas_threads.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/nn/threads.hpp>

#include <ATen/Parallel.h>

namespace lamia {

int set_torch_threads(int n) {
  const int threads = resolve_thread_count(n);
  at::set_num_threads(threads);
  return threads;
}

int palette_gemm_threads() { return resolve_palette_blas_threads(at::get_num_threads()); }

}  // namespace lamia
