"""Tests of graphkit.ops: each operator against its dense formula, and bitwise against the code it replaced."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.graph import Graph
from graphkit.ops import knn_graph, normalized_adjacency, rhop_adjacency, rows_scaled_by_powers_of_two, sgc_features


def random_adjacency(n=40, density=0.15, seed=0, directed=False, weighted=True):
    rng = np.random.default_rng(seed)
    A = (rng.random((n, n)) < density) * (rng.random((n, n)) * 5 + 0.1 if weighted else 1.0)
    np.fill_diagonal(A, 0.0)
    A[3] = 0.0  # a node without out-edges
    A[:, 3] = 0.0
    return A if directed else np.maximum(A, A.T)


def dense_reference(A, kind, self_loops, symmetrize):
    A = np.maximum(A, A.T) if symmetrize else A.copy()
    A = A + np.eye(len(A)) if self_loops else A
    degree = A.sum(axis=1)
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    if kind == "random_walk":
        return inverse[:, None] * A
    return np.sqrt(inverse)[:, None] * A * np.sqrt(inverse)[None, :]


@pytest.mark.parametrize("kind", ["random_walk", "symmetric"])
@pytest.mark.parametrize("self_loops", [False, True])
@pytest.mark.parametrize("symmetrize", [False, True])
@pytest.mark.parametrize("directed", [False, True])
def test_normalized_adjacency_matches_dense_formula(kind, self_loops, symmetrize, directed):
    A = random_adjacency(directed=directed)
    got = normalized_adjacency(sp.csr_matrix(A), kind, self_loops=self_loops, symmetrize=symmetrize)
    assert isinstance(got, sp.csr_matrix) and got.dtype == np.float64
    np.testing.assert_allclose(got.toarray(), dense_reference(A, kind, self_loops, symmetrize), rtol=1e-14, atol=0)
    if not self_loops:
        assert got[3].nnz == 0


def test_a_graph_and_its_matrix_give_the_same_operator():
    A = random_adjacency(seed=2)
    for kind in ("random_walk", "symmetric"):
        from_graph = normalized_adjacency(Graph(sp.csr_matrix(A)), kind)
        from_matrix = normalized_adjacency(sp.csr_matrix(A), kind)
        assert (from_graph != from_matrix).nnz == 0


def old_pamc_normalized_adjacency(adjacency):
    """graphkit.pamc.normalized_adjacency before graphkit.ops (symmetrize=True)."""
    matrix = sp.csr_matrix(adjacency, dtype=np.float64)
    matrix = matrix.maximum(matrix.T.tocsr())
    matrix = (matrix + sp.identity(matrix.shape[0], format="csr")).tocsr()
    degree = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    normalized = sp.csr_matrix(sp.diags(1.0 / degree) @ matrix)
    normalized.sum_duplicates()
    normalized.sort_indices()
    return normalized


def old_dsl_normalized_adjacency(train):
    """The SciPy part of recsys.dsl.normalized_adjacency before graphkit.ops."""
    adjacency = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float64)
    graph = Graph(adjacency, directed=False)
    degrees = graph.degrees()
    inv_sqrt = np.zeros_like(degrees)
    inv_sqrt[degrees > 0] = degrees[degrees > 0] ** -0.5
    scale = sp.diags(inv_sqrt)
    return scale @ graph.adjacency @ scale


def assert_bitwise_equal(got, expected):
    got, expected = sp.csr_matrix(got), sp.csr_matrix(expected)
    got.sort_indices()
    expected.sort_indices()
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    assert got.data.tobytes() == expected.data.tobytes()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [False, True])
def test_random_walk_with_self_loops_is_bitwise_pamcs_former_operator(seed, weighted):
    A = sp.csr_matrix(random_adjacency(n=300, density=0.08, seed=seed, directed=True, weighted=weighted))
    got = normalized_adjacency(A, "random_walk", self_loops=True, symmetrize=True)
    assert_bitwise_equal(got, old_pamc_normalized_adjacency(A))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [False, True])
def test_symmetric_is_bitwise_the_former_lightgcn_operator(seed, weighted):
    rng = np.random.default_rng(seed)
    train = sp.random(120, 90, density=0.1, format="csr", random_state=seed)
    if not weighted:
        train.data[:] = 1.0
    train = train.tolil()
    train[rng.integers(0, 120, 5)] = 0.0  # users without items
    train = train.tocsr()
    train.eliminate_zeros()
    bipartite = sp.bmat([[None, train], [train.T, None]], format="csr")
    expected = old_dsl_normalized_adjacency(train)
    assert_bitwise_equal(normalized_adjacency(bipartite, kind="symmetric"), expected)
    assert_bitwise_equal(normalized_adjacency(Graph(bipartite), kind="symmetric"), expected)


def test_random_walk_survives_weights_near_the_largest_float():
    A = sp.csr_matrix(np.array([[0, 1e308, 1e308], [1.0, 0, 0], [0, 0, 0]]))
    got = normalized_adjacency(A).toarray()
    np.testing.assert_array_equal(got, [[0, 0.5, 0.5], [1, 0, 0], [0, 0, 0]])


def test_random_walk_accepts_a_rectangular_matrix_but_the_options_need_a_square_one():
    rect = sp.csr_matrix(np.array([[1.0, 3.0, 0.0]]))
    np.testing.assert_array_equal(normalized_adjacency(rect).toarray(), [[0.25, 0.75, 0.0]])
    for kwargs in ({"kind": "symmetric"}, {"self_loops": True}, {"symmetrize": True}):
        with pytest.raises(ValueError, match="square"):
            normalized_adjacency(rect, **kwargs)


def test_bad_kind_and_input_are_refused():
    with pytest.raises(ValueError, match="kind"):
        normalized_adjacency(sp.identity(2, format="csr"), "laplacian")
    with pytest.raises(TypeError, match="adjacency"):
        normalized_adjacency(np.eye(2))


def test_rows_scaled_by_powers_of_two_is_exact():
    A = sp.random(30, 30, density=0.2, format="csr", random_state=1) * 1e5
    scaled, exponents = rows_scaled_by_powers_of_two(A)
    np.testing.assert_array_equal(np.ldexp(scaled.toarray(), exponents[:, None]), A.toarray())
    assert np.abs(scaled.data).max() < 1


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("cumulative", [True, False])
def test_rhop_adjacency_matches_dense_matrix_powers(order, cumulative):
    A = random_adjacency(n=25, density=0.1)
    a_hat = normalized_adjacency(sp.csr_matrix(A), self_loops=True, symmetrize=True)
    powers = [np.linalg.matrix_power(a_hat.toarray(), t) for t in range(1, order + 1)]
    expected = sum(powers) if cumulative else powers[-1]
    got = rhop_adjacency(a_hat, order, cumulative=cumulative)
    assert got.has_sorted_indices
    np.testing.assert_allclose(got.toarray(), expected, atol=1e-13)


@pytest.mark.parametrize("order", [0, -1, 1.5, True])
def test_rhop_adjacency_refuses_a_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        rhop_adjacency(sp.identity(3, format="csr"), order)


def test_knn_graph_and_sgc_features_match_dense_references():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    distances = ((X[:, None] - X[None]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    chosen = np.zeros((30, 30))
    chosen[np.arange(30)[:, None], np.argsort(distances, axis=1)[:, :3]] = 1.0
    A = np.maximum(chosen, chosen.T)
    np.testing.assert_array_equal(knn_graph(X, 3).to_scipy().toarray(), A)
    S = dense_reference(A, "symmetric", self_loops=True, symmetrize=True)
    np.testing.assert_allclose(sgc_features(X, A, n_hops=2), S @ S @ X, atol=1e-12)


def test_knn_graph_of_one_sample_has_no_edges():
    assert knn_graph(np.zeros((1, 2))).n_edges == 0
