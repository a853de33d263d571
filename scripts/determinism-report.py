#!/usr/bin/python3
"""What changes between `lamia run`s that differ only in thread counts (docs/pipeline.md, "Crash
safety and determinism"). Runs the same configuration (by default the tiny one of the Python tests)
under several settings of the config's `threads` and of OPENBLAS_NUM_THREADS, twice for the first,
and prints, artifact by artifact against the first run, whether the bytes are identical and else
how far apart the values are.

  PYTHONPATH=build/pypkg /usr/bin/python3 scripts/determinism-report.py --lamia build/lamia [--config FILE]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import pylamia

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
from pipeline_testing import tiny_config, without_times  # noqa: E402

# (label, config threads, OPENBLAS_NUM_THREADS or None for unset)
SETTINGS = [("threads=2, OpenBLAS unset", 2, None), ("same again", 2, None), ("threads=1, OpenBLAS unset", 1, None),
            ("threads=2, OPENBLAS_NUM_THREADS=1", 2, "1"), ("threads=1, OPENBLAS_NUM_THREADS=1", 1, "1")]


def safetensors(path):
    """{name: float64 array} of a safetensors file (8-byte header length, JSON header, data)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtypes[t["dtype"]]).astype(np.float64)
    return out


def max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.size else 0.0


def json_diff(a, b, prefix=""):
    """The largest relative difference of the numbers of two JSON values, and the paths that differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        worst, paths = 0.0, []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                paths.append(prefix + k)
                continue
            w, p = json_diff(a[k], b[k], prefix + k + ".")
            worst, paths = max(worst, w), paths + p
        return worst, paths
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        worst, paths = 0.0, []
        for i, (x, y) in enumerate(zip(a, b)):
            w, p = json_diff(x, y, f"{prefix}{i}.")
            worst, paths = max(worst, w), paths + p
        return worst, paths
    if a == b:
        return 0.0, []
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) / max(abs(b), 1e-30), [prefix.rstrip(".")]
    return float("inf"), [prefix.rstrip(".")]


def compare(ref, other):
    """{artifact: text} for the artifacts of two run folders."""
    rows = {}

    def same(rel):
        return (ref / rel).read_bytes() == (other / rel).read_bytes()

    def weights(rel):
        if same(rel):
            return "identical"
        a, b = safetensors(other / rel), safetensors(ref / rel)
        whole = max_rel(np.concatenate([a[k] for k in b]), np.concatenate([b[k] for k in b]))
        worst = max(b, key=lambda k: max_rel(a[k], b[k]))
        return f"max rel diff {whole:.1e} of all weights; {max_rel(a[worst], b[worst]):.1e} within {worst}"

    rows["palette_encoder/model/model.safetensors"] = weights("palette_encoder/model/model.safetensors")
    for rel in ["palettes.bin", "embeddings.bin"]:
        rows[rel] = "identical" if same(rel) else \
            f"max rel diff {max_rel(pylamia.load_palettes(str(other / rel))[1], pylamia.load_palettes(str(ref / rel))[1]):.1e}"
    for path in sorted((ref / "semantic_ids").glob("*.bin")):
        rel = path.relative_to(ref).as_posix()
        if same(rel):
            rows[rel] = "identical"
        else:
            a = pylamia.SemanticIdTable.load(str(other / rel)).codes()
            b = pylamia.SemanticIdTable.load(str(ref / rel)).codes()
            rows[rel] = f"{(a != b).any(dim=1).float().mean().item():.1%} of items with another ID"
    for path in sorted((ref / "recommenders").glob("*/model.safetensors")) + \
            sorted((ref / "baselines").glob("*/*.safetensors")):
        rel = path.relative_to(ref).as_posix()
        rows[rel] = weights(rel)
    for rel in ["diagnostics.json", "metrics.json"]:
        a = without_times(json.loads((other / rel).read_text()))
        b = without_times(json.loads((ref / rel).read_text()))
        worst, paths = json_diff(a, b)
        rows[rel] = "identical (times removed)" if not paths else \
            f"{len(paths)} numbers differ, max rel diff {worst:.1e} (e.g. {paths[0]})"
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lamia", default=str(ROOT / "build" / "lamia"))
    parser.add_argument("--config", help="a pipeline config (default: the Python tests' tiny one)")
    parser.add_argument("--out", help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text()) if args.config else tiny_config()
    config["progress"] = False
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        runs = []
        for i, (label, threads, blas) in enumerate(SETTINGS):
            config["threads"] = threads
            config_file = out / f"config{i}.json"
            out.mkdir(parents=True, exist_ok=True)
            config_file.write_text(json.dumps(config))
            env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            if blas is not None:
                env["OPENBLAS_NUM_THREADS"] = blas
            run_dir = out / f"run{i}"
            subprocess.run([args.lamia, "run", "--config", str(config_file), "--out", str(run_dir)], check=True,
                           env=env, stdout=subprocess.DEVNULL)
            runs.append(run_dir)
        print(f"torch {torch.__version__}; against '{SETTINGS[0][0]}':")
        for (label, _, _), run_dir in zip(SETTINGS[1:], runs[1:]):
            print(f"\n{label}:")
            for artifact, text in compare(runs[0], run_dir).items():
                print(f"  {artifact:48s} {text}")


if __name__ == "__main__":
    main()
