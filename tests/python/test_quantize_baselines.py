"""pylamia quantize: residual K-Means, RQ-VAE and TF-IDF embeddings from Python."""
import torch

import pylamia


def blobs(n, D, C, seed, noise=0.2):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, D, generator=g)
    labels = torch.randint(0, C, (n,), generator=g)
    return (centres[labels] + noise * torch.randn(n, D, generator=g)).float(), labels


def test_residual_kmeans_table():
    x, _ = blobs(300, 12, 8, seed=1)
    table = pylamia.residual_kmeans(x, num_levels=3, num_codes=8, seed=2)
    assert table.num_items == 300 and table.id_length == 4
    assert table.codebook_sizes[:3] == [8, 8, 8]
    rk = pylamia.ResidualKMeans(num_levels=2, num_codes=8)
    report = rk.fit(x)
    assert report["residual_mse"][1] < report["residual_mse"][0]
    assert torch.equal(rk.encode(x), rk.training_codes())


def test_rq_vae_trains_and_builds_a_table():
    x, labels = blobs(400, 16, 8, seed=3)
    model = pylamia.RqVae(16, hidden_dims=[32], latent_dim=8, num_levels=2, num_codes=8, seed=1)
    report = model.train(x, batch_size=100, max_epochs=25, learning_rate=3e-3, seed=1)
    assert report["reconstruction_loss"][-1] < report["reconstruction_loss"][0]
    assert min(report["utilization"]) > 0.5
    table = model.table(x)
    assert table.num_items == 400
    d = pylamia.diagnose_table(table, labels=labels[:, None])
    assert d["nmi_with_labels"][0][0] > 0.5


def test_tfidf_svd_embeddings():
    texts = [f"item {i} " + ["red shirt cotton", "blue jeans denim", "green hat wool"][i % 3] for i in range(24)]
    e = pylamia.tfidf_svd_embeddings(texts, dim=3)
    assert e.shape == (24, 3) and e.dtype == torch.float32
    e = torch.nn.functional.normalize(e, dim=1)
    assert (e[0] @ e[3]).item() > (e[0] @ e[1]).item()
    assert pylamia.tokenize_words("Red, SHIRT!") == ["red", "shirt"]


def test_tfidf_svd_matches_sklearn():
    import numpy as np
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    topics = [[f"t{t}w{i}" for i in range(8)] for t in range(5)]
    noise = [f"n{i}" for i in range(40)]
    texts = [" ".join(list(rng.choice(topics[i % 5], 6)) + list(rng.choice(noise, 3))) for i in range(100)]
    e = pylamia.tfidf_svd_embeddings(texts, dim=5)
    X = TfidfVectorizer().fit_transform(texts)
    svd = TruncatedSVD(5, algorithm="arpack").fit(X)
    np.testing.assert_allclose(e.double().norm(dim=0).numpy(), svd.singular_values_, rtol=1e-4)
    np.testing.assert_allclose(np.abs(e.numpy()), np.abs(svd.transform(X)), atol=1e-3)


def test_tfidf_svd_from_a_catalog():
    catalog = pylamia.Catalog(["title", "genre"])
    for i in range(12):
        catalog.add(f"i{i}", [f"Title {i}", ["rock guitar", "jazz piano", "folk banjo"][i % 3]])
    e = pylamia.tfidf_svd_embeddings(catalog, dim=3)
    texts = [" ".join(catalog.values(i)) for i in range(12)]
    assert torch.allclose(e, pylamia.tfidf_svd_embeddings(texts, dim=3))
