"""FastRP's settings chosen on labelled nodes: :class:`FastRPSearchCV`.

Every candidate is scored by how well a linear classifier trained on some labelled nodes predicts
the labels of others, over a few random splits. One propagation serves every weighting of the
same starting vectors (:func:`graphkit.fastrp.fastrp_iterates`), so a grid over beta and the
iteration weights costs about one fit per beta.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ShuffleSplit
from sklearn.utils import check_random_state

from graphkit._fastrp_core import fastrp_iterates, transition_tensor, weighted_terms
from graphkit.fastrp import FastRP
from graphkit.io import as_graph
from graphkit.metrics import top_k_predictions
from tensorkit import backend
from tensorkit.base import StrOptions, integers, reals
from tensorkit.utils import progress

__all__ = ["DEFAULT_ALPHAS", "DEFAULT_SEARCH_GRID", "FastRPSearchCV"]

# Parameters one propagation serves: they weigh its terms or filter their sum.
_WEIGHTINGS = ("iteration_weights", "self_influence", "spectral_propagation")
# Ridge penalties tried for every candidate: half decades from 0.1 to 10,000.
DEFAULT_ALPHAS = tuple(float(10.0 ** (exponent / 2)) for exponent in range(-2, 9))
DEFAULT_SEARCH_GRID = {
    "normalization_strength": (-1.0, -0.5, 0.0, 0.5, 1.0, 2.0),
    "iteration_weights": ((0.0, 1.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 6.67)),
}


class FastRPSearchCV(BaseEstimator):
    """FastRP with its settings chosen on the labelled nodes of the graph it embeds.

    Each combination of ``param_grid`` is scored by ridge regression on the embedding of
    labelled nodes (one-hot or multi-label targets, each node predicted its ``k`` best labels,
    ``k`` its number of labels), trained on part of them and scored on the rest, over
    ``n_splits`` random splits, at every ridge penalty of ``alpha``: a combination's score is
    that of its best penalty (mean over the splits), so that a wide embedding is not judged by
    an under-regularised classifier. The best combination is then fitted afresh as
    ``best_estimator_``, whose embedding is :attr:`embedding_`. Ridge regression stands in for
    the logistic regression of the usual protocol because one eigendecomposition per split
    scores every penalty in milliseconds; the embedding itself never sees a label.

    ProNE's spectral propagation can be searched like any setting
    (``param_grid={"spectral_propagation": [False, True]}``): the candidates with ``True`` are
    filtered before they are scored (each filter costs about five fits). With
    ``estimator.spectral_propagation=True`` and no such entry, the candidates are scored
    without the filter, which is applied to the refitted best only.

    Parameters
    ----------
    estimator : FastRP, optional
        The settings not searched (default: ``FastRP()``).
    param_grid : dict, optional
        Candidate values per FastRP parameter (default :data:`DEFAULT_SEARCH_GRID`: beta and
        the iteration weights). ``iteration_weights`` and ``self_influence`` cost almost nothing
        to add; every other parameter multiplies the number of fits.
    n_splits : int, default=3
        Random splits of the labelled nodes.
    validation_size : float, default=0.5
        Share of the labelled nodes scored in each split.
    alpha : float or sequence of float, optional
        Ridge penalties of the scoring classifier; each combination is scored with its best
        (default :data:`DEFAULT_ALPHAS`, 0.1 to 10,000 in half decades). A single small
        penalty hardly regularises 512 columns fitted on a few hundred nodes and so favours
        narrow embeddings whatever their worth.
    scoring : {"micro_f1", "macro_f1"}, default="micro_f1"
    random_state : int, RandomState or None
        Draws the splits, and is the estimator's ``random_state`` when that is None.
    verbose : int, default=0
        A progress bar over the propagations.

    Attributes
    ----------
    best_params_ : dict
    best_score_ : float
        Mean validation score of the best combination (at its best penalty).
    best_alpha_ : float
        The ridge penalty that scored the best combination.
    best_index_ : int
    cv_results_ : dict of lists
        ``params``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        ``split<i>_test_score`` per combination (at its best penalty), ``alpha`` (that penalty)
        and ``propagation_seconds``.
    best_estimator_ : FastRP
        Fitted with the best combination; its ``transform`` embeds new nodes.
    embedding_, node_ids_ : numpy.ndarray
        Those of ``best_estimator_``.

    See Also
    --------
    graphkit.FastRP
    graphkit.fastrp.fastrp_iterates

    Examples
    --------
    >>> import networkx as nx
    >>> from graphkit import FastRPSearchCV
    >>> graph = nx.karate_club_graph()
    >>> clubs = [graph.nodes[node]["club"] for node in graph]
    >>> search = FastRPSearchCV(param_grid={"normalization_strength": [0.0, 1.0]}, random_state=0)
    >>> search.fit(graph, clubs).embedding_.shape
    (34, 128)
    >>> sorted(search.best_params_)
    ['normalization_strength']
    """

    _parameter_constraints: dict = {
        "estimator": [FastRP, None],
        "param_grid": [dict, None],
        "n_splits": [integers(1)],
        "validation_size": [reals(0, 1, closed="neither")],
        "alpha": [reals(0, closed="neither"), "array-like", None],
        "scoring": [StrOptions({"micro_f1", "macro_f1"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator: Optional[FastRP] = None, param_grid: Optional[dict] = None, *, n_splits: int = 3,
                 validation_size: float = 0.5, alpha: Any = None, scoring: str = "micro_f1",
                 random_state: Any = None, verbose: int = 0):
        self.estimator = estimator
        self.param_grid = param_grid
        self.n_splits = n_splits
        self.validation_size = validation_size
        self.alpha = alpha
        self.scoring = scoring
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any, nodes: Any = None) -> "FastRPSearchCV":
        """Score every combination on the labelled nodes, then fit the best.

        Parameters
        ----------
        X : graph-like
            Anything :func:`graphkit.as_graph` takes (held in memory).
        y : array-like of shape (n_labelled,) or (n_labelled, n_labels)
            Class labels, or a 0/1 (possibly sparse) multi-label matrix.
        nodes : array-like of shape (n_labelled,), optional
            The node ids ``y`` labels; by default every node, in the graph's order.

        Returns
        -------
        self
        """
        self._validate_params()
        graph = as_graph(X)
        base = clone(self.estimator) if self.estimator is not None else FastRP()
        grid = dict(DEFAULT_SEARCH_GRID if self.param_grid is None else self.param_grid)
        _check_grid(grid, base)
        random_state = check_random_state(self.random_state)
        if base.random_state is None:
            base.set_params(random_state=int(random_state.randint(2**31 - 1)))
        positions, targets = _labelled_targets(graph, y, nodes)
        alphas = _alphas(self.alpha)
        splits = list(ShuffleSplit(self.n_splits, test_size=self.validation_size,
                                   random_state=random_state).split(positions))
        candidates, scores, seconds = [], [], []
        groups = _groups(grid)
        for group, weightings in progress(groups, verbose=self.verbose, desc="FastRPSearchCV"):
            model = clone(base).set_params(**group)
            started = time.perf_counter()
            terms = _terms(model, graph, max(len(w.get("iteration_weights", model.iteration_weights)) for w in weightings))
            elapsed = time.perf_counter() - started
            for weighting in weightings:
                started = time.perf_counter()
                embedding = _weighted(terms, model, weighting, graph)[positions]
                candidates.append({**group, **weighting})
                scores.append([_split_scores(embedding, targets, train, held_out, alphas, self.scoring)
                               for train, held_out in splits])
                seconds.append(elapsed / len(weightings) + (time.perf_counter() - started
                                                            if weighting.get("spectral_propagation") else 0.0))
        self.cv_results_ = _results(candidates, np.asarray(scores), seconds, alphas)
        self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.best_alpha_ = float(self.cv_results_["alpha"][self.best_index_])
        self.best_estimator_ = clone(base).set_params(**self.best_params_).fit(graph)
        self.embedding_ = self.best_estimator_.embedding_
        self.node_ids_ = self.best_estimator_.node_ids_
        return self


def _check_grid(grid: dict, base: FastRP) -> None:
    known = set(base.get_params())
    for name in ("normalization_strength", "iteration_weights"):
        if isinstance(base.get_params()[name], str) and name not in grid:
            raise ValueError(f"the estimator's {name} is 'auto' (chosen without labels); FastRPSearchCV chooses "
                             f"from labels: give {name} as a number or put it in param_grid")
    for name, values in grid.items():
        if name not in known:
            raise ValueError(f"param_grid names {name!r}, which is not a FastRP parameter; FastRP's: {sorted(known)}")
        if name in ("random_state", "memory_budget", "device"):
            raise ValueError(f"param_grid cannot search {name!r}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise ValueError(f"param_grid[{name!r}] must be a non-empty sequence of candidate values; got {values!r}")
        if any(isinstance(value, str) and value == "auto" for value in values):
            raise ValueError(f"param_grid[{name!r}] holds 'auto': the grid's candidates are scored on labels, "
                             "so give numbers")


def _groups(grid: dict) -> list:
    """``[(parameters that need a propagation of their own, [weightings it serves])]``."""
    own = {name: values for name, values in grid.items() if name not in _WEIGHTINGS}
    weighting = {name: values for name, values in grid.items() if name in _WEIGHTINGS}
    weightings = [dict(zip(weighting, values)) for values in itertools.product(*weighting.values())]
    return [(dict(zip(own, values)), weightings) for values in itertools.product(*own.values())]


def _terms(model: FastRP, graph: Any, n_products: int) -> torch.Tensor:
    """``N(R), N(M R), ...`` for ``model``'s starting vectors on ``graph``, as its fit draws them."""
    device, dtype, source = model._fit_setup()
    model._start_in_memory(graph, None, device, dtype, source)
    transition = transition_tensor(graph.adjacency, device=device, dtype=dtype)
    return fastrp_iterates(transition, model._initial_vectors(device, dtype), n_products, model.normalize)


def _weighted(terms: torch.Tensor, model: FastRP, weighting: dict, graph: Any) -> np.ndarray:
    """The embedding ``model`` with ``weighting`` would fit, from the shared terms (filtered by
    spectral propagation only when ``weighting`` asks: see :class:`FastRPSearchCV`)."""
    total = weighted_terms(terms, weighting.get("iteration_weights", model.iteration_weights),
                           weighting.get("self_influence", model.self_influence), model.standardize)
    if weighting.get("spectral_propagation", False):
        from graphkit._spectral_propagation import propagate

        total = propagate(graph.adjacency, total, order=10, mu=0.2, theta=0.5)
    return backend.to_numpy(total)


def _alphas(alpha: Any) -> np.ndarray:
    alphas = np.atleast_1d(np.asarray(DEFAULT_ALPHAS if alpha is None else alpha, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alpha must be a positive number or a non-empty sequence of them; got {alpha!r}")
    return alphas


def _labelled_targets(graph: Any, y: Any, nodes: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the labelled nodes in the graph, and their 0/1 target matrix."""
    if nodes is None:
        positions = np.arange(graph.n_nodes)
    else:
        index = {node: position for position, node in enumerate(graph.node_ids.tolist())}
        missing = [node for node in np.asarray(nodes).tolist() if node not in index]
        if missing:
            raise ValueError(f"nodes holds {len(missing)} ids not in the graph, e.g. {missing[:3]}")
        positions = np.array([index[node] for node in np.asarray(nodes).tolist()], dtype=np.int64)
    if sp.issparse(y):
        targets = (y.toarray() != 0).astype(np.float64)
    else:
        labels = np.asarray(y)
        if labels.ndim == 2:
            targets = (labels != 0).astype(np.float64)
        else:
            _, codes = np.unique(labels, return_inverse=True)
            targets = np.eye(codes.max() + 1)[codes]
    if targets.shape[0] != len(positions):
        raise ValueError(f"y has {targets.shape[0]} rows for {len(positions)} labelled nodes"
                         + ("" if nodes is not None else " (every node of the graph, as nodes is None)"))
    if len(positions) < 4:
        raise ValueError(f"FastRPSearchCV needs at least 4 labelled nodes to split; got {len(positions)}")
    return positions, targets


def _split_scores(embedding: np.ndarray, targets: np.ndarray, train: np.ndarray, held_out: np.ndarray,
                  alphas: np.ndarray, scoring: str) -> np.ndarray:
    """F1 on ``held_out`` of ridge regression (with intercept) trained on ``train``, one per penalty
    of ``alphas``. One eigendecomposition serves them all: of the d x d Gram matrix of the centred
    features, or of their n x n kernel when there are fewer training nodes than columns."""
    features, labels = embedding[train].astype(np.float64), targets[train]
    feature_mean, label_mean = features.mean(axis=0), labels.mean(axis=0)
    features -= feature_mean
    held_out_features = embedding[held_out] - feature_mean
    if features.shape[0] >= features.shape[1]:   # W = V (L + a)^-1 V' X' Y
        eigenvalues, vectors = np.linalg.eigh(features.T @ features)
        projected = vectors.T @ (features.T @ (labels - label_mean))
        held_out_features = held_out_features @ vectors
    else:                                        # W = X' Q (L + a)^-1 Q' Y
        eigenvalues, vectors = np.linalg.eigh(features @ features.T)
        projected = vectors.T @ (labels - label_mean)
        held_out_features = (held_out_features @ features.T) @ vectors
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    truth = targets[held_out] != 0
    n_true = truth.sum(axis=1)
    scores = np.empty(len(alphas))
    for index, alpha in enumerate(alphas):
        predictions = held_out_features @ (projected / (eigenvalues + alpha)[:, None]) + label_mean
        scores[index] = f1_of(truth, top_k_predictions(predictions, n_true) != 0, scoring)
    return scores


def f1_of(truth: np.ndarray, predicted: np.ndarray, scoring: str) -> float:
    """Micro- or macro-averaged F1 of boolean label matrices (a label with no true and no predicted
    node scores 0, as scikit-learn's ``f1_score(zero_division=0)``)."""
    true_positives = (truth & predicted).sum(axis=0)
    errors = (truth ^ predicted).sum(axis=0)
    if scoring == "micro_f1":
        denominator = 2 * true_positives.sum() + errors.sum()
        return float(2 * true_positives.sum() / denominator) if denominator else 0.0
    denominators = 2 * true_positives + errors
    return float(np.mean(np.divide(2 * true_positives, denominators, out=np.zeros(len(denominators)),
                                   where=denominators > 0)))


def _results(candidates: list, scores: np.ndarray, seconds: list, alphas: np.ndarray) -> dict:
    """``cv_results_`` from ``scores`` of shape (candidates, splits, penalties): each candidate at
    the penalty of its best mean over the splits."""
    best_alpha = scores.mean(axis=1).argmax(axis=1)
    scores = scores[np.arange(len(candidates)), :, best_alpha]
    means = scores.mean(axis=1)
    order = np.argsort(-means, kind="stable")
    ranks = np.empty(len(means), dtype=np.int64)
    ranks[order] = np.arange(1, len(means) + 1)
    results = {"params": candidates, "mean_test_score": means, "std_test_score": scores.std(axis=1),
               "rank_test_score": ranks, "alpha": alphas[best_alpha], "propagation_seconds": np.asarray(seconds)}
    for split in range(scores.shape[1]):
        results[f"split{split}_test_score"] = scores[:, split]
    return results
