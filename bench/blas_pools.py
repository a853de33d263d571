"""Two thread pools on the same cores: a small elementwise op right after a GEMM, against the same op alone.

Debian's torch runs each matrix product on OpenBLAS's own pthread pool and elementwise ops on its OpenMP
pool; after a GEMM, OpenBLAS's workers spin for a while and take turns with OpenMP's (docs/palette.md,
"Session 13"). Printed: microseconds of a [256, 256] add alone and right after a [3227, 256] x [256, 1024]
torch.mm (the palette step's FFN shape), and of the GEMM, at the given torch thread count.

    /usr/bin/python3 bench/blas_pools.py [--threads N] [--reps N]

Import torch only (no pylamia): the environment decides both pools, so pass it on the command line,
e.g. `OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/blas_pools.py --threads 2`.
"""
import argparse
import os
import time

import torch


def mean_us(f, reps):
    f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    x, w = torch.randn(3227, 256), torch.randn(256, 1024)
    after = []
    for _ in range(args.reps + 1):
        x @ w
        t0 = time.perf_counter()
        a + b
        after.append(time.perf_counter() - t0)
    print(f"torch threads {args.threads}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"[256, 256] add alone:         {mean_us(lambda: a + b, args.reps * 4):9.1f} us")
    print(f"[256, 256] add after a GEMM:  {sum(after[1:]) / args.reps * 1e6:9.1f} us")
    print(f"[3227, 256] x [256, 1024] mm: {mean_us(lambda: x @ w, args.reps):9.1f} us")


if __name__ == "__main__":
    main()
