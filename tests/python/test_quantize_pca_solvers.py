"""PaletteQuantizer's PCA solvers (pca.solver exact | randomized), each against sklearn's solver of the
same kind, the PCA item sample (pca.max_items) and K-Means on a sample (max_points_per_centroid)."""
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import pylamia


def spectrum(n, D, decay, seed, L=1):
    """Rows with singular values 1 / (1 + i)^decay in a random rotation, plus an offset; n x L x D."""
    g = np.random.default_rng(seed)
    out = []
    for _ in range(L):
        q, _ = np.linalg.qr(g.standard_normal((D, D)))
        out.append((g.standard_normal((n, D)) / (1 + np.arange(D)) ** decay) @ q.T + 3.0)
    return torch.from_numpy(np.stack(out, axis=1)).float().contiguous()


def min_cosine(a, b):
    """Smallest cosine of the principal angles between the row spaces of a and b (1 = same subspace)."""
    qa, _ = np.linalg.qr(np.asarray(a, dtype=np.float64).T)
    qb, _ = np.linalg.qr(np.asarray(b, dtype=np.float64).T)
    return np.linalg.svd(qa.T @ qb, compute_uv=False).min()


def fitted(x, d=8, **kw):
    q = pylamia.PaletteQuantizer(pca_dim=d, num_codes=8, seed=0, **kw)
    report = q.fit(x)
    return q, report


def test_exact_solver_is_the_default_and_matches_sklearn_full():
    x = spectrum(1500, 48, 0.5, seed=3, L=2)
    default, _ = fitted(x)
    exact, report = fitted(x, pca={"solver": "exact"})
    assert torch.equal(default.training_codes(), exact.training_codes())
    assert report["pca_items"] == 1500 and "covariance" in report["phase_seconds"]
    for j in range(2):
        ref = PCA(n_components=8, svd_solver="full").fit(x[:, j].double().numpy())
        np.testing.assert_allclose(exact.pca(j)["explained_variance"].numpy(), ref.explained_variance_, rtol=1e-4)
        assert min_cosine(exact.pca(j)["components"], ref.components_) > 0.9999


def test_randomized_solver_matches_sklearn_randomized_with_auto_iterations():
    # A decaying spectrum: sklearn's randomized solver (auto: 4 power iterations here) finds the top
    # subspace; so must ours, with the same variance.
    x = spectrum(2000, 64, 0.7, seed=1, L=2)
    q, report = fitted(x, pca={"solver": "randomized"})
    assert "power_iterations" in report["phase_seconds"] and "covariance" not in report["phase_seconds"]
    for j in range(2):
        ref = PCA(n_components=8, svd_solver="randomized", random_state=0).fit(x[:, j].double().numpy())
        ours = q.pca(j)
        np.testing.assert_allclose(ours["explained_variance"].numpy(), ref.explained_variance_, rtol=1e-3)
        np.testing.assert_allclose(report["positions"][j]["explained_variance_ratio"], ref.explained_variance_ratio_,
                                   rtol=1e-3, atol=1e-7)
        assert min_cosine(ours["components"], ref.components_) > 0.9999


def test_randomized_solver_with_one_power_iteration_is_approximate_like_sklearns():
    # A flat spectrum and one power iteration: both randomized solvers miss part of the top
    # subspace by about as much (means over 4 seeds), well below the exact solver's variance.
    x = spectrum(2000, 64, 0.3, seed=1)
    rows = x[:, 0].double().numpy()
    exact = PCA(n_components=8, svd_solver="full").fit(rows).explained_variance_.sum()
    sk = np.mean([PCA(n_components=8, svd_solver="randomized", iterated_power=1, random_state=s).fit(rows)
                  .explained_variance_.sum() for s in range(4)])
    ours = np.mean([fitted(x, pca={"solver": "randomized", "power_iterations": 1, "random_state": s})[0]
                    .pca(0)["explained_variance"].sum().item() for s in range(4)])
    assert sk < 0.96 * exact and ours < 0.96 * exact
    assert ours == pytest.approx(sk, rel=0.025)


def test_randomized_solver_streamed_equals_in_memory():
    x = spectrum(900, 32, 0.6, seed=4, L=3)
    a, _ = fitted(x, d=6, pca={"solver": "randomized"})
    b = pylamia.PaletteQuantizer(pca_dim=6, num_codes=8, seed=0, pca={"solver": "randomized"})
    b.fit(x, chunk_items=100)
    for j in range(3):
        torch.testing.assert_close(a.pca(j)["components"], b.pca(j)["components"], rtol=1e-4, atol=1e-5)


def test_pca_sample_fits_the_pca_on_max_items_items():
    x = spectrum(3000, 48, 0.6, seed=5, L=2)
    full, _ = fitted(x)
    same, report_same = fitted(x, pca={"max_items": 3000})  # >= n: all items, the same quantizer
    assert torch.equal(full.training_codes(), same.training_codes()) and report_same["pca_items"] == 3000
    sampled, report = fitted(x, pca={"max_items": 600, "random_state": 2})
    assert report["pca_items"] == 600
    for j in range(2):
        # The PCA of 600 of the rows: not the full one, but its subspace keeps nearly all of the
        # variance the exact subspace captures on all 3,000 rows (and never more).
        ev_full, ev = full.pca(j)["explained_variance"], sampled.pca(j)["explained_variance"]
        assert not torch.equal(ev_full, ev)
        rows = x[:, j].double().numpy()
        centred = rows - rows.mean(0)
        captured = (centred @ sampled.pca(j)["components"].double().numpy().T).var(0, ddof=1).sum()
        exact = PCA(n_components=8, svd_solver="full").fit(rows).explained_variance_.sum()
        assert 0.97 * exact < captured <= exact * (1 + 1e-6)
    # Every item is still projected and coded.
    assert sampled.training_codes().shape == (3000, 2)
    assert torch.equal(sampled.encode(x), sampled.training_codes())


def test_kmeans_on_a_sample_assigns_every_point_to_its_nearest_centroid():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 6, generator=g) * 4
    x = (centres[torch.randint(0, 10, (5000,), generator=g)] + torch.randn(5000, 6, generator=g)).contiguous()
    full = pylamia.kmeans(x, num_codes=10, iterations=30, seed=0)
    sampled = pylamia.kmeans(x, num_codes=10, iterations=30, seed=0, max_points_per_centroid=40)
    assert sampled["inertia"] <= full["inertia"] * 1.02
    c = sampled["centroids"]
    nearest = torch.cdist(x.double(), c.double()).argmin(1)
    assert torch.equal(sampled["assignment"].long(), nearest)
    direct = ((x.double() - c.double()[nearest]) ** 2).sum().item()
    assert direct == pytest.approx(sampled["inertia"], rel=1e-5)
    assert not torch.equal(sampled["centroids"], full["centroids"])  # fitted on 400 points, not all
