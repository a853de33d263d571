// Version and build facts, and the thread default.
#include "registry.hpp"

#include <lamia/core/allocator.hpp>
#include <lamia/core/blas_threads.hpp>
#include <lamia/core/threads.hpp>

#include <ATen/Parallel.h>
#include <torch/version.h>

namespace py = pybind11;

LAMIA_REGISTER_BINDINGS(kOrderCore, core) {
  m.attr("__version__") = "0.1.0";
  m.attr("torch_version") = TORCH_VERSION;

  m.def("default_thread_count", &lamia::default_thread_count,
        "lamia's default thread count: OMP_NUM_THREADS when it is a positive integer (clamped to 4 x the "
        "hardware threads), else the physical cores this process may run on, within the cgroup CPU limit.");
  // What lamia::set_torch_threads (nn) does, here so that pylamia has it in every component build.
  m.def(
      "set_threads",
      [](int n) {
        const int threads = lamia::resolve_thread_count(n);
        at::set_num_threads(threads);
        return threads;
      },
      py::arg("n") = 0,
      "Sets torch's intra-op threads (and OpenMP's) to n, or to default_thread_count() when n <= 0; returns the "
      "count set. pylamia calls set_threads() at import (see pylamia.__init__).");
  m.def(
      "thread_summary",
      [](const py::object& threads) {
        return lamia::thread_summary(threads.is_none() ? at::get_num_threads() : threads.cast<int>());
      },
      py::arg("threads") = py::none(),
      "One line for logs: the thread count (default: torch's current one) and where the default came from.");
  m.def("blas_thread_count", &lamia::blas_thread_count,
        "OpenBLAS's thread count now (OPENBLAS_NUM_THREADS; pylamia sets 1 at import unless torch came first or you "
        "set it); 0 when torch's BLAS is not OpenBLAS.");
  m.def("set_palette_blas_threads", &lamia::set_palette_blas_threads, py::arg("n"),
        "OpenBLAS threads while the palette encoder trains, evaluates and exports (PaletteTrainer.train, "
        "evaluate, export_palettes, encode_items): 0 (the default) = torch's thread count, unless you set "
        "OPENBLAS_NUM_THREADS; n >= 1 = n; -1 = leave OpenBLAS alone. Another count rounds some products differently "
        "(a fixed setting is deterministic).");
  m.def("palette_blas_threads", &lamia::palette_blas_threads, "The setting of set_palette_blas_threads.");
  m.def(
      "blas_thread_summary",
      [](const py::object& threads) {
        return lamia::blas_thread_summary(threads.is_none() ? at::get_num_threads() : threads.cast<int>());
      },
      py::arg("threads") = py::none(),
      "One line: OpenBLAS's thread count now and what the palette encoder's work sets it to.");
  m.def(
      "keep_freed_memory",
      [] {
        const auto s = lamia::keep_freed_memory();
        return py::make_tuple(s.applied, s.note);
      },
      "Keeps the memory that training steps free in the process instead of returning it to the system and "
      "faulting it in again next step (glibc: no mmap'd blocks, no trimming); the lamia tool does this at "
      "start. The resident size then stays at its high-water mark. Returns (applied, note); "
      "LAMIA_KEEP_FREED_MEMORY=0 turns it off.");
  // torch's own starting value (OMP_NUM_THREADS, else its built-in default: 1 on Debian's torch 1.13,
  // physical cores on pip's): pylamia's import leaves a count that differs from it alone.
  m.def("_torch_default_num_threads", [] { return at::intraop_default_num_threads(); });
}
