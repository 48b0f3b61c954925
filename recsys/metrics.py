"""Evaluation metrics of recommenders.

CTR prediction (binary clicks): :func:`roc_auc` (area under the ROC curve, the Mann-Whitney statistic
with tied scores counted one half) and :func:`log_loss` (mean binary cross-entropy). Both take NumPy
arrays or torch tensors on any device and agree with scikit-learn's ``roc_auc_score`` and ``log_loss``.

Top-K recommendation (implicit feedback), with the definitions of LightGCN/NGCF:

- :func:`topk_items`: the ``k`` best items of each user by the inner product of embeddings, in
  batches of users on the embeddings' device (memory ``O(batch_size * n_items)``), with the train
  items of each user excluded.
- :func:`recall_at_k`, :func:`precision_at_k`, :func:`ndcg_at_k` and :func:`ranking_scores`: from top-K
  lists and a sparse matrix of held-out items, averaged over the users with a held-out item.
- :func:`evaluate_ranking`: all of it from embeddings and train/test interactions.

Examples
--------
>>> from recsys.metrics import log_loss, roc_auc
>>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> round(log_loss([0, 1], [0.2, 0.9]), 4)
0.1643
>>> import numpy as np, scipy.sparse as sp
>>> from recsys.metrics import ranking_scores
>>> topk = np.array([[3, 1, 0], [2, 0, 1]])
>>> relevant = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 1]]))
>>> ranking_scores(topk, relevant, ks=(2,))
{'recall@2': 0.5, 'ndcg@2': 0.3154..., 'precision@2': 0.25}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.stats
import torch

from recsys._checks import check_cutoffs
from tensorkit import backend
from tensorkit.base import integers, validate_params
from tensorkit.validation import reject_complex

__all__ = [
    "evaluate_ranking",
    "log_loss",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_scores",
    "recall_at_k",
    "roc_auc",
    "topk_items",
]


def _binary_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    reject_complex(y_true, name)
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
    reject_complex(y_score, name)
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
        If the labels are not 0/1, a score is not finite, or only one class is present (the AUC is
        undefined; :class:`~recsys.ctr.CTRClassifier` warns when it trains on one class).
    TypeError
        Complex labels or scores.
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

    Raises
    ------
    ValueError
        If the labels are not 0/1 or a probability is outside [0, 1] or not finite.
    TypeError
        Complex labels or probabilities.
    """
    y = _binary_labels(y_true)
    p = _scores(y_prob, y.shape[0], "y_prob")
    raw = backend.to_numpy(y_prob)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    if eps == "auto":
        eps = np.finfo(raw.dtype if np.issubdtype(raw.dtype, np.floating) else np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


# ------------------------------------------------------------------------------------------------
# Top-K recommendation

def _embedding_matrix(x: Any, name: str, device: Any = None, dtype: Any = None) -> torch.Tensor:
    if sp.issparse(x):
        raise TypeError(f"{name} must be a dense (n, dim) matrix; got a scipy.sparse matrix")
    reject_complex(x, name)
    t = backend.as_tensor(x, device=device, dtype=dtype)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, dim) matrix; got shape {tuple(t.shape)}")
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return t


def _interaction_matrix(data: Any, name: str) -> sp.csr_matrix:
    """A binary CSR matrix (sorted indices, no duplicates or stored zeros) from sparse input or Interactions."""
    from recsys.interactions import Interactions

    if isinstance(data, Interactions):
        return data.to_csr()
    if not sp.issparse(data):
        raise TypeError(f"{name} must be a scipy.sparse (users x items) matrix or Interactions; "
                        f"got {type(data).__name__}")
    if data.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users x items); got shape {data.shape}")
    csr = sp.csr_matrix(data, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.data = np.ones_like(csr.data, dtype=np.float32)
    csr.sort_indices()
    return csr


@validate_params({"k": [integers(1)], "batch_size": [integers(1)]})
def topk_items(user_embeddings: Any, item_embeddings: Any, k: int = 20, exclude: Any = None,
               batch_size: int = 1024, users: Any = None) -> torch.Tensor:
    """The ``k`` items with the largest inner product ``<user, item>`` for each user (full ranking).

    Scores are computed batch by batch of users (``U_b @ I^T`` on the item embeddings' device), so no
    more than ``batch_size x n_items`` scores exist at once. Excluded (e.g. train) items get the score
    ``-inf`` and are ranked last.

    Parameters
    ----------
    user_embeddings : array-like or torch.Tensor of shape (n_users, dim)
    item_embeddings : array-like or torch.Tensor of shape (n_items, dim)
        The user embeddings are moved to the item embeddings' device and dtype.
    k : int, default=20
        At most ``n_items``.
    exclude : scipy.sparse matrix or Interactions, optional
        ``(n_users, n_items)``: the stored entries of row ``u`` are never recommended to user ``u``
        (unless a user has fewer than ``k`` other items; they fill the tail then).
    batch_size : int, default=1024
    users : array-like of int, optional
        Rank only these users (indices into the rows of ``user_embeddings`` and of ``exclude``), in
        this order; all users by default.

    Returns
    -------
    torch.LongTensor of shape (n_eval_users, k)
        Item indices, best first, on the CPU.

    Raises
    ------
    ValueError
        ``k`` larger than the number of items, mismatched embedding sizes, ``exclude`` of the wrong
        shape, user indices out of range.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.metrics import topk_items
    >>> users = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> items = np.array([[3.0, 0.0], [2.0, 1.0], [0.0, 2.0]])
    >>> topk_items(users, items, k=2).tolist()
    [[0, 1], [2, 1]]
    >>> topk_items(users, items, k=2, exclude=sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))).tolist()
    [[1, 2], [2, 1]]
    """
    items = _embedding_matrix(item_embeddings, "item_embeddings")
    if not items.is_floating_point():
        items = items.float()
    user_matrix = _embedding_matrix(user_embeddings, "user_embeddings", device=items.device, dtype=items.dtype)
    if user_matrix.shape[1] != items.shape[1]:
        raise ValueError(f"user_embeddings and item_embeddings must have the same dimension; "
                         f"got {user_matrix.shape[1]} and {items.shape[1]}")
    n_users, n_items = user_matrix.shape[0], items.shape[0]
    k, batch_size = int(k), int(batch_size)
    if k > n_items:
        raise ValueError(f"k={k} is larger than the number of items ({n_items})")
    if users is None:
        rows = None
        m = n_users
    else:
        rows = backend.to_numpy(users)
        if rows.ndim != 1:
            raise ValueError(f"users must be a 1-D array of user indices; got shape {rows.shape}")
        if rows.size and (not np.issubdtype(rows.dtype, np.integer) or rows.dtype == bool):
            raise TypeError(f"users must hold integer user indices; got dtype {rows.dtype}")
        rows = rows.astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= n_users):
            raise ValueError(f"users must be indices in [0, {n_users}); got values from {rows.min()} to {rows.max()}")
        m = rows.shape[0]
    mask = None
    if exclude is not None:
        mask = _interaction_matrix(exclude, "exclude")
        if mask.shape[1] != n_items:
            raise ValueError(f"exclude must have one column per item ({n_items}); got shape {mask.shape}")
        needed = n_users if rows is None else (int(rows.max()) + 1 if rows.size else 0)
        if mask.shape[0] < needed:
            raise ValueError(f"exclude must have a row for every user ({needed}); got shape {mask.shape}")
    device = items.device
    result = torch.empty((m, k), dtype=torch.long)
    item_t = items.T
    with torch.no_grad():
        for start in range(0, m, batch_size):
            stop = min(start + batch_size, m)
            if rows is None:
                scores = user_matrix[start:stop] @ item_t
                block = mask[start:stop] if mask is not None else None
            else:
                index = rows[start:stop]
                scores = user_matrix[torch.from_numpy(index).to(device)] @ item_t
                block = mask[index] if mask is not None else None
            if block is not None and block.nnz:
                r = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(block.indptr))
                c = block.indices.astype(np.int64)
                scores[torch.from_numpy(r).to(device), torch.from_numpy(c).to(device)] = float("-inf")
            result[start:stop] = torch.topk(scores, k, dim=1).indices.cpu()
    return result


def _topk_array(topk: Any, k: int, n_rows: int, n_items: int) -> np.ndarray:
    top = backend.to_numpy(topk)
    if top.ndim != 2:
        raise ValueError(f"topk must be a 2-D (n_users, k) array of item indices; got shape {top.shape}")
    if top.size and (top.dtype == bool or not np.issubdtype(top.dtype, np.integer)):
        raise TypeError(f"topk must hold integer item indices; got dtype {top.dtype}")
    if top.shape[0] != n_rows:
        raise ValueError(f"topk and relevant must have one row per evaluated user; "
                         f"got {top.shape[0]} and {n_rows} rows")
    if k > top.shape[1]:
        raise ValueError(f"k={k} is larger than the {top.shape[1]} recommendations per user in topk")
    top = top[:, :k].astype(np.int64)
    if top.size and (top.min() < 0 or top.max() >= n_items):
        raise ValueError(f"topk holds item indices outside [0, {n_items}), the columns of relevant")
    ordered = np.sort(top, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise ValueError("topk repeats an item within a row")
    return top


def _relevant_matrix(relevant: Any) -> sp.csr_matrix:
    if not sp.issparse(relevant) and isinstance(relevant, (list, tuple)):
        rows = [np.asarray(r, dtype=np.int64).reshape(-1) for r in relevant]
        n_items = max((int(r.max()) + 1 for r in rows if r.size), default=0)
        indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64)
        data = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return _interaction_matrix(sp.csr_matrix((np.ones(data.size), data, indptr), shape=(len(rows), n_items)),
                                   "relevant")
    return _interaction_matrix(relevant, "relevant")


def _hits(topk: Any, relevant: Any, k: int) -> tuple:
    """``(hits, n_relevant)``: whether each of the first ``k`` recommendations is relevant, and |relevant| per row."""
    k = int(k)
    rel = _relevant_matrix(relevant)
    top = _topk_array(topk, k, rel.shape[0], rel.shape[1])
    n_items = rel.shape[1]
    codes = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr)) * n_items + rel.indices
    query = np.arange(top.shape[0], dtype=np.int64)[:, None] * n_items + top
    if codes.size == 0:
        hits = np.zeros(top.shape, dtype=bool)
    else:
        position = np.minimum(np.searchsorted(codes, query), codes.size - 1)
        hits = codes[position] == query
    return hits, np.diff(rel.indptr)


def _scores_at(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict:
    valid = n_relevant > 0
    if not valid.any():
        raise ValueError("relevant has no row with a relevant item; the ranking metrics are undefined")
    h = hits[valid, :k].astype(np.float64)
    n_rel = n_relevant[valid].astype(np.float64)
    n_hits = h.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k).astype(np.int64) - 1]
    return {f"recall@{k}": float(np.mean(n_hits / n_rel)),
            f"ndcg@{k}": float(np.mean((h @ discounts) / ideal)),
            f"precision@{k}": float(np.mean(n_hits / k))}


@validate_params({"k": [integers(1)]})
def recall_at_k(topk: Any, relevant: Any, k: int = 20) -> float:
    """Recall@K: the share of each user's relevant items found in its top ``k``, averaged over users.

    Parameters
    ----------
    topk : array-like or torch.Tensor of shape (m, >= k)
        Recommended item indices per evaluated user, best first (e.g. from :func:`topk_items`).
    relevant : scipy.sparse matrix (m rows) or Interactions
        Row ``i``: the held-out items of the ``i``-th evaluated user. Rows without a relevant item
        are skipped (not counted as 0).
    k : int, default=20

    Returns
    -------
    float
        ``mean_u |top_k(u) ∩ rel(u)| / |rel(u)|`` (LightGCN's definition).
    """
    hits, n_rel = _hits(topk, relevant, k)
    return _scores_at(hits, n_rel, k)[f"recall@{k}"]


@validate_params({"k": [integers(1)]})
def precision_at_k(topk: Any, relevant: Any, k: int = 20) -> float:
    """Precision@K: ``mean_u |top_k(u) ∩ rel(u)| / k`` over users with a relevant item; see :func:`recall_at_k`."""
    hits, n_rel = _hits(topk, relevant, k)
    return _scores_at(hits, n_rel, k)[f"precision@{k}"]


@validate_params({"k": [integers(1)]})
def ndcg_at_k(topk: Any, relevant: Any, k: int = 20) -> float:
    """NDCG@K with binary gains, averaged over users with a relevant item; see :func:`recall_at_k`.

    ``DCG = Σ_{r < k} hit_r / log2(r + 2)`` over the 0-based ranks ``r``, divided by the ideal DCG
    ``Σ_{r < min(|rel(u)|, k)} 1 / log2(r + 2)`` (LightGCN's definition), so it is 1 when the relevant
    items fill the first places.
    """
    hits, n_rel = _hits(topk, relevant, k)
    return _scores_at(hits, n_rel, k)[f"ndcg@{k}"]


def ranking_scores(topk: Any, relevant: Any, ks: Any = (20,)) -> dict:
    """Recall, NDCG and precision at every ``k`` in ``ks``.

    Parameters
    ----------
    topk, relevant : see :func:`recall_at_k`
        ``topk`` needs at least ``max(ks)`` columns.
    ks : int or sequence of int, default=(20,)

    Returns
    -------
    dict
        ``{"recall@K": ..., "ndcg@K": ..., "precision@K": ...}`` for each ``K`` in ``ks``, in that order.
    """
    ks = check_cutoffs(ks, "ks", "ranking_scores")
    hits, n_rel = _hits(topk, relevant, max(ks))
    scores = {}
    for k in ks:
        scores.update(_scores_at(hits, n_rel, k))
    return scores


@validate_params({"batch_size": [integers(1)]})
def evaluate_ranking(user_embeddings: Any, item_embeddings: Any, train: Any, test: Any, ks: Any = (20,),
                     batch_size: int = 1024) -> dict:
    """Full-ranking evaluation of embeddings (the LightGCN protocol).

    Every user with at least one test item ranks all items by ``<user, item>`` except its train
    items; Recall, NDCG and precision at each ``k`` are averaged over these users. Users are scored in
    batches (:func:`topk_items`), so memory stays ``O(batch_size * n_items)``.

    Parameters
    ----------
    user_embeddings : array-like or torch.Tensor of shape (n_users, dim)
    item_embeddings : array-like or torch.Tensor of shape (n_items, dim)
    train : scipy.sparse matrix, Interactions or None
        ``(n_users, n_items)`` items to exclude (None: exclude nothing).
    test : scipy.sparse matrix or Interactions
        ``(n_users, n_items)`` held-out items.
    ks : int or sequence of int, default=(20,)
    batch_size : int, default=1024

    Returns
    -------
    dict
        As :func:`ranking_scores`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from recsys.metrics import evaluate_ranking
    >>> users = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> items = np.array([[3.0, 0.0], [2.0, 1.0], [0.0, 2.0]])
    >>> train = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1]]))
    >>> test = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0]]))
    >>> evaluate_ranking(users, items, train, test, ks=(1,))
    {'recall@1': 0.5, 'ndcg@1': 0.5, 'precision@1': 0.5}
    """
    ks = check_cutoffs(ks, "ks", "evaluate_ranking")
    test_matrix = _interaction_matrix(test, "test")
    train_matrix = None if train is None else _interaction_matrix(train, "train")
    n_users = backend.to_numpy(user_embeddings).shape[0] if not backend.is_torch(user_embeddings) \
        else user_embeddings.shape[0]
    n_items = backend.to_numpy(item_embeddings).shape[0] if not backend.is_torch(item_embeddings) \
        else item_embeddings.shape[0]
    if test_matrix.shape != (n_users, n_items):
        raise ValueError(f"test must be (n_users, n_items) = ({n_users}, {n_items}) like the embeddings; "
                         f"got {test_matrix.shape}")
    if train_matrix is not None and train_matrix.shape != test_matrix.shape:
        raise ValueError(f"train and test must have the same shape; got {train_matrix.shape} and {test_matrix.shape}")
    eval_users = np.flatnonzero(np.diff(test_matrix.indptr) > 0)
    if eval_users.size == 0:
        raise ValueError("test has no user with a test item; nothing to evaluate")
    top = topk_items(user_embeddings, item_embeddings, k=max(ks), exclude=train_matrix, batch_size=batch_size,
                     users=eval_users)
    return ranking_scores(top, test_matrix[eval_users], ks)
