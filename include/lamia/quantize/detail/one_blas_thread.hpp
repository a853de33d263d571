#pragma once
// OpenBLAS on one thread for the lifetime of a scope.
//
// OpenBLAS runs each call on its own threads, which on 2 cores take turns with OpenMP's (spinning
// in sched_yield while the other side works). The blocked kernels call BLAS from OpenMP's workers,
// one block (or one PCA position) each, so OpenBLAS is set to one thread meanwhile and back after;
// another BLAS is left alone. It also makes the results independent of the thread count: OpenBLAS
// on 2 threads rounds some entries of a product differently in the last bit than on one.

namespace lamia::detail {

class OneBlasThread {
 public:
  OneBlasThread();
  ~OneBlasThread();
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int saved_ = 1;
};

}  // namespace lamia::detail
