import pickle

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import normalize as sk_normalize
from sklearn.preprocessing import scale as sk_scale
from sklearn.random_projection import SparseRandomProjection

from graphkit import FastRP, Graph
from graphkit.fastrp import draw_projection_entries, fastrp_embed, segment_product, transition_tensor
from tensorkit.validation import NonFiniteResultError


def planted_partition(sizes=(40, 40, 40), p_in=0.3, p_out=0.01, seed=0):
    graph = nx.stochastic_block_model(list(sizes), [[p_in if i == j else p_out for j in range(len(sizes))]
                                                     for i in range(len(sizes))], seed=seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return nx.to_scipy_sparse_array(graph, format="csr", dtype=float), labels


def dense_fastrp(adjacency, dim, weights, beta, seed, self_influence=0.0, features_block=None,
                 normalize=True, standardize=True, projection=None):
    """FastRP written out densely in NumPy, step by step as the paper states it.

    R is scikit-learn's SparseRandomProjection draw for ``seed`` unless ``projection`` gives it.
    """
    A = np.asarray(adjacency.todense(), dtype=np.float64)
    n = A.shape[0]
    degree = A.sum(axis=1)
    M = np.divide(A, degree[:, None], out=np.zeros_like(A), where=degree[:, None] > 0)
    n_identity = dim - (0 if features_block is None else features_block.shape[1])
    if projection is None:
        R = SparseRandomProjection(n_components=n_identity, random_state=seed).fit(np.zeros((1, n))).components_
        R = np.asarray(R.todense()).T
    else:
        R = projection
    R = R * np.where(degree > 0, degree, 1.0)[:, None] ** beta
    if features_block is not None:
        R = np.hstack([R, features_block])

    def norm(U):
        if not normalize:
            return U
        lengths = np.linalg.norm(U, axis=1, keepdims=True)
        return U / np.where(lengths == 0, 1, lengths)

    total = self_influence * norm(R)
    U = R
    for w in weights:
        U = M @ U
        total = total + w * norm(U)
    if standardize:
        std = total.std(axis=0)
        total = (total - total.mean(axis=0)) / np.where(std == 0, 1, std)
    return total


def test_matches_dense_reference_float64(device):
    adjacency, _ = planted_partition()
    weights = (0.0, 0.5, 1.0, 6.67)
    model = FastRP(n_components=24, iteration_weights=weights, normalization_strength=-0.64,
                   random_state=42, dtype="float64", device=device, sampler="sklearn").fit(adjacency)
    expected = dense_fastrp(adjacency, 24, weights, -0.64, 42)
    np.testing.assert_allclose(model.embedding_, expected, rtol=1e-9, atol=1e-9)


def test_matches_authors_pipeline():
    """The authors' steps with scikit-learn objects: projection fitted on M, transform, normalize, scale."""
    adjacency, _ = planted_partition(seed=3)
    A = sp.csc_matrix(adjacency)
    n = A.shape[0]
    degree = np.asarray(A.sum(axis=1)).ravel()
    M = sp.diags(1.0 / degree) @ A
    transformer = SparseRandomProjection(n_components=32, random_state=42)
    fitted = transformer.fit(M)
    fitted.components_ = fitted.components_ @ sp.diags(degree ** -0.5)
    U = transformer.transform(M)
    iterates = [U]
    for _ in range(3):
        U = M @ U
        iterates.append(U)
    weights = [0.0, 0.0, 1.0, 6.67]
    total = sum(w * sk_normalize(np.asarray(sp.csr_matrix(u).todense()), norm="l2", axis=1)
                for w, u in zip(weights, iterates))
    expected = sk_scale(total)
    ours = FastRP(n_components=32, iteration_weights=weights, normalization_strength=-0.5,
                  random_state=42, dtype="float64", sampler="sklearn").fit_transform(adjacency)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


def test_default_sampler_matches_dense_reference_with_its_projection():
    adjacency, _ = planted_partition()
    n = adjacency.shape[0]
    rows, cols, values = draw_projection_entries(n, 24, None, 9)
    R = np.zeros((n, 24))
    R[rows.numpy(), cols.numpy()] = values.numpy()
    expected = dense_fastrp(adjacency, 24, (0, 1, 1, 3), -0.5, None, projection=R)
    ours = FastRP(n_components=24, iteration_weights=(0, 1, 1, 3), normalization_strength=-0.5,
                  random_state=9, dtype="float64").fit_transform(adjacency)
    np.testing.assert_allclose(ours, expected, atol=1e-9)


@pytest.mark.parametrize("density", [None, 0.05, 1.0])
def test_torch_sampler_draws_the_sparse_random_projection_law(density):
    n, d = 4000, 64
    s = 1 / np.sqrt(n) if density is None else density
    rows, cols, values = draw_projection_entries(n, d, density, seed=0)
    flat = rows * d + cols
    assert flat.unique().numel() == flat.numel()  # no entry drawn twice
    assert int(rows.min()) >= 0 and int(rows.max()) < n and int(cols.max()) < d
    count, expected = flat.numel(), n * d * s
    assert abs(count - expected) <= 5 * np.sqrt(expected * (1 - s)) + 1e-9
    magnitude = np.sqrt(1 / (s * d))
    np.testing.assert_allclose(values.abs().numpy(), magnitude)
    positives = int((values > 0).sum())
    assert abs(positives - count / 2) <= 5 * np.sqrt(count / 4)
    per_column = np.bincount(cols.numpy(), minlength=d)  # spread evenly over the columns
    assert per_column.min() > 0 or s * n < 5
    R = torch.zeros(n, d, dtype=torch.float64)
    R[rows, cols] = values
    assert abs(float((R ** 2).sum(dim=1).mean()) - 1.0) < 0.05  # E ||row||^2 = 1, as for sklearn's
    again = draw_projection_entries(n, d, density, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((rows, cols, values), again))
    other = draw_projection_entries(n, d, density, seed=1)
    assert not (other[0].numel() == rows.numel() and torch.equal(other[1], cols) and torch.equal(other[0], rows)) \
        or density == 1.0


@pytest.mark.parametrize("weights, self_influence", [
    ((0.0, 0.0, 1.0, 6.67), 0.0),   # one pass, two kept iterates
    ((1.0, 0.0, 2.0), 0.5),         # one pass, the projection itself kept
    ((1.0, 1.0, 1.0, 1.0), 0.3),    # five kept iterates: the two-pass path
    ((0.0, 0.0), 0.0),              # nothing kept
])
@pytest.mark.parametrize("block_columns", [1, 7, 32, 70])
def test_blocked_core_matches_dense_formula(weights, self_influence, block_columns, device):
    adjacency, _ = planted_partition(sizes=(20, 25))
    n, d = adjacency.shape[0], 70
    rng = np.random.default_rng(1)
    R = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.2)
    A = adjacency.toarray()
    M = A / A.sum(axis=1, keepdims=True)
    expected = self_influence * R / np.linalg.norm(R, axis=1, keepdims=True)
    U = R
    for w in weights:
        U = M @ U
        expected = expected + w * U / np.linalg.norm(U, axis=1, keepdims=True)
    transition = transition_tensor(adjacency, device=device, dtype=torch.float64)
    total, history = fastrp_embed(transition, torch.tensor(R, device=device), weights, self_influence,
                                  block_columns=block_columns)
    np.testing.assert_allclose(total.cpu().numpy(), expected, atol=1e-10)
    np.testing.assert_allclose([h["mean_row_norm"] for h in history],
                               [np.linalg.norm(np.linalg.matrix_power(M, k) @ R, axis=1).mean()
                                for k in range(1, len(weights) + 1)], rtol=1e-10)


def test_float32_close_to_float64():
    adjacency, _ = planted_partition()
    kwargs = dict(n_components=32, iteration_weights=(0, 1, 1, 2), normalization_strength=-0.3, random_state=1)
    e32 = FastRP(dtype="float32", **kwargs).fit(adjacency).embedding_
    e64 = FastRP(dtype="float64", **kwargs).fit(adjacency).embedding_
    assert e32.dtype == np.float32
    np.testing.assert_allclose(e32, e64, atol=2e-4)


def test_recovers_planted_communities(device):
    adjacency, labels = planted_partition(sizes=(50, 50, 50), p_in=0.2, p_out=0.01)
    embedding = FastRP(n_components=64, iteration_weights=(0, 1, 1), random_state=0, device=device).fit_transform(adjacency)
    predicted = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(embedding)
    assert adjusted_rand_score(labels, predicted) > 0.95


def test_same_seed_same_embedding_other_seed_differs():
    adjacency, _ = planted_partition()
    first = FastRP(n_components=16, random_state=7).fit_transform(adjacency)
    again = FastRP(n_components=16, random_state=7).fit_transform(adjacency)
    other = FastRP(n_components=16, random_state=8).fit_transform(adjacency)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.1


def test_same_embedding_on_every_device(device):
    adjacency, _ = planted_partition()
    on_cpu = FastRP(n_components=16, random_state=5, device="cpu").fit_transform(adjacency)
    on_device = FastRP(n_components=16, random_state=5, device=device).fit_transform(adjacency)
    np.testing.assert_allclose(on_device, on_cpu, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_segment_product_matches_the_sparse_product_over_any_chunking(dtype):
    rng = np.random.default_rng(3)
    adjacency = sp.random(120, 120, density=0.05, format="lil", random_state=3)
    adjacency[:4] = 0  # empty rows first, inside and last
    adjacency[50:60] = 0
    adjacency[-3:] = 0
    transition = transition_tensor(adjacency.tocsr(), dtype=dtype)
    dense = torch.as_tensor(rng.standard_normal((120, 6)), dtype=dtype)
    expected = torch.mm(transition, dense)
    for max_elements in (1, 5, 6, 37, 1 << 24):
        out = torch.full_like(expected, float("nan"))
        segment_product(transition, dense, out, max_elements=max_elements)
        torch.testing.assert_close(out, expected)
    empty = transition_tensor(sp.csr_matrix((7, 120)), dtype=dtype)
    assert torch.equal(segment_product(empty, dense, torch.ones(7, 6, dtype=dtype)), torch.zeros(7, 6, dtype=dtype))


def test_deterministic_mode_gives_bitwise_equal_fits(device):
    adjacency, _ = planted_partition()
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        runs = [FastRP(n_components=16, random_state=5, device=device).fit(adjacency) for _ in range(2)]
        new_rows = [model.transform(adjacency[:5]) for model in runs]
    finally:
        torch.use_deterministic_algorithms(previous)
    np.testing.assert_array_equal(runs[0].embedding_, runs[1].embedding_)
    np.testing.assert_array_equal(new_rows[0], new_rows[1])
    default = FastRP(n_components=16, random_state=5, device=device).fit(adjacency).embedding_
    np.testing.assert_allclose(runs[0].embedding_, default, atol=1e-4)


def test_weighted_and_directed_match_dense_reference():
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, 50, 400), rng.integers(0, 50, 400)
    keep = src != dst
    weights = rng.uniform(0.5, 3.0, keep.sum())
    directed = Graph.from_edges(src[keep], dst[keep], weights, directed=True, n_nodes=50, duplicates="sum")
    undirected = Graph.from_edges(src[keep], dst[keep], weights, directed=False, n_nodes=50, duplicates="sum")
    for graph in (directed, undirected):
        model = FastRP(n_components=12, iteration_weights=(1, 1, 1), normalization_strength=0.5,
                       random_state=3, dtype="float64", sampler="sklearn").fit(graph)
        expected = dense_fastrp(graph.adjacency, 12, (1, 1, 1), 0.5, 3)
        np.testing.assert_allclose(model.embedding_, expected, atol=1e-9)
    assert np.abs(FastRP(n_components=12, random_state=3).fit_transform(directed)
                  - FastRP(n_components=12, random_state=3).fit_transform(undirected)).max() > 0.1


def test_isolated_nodes_share_a_finite_embedding():
    adjacency, _ = planted_partition(sizes=(20, 20))
    n = adjacency.shape[0]
    padded = sp.block_diag([adjacency, sp.csr_matrix((3, 3))], format="csr")
    embedding = FastRP(n_components=16, normalization_strength=-0.5, random_state=0).fit_transform(padded)
    assert np.all(np.isfinite(embedding))
    np.testing.assert_allclose(embedding[n:], np.broadcast_to(embedding[n], (3, 16)), atol=1e-6)
    with_self = FastRP(n_components=16, self_influence=1.0, random_state=0).fit_transform(padded)
    assert np.abs(with_self[n] - with_self[n + 1]).max() > 0.1


def test_self_influence_matches_dense_reference():
    adjacency, _ = planted_partition()
    model = FastRP(n_components=20, iteration_weights=(1, 1), self_influence=0.7, random_state=2, dtype="float64",
                   sampler="sklearn")
    expected = dense_fastrp(adjacency, 20, (1, 1), 0.0, 2, self_influence=0.7)
    np.testing.assert_allclose(model.fit_transform(adjacency), expected, atol=1e-9)


def test_unnormalized_unstandardized_matches_dense_reference():
    adjacency, _ = planted_partition()
    model = FastRP(n_components=20, iteration_weights=(1, 2), normalize=False, standardize=False,
                   random_state=2, dtype="float64", sampler="sklearn")
    expected = dense_fastrp(adjacency, 20, (1, 2), 0.0, 2, normalize=False, standardize=False)
    np.testing.assert_allclose(model.fit_transform(adjacency), expected, atol=1e-12)
    np.testing.assert_array_equal(model.mean_, 0)
    np.testing.assert_array_equal(model.scale_, 1)


def test_transform_reproduces_fitted_rows_and_embeds_new_nodes():
    adjacency, labels = planted_partition(sizes=(40, 40), p_in=0.25, p_out=0.01)
    model = FastRP(n_components=32, iteration_weights=(0, 1, 1), random_state=0, dtype="float64").fit(adjacency)
    np.testing.assert_allclose(model.transform(adjacency[:10]), model.embedding_[:10], atol=1e-9)

    # two new nodes: one attached to community 0, one to community 1
    new_ids = np.array([100, 100, 100, 200, 200, 200])
    fitted_ids = np.array([0, 1, 2, 40, 41, 42])
    new = model.transform((new_ids, fitted_ids))
    assert new.shape == (2, 32)
    centroids = np.stack([model.embedding_[labels == k].mean(axis=0) for k in (0, 1)])
    distances = np.linalg.norm(new[:, None, :] - centroids[None], axis=2)
    assert distances[0, 0] < distances[0, 1] and distances[1, 1] < distances[1, 0]


def test_transform_rejects_unknown_nodes_and_bad_shapes():
    adjacency, _ = planted_partition(sizes=(10, 10))
    model = FastRP(n_components=8, random_state=0).fit(adjacency)
    with pytest.raises(ValueError):
        model.transform((np.array([1]), np.array([999])))
    with pytest.raises(ValueError, match="expecting 20 features"):
        model.transform(np.ones((2, 5)))


def test_node_features_match_dense_reference_and_carry_labels():
    rng = np.random.default_rng(0)
    n = 90
    labels = np.repeat([0, 1, 2], 30)
    features = np.eye(3)[labels] + 0.05 * rng.standard_normal((n, 3))
    random_graph = nx.gnp_random_graph(n, 0.08, seed=1)  # no community structure at all
    adjacency = nx.to_scipy_sparse_array(random_graph, format="csr", dtype=float)
    model = FastRP(n_components=32, iteration_weights=(1.0,), self_influence=2.0, feature_share=0.5,
                   random_state=4, dtype="float64", sampler="sklearn").fit(adjacency, node_features=features)

    from graphkit.fastrp import _project_features
    feature_seed = int(np.random.RandomState(4).randint(2**31 - 1))  # the fit's first spawned sub-seed
    block = _project_features(sp.csr_matrix(features), 16, feature_seed, "sklearn")
    expected = dense_fastrp(adjacency, 32, (1.0,), 0.0, 4, self_influence=2.0, features_block=block)
    np.testing.assert_allclose(model.embedding_, expected, atol=1e-9)

    predicted = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(model.embedding_)
    assert adjusted_rand_score(labels, predicted) > 0.9
    without = FastRP(n_components=32, iteration_weights=(1.0,), random_state=4).fit_transform(adjacency)
    assert adjusted_rand_score(labels, KMeans(3, n_init=10, random_state=0).fit_predict(without)) < 0.3


def test_accepts_every_graph_kind_and_returns_callers_kind():
    adjacency, _ = planted_partition(sizes=(15, 15))
    expected = FastRP(n_components=8, random_state=0).fit_transform(adjacency)
    coo = adjacency.tocoo()
    edge_index = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    from_torch = FastRP(n_components=8, random_state=0).fit_transform(edge_index)
    assert isinstance(from_torch, torch.Tensor)
    np.testing.assert_allclose(from_torch.numpy(), expected, atol=1e-6)
    nx_graph = nx.from_scipy_sparse_array(adjacency)
    np.testing.assert_allclose(FastRP(n_components=8, random_state=0).fit_transform(nx_graph), expected, atol=1e-6)


def test_history_and_pickle_round_trip():
    adjacency, _ = planted_partition(sizes=(15, 15))
    model = FastRP(n_components=8, iteration_weights=(0, 1, 1, 1), random_state=0).fit(adjacency)
    assert [h["iteration"] for h in model.history_] == [1, 2, 3, 4]
    assert all(h["mean_row_norm"] > 0 for h in model.history_)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.embedding_, model.embedding_)
    np.testing.assert_array_equal(restored.transform(adjacency[:5]), model.transform(adjacency[:5]))


@pytest.mark.parametrize("params, message", [
    (dict(n_components=0), "n_components"),
    (dict(iteration_weights=()), "iteration_weights"),
    (dict(iteration_weights=(1, float("nan"))), "iteration_weights"),
    (dict(density=0.0), "density"),
    (dict(feature_share=1.0), "feature_share"),
    (dict(normalization_strength=float("inf")), "normalization_strength"),
    (dict(sampler="numpy"), "sampler"),
    (dict(dtype="complex64"), "dtype must be a real floating dtype"),
    (dict(dtype=torch.complex128), "dtype must be a real floating dtype"),
])
def test_bad_parameters_raise(params, message):
    adjacency, _ = planted_partition(sizes=(5, 5))
    with pytest.raises(ValueError, match=message):
        FastRP(**params).fit(adjacency)


def test_bad_features_raise():
    adjacency, _ = planted_partition(sizes=(5, 5))
    with pytest.raises(ValueError, match="node_features"):
        FastRP().fit(adjacency, node_features=np.ones((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        FastRP().fit(adjacency, node_features=np.full((10, 2), np.nan))


# -- issue 32: what FastRP returns is finite and faithful, or a clear error ------------------------

def path_graph(weight=1.0, n=5):
    return Graph.from_edges(np.arange(n - 1), np.arange(1, n), np.full(n - 1, weight))


def test_float32_and_float64_agree_on_tiny_graphs_with_constant_columns():
    """A column that is constant in exact arithmetic stays (near) zero in both dtypes, never ±1 noise."""
    tiny_graphs = [Graph.from_edges([0, 1], [1, 2]), Graph.from_edges([0, 0, 0], [1, 2, 3]),
                   Graph.from_edges([0], [1])]  # a path of 3, a star of 4, two nodes
    for graph in tiny_graphs:
        for seed in range(5):
            kwargs = dict(n_components=8, random_state=seed, device="cpu")
            e32 = FastRP(dtype="float32", **kwargs).fit_transform(graph)
            e64 = FastRP(dtype="float64", **kwargs).fit_transform(graph)
            np.testing.assert_allclose(e32, e64, atol=1e-5)
            for column in e64.T:
                assert np.allclose(column, 0, atol=1e-12) or np.isclose(column.std(), 1.0)


def test_standardisation_leaves_a_column_constant_up_to_rounding_unscaled():
    from graphkit._fastrp_core import standardize_

    eps = np.finfo(np.float32).eps
    embedding = torch.tensor([[0.1, 1.0], [0.1 * (1 + eps), 2.0], [0.1, 3.0]], dtype=torch.float32)
    mean, scale = standardize_(embedding)
    np.testing.assert_array_equal(scale.numpy(), np.float32([1.0, np.sqrt(2 / 3)]))
    assert np.abs(embedding[:, 0].numpy()).max() < 1e-7
    np.testing.assert_allclose(embedding[:, 1].numpy(), sk_scale(np.array([1.0, 2.0, 3.0])), rtol=1e-6)


@pytest.mark.parametrize("weight", [1e-70, 1e300])
def test_degree_factors_beyond_float32_are_rescaled_to_the_float64_embedding(weight):
    """degree ** beta overflows float32 (1e-70 ** -0.64 = 1e45) or vanishes; scaling every weight by one
    constant scales every factor by one constant, which row normalisation removes: the embedding is
    the dense float64 one of the unscaled weights."""
    adjacency, _ = planted_partition(sizes=(20, 20))
    weighted = adjacency.multiply(np.random.default_rng(0).uniform(1.0, 4.0, adjacency.shape)).tocsr()
    weighted = sp.csr_matrix(weighted.maximum(weighted.T))
    expected = dense_fastrp(weighted, 16, (0, 1, 1), -0.64, 5)
    ours = FastRP(n_components=16, normalization_strength=-0.64, random_state=5, sampler="sklearn",
                  dtype="float32").fit_transform(weighted * weight)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=2e-4)


@pytest.mark.parametrize("beta", [0.0, -0.64])
def test_weights_near_the_largest_float_give_the_unit_weight_embedding(beta):
    """Degrees of weights near 1e308 overflow float64; D^-1 A and the degree factors do not."""
    for dtype in ("float32", "float64"):
        kwargs = dict(n_components=8, normalization_strength=beta, random_state=0, dtype=dtype)
        huge = FastRP(**kwargs).fit_transform(path_graph(1.7e308))
        unit = FastRP(**kwargs).fit_transform(path_graph(1.0))
        np.testing.assert_allclose(huge, unit, atol=1e-5)
        assert np.abs(huge).max() > 0.5


def test_transform_with_links_near_the_largest_float_equals_unit_links():
    adjacency, _ = planted_partition(sizes=(15, 15))
    model = FastRP(n_components=8, random_state=0, dtype="float64").fit(adjacency)
    links = (np.array([100, 100]), np.array([0, 1]))
    np.testing.assert_allclose(model.transform((*links, [1.7e308, 1.7e308])), model.transform(links), atol=1e-12)


def test_node_features_near_the_largest_float_give_the_unit_scale_embedding():
    adjacency, _ = planted_partition(sizes=(15, 15))
    features = np.random.default_rng(0).uniform(0.5, 1.0, (30, 4))
    kwargs = dict(n_components=16, iteration_weights=(1.0,), random_state=0, dtype="float64")
    huge = FastRP(**kwargs).fit_transform(adjacency, node_features=features * 1e307)
    np.testing.assert_allclose(huge, FastRP(**kwargs).fit_transform(adjacency, node_features=features), atol=1e-12)


@pytest.mark.parametrize("params, graph", [
    (dict(normalization_strength=500), path_graph()),  # 2 ** 500 over degrees 1 and 2
    (dict(normalization_strength=-0.64, normalize=False, standardize=False), path_graph(1e-70)),
])
def test_degree_factors_float32_cannot_hold_raise_naming_normalization_strength(params, graph):
    with pytest.raises(NonFiniteResultError, match="normalization_strength"):
        FastRP(n_components=8, random_state=0, **params).fit(graph)


def test_degree_factors_with_node_features_are_not_rescaled_but_refused():
    """Row normalisation spans the feature columns too, so a common factor would change the embedding."""
    with pytest.raises(NonFiniteResultError, match="normalization_strength=-0.64"):
        FastRP(n_components=8, normalization_strength=-0.64, random_state=0).fit(
            path_graph(1e-70), node_features=np.ones((5, 2)))


@pytest.mark.parametrize("dtype, weights", [("float32", (3e38, 3e38)), ("float64", (1e200, 1e200))])
def test_overflowing_iteration_weights_raise_naming_them(dtype, weights):
    with pytest.raises(NonFiniteResultError, match="iteration_weights"):
        FastRP(n_components=8, iteration_weights=weights, random_state=0, dtype=dtype).fit(path_graph())


def test_complex_inputs_are_refused_before_any_cast():
    adjacency, _ = planted_partition(sizes=(5, 5))
    model = FastRP(n_components=4, random_state=0).fit(adjacency)
    for X in (adjacency[:2] * (1 + 1j), adjacency[:2].toarray() + 0j, torch.ones((1, 10), dtype=torch.complex64),
              (np.array([100]), np.array([0]), np.array([1 + 2j]))):
        with pytest.raises(TypeError, match="X must hold real numbers"):
            model.transform(X)
    with pytest.raises(TypeError, match="node_features must hold real numbers"):
        FastRP(n_components=4).fit(adjacency, node_features=np.ones((10, 2)) * 1j)


def test_an_embedding_beyond_the_memory_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"n_components=1000000000000 is too large for 5 nodes.*lower n_components"):
        FastRP(n_components=10**12).fit(path_graph())


def test_columns_whose_terms_cancel_are_centred_not_blown_up_to_unit_noise():
    """On one edge both nodes get the same embedding; a column whose terms cancel to rounding noise
    must stay near zero in float32 (it was scaled to ±1 when judged against its own tiny magnitude)."""
    params = dict(n_components=128, normalization_strength=0.0625, iteration_weights=(2.5, 2.5), random_state=4,
                  verbose=0)
    edge = (np.array([0]), np.array([1]), np.array([2.0]))
    e32 = FastRP(dtype="float32", **params).fit_transform(edge)
    e64 = FastRP(dtype="float64", **params).fit_transform(edge)
    np.testing.assert_allclose(e32, e64, atol=1e-5)
    assert np.abs(e32).max() < 1e-5   # both rows are equal, so every column centres to zero
