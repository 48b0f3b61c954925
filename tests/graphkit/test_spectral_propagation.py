"""ProNE's spectral propagation: the Chebyshev series equals the matrix exponential it expands, the
result is the SVD factor of (A + I)(E - filtered E) with unit rows, on numpy and torch inputs."""

import networkx as nx
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from graphkit import spectral_propagation


def dense_reference(adjacency: np.ndarray, embedding: np.ndarray, mu: float, theta: float) -> np.ndarray:
    """ProNE's filter with the exact exponential: (A + I)(E - expm(-theta (M^2/2 - I)) E)."""
    n = len(adjacency)
    with_loops = adjacency + np.eye(n)
    shifted = np.eye(n) - with_loops / with_loops.sum(axis=1, keepdims=True) - mu * np.eye(n)
    filtered = scipy.linalg.expm(-theta * (shifted @ shifted / 2 - np.eye(n))) @ embedding
    return with_loops @ (embedding - filtered)


def gram_of_unit_rows(matrix: np.ndarray) -> np.ndarray:
    left, singular, _ = np.linalg.svd(matrix, full_matrices=False)
    factor = left * np.sqrt(singular)
    factor /= np.linalg.norm(factor, axis=1, keepdims=True)
    return factor @ factor.T


@pytest.mark.parametrize("mu, theta", [(0.2, 0.5), (0.5, 2.0)])
def test_a_long_series_equals_the_exponential_it_expands(mu, theta):
    adjacency = nx.to_numpy_array(nx.les_miserables_graph(), weight=None)
    graph = sp.csr_matrix(adjacency)   # rows in the order of the embedding's
    embedding = np.random.default_rng(0).standard_normal((len(adjacency), 6))
    result = spectral_propagation(graph, embedding, order=30, mu=mu, theta=theta)
    assert isinstance(result, np.ndarray) and result.shape == embedding.shape
    np.testing.assert_allclose(np.linalg.norm(result, axis=1), 1.0, rtol=1e-10)
    # U sqrt(S) is unique up to the signs of its columns: compare Gram matrices.
    expected = gram_of_unit_rows(dense_reference(adjacency, embedding, mu, theta))
    np.testing.assert_allclose(result @ result.T, expected, atol=1e-8)


def test_ten_terms_are_close_to_the_exponential_and_torch_stays_torch():
    adjacency = nx.to_numpy_array(nx.karate_club_graph(), weight=None)
    graph = sp.csr_matrix(adjacency)
    embedding = np.random.default_rng(1).standard_normal((34, 4))
    expected = gram_of_unit_rows(dense_reference(adjacency, embedding, 0.2, 0.5))
    short = spectral_propagation(graph, torch.tensor(embedding, dtype=torch.float32))
    assert isinstance(short, torch.Tensor) and short.dtype == torch.float32
    np.testing.assert_allclose((short @ short.T).numpy(), expected, atol=1e-4)


def test_bad_inputs_are_named():
    graph = nx.karate_club_graph()
    with pytest.raises(ValueError, match="order must be an integer of at least 2"):
        spectral_propagation(graph, np.ones((34, 2)), order=1)
    with pytest.raises(ValueError, match=r"shape \(n_nodes=34, d\)"):
        spectral_propagation(graph, np.ones((33, 2)))


def test_fastrp_applies_it_after_its_own_sum_in_memory_only(tmp_path):
    from graphkit import FastRP

    graph = nx.karate_club_graph()
    plain = FastRP(8, random_state=0, device="cpu", verbose=0).fit(graph)
    filtered = FastRP(8, random_state=0, device="cpu", verbose=0, spectral_propagation=True).fit(graph)
    expected = spectral_propagation(graph, plain.embedding_)
    np.testing.assert_allclose(filtered.embedding_ @ filtered.embedding_.T, expected @ expected.T, atol=1e-4)
    with pytest.raises(ValueError, match="transform cannot embed new nodes with spectral_propagation=True"):
        filtered.transform((["new"], [0]))
    edges = tmp_path / "karate.txt"
    edges.write_text("".join(f"{u} {v}\n" for u, v in graph.edges()))
    with pytest.raises(ValueError, match="spectral_propagation=True is supported only for a fit in memory"):
        FastRP(8, spectral_propagation=True, memory_budget="1GB", verbose=0).fit(str(edges))
