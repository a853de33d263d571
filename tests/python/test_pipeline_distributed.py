"""The stage commands under torchrun (docs/distributed.md, "The stage commands under torchrun"): two
`lamia train-palette` / `lamia train-rec` processes launched by torchrun on this machine (gloo over
127.0.0.1) against one process, and against an independent reference written out here with PyTorch
(Adam steps on the whole batches; the shards' losses each within its shard, the computation before
the palettes were gathered, end elsewhere); `lamia export-palettes` and `lamia evaluate` split over two ranks against one process; the
refusals with two processes started with torchrun's variables set by hand (faster). Also
pylamia.run_pipeline's shard=(i, n) / merge=True against the CLI's --shard / --merge."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

import pylamia
from pylamia.distributed import shard
from lamia_testing import free_port, torchrun_two_nodes
from pipeline_testing import assert_metrics_close, lamia_cli, tiny_config, without_times
from test_pipeline_commands import lamia, one_line_error

# torch 1.13's torchrun parses its default --redirects/--tee "0" to None under Python 3.11
# (tests/python/test_distributed.py); 1 parses everywhere.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "--redirects", "1", "--tee", "1", "--no_python"]
STEPS = 4
GLOBAL_BATCH = 8


def torchrun_lamia(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([*TORCHRUN, str(lamia_cli()), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def by_hand(*args, per_rank=None):
    """Two `lamia` processes with torchrun's variables set here (no torchrun: no Python start-up and no
    agent polling every 5 s); per_rank(rank) adds arguments. Returns each rank's CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               WORLD_SIZE="2")
    procs = [subprocess.Popen([str(lamia_cli()), *map(str, args), *map(str, per_rank(rank) if per_rank else [])],
                              env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in range(2)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def single(*args):
    """One process with the thread count of each torchrun rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([str(lamia_cli()), *map(str, args)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def palette_config():
    c = tiny_config()
    # 4 Adam steps on global batches of 8 (shards of 4), nothing else that moves the weights.
    c["palette"]["trainer"].update(batch_size=GLOBAL_BATCH, max_steps=STEPS, learning_rate=5e-3, validation_fraction=0,
                                   eval_every=0, patience=0, restore_best=False, log_every=1)
    c["model"]["scratch"]["dropout"] = 0.0
    return c


def files_of(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def decoder_parameters(decoder):
    return {name: p.detach().clone() for name, p in decoder.named_parameters()}


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


class PaletteReference:
    """The palette encoder as ctx.palette_setup() builds it in the run folder (the same tokenizer, options
    and seeds), trained here with torch.optim.Adam on the trainer's own batches."""

    def __init__(self, run):
        self.run = run
        self.config = json.loads((run / "config.json").read_text())

    def encoder(self):
        c = self.config
        catalog = pylamia.generate_synthetic(c["dataset"]["synthetic"]).dataset.catalog
        tokenizer = pylamia.load_tokenizer(self.run / "tokenizer")
        return pylamia.PaletteEncoder.from_tokenizer(catalog, tokenizer, encoder=c["palette"]["encoder"],
                                                     model=c["model"]["scratch"])

    def trained(self):
        """The weights the run folder's palette_encoder/model holds."""
        enc = self.encoder()
        enc.decoder.load_pretrained_weights(str(self.run / "palette_encoder" / "model"))
        return decoder_parameters(enc.decoder)

    def steps(self, world, ranks):
        """STEPS Adam steps whose loss is the given shards' losses weighed by their label tokens (shard r
        of world: the r-th contiguous part of each global batch; every term within its shard), the
        gradient clipped as the trainer clips it. world 1: the whole batches."""
        t = self.config["palette"]["trainer"]
        torch.manual_seed(t["seed"])
        enc = self.encoder()
        batches = pylamia.PaletteTrainer(enc, t).epoch_batches(0)
        params = [p for p in enc.parameters() if p.requires_grad]
        adam = torch.optim.Adam(params, lr=t["learning_rate"], weight_decay=t["weight_decay"])
        enc.train()
        for step in range(STEPS):
            batch = batches[step]
            assert len(batch) == GLOBAL_BATCH
            adam.zero_grad()
            outs = [enc.forward(shard(batch, r, world)) for r in ranks]
            loss = sum(o["loss"] * o["label_tokens"] for o in outs) / sum(o["label_tokens"] for o in outs)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, t["grad_clip_norm"])
            adam.step()
        return decoder_parameters(enc.decoder)


@pytest.fixture(scope="module")
def palette_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp-palette")
    config = tmp / "palette.json"
    config.write_text(json.dumps(palette_config()))
    one, two = tmp / "one", tmp / "two"
    single("train-palette", one, "--config", config, "--quiet")
    proc = torchrun_lamia("train-palette", two, "--config", config, "--quiet")
    return {"one": one, "two": two, "log": proc.stdout + proc.stderr}


def test_train_palette_on_two_ranks_equals_one_process_on_the_whole_batches(palette_runs):
    one, two = palette_runs["one"], palette_runs["two"]
    two_ranks = PaletteReference(two).trained()
    single_process = PaletteReference(one).trained()
    ref = PaletteReference(two)
    whole_batch, within_shards, rank0_alone = ref.steps(1, [0]), ref.steps(2, [0, 1]), ref.steps(2, [0])
    init = decoder_parameters(ref.encoder().decoder)
    moved = max_abs_diff(two_ranks, init)
    # The reference is faithful: it reproduces the single-process command on the whole batches.
    assert max_abs_diff(single_process, whole_batch) < 1e-4
    # The two ranks took the steps of one process on the whole batches: the generation loss weighed by
    # label tokens, the intra/inter losses on the palettes gathered from both ranks.
    got = max_abs_diff(two_ranks, whole_batch)
    assert got < 1e-4, got
    # The shards' losses each within its shard (before the palettes were gathered) is another step.
    within = max_abs_diff(within_shards, whole_batch)
    assert within > 10 * got, (within, got)
    # Rank 0's shard alone ends measurably elsewhere: rank 1's gradients were averaged in.
    alone = max_abs_diff(rank0_alone, whole_batch)
    assert alone > 1e-3 and moved > 1e-3, (alone, moved)
    print(f"two ranks vs one process on the whole batches: {got:.2e} (the command: "
          f"{max_abs_diff(two_ranks, single_process):.2e}); within the shards: {within:.2e}; rank 0's shard "
          f"alone: {alone:.2e}; moved {moved:.2e}")


def test_train_palette_under_two_torchrun_nodes_on_this_machine(palette_runs, tmp_path):
    """docs/distributed.md's multi-machine command, both nodes here (torchrun's static rendezvous: its
    agent serves the store at --master_addr:--master_port, and lamia's ranks connect to it): the same
    weights as torchrun --standalone's two ranks, the same files as one process."""
    config = tmp_path / "palette.json"
    config.write_text(json.dumps(palette_config()))
    nodes = tmp_path / "nodes"
    where = torchrun_two_nodes(["--no_python", lamia_cli(), "train-palette", nodes, "--config", config, "--quiet"],
                               dict(os.environ, OMP_NUM_THREADS="1"))
    got = max_abs_diff(PaletteReference(nodes).trained(), PaletteReference(palette_runs["two"]).trained())
    assert got < 1e-6, got
    assert files_of(nodes) == files_of(palette_runs["one"])
    print(f"two torchrun nodes at {where}: {got:.2e} from torchrun --standalone's two ranks")


def test_only_rank0_writes_and_the_folder_is_complete(palette_runs):
    one, two = palette_runs["one"], palette_runs["two"]
    assert files_of(two) == files_of(one)
    assert not [f for f in files_of(two) if ".tmp." in f]
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["stages"]["palette"]["completed"]
    training = json.loads((two / "palette_encoder" / "training.json").read_text())
    assert training["steps"] == STEPS and training["stop_reason"] == "max_steps reached"
    # The next stage takes the folder as it is (manifest and checksums intact), and a rerun skips.
    lamia("export-palettes", two, "--quiet")
    weights = (two / "palette_encoder" / "model" / "model.safetensors").read_bytes()
    rank0, rank1 = by_hand("train-palette", two, "--set", "progress=true")
    assert rank0.returncode == 0 and rank1.returncode == 0, rank0.stderr + rank1.stderr
    assert "stage palette: up to date" in rank0.stderr, rank0.stderr
    assert rank1.stderr == "rank 1 of 2: done (rank 0 wrote %s)\n" % two
    assert (two / "palette_encoder" / "model" / "model.safetensors").read_bytes() == weights


def test_ranks_with_different_settings_are_refused(tmp_path):
    """Rank 1 started with another --set: both ranks stop with the same one-line error."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps(palette_config()))
    ranks = by_hand("train-palette", tmp_path / "run", "--config", config, "--quiet",
                    per_rank=lambda rank: ["--set", f"palette.trainer.max_steps={STEPS + rank}"])
    for rank, p in enumerate(ranks):
        line = one_line_error(p)
        assert f"rank {rank} of 2" in line and "different configurations" in line, line
    assert not (tmp_path / "run").exists() or not (tmp_path / "run" / "manifest.json").exists()


def test_shards_with_world_size_2_are_refused(palette_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(palette_runs["two"], run)
    for p in by_hand("export-palettes", run, "--shard", "0/2"):
        assert "--shard and --merge run as separate processes" in one_line_error(p)
    assert not (run / "shards").exists()


# ---- train-rec ----

def rec_config():
    c = palette_config()
    # Every example's loss is over its target's codes alone (no history tokens), so the loss of a
    # batch is the mean over its examples; with shards of equal size the mean of the two shards'
    # losses is then the loss of the whole batch, and one process on the whole batches is the
    # reference. SASRec (which does not shard) trains on rank 0 while rank 1 waits.
    c["recommend"].update(batch_size=GLOBAL_BATCH, loss_on_history=False, epochs=1, patience=0, learning_rate=3e-3,
                          baselines=["popularity", "sasrec-ce"], sasrec_epochs=1)
    c["recommend"]["model"]["dropout"] = 0.0
    c["sequences"]["train_examples"] = "last_item"
    return c


def recommender_parameters(run):
    table = pylamia.SemanticIdTable.load(run / "recommenders" / "lamia" / "semantic_ids.bin")
    model, _, _ = pylamia.load_recommender(run / "recommenders" / "lamia", table)
    return decoder_parameters(model)


def test_train_rec_on_two_ranks_equals_one_process_on_the_whole_batches(tmp_path):
    config = tmp_path / "rec.json"
    config.write_text(json.dumps(rec_config()))
    base = tmp_path / "base"
    single("train-palette", base, "--config", config, "--quiet")
    single("export-palettes", base, "--quiet")
    single("quantize", base, "--quiet")
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(base, one)
    shutil.copytree(base, two)
    p = single("train-rec", one, "--set", "progress=true")
    examples = int(re.search(r"(\d+) training examples", p.stderr).group(1))
    # Every batch splits into two equal shards (the last one too).
    assert examples % GLOBAL_BATCH % 2 == 0, examples
    torchrun_lamia("train-rec", two, "--quiet")
    assert files_of(two) == files_of(one)
    got, want = recommender_parameters(two), recommender_parameters(one)
    steps = json.loads((two / "recommenders" / "lamia" / "training.json").read_text())["steps"]
    assert steps == -(-examples // GLOBAL_BATCH)
    diff = max_abs_diff(got, want)
    assert diff < 1e-4, diff
    assert max_abs_diff(got, recommender_parameters(base_init(tmp_path, config))) > 1e-3  # it trained
    # SASRec trained on rank 0 alone, as in one process with the same thread count: the same bytes.
    for name in ("model.safetensors", "sasrec.json"):
        assert (one / "baselines" / "sasrec-ce" / name).read_bytes() == \
            (two / "baselines" / "sasrec-ce" / name).read_bytes(), name
    print(f"train-rec, two ranks vs one process: max abs diff {diff:.2e} after {steps} steps")


def base_init(tmp_path, config):
    """The recommender before training: epochs=0 saves the initial weights."""
    zero = tmp_path / "zero"
    shutil.copytree(tmp_path / "base", zero)
    single("train-rec", zero, "--config", config, "--set", "recommend.epochs=0", "--quiet")
    return zero


# ---- export and evaluate split over the ranks ----

def split_config():
    c = tiny_config()
    # 600 items: the ranks' parts [0, 300) and [300, 600) meet inside the export's batch [256, 512), and
    # each part travels to rank 0 in two rounds of 256 rows. 11 test users: parts of 5 and 6; exact
    # scoring on the first 3 (rank 0's).
    c["dataset"]["synthetic"].update(num_items=600, num_users=60)
    c["recommend"]["baselines"] = ["popularity", "transition"]
    c["evaluate"].update(max_users=11, top_k=10, beam_width=10, exact=True, exact_users=3)
    return c


def timed(run, *args, **kwargs):
    import time
    t0 = time.monotonic()
    out = run(*args, **kwargs)
    return out, time.monotonic() - t0


def both_ok(ranks):
    for p in ranks:
        assert p.returncode == 0, ranks[0].stderr[-4000:] + ranks[1].stderr[-4000:]
    return ranks


@pytest.fixture(scope="module")
def split_runs(tmp_path_factory):
    """one: the export and the evaluation in one process; two: the same folder with both split over
    two ranks (torchrun's variables set by hand)."""
    tmp = tmp_path_factory.mktemp("dp-split")
    config = tmp / "split.json"
    config.write_text(json.dumps(split_config()))
    one, two = tmp / "one", tmp / "two"
    single("train-palette", one, "--config", config, "--quiet")
    shutil.copytree(one, two)
    _, export_one = timed(single, "export-palettes", one, "--quiet")
    _, export_two = timed(lambda: both_ok(by_hand("export-palettes", two, "--quiet")))
    exported = {name: (two / name).read_bytes() for name in ("palettes.bin", "embeddings.bin")}
    files_after_export = (files_of(one), files_of(two))
    for command in ("quantize", "train-rec"):
        single(command, one, "--quiet")
    shutil.rmtree(two)
    shutil.copytree(one, two)
    _, evaluate_one = timed(single, "evaluate", one, "--quiet")
    _, evaluate_two = timed(lambda: both_ok(by_hand("evaluate", two, "--quiet")))
    print(f"wall seconds: export one process {export_one:.1f}, two ranks {export_two:.1f}; "
          f"evaluate one process {evaluate_one:.1f}, two ranks {evaluate_two:.1f}")
    return {"tmp": tmp, "config": config, "one": one, "two": two, "exported": exported,
            "files_after_export": files_after_export}


def test_export_over_two_ranks_writes_the_bytes_of_one_process(split_runs):
    one = split_runs["one"]
    for name, data in split_runs["exported"].items():
        assert data == (one / name).read_bytes(), name
    # Rank 0 wrote the files one process writes (no shards/, no temporaries), recorded as usual.
    files_one, files_two = split_runs["files_after_export"]
    assert files_two == files_one and "palettes.bin" in files_two


def test_evaluate_over_two_ranks_equals_one_process(split_runs):
    one, two = split_runs["one"], split_runs["two"]
    assert files_of(two) == files_of(one)
    expected, got = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert got["test_users"] == 11 and got["methods"]["lamia"]["exact"]["users"] == 3
    assert got["methods"]["lamia"]["beam"]["users"] == 11
    assert_metrics_close(without_times(got), without_times(expected))
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["stages"]["evaluate"]["completed"]


def test_evaluate_with_fewer_test_users_than_ranks(split_runs, tmp_path):
    """One test user: rank 0's part is empty, and it still takes part in every collective."""
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(split_runs["one"], one)
    shutil.copytree(split_runs["one"], two)
    single("evaluate", one, "--set", "evaluate.max_users=1", "--quiet")
    both_ok(by_hand("evaluate", two, "--set", "evaluate.max_users=1", "--quiet"))
    expected, got = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert got["test_users"] == 1
    assert_metrics_close(without_times(got), without_times(expected))


# ---- pylamia.run_pipeline(shard=..., merge=...) against the CLI ----

def test_run_pipeline_shard_and_merge_match_the_cli(palette_runs, tmp_path):
    config = json.loads((palette_runs["one"] / "config.json").read_text())
    config["evaluate"].update(max_users=10, exact=True, exact_users=3)
    cli, py = tmp_path / "cli", tmp_path / "py"
    shutil.copytree(palette_runs["one"], cli)
    shutil.copytree(palette_runs["one"], py)
    (tmp_path / "c.json").write_text(json.dumps(config))
    for i in range(2):
        lamia("export-palettes", cli, "--config", tmp_path / "c.json", "--shard", f"{i}/2", "--quiet")
        out = pylamia.run_pipeline(config, str(py), stages=["export"], shard=(i, 2))
        assert out["stages_run"] == ["export"]
    assert (py / "shards" / "palettes-00001-of-00002.bin").read_bytes() == \
        (cli / "shards" / "palettes-00001-of-00002.bin").read_bytes()
    lamia("export-palettes", cli, "--config", tmp_path / "c.json", "--merge", "--quiet")
    pylamia.run_pipeline(config, str(py), stages=["export"], merge=True)
    for name in ("palettes.bin", "embeddings.bin"):
        assert (py / name).read_bytes() == (cli / name).read_bytes(), name
    lamia("quantize", cli, "--config", tmp_path / "c.json", "--quiet")
    lamia("train-rec", cli, "--config", tmp_path / "c.json", "--quiet")
    shutil.rmtree(py)
    shutil.copytree(cli, py)
    for i in range(2):
        lamia("evaluate", cli, "--config", tmp_path / "c.json", "--shard", f"{i}/2", "--quiet")
        pylamia.run_pipeline(config, str(py), stages=["evaluate"], shard=(i, 2))
    lamia("evaluate", cli, "--config", tmp_path / "c.json", "--merge", "--quiet")
    result = pylamia.run_pipeline(config, str(py), stages=["evaluate"], merge=True)
    expected = json.loads((cli / "metrics.json").read_text())
    assert without_times(result["metrics"]) == without_times(expected)
    assert without_times(json.loads((py / "metrics.json").read_text())) == without_times(expected)
    with pytest.raises(ValueError, match="exclude each other"):
        pylamia.run_pipeline(config, str(py), stages=["evaluate"], shard=(0, 2), merge=True)
    with pytest.raises(ValueError, match="apply to one of the stages"):
        pylamia.run_pipeline(config, str(py), stages=["quantize"], shard=(0, 2))
