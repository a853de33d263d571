"""The two models of tests/python/test_distributed.py (a tiny palette encoder, a tiny recommender), their
global batches and how a shard of one becomes the model's input; shared by the test and its worker.

Two schedules (and the palette encoder's "ragged_sum", ragged with the losses' reduction "sum"): "even" (global batches of 8 (item, task) samples / 16 examples, shards of equal size) and
"ragged" (global batches of 5, 1, 7 and 3: shards of 2 and 3, 0 and 1 (rank 0's empty), 3 and 4, 1 and
2, so that the shards hold different numbers of label tokens)."""
import torch

import pylamia
from lamia_testing import make_catalog, tiny

RAGGED_SIZES = [5, 1, 7, 3]


class Case:
    def __init__(self, model, lr, global_batch, inputs):
        self.model, self.lr, self.global_batch, self.inputs = model, lr, global_batch, inputs


def named(model):
    p = model.named_parameters()
    return dict(p) if not isinstance(p, dict) else p


def batches(items, size, ragged):
    """step -> the step's global batch: consecutive slices of items (wrapping around), of `size` items
    ("even") or of RAGGED_SIZES[step % 4] ("ragged")."""
    def at(step):
        if not ragged:
            return items[(step * size) % len(items):][:size]
        begin = sum(RAGGED_SIZES[s % len(RAGGED_SIZES)] for s in range(step)) % len(items)
        return (items[begin:] + items)[:RAGGED_SIZES[step % len(RAGGED_SIZES)]]
    return at


def make(kind, seed=0, schedule="even"):
    """schedule: "even", "ragged", or (palette) "ragged_sum": ragged with the losses' reduction "sum"."""
    ragged = schedule.startswith("ragged")
    if kind == "palette":
        # float64, every loss on: the intra loss on batch-centred palettes, the inter loss and the
        # decorrelation penalty. In float32 the shards' forwards (padded to their own longest sample) round
        # otherwise than one process's forward of the whole batch, and the hinges' kinks and the penalty's
        # ill-conditioning on 1-4 items (a position's variance near its 1e-6 floor; hence its small weight)
        # grow those last bits to 5e-5 in 4 SGD steps, which a tolerance could not tell from a small error.
        reduction = "sum" if schedule == "ragged_sum" else "mean"
        enc = tiny(make_catalog(), seed=seed, gamma=0.5, intra_centring="batch", decorrelation_weight=0.01,
                   reduction=reduction)
        enc.to(dtype=torch.float64)
        samples = [(i, t) for i in range(24) for t in range(3)]
        # Even: 8 (item, task) pairs per step, shards of 4 (contiguous split); the items of a step's
        # shards overlap (item 1 of the first step has samples in both).
        # With "sum" every term is a sum (the generation loss over the batch's label tokens, the hinges
        # and the penalty over pairs; the first batch's loss is 242 instead of 6.5): a smaller learning rate
        # for steps of a like size.
        return Case(enc, 0.05 if reduction == "mean" else 2e-4, batches(samples, 8, ragged), lambda s: s)
    table = pylamia.SemanticIdTable.from_codes(torch.tensor([[i % 8, i // 8] for i in range(24)]))
    vocab = pylamia.CodeVocabulary.for_table(table)
    model = pylamia.make_recommender(vocab, hidden_size=32, num_layers=2, num_heads=2, dropout=0.0,
                                     max_history_items=5, seed=seed)
    examples = [([(u * 7 + t) % 24 for t in range(3)], (u * 7 + 3) % 24) for u in range(96)]
    # Every example has the same number of label tokens (3): with the even schedule the shards hold
    # the same number, with the ragged one 2 against 3 examples' worth.
    return Case(model, 0.1, batches(examples, 16, ragged),
                lambda ex: pylamia.make_recommender_batch(table, vocab, ex, max_history_items=5))
