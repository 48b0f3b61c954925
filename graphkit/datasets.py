"""Synthetic data sets with a planted structure, for tests, tutorials and benchmarks.

- :func:`make_attributed_sbm`: a stochastic block model whose nodes also carry Gaussian features
  centred on their block's mean (an "attributed" SBM), with the graph's and the features'
  strength of signal set separately; the test bed of :class:`graphkit.PamC` and
  :class:`graphkit.FastRP`.
- :func:`make_union_of_manifolds`: points on a union of linear subspaces, or of curved
  one-dimensional manifolds (circles and spirals), each embedded in a high-dimensional ambient
  space by its own random isometry, with the manifold of each point as its label; the test bed
  of :class:`graphkit.ManifoldClustering`.

Both return a named tuple and take a ``random_state``; the same seed gives the same data.

Examples
--------
>>> from graphkit.datasets import make_attributed_sbm, make_union_of_manifolds
>>> make_attributed_sbm(n_nodes=60, n_clusters=2, avg_degree=4, random_state=0).graph.n_nodes
60
>>> make_union_of_manifolds(n_samples=40, n_manifolds=2, n_features=8, random_state=0).X.shape
(40, 8)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from graphkit.graph import Graph
from tensorkit.backend import check_random_state
from tensorkit.base import StrOptions, integers, reals, validate_params

__all__ = ["AttributedGraph", "ManifoldData", "make_attributed_sbm", "make_union_of_manifolds"]

MANIFOLD_KINDS = ("subspaces", "curves")


# -- attributed stochastic block model ----------------------------------------------------------

class AttributedGraph(NamedTuple):
    """A graph with node features and the planted node labels.

    Attributes
    ----------
    features : numpy.ndarray of shape (n_nodes, n_features), float64
    graph : Graph
        Undirected, unweighted, no self loops; node ids ``0 .. n_nodes - 1`` (rows of ``features``).
    labels : numpy.ndarray of shape (n_nodes,), int64
        The block of each node.
    """

    features: np.ndarray
    graph: Graph
    labels: np.ndarray


@validate_params({
    "n_nodes": [integers(1)],
    "n_clusters": [integers(1)],
    "avg_degree": [reals(0)],
    "homophily": [reals(0, 1)],
    "n_features": [integers(1)],
    "feature_signal": [reals(0)],
    "block_sizes": ["array-like", None],
})
def make_attributed_sbm(n_nodes: int = 600, n_clusters: int = 3, avg_degree: float = 10.0,
                        homophily: float = 0.8, n_features: int = 32, feature_signal: float = 1.0,
                        random_state: Any = None, block_sizes: Any = None) -> AttributedGraph:
    """An attributed stochastic block model: SBM edges plus Gaussian features per block.

    Nodes fall into ``n_clusters`` blocks of (nearly) equal size, in random order. Two nodes are
    joined independently with probability ``p_in`` when they share a block and ``p_out``
    otherwise, chosen so that the expected degree is ``avg_degree`` and a share ``homophily`` of
    each node's edges is expected to stay in its block (for blocks of size ``s = n / k``:
    ``p_in = homophily * avg_degree / (s - 1)``, ``p_out = (1 - homophily) * avg_degree / (n - s)``).
    Each block's edges are drawn exactly: a binomial number of distinct pairs, uniformly, so the
    cost is linear in the number of edges (a graph of 10^5 nodes takes well under a second).
    Blocks of other sizes (``block_sizes``) keep the expected in-block degree
    ``homophily * avg_degree`` in every block (``p_in`` per block, over its size ``s_a``) and one
    ``p_out`` (for ``s = n / k``), so a node of a large block has fewer edges out of it.

    Features are ``x_i = feature_signal * u_{y_i} + e_i`` with ``e_i ~ N(0, I)`` and ``u_c``
    orthonormal random directions (random unit vectors when ``n_features < n_clusters``), so two
    block means are ``feature_signal * sqrt(2)`` apart. A small ``feature_signal`` with many
    features gives "weak" features, on which k-means fails while the graph still tells the blocks
    apart.

    Parameters
    ----------
    n_nodes : int, default=600
    n_clusters : int, default=3
    avg_degree : float, default=10.0
        Expected degree of a node.
    homophily : float in [0, 1], default=0.8
        Expected share of a node's edges inside its block (``1 / n_clusters`` is no structure).
    n_features : int, default=32
    feature_signal : float, default=1.0
        Length of each block's feature mean (the noise has unit variance per feature).
    random_state : None, int or numpy.random.RandomState
    block_sizes : array-like of int, optional
        The size of every block (``n_clusters`` sizes summing to ``n_nodes``); default equal
        sizes.

    Returns
    -------
    AttributedGraph
        ``(features, graph, labels)``.

    Raises
    ------
    ValueError
        For ``block_sizes`` that are not ``n_clusters`` sizes of at least 2 summing to
        ``n_nodes``; for fewer than two nodes per block, a negative degree or signal, a homophily outside
        [0, 1], or a degree that would need an edge probability above 1.

    See Also
    --------
    graphkit.PamC : deep graph clustering, which recovers the blocks from graph and features.

    Examples
    --------
    >>> data = make_attributed_sbm(n_nodes=300, n_clusters=3, avg_degree=8, random_state=0)
    >>> data.features.shape, data.graph.n_nodes, sorted(set(data.labels.tolist()))
    ((300, 32), 300, [0, 1, 2])
    >>> round(data.graph.n_edges / 300 * 2)  # average degree
    8
    """
    n_nodes, n_clusters, n_features = int(n_nodes), int(n_clusters), int(n_features)
    if n_nodes < 2 * n_clusters:
        raise ValueError(f"n_nodes={n_nodes} must be at least 2 * n_clusters={2 * n_clusters} (two nodes per block)")
    rng = check_random_state(random_state).numpy

    sizes = _block_sizes(n_nodes, n_clusters, block_sizes)
    labels = rng.permutation(np.repeat(np.arange(n_clusters), sizes)).astype(np.int64)
    block_size = n_nodes / n_clusters
    p_in = homophily * avg_degree / (sizes - 1 if block_sizes is not None else np.full(n_clusters, block_size - 1))
    p_out = (1 - homophily) * avg_degree / (n_nodes - block_size) if n_clusters > 1 else 0.0
    if p_in.max() > 1 or p_out > 1:
        raise ValueError(
            f"avg_degree={avg_degree} with homophily={homophily} needs an edge probability above 1 "
            f"(p_in={p_in.max():.3g}, p_out={p_out:.3g}); lower avg_degree or use more nodes"
        )

    members = [np.flatnonzero(labels == c) for c in range(n_clusters)]
    sources, targets = [], []
    for a in range(n_clusters):
        for b in range(a, n_clusters):
            first, second = _block_pairs(len(members[a]), len(members[b]), p_in[a] if a == b else p_out, a == b, rng)
            sources.append(members[a][first])
            targets.append(members[b][second])
    graph = Graph.from_edges(np.concatenate(sources), np.concatenate(targets), n_nodes=n_nodes)

    if n_features >= n_clusters:
        directions = np.linalg.qr(rng.standard_normal((n_features, n_clusters)))[0].T
    else:
        directions = rng.standard_normal((n_clusters, n_features))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    features = feature_signal * directions[labels] + rng.standard_normal((n_nodes, n_features))
    return AttributedGraph(features, graph, labels)


def _block_sizes(n_nodes: int, n_clusters: int, block_sizes: Any) -> np.ndarray:
    """The blocks' sizes: ``block_sizes`` checked, or (nearly) equal sizes."""
    if block_sizes is None:
        sizes = np.full(n_clusters, n_nodes // n_clusters)
        sizes[: n_nodes % n_clusters] += 1
        return sizes
    sizes = np.asarray(block_sizes)
    if (sizes.shape != (n_clusters,) or not np.issubdtype(sizes.dtype, np.integer) or sizes.min() < 2
            or sizes.sum() != n_nodes):
        raise ValueError(f"block_sizes must be {n_clusters} ints of at least 2 summing to n_nodes={n_nodes}; "
                         f"got {block_sizes!r}")
    return sizes.astype(np.int64)


def _block_pairs(size_a: int, size_b: int, probability: float, same_block: bool,
                 rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Each pair of the block (unordered within one block) independently with ``probability``.

    The number of pairs is binomial; that many distinct pairs are then drawn uniformly, which
    gives the same law as independent coin flips.
    """
    n_pairs = size_a * (size_a - 1) // 2 if same_block else size_a * size_b
    n_edges = int(rng.binomial(n_pairs, probability)) if n_pairs else 0
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < n_edges:
        # Draw over ordered pairs (i, j) of the square and keep i < j within a block.
        draw = rng.randint(0, size_a * size_b, size=2 * (n_edges - len(keys)) + 16, dtype=np.int64)
        if same_block:
            draw = draw[draw // size_b < draw % size_b]
        keys = np.unique(np.concatenate([keys, draw]))
    if len(keys) > n_edges:
        keys = rng.choice(keys, size=n_edges, replace=False)
    return keys // size_b, keys % size_b


# -- union of manifolds -------------------------------------------------------------------------

class ManifoldData(NamedTuple):
    """Points on a union of manifolds and the manifold each one lies on.

    Attributes
    ----------
    X : numpy.ndarray of shape (n_samples, n_features), float64
    labels : numpy.ndarray of shape (n_samples,), int64
    bases : numpy.ndarray of shape (n_manifolds, n_features, intrinsic), float64
        The orthonormal basis of the low-dimensional space each manifold is drawn in
        (``intrinsic = dim`` for subspaces, 3 for curves).
    """

    X: np.ndarray
    labels: np.ndarray
    bases: np.ndarray


def _curve(kind: int, t: np.ndarray) -> np.ndarray:
    """A closed or open curve in R^3 for ``t`` in [0, 1): even kinds circles, odd kinds spirals."""
    if kind % 2 == 0:
        angle = 2 * np.pi * t
        return np.stack([np.cos(angle), np.sin(angle), np.zeros_like(t)], axis=1)
    angle = 3 * np.pi * t + 0.5
    radius = 0.3 + 0.7 * t
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), t - 0.5], axis=1)


@validate_params({
    "n_samples": [integers(1)],
    "n_manifolds": [integers(1)],
    "n_features": [integers(1)],
    "kind": [StrOptions(set(MANIFOLD_KINDS))],
    "dim": [integers(1)],
    "noise": [reals(0)],
})
def make_union_of_manifolds(n_samples: int = 600, n_manifolds: int = 3, n_features: int = 50,
                            kind: str = "subspaces", dim: int = 3, noise: float = 0.0,
                            random_state: Any = None) -> ManifoldData:
    """Points on a union of ``n_manifolds`` low-dimensional manifolds in ``R^n_features``.

    - ``kind="subspaces"``: each manifold is a random ``dim``-dimensional linear subspace; the
      points are standard Gaussian coordinates in its orthonormal basis (the model of subspace
      clustering).
    - ``kind="curves"``: each manifold is a curve in a random 3-dimensional subspace: circles
      (manifolds 0, 2, ...) and spirals (1, 3, ...), with uniform positions along the curve. Each
      curve is scaled to unit radius; curves are nonlinear, so a linear method sees each
      cluster as 2-3 dimensional, while a linearizing map can make each one a line.

    Gaussian noise of standard deviation ``noise / sqrt(n_features)`` per coordinate is added.
    The samples are split as evenly as possible and shuffled.

    Parameters
    ----------
    n_samples : int, default=600
    n_manifolds : int, default=3
    n_features : int, default=50
        Ambient dimension.
    kind : {"subspaces", "curves"}, default="subspaces"
    dim : int, default=3
        Subspace dimension (``kind="subspaces"`` only).
    noise : float, default=0.0
    random_state : None, int or numpy.random.RandomState

    Returns
    -------
    ManifoldData

    See Also
    --------
    graphkit.ManifoldClustering : clusters the points and linearizes each manifold.

    Examples
    --------
    >>> from graphkit import make_union_of_manifolds
    >>> data = make_union_of_manifolds(n_samples=90, n_manifolds=3, n_features=20, dim=2, random_state=0)
    >>> data.X.shape, sorted(set(data.labels.tolist()))
    ((90, 20), [0, 1, 2])
    >>> int(np.linalg.matrix_rank(data.X[data.labels == 0]))
    2
    """
    if n_samples < n_manifolds:
        raise ValueError(f"n_samples={n_samples} must be at least n_manifolds={n_manifolds}")
    intrinsic = dim if kind == "subspaces" else 3
    if intrinsic > n_features:
        raise ValueError(f"the manifolds' {'dim' if kind == 'subspaces' else 'curves (3)'}={intrinsic} "
                         f"must not exceed n_features={n_features}")
    rng = check_random_state(random_state).numpy
    bases = np.stack([np.linalg.qr(rng.standard_normal((n_features, intrinsic)))[0] for _ in range(n_manifolds)])
    labels = np.repeat(np.arange(n_manifolds), np.diff(np.linspace(0, n_samples, n_manifolds + 1).round().astype(int)))
    rng.shuffle(labels)
    X = np.empty((n_samples, n_features))
    for k in range(n_manifolds):
        rows = np.flatnonzero(labels == k)
        if kind == "subspaces":
            coords = rng.standard_normal((len(rows), intrinsic))
        else:
            coords = _curve(k, rng.uniform(0.0, 1.0, len(rows)))
        X[rows] = coords @ bases[k].T
    if noise > 0:
        X += rng.standard_normal(X.shape) * (noise / np.sqrt(n_features))
    return ManifoldData(X, labels.astype(np.int64), bases)
