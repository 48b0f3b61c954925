"""Graph operators shared by the estimators: normalised adjacencies, r-hop sums, kNN graphs.

Every function takes a SciPy sparse matrix (or a :class:`~graphkit.graph.Graph`) and returns SciPy
sparse matrices or NumPy arrays in float64; turning them into torch tensors on a device is the
caller's step (:func:`tensorkit.backend.as_sparse_tensor`).

- :func:`normalized_adjacency`: ``D^-1 A`` (random walk) or ``D^-1/2 A D^-1/2`` (symmetric),
  optionally with self loops and after making ``A`` symmetric;
- :func:`rhop_adjacency`: ``sum_{t=1..r} A_hat^t`` (PamC's positives);
- :func:`knn_graph`: the symmetric kNN graph of the rows of a feature matrix (SDCN);
- :func:`sgc_features`: SGC's smoothed features ``S^K X``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.neighbors import NearestNeighbors, kneighbors_graph

from graphkit.graph import Graph
from graphkit.io import as_graph
from tensorkit.base import StrOptions, integers, validate_params

__all__ = ["NORMALIZATIONS", "knn_graph", "nearest_neighbors", "normalized_adjacency", "rhop_adjacency", "rows_scaled_by_powers_of_two",
           "sgc_features"]

NORMALIZATIONS = ("random_walk", "symmetric")


@validate_params({"kind": [StrOptions(set(NORMALIZATIONS))]})
def normalized_adjacency(adjacency: Any, kind: str = "random_walk", *, self_loops: bool = False,
                         symmetrize: bool = False) -> sp.csr_matrix:
    """The normalised adjacency ``D^-1 A`` (``"random_walk"``) or ``D^-1/2 A D^-1/2`` (``"symmetric"``).

    ``D`` holds the weighted degrees (row sums) of ``A`` after the optional steps, in this order:
    ``symmetrize`` replaces ``A`` by ``max(A, A^T)`` (a no-op for an undirected graph), and
    ``self_loops`` adds the identity. Nodes without edges get a zero row. Edge weights are kept.

    The random-walk kind divides each row by a power of two before summing it, which is exact, so
    that weights near the largest float (1e308) do not overflow a degree; elsewhere its values are
    those of the plain formula to the last bit. It also accepts a rectangular matrix (rows of
    transition weights to other nodes) when neither option is set.

    Parameters
    ----------
    adjacency : scipy.sparse matrix or Graph, shape (n, n)
        Non-negative weights; row = source, column = target.
    kind : {"random_walk", "symmetric"}, default="random_walk"
    self_loops : bool, default=False
        Add a self loop of weight 1 to every node first (``A + I``).
    symmetrize : bool, default=False
        Use ``max(A, A^T)``, as PamC and SGC do for a directed graph.

    Returns
    -------
    scipy.sparse.csr_matrix of float64, shape (n, n)
        Its rows sum to 1 (random walk) wherever the node has an edge.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> path = sp.csr_matrix([[0, 1.0, 0], [1.0, 0, 1.0], [0, 1.0, 0]])
    >>> normalized_adjacency(path).toarray()
    array([[0. , 1. , 0. ],
           [0.5, 0. , 0.5],
           [0. , 1. , 0. ]])
    >>> normalized_adjacency(path, "symmetric", self_loops=True).toarray().round(3)
    array([[0.5  , 0.408, 0.   ],
           [0.408, 0.333, 0.408],
           [0.   , 0.408, 0.5  ]])
    """
    matrix = _float_csr(adjacency)
    if kind == "symmetric" or self_loops or symmetrize:
        _check_square(matrix)
    if symmetrize:
        matrix = matrix.maximum(matrix.T.tocsr())
    if self_loops:
        matrix = (matrix + sp.identity(matrix.shape[0], format="csr")).tocsr()
    if kind == "random_walk":
        return _row_normalized(matrix)
    return _symmetric_normalized(matrix)


def _float_csr(adjacency: Any) -> sp.csr_matrix:
    """``adjacency`` as a float64 CSR matrix with sorted indices, no repeats and no stored zeros.

    A :class:`Graph`'s adjacency, or a matrix already in that form, is used as it is (never modified).
    """
    if isinstance(adjacency, Graph):
        return adjacency.adjacency
    if not sp.issparse(adjacency):
        raise TypeError(f"adjacency must be a scipy.sparse matrix or a Graph; got {type(adjacency).__name__}")
    matrix = sp.csr_matrix(adjacency, dtype=np.float64)
    if matrix.has_canonical_format and matrix.has_sorted_indices and np.all(matrix.data != 0):
        return matrix  # shared with the caller, who keeps it unchanged
    matrix = matrix.copy()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _check_square(matrix: sp.spmatrix) -> None:
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"adjacency must be a square matrix; got shape {matrix.shape}")


def _row_normalized(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1 A``; the index arrays of ``matrix`` are shared, the values are new."""
    scaled, _ = rows_scaled_by_powers_of_two(matrix)
    degree = np.asarray(scaled.sum(axis=1), dtype=np.float64).ravel()
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    values = scaled.data  # a new array: scaled in place
    values *= np.repeat(inverse, np.diff(matrix.indptr))
    return sp.csr_matrix((values, matrix.indices, matrix.indptr), shape=matrix.shape)


def _symmetric_normalized(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` with ``D`` the row sums (as :meth:`Graph.degrees` computes them)."""
    degrees = np.asarray(matrix @ np.ones(matrix.shape[1]), dtype=np.float64)
    inv_sqrt = np.zeros_like(degrees)
    inv_sqrt[degrees > 0] = degrees[degrees > 0] ** -0.5
    scale = sp.diags(inv_sqrt)
    return sp.csr_matrix(scale @ matrix @ scale)


def rows_scaled_by_powers_of_two(matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``matrix`` (float64) with row ``i`` divided by ``2 ** exponents[i]``, and ``exponents``.

    ``2 ** exponents[i]`` is the power of two just above the row's largest absolute value (1 for
    an empty row), so the scaled entries lie in (-1, 1) and no row sum of them overflows.
    Dividing by a power of two is exact: sums, norms and ratios within a row are those of the
    unscaled row times the same power of two, to the last bit, unless the unscaled row would
    overflow or reach subnormal numbers. The index arrays of ``matrix`` are shared.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> scaled, exponents = rows_scaled_by_powers_of_two(sp.csr_matrix([[3.0, 1.0], [0.0, 0.25]]))
    >>> scaled.toarray(), exponents
    (array([[0.75, 0.25],
           [0.  , 0.5 ]]), array([ 2, -1], dtype=int32))
    """
    largest = np.maximum(matrix.max(axis=1).toarray().ravel(), -matrix.min(axis=1).toarray().ravel())
    exponents = np.frexp(largest)[1]
    data = np.ldexp(np.asarray(matrix.data, dtype=np.float64), -np.repeat(exponents, np.diff(matrix.indptr)))
    return sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape), exponents


@validate_params({"order": [integers(1)]})
def rhop_adjacency(normalized: Any, order: int, *, cumulative: bool = True) -> sp.csr_matrix:
    """The r-hop adjacency ``A_r = sum_{t=1..r} A_hat^t`` (``cumulative``) or ``A_hat^r``.

    PamC's positives (the reference's ``get_A_r_flexSP`` with ``--influence``): every walk of
    length at most ``r`` from ``i`` to ``j`` adds its probability to ``A_r[i, j]``. Computed with
    sparse products; the stored entries grow with ``order`` as the r-hop neighbourhoods do.

    Parameters
    ----------
    normalized : scipy.sparse matrix, shape (n, n)
        ``A_hat``, e.g. ``normalized_adjacency(A, self_loops=True, symmetrize=True)``.
    order : int >= 1
        ``r``.
    cumulative : bool, default=True

    Returns
    -------
    scipy.sparse.csr_matrix of float64, sorted indices

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> path = sp.csr_matrix([[0, 1.0, 0], [1.0, 0, 1.0], [0, 1.0, 0]])
    >>> rhop_adjacency(normalized_adjacency(path, self_loops=True), 2).nnz  # 2 hops reach every node
    9
    """
    base = sp.csr_matrix(normalized, dtype=np.float64)
    power = base
    total = base.copy()
    for _ in range(int(order) - 1):
        power = sp.csr_matrix(power @ base)
        total = power if not cumulative else sp.csr_matrix(total + power)
    total = sp.csr_matrix(total)
    total.sum_duplicates()
    total.sort_indices()
    return total


def knn_graph(X: Any, n_neighbors: int = 3, metric: str = "euclidean") -> Graph:
    """A symmetric kNN graph of the rows of ``X``, as SDCN builds graphs for non-graph data.

    Each sample is joined to its ``n_neighbors`` nearest other samples, and the edges are made
    undirected (an edge exists when either end chose the other). Unweighted. SDCN's "heat"
    kernel ``exp(-|x_i - x_j|^2 / 2)`` ranks neighbours as the Euclidean distance does.

    Parameters
    ----------
    X : array-like or sparse of shape (n_samples, n_features)
    n_neighbors : int, default=3
        Capped at ``n_samples - 1``.
    metric : str, default="euclidean"
        Any metric of :func:`sklearn.neighbors.kneighbors_graph`.

    Returns
    -------
    Graph

    Examples
    --------
    >>> import numpy as np
    >>> knn_graph(np.array([[0.0], [1.0], [5.0], [6.0]]), n_neighbors=1).to_scipy().toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 0., 0.],
           [0., 0., 0., 1.],
           [0., 0., 1., 0.]])
    """
    n_samples = X.shape[0]
    k = min(int(n_neighbors), n_samples - 1)
    if k < 1:
        return Graph(sp.csr_matrix((n_samples, n_samples)))
    directed = kneighbors_graph(X, n_neighbors=k, mode="connectivity", metric=metric, include_self=False)
    return Graph(sp.csr_matrix(directed.maximum(directed.T)))


def nearest_neighbors(X: Any, n_neighbors: int) -> np.ndarray:
    """Indices of each row's ``n_neighbors`` nearest other rows (Euclidean), nearest first.

    The directed neighbour lists behind :func:`knn_graph`, for methods that sample from them
    (ManifoldClustering draws its augmented views there). The distances are computed in blocks of
    at most 64 MiB, so memory stays flat as the number of rows grows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_neighbors : int
        At most ``n_samples - 1``.

    Returns
    -------
    ndarray of shape (n_samples, n_neighbors)

    Examples
    --------
    >>> import numpy as np
    >>> nearest_neighbors(np.array([[0.0], [1.0], [5.0], [6.0]]), 1).ravel()
    array([1, 0, 3, 2])
    """
    with sklearn.config_context(working_memory=64):
        return NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(return_distance=False)


def sgc_features(X: Any, graph: Any, n_hops: int = 2) -> np.ndarray:
    """Graph-smoothed features ``S^K X`` of SGC, with ``S = D^-1/2 (A + I) D^-1/2``.

    Wu et al., "Simplifying Graph Convolutional Networks", ICML 2019: K rounds of the
    symmetrically normalised propagation with self loops (:func:`normalized_adjacency` with
    ``kind="symmetric", self_loops=True, symmetrize=True``; a directed graph is made symmetric).
    k-means on these features is the "graph-smoothed features" baseline of the PamC benchmark.

    Parameters
    ----------
    X : array-like or sparse of shape (n_nodes, n_features)
    graph : graph-like
        Anything :func:`graphkit.as_graph` accepts, nodes in the order of the rows of ``X``.
    n_hops : int, default=2
        ``K``.

    Returns
    -------
    numpy.ndarray of shape (n_nodes, n_features), float64

    Examples
    --------
    >>> import numpy as np
    >>> sgc_features(np.array([[1.0], [0.0]]), np.array([[0, 1], [1, 0]]), n_hops=1)
    array([[0.5],
           [0.5]])
    """
    g = as_graph(graph)
    if g.n_nodes != X.shape[0]:
        raise ValueError(f"graph has {g.n_nodes} nodes but X has {X.shape[0]} rows")
    propagation = normalized_adjacency(g, "symmetric", self_loops=True, symmetrize=True)
    smoothed = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    smoothed = smoothed.astype(np.float64, copy=False)
    for _ in range(int(n_hops)):
        smoothed = propagation @ smoothed
    return np.asarray(smoothed)
