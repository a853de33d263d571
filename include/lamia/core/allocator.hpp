#pragma once
// How the process's allocator treats the large buffers that a training step frees and allocates
// again. glibc serves blocks above its mmap threshold (128 KiB, rising to at most 32 MiB) with a
// fresh mmap and returns them with munmap on free: every step of a training loop then faults in and
// zeroes its activations, logits and gradients again. The default recommender stage spent 30% of its
// CPU time in the kernel that way (docs/benchmarks.md, "Allocator").

namespace lamia {

/// What keep_freed_memory() did.
struct AllocatorSetting {
  bool applied = false;  ///< false: not glibc, or LAMIA_KEEP_FREED_MEMORY=0 in the environment
  const char* note = "";  ///< why not, or what was set
};

/// Serves every allocation from the heap and keeps freed memory in the process (glibc: M_MMAP_MAX 0,
/// M_TRIM_THRESHOLD at its maximum), so that memory freed by one step is reused by the next. The
/// process's resident size stays at its high-water mark instead of shrinking after a peak. Safe to
/// call at any time and more than once; LAMIA_KEEP_FREED_MEMORY=0 in the environment turns it off.
/// The `lamia` tool calls it at start; Python code calls pylamia.keep_freed_memory().
AllocatorSetting keep_freed_memory();

}  // namespace lamia
