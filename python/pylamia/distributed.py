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
        loss = ddp(shard(global_batch, dist.get_rank(), dist.get_world_size()))
        opt.zero_grad(); loss.backward(); opt.step()

launched with `torchrun --nproc_per_node 2 train.py` (gloo on CPU; "nccl" with CUDA devices).
What it computes: each process's loss is the mean over its shard, and DDP averages the gradients,
so a step equals one single-process step on the mean of the shards' losses (equal to the loss of
the whole batch when every shard has the same number of label tokens). The palette encoder's
intra/inter/decorrelation losses are those of the whole batch: palette_encoder_module all-gathers the
palettes of every step. docs/distributed.md.
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


def _global_palettes(palettes: torch.Tensor, items: Sequence[int]) -> torch.Tensor:
    """The palettes of the whole batch's distinct items, gathered from every rank of the default group,
    in the order one process's batch has them (ranks in order, each item once: the first rank holding it
    owns it). This rank's own rows stay in the autograd graph; the others are detached copies."""
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    every_items: list[Any] = [None] * world
    dist.all_gather_object(every_items, list(items))
    most = max(len(i) for i in every_items)
    # float64 carries any palette dtype exactly; padded to the largest shard's item count.
    send = torch.zeros((most, *palettes.shape[1:]), dtype=torch.float64, device=palettes.device)
    send[: palettes.shape[0]] = palettes.detach().to(torch.float64)
    got = [torch.empty_like(send) for _ in range(world)]
    dist.all_gather(got, send)
    rows, seen = [], set()
    for r, rank_items in enumerate(every_items):
        for i, item in enumerate(rank_items):
            if item in seen:
                continue
            seen.add(item)
            rows.append(palettes[i] if r == rank else got[r][i].to(palettes.dtype))
    return torch.stack(rows)


def _palette_loss(enc: Any, samples: Sequence[Any], global_losses: bool) -> torch.Tensor:
    out = enc.forward(samples)
    import torch.distributed as dist

    if not global_losses or not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return out["loss"]
    # DDP averages the ranks' gradients: the terms of the whole batch, computed on every rank, carry
    # world_size times the gradient through this rank's own palettes, so that the average is theirs.
    palettes = _global_palettes(out["palettes"], out["items"])
    return enc.combine_losses(out["generation_loss"], palettes, grad_scale=float(dist.get_world_size()))["loss"]


def palette_encoder_module(encoder: Any, global_losses: bool = True) -> LamiaModule:
    """forward(samples) = the encoder's loss on samples ((item, task) pairs, this rank's shard).

    Under an initialised torch.distributed group of more than one process (global_losses, the default),
    the intra/inter/decorrelation losses are those of the whole batch: every rank all-gathers the
    palettes of the step (the items counted once, the others' palettes detached) and scales their
    gradient so that DDP's average is the whole batch's. The generation loss stays this shard's mean
    (DDP weighs the shards equally). global_losses=False (or no group): encoder.forward(samples)["loss"],
    the losses within the shard. Every rank needs a non-empty shard."""
    return LamiaModule(encoder, lambda enc, samples: _palette_loss(enc, samples, global_losses))


def recommender_module(decoder: Any) -> LamiaModule:
    """forward(batch) = pylamia.recommender_loss(decoder, batch)[0]: batch from make_recommender_batch."""
    from . import recommender_loss

    return LamiaModule(decoder, lambda model, batch: recommender_loss(model, batch)[0])


def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """Contiguous part rank of world_size of items (sizes differ by at most one; ranks in order)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard: rank must be in [0, world_size), got rank {rank} of {world_size}")
    n = len(items)
    begin, end = rank * n // world_size, (rank + 1) * n // world_size
    return list(items[begin:end])
