"""The peers of the FastRP study: the PyPI Rust package ``fastrp``, NetMF and Laplacian
eigenmaps, each returning an (n, d) embedding of the whole graph."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .harness import Unavailable


def rust_fastrp(adjacency: sp.csr_matrix, dim: int, weights: list, seed: int) -> np.ndarray:
    """The Rust package (Fedeshadow/FastRP-rs): its ``weights[0]`` weighs the random vectors
    themselves (power 0), then one weight per power of the transition matrix."""
    try:
        import fastrp
    except ImportError:
        raise Unavailable("the PyPI package fastrp is not installed (pip install '.[bench]')") from None
    csr = sp.csr_matrix(adjacency, dtype=np.float32)
    return np.asarray(fastrp.fit_csr(csr.indptr, csr.indices, csr.data, csr.shape[0], dim,
                                     weights=[float(w) for w in weights], seed=seed, undirected=False))


def netmf(adjacency: sp.csr_matrix, dim: int, window: int, rank: int, negative: float, seed: int) -> np.ndarray:
    """NetMF (Qiu et al., *Network Embedding as Matrix Factorization: Unifying DeepWalk, LINE, PTE,
    and node2vec*, WSDM 2018): the truncated SVD of ``log max(M, 1)`` with
    ``M = vol(G) / (b T) * sum_{r=1..T} P^r D^-1``.

    ``rank=None`` computes ``M`` exactly (the paper's Algorithm 1, used with ``T = 1``); otherwise
    ``M`` is approximated from the ``rank`` largest eigenpairs of ``D^-1/2 A D^-1/2`` with the
    eigenvalues filtered by ``lambda (1 - lambda^T) / ((1 - lambda) T)`` (Algorithm 2, the paper's
    choice for ``T = 10``, ``h = 256`` on BlogCatalog). Dense ``n x n``: small graphs only.
    """
    from scipy.sparse.linalg import eigsh
    from sklearn.utils.extmath import randomized_svd

    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    volume = degrees.sum()
    inverse_root = np.where(degrees > 0, 1.0 / np.sqrt(np.maximum(degrees, 1e-300)), 0.0)
    if rank is None:
        inverse = inverse_root ** 2
        transition = sp.diags(inverse) @ adjacency
        power, total = sp.identity(adjacency.shape[0], format="csr"), None
        for _ in range(window):
            power = power @ transition
            total = power if total is None else total + power
        matrix = (total @ sp.diags(inverse)).toarray() * (volume / (negative * window))
    else:
        normalized = sp.diags(inverse_root) @ adjacency @ sp.diags(inverse_root)
        start = np.random.RandomState(seed).uniform(-1, 1, adjacency.shape[0])
        values, vectors = eigsh(normalized, k=rank, which="LA", v0=start)
        filtered = np.where(np.isclose(values, 1.0), 1.0,
                            values * (1 - values ** window) / ((1 - values) * window))
        scaled = inverse_root[:, None] * vectors
        matrix = (scaled * filtered) @ scaled.T * (volume / negative)
    np.log(np.maximum(matrix, 1.0, out=matrix), out=matrix)
    left, singular, _ = randomized_svd(matrix, dim, random_state=seed)
    return left * np.sqrt(singular)


def laplacian_eigenmaps(adjacency: sp.csr_matrix, dim: int, seed: int) -> np.ndarray:
    """scikit-learn's ``spectral_embedding`` (the normalised Laplacian's bottom eigenvectors)."""
    import warnings

    from sklearn.manifold import spectral_embedding

    graph = sp.csr_matrix(adjacency)
    graph.indices, graph.indptr = graph.indices.astype(np.int32), graph.indptr.astype(np.int32)   # SciPy's eigensolvers ask for 32-bit
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return spectral_embedding(graph, n_components=dim, drop_first=True, random_state=seed)
