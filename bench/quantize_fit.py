#!/usr/bin/env python3
"""Reference for bench_quantize_fit: sklearn PCA + KMeans per palette position on the same data.

    /usr/bin/python3 bench/quantize_fit.py --data palettes.bin --pca-dim 64 --codes 256 --iterations 25 --restarts 1 [--threads N]

--threads N > 0 limits the BLAS and OpenMP thread pools (threadpoolctl) to N, the count
bench_quantize_fit passes (its own, lamia's default unless told otherwise); 0 leaves the libraries'
defaults. The JSON line reports the count in effect ("threads").

Prints one JSON line: fit_seconds, encode_items_per_s, inertia per position, peak_rss_mb.
--data is a lamia palette file (include/lamia/palette/palette_file.hpp), mapped with np.memmap;
a .npy of shape n x L x D works too. Run by bench_quantize_fit; also usable alone.
"""
import argparse
import json
import resource
import struct
import time
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_info, threadpool_limits


def open_palettes(path):
    """n x L x D float32 array mapped from a lamia palette file (or a .npy)."""
    if path.endswith(".npy"):
        return np.load(path, mmap_mode="r")
    with open(path, "rb") as f:
        if f.read(8) != b"LAMIAPAL":
            raise SystemExit(f"{path}: not a lamia palette file")
        version, dtype, n, L, D = struct.unpack("<IIQQQ", f.read(32))
        if version != 1 or dtype != 0:
            raise SystemExit(f"{path}: palette file version {version}, dtype {dtype} not supported")
        for _ in range(n):  # item ids: u32 length, bytes
            (length,) = struct.unpack("<I", f.read(4))
            f.seek(length, 1)
        offset = f.tell()
    return np.memmap(path, dtype="<f4", mode="r", offset=offset, shape=(n, L, D))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="lamia palette file or n x L x D float32 .npy")
    p.add_argument("--pca-dim", type=int, default=64)
    p.add_argument("--codes", type=int, default=256)
    p.add_argument("--iterations", type=int, default=25)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="BLAS/OpenMP threads (0: the libraries' defaults)")
    a = p.parse_args()
    if a.threads > 0:
        threadpool_limits(limits=a.threads)  # for the rest of the process
    threads = sorted({pool["num_threads"] for pool in threadpool_info()})
    x = open_palettes(a.data)
    n, L, D = x.shape
    models = []
    inertia = []
    t0 = time.perf_counter()
    for j in range(L):
        xj = np.ascontiguousarray(x[:, j, :])
        pca = PCA(n_components=a.pca_dim, random_state=a.seed)
        reduced = pca.fit_transform(xj)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at a fixed iteration budget is expected
            km = KMeans(n_clusters=a.codes, n_init=a.restarts, max_iter=a.iterations, random_state=a.seed,
                        algorithm="lloyd").fit(reduced)
        models.append((pca, km))
        inertia.append(float(km.inertia_))
    fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    codes = np.empty((n, L), dtype=np.int64)
    for j, (pca, km) in enumerate(models):
        codes[:, j] = km.predict(pca.transform(np.ascontiguousarray(x[:, j, :])))
    encode_seconds = time.perf_counter() - t0
    print(json.dumps({
        "n": n, "positions": L, "dim": D,
        "fit_seconds": fit_seconds,
        "encode_items_per_s": n / encode_seconds,
        "inertia": inertia,
        "explained_variance_ratio_total": [float(m[0].explained_variance_ratio_.sum()) for m in models],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "threads": threads[0] if len(threads) == 1 else threads,
    }))


if __name__ == "__main__":
    main()
