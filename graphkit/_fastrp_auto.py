"""FastRP's beta and iteration weights chosen without labels, by link prediction on held-out edges.

A share of the graph's edges is held out; each candidate setting embeds the rest, and is scored by
how well the cosine similarity of two nodes' embeddings tells the held-out edges from as many
random pairs of nodes (the area under the ROC curve). :class:`graphkit.FastRP` uses this for
``normalization_strength="auto"`` and ``iteration_weights="auto"``. This choice is not part of the
FastRP paper (Chen et al., CIKM 2019), whose authors tuned beta and the weights on labels; link
prediction on held-out edges is the usual label-free check of an embedding (e.g. Grover and
Leskovec, node2vec, KDD 2016, section 4.4).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.stats import mannwhitneyu

from graphkit._fastrp_core import fastrp_iterates, transition_tensor, weighted_terms
from tensorkit.utils import progress
from tensorkit.validation import NonFiniteResultError

__all__ = ["AUTO_BETAS", "AUTO_ITERATION_WEIGHTS", "choose_by_link_prediction", "hold_out_edges", "link_prediction_auc"]

# Today's defaults first, so that a tie keeps them.
AUTO_BETAS = (0.0, -1.0, -0.5, 0.5, 1.0, 2.0)
AUTO_ITERATION_WEIGHTS = ((0.0, 1.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 6.67))
MIN_EDGES = 10
MAX_HELD_OUT = 10_000   # enough for AUC differences of 0.01 (its standard error is about 0.003)


def hold_out_edges(adjacency: sp.csr_matrix, directed: bool, share: float,
                   seed: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Hold out ``share`` of the edges (at most ``MAX_HELD_OUT``; self loops stay) and draw as many
    random pairs of nodes.

    Parameters
    ----------
    adjacency : scipy.sparse.csr_matrix
        Square; symmetric unless ``directed``.
    directed : bool
        An undirected edge is held out in both directions.
    share : float in (0, 1)
    seed : int

    Returns
    -------
    kept : scipy.sparse.csr_matrix
        The adjacency without the held-out edges.
    pairs : ndarray of shape (2 * n_held_out, 2)
        The held-out edges, then the random pairs (distinct nodes, drawn uniformly; a few may be
        edges, as in the usual protocol).
    is_edge : ndarray of bool, shape (2 * n_held_out,)

    Raises
    ------
    ValueError
        With fewer than ``MIN_EDGES`` edges between distinct nodes.
    """
    coo = (adjacency if directed else sp.triu(adjacency, k=1)).tocoo()
    candidates = np.flatnonzero(coo.row != coo.col)
    if len(candidates) < MIN_EDGES:
        raise ValueError(f"choosing FastRP's settings by link prediction needs at least {MIN_EDGES} edges between "
                         f"distinct nodes, to hold some out; this graph has {len(candidates)}: give "
                         "normalization_strength and iteration_weights as numbers")
    rng = np.random.default_rng(seed)
    held = rng.choice(candidates, size=min(MAX_HELD_OUT, max(1, int(round(share * len(candidates))))), replace=False)
    rows, cols = coo.row[held], coo.col[held]
    removed = sp.csr_matrix((np.ones(len(held)), (rows, cols)), shape=adjacency.shape)
    if not directed:
        removed = removed + removed.T
    kept = adjacency - adjacency.multiply(removed)
    kept.eliminate_zeros()
    n_nodes = adjacency.shape[0]
    first = rng.integers(0, n_nodes, size=len(held))
    second = (first + rng.integers(1, n_nodes, size=len(held))) % n_nodes   # never the node itself
    pairs = np.concatenate([np.column_stack([rows, cols]), np.column_stack([first, second])]).astype(np.int64)
    return kept.tocsr(), pairs, np.repeat([True, False], len(held))


def link_prediction_auc(embedding: torch.Tensor, pairs: np.ndarray, is_edge: np.ndarray) -> float:
    """Area under the ROC curve of the cosine similarity of each pair's rows, against ``is_edge``
    (the Mann-Whitney U statistic over the number of (edge, non-edge) pairs; ties count half)."""
    index = torch.as_tensor(pairs, device=embedding.device)
    unit = torch.nn.functional.normalize(embedding, dim=1)
    similarity = (unit.index_select(0, index[:, 0]) * unit.index_select(0, index[:, 1])).sum(dim=1)
    similarity = similarity.to(torch.float64).cpu().numpy()
    edges, others = similarity[is_edge], similarity[~is_edge]
    return float(mannwhitneyu(edges, others).statistic / (len(edges) * len(others)))


def choose_by_link_prediction(
    kept: sp.csr_matrix,
    pairs: np.ndarray,
    is_edge: np.ndarray,
    initial_vectors: Callable[[float], torch.Tensor],
    betas: Sequence[float],
    weightings: Sequence[Sequence[float]],
    *,
    self_influence: float = 0.0,
    normalize: bool = True,
    standardize: bool = True,
    verbose: int = 0,
) -> dict:
    """Score every ``(beta, weights)`` by :func:`link_prediction_auc` of its embedding of ``kept``.

    One propagation per beta serves every weighting (:func:`graphkit.fastrp.fastrp_iterates`).

    Parameters
    ----------
    kept : scipy.sparse.csr_matrix
        The graph without the held-out edges (:func:`hold_out_edges`).
    pairs, is_edge : ndarray
        The held-out edges and random pairs to score.
    initial_vectors : callable
        ``initial_vectors(beta)``: FastRP's starting vectors for ``kept`` at that beta (the device
        and dtype of the work). A beta whose factors ``degree ** beta`` it cannot hold (it raises
        :class:`~tensorkit.validation.NonFiniteResultError`) is skipped, scored NaN.
    betas, weightings : sequences
        The candidates; ties go to the earliest.
    self_influence, normalize, standardize, verbose
        As :class:`graphkit.FastRP`'s.

    Returns
    -------
    dict
        ``params`` (a list of ``{"normalization_strength", "iteration_weights"}``), ``auc`` (an
        array, one per candidate) and ``best_index``.
    """
    params, aucs, refused = [], [], None
    n_products = max(len(weights) for weights in weightings)
    transition: Optional[torch.Tensor] = None
    for beta in progress(list(betas), verbose=verbose, desc="FastRP settings"):
        try:
            initial = initial_vectors(float(beta))
        except NonFiniteResultError as error:
            refused = error
            params += [{"normalization_strength": float(beta), "iteration_weights": tuple(map(float, weights))}
                       for weights in weightings]
            aucs += [np.nan] * len(weightings)
            continue
        if transition is None:
            transition = transition_tensor(kept, device=initial.device, dtype=initial.dtype)
        terms = fastrp_iterates(transition, initial, n_products, normalize)
        for weights in weightings:
            total = weighted_terms(terms, weights, self_influence, standardize)
            params.append({"normalization_strength": float(beta),
                           "iteration_weights": tuple(float(weight) for weight in weights)})
            aucs.append(link_prediction_auc(total, pairs, is_edge))
    aucs = np.asarray(aucs)
    if np.isnan(aucs).all():
        raise refused
    return {"params": params, "auc": aucs, "best_index": int(np.nanargmax(aucs))}
