"""The recommend stage with and without lamia::keep_freed_memory(), in one script.

    /usr/bin/python3 bench/allocator.py --run DIR [--lamia build/lamia] [--epochs 1] [--repeat 1]

DIR is a run folder whose stages up to quantize are complete (e.g. `lamia run --until quantize --out DIR`).
For each setting (LAMIA_KEEP_FREED_MEMORY=0: glibc's default, large blocks mmap'd and returned on free;
and the tool's default, freed memory kept in the process) it copies DIR, sets the recommenders to
`--epochs` epochs (the SASRec baseline to 2), runs `lamia train-rec` on the copy as a child process and
reports its wall time, user and system CPU seconds, minor page faults and peak RSS (from wait4),
alternating the two settings `--repeat` times. Both settings must train the same models: their best
validation losses are compared."""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path


def train_rec(lamia, folder, keep):
    env = dict(os.environ, LAMIA_KEEP_FREED_MEMORY="1" if keep else "0")
    log = folder / "bench-stderr.txt"
    with open(log, "w") as err, open(os.devnull, "w") as out:
        start = time.perf_counter()
        pid = os.posix_spawn(lamia, [lamia, "train-rec", str(folder)], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"lamia train-rec {folder} failed:\n{text[-3000:]}")
    return {"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "minflt": usage.ru_minflt,
            "rss_mib": usage.ru_maxrss / 1024.0, "losses": re.findall(r"best validation loss ([0-9.]+)", text)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--lamia", default=str(Path(__file__).resolve().parents[1] / "build" / "lamia"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    src = Path(args.run)
    if not (src / "manifest.json").exists():
        sys.exit(f"{src}: not a run folder (no manifest.json)")
    rows = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for keep in (False, True):
                folder = Path(tmp) / f"run-{int(keep)}-{r}"
                shutil.copytree(src, folder)
                shutil.rmtree(folder / "recommenders", ignore_errors=True)
                shutil.rmtree(folder / "baselines", ignore_errors=True)
                shutil.rmtree(folder / "checkpoints" / "recommend", ignore_errors=True)
                config = json.loads((folder / "config.json").read_text())
                config["recommend"]["epochs"] = args.epochs
                config["recommend"]["sasrec_epochs"] = 2
                (folder / "config.json").write_text(json.dumps(config, indent=1))
                row = train_rec(args.lamia, folder, keep)
                rows[keep].append(row)
                print(f"keep_freed_memory {'on ' if keep else 'off'}: wall {row['wall_s']:6.1f} s  user "
                      f"{row['user_s']:6.1f} s  sys {row['sys_s']:5.1f} s  minor faults {row['minflt']:>9}  "
                      f"peak RSS {row['rss_mib']:5.0f} MiB  best validation losses {' '.join(row['losses'])}",
                      flush=True)
    total = {keep: {k: sum(r[k] for r in rows[keep]) for k in ("wall_s", "user_s", "sys_s", "minflt")}
             for keep in rows}
    same = all(a["losses"] == b["losses"] for a, b in zip(rows[False], rows[True]))
    off, on = total[False], total[True]
    print(f"off / on: wall {off['wall_s'] / on['wall_s']:.2f}x, user CPU {off['user_s'] / on['user_s']:.2f}x, "
          f"system CPU {off['sys_s'] / max(on['sys_s'], 1e-9):.2f}x, minor faults "
          f"{off['minflt'] / max(on['minflt'], 1):.1f}x (load average {os.getloadavg()[0]:.1f} at the end); "
          f"same models: {same}")


if __name__ == "__main__":
    main()
