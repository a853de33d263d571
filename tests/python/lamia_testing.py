"""Helpers shared by the pylamia tests (imported by name: pytest puts this folder on sys.path).

CUDA tests: where CUDA is not available they skip; LAMIA_EXPECT_CUDA=1 (set by
scripts/device-check.sh on a GPU machine) makes a missing CUDA a failure, and
LAMIA_CUDA_TESTS_ON_CPU=1 runs them with the CPU standing in for the GPU (a dry run of the test code).
"""
import os

import pytest
import torch

import pylamia

DRY_RUN = os.environ.get("LAMIA_CUDA_TESTS_ON_CPU") == "1" and not torch.cuda.is_available()
DEVICE = "cpu" if DRY_RUN else "cuda"
DEVICE_TYPE = torch.device(DEVICE).type
needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() or DRY_RUN), reason="CUDA not available")


def require_cuda_where_expected():
    if os.environ.get("LAMIA_EXPECT_CUDA") != "1":
        pytest.skip("CUDA not expected (LAMIA_EXPECT_CUDA is not 1)")
    assert torch.cuda.is_available(), "LAMIA_EXPECT_CUDA=1 but torch.cuda.is_available() is False"


def rel(a, b):
    """max |a - b| / max |b|, in float64 on the CPU."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def norm_rel(a, b):
    """||a - b|| / ||b||, in float64 on the CPU."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def assert_grad_close(name, got, want, scale):
    """Relative error < 1e-3; the key projection's bias has a zero gradient in exact arithmetic
    (softmax ignores the q.b_k added to every score of a query), so there both devices give
    rounding noise of either sign: it must only be tiny against the largest gradient."""
    if name.endswith("k_proj.bias"):
        assert got.abs().max().item() < 1e-4 * scale, name
    else:
        assert rel(got, want) < 1e-3, name


COLORS = ["red", "blue", "green", "black", "white", "yellow"]
ANIMALS = ["cat", "dog", "fox", "owl", "bee"]
KINDS = {"cat": "mammal", "dog": "mammal", "fox": "mammal", "owl": "bird", "bee": "insect"}


def make_catalog(n=30):
    """A small catalog with title, color and kind: color and kind are recoverable from the title."""
    c = pylamia.Catalog(["title", "color", "kind"])
    for i in range(n):
        color, animal = COLORS[i % len(COLORS)], ANIMALS[(i // len(COLORS)) % len(ANIMALS)]
        c.add(f"it{i}", [f"the {color} {animal} number {i % 7}", color, KINDS[animal]])
    return c


def tiny(catalog, **kw):
    """A 2-layer, width-32 palette encoder from scratch over catalog (one content attribute)."""
    args = dict(palette_size=3, vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, dropout=0.0,
                max_position_embeddings=128, seed=0)
    args.update(kw)
    return pylamia.PaletteEncoder.from_scratch(catalog, 1, **args)


def assert_notebook_loop_learns(enc):
    """A notebook's own Adam loop over enc.forward(): the generation loss of the last 5 of 40 steps
    is below 70 % of the first 5."""
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    samples = [(i, t) for i in range(12) for t in range(3)]
    losses = []
    for step in range(40):
        batch = samples[(step * 12) % len(samples):][:12] or samples[:12]
        out = enc.forward(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["generation_loss"].item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
