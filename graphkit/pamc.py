"""PamC: block-contrastive graph clustering with meta-node negatives, in linear time.

Kulatilleke, Portmann and Chandra, "Efficient block contrastive learning via parameter-free
meta-node approximation", arXiv:2209.14067 (2022); the authors' code is github.com/gayanku/PAMC
(forked from their SCGC, itself built on SDCN: Bo et al., "Structural Deep Clustering Network",
WWW 2020).

A deep clustering model in the DEC family: an encoder maps node features to embeddings ``z``; a
cluster layer turns them into soft assignments ``q`` (Student's t around learned centres); the
loss is ``beta * KL(p || q) + alpha * L_PamC`` with ``p`` DEC's sharpened target. The graph enters
only through the contrastive loss ``L_PamC``, which pulls each node towards its r-hop neighbours
(the positives, ``O(nnz)``) and pushes apart the clusters' *meta-nodes*, the sums of the
embeddings of their current members (the negatives, ``O(k^2)`` instead of the ``O(n^2)`` of
all-pairs contrast).

The functional core is written out here, one function per formula, so that tests can compare
each with a dense reference:

- :func:`normalized_adjacency`, :func:`rhop_adjacency`: ``A_hat = D^-1 (A + I)`` and
  ``A_r = sum_{t=1..r} A_hat^t`` as SciPy sparse matrices (never dense);
- :func:`positive_term`, :func:`negative_term`, :func:`meta_nodes`: the two terms of L_PamC;
- :func:`pairwise_contrastive_loss`: the exact all-pairs loss PamC approximates (SCGC*, Graph-MLP's
  neighbourhood contrast), in row blocks so that its memory stays linear in ``n``;
- :func:`student_t_assignments`, :func:`target_distribution`, :func:`clustering_kl`: DEC's
  cluster layer, target and KL term; :func:`pamc_objective` puts everything together;
- :func:`knn_graph`, :func:`sgc_features`: a kNN graph for data without one (as SDCN) and the
  graph-smoothed features of SGC, a baseline.

:class:`PamC` is the scikit-learn estimator on top.
"""

from __future__ import annotations

import collections
import copy
import inspect
import math
import os
import time
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.neighbors import kneighbors_graph
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from graphkit.graph import Graph, as_graph
from graphkit.metrics import clustering_scores, _modularity_scorer
from tensorkit import backend
from tensorkit._utils import progress
from tensorkit.validation import check_finite_result, real_dtype, reject_complex

__all__ = [
    "GCNEncoder",
    "MLPEncoder",
    "PamC",
    "clustering_kl",
    "kmeans_start",
    "knn_graph",
    "meta_nodes",
    "negative_term",
    "normalized_adjacency",
    "pairwise_contrastive_loss",
    "pamc_objective",
    "positive_term",
    "rhop_adjacency",
    "sgc_features",
    "student_t_assignments",
    "target_distribution",
]

LOSSES = ("pamc", "pairwise")
INIT_SELECTIONS = ("modularity", "inertia")
ENCODERS = ("mlp", "gcn")

# The reference's epsilons: log(x_pos + 1e-10) in PamC, log(pos / all + 1e-8) in Graph-MLP.
_PAMC_EPS = 1e-10
_GRAPH_MLP_EPS = 1e-8
# Rows of the n x n similarity matrix held at once by the all-pairs loss: about 2^24 entries.
_PAIRWISE_BLOCK_ENTRIES = 2**24
# Dense features with fewer non-zeros than this share go through a sparse first layer on the CPU.
_SPARSE_FEATURE_DENSITY = 0.05
# Rows per forward pass when embedding without gradients.
_INFERENCE_ROWS = 8192


# -- graph preprocessing ------------------------------------------------------------------------

def normalized_adjacency(adjacency: Any, symmetrize: bool = True) -> sp.csr_matrix:
    """The row-normalised adjacency with self loops, ``A_hat = D^-1 (A + I)``.

    As the reference (SDCN's ``load_graph``): the adjacency is first made symmetric by
    ``max(A, A^T)`` (a no-op for an undirected graph), a self loop of weight 1 is added to every
    node, and each row is divided by its sum (``D = diag((A + I) 1)``), so every row of ``A_hat``
    sums to 1. Edge weights are kept (the reference reads unweighted edge lists).

    Parameters
    ----------
    adjacency : scipy.sparse matrix, shape (n, n)
        Non-negative weights.
    symmetrize : bool, default=True

    Returns
    -------
    scipy.sparse.csr_matrix of float64

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> normalized_adjacency(sp.csr_matrix([[0, 1.0], [1.0, 0]])).toarray()
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    matrix = sp.csr_matrix(adjacency, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"adjacency must be a square matrix; got shape {matrix.shape}")
    if symmetrize:
        matrix = matrix.maximum(matrix.T.tocsr())
    matrix = (matrix + sp.identity(matrix.shape[0], format="csr")).tocsr()
    degree = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    normalized = sp.csr_matrix(sp.diags(1.0 / degree) @ matrix)
    normalized.sum_duplicates()
    normalized.sort_indices()
    return normalized


def rhop_adjacency(normalized: Any, order: int, cumulative: bool = True) -> sp.csr_matrix:
    """The r-hop adjacency ``A_r = sum_{t=1..r} A_hat^t`` (``cumulative``) or ``A_hat^r``.

    PamC's positives with the reference's ``--influence`` option (``get_A_r_flexSP`` with
    ``cumulative=True``): every walk of length at most ``r`` from ``i`` to ``j`` adds its
    probability to ``A_r[i, j]``. Computed with sparse products; the number of stored entries
    grows with ``order`` as the r-hop neighbourhoods do, never to a dense ``n x n`` unless the
    neighbourhoods cover the graph.

    Parameters
    ----------
    normalized : scipy.sparse matrix, shape (n, n)
        ``A_hat`` from :func:`normalized_adjacency`.
    order : int >= 1
        ``r``.
    cumulative : bool, default=True

    Returns
    -------
    scipy.sparse.csr_matrix of float64, sorted indices

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> a_hat = normalized_adjacency(sp.csr_matrix([[0, 1.0, 0], [1.0, 0, 1.0], [0, 1.0, 0]]))
    >>> rhop_adjacency(a_hat, 2).nnz  # 2 hops reach every node of a path of 3
    9
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an int >= 1; got {order!r}")
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


def sgc_features(X: Any, graph: Any, n_hops: int = 2) -> np.ndarray:
    """Graph-smoothed features ``S^K X`` of SGC, with ``S = D^-1/2 (A + I) D^-1/2``.

    Wu et al., "Simplifying Graph Convolutional Networks", ICML 2019: K rounds of the
    symmetrically normalised propagation with self loops. k-means on these features is the
    "graph-smoothed features" baseline of the PamC benchmark. A directed graph is made symmetric
    by ``max(A, A^T)`` first.

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
    adjacency = g.adjacency.maximum(g.adjacency.T) + sp.identity(g.n_nodes, format="csr")
    scale = 1.0 / np.sqrt(np.asarray(adjacency.sum(axis=1)).ravel())
    propagation = sp.csr_matrix(sp.diags(scale) @ adjacency @ sp.diags(scale))
    smoothed = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    smoothed = smoothed.astype(np.float64, copy=False)
    for _ in range(int(n_hops)):
        smoothed = propagation @ smoothed
    return np.asarray(smoothed)


def _share_changed(assignments: torch.Tensor, earlier: Optional[torch.Tensor]) -> float:
    """The share of nodes whose hard assignment differs from ``earlier`` (1.0 when there is none)."""
    return 1.0 if earlier is None else float((assignments != earlier).float().mean())


def _changes(assignments: torch.Tensor, recent: collections.deque) -> dict:
    """``changed`` since the last epoch and ``window_changed`` since ``recent.maxlen`` epochs before."""
    return {"changed": _share_changed(assignments, recent[-1] if recent else None),
            "window_changed": _share_changed(assignments, recent[0] if len(recent) == recent.maxlen else None)}


def _pair_tensors(matrix: sp.csr_matrix, device: torch.device, dtype: torch.dtype):
    """``(rows, cols, values)`` of the stored entries as torch tensors on ``device``."""
    coo = matrix.tocoo()
    return (torch.as_tensor(coo.row.astype(np.int64), device=device),
            torch.as_tensor(coo.col.astype(np.int64), device=device),
            torch.as_tensor(coo.data, device=device, dtype=dtype))


# -- the loss terms -----------------------------------------------------------------------------

def positive_term(z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
                  tau: float, n_anchors: Optional[int] = None) -> torch.Tensor:
    """PamC's positive term, over the stored entries of ``A_r`` only: ``O(nnz * d)``.

    ``-mean_i log( sum_j A_r[i, j] exp(tau * cos(z_i, z_j)) + 1e-10 )``, where self pairs
    (``i == j``) get similarity 0, as in the reference's ``NcontrastCCSP``. ``tau`` multiplies
    the similarity (an inverse temperature, though the reference calls it a temperature).

    Parameters
    ----------
    z : torch.Tensor of shape (m, d)
        Embeddings; the first ``n_anchors`` rows are the nodes ``i`` the mean runs over.
    rows, cols : torch.Tensor of int64, shape (nnz,)
        Entries ``(i, j)`` of ``A_r``, as positions in ``z``; ``rows < n_anchors``.
    values : torch.Tensor of shape (nnz,)
        ``A_r[i, j]``.
    tau : float
    n_anchors : int, optional
        Default: all rows of ``z``.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    n_anchors = z.shape[0] if n_anchors is None else int(n_anchors)
    positives = _positive_sums(F.normalize(z, dim=1), rows, cols, values, tau, n_anchors)
    return -torch.log(positives + _PAMC_EPS).mean()


def _positive_sums(unit: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, tau: float,
                   n_anchors: int) -> torch.Tensor:
    """``sum_j A_r[i, j] exp(tau * cos(z_i, z_j))`` per anchor ``i`` over the stored entries (self pairs: cos 0)."""
    similarity = (unit[rows] * unit[cols]).sum(dim=1).masked_fill(rows == cols, 0.0)
    return unit.new_zeros(n_anchors).index_add(0, rows, values * torch.exp(tau * similarity))


def meta_nodes(z: torch.Tensor, assignments: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """The meta-node of each cluster, the sum of its members' embeddings: ``c_k = sum_{i in k} z_i``.

    Always ``(n_clusters, d)``: an empty cluster's meta-node is the zero vector (the reference's
    ``F.one_hot`` drops trailing empty clusters instead, changing the shape).

    Examples
    --------
    >>> meta_nodes(torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0, 2]), 3)
    tensor([[3., 1.],
            [0., 0.],
            [0., 3.]])
    """
    return z.new_zeros((int(n_clusters), z.shape[1])).index_add(0, assignments, z)


def negative_term(z: torch.Tensor, assignments: torch.Tensor, n_clusters: int, tau: float) -> torch.Tensor:
    """PamC's negative term over the meta-nodes: ``O(n * d + k^2 * d)`` instead of ``O(n^2 * d)``.

    ``mean_k log( sum_l exp(tau * cos(c_k, c_l)) + 1e-10 )`` over all ``k = 1..n_clusters``, with
    ``c_k`` the meta-nodes (:func:`meta_nodes`) and the diagonal similarity ``cos(c_k, c_k)`` set
    to 0 (so each sum holds a constant 1), as the reference's ``get_feature_dis`` and
    ``NcontrastCCSP``.

    ``assignments`` are hard cluster labels (the reference's ``argmax q``, detached): gradients
    reach ``z`` through the meta-nodes but not through the assignments.

    An empty cluster's meta-node is the zero vector, whose cosine with anything counts as 0:
    the reference's formula with a one-hot matrix of fixed width ``n_clusters``. (The
    reference's ``F.one_hot`` without ``num_classes`` drops trailing empty clusters, which
    changes the shapes and makes emptying clusters pay, since one remaining cluster gives the
    minimum 0; an empty cluster before a non-empty one gives 0 / 0 = NaN there.)

    Parameters
    ----------
    z : torch.Tensor of shape (n, d)
    assignments : torch.Tensor of int64, shape (n,)
        Values in ``0 .. n_clusters - 1``.
    n_clusters : int
    tau : float

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    centers = meta_nodes(z, assignments, n_clusters)
    unit = F.normalize(centers, dim=1)  # the zero vector stays zero: cosine 0
    similarity = unit @ unit.T
    off_diagonal = 1.0 - torch.eye(int(n_clusters), dtype=z.dtype, device=z.device)
    sums = torch.exp(tau * similarity * off_diagonal).sum(dim=1)
    return torch.log(sums + _PAMC_EPS).mean()


class _ExpSimilarityRowSums(torch.autograd.Function):
    """``s_i = sum_j exp(tau * u_i . u_j)`` for the first ``n_anchors`` rows, with ``u_i . u_i``
    counted as 0, computed in row blocks; the backward pass recomputes each block instead of
    storing the ``n_anchors x n`` matrix, so memory stays ``O(block * n)``.

    Gradient: ``ds_i/du_i = tau sum_{j != i} e_ij u_j`` and ``ds_i/du_j = tau e_ij u_i``. When every
    row is an anchor, ``E`` is symmetric and the gradient of row ``i`` is
    ``tau sum_j e_ij (g_i u_j + g_j u_j)``: one product of each row block with ``[u, g * u]``.
    """

    @staticmethod
    def forward(ctx, unit, tau, n_anchors, block_rows):
        sums = unit.new_empty(n_anchors)
        scaled = unit[:n_anchors] * tau
        buffer = unit.new_empty((min(block_rows, n_anchors), unit.shape[0]))  # reused: no allocation per block
        for start in range(0, n_anchors, block_rows):
            stop = min(start + block_rows, n_anchors)
            block = torch.mm(scaled[start:stop], unit.T, out=buffer[: stop - start])
            block.diagonal(offset=start).zero_()
            torch.sum(block.exp_(), dim=1, out=sums[start:stop])
        ctx.save_for_backward(unit)
        ctx.tau, ctx.n_anchors, ctx.block_rows = tau, n_anchors, block_rows
        return sums

    @staticmethod
    def backward(ctx, grad_sums):
        (unit,) = ctx.saved_tensors
        tau, n_anchors, block_rows = ctx.tau, ctx.n_anchors, ctx.block_rows
        n, dim = unit.shape
        scaled = unit[:n_anchors] * tau
        grad = torch.zeros_like(unit)
        buffer = unit.new_empty((min(block_rows, n_anchors), n))
        symmetric = n_anchors == n
        if symmetric:
            both = torch.cat([unit, grad_sums[:, None] * unit], dim=1)
        for start in range(0, n_anchors, block_rows):
            stop = min(start + block_rows, n_anchors)
            block = torch.mm(scaled[start:stop], unit.T, out=buffer[: stop - start]).exp_()
            block.diagonal(offset=start).zero_()  # the self pair is the constant exp(0)
            g = grad_sums[start:stop, None]
            if symmetric:
                products = block @ both
                grad[start:stop] = tau * (g * products[:, :dim] + products[:, dim:])
            else:
                grad[start:stop] += tau * g * torch.mm(block, unit)
                grad.addmm_(block.T, g * unit[start:stop], alpha=tau)
        return grad, None, None, None


def pairwise_contrastive_loss(z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
                              tau: float, n_anchors: Optional[int] = None,
                              block_rows: Optional[int] = None) -> torch.Tensor:
    """The exact all-pairs loss PamC approximates: Graph-MLP's neighbourhood contrast (SCGC*).

    Hu et al., "Graph-MLP: Node Classification without Message Passing in Graph" (2021), as the
    SCGC / PAMC code calls it (``Ncontrast``)::

        -mean_i log( sum_j A_r[i, j] e_ij / sum_j e_ij + 1e-8 ),  e_ij = exp(tau * cos(z_i, z_j)),

    with ``cos(z_i, z_i)`` counted as 0. The numerator runs over the stored entries of ``A_r``;
    the denominator over all ``n`` nodes, ``O(n^2 * d)`` time, computed in blocks of
    ``block_rows`` rows with a hand-written backward pass that recomputes each block, so the
    memory is ``O(block_rows * n)`` rather than the reference's dense ``n x n`` matrices.

    Parameters
    ----------
    z, rows, cols, values, tau, n_anchors
        As :func:`positive_term`; the denominators run over all rows of ``z``.
    block_rows : int, optional
        Default: about ``2^24 / n`` rows (64 MiB of float32 per block).

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    n_anchors = z.shape[0] if n_anchors is None else int(n_anchors)
    unit = F.normalize(z, dim=1)
    positives = _positive_sums(unit, rows, cols, values, tau, n_anchors)
    if block_rows is None:
        block_rows = max(1, _PAIRWISE_BLOCK_ENTRIES // max(z.shape[0], 1))
    totals = _ExpSimilarityRowSums.apply(unit, float(tau), n_anchors, int(block_rows))
    return -torch.log(positives / totals + _GRAPH_MLP_EPS).mean()


def student_t_assignments(z: torch.Tensor, centers: torch.Tensor, dof: float = 1.0) -> torch.Tensor:
    """DEC's soft assignments: ``q_ik ∝ (1 + |z_i - mu_k|^2 / dof)^(-(dof + 1) / 2)``, rows summing to 1.

    Xie, Girshick and Farhadi, "Unsupervised Deep Embedding for Clustering Analysis", ICML 2016.

    Examples
    --------
    >>> student_t_assignments(torch.tensor([[0.0], [2.0]]), torch.tensor([[0.0], [1.0]]))
    tensor([[0.6667, 0.3333],
            [0.2857, 0.7143]])
    """
    squared = (z.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)
    q = (1.0 + squared / dof).pow(-(dof + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened target ``p_ik ∝ q_ik^2 / f_k`` with cluster frequencies ``f_k = sum_i q_ik``.

    Examples
    --------
    >>> target_distribution(torch.tensor([[0.75, 0.25], [0.5, 0.5]]))
    tensor([[0.8438, 0.1563],
            [0.3750, 0.6250]])
    """
    weight = q.pow(2) / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def clustering_kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` per sample, ``sum_ik p_ik log(p_ik / q_ik) / n`` (``F.kl_div``, ``batchmean``)."""
    return F.kl_div(q.log(), p, reduction="batchmean")


def pamc_objective(z: torch.Tensor, centers: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                   values: torch.Tensor, *, tau: float, alpha: float, beta: float, loss: str = "pamc",
                   p: Optional[torch.Tensor] = None, n_anchors: Optional[int] = None,
                   block_rows: Optional[int] = None) -> dict:
    """The training loss ``beta * KL(p || q) + alpha * L`` of one step, with its terms.

    ``q`` are the Student's t assignments of the first ``n_anchors`` rows of ``z``; ``p`` is
    DEC's target (default: computed from ``q``, detached, as the reference does every epoch);
    the hard assignments of the meta-nodes are ``argmax q``, detached. ``L`` is PamC's
    ``positive_term + negative_term`` (``loss="pamc"``) or the all-pairs
    :func:`pairwise_contrastive_loss` (``loss="pairwise"``).

    Returns
    -------
    dict
        ``total``, ``kl``, ``contrast`` (tensors with gradients), ``positive`` and ``negative``
        (for PamC), ``q`` and ``assignments`` (detached).
    """
    n_anchors = z.shape[0] if n_anchors is None else int(n_anchors)
    anchors = z[:n_anchors]
    q = student_t_assignments(anchors, centers)
    if p is None:
        p = target_distribution(q.detach())
    kl = clustering_kl(q, p)
    assignments = q.detach().argmax(dim=1)
    terms = {"kl": kl, "q": q.detach(), "assignments": assignments}
    if loss == "pamc":
        terms["positive"] = positive_term(z, rows, cols, values, tau, n_anchors)
        terms["negative"] = negative_term(anchors, assignments, centers.shape[0], tau)
        terms["contrast"] = terms["positive"] + terms["negative"]
    elif loss == "pairwise":
        terms["contrast"] = pairwise_contrastive_loss(z, rows, cols, values, tau, n_anchors, block_rows)
    else:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
    terms["total"] = beta * kl + alpha * terms["contrast"]
    return terms


def kmeans_start(z: np.ndarray, n_clusters: int, n_init: int = 20, adjacency: Any = None,
                 random_state: Any = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The initial cluster centres: the best of ``n_init`` k-means runs on the embeddings ``z``.

    Without ``adjacency`` the best run is the one of least inertia (scikit-learn's
    ``KMeans(n_init=n_init)``, the reference's choice). With it, the best run is the one whose
    partition has the highest modularity on the graph (:func:`graphkit.metrics.modularity`;
    ties go to the lower inertia): a label-free score that, unlike the inertia, sees the graph
    the clustering is for. Each run is a k-means++ start and Lloyd's iterations.

    Parameters
    ----------
    z : ndarray of shape (n, d)
    n_clusters, n_init : int
    adjacency : scipy.sparse matrix of shape (n, n), optional
    random_state : None, int or numpy.random.RandomState

    Returns
    -------
    centers : ndarray of shape (n_clusters, d)
    labels : ndarray of shape (n,)
    scores : dict
        ``inertia`` and, with ``adjacency``, ``modularity`` of the chosen run, and
        ``modularities`` of all runs.
    """
    rng = backend.check_random_state(random_state).numpy
    z = np.asarray(z, dtype=np.float64)
    if adjacency is None:
        kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=rng).fit(z)
        return kmeans.cluster_centers_, kmeans.labels_, {"inertia": float(kmeans.inertia_)}
    modularity = _modularity_scorer(adjacency)
    best, best_key, modularities = None, None, []
    for seed in rng.randint(np.iinfo(np.int32).max, size=int(n_init)):
        kmeans = KMeans(n_clusters=n_clusters, n_init=1, random_state=int(seed)).fit(z)
        score = modularity(kmeans.labels_)
        modularities.append(score)
        key = (score, -kmeans.inertia_)
        if best_key is None or key > best_key:
            best, best_key = kmeans, key
    scores = {"inertia": float(best.inertia_), "modularity": float(best_key[0]), "modularities": modularities}
    return best.cluster_centers_, best.labels_, scores


# -- encoders -----------------------------------------------------------------------------------

def _linear_stack(sizes: Sequence[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


class MLPEncoder(nn.Module):
    """The reference encoder: ``n_input -> hidden... -> n_z``, ReLU between, linear output.

    With ``hidden=(500, 500, 2000)`` and ``n_z=10`` this is SDCN's autoencoder's encoder. Accepts
    a sparse CSR ``x`` (the first layer is then a sparse product).
    """

    def __init__(self, n_input: int, hidden: Sequence[int] = (500, 500, 2000), n_z: int = 10):
        super().__init__()
        self.layers = _linear_stack([n_input, *hidden, n_z])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class GCNEncoder(nn.Module):
    """A GCN encoder (PyTorch Geometric ``GCNConv`` layers) with the MLP encoder's sizes.

    An extension: the reference encoder is the MLP, where the graph enters only through the loss.
    Here every layer also propagates over the graph (symmetric normalisation with self loops).
    """

    def __init__(self, n_input: int, hidden: Sequence[int] = (500, 500, 2000), n_z: int = 10):
        super().__init__()
        from torch_geometric.nn import GCNConv

        sizes = [n_input, *hidden, n_z]
        self.layers = nn.ModuleList(GCNConv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: Optional[torch.Tensor] = None):
        for position, layer in enumerate(self.layers):
            x = layer(x, edge_index, edge_weight)
            if position < len(self.layers) - 1:
                x = F.relu(x)
        return x


class _MLPDecoder(nn.Module):
    def __init__(self, n_z: int, hidden: Sequence[int], n_output: int):
        super().__init__()
        self.layers = _linear_stack([n_z, *hidden, n_output])

    def forward(self, z):
        for layer in self.layers[:-1]:
            z = F.relu(layer(z))
        return self.layers[-1](z)


def _takes_graph(module: nn.Module) -> bool:
    """Whether a module's forward takes ``(x, edge_index, ...)`` rather than ``(x)``."""
    if isinstance(module, GCNEncoder):
        return True
    if isinstance(module, MLPEncoder):
        return False
    parameters = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(parameters) >= 2


# -- features -----------------------------------------------------------------------------------

class _Features:
    """Node features on the CPU (SciPy CSR or dense float NumPy), served as torch tensors.

    Sparse features (or dense ones with under 5% non-zeros) go through a sparse first layer on the
    CPU; on a GPU they are made dense.
    """

    def __init__(self, X: Any, sparse: bool, device: torch.device, dtype: torch.dtype):
        self.sparse = sparse and device.type == "cpu"
        self.device, self.dtype = device, dtype
        if self.sparse:
            self.matrix = sp.csr_matrix(X, dtype=np.float32 if dtype == torch.float32 else np.float64)
            self.matrix.sort_indices()
        else:
            self.matrix = np.array(X.toarray() if sp.issparse(X) else X,
                                   dtype=np.float32 if dtype == torch.float32 else np.float64)
        self.n_rows = self.matrix.shape[0]
        self._all = None

    @staticmethod
    def wants_sparse(X: Any) -> bool:
        n_entries = X.shape[0] * X.shape[1]
        if n_entries == 0:
            return False
        nnz = X.nnz if sp.issparse(X) else int(np.count_nonzero(X))
        return nnz / n_entries < _SPARSE_FEATURE_DENSITY

    def _tensor(self, block) -> torch.Tensor:
        if self.sparse:
            block = sp.csr_matrix(block)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                return torch.sparse_csr_tensor(
                    torch.from_numpy(block.indptr.astype(np.int64)), torch.from_numpy(block.indices.astype(np.int64)),
                    torch.from_numpy(block.data), size=block.shape, dtype=self.dtype, check_invariants=False,
                )
        return torch.as_tensor(block, device=self.device, dtype=self.dtype)

    def all(self) -> torch.Tensor:
        if self._all is None:
            self._all = self._tensor(self.matrix)
        return self._all

    def rows(self, index: np.ndarray) -> torch.Tensor:
        return self._tensor(self.matrix[index])

    def dense_rows(self, index: np.ndarray) -> torch.Tensor:
        block = self.matrix[index]
        block = block.toarray() if sp.issparse(block) else block
        return torch.as_tensor(block, device=self.device, dtype=self.dtype)


def _check_scale(X: Any, dtype: torch.dtype) -> None:
    """Refuse features so large that squared distances between rows overflow ``dtype``.

    PamC and MLC square differences of the features, or of activations that grow with them:
    kNN graphs and views, the pretraining's reconstruction error, Student's t assignments,
    BatchNorm's variances. Their networks are not scale invariant, so the features are not
    rescaled; values above ``sqrt(max / (4 n_features))`` (``max`` the largest float of
    ``dtype``), where a squared distance between two rows could overflow, are refused.
    """
    largest = float(max(abs(X.max()), abs(X.min())))
    limit = float(np.sqrt(torch.finfo(dtype).max / (4 * X.shape[1])))
    if largest > limit:
        raise ValueError(
            f"X holds values up to {largest:.3g}, beyond {limit:.3g}, where squared distances between its rows "
            f"({X.shape[1]} features) overflow {str(dtype).replace('torch.', '')}: scale X (e.g. with "
            f"sklearn.preprocessing.StandardScaler){_or_float64(dtype)}"
        )


def _or_float64(dtype: torch.dtype) -> str:
    """The suggestion of float64 in an overflow message, where ``dtype`` is narrower."""
    return "" if dtype == torch.float64 else ", or use dtype='float64'"


# -- the estimator ------------------------------------------------------------------------------

class PamC(ClusterMixin, BaseEstimator):
    """PamC: block-contrastive deep graph clustering with meta-node negatives, in linear time.

    Kulatilleke, Portmann and Chandra, "Efficient block contrastive learning via parameter-free
    meta-node approximation", arXiv:2209.14067 (2022), as the authors' code computes it
    (``train.py --model SCGC_TRIMPOSCCSP --influence``):

    1. an encoder (the reference's MLP ``n_input -> 500 -> 500 -> 2000 -> 10``) is pretrained
       as the encoder half of an SDCN autoencoder on the features (MSE, Adam 1e-3, batches of
       256, 30 epochs);
    2. k-means on its embeddings gives the initial cluster centres (the best of ``n_init=20``
       runs; see ``init_selection``);
    3. ``n_epochs`` full-batch Adam steps on ``beta * KL(p || q) + alpha * L_PamC``, where ``q``
       are Student's t soft assignments, ``p`` DEC's sharpened target recomputed every epoch,
       and ``L_PamC`` the positive term over the r-hop adjacency ``A_r = sum_{t<=r} A_hat^t``
       (:func:`positive_term`) plus the negative term over the clusters' meta-nodes
       (:func:`negative_term`).

    Where this differs from the reference code:

    - The k-means start is, by default, the one of ``n_init`` runs whose partition has the
      highest modularity on the graph (``init_selection="modularity"``, :func:`kmeans_start`),
      not the one of least inertia (``init_selection="inertia"``, the reference). The start
      decides much of the result, and on a graph with community structure the modularity of a
      start tracks its accuracy where the inertia does not (on Citeseer, across 30 k-means runs
      on one pretrained embedding, the correlation of modularity and ACC was 0.65-0.94). Over
      10 seeds on Citeseer (``benchmarks/pamc_clustering.py``) this raised the mean starting ACC
      from 0.532 to 0.555 and the final ACC from 0.630 to 0.656 (all-pairs loss: 0.681 to
      0.696). Label-free, and at the cost of the same ``n_init`` k-means runs.
    - Training stops by DEC's label-free rule (Xie et al., "Unsupervised deep embedding for
      clustering analysis", ICML 2016), with DEC's ``tol`` = 0.1%: once the hard assignments
      differ from those ``tol_interval`` epochs earlier in fewer than 0.1% of the nodes
      (``n_epochs`` is then a maximum). DEC compares assignments 140 mini-batch steps apart; in
      full-batch training one epoch is one step, and a change of one node per epoch (below 0.1%
      for n < 1000) can still be steady progress, hence the interval of 10 epochs. The
      reference runs all 200 epochs (``tol=0`` does too). In ``benchmarks/pamc_clustering.py``,
      on Citeseer from the same 10 SDCN autoencoders and k-means starts, stopping (after 70
      epochs on average) gave the same final mean ACC / NMI as all 200 epochs (0.674 / 0.426)
      in a third of the time; on Cora (our pretraining) the final ACC was 0.586 against 0.601
      in the 200-epoch report.
    - ``labels_`` are the assignments of the epoch training stopped at; the paper's figures take
      the best epoch per metric chosen with the true labels. With ``y`` given to :meth:`fit`,
      ``history_`` holds ACC/NMI/ARI/F1 per epoch, so that figure can be computed, and labelled
      as such.
    - An empty cluster keeps a zero meta-node, of cosine 0 with every other (the reference's
      ``one_hot`` shrinks when the last cluster is empty, which rewards emptying clusters, and
      gives NaN for an empty cluster before a non-empty one).
    - One forward pass per epoch (the reference runs a second one to recompute ``p``; same
      values), a sparse first layer for sparse features, and no profiler.
    - ``loss="pairwise"`` runs the all-pairs loss in row blocks (linear memory); the reference's
      all-pairs script calls an ``Ncontrast`` its repository does not define.
    - Edge weights of a weighted graph are kept; a directed graph is made symmetric (as the
      reference does for its edge lists).

    Checked against the authors' code (``benchmarks/pamc_clustering.py --authors-code``): on
    Citeseer, from the same pretrained autoencoder and with ``init_selection="inertia"`` (their
    start rule) and all 200 epochs (``tol=0``), the two reach the same ACC (to within 0.005) seed
    by seed wherever theirs does not turn NaN (which it did for 5 of 10 seeds).

    Parameters
    ----------
    n_clusters : int, default=8
    encoder : {"mlp", "gcn"} or torch.nn.Module, default="mlp"
        ``"mlp"``: the reference encoder (:class:`MLPEncoder`). ``"gcn"``: PyTorch Geometric
        ``GCNConv`` layers of the same sizes (:class:`GCNEncoder`; an extension). A module is
        copied and called as ``module(x)``, or as ``module(x, edge_index)`` when its ``forward``
        takes two required arguments (PyTorch Geometric style); its output is the embedding.
    hidden : sequence of int, default=(500, 500, 2000)
        Hidden layer sizes of the encoder (and, reversed, of the pretraining decoder).
    n_z : int, default=10
        Embedding dimension.
    loss : {"pamc", "pairwise"}, default="pamc"
        ``"pairwise"``: the exact all-pairs loss (SCGC*, :func:`pairwise_contrastive_loss`), the
        ``O(n^2)`` baseline PamC approximates.
    order : int, default=1
        ``r``, the hops of the positives.
    cumulative : bool, default=True
        ``A_r = sum_{t=1..r} A_hat^t`` (the reference's ``--influence``) or ``A_hat^r``.
    tau : float, default=1.0
        Multiplies the cosine similarities (an inverse temperature).
    alpha : float, default=2.0
        Weight of the contrastive loss.
    beta : float, default=2.0
        Weight of the KL clustering loss.
    pretrain_epochs : int, default=30
        Autoencoder pretraining epochs (0: none, the encoder keeps its random initialisation).
    pretrain_lr : float, default=1e-3
    pretrain_batch_size : int, default=256
        Mini-batch size of the pretraining (a graph-aware encoder takes as many full-batch steps).
    n_epochs : int, default=200
    lr : float, default=1e-3
    batch_size : int or None, default=None
        None trains full batch, as the reference. An int trains on mini-batches of that many
        nodes, each with its r-hop neighbours (whose embeddings the positives need); ``p`` is
        recomputed on all nodes once per epoch. Needs an encoder that does not take the graph.
    n_init : int, default=20
        k-means runs for the initial centres.
    init_selection : {"modularity", "inertia"}, default="modularity"
        How the best of the ``n_init`` runs is chosen: the highest modularity of its partition
        on the graph, or the least inertia (the reference's ``KMeans(n_init=20)``).
    n_neighbors : int, default=3
        Neighbours of the kNN graph built from ``X`` when no graph is given (SDCN uses 3 for
        USPS and Reuters, 5 for HHAR).
    tol : float, default=1e-3
        Stop when fewer than this share of the hard assignments changed over the last
        ``tol_interval`` epochs (DEC's label-free rule and value; 0 runs all ``n_epochs``, as the
        reference does).
    tol_interval : int, default=10
        Epochs between the two assignments the stopping rule compares (checked every epoch).
    random_state : None, int or numpy.random.RandomState
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    dtype : default="float32"
        A real floating dtype (complex ones are refused).
    verbose : int, default=1
        Progress bars.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        ``argmax q`` after the last epoch.
    soft_assignments_ : ndarray of shape (n_samples, n_clusters)
        ``q``.
    embedding_ : ndarray of shape (n_samples, n_z)
    cluster_centers_ : ndarray of shape (n_clusters, n_z)
        In the embedding space.
    encoder_ : torch.nn.Module
        The trained encoder (on the CPU).
    history_ : list of dict
        One per epoch: ``epoch``, ``loss``, ``kl``, ``contrast`` (and ``positive``, ``negative``
        for PamC), ``changed`` (share of hard assignments that moved since the previous epoch),
        ``window_changed`` (since ``tol_interval`` epochs before: what ``tol`` is compared with;
        1.0 for the first ``tol_interval`` epochs), ``seconds`` since training began, and
        ``acc``, ``nmi``, ``ari``, ``f1`` of the epoch's assignments when ``y`` was given
        (measured before the epoch's update, as the reference).
    pretrain_history_ : list of float
        Reconstruction MSE per pretraining epoch.
    init_scores_ : dict
        The k-means start's ``inertia`` and, with ``init_selection="modularity"``, its
        ``modularity`` and the ``modularities`` of all ``n_init`` runs.
    n_iter_ : int
        Training epochs run.
    n_features_in_ : int

    Examples
    --------
    >>> from graphkit import PamC, make_attributed_sbm
    >>> from graphkit.metrics import clustering_accuracy
    >>> data = make_attributed_sbm(n_nodes=300, n_clusters=3, n_features=16, feature_signal=3.0,
    ...                            random_state=0)
    >>> model = PamC(n_clusters=3, hidden=(64, 64), n_z=8, pretrain_epochs=10, n_epochs=50,
    ...              random_state=0, device="cpu", verbose=0)
    >>> labels = model.fit_predict(data.features, graph=data.graph)
    >>> clustering_accuracy(data.labels, labels) > 0.9
    True
    """

    def __init__(
        self,
        n_clusters: int = 8,
        encoder: Any = "mlp",
        hidden: Sequence[int] = (500, 500, 2000),
        n_z: int = 10,
        loss: str = "pamc",
        order: int = 1,
        cumulative: bool = True,
        tau: float = 1.0,
        alpha: float = 2.0,
        beta: float = 2.0,
        pretrain_epochs: int = 30,
        pretrain_lr: float = 1e-3,
        pretrain_batch_size: int = 256,
        n_epochs: int = 200,
        lr: float = 1e-3,
        batch_size: Optional[int] = None,
        n_init: int = 20,
        init_selection: str = "modularity",
        n_neighbors: int = 3,
        tol: float = 1e-3,
        tol_interval: int = 10,
        random_state: Any = None,
        device: Any = "auto",
        dtype: Any = "float32",
        verbose: int = 1,
    ):
        self.n_clusters = n_clusters
        self.encoder = encoder
        self.hidden = hidden
        self.n_z = n_z
        self.loss = loss
        self.order = order
        self.cumulative = cumulative
        self.tau = tau
        self.alpha = alpha
        self.beta = beta
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_batch_size = pretrain_batch_size
        self.n_epochs = n_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.n_init = n_init
        self.init_selection = init_selection
        self.n_neighbors = n_neighbors
        self.tol = tol
        self.tol_interval = tol_interval
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # -- validation -----------------------------------------------------------------------------

    def _validate_params(self) -> None:
        def positive_int(name, allow_zero=False, allow_none=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
                raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} int"
                                 f"{' or None' if allow_none else ''}; got {value!r}")

        def number(name, positive=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) \
                    or value < 0 or (positive and value == 0):
                raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} finite number; "
                                 f"got {value!r}")

        for name in ("n_clusters", "n_z", "order", "pretrain_batch_size", "n_init", "n_neighbors"):
            positive_int(name)
        for name in ("pretrain_epochs", "n_epochs"):
            positive_int(name, allow_zero=True)
        positive_int("batch_size", allow_none=True)
        positive_int("tol_interval")
        for name in ("pretrain_lr", "lr"):
            number(name, positive=True)
        for name in ("tau", "alpha", "beta", "tol"):
            number(name)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; got {self.loss!r}")
        if self.init_selection not in INIT_SELECTIONS:
            raise ValueError(f"init_selection must be one of {INIT_SELECTIONS}; got {self.init_selection!r}")
        if not isinstance(self.encoder, nn.Module) and self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS} or a torch.nn.Module; got {self.encoder!r}")
        real_dtype(self.dtype)
        hidden = self.hidden
        if np.ndim(hidden) != 1 or not all(
                isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must be a sequence of positive ints; got {hidden!r}")

    def _check_X(self, X: Any, reset: bool) -> Any:
        reject_complex(X, "X")
        if isinstance(X, torch.Tensor):
            X = backend.to_numpy(X)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=reset)
        _check_scale(X, backend.resolve_dtype(self.dtype))
        return X

    def _divergence_hint(self, dtype: torch.dtype) -> str:
        """The likely cause of non-finite values in training, and what to change."""
        return (f"the network overflowed {str(dtype).replace('torch.', '')}: scale X (e.g. with "
                f"sklearn.preprocessing.StandardScaler), lower lr and pretrain_lr{_or_float64(dtype)}")

    @staticmethod
    def _looks_like_graph(obj: Any) -> bool:
        if obj is None:
            return False
        if isinstance(obj, (Graph, str, os.PathLike, tuple)) or sp.issparse(obj):
            return True
        if hasattr(obj, "edge_index") or type(obj).__module__.startswith("networkx"):
            return True
        try:
            return np.ndim(obj) == 2
        except (TypeError, ValueError):
            return False

    def _graph_for(self, X: Any, graph: Any) -> Graph:
        if graph is None:
            return knn_graph(X, n_neighbors=self.n_neighbors)
        g = as_graph(graph)
        if g.n_nodes != X.shape[0]:
            raise ValueError(
                f"graph has {g.n_nodes} nodes but X has {X.shape[0]} rows; X needs one row of features per node, "
                "in the graph's node order"
            )
        return g

    # -- fitting --------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, graph: Any = None) -> "PamC":
        """Pretrain the encoder, initialise the centres with k-means and train with the PamC loss.

        Parameters
        ----------
        X : array-like, sparse matrix or torch.Tensor of shape (n_samples, n_features)
            Node features, one row per node in the graph's node order.
        y : array-like of shape (n_samples,), optional
            True labels, used only to record ACC/NMI/ARI/F1 per epoch in ``history_`` (never to
            fit). A graph passed here, as in ``fit(X, graph)``, is taken as ``graph``.
        graph : graph-like, optional
            Anything :func:`graphkit.as_graph` accepts (a :class:`~graphkit.Graph`, SciPy or dense
            adjacency, edge arrays, networkx, PyTorch Geometric). Default: the kNN graph of ``X``
            (``n_neighbors``), as SDCN does for data without a graph.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            For complex ``X`` (before any cast could drop the imaginary part).
        ValueError
            For a bad parameter (named), including a complex ``dtype``; for ``X`` holding NaN or
            infinity, or values so large that squared distances between rows overflow ``dtype``
            (scale ``X``); for a graph whose size does not match ``X``.
        tensorkit.validation.NonFiniteResultError
            A ``ValueError``: when the pretraining or training loss, the embeddings or the soft
            assignments become NaN or infinite (the message suggests scaling ``X``, lowering the
            learning rates, or float64).
        """
        if graph is None and self._looks_like_graph(y):
            y, graph = None, y
        self._validate_params()
        X = self._check_X(X, reset=True)
        n_samples = X.shape[0]
        if self.n_clusters > n_samples:
            raise ValueError(f"n_clusters={self.n_clusters} must not exceed the number of samples (n_samples={n_samples})")
        labels = None
        if y is not None:
            labels = np.asarray(backend.to_numpy(y) if isinstance(y, torch.Tensor) else y)
            if labels.ndim != 1 or len(labels) != n_samples:
                raise ValueError(f"y must hold one label per sample ({n_samples}); got shape {labels.shape}")
        g = self._graph_for(X, graph)
        device = backend.resolve_device(self.device)
        dtype = backend.resolve_dtype(self.dtype)
        source = backend.check_random_state(self.random_state)

        a_r = rhop_adjacency(normalized_adjacency(g.adjacency), self.order, self.cumulative)
        self._sparse_features = _Features.wants_sparse(X)
        features = _Features(X, self._sparse_features, device, dtype)
        encoder = self._new_encoder(X.shape[1], source.seed).to(device=device, dtype=dtype)
        takes_graph = _takes_graph(encoder)
        if takes_graph and self.batch_size is not None and self.batch_size < n_samples:
            raise ValueError("batch_size needs an encoder that does not take the graph (encoder='mlp' or a "
                             "module called as module(x)); use batch_size=None")
        graph_inputs = self._graph_inputs(g, device, dtype) if takes_graph else None

        self.pretrain_history_ = self._pretrain(encoder, features, graph_inputs, source, device, dtype)
        with torch.no_grad():
            z = self._embed(encoder, features, graph_inputs)
        check_finite_result(z, "PamC's pretrained embedding", hint=self._divergence_hint(dtype))
        start, _, self.init_scores_ = kmeans_start(
            z.detach().cpu().numpy(), self.n_clusters, self.n_init,
            g.adjacency if self.init_selection == "modularity" else None, source.numpy)
        centers = nn.Parameter(torch.as_tensor(start, device=device, dtype=dtype))

        self.history_ = self._train(encoder, centers, features, graph_inputs, a_r, labels, source, device, dtype)
        self.n_iter_ = len(self.history_)
        with torch.no_grad():
            z = self._embed(encoder, features, graph_inputs)
            q = student_t_assignments(z, centers)
        for result, what in ((z, "PamC's embedding"), (centers, "PamC's cluster centres"),
                             (q, "PamC's soft assignments")):
            check_finite_result(result.detach(), what, hint=self._divergence_hint(dtype))
        self.embedding_ = backend.to_numpy(z)
        self.soft_assignments_ = backend.to_numpy(q)
        self.labels_ = self.soft_assignments_.argmax(axis=1).astype(np.int64)
        self.cluster_centers_ = backend.to_numpy(centers.detach())
        self.encoder_ = encoder.cpu().eval()
        return self

    def fit_predict(self, X: Any, y: Any = None, graph: Any = None) -> Any:
        """Fit and return ``labels_`` (a torch tensor when ``X`` is one)."""
        return backend.to_output(self.fit(X, y, graph=graph).labels_, like=X)

    def predict(self, X: Any, graph: Any = None) -> Any:
        """Cluster of each sample under the fitted encoder and centres: ``argmax q``.

        Parameters
        ----------
        X : array-like, sparse matrix or torch.Tensor of shape (n_samples, n_features)
        graph : graph-like, optional
            Only a graph-aware encoder (``"gcn"``) uses it; default the kNN graph of ``X``.
            The MLP encoder embeds each row on its own.

        Returns
        -------
        ndarray (or torch.Tensor when ``X`` is one) of shape (n_samples,)

        Raises
        ------
        TypeError, ValueError
            For ``X`` as :meth:`fit` refuses it, or of another width than the training features.
        tensorkit.validation.NonFiniteResultError
            When the soft assignments of ``X`` are NaN or infinite.
        """
        check_is_fitted(self, "cluster_centers_")
        features_in = X
        X = self._check_X(X, reset=False)
        device = backend.resolve_device(self.device)
        dtype = backend.resolve_dtype(self.dtype)
        encoder = self.encoder_ if device.type == "cpu" else copy.deepcopy(self.encoder_).to(device)
        graph_inputs = None
        if _takes_graph(encoder):
            graph_inputs = self._graph_inputs(self._graph_for(X, graph), device, dtype)
        elif graph is not None:
            self._graph_for(X, graph)  # checks its size only
        features = _Features(X, self._sparse_features, device, dtype)
        with torch.no_grad():
            z = self._embed(encoder, features, graph_inputs)
            q = student_t_assignments(z, torch.as_tensor(self.cluster_centers_, device=device, dtype=dtype))
        check_finite_result(q, "PamC's soft assignments", hint=self._divergence_hint(dtype))
        return backend.to_output(q.argmax(dim=1).cpu().numpy().astype(np.int64), like=features_in)

    # -- steps ----------------------------------------------------------------------------------

    def _new_encoder(self, n_input: int, seed: int) -> nn.Module:
        if isinstance(self.encoder, nn.Module):
            return copy.deepcopy(self.encoder)
        # Parameters are drawn from a seeded copy of torch's CPU generator; the global state is restored.
        with backend.torch_seeded(seed):
            cls = MLPEncoder if self.encoder == "mlp" else GCNEncoder
            return cls(n_input, tuple(int(h) for h in self.hidden), int(self.n_z))

    @staticmethod
    def _graph_inputs(g: Graph, device: torch.device, dtype: torch.dtype):
        symmetric = sp.coo_matrix(g.adjacency.maximum(g.adjacency.T))
        edge_index = torch.as_tensor(np.vstack([symmetric.row, symmetric.col]).astype(np.int64), device=device)
        return edge_index, torch.as_tensor(symmetric.data, device=device, dtype=dtype)

    @staticmethod
    def _forward(encoder: nn.Module, x: torch.Tensor, graph_inputs) -> torch.Tensor:
        if graph_inputs is None:
            return encoder(x)
        if isinstance(encoder, GCNEncoder):
            return encoder(x, *graph_inputs)
        return encoder(x, graph_inputs[0])

    def _embed(self, encoder: nn.Module, features: _Features, graph_inputs) -> torch.Tensor:
        """Embeddings of all nodes (call under ``torch.no_grad``)."""
        if graph_inputs is not None or features.n_rows <= _INFERENCE_ROWS:
            return self._forward(encoder, features.all(), graph_inputs)
        index = np.arange(features.n_rows)
        return torch.cat([self._forward(encoder, features.rows(chunk), None)
                          for chunk in np.array_split(index, math.ceil(features.n_rows / _INFERENCE_ROWS))])

    def _pretrain(self, encoder, features, graph_inputs, source, device, dtype) -> list:
        if self.pretrain_epochs == 0:
            return []
        with torch.no_grad():
            n_z_out = self._forward(encoder, features.rows(np.arange(min(features.n_rows, 2))), None).shape[1] \
                if graph_inputs is None else self._forward(encoder, features.all(), graph_inputs).shape[1]
        with backend.torch_seeded(source.seed + 1):
            decoder = _MLPDecoder(n_z_out, tuple(int(h) for h in self.hidden)[::-1], features.matrix.shape[1])
        decoder = decoder.to(device=device, dtype=dtype)
        optimizer = backend.adam(list(encoder.parameters()) + list(decoder.parameters()), lr=self.pretrain_lr)
        n = features.n_rows
        n_steps = math.ceil(n / self.pretrain_batch_size)
        history = []
        bar = progress(range(self.pretrain_epochs), self.verbose, desc="PamC pretraining")
        for _ in bar:
            total = 0.0
            if graph_inputs is not None:
                x, target = features.all(), features.dense_rows(np.arange(n))
                for _ in range(n_steps):
                    loss = F.mse_loss(decoder(self._forward(encoder, x, graph_inputs)), target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * n
            else:
                order = torch.randperm(n, generator=source.torch).numpy()
                for batch in np.array_split(order, n_steps):
                    loss = F.mse_loss(decoder(encoder(features.rows(batch))), features.dense_rows(batch))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(batch)
            history.append(total / (n * (n_steps if graph_inputs is not None else 1)))
            check_finite_result(np.float64(history[-1]), "PamC's pretraining loss (reconstruction MSE)",
                                hint=self._divergence_hint(dtype))
            bar.set_postfix(mse=f"{history[-1]:.4g}")
        return history

    def _train(self, encoder, centers, features, graph_inputs, a_r, labels, source, device, dtype) -> list:
        n = features.n_rows
        optimizer = backend.adam(list(encoder.parameters()) + [centers], lr=self.lr)
        hyper = dict(tau=float(self.tau), alpha=float(self.alpha), beta=float(self.beta), loss=self.loss)
        mini_batch = self.batch_size is not None and self.batch_size < n
        pairs = None if mini_batch else _pair_tensors(a_r, device, dtype)
        history = []
        recent = collections.deque(maxlen=self.tol_interval)  # the assignments of the last epochs
        started = time.perf_counter()
        bar = progress(range(self.n_epochs), self.verbose, desc="PamC")
        for epoch in bar:
            if mini_batch:
                record, assignments = self._mini_batch_epoch(encoder, centers, features, a_r, optimizer, hyper,
                                                             source, device, dtype, recent)
            else:
                z = self._forward(encoder, features.all(), graph_inputs)
                terms = pamc_objective(z, centers, *pairs, **hyper)
                assignments = terms["assignments"]
                record = {name: terms[name].item() for name in ("total", "kl", "contrast", "positive", "negative")
                          if name in terms}
                record.update(_changes(assignments, recent))
                if not self._converged(record):
                    optimizer.zero_grad()
                    terms["total"].backward()
                    optimizer.step()
            record["loss"] = record.pop("total")
            check_finite_result(np.float64(record["loss"]), "PamC's training loss", hint=self._divergence_hint(dtype))
            record = {"epoch": epoch, **record, "seconds": time.perf_counter() - started}
            if labels is not None:
                record.update(clustering_scores(labels, assignments.cpu().numpy()))
            history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4g}")
            if self._converged(record):
                break
            recent.append(assignments)
        return history

    def _converged(self, record: dict) -> bool:
        """The stopping rule: fewer than ``tol`` of the assignments changed over ``tol_interval`` epochs."""
        return self.tol > 0 and record["window_changed"] < self.tol

    def _mini_batch_epoch(self, encoder, centers, features, a_r, optimizer, hyper, source, device, dtype, recent):
        """One epoch over mini-batches; returns the epoch's record and the assignments it began with."""
        n = features.n_rows
        with torch.no_grad():
            q_all = student_t_assignments(self._embed(encoder, features, None), centers)
            p_all = target_distribution(q_all)
        assignments = q_all.argmax(dim=1)
        record = {"total": 0.0, "kl": 0.0, "contrast": 0.0}
        if hyper["loss"] == "pamc":
            record.update(positive=0.0, negative=0.0)
        shares = _changes(assignments, recent)
        if self._converged(shares):
            return {**record, **shares}, assignments
        order = torch.randperm(n, generator=source.torch).numpy()
        lookup = np.full(n, -1, dtype=np.int64)
        batches = np.array_split(order, math.ceil(n / self.batch_size))
        for batch in batches:
            block = a_r[batch]
            neighbours = np.setdiff1d(block.indices, batch)
            nodes = np.concatenate([batch, neighbours])
            lookup[nodes] = np.arange(len(nodes))
            rows = np.repeat(np.arange(len(batch)), np.diff(block.indptr))
            cols = lookup[block.indices]
            lookup[nodes] = -1
            z = encoder(features.rows(nodes))
            terms = pamc_objective(
                z, centers, torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device),
                torch.as_tensor(block.data, device=device, dtype=dtype), p=p_all[torch.as_tensor(batch, device=device)],
                n_anchors=len(batch), **hyper)
            optimizer.zero_grad()
            terms["total"].backward()
            optimizer.step()
            for name in record:
                if name in terms:
                    record[name] += terms[name].item() * len(batch) / n
        return {**record, **shares}, assignments

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
