"""MLC (Ding et al., ICCV 2023): coding rates against NumPy, Sinkhorn invariants, planted manifolds."""

import pickle
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

from graphkit import MLC, ManifoldClustering, make_union_of_manifolds
from graphkit.metrics import clustering_accuracy, clustering_scores, subspace_spectra
from graphkit.mlc import (MLCNetwork, coding_rate, compressed_coding_rate, log_sinkhorn, membership, rate_reduction,
                          spectral_labels, symmetric_log_sinkhorn)
from tensorkit.validation import NonFiniteResultError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def small_model(**kwargs):
    params = dict(n_clusters=3, n_components=16, hidden=128, eta=0.3, n_epochs=40, warmup_epochs=10, batch_size=100,
                  random_state=0, device="cpu", verbose=0)
    params.update(kwargs)
    return ManifoldClustering(**params)


# -- coding rates against a direct NumPy computation ----------------------------------------------

def numpy_rate_reduction(Z, G, eps):
    """ΔR straight from the paper's formulas, columns as samples, with numpy.linalg.slogdet."""
    d, n = Z.T.shape
    Zc = Z.T  # d x n
    R = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps) * Zc @ Zc.T)[1]
    Rc = 0.0
    for j in range(G.shape[0]):
        tr = G[j].sum()
        Rc += tr / (2 * n) * np.linalg.slogdet(np.eye(d) + d / (tr * eps) * Zc @ np.diag(G[j]) @ Zc.T)[1]
    return R - Rc, R, Rc


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rate_reduction_equals_numpy(device, dtype):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((40, 6))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    G = rng.random((40, 40))
    G /= G.sum(1, keepdims=True)
    expected = numpy_rate_reduction(Z, G, eps=0.1)
    terms = rate_reduction(torch.as_tensor(Z, dtype=dtype, device=device), torch.as_tensor(G, dtype=dtype, device=device),
                           eps=0.1)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for name, value in zip(("delta", "R", "Rc"), expected):
        assert float(terms[name]) == pytest.approx(value, rel=tol, abs=tol)
        assert terms[name].device.type == torch.device(device).type


def test_compressed_rate_with_hard_memberships_is_mcr2():
    """A 0/1 Γ with one row per cluster gives MCR²'s R_c: sum of per-cluster rates weighted by n_k/n."""
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((30, 5))
    labels = np.repeat([0, 1, 2], 10)
    G = np.eye(3)[labels].T  # 3 x 30
    z = torch.as_tensor(Z)
    per_cluster = sum(len(Z[labels == k]) / 30 * float(coding_rate(z[labels == k], eps=0.5)) for k in range(3))
    assert float(compressed_coding_rate(z, torch.as_tensor(G), eps=0.5)) == pytest.approx(per_cluster, rel=1e-6)


def test_rate_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    z = torch.tensor(rng.standard_normal((12, 4)), requires_grad=True)
    g = torch.as_tensor(rng.random((12, 12)))
    torch.autograd.gradcheck(lambda z: rate_reduction(z, g, eps=0.3)["delta"], (z,))


def test_compressed_rate_checks_shapes():
    with pytest.raises(ValueError, match="gamma must have shape"):
        compressed_coding_rate(torch.zeros(5, 3), torch.zeros(5, 4))


# -- Sinkhorn -----------------------------------------------------------------------------------

def test_sinkhorn_is_doubly_stochastic_and_non_negative(device):
    gen = torch.Generator().manual_seed(0)
    c = torch.nn.functional.normalize(torch.randn(200, 8, generator=gen), dim=1).to(device)
    gamma = membership(c, eta=0.1, n_iter=500, tol=1e-6)
    assert gamma.device.type == torch.device(device).type
    assert bool((gamma >= 0).all())
    assert torch.allclose(gamma.sum(0), torch.ones(200, device=device), atol=1e-4)
    assert torch.allclose(gamma.sum(1), torch.ones(200, device=device), atol=1e-4)


def test_log_sinkhorn_survives_tiny_entropy():
    """exp(C Cᵀ / η) overflows float32 for η = 1e-3; the log domain does not."""
    gen = torch.Generator().manual_seed(1)
    c = torch.nn.functional.normalize(torch.randn(50, 4, generator=gen), dim=1)
    log_gamma = log_sinkhorn(c @ c.T / 1e-3, n_iter=50)
    assert bool(torch.isfinite(log_gamma).all())
    assert torch.allclose(log_gamma.exp().sum(0), torch.ones(50), atol=1e-4)


def test_sinkhorn_matches_its_fixed_point():
    """At convergence Γ = diag(eᶠ) K diag(eᵍ) with the potentials it returns."""
    gen = torch.Generator().manual_seed(2)
    kernel = torch.rand(30, 30, generator=gen, dtype=torch.float64)
    log_gamma, f, g = log_sinkhorn(kernel, n_iter=1000, tol=1e-12, return_potentials=True)
    direct = torch.diag(f.exp()) @ kernel.exp() @ torch.diag(g.exp())
    assert torch.allclose(log_gamma.exp(), direct)
    assert torch.allclose(direct.sum(1), torch.ones(30, dtype=torch.float64), atol=1e-10)


def test_spectral_labels_recover_a_block_diagonal_membership():
    blocks = np.kron(np.eye(3), np.ones((10, 10))) / 10
    perm = np.random.default_rng(0).permutation(30)
    labels = spectral_labels(torch.as_tensor(blocks[perm][:, perm]), 3, random_state=0)
    assert clustering_accuracy(np.repeat([0, 1, 2], 10)[perm], labels) == 1.0


# -- planted structure --------------------------------------------------------------------------

def union_data(kind):
    if kind == "subspaces":
        return make_union_of_manifolds(n_samples=300, n_manifolds=3, n_features=50, kind="subspaces", dim=2,
                                       noise=0.02, random_state=0)
    return make_union_of_manifolds(n_samples=300, n_manifolds=3, n_features=50, kind="curves", noise=0.02,
                                   random_state=0)


@pytest.mark.parametrize("kind", ["subspaces", "curves"])
def test_union_of_manifolds_is_clustered_and_linearized(kind):
    data = union_data(kind)
    model = small_model().fit(data.X)
    assert clustering_accuracy(data.labels, model.labels_) > 0.95
    assert clustering_accuracy(data.labels, model.predict(data.X)) > 0.95
    # each cluster's learned features span few of the 16 dimensions
    ranks = subspace_spectra(model.embedding_, data.labels, energy=0.95)["rank"]
    assert max(ranks.values()) <= 6, ranks
    np.testing.assert_allclose(np.linalg.norm(model.embedding_, axis=1), 1.0, atol=1e-5)
    # Γ on the training set is doubly stochastic, non-negative, and concentrated within clusters
    gamma = model.membership_
    assert gamma.shape == (300, 300) and (gamma >= 0).all()
    np.testing.assert_allclose(gamma.sum(0), 1.0, atol=1e-4)
    np.testing.assert_allclose(gamma.sum(1), 1.0, atol=1e-4)
    same = data.labels[:, None] == data.labels[None, :]
    assert gamma[same].sum() / gamma.sum() > 0.9
    assert [h["stage"] for h in model.history_] == ["warmup"] * 10 + ["mlc"] * 40
    assert model.history_[-1]["delta_R"] > model.history_[10]["delta_R"]


def test_curves_are_not_linear_subspaces_before_linearizing():
    """The curves' raw points need about 2-3 dimensions per cluster (a circle is not a line)."""
    data = union_data("curves")
    ranks = subspace_spectra(data.X, data.labels, energy=0.95)["rank"]
    assert min(ranks.values()) >= 2


def test_labels_are_invariant_to_permuting_rows():
    data = union_data("subspaces")
    perm = np.random.default_rng(3).permutation(len(data.X))
    first = small_model().fit(data.X).labels_
    second = small_model().fit(data.X[perm]).labels_
    assert clustering_accuracy(first[perm], second) > 0.95


def test_large_n_uses_a_subset_membership_and_assigns_the_rest():
    data = make_union_of_manifolds(n_samples=600, n_manifolds=3, n_features=50, kind="curves", noise=0.02,
                                   random_state=0)
    model = small_model(spectral_samples=200, n_epochs=20).fit(data.X)
    assert model.membership_.shape == (200, 200) and len(model.membership_index_) == 200
    assert clustering_accuracy(data.labels, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(data.X[model.membership_index_]).shape, (200,))


def test_history_records_scores_when_y_given_and_alias():
    data = union_data("curves")
    model = MLC(n_clusters=3, n_components=8, hidden=32, n_epochs=2, warmup_epochs=1, batch_size=100,
                random_state=0, device="cpu", verbose=0).fit(data.X, data.labels)
    assert {"acc", "nmi", "ari", "f1", "R", "Rc", "delta_R", "loss"} <= set(model.history_[-1])
    assert np.isnan(model.history_[0]["delta_R"]) and model.history_[0]["R"] > 0


# -- views: neighbours standing in for augmentations ----------------------------------------------

def test_view_pool_is_each_sample_and_its_nearest_neighbours():
    X = np.random.default_rng(0).normal(size=(40, 5))
    pool = small_model(n_neighbors=4)._view_pool(X, torch.device("cpu")).numpy()
    assert pool.shape == (40, 5)
    np.testing.assert_array_equal(pool[:, 0], np.arange(40))
    distances = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_array_equal(np.sort(pool[:, 1:], axis=1), np.sort(np.argsort(distances, axis=1)[:, :4], axis=1))
    assert small_model(augment=None)._view_pool(X, torch.device("cpu")) is None
    # "auto": a tenth of the average cluster, between 5 and 50
    assert [small_model(n_clusters=k)._n_neighbors(n) for n, k in ((300, 3), (40, 3), (3327, 6), (10**5, 5))] \
        == [10, 5, 50, 50]
    # fewer samples than neighbours asked for: every other sample is a neighbour
    assert small_model(n_neighbors=10)._view_pool(X[:3], torch.device("cpu")).shape == (3, 3)


def test_views_average_their_features_and_measure_agreement():
    torch.manual_seed(0)
    network = MLCNetwork(6, hidden=16, n_components=4).eval()
    x = torch.randn(12, 6)
    batch = torch.arange(12)
    model = small_model(n_views=3)
    source = SimpleNamespace(torch=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # views that are the sample itself: the plain features, in full agreement
        z, c, agreement = model._forward_views(network, x, batch.unsqueeze(1), batch, source, with_cluster=True)
        expected_z, expected_c = network(x)
        torch.testing.assert_close(z, expected_z)
        torch.testing.assert_close(c, expected_c)
        assert float(agreement) == pytest.approx(1.0)
        # views from a pool: z̄ is the normalised mean of the views' features
        pool = torch.stack([batch, (batch + 1) % 12], dim=1)
        source.torch = torch.Generator().manual_seed(0)
        z, _, agreement = model._forward_views(network, x, pool, batch, source, with_cluster=False)
        pick = torch.randint(2, (3, 12), generator=torch.Generator().manual_seed(0))
        views = network.features(x[pool[batch.expand(3, -1), pick].reshape(-1)]).view(3, 12, -1)
        mean = torch.nn.functional.normalize(views.mean(0), dim=1)
        torch.testing.assert_close(z, mean)
        torch.testing.assert_close(agreement, (views * mean).sum(-1).mean())
        assert float(agreement) < 1.0


def test_fit_with_views_records_the_invariance_term():
    data = union_data("curves")
    with_views = small_model(n_epochs=3, warmup_epochs=2).fit(data.X)
    plain = small_model(n_epochs=3, warmup_epochs=2, augment=None).fit(data.X)
    assert all(0.0 < h["invariance"] <= 1.0 for h in with_views.history_)
    assert all("invariance" not in h for h in plain.history_)
    assert not np.allclose(with_views.embedding_, plain.embedding_)


@pytest.mark.slow
def test_digits_neighbour_views_beat_kmeans_and_the_plain_objective():
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    scores = clustering_scores(y, ManifoldClustering(n_clusters=10, random_state=1, verbose=0).fit_predict(X))
    plain = clustering_scores(y, ManifoldClustering(n_clusters=10, augment=None, random_state=1,
                                                    verbose=0).fit_predict(X))
    kmeans = clustering_scores(y, KMeans(10, n_init=10, random_state=1).fit_predict(X))
    assert scores["nmi"] > 0.82 and scores["nmi"] > plain["nmi"] and scores["acc"] > kmeans["acc"] + 0.15


# -- device, torch in/out, pickling -------------------------------------------------------------

def test_runs_on_every_device_and_returns_torch_for_torch(device):
    data = union_data("curves")
    X = torch.as_tensor(data.X, dtype=torch.float32, device=device)
    model = small_model(device=device, n_epochs=5, warmup_epochs=2)
    labels = model.fit_predict(X)
    assert isinstance(labels, torch.Tensor) and labels.shape == (300,)
    z = model.transform(X)
    assert isinstance(z, torch.Tensor) and z.shape == (300, 16)
    assert isinstance(model.predict(data.X), np.ndarray)


def test_pickle_and_clone_give_identical_predictions():
    data = union_data("subspaces")
    model = small_model(n_epochs=5, warmup_epochs=2).fit(data.X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(data.X), model.predict(data.X))
    np.testing.assert_allclose(restored.transform(data.X), model.transform(data.X))
    assert clone(model).get_params() == model.get_params()


def test_same_seed_same_labels():
    data = union_data("curves")
    a = small_model(n_epochs=5, warmup_epochs=2).fit(data.X)
    b = small_model(n_epochs=5, warmup_epochs=2).fit(data.X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.embedding_, b.embedding_)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("X, params, message", [
    (np.ones((5, 3)), dict(n_clusters=6), "n_clusters=6 must not exceed"),
    (np.ones((1, 3)), dict(n_clusters=1), "1 sample"),
    (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), dict(n_clusters=2), "NaN"),
    (np.ones((5, 3)), dict(n_clusters=0), "The 'n_clusters' parameter of ManifoldClustering must be"),
    (np.ones((5, 3)), dict(n_clusters=2, eta=0.0), "The 'eta' parameter of ManifoldClustering must be"),
    (np.ones((5, 3)), dict(n_clusters=2, spectral_samples=1), "spectral_samples"),
    (np.ones((5, 3)), dict(n_clusters=2, augment="noise"), "The 'augment' parameter of ManifoldClustering must be"),
    (np.ones((5, 3)), dict(n_clusters=2, n_views=0), "The 'n_views' parameter of ManifoldClustering must be"),
    (np.ones((5, 3)), dict(n_clusters=2, n_neighbors=0), "The 'n_neighbors' parameter of ManifoldClustering must be"),
    (np.ones((5, 3)), dict(n_clusters=2, n_neighbors="all"), "The 'n_neighbors' parameter of ManifoldClustering must be"),
    (np.ones((5, 3)), dict(n_clusters=2, invariance=-1.0), "The 'invariance' parameter of ManifoldClustering must be"),
])
def test_bad_input_is_refused(X, params, message):
    with pytest.raises(ValueError, match=message):
        ManifoldClustering(verbose=0, device="cpu", **params).fit(X)


def test_new_data_must_have_the_training_width():
    data = union_data("curves")
    model = small_model(n_epochs=1, warmup_epochs=1).fit(data.X)
    with pytest.raises(ValueError, match="features"):
        model.predict(data.X[:, :10])


def test_generator_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        make_union_of_manifolds(kind="tori")
    with pytest.raises(ValueError, match="dim"):
        make_union_of_manifolds(n_features=3, dim=4)


# -- subspace metric ----------------------------------------------------------------------------

def test_subspace_spectra_finds_the_planted_dimensions():
    data = make_union_of_manifolds(n_samples=300, n_manifolds=3, n_features=20, dim=4, random_state=0)
    out = subspace_spectra(data.X, data.labels, energy=0.999)
    assert out["rank"] == {0: 4, 1: 4, 2: 4}
    for values in out["singular_values"].values():
        assert values[0] == pytest.approx(1.0) and values[4] < 1e-8
    # a full-dimensional cloud needs most of the dimensions
    noise = np.random.default_rng(0).standard_normal((200, 20))
    assert subspace_spectra(noise, np.zeros(200), energy=0.95)["rank"][0] >= 15
    with pytest.raises(ValueError, match="labels"):
        subspace_spectra(noise, np.zeros(5))


# -- real data (slow) ---------------------------------------------------------------------------

@pytest.mark.slow
def test_citeseer_features_are_clustered_well_above_chance():
    folder = DATA / "clustering" / "cite_sdcn"
    if not (folder / "cite_features.npz").exists():
        pytest.skip(f"{folder} is absent")
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    x = np.load(folder / "cite_features.npz")["x"].astype(np.float64)
    y = np.loadtxt(folder / "cite_label.txt", dtype=np.int64)
    X = normalize(TruncatedSVD(100, random_state=0).fit_transform(TfidfTransformer().fit_transform(x)))
    model = ManifoldClustering(n_clusters=6, n_epochs=10, warmup_epochs=3, random_state=0, verbose=0).fit(X)
    plain = ManifoldClustering(n_clusters=6, n_epochs=10, warmup_epochs=3, augment=None, random_state=0,
                               verbose=0).fit(X)
    scores, plain_scores = clustering_scores(y, model.labels_), clustering_scores(y, plain.labels_)
    assert plain_scores["acc"] > 0.35  # six classes: chance is about 0.21
    # views from the 50 nearest neighbours ("auto"), though only 38% of the 10 nearest share the class
    assert scores["acc"] > 0.5 and scores["nmi"] > plain_scores["nmi"]
    gamma = model.membership_
    np.testing.assert_allclose(gamma.sum(1), 1.0, atol=1e-4)

def test_symmetric_sinkhorn_agrees_with_alternating_sinkhorn():
    gen = torch.Generator().manual_seed(4)
    c = torch.nn.functional.normalize(torch.randn(80, 5, generator=gen, dtype=torch.float64), dim=1)
    log_kernel = c @ c.T / 0.2
    symmetric, _ = symmetric_log_sinkhorn(log_kernel, tol=1e-10)
    alternating = log_sinkhorn(log_kernel, n_iter=5000, tol=1e-10)
    assert torch.allclose(symmetric.exp(), symmetric.exp().T)
    assert torch.allclose(symmetric.exp(), alternating.exp(), atol=1e-8)


# -- issue 32: complex input, overflowing scales and diverging training get clear errors ----------

def test_complex_features_and_a_complex_dtype_are_refused():
    X = union_data("curves").X
    for complex_X in (X + 1j, torch.tensor(X) * 1j):
        with pytest.raises(TypeError, match="X must hold real numbers"):
            small_model(n_epochs=1, warmup_epochs=1).fit(complex_X)
    for dtype in ("complex64", torch.complex128):
        with pytest.raises(ValueError, match="dtype must be a real floating dtype"):
            small_model(n_epochs=1, warmup_epochs=1, dtype=dtype).fit(X)


def test_features_whose_squared_distances_overflow_are_refused_naming_X():
    """In float32, X * 1e20 overflowed BatchNorm's variances and every sample got the same features."""
    X = union_data("curves").X
    for scale, dtype in ((1e20, "float32"), (1e200, "float64")):
        with pytest.raises(ValueError, match=r"X holds values up to .*overflow .*: scale X"):
            small_model(n_epochs=1, warmup_epochs=1, dtype=dtype).fit(X * scale)
    fitted = small_model(n_epochs=1, warmup_epochs=1).fit(X)
    for method in (fitted.predict, fitted.transform):
        with pytest.raises(ValueError, match="scale X"):
            method(X * 1e20)


def test_diverging_training_raises_instead_of_returning_a_broken_network():
    """lr=1e10 left inf in BatchNorm's running variances while the returned features looked finite."""
    X = union_data("curves").X
    with pytest.raises(NonFiniteResultError, match="MLC network's .*running_var.*lower lr"):
        small_model(n_epochs=3, warmup_epochs=0, lr=1e10, augment=None).fit(X)
