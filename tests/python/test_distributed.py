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
from lamia_testing import TORCHRUN_STD_FLAGS, torchrun_two_nodes

HERE = Path(__file__).resolve().parent
STEPS = 4


def single_process(kind, steps, schedule="even", how="whole", world=2):
    """One process, the same SGD steps from rank 0's initial values. how: "whole", the loss of the whole
    global batch (what a DDP step computes); "rank0", rank 0's shard alone (to show that the other
    matters); "equal", the mean of the shards' losses, an empty shard's counting 0 (DDP's plain average,
    the weighting before: for the palette encoder the mean of the shards' generation losses plus the
    intra/inter/decorrelation terms of the whole batch's palettes); "within", the shards' whole losses,
    each term within its shard, weighed by label tokens, or added up with the reduction "sum"
    (global_losses=False). Returns the parameters and the steps' losses."""
    torch.set_num_threads(1)
    case = cases.make(kind, seed=0, schedule=schedule)
    module = palette_encoder_module(case.model) if kind == "palette" else recommender_module(case.model)
    opt = torch.optim.SGD(module.parameters(), lr=case.lr)
    losses = []
    for step in range(steps):
        batch = case.global_batch(step)
        parts = [shard(batch, r, world) for r in range(world)]
        if how == "whole":
            loss = module(case.inputs(batch))
        elif how == "rank0":
            loss = module(case.inputs(parts[0]))
        elif how == "equal" and kind == "palette":
            enc = case.model
            generation = sum(enc.forward(p)["generation_loss"] for p in parts if p) / world
            loss = enc.combine_losses(generation, enc.forward(batch)["palettes"])["loss"]
        elif how == "equal":
            loss = sum(module(case.inputs(p)) for p in parts if p) / world
        else:
            assert how == "within" and kind == "palette"
            outs = [case.model.forward(p) for p in parts if p]
            if case.model.options.losses.reduction == "sum":
                loss = sum(o["loss"] for o in outs)
            else:
                loss = sum(o["loss"] * o["label_tokens"] for o in outs) / sum(o["label_tokens"] for o in outs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {k: v.detach().clone() for k, v in cases.named(case.model).items()}, losses


def worker_env():
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def torchrun(kind, steps, tmp_path, schedule="even", losses="global"):
    out = tmp_path / f"{kind}-{schedule}-{losses}.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *TORCHRUN_STD_FLAGS, str(HERE / "distributed_worker.py"), kind, str(steps), str(out), schedule, losses]
    r = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return torch.load(out), torch.load(str(out) + ".losses")


def max_difference(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def check_training(kind, schedule, ddp, ddp_losses, rtol, atol):
    """ddp (parameters after STEPS DDP steps, and rank 0's losses) against one process on the whole
    batches; one process on rank 0's shard alone and on the equally weighted shards must end farther."""
    ref, ref_losses = single_process(kind, STEPS, schedule)
    init = cases.named(cases.make(kind, seed=0, schedule=schedule).model)
    assert ddp.keys() == ref.keys()
    changed = 0
    for name, value in ref.items():
        torch.testing.assert_close(ddp[name], value, rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")
        changed += not torch.equal(value, init[name])
    assert changed > len(ref) // 2  # the steps did train
    # Every rank returns the whole batch's loss as the value (at the same parameters).
    torch.testing.assert_close(torch.tensor(ddp_losses), torch.tensor(ref_losses), rtol=rtol, atol=atol)
    near = max_difference(ref, ddp)
    moved = max((ref[k] - init[k]).abs().max().item() for k in ref)
    # Rank 0's shard alone gives other parameters: the second process's gradients were averaged in.
    alone, _ = single_process(kind, STEPS, schedule, how="rank0")
    equal, _ = single_process(kind, STEPS, schedule, how="equal")
    far = {"rank 0 alone": max_difference(alone, ddp), "equal weights": max_difference(equal, ddp)}
    if schedule == "even" and kind == "recommender":
        # Every example has 3 label tokens: equal shards are equal weights.
        assert far["equal weights"] <= 10 * max(near, atol), far
        del far["equal weights"]
    if kind == "palette":
        # The intra/inter/decorrelation terms within each shard (an item of the batch is in both
        # shards) are another step: the gathered palettes made the difference.
        far["within the shards"] = max_difference(single_process(kind, STEPS, schedule, how="within")[0], ddp)
    print(f"{kind} {schedule}: DDP vs one process on the whole batches {near:.2e} (moved {moved:.2e}), vs " +
          ", ".join(f"{k} {v:.2e}" for k, v in far.items()))
    for what, d in far.items():
        assert d > 10 * max(near, atol), (what, d, near)


# The palette encoder in float64 (every loss on); the recommender's cross-entropy is float32 whatever the
# model's dtype (its logits are cast), so it runs in float32.
TOLERANCE = {"palette": dict(rtol=1e-9, atol=1e-9), "recommender": dict(rtol=1e-4, atol=1e-6)}


@pytest.mark.parametrize("kind", ["palette", "recommender"])
def test_two_gloo_processes_equal_one_process_on_the_global_batch(kind, tmp_path):
    ddp, losses = torchrun(kind, STEPS, tmp_path)
    check_training(kind, "even", ddp, losses, **TOLERANCE[kind])


@pytest.mark.parametrize("kind,schedule", [("palette", "ragged"), ("palette", "ragged_sum"), ("recommender", "ragged")])
def test_unequal_and_empty_shards_equal_one_process_on_the_global_batch(kind, schedule, tmp_path):
    """Global batches of 5, 1, 7, 3 on two ranks: unequal shards (different label-token counts) and, in
    the second step, an empty shard on rank 0; for the palette encoder also with the reduction "sum"."""
    ddp, losses = torchrun(kind, STEPS, tmp_path, schedule)
    check_training(kind, schedule, ddp, losses, **TOLERANCE[kind])


@pytest.mark.parametrize("schedule", ["ragged", "ragged_sum"])
def test_global_losses_false_weighs_each_shards_whole_loss(schedule, tmp_path):
    """palette_encoder_module(global_losses=False): each shard's terms within the shard, its whole loss
    weighed by label tokens (or the shards' sums added up): one process on those shards' losses."""
    ddp, losses = torchrun("palette", STEPS, tmp_path, schedule, "local")
    within, within_losses = single_process("palette", STEPS, schedule, how="within")
    whole, _ = single_process("palette", STEPS, schedule)
    for name, value in within.items():
        torch.testing.assert_close(ddp[name], value, **TOLERANCE["palette"], msg=lambda m, name=name: f"{name}: {m}")
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(within_losses), **TOLERANCE["palette"])
    near, far = max_difference(within, ddp), max_difference(whole, ddp)
    print(f"palette {schedule}, global_losses=False: DDP vs one process on the shards within {near:.2e}, "
          f"vs the whole batches {far:.2e}")
    assert far > 10 * max(near, 1e-9), (far, near)


def test_two_torchrun_nodes_on_this_machine_equal_one_process(tmp_path):
    """docs/distributed.md's multi-machine launch, both "machines" here: two torchrun invocations with
    --nnodes 2 --node_rank 0/1 --nproc_per_node 1 and a static rendezvous at this machine's address."""
    out = tmp_path / "palette-nodes.pt"
    where = torchrun_two_nodes([HERE / "distributed_worker.py", "palette", STEPS, out, "ragged", "global"],
                               worker_env())
    print(f"two torchrun nodes at {where}:")
    check_training("palette", "ragged", torch.load(out), torch.load(str(out) + ".losses"), **TOLERANCE["palette"])


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


def test_an_empty_shard_gives_zero_with_a_gradient_for_every_parameter():
    """Without a group too: no samples / a batch of no example is a zero loss in the graph of every
    parameter, each gradient zero (DDP's reducer waits for one per parameter)."""
    for kind in ("palette", "recommender"):
        case = cases.make(kind)
        module = palette_encoder_module(case.model) if kind == "palette" else recommender_module(case.model)
        loss = module(case.inputs([]))
        assert loss.item() == 0.0
        loss.backward()
        for name, p in module.named_parameters():
            assert p.grad is not None and not p.grad.any(), name


def test_palette_encoder_options_and_dtype():
    enc = cases.make("palette", schedule="ragged_sum").model  # from_scratch(..., reduction="sum"), to(float64)
    assert enc.options.losses.reduction == "sum" and enc.options.losses.gamma == 0.5
    assert all(p.dtype == torch.float64 for p in enc.parameters())
    assert enc.forward([(0, 0), (1, 1)])["palettes"].dtype == torch.float64
    enc.to("cpu", dtype="float32")
    assert all(p.dtype == torch.float32 for p in enc.parameters())
