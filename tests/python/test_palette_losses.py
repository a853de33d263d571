"""Palette losses: values and gradients against a direct PyTorch computation of the formulas."""
import itertools

import pytest
import torch

import pylamia


def cos(a, b):
    return (a * b).sum() / (a.norm() * b.norm())


def intra_direct(p, alpha, reduction):
    terms = [torch.clamp(cos(p[i, j], p[i, k]) - alpha, min=0) ** 2
             for i in range(p.shape[0]) for j in range(p.shape[1]) for k in range(p.shape[1]) if j != k]
    if not terms:
        return p.sum() * 0
    total = torch.stack(terms).sum()
    return total / len(terms) if reduction == "mean" else total


def inter_direct(p, alpha, reduction):
    terms = [torch.clamp(cos(p[i, j], p[k, j]) - alpha, min=0) ** 2
             for j in range(p.shape[1]) for i in range(p.shape[0]) for k in range(p.shape[0]) if i != k]
    if not terms:
        return p.sum() * 0
    total = torch.stack(terms).sum()
    return total / len(terms) if reduction == "mean" else total


CASES = list(itertools.product([1, 2, 6], [1, 2, 4], ["mean", "sum"]))


@pytest.mark.parametrize("B,L,reduction", CASES)
@pytest.mark.parametrize("which", ["intra", "inter"])
def test_loss_and_gradient_match_the_formula(B, L, reduction, which):
    g = torch.Generator().manual_seed(B * 31 + L)
    base = torch.randn(1, 1, 16, generator=g, dtype=torch.float64)
    p0 = torch.randn(B, L, 16, generator=g, dtype=torch.float64) + 1.2 * base
    ours, ref = (pylamia.intra_palette_loss, intra_direct) if which == "intra" else (pylamia.inter_palette_loss, inter_direct)
    alpha = 0.1 if which == "intra" else 0.25
    p = p0.clone().requires_grad_(True)
    q = p0.clone().requires_grad_(True)
    got = ours(p, alpha=alpha, reduction=reduction)
    want = ref(q, alpha, reduction)
    assert got.shape == ()
    assert torch.isfinite(got)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12)


def test_default_margins_are_the_papers():
    p = torch.ones(3, 4, 5)
    assert pylamia.intra_palette_loss(p).item() == pytest.approx(0.9 ** 2)
    assert pylamia.inter_palette_loss(p).item() == pytest.approx(0.75 ** 2)


def test_float32_matches_float64():
    p = torch.randn(5, 4, 32, generator=torch.Generator().manual_seed(0)) + 1.0
    for f in (pylamia.intra_palette_loss, pylamia.inter_palette_loss):
        torch.testing.assert_close(f(p).double(), f(p.double()), rtol=1e-5, atol=1e-6)


def test_one_item_has_no_inter_loss_and_no_nan():
    p = torch.randn(1, 4, 8, requires_grad=True)
    loss = pylamia.inter_palette_loss(p)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(p.grad == 0)


def test_errors_are_value_errors():
    with pytest.raises(ValueError, match="L = 0"):
        pylamia.intra_palette_loss(torch.zeros(2, 0, 4))
    with pytest.raises(ValueError, match="reduction"):
        pylamia.inter_palette_loss(torch.zeros(2, 2, 4), reduction="avg")
    with pytest.raises(ValueError):
        pylamia.inter_palette_loss(torch.zeros(2, 4))


def test_generation_loss_is_cross_entropy_on_labelled_tokens():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 3] = 4, 6
    got = pylamia.palette_generation_loss(logits, labels)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(got, want)


# ---- options beside the paper's (issue 11): batch-centred intra, decorrelation ------------------

def decorrelation_direct(p, reduction, eps=1e-6):
    """sum over ordered pairs i != j of ||C_ij||_F^2, C_ij = Z_i^T Z_j / B, Z standardised per dimension."""
    B, L, D = p.shape
    if B < 2 or L < 2:
        return p.sum() * 0
    z = []
    for j in range(L):
        x = p[:, j, :]
        c = x - x.mean(dim=0, keepdim=True)
        z.append(c / torch.sqrt((c ** 2).mean(dim=0, keepdim=True) + eps))
    total = sum(((z[i].T @ z[j]) / B).pow(2).sum() for i in range(L) for j in range(L) if i != j)
    return total / (L * (L - 1) * D) if reduction == "mean" else total


@pytest.mark.parametrize("B,L,reduction", CASES)
def test_batch_centred_intra_matches_the_formula_on_centred_palettes(B, L, reduction):
    g = torch.Generator().manual_seed(B * 7 + L)
    p0 = torch.randn(B, L, 16, generator=g, dtype=torch.float64) + 3.0
    p = p0.clone().requires_grad_(True)
    q = p0.clone().requires_grad_(True)
    got = pylamia.intra_palette_loss(p, alpha=0.1, reduction=reduction, centring="batch")
    if B == 1:  # centred palettes are 0: cosine 0 (F.normalize's eps), no NaN, no gradient
        assert got.item() == 0.0
        got.backward()
        assert torch.all(p.grad == 0)
        return
    want = intra_direct(q - q.mean(dim=0, keepdim=True), 0.1, reduction)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("B,L,reduction", CASES + [(40, 3, "mean"), (3, 2, "sum")])
def test_decorrelation_matches_the_formula_values_and_gradients(B, L, reduction):
    g = torch.Generator().manual_seed(B * 13 + L)
    p0 = torch.randn(B, L, 6, generator=g, dtype=torch.float64)
    if L > 1:
        p0[:, 1] = 0.8 * p0[:, 0] + 0.2 * p0[:, 1] + 5.0  # a correlated, shifted position
    p = p0.clone().requires_grad_(True)
    q = p0.clone().requires_grad_(True)
    got = pylamia.decorrelation_loss(p, reduction=reduction)
    want = decorrelation_direct(q, reduction)
    assert got.shape == ()
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12)
    if B > 1 and L > 1:
        assert got.item() > 0


def test_decorrelation_known_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 1, 4, generator=g, dtype=torch.float64)
    copies = x.expand(5000, 3, 4)
    assert pylamia.decorrelation_loss(copies).item() == pytest.approx(1.0, rel=0.01)
    independent = torch.randn(5000, 3, 4, generator=g, dtype=torch.float64)
    assert pylamia.decorrelation_loss(independent).item() < 5 * 4 / 5000
    # float32 follows float64
    torch.testing.assert_close(pylamia.decorrelation_loss(independent.float()).double(),
                               pylamia.decorrelation_loss(independent), rtol=1e-3, atol=1e-6)


def test_option_names_are_checked():
    with pytest.raises(ValueError, match="centring"):
        pylamia.intra_palette_loss(torch.zeros(2, 2, 4), centring="mean")
    with pytest.raises(ValueError, match="reduction"):
        pylamia.decorrelation_loss(torch.zeros(2, 2, 4), reduction="avg")
