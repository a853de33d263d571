#include <lamia/quantize/detail/one_blas_thread.hpp>

#include <dlfcn.h>

namespace lamia::detail {
namespace {
struct OpenBlasThreadApi {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
};

OpenBlasThreadApi find_openblas_thread_api() {
  OpenBlasThreadApi a;
  void* lib = ::dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);  // loaded already, or not used
  void* where = lib ? lib : RTLD_DEFAULT;
  a.set = reinterpret_cast<void (*)(int)>(::dlsym(where, "openblas_set_num_threads"));
  a.get = reinterpret_cast<int (*)()>(::dlsym(where, "openblas_get_num_threads"));
  return a;  // (the handle stays open: the library is in use for the process's lifetime)
}
}  // namespace

OneBlasThread::OneBlasThread() {
  static const OpenBlasThreadApi api = find_openblas_thread_api();
  if (api.set && api.get) {
    set_ = api.set;
    saved_ = api.get();
    if (saved_ != 1) set_(1);
  }
}

OneBlasThread::~OneBlasThread() {
  if (set_ && saved_ != 1) set_(saved_);
}

}  // namespace lamia::detail
