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
        enc = tiny(make_catalog(), seed=seed)
        samples = [(i, t) for i in range(24) for t in range(3)]
        # 8 (item, task) pairs per step: each shard of 4 has its own items (contiguous split).
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
