"""q/k/v as one GEMM (the three weights concatenated on every call) against three GEMMs and a cat of k
and v: the two paths of AttentionImpl::project_qkv (src/nn/decoder.cpp), in plain PyTorch, so that its
row threshold can be chosen per hidden size, with and without gradients.

    OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1|2 /usr/bin/python3 bench/qkv_fusion.py [--grad] [--threads N]

Prints, per hidden size D and row count, the time of each path (the mean of 10 interleaved rounds,
the first path alternating) and the fused path's speed-up (> 1: fusing pays).
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F


def separate(x, W, b):
    q = F.linear(x, W[0], b[0])
    return q, torch.cat([F.linear(x, W[1], b[1]), F.linear(x, W[2], b[2])], -1)


def fused(x, W, b):
    D = x.shape[-1]
    qkv = F.linear(x, torch.cat(W, 0), torch.cat(b, 0))
    return qkv.narrow(-1, 0, D), qkv.narrow(-1, D, 2 * D)


def run(path, x, W, b, grad):
    if grad:
        q, kv = path(x, W, b)
        (q.sum() + kv.sum()).backward()
    else:
        with torch.no_grad():
            path(x, W, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grad", action="store_true", help="forward and backward (default: forward without gradients)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 128, 256, 1024])
    ap.add_argument("--rows", type=int, nargs="+", default=[16, 64, 256, 1024, 4096])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, {'forward+backward' if args.grad else 'forward, no grad'}")
    for D in args.dims:
        W = [torch.randn(D, D, requires_grad=True) for _ in range(3)]
        b = [torch.randn(D, requires_grad=True) for _ in range(3)]
        for rows in args.rows:
            x = torch.randn(rows, D, requires_grad=args.grad)
            n = max(3, int(2e8 / (6 * rows * D * D)))  # about 0.2 GFLOP of projections per timing
            total = {separate: 0.0, fused: 0.0}
            for path in total:
                run(path, x, W, b, args.grad)
            for r in range(10):
                for path in ((separate, fused) if r % 2 == 0 else (fused, separate)):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        run(path, x, W, b, args.grad)
                    total[path] += (time.perf_counter() - t0) / n / 10
            print(f"D={D:5d} rows={rows:5d}  separate {total[separate] * 1e6:9.1f} us  fused {total[fused] * 1e6:9.1f} us"
                  f"  fused speed-up x{total[separate] / total[fused]:.2f}", flush=True)


if __name__ == "__main__":
    main()
