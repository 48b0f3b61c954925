"""Evaluation metrics of recommenders.

CTR prediction (binary clicks): :func:`roc_auc` (area under the ROC curve, the Mann-Whitney statistic
with tied scores counted one half) and :func:`log_loss` (mean binary cross-entropy). Both take NumPy
arrays or torch tensors on any device and agree with scikit-learn's ``roc_auc_score`` and ``log_loss``.
Ranking metrics (Recall@K, NDCG@K) are added here by their own issue.

Examples
--------
>>> from recsys.metrics import log_loss, roc_auc
>>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> round(log_loss([0, 1], [0.2, 0.9]), 4)
0.1643
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats

from tensorkit import backend

__all__ = ["log_loss", "roc_auc"]


def _binary_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    y = backend.to_numpy(y_true)
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise ValueError(f"{name} must be a vector of 0/1 labels; got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{name} must hold the click labels 0 and 1; got dtype {y.dtype}")
    values = np.unique(y)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"{name} must hold the click labels 0 and 1 only; got the values {values[:10].tolist()}")
    return y.astype(np.int64)


def _scores(y_score: Any, n: int, name: str = "y_score") -> np.ndarray:
    s = backend.to_numpy(y_score).astype(np.float64, copy=False)
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    s = s.reshape(-1) if s.ndim == 2 and s.shape[1] == 1 else s
    if s.ndim != 1 or s.shape[0] != n:
        raise ValueError(f"{name} must be a vector as long as y_true ({n}); got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return s


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve of scores ``y_score`` (probabilities or logits) for labels 0/1.

    Parameters
    ----------
    y_true : array-like or torch.Tensor of shape (n,)
    y_score : array-like or torch.Tensor of shape (n,) or (n, 2)
        A two-column input is read as ``predict_proba`` output (the second column is used).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the labels are not 0/1 or only one class is present (the AUC is undefined).
    """
    y = _binary_labels(y_true)
    s = _scores(y_score, y.shape[0])
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes in y_true; only one class is present")
    ranks = scipy.stats.rankdata(s)                     # average ranks: ties count one half
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true: Any, y_prob: Any, eps: Any = "auto") -> float:
    """Mean binary cross-entropy of predicted click probabilities.

    Parameters
    ----------
    y_true : array-like or torch.Tensor of shape (n,)
    y_prob : array-like or torch.Tensor of shape (n,) or (n, 2)
        Probabilities of a click (a two-column input is read as ``predict_proba`` output).
    eps : float or "auto", default="auto"
        Probabilities are clipped to ``[eps, 1 - eps]``; "auto" uses the machine epsilon of the
        input's floating dtype, as scikit-learn does.

    Returns
    -------
    float
    """
    y = _binary_labels(y_true)
    raw = backend.to_numpy(y_prob)
    p = _scores(y_prob, y.shape[0], "y_prob")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    if eps == "auto":
        eps = np.finfo(raw.dtype if np.issubdtype(raw.dtype, np.floating) else np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
