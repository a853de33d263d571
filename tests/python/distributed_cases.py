"""The two models of tests/python/test_distributed.py (a tiny palette encoder, a tiny recommender), their
global batches and how a shard of one becomes the model's input; shared by the test and its worker."""
import torch

import pylamia
from lamia_testing import make_catalog, tiny


class Case:
    def __init__(self, model, lr, global_batch, inputs):
        self.model, self.lr, self.global_batch, self.inputs = model, lr, global_batch, inputs


def named(model):
    p = model.named_parameters()
    return dict(p) if not isinstance(p, dict) else p


def make(kind, seed=0):
    if kind == "palette":
        # The intra (on batch-centred palettes) and inter losses weighted visibly. Not the decorrelation
        # penalty: on 3-4 items of this tiny float32 model it is ill-conditioned (a position's variance
        # near 0 under its 1e-6 floor), so that the last-bit differences of the shards' forwards grow to
        # 1e-3 in 4 SGD steps (1.5e-7 after the first); the ctest `distributed` checks it in float64.
        enc = tiny(make_catalog(), seed=seed, gamma=0.5, intra_centring="batch")
        samples = [(i, t) for i in range(24) for t in range(3)]
        # 8 (item, task) pairs per step, shards of 4 (contiguous split): the items of a step's shards
        # overlap (item 1 of the first step has samples in both).
        return Case(enc, 0.05, lambda step: samples[(step * 8) % len(samples):][:8], lambda s: s)
    table = pylamia.SemanticIdTable.from_codes(torch.tensor([[i % 8, i // 8] for i in range(24)]))
    vocab = pylamia.CodeVocabulary.for_table(table)
    model = pylamia.make_recommender(vocab, hidden_size=32, num_layers=2, num_heads=2, dropout=0.0,
                                     max_history_items=5, seed=seed)
    examples = [([(u * 7 + t) % 24 for t in range(3)], (u * 7 + 3) % 24) for u in range(96)]
    # Every example has the same number of label tokens (3), so the mean of the shards' losses is
    # the loss of the whole batch.
    return Case(model, 0.1, lambda step: examples[(step * 16) % len(examples):][:16],
                lambda ex: pylamia.make_recommender_batch(table, vocab, ex, max_history_items=5))
