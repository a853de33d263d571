"""pylamia quantize diagnostics: AMI against sklearn's adjusted_mutual_info_score, the palette
diagnostics' ridge fits against sklearn's Ridge / RidgeClassifier on the same split, and
constructed palettes whose answers are known."""
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score, r2_score
from sklearn.metrics.cluster import expected_mutual_information, contingency_matrix

import pylamia


@pytest.mark.parametrize("n,ka,kb", [(2, 2, 2), (10, 3, 3), (50, 3, 4), (200, 1, 5), (30, 30, 2), (500, 10, 7),
                                     (2000, 64, 64), (3000, 256, 16), (1000, 500, 3)])
def test_ami_equals_sklearn_on_random_labelings(n, ka, kb):
    g = np.random.default_rng(n + ka + kb)
    for dependent in (False, True):
        a = g.integers(0, ka, n)
        b = g.integers(0, kb, n)
        if dependent:
            b = np.where(g.random(n) < 0.5, a % kb, b)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        assert pylamia.adjusted_mutual_info(ta, tb) == pytest.approx(adjusted_mutual_info_score(a, b), abs=1e-9)
        s = pylamia.mutual_info_scores(ta, tb)
        assert s["ami"] == pylamia.adjusted_mutual_info(ta, tb)
        assert s["nmi"] == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)
        if len(np.unique(a)) > 1 and len(np.unique(b)) > 1:
            emi = expected_mutual_information(contingency_matrix(a, b, sparse=True), n)
            assert s["expected_mutual_info"] == pytest.approx(emi, rel=1e-9, abs=1e-12)
            assert s["expected_nmi"] == pytest.approx(emi / ((s["entropy_a"] + s["entropy_b"]) / 2), rel=1e-12)


def test_ami_special_cases_equal_sklearn():
    const, other = np.zeros(8, dtype=np.int64), np.arange(8) % 3
    for a, b in [(const, const), (const, other), (other, other), (other, (other + 1) % 3), (other * 7 - 2, other)]:
        ours = pylamia.adjusted_mutual_info(torch.from_numpy(a), torch.from_numpy(b))
        assert ours == pytest.approx(adjusted_mutual_info_score(a, b), abs=1e-12)
    assert pylamia.adjusted_mutual_info(torch.from_numpy(other), torch.from_numpy(other)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same items"):
        pylamia.adjusted_mutual_info(torch.zeros(3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))


def test_chance_nmi_of_independent_uniform_labelings():
    """The issue's figure: two independent uniform 64-way labelings of 2,000 items have NMI ~0.24."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 64, (2000,), generator=g), torch.randint(0, 64, (2000,), generator=g)
    s = pylamia.mutual_info_scores(a, b)
    assert 0.2 < s["nmi"] < 0.28
    assert s["expected_nmi"] == pytest.approx(s["nmi"], abs=0.01)
    assert abs(s["ami"]) < 0.01


def test_diagnose_codes_ami_matrices_equal_sklearn():
    g = np.random.default_rng(3)
    codes = g.integers(0, 8, (400, 3))
    codes[:, 1] = np.where(g.random(400) < 0.7, codes[:, 0], codes[:, 1])
    labels = np.stack([codes[:, 2] % 2, g.integers(0, 5, 400)], 1)
    d = pylamia.diagnose_codes(torch.from_numpy(codes), labels=torch.from_numpy(labels))
    for i in range(3):
        for j in range(3):
            ref = 1.0 if i == j else adjusted_mutual_info_score(codes[:, i], codes[:, j])
            assert d["ami_between_positions"][i][j] == pytest.approx(ref, abs=1e-9)
        for a in range(2):
            assert d["ami_with_labels"][i][a] == pytest.approx(
                adjusted_mutual_info_score(labels[:, a], codes[:, i]), abs=1e-9)
    assert d["ami_between_positions"][0][1] > 0.3
    assert abs(d["ami_between_positions"][0][2]) < 0.02
    assert d["expected_nmi_between_positions"][0][2] == pytest.approx(d["nmi_between_positions"][0][2], abs=0.02)


def constructed(n=600, D=6, seed=0):
    """Position 0 = z + offset, 1 = a rotation of z, 2 = independent noise; labels: sign of z_0, and
    a 3-way label of z_1 and position 2's first coordinate."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, D, generator=g, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    noise = torch.randn(n, D, generator=g, dtype=torch.float64)
    offset = torch.linspace(1, 3, D, dtype=torch.float64)
    palettes = torch.stack([z + offset, z @ rotation, noise], 1).float()
    three_way = torch.bucketize(z[:, 1] + noise[:, 0], torch.tensor([-0.5, 0.5], dtype=torch.float64))
    labels = torch.stack([(z[:, 0] > 0).long(), three_way], 1)
    return palettes, labels, offset


@pytest.mark.parametrize("alpha,fraction,seed", [(1.0, 0.2, 0), (25.0, 0.3, 4)])
def test_ridge_fits_equal_sklearn_on_the_same_split(alpha, fraction, seed):
    palettes, labels, _ = constructed()
    options = pylamia.PaletteDiagnosticsOptions(ridge_alpha=alpha, test_fraction=fraction, seed=seed)
    d = pylamia.diagnose_palettes(palettes, labels, ["sign", "three"], options)
    train, test = pylamia.probe_split(len(palettes), options)
    assert d["probe_split"]["train_items"] == len(train) and d["probe_split"]["test_items"] == len(test)
    x = palettes.double().numpy()
    L = x.shape[1]
    for i in range(L):
        for j in range(L):
            model = Ridge(alpha=alpha).fit(x[train, i], x[train, j])
            ref = r2_score(x[test, j], model.predict(x[test, i]), multioutput="variance_weighted")
            assert d["cross_position_r2"][i][j] == pytest.approx(ref, abs=1e-8), (i, j)
        for a in range(labels.shape[1]):
            clf = RidgeClassifier(alpha=alpha).fit(x[train, i], labels[train, a].numpy())
            ref = clf.score(x[test, i], labels[test, a].numpy())
            assert d["linear_probe"]["accuracy"][i][a] == pytest.approx(ref, abs=1e-12), (i, a)
    for a in range(labels.shape[1]):
        counts = np.bincount(labels[test, a].numpy())
        assert d["linear_probe"]["chance_accuracy"][a] == pytest.approx(counts.max() / len(test))


def test_constructed_palettes_read_as_built():
    palettes, labels, offset = constructed(n=1500)
    d = pylamia.diagnose_palettes(palettes, labels, ["sign", "three"])
    r2 = d["cross_position_r2"]
    assert r2[0][1] > 0.999 and r2[1][0] > 0.999  # a rotation (plus an offset) of each other
    for i, j in [(0, 2), (1, 2), (2, 0), (2, 1)]:
        assert abs(r2[i][j]) < 0.03  # independent: chance ~0
    # Norm shares: position 0's offset is known; the others are centred by construction.
    x = palettes.double()
    for j in range(3):
        total = x[:, j].pow(2).sum(1).mean().item()
        assert d["positions"][j]["mean_squared_norm"] == pytest.approx(total, rel=1e-10)
        assert d["positions"][j]["offset_share"] == pytest.approx(x[:, j].mean(0).pow(2).sum().item() / total, rel=1e-9)
    expected_share = offset.pow(2).sum().item() / (offset.pow(2).sum().item() + palettes.shape[2])
    assert d["positions"][0]["offset_share"] == pytest.approx(expected_share, abs=0.02)
    assert d["positions"][1]["residual_share"] > 0.99
    # Cosines against a direct computation: raw ones carry the offset, centred ones do not.
    centred = x - x.mean(0, keepdim=True)
    for name, y in [("cosine_between_positions", x), ("centred_cosine_between_positions", centred)]:
        u = torch.nn.functional.normalize(y, dim=2)
        ref = (u @ u.transpose(1, 2)).mean(0)
        assert np.allclose(np.array(d[name]), ref.numpy(), atol=1e-9)
    u = torch.nn.functional.normalize(centred, dim=2)
    pairs = [(u[:, i] * u[:, j]).sum(1).mean().item() for i in range(3) for j in range(i + 1, 3)]
    assert d["centred_intra_cosine"] == pytest.approx(sum(pairs) / 3, abs=1e-9)
    # The probe: the sign of z is linear in positions 0 and 1 only; the 3-way label mixes 1 and 2.
    acc, chance = d["linear_probe"]["accuracy"], d["linear_probe"]["chance_accuracy"]
    assert acc[0][0] > 0.95 and acc[1][0] > 0.95
    assert acc[2][0] < chance[0] + 0.1
    assert d["linear_probe"]["train_classes"] == [2, 3]


def test_palette_diagnostics_options_and_errors():
    palettes, labels, _ = constructed(n=100)
    a = pylamia.diagnose_palettes(palettes, max_probe_items=50, seed=2)
    assert a["probe_split"]["train_items"] + a["probe_split"]["test_items"] == 50
    assert "linear_probe" not in a
    assert a == pylamia.diagnose_palettes(palettes, options={"max_probe_items": 50, "seed": 2})
    with pytest.raises(ValueError, match="ridge_alpha"):
        pylamia.diagnose_palettes(palettes, ridge_alpha=0.0)
    with pytest.raises(ValueError, match="one row per item"):
        pylamia.diagnose_palettes(palettes, labels[:50])
    bad = palettes.clone()
    bad[3, 1, 0] = math.inf
    with pytest.raises(ValueError, match="item 3 has a non-finite value"):
        pylamia.diagnose_palettes(bad)
