"""The FastRP study's peers and protocol (``benchmarks/_fastrp_study_*.py``): NetMF factors the matrix
of its paper, its eigenpair approximation is exact where the dropped eigenvalue's filter is zero, the
node splits keep test nodes out of validation."""

import networkx as nx
import numpy as np
import scipy.sparse as sp

from benchmarks._fastrp_study_data import split_nodes
from benchmarks._fastrp_study_peers import netmf


def netmf_matrix(adjacency: np.ndarray, window: int, negative: float) -> np.ndarray:
    """``log max(vol / (b T) * sum_r P^r D^-1, 1)``, dense, as the NetMF paper writes it."""
    degrees = adjacency.sum(axis=1)
    transition = adjacency / degrees[:, None]
    total = sum(np.linalg.matrix_power(transition, r) for r in range(1, window + 1))
    return np.log(np.maximum(degrees.sum() / (negative * window) * total / degrees[None, :], 1.0))


def test_netmf_factors_the_papers_matrix():
    adjacency = nx.to_numpy_array(nx.les_miserables_graph(), weight=None)
    embedding = netmf(sp.csr_matrix(adjacency), 8, window=3, rank=None, negative=1.0, seed=0)
    singular = np.linalg.svd(netmf_matrix(adjacency, 3, 1.0), compute_uv=False)
    # U sqrt(S): the squared entries sum to the d largest singular values.
    np.testing.assert_allclose((embedding ** 2).sum(), singular[:8].sum(), rtol=1e-6)


def test_the_eigenpair_approximation_is_exact_when_only_a_filtered_out_eigenvalue_is_dropped():
    # A bipartite graph: -1 is the smallest eigenvalue of D^-1/2 A D^-1/2, and for T = 10 the filter
    # lambda (1 - lambda^T) / ((1 - lambda) T) is 0 there, so the n - 1 largest eigenpairs give M exactly.
    graph = nx.bipartite.random_graph(12, 14, 0.4, seed=1)
    graph = graph.subgraph(max(nx.connected_components(graph), key=len))
    adjacency = sp.csr_matrix(nx.to_numpy_array(graph, weight=None))
    n = adjacency.shape[0]
    exact = netmf(adjacency, 6, window=10, rank=None, negative=1.0, seed=0)
    approximate = netmf(adjacency, 6, window=10, rank=n - 1, negative=1.0, seed=0)
    np.testing.assert_allclose(approximate @ approximate.T, exact @ exact.T, atol=1e-6)


def test_validation_never_sees_a_test_node_and_test_trains_on_the_rest():
    data = {"labelled": np.arange(101)}
    for seed in range(3):
        train, test = split_nodes(data, "test", seed)
        fit, validation = split_nodes(data, "validation", seed)
        assert set(train) | set(test) == set(range(101)) and not set(train) & set(test)
        assert set(fit) | set(validation) == set(train) and not set(fit) & set(validation)
