#include <lamia/core/allocator.hpp>

#include <cstdlib>
#include <cstring>
#include <limits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lamia {

AllocatorSetting keep_freed_memory() {
  if (const char* v = std::getenv("LAMIA_KEEP_FREED_MEMORY"); v != nullptr && std::strcmp(v, "0") == 0)
    return {false, "off (LAMIA_KEEP_FREED_MEMORY=0)"};
#if defined(__GLIBC__)
  // No mmap'd blocks: large blocks come from the heap and go back to it. A thread arena that cannot
  // grow still falls back to mmap, so no allocation fails because of this.
  const bool mmap_off = ::mallopt(M_MMAP_MAX, 0) == 1;
  // The top of the heap is never given back to the system (trimming only happens above this size).
  const bool trim_off = ::mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
  if (mmap_off && trim_off) return {true, "glibc: M_MMAP_MAX 0, M_TRIM_THRESHOLD max"};
  return {false, "glibc refused mallopt"};
#else
  return {false, "not glibc: the allocator is left as it is"};
#endif
}

}  // namespace lamia
