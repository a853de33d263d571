#!/usr/bin/env python3
"""The three measurements behind the PaletteQuantizer speed-ups in docs/quantize.md, each as a
ratio of two ways of doing the same work in this process:

    /usr/bin/python3 bench/quantize_probes.py

1. column sums of 25k x 1024 float32: a float64 reduction vs float32 matrix-vector products per
   4096 rows (what PcaAccumulator::add_to_mean does);
2. the top 64 eigenpairs of a 1024 x 1024 covariance: all eigenpairs (syevd) vs only the 64
   (LAPACK syevr through scipy, what PcaAccumulator::finish does);
3. writing 400 MB into freshly allocated pages vs into pages already touched (why the quantizer
   and PaletteFileReader reuse their buffers).
"""
import time

import numpy as np
import scipy.linalg as sl
import torch


def best_of(f, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    # Not pylamia: torch's own starting count (1 on Debian's torch); the ratios are within this process.
    print(f"torch threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    x = torch.randn(25000, 1024)
    ones = torch.ones(4096)
    slow = best_of(lambda: x.sum(0, dtype=torch.float64))
    fast = best_of(lambda: sum(torch.mv(x[s:s + 4096].t(), ones[:min(4096, 25000 - s)]).double()
                               for s in range(0, 25000, 4096)))
    print(f"column sums 25000 x 1024: float64 reduction {slow:.4f} s, float32 mv per 4096 rows {fast:.4f} s, "
          f"x{slow / fast:.0f}")

    a = np.random.default_rng(0).standard_normal((4096, 1024))
    c = a.T @ a
    full = best_of(lambda: sl.eigh(c))
    top = best_of(lambda: sl.eigh(c, subset_by_index=[1024 - 64, 1023], driver="evr"))
    print(f"eigenpairs of 1024 x 1024: all {full:.3f} s, top 64 (syevr) {top:.3f} s, x{full / top:.1f}")

    # numpy asks for transparent huge pages, which torch's CPU allocator does not: turn it off to
    # see what a tensor's fresh 4 KiB pages cost.
    np.core.multiarray._set_madvise_hugepage(False)
    n = 100_000_000  # 400 MB of float32
    fresh = best_of(lambda: np.empty(n, np.float32).fill(1.0))
    buf = np.empty(n, np.float32)
    buf.fill(0.0)
    reused = best_of(lambda: buf.fill(1.0))
    print(f"writing 400 MB: fresh pages {fresh:.3f} s, reused pages {reused:.3f} s, x{fresh / reused:.0f}")


if __name__ == "__main__":
    main()
