"""pylamia.distributed: DistributedDataParallel over the C++ models, two processes launched with torchrun
(gloo on CPU), against a single process taking the same steps on the same global batches."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pylamia
from pylamia.distributed import LamiaModule, palette_encoder_module, recommender_module, shard

import distributed_cases as cases

HERE = Path(__file__).resolve().parent
STEPS = 4
# torch 1.13's torchrun parses its default --redirects/--tee "0" to None under Python 3.11 (a zero
# Flag member is no longer iterated) and fails in to_map(); 1 (stdout) parses on every version.
TORCHRUN_STD_FLAGS = ["--redirects", "1", "--tee", "1"]


def single_process(kind, steps, world=2, ranks=None, within_shards=False):
    """One process, the same SGD steps: the loss of a step is the mean of the shards' losses (what DDP's
    gradient average computes); for the palette encoder the mean of the shards' generation losses plus
    the intra/inter/decorrelation terms of the whole batch's palettes (what palette_encoder_module's
    gathered palettes compute). ranks: only these shards (to show that the others matter);
    within_shards: the mean of the shards' whole losses, each term within its shard (before issue 13)."""
    torch.set_num_threads(1)
    case = cases.make(kind, seed=0)
    module = palette_encoder_module(case.model) if kind == "palette" else recommender_module(case.model)
    opt = torch.optim.SGD(module.parameters(), lr=case.lr)
    ranks = range(world) if ranks is None else ranks
    for step in range(steps):
        batch = case.global_batch(step)
        if kind == "palette" and not within_shards:
            enc = case.model
            generation = sum(enc.forward(shard(batch, r, world))["generation_loss"] for r in ranks) / len(ranks)
            samples = [s for r in ranks for s in shard(batch, r, world)]
            loss = enc.combine_losses(generation, enc.forward(samples)["palettes"])["loss"]
        else:
            loss = sum(module(case.inputs(shard(batch, r, world))) for r in ranks) / len(ranks)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in cases.named(case.model).items()}


def torchrun(kind, steps, tmp_path):
    out = tmp_path / f"{kind}.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *TORCHRUN_STD_FLAGS, str(HERE / "distributed_worker.py"), kind, str(steps), str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return torch.load(out)


@pytest.mark.parametrize("kind", ["palette", "recommender"])
def test_two_gloo_processes_equal_one_process_on_the_global_batch(kind, tmp_path):
    ddp = torchrun(kind, STEPS, tmp_path)
    ref = single_process(kind, STEPS)
    init = cases.named(cases.make(kind, seed=0).model)
    assert ddp.keys() == ref.keys()
    changed = 0
    for name, value in ref.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-4, atol=1e-6, msg=name)
        changed += not torch.equal(value, init[name])
    assert changed > len(ref) // 2  # the steps did train
    # Rank 0's shard alone gives other parameters: the second process's gradients were averaged in.
    alone = single_process(kind, STEPS, ranks=[0])
    assert any(not torch.allclose(alone[k], ref[k], rtol=1e-4, atol=1e-6) for k in ref)
    if kind == "palette":
        # The intra/inter/decorrelation terms within each shard (an item of the batch is in both
        # shards) are another step: the gathered palettes made the difference.
        within = single_process(kind, STEPS, within_shards=True)
        far = max((within[k] - ddp[k]).abs().max().item() for k in ref)
        near = max((ref[k] - ddp[k]).abs().max().item() for k in ref)
        assert far > 10 * near, (far, near)
        print(f"palette: DDP vs one process on the whole batches {near:.2e}, vs within the shards {far:.2e}")


def test_lamia_module_registers_the_live_tensors():
    case = cases.make("recommender")
    module = recommender_module(case.model)
    live = cases.named(case.model)
    params = dict(module.named_parameters())
    assert len(params) == len(live)
    for name, t in live.items():
        assert params[name.replace(".", "__")] is t  # the same tensor object, not a copy or an alias
    loss = module(case.inputs(case.global_batch(0)))
    loss.backward()
    assert all(p.grad is not None for p in module.parameters())


def test_shard_splits_in_order():
    items = list(range(10))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    with pytest.raises(ValueError, match="rank"):
        shard(items, 3, 3)
    with pytest.raises(TypeError, match="leaf"):
        LamiaModule(type("M", (), {"named_parameters": lambda self: {"w": torch.ones(2, requires_grad=True) * 2}})(),
                    lambda m: 0)
