"""Data-parallel training of pylamia's C++ models with PyTorch's own distributed engine.

pylamia's models (PaletteEncoder, the recommender's Decoder, SasRec.model) are LibTorch modules:
their parameters() are the live C++ tensors, but they are not torch.nn.Modules, so
torch.nn.parallel.DistributedDataParallel cannot wrap them directly. `LamiaModule` is the thin
nn.Module between the two: it registers those very tensors (not copies: the autograd graph of the
C++ forward ends in them) as its parameters and calls a loss function in forward(), so DDP
broadcasts rank 0's values at construction and all-reduces (averages) the gradients in backward():

    import torch, torch.distributed as dist, pylamia
    from pylamia.distributed import palette_encoder_module, shard

    dist.init_process_group("gloo")            # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    enc = pylamia.PaletteEncoder.from_scratch(catalog, 1, hidden_size=64, seed=0)
    ddp = torch.nn.parallel.DistributedDataParallel(palette_encoder_module(enc))
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    for global_batch in batches:               # the same list on every process
        loss = ddp(shard(global_batch, dist.get_rank(), dist.get_world_size()))  # may be empty
        opt.zero_grad(); loss.backward(); opt.step()

launched with `torchrun --nproc_per_node 2 train.py` (gloo on CPU; "nccl" with CUDA devices).
What it computes: one DDP step is one single-process step on the whole global batch, also when the
shards are unequal or some are empty. Each rank's loss is weighed by its share of the batch's label
tokens (the generation and recommender losses are means over label tokens; one small collective per
step sums every rank's count and weighted loss), so that DDP's average of the gradients is the whole
batch's, and every rank returns the whole batch's loss as value. The palette encoder's
intra/inter/decorrelation losses are those of the whole batch: palette_encoder_module all-gathers the
palettes of every step. An empty shard (a global batch smaller than the group) joins every collective
and returns the value with a zero gradient for every parameter. docs/distributed.md.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

__all__ = ["LamiaModule", "palette_encoder_module", "recommender_module", "shard"]


def _named_parameters(model: Any) -> list[tuple[str, torch.Tensor]]:
    named = model.named_parameters()
    return list(named.items()) if isinstance(named, dict) else list(named)


class LamiaModule(torch.nn.Module):
    """An nn.Module whose parameters are the live parameter tensors of a pylamia model.

    model: anything with named_parameters() (dict or (name, tensor) pairs), e.g. a PaletteEncoder or a
    Decoder. loss: called as loss(model, *args, **kwargs) by forward(); returns a scalar tensor.
    Parameter names are the model's with "." replaced by "__" (nn.Module names may not contain dots).
    """

    def __init__(self, model: Any, loss: Callable[..., torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss = loss
        for name, tensor in _named_parameters(model):
            if not isinstance(tensor, torch.Tensor) or not tensor.is_leaf:
                raise TypeError(f"LamiaModule: parameter {name!r} of {type(model).__name__} is not a leaf tensor")
            # Registered as they are: nn.Parameter(tensor) would be a detached alias that the C++
            # forward's autograd graph never reaches, so DDP's gradient hooks would never fire.
            self._parameters[name.replace(".", "__")] = tensor

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.loss(self.model, *args, **kwargs)

    def train(self, mode: bool = True) -> "LamiaModule":
        super().train(mode)
        self.model.train(mode)
        return self


def _world_size() -> int:
    """The default torch.distributed group's size; 1 without an initialised group."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _zero_on_every_parameter(model: Any) -> torch.Tensor:
    """A 0-d zero in the autograd graph of every trainable parameter of model, each of whose gradients it
    leaves zero (an empty slice's sum: no 0 * inf). DDP's reducer waits for a gradient of every parameter
    in every step, so a rank with nothing to compute returns this."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return torch.zeros(())
    return torch.stack([p.reshape(-1)[:0].sum().to(params[0].dtype) for p in params]).sum()


def _with_gradient(loss: torch.Tensor | None, value: float, scale: float, model: Any) -> torch.Tensor:
    """A 0-d tensor of value `value` whose gradient is scale times loss's; loss None (an empty shard):
    the value with a zero gradient for every parameter of model."""
    if loss is None:
        return _zero_on_every_parameter(model) + value
    return (loss - loss.detach()) * scale + value


def _weighted(count: float, value: float, mean: bool) -> list[float]:
    """What a rank contributes to the whole batch: (count, count x value) for a loss that is a mean over
    count things (label tokens), (count, value) for a sum."""
    return [float(count), float(count) * value if mean else value]


def _whole_batch(totals: Sequence[float], count: float, world: int, mean: bool) -> tuple[float, float]:
    """(the whole batch's loss, this rank's gradient scale) from the sum over the ranks of _weighted():
    for a mean, sum(count x value) / sum(count) and world x count / sum(count); for a sum, the sum and
    world. DDP averages the ranks' gradients, so the scaled gradients average to the whole batch's."""
    total_count, total = totals
    if not mean:
        return total, float(world)
    if total_count == 0:  # nothing anywhere (every shard empty)
        return 0.0, 0.0
    return total / total_count, world * count / total_count


def _sum_over_ranks(values: Sequence[float], device: torch.device) -> list[float]:
    """values summed over the ranks of the default group (one all_reduce, float64)."""
    import torch.distributed as dist

    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _parameter(model: Any) -> torch.Tensor:
    return next(iter(model.parameters()))


def _global_palettes(palettes: torch.Tensor | None, items: Sequence[int], weighted: Sequence[float],
                     palette_shape: tuple[int, int], like: torch.Tensor) -> tuple[torch.Tensor | None, list[float]]:
    """The palettes of the whole batch's distinct items, gathered from every rank of the default group, in
    the order one process's batch has them (ranks in order, each item once: the first rank holding it
    owns it), and `weighted` summed over the ranks. This rank's own rows stay in the autograd graph; the
    others are detached copies. palettes None (an empty shard): this rank owns no row but still joins
    both collectives. None for the palettes when no rank has an item. Two all_gathers, float64 (any
    palette dtype, the item indices and the weights exactly): the ranks' item counts and weights, then
    every rank's item indices and palettes, padded to the largest shard's item count."""
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    length, dim = palette_shape
    head = torch.tensor([float(len(items)), *weighted], dtype=torch.float64, device=like.device)
    heads = [torch.empty_like(head) for _ in range(world)]
    dist.all_gather(heads, head)
    heads_cpu = torch.stack(heads).cpu()
    counts = [int(n) for n in heads_cpu[:, 0].tolist()]
    totals = heads_cpu[:, 1:].sum(0).tolist()  # in rank order: the same on every rank
    most = max(counts)
    if most == 0:
        return None, totals
    send = torch.zeros((most, 1 + length * dim), dtype=torch.float64, device=like.device)
    if palettes is not None:
        send[: len(items), 0] = torch.tensor(list(items), dtype=torch.float64, device=like.device)
        send[: len(items), 1:] = palettes.detach().reshape(len(items), -1).to(torch.float64)
    got = [torch.empty_like(send) for _ in range(world)]
    dist.all_gather(got, send)
    rows, seen = [], set()
    for r in range(world):
        for i, item in enumerate(int(x) for x in got[r][: counts[r], 0].tolist()):
            if item in seen:
                continue
            seen.add(item)
            rows.append(palettes[i] if r == rank else got[r][i, 1:].reshape(length, dim).to(like.dtype))
    return torch.stack(rows), totals


def _palette_loss(enc: Any, samples: Sequence[Any], global_losses: bool) -> torch.Tensor:
    world = _world_size()
    out = enc.forward(samples) if len(samples) else None
    if world == 1:
        return out["loss"] if out is not None else _zero_on_every_parameter(enc)
    mean = enc.options.losses.reduction == "mean"  # the generation loss: a mean over label tokens, or their sum
    count = out["label_tokens"] if out is not None else 0
    if not global_losses:
        # Each shard's whole loss (its intra/inter/decorrelation terms within the shard), weighed by its
        # label tokens (with "sum", added up) as the C++ trainer's shard_local_losses does.
        loss = out["loss"] if out is not None else None
        totals = _sum_over_ranks(_weighted(count, loss.item() if loss is not None else 0.0, mean),
                                 _parameter(enc).device)
        return _with_gradient(loss, *_whole_batch(totals, count, world, mean), enc)
    generation = out["generation_loss"] if out is not None else None
    like = out["palettes"] if out is not None else _parameter(enc)
    palettes, totals = _global_palettes(
        out["palettes"] if out is not None else None, out["items"] if out is not None else [],
        _weighted(count, generation.item() if generation is not None else 0.0, mean),
        (enc.palette_size, enc.palette_dim), like)
    value, scale = _whole_batch(totals, count, world, mean)
    if palettes is None:  # the whole batch is empty
        return _with_gradient(None, 0.0, 0.0, enc)
    # The whole batch's generation loss as value, this shard's gradient scaled to its share of it; the
    # intra/inter/decorrelation terms of the whole batch, computed on every rank, with world_size times
    # the gradient through this rank's own palettes, so that DDP's average is the whole batch's.
    gen = _with_gradient(generation, value, scale, enc) if generation is not None else \
        torch.tensor(value, dtype=like.dtype, device=like.device)
    loss = enc.combine_losses(gen, palettes, grad_scale=float(world))["loss"]
    return loss if out is not None else loss + _zero_on_every_parameter(enc)


def palette_encoder_module(encoder: Any, global_losses: bool = True) -> LamiaModule:
    """forward(samples) = the encoder's loss on samples ((item, task) pairs, this rank's shard; may be
    empty).

    Without an initialised torch.distributed group of more than one process: encoder.forward(samples)
    ["loss"] (0, with a zero gradient for every parameter, for no samples). Under one, a step of DDP is one
    single-process step on the whole global batch: the value returned on every rank is the whole batch's
    loss, and this rank's gradient is scaled so that DDP's average of the ranks' gradients is the whole
    batch's. The generation loss is weighed by label tokens (one all-gather of every rank's label-token
    count and weighted loss; with the losses' reduction "sum", the shards' sums add up), and
    (global_losses, the default) the intra/inter/decorrelation losses are those of the whole batch's
    palettes, all-gathered from every rank (the items counted once, the others' palettes detached), their
    gradient multiplied by the world size. global_losses=False: each shard's whole loss, its
    intra/inter/decorrelation terms within the shard, weighed by its label tokens (with "sum", the shards'
    sums added up; one all-reduce). An
    empty shard computes nothing, joins every collective and returns the whole batch's loss with zero
    gradients for every parameter (DDP's reducer needs one for each)."""
    return LamiaModule(encoder, lambda enc, samples: _palette_loss(enc, samples, global_losses))


def _recommender_loss(decoder: Any, batch: dict[str, Any] | None) -> torch.Tensor:
    from . import recommender_loss

    empty = batch is None or batch["input_ids"].shape[0] == 0
    loss, labels = (None, 0) if empty else recommender_loss(decoder, batch)[::2]
    world = _world_size()
    if world == 1:
        return loss if loss is not None else _zero_on_every_parameter(decoder)
    # recommender_loss is the mean cross-entropy over the batch's labelled tokens: the shards weigh theirs.
    totals = _sum_over_ranks(_weighted(labels, loss.item() if loss is not None else 0.0, True),
                             _parameter(decoder).device)
    return _with_gradient(loss, *_whole_batch(totals, labels, world, True), decoder)


def recommender_module(decoder: Any) -> LamiaModule:
    """forward(batch) = pylamia.recommender_loss(decoder, batch)[0], the mean cross-entropy over the batch's
    labelled tokens (batch: from make_recommender_batch; None or a batch of no example: an empty shard).

    Under an initialised torch.distributed group of more than one process, a step of DDP is one
    single-process step on the whole global batch: one all-reduce of every rank's label count and
    weighted loss, the value returned on every rank is the whole batch's mean, and this rank's gradient is
    scaled by world_size x its labels / the batch's labels, so that DDP's average is the whole batch's
    gradient. An empty shard joins the all-reduce and returns that value with zero gradients for every
    parameter."""
    return LamiaModule(decoder, _recommender_loss)


def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """Contiguous part rank of world_size of items (sizes differ by at most one; ranks in order)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard: rank must be in [0, world_size), got rank {rank} of {world_size}")
    n = len(items)
    begin, end = rank * n // world_size, (rank + 1) * n // world_size
    return list(items[begin:end])
