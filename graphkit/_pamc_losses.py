"""PamC's loss terms, DEC's cluster layer and the k-means start, one function per formula.

Each is compared with a dense NumPy reference in ``tests/graphkit/test_pamc.py``; the estimator is
:class:`graphkit.pamc.PamC`, where these names are also importable.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from graphkit.metrics import _modularity_scorer
from tensorkit import backend

__all__ = ["clustering_kl", "kmeans_start", "membership_weights", "meta_nodes", "negative_term",
           "node_negative_term", "pairwise_contrastive_loss", "pamc_objective", "positive_term",
           "student_t_assignments", "target_distribution"]

LOSSES = ("pamc", "pairwise")
NEGATIVES = ("nodes", "meta-nodes")
META_NODES = ("hard", "soft")

# The reference's epsilons: log(x_pos + 1e-10) in PamC, log(pos / all + 1e-8) in Graph-MLP.
_PAMC_EPS = 1e-10
_GRAPH_MLP_EPS = 1e-8
# Rows of the n x n similarity matrix held at once by the all-pairs loss: about 2^24 entries.
_PAIRWISE_BLOCK_ENTRIES = 2**24


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


def membership_weights(q: torch.Tensor, meta_nodes: str = "hard") -> torch.Tensor:
    """The ``(n, k)`` weights that build the meta-nodes from soft assignments ``q``, detached.

    ``"hard"``: the one-hot rows of ``argmax q`` (the authors' code); ``"soft"``: ``q`` itself (the
    paper's text: "learnt soft cluster assignments for the meta-node construction").

    Examples
    --------
    >>> membership_weights(torch.tensor([[0.7, 0.3], [0.4, 0.6]]))
    tensor([[1., 0.],
            [0., 1.]])
    """
    q = q.detach()
    if meta_nodes == "soft":
        return q
    if meta_nodes != "hard":
        raise ValueError(f"meta_nodes must be one of {META_NODES}; got {meta_nodes!r}")
    return F.one_hot(q.argmax(dim=1), q.shape[1]).to(q.dtype)


def meta_nodes(z: torch.Tensor, assignments: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """The meta-node of each cluster, the sum of its members' embeddings: ``c_k = sum_{i in k} z_i``.

    Always ``(n_clusters, d)``: an empty cluster's meta-node is the zero vector (the reference's
    ``F.one_hot`` drops trailing empty clusters instead, changing the shape). ``assignments`` are
    hard labels of shape ``(n,)``, or membership weights of shape ``(n, n_clusters)``
    (:func:`membership_weights`), which give ``c_k = sum_i w_ik z_i``.

    Examples
    --------
    >>> meta_nodes(torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0, 2]), 3)
    tensor([[3., 1.],
            [0., 0.],
            [0., 3.]])
    """
    if assignments.ndim == 2:
        return assignments.T @ z
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
    assignments : torch.Tensor of int64, shape (n,), or of shape (n, n_clusters)
        Hard labels in ``0 .. n_clusters - 1``, or membership weights (soft meta-nodes,
        :func:`membership_weights`).
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


def node_negative_term(z: torch.Tensor, weights: torch.Tensor, tau: float) -> torch.Tensor:
    """Each node against every cluster's meta-node, a block approximation of all its negatives: ``O(n k d)``.

    The all-pairs loss's denominator ``sum_j exp(tau * cos(z_i, z_j))`` (the self pair counted as
    ``exp(0) = 1``) taken cluster by cluster: the ``m_il`` other members of cluster ``l`` count
    as ``m_il`` pairs at their mean cosine with ``z_i``::

        mean_i log( 1 + sum_l m_il exp(tau * s_il / m_il) ),
        s_il = u_i . U_l - w_il,  U_l = sum_j w_jl u_j,  m_il = sum_j w_jl - w_il,

    with ``u`` the unit embeddings, ``w`` the membership weights (:func:`membership_weights`) and
    ``U_l`` the meta-node of unit embeddings. The sum of the cosines is exact (cosines of unit
    vectors add up: ``sum_j w_jl u_i . u_j = u_i . U_l``); only the exponential is taken at the
    mean, so for hard weights each block is a lower bound of the exact one (Jensen's inequality),
    equal to it when the block's members share one direction. There the whole term equals the
    exact denominator, and ``positive_term + node_negative_term`` equals
    :func:`pairwise_contrastive_loss`.

    This departs from the authors' code, whose negatives contrast meta-nodes with each other
    (:func:`negative_term`). That term does not see the clusters' sizes: every node but a few in
    one cluster, the few alone on their own directions, scores as well as the planted partition
    while its positive term is lower, and training drifts there (docs/pamc.md, "Why PamC
    collapsed"). Weighting each meta-node by its members makes the negatives proxy all ``n - 1``
    negatives of each node, as the paper describes, and a collapse pays as in the all-pairs loss.

    Parameters
    ----------
    z : torch.Tensor of shape (n, d)
    weights : torch.Tensor of shape (n, k)
        Membership weights, rows summing to 1 (gradients do not flow through them).
    tau : float

    Returns
    -------
    torch.Tensor
        A scalar.

    Examples
    --------
    >>> z = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    >>> weights = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> round(float(node_negative_term(z, weights, 1.0)), 4)
    1.4005
    """
    weights = weights.detach()
    unit = F.normalize(z, dim=1)
    cosine_sums = unit @ meta_nodes(unit, weights, weights.shape[1]).T - weights  # the self pair's cosine is 1
    others = weights.sum(dim=0) - weights
    mean_cosines = (cosine_sums / others.clamp_min(torch.finfo(z.dtype).tiny)).clamp(-1.0, 1.0)
    return torch.log1p((others * torch.exp(tau * mean_cosines)).sum(dim=1)).mean()


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
                   negatives: str = "nodes", meta_nodes: str = "hard", p: Optional[torch.Tensor] = None,
                   n_anchors: Optional[int] = None, block_rows: Optional[int] = None) -> dict:
    """The training loss ``beta * KL(p || q) + alpha * L`` of one step, with its terms.

    ``q`` are the Student's t assignments of the first ``n_anchors`` rows of ``z``; ``p`` is
    DEC's target (default: computed from ``q``, detached, as the reference does every epoch);
    the meta-nodes are built from ``q``, detached (:func:`membership_weights`: ``argmax q`` for
    ``meta_nodes="hard"``, ``q`` for ``"soft"``). ``L`` is PamC's ``positive_term`` plus its
    negatives (``loss="pamc"``): each node against the meta-nodes weighted by size
    (``negatives="nodes"``, :func:`node_negative_term`) or the meta-nodes against each other
    (``"meta-nodes"``, :func:`negative_term`, the authors' code); or the all-pairs
    :func:`pairwise_contrastive_loss` (``loss="pairwise"``).

    Returns
    -------
    dict
        ``total``, ``kl``, ``contrast`` (tensors with gradients), ``positive`` and ``negative``
        (for PamC), ``q`` and ``assignments`` (``argmax q``; both detached).
    """
    n_anchors = z.shape[0] if n_anchors is None else int(n_anchors)
    anchors = z[:n_anchors]
    q = student_t_assignments(anchors, centers)
    if p is None:
        p = target_distribution(q.detach())
    kl = clustering_kl(q, p)
    terms = {"kl": kl, "q": q.detach(), "assignments": q.detach().argmax(dim=1)}
    if loss == "pamc":
        terms["positive"] = positive_term(z, rows, cols, values, tau, n_anchors)
        if negatives == "nodes":
            terms["negative"] = node_negative_term(anchors, membership_weights(q, meta_nodes), tau)
        elif negatives == "meta-nodes":
            members = terms["assignments"] if meta_nodes == "hard" else membership_weights(q, meta_nodes)
            terms["negative"] = negative_term(anchors, members, centers.shape[0], tau)
        else:
            raise ValueError(f"negatives must be one of {NEGATIVES}; got {negatives!r}")
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
