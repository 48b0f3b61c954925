"""Scores for node embeddings and clusterings."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import ShuffleSplit
from sklearn.multiclass import OneVsRestClassifier

__all__ = ["node_classification_f1", "top_k_predictions"]


def top_k_predictions(scores: np.ndarray, n_labels: np.ndarray) -> np.ndarray:
    """Binary predictions that keep, for each row, its ``n_labels[i]`` highest-scoring labels.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
    n_labels : ndarray of shape (n_samples,)
        How many labels to predict for each row (its true label count in the usual protocol).

    Returns
    -------
    ndarray of shape (n_samples, n_classes), int
    """
    scores = np.asarray(scores)
    n_labels = np.asarray(n_labels, dtype=int)
    order = np.argsort(-scores, axis=1, kind="stable")
    keep = np.arange(scores.shape[1])[None, :] < n_labels[:, None]
    predicted = np.zeros(scores.shape, dtype=int)
    np.put_along_axis(predicted, order, keep.astype(int), axis=1)
    return predicted


def node_classification_f1(
    embedding: Any,
    labels: Any,
    train_size: float = 0.5,
    n_repeats: int = 5,
    C: float = 0.1,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> dict:
    """Micro- and Macro-F1 of one-vs-rest logistic regression on node embeddings.

    The protocol of DeepWalk and FastRP for multi-label node classification: shuffle the nodes,
    train a one-vs-rest logistic regression (liblinear, inverse regularisation ``C``) on the
    first ``train_size`` share, and predict for each test node its ``k`` highest-scoring labels,
    where ``k`` is its true number of labels; repeat over ``n_repeats`` shuffles.

    Parameters
    ----------
    embedding : array-like of shape (n_nodes, dim)
    labels : array-like or sparse of shape (n_nodes, n_classes), binary; or (n_nodes,) class ids
    train_size : float in (0, 1), default=0.5
    n_repeats : int, default=5
    C : float, default=0.1
    random_state : int, default=0
    n_jobs : int or None
        Parallel jobs over the classes.

    Returns
    -------
    dict
        ``{"micro": [...], "macro": [...]}``, one score per shuffle.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> x = y[:, None] + 0.1 * rng.standard_normal((100, 2))
    >>> scores = node_classification_f1(x, y, n_repeats=2, C=10.0)
    >>> min(scores["micro"]) > 0.95
    True
    """
    features = np.asarray(embedding)
    targets = labels.toarray() if sp.issparse(labels) else np.asarray(labels)
    if targets.ndim == 1:
        targets = np.eye(int(targets.max()) + 1, dtype=int)[targets]
    targets = (targets != 0).astype(int)
    if features.shape[0] != targets.shape[0]:
        raise ValueError(
            f"embedding has {features.shape[0]} rows but labels has {targets.shape[0]}"
        )
    if not 0 < train_size < 1:
        raise ValueError(f"train_size must be in (0, 1); got {train_size}")
    splitter = ShuffleSplit(n_splits=n_repeats, train_size=train_size, random_state=random_state)
    scores: dict = {"micro": [], "macro": []}
    for train, test in splitter.split(features):
        classifier = OneVsRestClassifier(LogisticRegression(C=C, solver="liblinear"), n_jobs=n_jobs)
        classifier.fit(features[train], targets[train])
        predicted = top_k_predictions(classifier.predict_proba(features[test]), targets[test].sum(axis=1))
        scores["micro"].append(float(f1_score(targets[test], predicted, average="micro", zero_division=0)))
        scores["macro"].append(float(f1_score(targets[test], predicted, average="macro", zero_division=0)))
    return scores
