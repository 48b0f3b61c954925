"""A graph clustering's settings chosen without labels: :class:`ModularitySearch`.

Each candidate setting is fitted and scored by the modularity of its partition on the graph it
clustered; the best is kept. No label is read, so the search fits where a user has none.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.model_selection import ParameterGrid

from graphkit.io import as_graph, features_and_graph
from graphkit.metrics import _modularity_scorer
from graphkit.ops import knn_graph
from tensorkit.base import reals
from tensorkit.utils import progress

__all__ = ["PAMC_PUBLISHED_SETTINGS", "ModularitySearch"]

# The settings the PamC authors publish in their README (gayanku/PAMC), de-duplicated: PamC's
# (``SCGC_TRIMPOSCCSP``) for ACM, DBLP and Citeseer, and the all-pairs loss's (``SCGC_TRIM``) for
# ACM and DBLP (the same) and Citeseer.
PAMC_PUBLISHED_SETTINGS = (
    {"alpha": 2.0, "beta": 2.5, "order": 3, "tau": 0.5, "lr": 1e-3},
    {"alpha": 0.5, "beta": 0.5, "order": 1, "tau": 0.5, "lr": 1e-3},
    {"alpha": 2.0, "beta": 2.0, "order": 1, "tau": 1.0, "lr": 1e-3},
    {"alpha": 1.0, "beta": 0.1, "order": 1, "tau": 0.25, "lr": 1e-4},
    {"alpha": 1.0, "beta": 0.1, "order": 1, "tau": 0.25, "lr": 1e-3},
)


class ModularitySearch(ClusterMixin, BaseEstimator):
    """A graph clustering with its settings chosen by modularity, without labels.

    Every candidate of ``param_grid`` is fitted on the same data with the same ``random_state``,
    and the one whose partition (``labels_``) has the highest modularity on the graph
    (:func:`graphkit.metrics.modularity`) is kept as ``best_estimator_``. PamC candidates that
    differ only in settings of the training after the k-means start (the loss weights, ``tau``,
    ``order``, ``lr``, ...) pretrain once and share the start: each ends exactly as its own fit
    would, at the cost of one pretraining. Modularity rewards
    partitions whose clusters hold more of the graph's edges than chance, and it is low for a
    partition with emptied or merged clusters, so it steers away from collapsed runs as well.
    It is a label-free criterion: it can be computed on any graph, and it is what the search
    maximises, not a measure of agreement with classes a user might hold.
    The measurements behind it for PamC are in ``docs/pamc.md``.

    Parameters
    ----------
    estimator : estimator
        A clustering estimator with ``fit(X, graph=...)`` and ``labels_`` (e.g.
        :class:`graphkit.PamC`); its settings not in the grid are kept.
    param_grid : dict, list of dicts, optional
        As :class:`sklearn.model_selection.ParameterGrid` takes it: values per parameter, or a
        list of such dicts (one candidate per combination). Default, for :class:`~graphkit.PamC`:
        :data:`PAMC_PUBLISHED_SETTINGS`, the five settings the PamC authors publish.
    resolution : float, default=1.0
        Modularity's resolution (larger favours smaller clusters).
    verbose : int, default=1
        A progress bar over the candidates.

    Attributes
    ----------
    best_estimator_ : estimator
        The fitted candidate of highest modularity.
    best_params_ : dict
    best_score_ : float
        Its modularity.
    best_index_ : int
    results_ : dict of lists
        Per candidate: ``params``, ``modularity``, ``smallest_share`` (the smallest cluster's
        size over ``n / n_clusters``), ``n_iter`` (the estimator's, when it has one),
        ``fit_seconds`` and ``labels`` (its partition).
    labels_ : ndarray of shape (n_samples,)
        Those of ``best_estimator_``.

    See Also
    --------
    graphkit.PamC
    graphkit.metrics.modularity

    Examples
    --------
    >>> from graphkit import ModularitySearch, PamC, make_attributed_sbm
    >>> data = make_attributed_sbm(n_nodes=200, n_clusters=2, n_features=8, feature_signal=2.0,
    ...                            random_state=0)
    >>> search = ModularitySearch(PamC(n_clusters=2, hidden=(32,), n_z=4, pretrain_epochs=5,
    ...                                n_epochs=10, random_state=0, device="cpu", verbose=0),
    ...                           param_grid={"beta": [0.1, 2.0]}, verbose=0)
    >>> search.fit(data.features, graph=data.graph).labels_.shape
    (200,)
    >>> sorted(search.best_params_)
    ['beta']
    """

    _parameter_constraints: dict = {
        "estimator": [object],
        "param_grid": [dict, list, tuple, None],
        "resolution": [reals(0, closed="neither")],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator: Any, param_grid: Any = None, *, resolution: float = 1.0, verbose: int = 1):
        self.estimator = estimator
        self.param_grid = param_grid
        self.resolution = resolution
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None, graph: Any = None) -> "ModularitySearch":
        """Fit every candidate and keep the one of highest modularity.

        Parameters
        ----------
        X : array-like, sparse matrix, torch.Tensor or a PyTorch Geometric Data
            What the estimator's ``fit`` takes (for PamC: node features, or a ``Data``).
        y : array-like of shape (n_samples,), optional
            Passed to each candidate's ``fit`` as it is (PamC only records per-epoch scores
            with it); never used to choose.
        graph : graph-like, optional
            The graph to cluster and to score modularity on; default the kNN graph of ``X``
            with the estimator's ``n_neighbors`` (3 without one), as PamC builds it.

        Returns
        -------
        self
        """
        self._validate_params()
        X, graph = features_and_graph(X, graph, "ModularitySearch")
        adjacency = _adjacency(X, graph, getattr(self.estimator, "n_neighbors", 3))
        score = _modularity_scorer(adjacency, self.resolution)
        candidates = list(ParameterGrid(_grid(self.param_grid, self.estimator)))
        fitted, results = [], {"params": [], "modularity": [], "smallest_share": [], "n_iter": [],
                               "fit_seconds": [], "labels": []}
        starts: dict = {}
        for params in progress(candidates, verbose=self.verbose, desc="ModularitySearch"):
            model = clone(self.estimator).set_params(**params)
            started = time.perf_counter()
            _fit(model, X, y, graph, starts)
            labels = np.asarray(model.labels_)
            results["params"].append(params)
            results["fit_seconds"].append(time.perf_counter() - started)
            results["modularity"].append(float(score(labels)))
            results["smallest_share"].append(_smallest_share(labels, getattr(model, "n_clusters", None)))
            results["n_iter"].append(getattr(model, "n_iter_", None))
            results["labels"].append(labels)
            fitted.append(model)
        self.results_ = results
        self.best_index_ = int(np.argmax(results["modularity"]))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = results["modularity"][self.best_index_]
        self.best_estimator_ = fitted[self.best_index_]
        self.labels_ = self.best_estimator_.labels_
        if hasattr(self.best_estimator_, "n_features_in_"):
            self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def predict(self, X: Any, graph: Any = None) -> Any:
        """The best estimator's ``predict``."""
        return self.best_estimator_.predict(X, graph=graph)

    def fit_predict(self, X: Any, y: Any = None, graph: Any = None) -> Any:
        """Fit and return ``labels_``."""
        return self.fit(X, y, graph=graph).labels_


def _fit(model: Any, X: Any, y: Any, graph: Any, starts: dict) -> None:
    """``model.fit``; PamC candidates that differ only in training settings share one pretraining and start."""
    from graphkit.pamc import PamC

    if isinstance(model, PamC):
        model._fit(X, y, graph, starts=starts)
    else:
        model.fit(X, y, graph=graph)


def _grid(param_grid: Any, estimator: Any) -> Any:
    if param_grid is not None:
        return [dict(g) for g in param_grid] if isinstance(param_grid, (list, tuple)) else dict(param_grid)
    from graphkit.pamc import PamC

    if isinstance(estimator, PamC):
        return [{name: [value] for name, value in settings.items()} for settings in PAMC_PUBLISHED_SETTINGS]
    raise ValueError(f"param_grid is needed for {type(estimator).__name__} (only PamC has a default grid: "
                     "graphkit.PAMC_PUBLISHED_SETTINGS)")


def _adjacency(X: Any, graph: Any, n_neighbors: int):
    if graph is None:
        return knn_graph(X, n_neighbors=n_neighbors).adjacency
    return as_graph(graph).adjacency


def _smallest_share(labels: np.ndarray, n_clusters: Optional[int]) -> float:
    k = int(n_clusters) if n_clusters else len(np.unique(labels))
    return float(np.bincount(np.unique(labels, return_inverse=True)[1], minlength=k).min() * k / len(labels))
