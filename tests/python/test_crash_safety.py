"""Crash safety and determinism of `lamia run` (docs/pipeline.md, "Crash safety and determinism").

A training stage killed with SIGKILL several times, each at a point drawn from a seeded generator
within the stage's measured duration, resumes to the same weights, checkpoint contents, palettes
and metrics as an uninterrupted run at one thread; and two uninterrupted runs with the same seed
and the same thread count write byte-identical palettes, semantic IDs, models and metrics.
"""
import json
import os
import queue
import random
import signal
import subprocess
import threading
import time

import pytest
import torch

from pipeline_testing import lamia_cli, tiny_config, without_times

KILLS = 3
# The kills' targets: points of the uninterrupted stage's timeline (shares of its duration after it
# started), drawn from a seeded generator and sorted. A rerun resumes from the last checkpoint, so
# kill k waits, in the rerun, for the last progress line the uninterrupted run printed before
# target k (or a later one), then for the time the uninterrupted run took from that line to the
# target: each kill lands near its point of the stage, the last ones in its last models.
KILL_WINDOW = (0.05, 0.9)
ENV = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def manifest_version(run_dir):
    """(inode, text) of RUN_DIR/manifest.json: the runner writes it anew (a temporary file renamed
    over it) when a stage starts and when it ends. A rerun writes the same text again, and two
    writes in a row can reuse the inode, so either one changing marks a new version."""
    try:
        path = run_dir / "manifest.json"
        return path.stat().st_ino, path.read_text()
    except FileNotFoundError:
        return None


def line_key(line):
    """A log line without its numbers that vary between runs (rates, times, the loss after ' | ')."""
    return line.split(" | ")[0].split(" (")[0].strip()


class Run:
    """`lamia ARGS --out RUN_DIR`, its stderr lines read and timed by a thread."""

    def __init__(self, exe, args, run_dir):
        self.run_dir = run_dir
        self.since = manifest_version(run_dir)
        self.proc = subprocess.Popen([str(exe), *args, "--out", str(run_dir)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=ENV)
        self.log, self.lines = [], queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.log.append((time.monotonic(), line.rstrip("\n")))
            self.lines.put(line)
        self.lines.put(None)

    def text(self):
        return "\n".join(line for _, line in self.log)

    def fail(self, what):
        self.proc.kill()
        self.finish()
        pytest.fail(f"{what} (exit {self.proc.returncode}):\n{self.text()[-3000:]}")

    def finish(self):
        code = self.proc.wait()
        self.reader.join()
        self.proc.stderr.close()
        return code

    def wait_for_stage(self, stage, completed):
        """Polls the manifest until a version written by this run records `stage` with this
        `completed`; returns the time."""
        deadline = time.monotonic() + 300
        while True:
            now = manifest_version(self.run_dir)
            if now is not None and now != self.since:
                self.since = now
                record = json.loads(now[1])["stages"].get(stage)
                if record is not None and record["completed"] == completed:
                    return time.monotonic()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.fail(f"the run ended before stage {stage} {'ended' if completed else 'started'}")
            time.sleep(0.002)

    def wait_for_line(self, order, index):
        """Waits until the run prints a line whose key comes at or after order[index]."""
        position = {key: i for i, key in reversed(list(enumerate(order)))}
        while True:
            line = self.lines.get(timeout=300)
            if line is None:
                self.fail(f"the run ended before printing '{order[index]}'")
            if position.get(line_key(line), -1) >= index:
                return


def stage_completed(run_dir, stage):
    return json.loads((run_dir / "manifest.json").read_text())["stages"][stage]["completed"]


def kill_and_resume(exe, args, stage, reference, killed, seed):
    """Runs `lamia ARGS --out reference` uninterrupted, recording when `stage` starts and ends (in
    the manifest) and when it prints each line; then `lamia ARGS --out killed` KILLS times, each
    killed with SIGKILL at its target point of the stage (KILL_WINDOW), checking that it died
    mid-stage; then once more to the end. Returns the logs of the runs on killed/ after the first."""
    run = Run(exe, args, reference)
    start = run.wait_for_stage(stage, False)
    end = run.wait_for_stage(stage, True)
    assert run.finish() == 0, run.text()
    timeline = [(t, line_key(line)) for t, line in run.log if start < t < end]
    order = [key for _, key in timeline]

    rng = random.Random(seed)
    targets = sorted(start + rng.uniform(*KILL_WINDOW) * (end - start) for _ in range(KILLS))
    logs = []
    for k, target in enumerate(targets):
        run = Run(exe, args, killed)
        run.wait_for_stage(stage, False)
        last = max((i for i, (t, _) in enumerate(timeline) if t <= target), default=None)
        if last is None:
            delay = target - start
        else:
            run.wait_for_line(order, last)
            delay = target - timeline[last][0]
        try:
            code = run.proc.wait(timeout=delay)
            run.fail(f"kill {k}: the run ended (exit {code}) before its kill point")
        except subprocess.TimeoutExpired:
            run.proc.send_signal(signal.SIGKILL)
        assert run.finish() == -signal.SIGKILL
        print(f"kill {k} at {target - start:.2f} s of {end - start:.2f} s, after '{run.log[-1][1]}'")
        assert not stage_completed(killed, stage), f"kill {k} at {target - start:.2f} s of {end - start:.2f} s"
        if k > 0:
            logs.append(run.text())
    logs.append(subprocess.run([str(exe), *args, "--out", str(killed)], check=True, capture_output=True, text=True,
                               env=ENV).stderr)
    assert stage_completed(killed, stage)
    return logs


def files_under(root):
    """{relative path: bytes} of the files under root, but training.json (its history and "resumed"
    are the last run's: assert_same_training compares the rest) and the training checkpoints
    (assert_same_checkpoints compares them)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "training.json" and p.suffix != ".ckpt"}


def assert_same_files(reference, killed, *folders):
    """Every file under each folder (its name and bytes) is the same in both run folders."""
    for folder in folders:
        want, got = files_under(reference / folder), files_under(killed / folder)
        assert sorted(got) == sorted(want), folder
        for name in want:
            assert got[name] == want[name], f"{folder}/{name}"


ADAM_OPTIONS = ("lr", "betas", "eps", "weight_decay", "amsgrad")
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def checkpoint_contents(path):
    """Everything a training-loop checkpoint (src/nn/training_loop.cpp) holds, with the optimizer's
    state in parameter order. The bytes of two equal checkpoints differ: LibTorch keys Adam's state
    by the address of each parameter's TensorImpl (a new one in every process), and the archive
    stores the states in the order of a hash map over those keys."""
    m = torch.jit.load(str(path))
    out = {n: t for n, t in list(m.named_parameters()) + list(m.named_buffers()) if not n.startswith("optimizer.")}
    groups, state = m.optimizer.param_groups, m.optimizer.state
    for g in range(int(getattr(groups, "param_groups/size"))):
        group = getattr(groups, f"param_groups/{g}")
        for name in ADAM_OPTIONS:
            out[f"optimizer.{g}.{name}"] = getattr(group.options, name)
        for i in range(int(getattr(group, "params/size"))):
            key = getattr(group, f"params/{i}")
            if hasattr(state, key):
                for name in ADAM_STATE:
                    if hasattr(getattr(state, key), name):
                        out[f"optimizer.{g}.{i}.{name}"] = getattr(getattr(state, key), name)
    return {k: (v.dtype, tuple(v.shape), v.detach().numpy().tobytes()) if isinstance(v, torch.Tensor) else v
            for k, v in out.items()}


def assert_same_checkpoints(reference, killed, folder):
    names = sorted(p.relative_to(reference).as_posix() for p in (reference / folder).rglob("*.ckpt"))
    assert names and names == sorted(p.relative_to(killed).as_posix() for p in (killed / folder).rglob("*.ckpt"))
    for name in names:
        want, got = checkpoint_contents(reference / name), checkpoint_contents(killed / name)
        assert sorted(got) == sorted(want), name
        assert any(k.startswith("optimizer.0.0.") for k in want), f"{name}: no optimizer state found"
        for key in want:
            assert got[key] == want[key], f"{name}: {key}"


def assert_same_training(reference, killed, path, keys):
    want, got = json.loads((reference / path).read_text()), json.loads((killed / path).read_text())
    for key in keys:
        assert without_times(got.get(key)) == without_times(want.get(key)), f"{path}: {key}"


def config_args(tmp_path, config):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    return ["run", "--config", str(config_file)]


def test_recommend_stage_killed_at_random_points_resumes_bit_for_bit(tmp_path):
    exe = lamia_cli()
    config = tiny_config()
    config["threads"] = 1  # bit-exact comparisons need the same reduction order
    config["progress"] = True  # the reruns' logs say where they resumed
    rc = config["recommend"]
    # Two recommenders and SASRec, one after the other, with 4 steps per epoch: a kill can land in
    # any of them, after models that are finished, and between the epoch-end checkpoints.
    rc.update(tokenizers=["lamia", "random"], baselines=["popularity", "sasrec-ce"], epochs=5, batch_size=8,
              patience=0, sasrec_epochs=5, sasrec_batch_size=8)
    rc["sasrec"].update(hidden_size=16, num_layers=1)
    reference, killed = tmp_path / "reference", tmp_path / "killed"

    logs = kill_and_resume(exe, config_args(tmp_path, config), "recommend", reference, killed, seed=54)
    assert any("resumed from" in log for log in logs), "no kill came after a checkpoint"

    assert_same_files(reference, killed, "recommenders", "baselines")
    assert_same_checkpoints(reference, killed, "checkpoints/recommend")
    for path in ["recommenders/lamia/training.json", "recommenders/random/training.json",
                 "baselines/sasrec-ce/training.json"]:
        assert_same_training(reference, killed, path, ["steps", "epochs_completed", "stop_reason",
                                                        "best_validation_loss", "best_step"])
    assert without_times(json.loads((killed / "metrics.json").read_text())) == \
        without_times(json.loads((reference / "metrics.json").read_text()))


def test_palette_stage_killed_at_random_points_resumes_bit_for_bit(tmp_path):
    exe = lamia_cli()
    config = tiny_config()
    config["threads"] = 1
    config["progress"] = True
    # A checkpoint every 3 steps and at each epoch's end (resumes start mid-epoch too), a line every step.
    config["palette"]["trainer"].update(epochs=2, max_steps=0, checkpoint_every=3, log_every=1)
    reference, killed = tmp_path / "reference", tmp_path / "killed"

    logs = kill_and_resume(exe, config_args(tmp_path, config) + ["--until", "export"], "palette", reference, killed,
                           seed=29)
    assert any("resumed from" in log for log in logs), "no kill came after a checkpoint"

    assert_same_files(reference, killed, "palette_encoder/model")
    assert_same_checkpoints(reference, killed, "palette_encoder")
    # (its epochs_completed counts this run's epochs: PaletteTrainResult)
    assert_same_training(reference, killed, "palette_encoder/training.json", ["steps", "stop_reason", "after"])
    for artifact in ["palettes.bin", "embeddings.bin"]:
        assert (killed / artifact).read_bytes() == (reference / artifact).read_bytes(), artifact


def test_quantize_stage_killed_at_random_points_resumes_bit_for_bit(tmp_path):
    # RQ-VAE checkpoints at every epoch end (checkpoints/quantize/rq_vae.ckpt); the K-Means
    # tokenizers are refitted from their seeds. Kills land anywhere in the stage.
    exe = lamia_cli()
    config = tiny_config()
    config["threads"] = 1
    config["progress"] = True
    config["quantize"]["rq_vae_train"].update(max_epochs=60, patience=1000, progress=True)
    reference, killed = tmp_path / "reference", tmp_path / "killed"

    logs = kill_and_resume(exe, config_args(tmp_path, config) + ["--until", "quantize"], "quantize", reference,
                           killed, seed=7)
    assert any("resumed" in log for log in logs), "no kill came after a checkpoint"

    assert_same_files(reference, killed, "semantic_ids")
    assert_same_checkpoints(reference, killed, "checkpoints/quantize")
    # RQ-VAE's fit report holds the last run's epochs (like training.json's histories): equal to the
    # end of the uninterrupted run's, the rest of diagnostics.json equal as a whole.
    want = without_times(json.loads((reference / "diagnostics.json").read_text()))
    got = without_times(json.loads((killed / "diagnostics.json").read_text()))
    want_fit, got_fit = want["tokenizers"]["rq-vae"].pop("fit"), got["tokenizers"]["rq-vae"].pop("fit")
    assert got == want
    for key in ("reconstruction_loss", "quantization_loss"):
        assert 0 < len(got_fit[key]) < len(want_fit[key]) and got_fit[key] == want_fit[key][-len(got_fit[key]):], key
    for key in ("epochs", "stopped_early", "utilization"):
        assert got_fit[key] == want_fit[key], key


def test_same_seed_and_thread_count_give_identical_artifacts(tmp_path):
    exe = lamia_cli()
    config = tiny_config()
    config["threads"] = 2
    config["recommend"].update(baselines=["popularity", "sasrec-ce"], sasrec_epochs=2)
    config["recommend"]["sasrec"].update(hidden_size=16, num_layers=1)
    args = config_args(tmp_path, config)
    a, b = tmp_path / "a", tmp_path / "b"
    for run_dir in (a, b):
        subprocess.run([str(exe), *args, "--out", str(run_dir)], check=True, capture_output=True, env=ENV)
    for artifact in ["palettes.bin", "embeddings.bin"] + \
            [f"semantic_ids/{name}.bin" for name in ("lamia", "rq-vae", "residual-kmeans")]:
        assert (a / artifact).read_bytes() == (b / artifact).read_bytes(), artifact
    assert_same_files(a, b, "palette_encoder/model", "recommenders", "baselines")
    for artifact in ["metrics.json", "diagnostics.json"]:
        assert without_times(json.loads((a / artifact).read_text())) == \
            without_times(json.loads((b / artifact).read_text())), artifact


def test_a_rerun_removes_the_files_a_killed_run_was_writing(tmp_path):
    # A run killed while writing a file leaves its temporary ("<file>.tmp.<pid>.<n>",
    # core/atomic_file.hpp) beside the target, here inside the palette encoder's model folder: the
    # rerun must not fold it into the folder's artifact (a kill in the recommend test found one
    # in recommenders/lamia/), nor keep a dead run's checkpoint temporaries.
    exe = lamia_cli()
    config = tiny_config()
    config["progress"] = True
    args = config_args(tmp_path, config)
    run_dir = tmp_path / "run"
    subprocess.run([str(exe), *args, "--until", "tokenizer", "--out", str(run_dir)], check=True, capture_output=True,
                   env=ENV)
    dead = subprocess.Popen(["true"])
    dead.wait()
    abandoned = [f"palette_encoder/model/config.json.tmp.{dead.pid}.3", f"palette_encoder/trainer.ckpt.tmp.{dead.pid}.1",
                 f"manifest.json.tmp.{dead.pid}.0"]
    live = f"palette_encoder/notes.json.tmp.{os.getpid()}.0"  # a writer that is still running
    for name in abandoned + [live]:
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(b"half a file")
    rerun = subprocess.run([str(exe), *args, "--until", "palette", "--out", str(run_dir)], check=True,
                           capture_output=True, text=True, env=ENV)
    assert "removed 3 file(s) an interrupted run was writing" in rerun.stderr
    assert not any((run_dir / name).exists() for name in abandoned)
    assert (run_dir / live).exists()
    assert sorted(p.name for p in (run_dir / "palette_encoder/model").iterdir()) == \
        ["config.json", "model.safetensors"]
