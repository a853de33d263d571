"""Wall time and peak memory of each stage of a pipeline run, one stage command at a time.

    /usr/bin/python3 bench/pipeline_stages.py [--config FILE] --out DIR [--lamia build/lamia] [--json FILE]

Runs `lamia train-palette`, `export-palettes`, `quantize`, `train-rec` and `evaluate` on DIR (a fresh
folder: the script refuses one that exists), each as its own process, and reports for each its wall time
and its peak resident memory (the child's ru_maxrss from wait4, so each stage is measured alone and the
dataset loading a stage does is counted in it). With --reference, the whole `lamia run` of the same
config into a second folder is timed the same way, as the reference the stage split is checked against
(the sum of the stages pays the start-up and dataset loading five times).
The thread count lamia uses is printed from the run's log."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ["train-palette", "export-palettes", "quantize", "train-rec", "evaluate"]


def timed(argv):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, out, err  # ru_maxrss is in KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lamia", default=str(Path(__file__).resolve().parents[1] / "build" / "lamia"))
    ap.add_argument("--json")
    ap.add_argument("--reference", action="store_true", help="also time one uninterrupted `lamia run` (doubles the time)")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        sys.exit(f"{out} exists: the benchmark times every stage from scratch; give a new folder")
    config = ["--config", args.config] if args.config else []
    rows = []
    threads = "?"
    for i, command in enumerate(COMMANDS):
        # The first command fixes the configuration; the later ones read DIR/config.json.
        wall, rss, stdout, stderr = timed([args.lamia, command, str(out), *(config if i == 0 else [])])
        for line in stderr.splitlines():
            if "thread" in line and threads == "?":
                threads = line.split("] ", 1)[-1]
        rows.append({"stage": command, "seconds": round(wall, 1), "peak_rss_mib": round(rss)})
        print(f"{command:<16} {wall:8.1f} s  {rss:8.0f} MiB", flush=True)
    total = sum(r["seconds"] for r in rows)
    result = {"config": args.config or "(built-in default)", "threads": threads, "stages": rows,
              "sum_seconds": round(total, 1), "peak_rss_mib": max(r["peak_rss_mib"] for r in rows)}
    if args.reference:
        ref = Path(str(out) + "-reference")
        if ref.exists():
            shutil.rmtree(ref)
        wall, rss, _, _ = timed([args.lamia, "run", "--out", str(ref), *config])
        result["reference_run"] = {"seconds": round(wall, 1), "peak_rss_mib": round(rss)}
        print(f"{'lamia run':<16} {wall:8.1f} s  {rss:8.0f} MiB  (reference: one uninterrupted run)")
        same = (out / "metrics.json").read_text() and json.loads((out / "metrics.json").read_text())["methods"].keys() == \
            json.loads((ref / "metrics.json").read_text())["methods"].keys()
        result["reference_run"]["same_methods"] = bool(same)
    print(f"threads: {threads}")
    print(f"sum of the stages: {total:.1f} s; peak {result['peak_rss_mib']} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
