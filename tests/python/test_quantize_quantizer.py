"""pylamia quantize: the palette quantizer, K-Means and PCA against sklearn; tables; errors."""
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score

import pylamia


def clustered(n, L, D, C, seed, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(L, C, D, generator=g)
    labels = torch.randint(0, C, (n, L), generator=g)
    x = torch.stack([centres[j][labels[:, j]] for j in range(L)], dim=1)
    return (x + noise * torch.randn(n, L, D, generator=g)).float().contiguous(), labels


def test_pca_explained_variance_matches_sklearn():
    x, _ = clustered(400, 2, 24, 10, seed=1, noise=0.5)
    q = pylamia.PaletteQuantizer(pca_dim=6, num_codes=8, seed=0)
    report = q.fit(x)
    for j in range(2):
        ref = PCA(n_components=6, svd_solver="full").fit(x[:, j].double().numpy())
        np.testing.assert_allclose(report["positions"][j]["explained_variance_ratio"],
                                   ref.explained_variance_ratio_, rtol=1e-4, atol=1e-7)
        pca = q.pca(j)
        np.testing.assert_allclose(pca["explained_variance"].numpy(), ref.explained_variance_, rtol=1e-4)
        # Same subspace: components agree up to sign.
        dots = np.abs(np.sum(pca["components"].double().numpy() * ref.components_, axis=1))
        np.testing.assert_allclose(dots, np.ones(6), atol=1e-3)


@pytest.mark.parametrize("k,n_init", [(8, 4), (20, 2)])
def test_kmeans_inertia_within_one_percent_of_sklearn(k, n_init):
    x, _ = clustered(1500, 1, 10, 12, seed=k, noise=0.6)
    data = x[:, 0].contiguous()
    ours = pylamia.kmeans(data, num_codes=k, iterations=100, restarts=n_init, seed=0)
    ref = KMeans(n_clusters=k, n_init=n_init, max_iter=100, random_state=0).fit(data.double().numpy())
    assert ours["inertia"] <= ref.inertia_ * 1.01
    assert ours["inertia"] >= ref.inertia_ * 0.90  # not a different problem
    # The reported inertia is the one of the returned centroids and assignment.
    c = ours["centroids"].double()
    direct = ((data.double() - c[ours["assignment"]]) ** 2).sum().item()
    assert direct == pytest.approx(ours["inertia"], rel=1e-5)
    for run in ours["objective"]:
        assert all(b <= a * (1 + 1e-6) for a, b in zip(run, run[1:]))


def test_quantizer_inertia_matches_sklearn_kmeans_on_the_reduced_vectors():
    x, _ = clustered(800, 1, 16, 16, seed=5, noise=0.4)
    q = pylamia.PaletteQuantizer(pca_dim=8, num_codes=16, iterations=100, restarts=3)
    report = q.fit(x)
    reduced = PCA(n_components=8, svd_solver="full").fit_transform(x[:, 0].double().numpy())
    ref = KMeans(n_clusters=16, n_init=3, max_iter=100, random_state=0).fit(reduced)
    assert report["positions"][0]["inertia"] <= ref.inertia_ * 1.01


def test_nmi_equals_sklearn():
    g = np.random.default_rng(0)
    for n, ka, kb in [(50, 3, 4), (500, 10, 7), (200, 1, 5), (30, 30, 2)]:
        a = g.integers(0, ka, n)
        b = (a + g.integers(0, kb, n)) % max(kb, 1)
        ours = pylamia.normalized_mutual_info(torch.from_numpy(a), torch.from_numpy(b))
        assert ours == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)
    const = torch.zeros(10, dtype=torch.int64)
    assert pylamia.normalized_mutual_info(const, const) == normalized_mutual_info_score(const, const) == 1.0


def test_diagnostics_nmi_with_labels_equals_sklearn():
    x, labels = clustered(300, 3, 12, 6, seed=2, noise=0.2)
    q = pylamia.PaletteQuantizer(pca_dim=4, num_codes=6, restarts=2)
    q.fit(x)
    codes = q.training_codes()
    d = pylamia.diagnose_codes(codes, q.codebook_sizes, labels=labels, label_names=["a", "b", "c"])
    for j in range(3):
        for a in range(3):
            assert d["nmi_with_labels"][j][a] == pytest.approx(
                normalized_mutual_info_score(labels[:, a].numpy(), codes[:, j].numpy()), abs=1e-12)
        for i in range(3):
            assert d["nmi_between_positions"][i][j] == pytest.approx(
                normalized_mutual_info_score(codes[:, i].numpy(), codes[:, j].numpy()), abs=1e-12)
    # Well separated clusters: each position's codes recover its aspect.
    for j in range(3):
        assert d["nmi_with_labels"][j][j] > 0.95
    assert d["positions"][0]["codebook_size"] == 6
    assert 0 < d["table"]["collision_rate"] < 1


def test_quantizer_save_load_encode(tmp_path):
    x, _ = clustered(200, 2, 16, 8, seed=3)
    q = pylamia.PaletteQuantizer(pca_dim=4, num_codes=8)
    q.fit(x)
    q.save(tmp_path / "q.bin")
    r = pylamia.PaletteQuantizer.load(str(tmp_path / "q.bin"))
    assert torch.equal(r.encode(x), q.encode(x))
    assert torch.equal(q.encode(x), q.training_codes())
    assert r.options.pca_dim == 4 and r.options.kmeans.num_codes == 8 and r.codebook_sizes == [8, 8]


def test_table_round_trip(tmp_path):
    codes = torch.tensor([[1, 2], [0, 1], [1, 2], [0, 3], [0, 3], [1, 2]])
    t = pylamia.SemanticIdTable.from_codes(codes, [4, 4])
    # colliding items: index tokens 0, 1, 2 in the order of a seeded hash of the item (not item order)
    assert sorted(t.id(i)[2] for i in (0, 2, 5)) == [0, 1, 2] and t.id(5)[:2] == [1, 2]
    assert {t.id(3)[2], t.id(4)[2]} == {0, 1}
    assert t.item(t.id(4)) == 4
    assert t.find([9, 9, 9]) is None
    assert t.allowed_next([1, 2]) == [0, 1, 2]
    assert sorted(t.items_with_prefix([0])) == [1, 3, 4]
    assert t.num_colliding_items == 5
    t.save(tmp_path / "t.sid")
    r = pylamia.SemanticIdTable.load(tmp_path / "t.sid")
    assert r == t and len(r) == 6
    assert torch.equal(r.ids(), t.ids())
    assert "5\t1 2 %d" % t.id(5)[2] in r.dump()
    assert r.add_item([1, 2]) == 6 and r.id(6) == [1, 2, 3]


def test_errors_arrive_as_value_error_and_os_error(tmp_path):
    x, _ = clustered(50, 2, 8, 4, seed=4)
    q = pylamia.PaletteQuantizer(pca_dim=4, num_codes=8)
    bad = x.clone()
    bad[7, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="item 7"):
        q.fit(bad)
    with pytest.raises(ValueError, match="pca_dim"):
        pylamia.PaletteQuantizer(pca_dim=9, num_codes=8).fit(x)
    with pytest.raises(ValueError, match="at least num_codes"):
        pylamia.PaletteQuantizer(pca_dim=4, num_codes=64).fit(x)
    with pytest.raises(ValueError, match="float32"):
        q.fit(x.double())
    q.fit(x)
    with pytest.raises(ValueError, match="as fitted"):
        q.encode(torch.randn(3, 2, 9))
    with pytest.raises(OSError):
        pylamia.SemanticIdTable.load(tmp_path / "missing.sid")
    (tmp_path / "junk.sid").write_bytes(b"not a table at all")
    with pytest.raises(ValueError, match="bad magic"):
        pylamia.SemanticIdTable.load(tmp_path / "junk.sid")
    with pytest.raises(IndexError):
        pylamia.SemanticIdTable.from_codes(torch.tensor([[0, 1]])).item([5, 5, 5])
    with pytest.raises(ValueError, match="init"):
        pylamia.PaletteQuantizer(init="kmeans--")


def test_fit_from_a_palette_file_streamed_in_chunks(tmp_path):
    x, _ = clustered(700, 3, 16, 12, seed=5)
    pylamia.save_palettes(tmp_path / "p.bin", [f"i{i}" for i in range(700)], x)
    reader = pylamia.PaletteFileReader(tmp_path / "p.bin")
    assert (len(reader), reader.palette_size, reader.dim) == (700, 3, 16)
    assert reader.item_ids[:2] == ["i0", "i1"]
    assert torch.equal(reader.read(10, 20), x[10:20])
    in_memory = pylamia.PaletteQuantizer(pca_dim=6, num_codes=16, seed=1)
    in_memory.fit(x)
    streamed = pylamia.PaletteQuantizer(pca_dim=6, num_codes=16, seed=1)
    report = streamed.fit(reader, chunk_items=64)
    assert report["num_items"] == 700
    assert torch.equal(streamed.training_codes(), in_memory.training_codes())
    for j in range(3):
        # Each position's PCA is that position's alone (sklearn on the same rows).
        ref = PCA(n_components=6, svd_solver="full").fit(x[:, j].double().numpy())
        np.testing.assert_allclose(streamed.pca(j)["explained_variance"].numpy(), ref.explained_variance_, rtol=1e-4)
        torch.testing.assert_close(streamed.centroids(j), in_memory.centroids(j), rtol=1e-4, atol=1e-5)
    assert torch.equal(streamed.encode(reader, chunk_items=100), in_memory.encode(x))

    # Any object with num_items, palette_size, dim and read(begin, end) is a source.
    class Slices:
        num_items, palette_size, dim = 700, 3, 16

        def __init__(self):
            self.calls = 0

        def read(self, begin, end):
            self.calls += 1
            return x[begin:end]

    slices = Slices()
    assert torch.equal(in_memory.encode(slices, chunk_items=350), in_memory.encode(x))
    assert slices.calls == 2
    with pytest.raises(ValueError, match="missing 'num_items'"):
        in_memory.encode(object())


def test_palette_file_reader_checks_the_file(tmp_path):
    x, _ = clustered(50, 2, 8, 4, seed=6)
    pylamia.save_palettes(tmp_path / "p.bin", [str(i) for i in range(50)], x)
    data = bytearray((tmp_path / "p.bin").read_bytes())
    data[-10] ^= 0x40
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="crc32"):
        pylamia.PaletteFileReader(tmp_path / "bad.bin")
    unchecked = pylamia.PaletteFileReader(tmp_path / "bad.bin", verify_checksum=False)
    with pytest.raises(ValueError, match="checksum mismatch"):
        unchecked.verify_checksum()
    with pytest.raises(IndexError):
        unchecked.read(40, 51)
    with pytest.raises(OSError):
        pylamia.PaletteFileReader(tmp_path / "missing.bin")
