"""The positive control of issue 11 (task_routing="one_position") and the encoder options beside
the paper's, through pylamia: the mask cell by cell against an expectation written from the layout,
and the loss options reaching the encoder's total."""
import random

import pytest
import torch

import pylamia

PAD, CONTENT, LAP, LDP, TASK = 0, 1, 2, 3, 4


def expected_mask(c, L, n, T, task):
    """Row of a sample [content c][LaP L][LdP L][task n - c - 2L], padded to T; task i reads LdP_(i mod L)."""
    def region(x):
        return CONTENT if x < c else LAP if x < c + L else LDP if x < c + 2 * L else TASK
    m = torch.zeros(T, T, dtype=torch.bool)
    for q in range(n):
        for k in range(n):
            rq, rk = region(q), region(k)
            if rq == CONTENT:
                ok = rk == CONTENT and k <= q
            elif rq == LAP:
                ok = rk == CONTENT or (rk == LAP and k <= q)
            elif rq == LDP:
                ok = k == q
            else:
                ok = (rk == TASK and k <= q) or (rk == LDP and k - (c + L) == task % L)
            m[q, k] = ok
    return m


def test_one_position_mask_cell_by_cell():
    rng = random.Random(5)
    for _ in range(25):
        L, m, B = rng.randint(1, 5), rng.randint(1, 6), rng.randint(1, 4)
        rows = []
        for _ in range(B):
            c, t = rng.randint(1, 6), rng.randint(2, 6)
            rows.append((c, c + 2 * L + t, rng.randrange(m)))
        T = max(n for _, n, _ in rows)
        types = torch.zeros(B, T, dtype=torch.int64)
        for r, (c, n, _) in enumerate(rows):
            types[r, :c] = CONTENT
            types[r, c:c + L] = LAP
            types[r, c + L:c + 2 * L] = LDP
            types[r, c + 2 * L:n] = TASK
        tasks = torch.tensor([task for _, _, task in rows])
        got = pylamia.palette_attention_mask(types, task_routing="one_position", sample_tasks=tasks)
        for r, (c, n, task) in enumerate(rows):
            want = expected_mask(c, L, n, T, task)
            assert torch.equal(got[r], want), (L, task, c, n)
        paper = pylamia.palette_attention_mask(types)
        assert torch.equal(pylamia.palette_attention_mask(types, task_routing="all"), paper)


def test_one_position_mask_needs_tasks_and_a_known_name():
    types = torch.tensor([[1, 2, 3, 4, 4]])
    with pytest.raises(ValueError, match="sample_tasks"):
        pylamia.palette_attention_mask(types, task_routing="one_position")
    with pytest.raises(ValueError, match="task_routing"):
        pylamia.palette_attention_mask(types, task_routing="some")


@pytest.fixture(scope="module")
def catalog():
    return pylamia.generate_synthetic(num_items=12, num_users=0, sentences=1, filler_per_sentence=1,
                                      aspect_sizes=[4, 3, 3, 2], words_per_value=2, filler_words=10,
                                      attribute_layout="aspect_per_attribute").dataset.catalog


def tiny(catalog, **kw):
    return pylamia.PaletteEncoder.from_scratch(catalog, 1, vocab_size=300, hidden_size=32, num_layers=2, num_heads=2,
                                               dropout=0.0, max_position_embeddings=256, seed=1, **kw)


def test_catalog_layout_has_one_attribute_per_aspect(catalog):
    assert catalog.attribute_names == ["description", "topic_text", "region_text", "tone_text", "format_text"]


def test_one_position_routing_reaches_only_the_routed_position(catalog):
    enc = tiny(catalog, palette_size=3, task_routing="one_position", contrastive="off")
    enc.eval()
    for task in range(5):
        out = enc.forward([(0, task), (1, task)])
        (grad,) = torch.autograd.grad(out["generation_loss"], out["palettes"])
        for j in range(3):
            moved = grad[:, j].abs().sum().item()
            assert (moved > 0) == (j == task % 3), (task, j, moved)


def test_encoder_total_includes_the_new_terms(catalog):
    enc = tiny(catalog, intra_centring="batch", decorrelation_weight=2.0)
    enc.eval()
    out = enc.forward([(0, 1), (1, 2), (2, 3), (3, 4)])
    p = out["palettes"].detach()
    torch.testing.assert_close(out["intra_loss"], pylamia.intra_palette_loss(p, centring="batch"))
    torch.testing.assert_close(out["decorrelation_loss"], pylamia.decorrelation_loss(p))
    want = out["generation_loss"] + 0.1 * (out["intra_loss"] + out["inter_loss"]) + 2.0 * out["decorrelation_loss"]
    torch.testing.assert_close(out["loss"], want)
    with pytest.raises(ValueError, match="decorrelation_weight"):
        tiny(catalog, decorrelation_weight=-1.0)
    with pytest.raises(ValueError, match="task_routing"):
        tiny(catalog, task_routing="one")


def test_trainer_reports_the_decorrelation_part(catalog):
    enc = tiny(catalog, decorrelation_weight=0.5)
    trainer = pylamia.PaletteTrainer(enc, batch_size=8, max_steps=2, log_every=1, validation_fraction=0.25)
    result = trainer.train()
    record = result["train_history"][-1]
    assert record["decorrelation_loss"] > 0
    val = trainer.evaluate()
    assert val["loss"] == pytest.approx(val["generation_loss"] + 0.1 * (val["intra_loss"] + val["inter_loss"])
                                        + 0.5 * val["decorrelation_loss"], rel=1e-9)
