"""Two processes against one: `lamia train-palette` on the same run folder and global batch, as one
process with T threads, one process with 1 thread, and W gloo processes with 1 thread each, launched
by torchrun and with torchrun's variables set by hand (each computing its shard of every global batch;
docs/distributed.md, "The stage commands under torchrun"). Prints the palette stage's time (training.json "seconds": the training and rank 0's
held-out evaluation before and after) and the whole command's wall time, and their ratios.

    nice -n 10 /usr/bin/python3 bench/distributed_train.py --lamia build/lamia --steps 40

The dataset and tokenizer stages run once beforehand (`lamia run --until tokenizer`); every timed run
starts from a copy of that folder.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--redirects", "1", "--tee", "1",
            "--no_python"]


def config(steps, batch):
    """The default pipeline's dataset and palette model; `steps` steps of `batch` (item, task) samples."""
    return {
        "palette": {"trainer": {"batch_size": batch, "max_steps": steps, "epochs": 1, "eval_every": 0,
                                "validation_fraction": 0.02, "log_every": max(1, steps // 4)}},
        "progress": False,
    }


def timed(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return wall


def timed_by_hand(cmd, world):
    """`world` processes of cmd with torchrun's variables set here (no torchrun: no Python start-up and
    no agent polling its workers every 5 s), one thread each."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1",
                                            MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(r),
                                            LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{out[-3000:]}{err[-3000:]}")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lamia", default="build/lamia")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64, help="global batch (samples per step)")
    ap.add_argument("--world", type=int, default=2, help="processes of the data-parallel run")
    ap.add_argument("--threads", type=int, default=2, help="threads of the single-process run")
    args = ap.parse_args()
    lamia = str(Path(args.lamia).resolve())
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"(1, 5, 15 min); {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="lamia-dp-bench-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "bench.json"
        cfg.write_text(json.dumps(config(args.steps, args.batch)))
        base = tmp / "base"
        timed([lamia, "run", "--out", str(base), "--config", str(cfg), "--until", "tokenizer", "--quiet"], args.threads)
        runs = [
            (f"1 process x {args.threads} threads", [lamia], args.threads),
            ("1 process x 1 thread", [lamia], 1),
            (f"{args.world} gloo processes x 1 thread", [*TORCHRUN, "--nproc_per_node", str(args.world), lamia], 1),
            (f"{args.world} x 1 thread, no torchrun", None, 1),
        ]
        rows = []
        for label, prefix, threads in runs:
            run = tmp / f"run{len(rows)}"
            shutil.copytree(base, run)
            if prefix is None:  # the variables set by hand
                wall = timed_by_hand([lamia, "train-palette", str(run), "--quiet"], args.world)
            else:
                wall = timed([*prefix, "train-palette", str(run), "--quiet"], threads)
            training = json.loads((run / "palette_encoder" / "training.json").read_text())
            assert training["steps"] == args.steps, training["steps"]
            rows.append((label, training["seconds"], wall))
        print(f"\n{args.steps} palette steps, global batch {args.batch} samples (default synthetic catalog and model)")
        print(f"{'':32s} {'stage s':>9s} {'wall s':>9s} {'stage s/step':>13s}")
        for label, stage, wall in rows:
            print(f"{label:32s} {stage:9.2f} {wall:9.2f} {stage / args.steps:13.3f}")
        ref_stage, ref_wall = rows[0][1], rows[0][2]
        print()
        for label, stage, wall in rows[1:]:
            print(f"{label} / {rows[0][0]}: stage time x{stage / ref_stage:.2f}, wall x{wall / ref_wall:.2f}")
    print(f"\nload after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
