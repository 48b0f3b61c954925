"""Implicit feedback (who interacted with what): :class:`Interactions`, its readers and splits.

- :class:`Interactions`: user-item pairs as internal indices ``0..n_users-1`` / ``0..n_items-1``, the
  maps back to the original ids, optional timestamps; conversion to a binary CSR matrix, per-user
  random holdout (:meth:`Interactions.split_by_user`) and time splits (:meth:`Interactions.split_by_time`).
- :func:`as_interactions`: an :class:`Interactions` from pairs of indices (NumPy, lists, torch), pairs
  of raw ids (a two-column DataFrame, strings) or a SciPy sparse user x item matrix, with clear errors
  for empty, negative, fractional or misshapen input.
- :func:`read_lightgcn` / :func:`read_lightgcn_split`: the LightGCN/NGCF text format
  (``user item item ...`` per line; Gowalla, Yelp2018, Amazon-book). Ids far sparser than the data
  (hashed or 64-bit ids) are remapped and kept in the id maps: nothing allocates by the largest id.
- :func:`read_movielens`: MovieLens ``u.data`` or a RecBole ``.inter`` file as implicit feedback.

Every reader names the file and line of a row it cannot read exactly. Synthetic data with planted
low-rank preferences comes from :func:`recsys.datasets.make_low_rank_interactions`; see
:class:`Interactions` for an example.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys._ids import factorize_ids, holds_raw_ids, raw_id_columns
from tensorkit import backend
from tensorkit.base import check_parameters, integers, reals, validate_params
from tensorkit.validation import reject_complex

__all__ = ["Interactions", "as_interactions", "read_lightgcn", "read_lightgcn_split", "read_movielens"]


def _as_array(values: Any, name: str) -> np.ndarray:
    """NumPy view of array-like or torch input (sparse and complex input is not accepted here)."""
    if sp.issparse(values):
        raise TypeError(f"{name} must be a dense array; got a scipy.sparse matrix")
    reject_complex(values, name)
    return backend.to_numpy(values)


_INT64_MAX = int(np.iinfo(np.int64).max)


def _whole_numbers(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as int64 after checking that it holds finite, whole, non-negative numbers within int64."""
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold integer indices; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity; expected integer indices")
        fractional = arr != np.round(arr)
        if fractional.any():
            raise ValueError(f"{name} must hold whole numbers (integer indices); got {arr[fractional].flat[0]!r}")
    if arr.size and arr.max() > _INT64_MAX:
        raise ValueError(f"{name} holds {arr.max()!r}, above the largest index {_INT64_MAX} (int64); give such ids "
                         f"to Interactions.from_ids, which keeps them as they are")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must hold non-negative indices; got the negative value {int(out.min())}")
    return out


def _index_vector(values: Any, name: str) -> np.ndarray:
    arr = _as_array(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices; got shape {arr.shape}")
    return _whole_numbers(arr, name)


_DENSE_SLACK = 1 << 16
"""How far above twice the number of values an index may go before its space counts as sparse."""


def _is_sparse(indices: np.ndarray) -> bool:
    """Whether ``max + 1`` slots for ``indices`` would be out of proportion to them: the largest index
    is at least ``2 * len(indices) + 65536``. Such id spaces are remapped, never allocated."""
    return bool(indices.size) and int(indices.max()) >= 2 * indices.size + _DENSE_SLACK


def _shared_ids(parts: list) -> tuple:
    """``(ids, n)`` for index arrays that share one id space: the sorted distinct values and their count
    when the space is sparse (:func:`_is_sparse`), else None and ``max + 1`` (identity maps)."""
    values = np.concatenate(parts)
    if _is_sparse(values):
        ids = np.unique(values)
        return ids, len(ids)
    return None, int(values.max()) + 1 if values.size else 0


def _positions(values: np.ndarray, ids: Optional[np.ndarray]) -> np.ndarray:
    """Indices of ``values`` in the sorted ``ids`` (the values themselves when ``ids`` is None)."""
    return values if ids is None else np.searchsorted(ids, values).astype(np.int64)


def _size(value: Any, indices: np.ndarray, name: str, index_name: str) -> int:
    """``n_users``/``n_items``: the given count (checked against the indices) or ``max + 1``, which is
    refused for a sparse index space (it would allocate by the largest index)."""
    needed = int(indices.max()) + 1 if indices.size else 0
    if value is None:
        if _is_sparse(indices):
            raise ValueError(f"{index_name} holds the index {needed - 1} for only {indices.size} interactions; "
                             f"internal indices must be dense (0 .. {name} - 1): give the ids to "
                             f"Interactions.from_ids or as_interactions, which remap them, or set {name}")
        return needed
    if needed > value:
        raise ValueError(f"{index_name} holds the index {needed - 1} but {name}={int(value)}; "
                         f"indices must be below {name}")
    return int(value)


def _id_map(ids: Any, n: int, name: str) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = _as_array(ids, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one id per index ({n}); got shape {arr.shape}")
    if len(pd.unique(arr)) != n:
        raise ValueError(f"{name} must hold distinct ids")
    return arr


def _check_fraction(test_size: Any, caller: str) -> float:
    check_parameters({"test_size": [reals(0, 1, closed="neither")]}, {"test_size": test_size}, caller)
    return float(test_size)


def _holdout_counts(counts: np.ndarray, test_size: float) -> np.ndarray:
    """Per user: ``round(test_size * n)`` (half up), at least 1 and at most ``n - 1``; 0 for ``n < 2``."""
    wanted = np.floor(test_size * counts + 0.5).astype(np.int64)
    return np.where(counts >= 2, np.clip(wanted, 1, np.maximum(counts - 1, 1)), 0)


def _rank_within_user(users: np.ndarray, order: np.ndarray, n_users: int) -> tuple:
    """For rows sorted by ``order`` (grouped by user): position within the user's group and group sizes."""
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(len(users), dtype=np.int64)
    position[order] = np.arange(len(users)) - starts[users[order]]
    return position, counts


class Interactions:
    """Implicit-feedback user-item interactions with id maps.

    Users and items are stored as internal indices ``0..n_users-1`` and ``0..n_items-1``;
    ``user_ids[u]`` and ``item_ids[i]`` are the original ids behind them. Duplicated pairs are
    allowed (a log can repeat an interaction); :meth:`to_csr` collapses them to 1 and
    :meth:`deduplicate` removes them.

    Parameters
    ----------
    users, items : array-like or torch.Tensor of shape (n,)
        Internal indices (whole, non-negative numbers; cast to int64).
    n_users, n_items : int, optional
        Number of users / items; ``max + 1`` of the indices by default, refused when that would be
        out of proportion to the data (the largest index at least ``2 n + 65536`` for ``n``
        interactions: give such ids to :meth:`from_ids` or :meth:`from_pairs`, which remap them).
        Larger values keep users or items without interactions.
    timestamps : array-like of shape (n,), optional
        Times of the interactions (finite numbers, stored as float64).
    user_ids, item_ids : array-like, optional
        Original id of each internal index (distinct; ``arange`` by default).

    Attributes
    ----------
    users, items : ndarray of int64
    timestamps : ndarray of float64 or None
    n_users, n_items : int
    user_ids, item_ids : ndarray
    truth : LowRankTruth or None
        The planted model, for data from :func:`recsys.datasets.make_low_rank_interactions` (and
        their splits).

    Raises
    ------
    ValueError
        Arrays that are not 1-D or differ in length, negative, fractional or NaN indices, an index
        not below ``n_users``/``n_items`` or above int64, a sparse index space without a given size,
        id maps of the wrong length or with repeated ids.
    TypeError
        Indices that are not real numbers.

    Examples
    --------
    >>> from recsys.interactions import Interactions
    >>> data = Interactions([0, 0, 1, 2], [1, 2, 2, 0], n_items=4)
    >>> data
    Interactions(n_users=3, n_items=4, n_interactions=4)
    >>> data.to_csr().toarray()
    array([[0., 1., 1., 0.],
           [0., 0., 1., 0.],
           [1., 0., 0., 0.]], dtype=float32)
    >>> train, test = data.split_by_user(test_size=0.5, random_state=0)
    >>> len(train), len(test)
    (3, 1)
    """

    truth: Optional[tuple] = None   # a recsys.datasets.LowRankTruth, for synthetic data

    def __init__(self, users: Any, items: Any, n_users: Optional[int] = None, n_items: Optional[int] = None,
                 timestamps: Any = None, user_ids: Any = None, item_ids: Any = None) -> None:
        check_parameters({"n_users": [integers(0), None], "n_items": [integers(0), None]},
                         {"n_users": n_users, "n_items": n_items}, type(self).__name__)
        users = _index_vector(users, "users")
        items = _index_vector(items, "items")
        if users.shape[0] != items.shape[0]:
            raise ValueError(f"users and items must have the same length; got {users.shape[0]} and {items.shape[0]}")
        self.users = users
        self.items = items
        self.n_users = _size(n_users, users, "n_users", "users")
        self.n_items = _size(n_items, items, "n_items", "items")
        if timestamps is not None:
            ts = _as_array(timestamps, "timestamps")
            if ts.ndim != 1 or ts.shape[0] != users.shape[0]:
                raise ValueError(f"timestamps must be a 1-D array with one time per interaction ({users.shape[0]}); "
                                 f"got shape {ts.shape}")
            if ts.dtype == bool or not (np.issubdtype(ts.dtype, np.integer) or np.issubdtype(ts.dtype, np.floating)):
                raise TypeError(f"timestamps must be numbers; got dtype {ts.dtype}")
            ts = ts.astype(np.float64)
            if not np.isfinite(ts).all():
                raise ValueError("timestamps contains NaN or infinity")
            timestamps = ts
        self.timestamps = timestamps
        self.user_ids = _id_map(user_ids, self.n_users, "user_ids")
        self.item_ids = _id_map(item_ids, self.n_items, "item_ids")

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def __repr__(self) -> str:
        return f"Interactions(n_users={self.n_users}, n_items={self.n_items}, n_interactions={len(self)})"

    @property
    def shape(self) -> tuple:
        """``(n_users, n_items)``, the shape of :meth:`to_csr`."""
        return (self.n_users, self.n_items)

    def to_csr(self, dtype: Any = np.float32) -> sp.csr_matrix:
        """The binary ``n_users x n_items`` matrix (1 where a pair occurs, duplicates collapsed), sorted indices."""
        matrix = sp.csr_matrix((np.ones(len(self), dtype=dtype), (self.users, self.items)),
                               shape=(self.n_users, self.n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1
        matrix.sort_indices()
        return matrix

    # constructors ---------------------------------------------------------------------------------

    @classmethod
    def from_pairs(cls, pairs: Any, n_users: Optional[int] = None, n_items: Optional[int] = None,
                   timestamps: Any = None) -> "Interactions":
        """From an ``(n, 2)`` array-like (or torch tensor) of ``(user, item)`` ids (whole, non-negative
        numbers within int64).

        A column whose size is not given and whose ids are sparse (the largest at least ``2 n + 65536``
        for ``n`` pairs) is remapped: its internal indices follow the sorted distinct ids, which
        ``user_ids``/``item_ids`` keep, so nothing is allocated by the largest id. Otherwise the ids are
        the internal indices themselves (identity maps).
        """
        arr = _as_array(pairs, "pairs")
        if arr.size == 0 and arr.ndim < 2:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"pairs must be an (n, 2) array of (user, item) indices; got shape {arr.shape}")
        arr = _whole_numbers(arr, "pairs")
        columns = []
        for column, size in ((arr[:, 0], n_users), (arr[:, 1], n_items)):
            ids, n = _shared_ids([column]) if size is None else (None, size)
            columns.append((_positions(column, ids), ids, n))
        (users, user_ids, n_users), (items, item_ids, n_items) = columns
        return cls(users, items, n_users=n_users, n_items=n_items, timestamps=timestamps, user_ids=user_ids,
                   item_ids=item_ids)

    @classmethod
    def from_ids(cls, raw_users: Any, raw_items: Any, timestamps: Any = None) -> "Interactions":
        """From original ids of any hashable kind (strings, large integers ...).

        Internal indices follow the sorted distinct ids (the order of first appearance when the ids
        cannot be sorted); ``user_ids``/``item_ids`` map them back.
        """
        columns = []
        for name, raw in (("raw_users", raw_users), ("raw_items", raw_items)):
            reject_complex(raw, name)
            arr = _as_array(raw, name) if not isinstance(raw, (list, tuple)) else np.asarray(raw, dtype=object)
            columns.append(factorize_ids(arr, name))
        (users, user_ids), (items, item_ids) = columns
        if users.shape[0] != items.shape[0]:
            raise ValueError(f"raw_users and raw_items must have the same length; "
                             f"got {users.shape[0]} and {items.shape[0]}")
        return cls(users, items, n_users=len(user_ids), n_items=len(item_ids), timestamps=timestamps,
                   user_ids=user_ids, item_ids=item_ids)

    @classmethod
    def from_sparse(cls, matrix: Any) -> "Interactions":
        """From a SciPy sparse ``n_users x n_items`` matrix; every stored nonzero is one interaction."""
        if not sp.issparse(matrix):
            raise TypeError(f"matrix must be a scipy.sparse matrix; got {type(matrix).__name__}")
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2-D (users x items); got shape {matrix.shape}")
        csr = sp.csr_matrix(matrix, copy=True)
        csr.sum_duplicates()
        if csr.data.dtype.kind in "fc" and not np.isfinite(csr.data).all():
            raise ValueError("matrix contains NaN or infinity")
        csr.eliminate_zeros()
        csr.sort_indices()
        users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        return cls(users, csr.indices.astype(np.int64), n_users=csr.shape[0], n_items=csr.shape[1])

    # transformations ------------------------------------------------------------------------------

    def _subset(self, index: np.ndarray) -> "Interactions":
        """The interactions at ``index`` (a mask or positions) with the same sizes and id maps."""
        result = Interactions(self.users[index], self.items[index], self.n_users, self.n_items,
                              None if self.timestamps is None else self.timestamps[index],
                              self.user_ids, self.item_ids)
        result.truth = self.truth
        return result

    def reindex(self, user_ids: Any, item_ids: Any) -> "Interactions":
        """The same interactions under other id maps: internal user ``u`` becomes the user whose id is
        ``user_ids[u]`` (likewise for items), so data read or split apart can be indexed like a model's
        training data.

        Parameters
        ----------
        user_ids, item_ids : array-like
            Distinct ids; every id that ``self`` uses must be among them.

        Returns
        -------
        Interactions
            ``n_users = len(user_ids)``, ``n_items = len(item_ids)``; timestamps kept.

        Raises
        ------
        ValueError
            An id of ``self`` missing from the maps, or maps with repeated ids.
        """
        users = _reindexed(self.users, self.user_ids, _id_map(user_ids, len(user_ids), "user_ids"), "user")
        items = _reindexed(self.items, self.item_ids, _id_map(item_ids, len(item_ids), "item_ids"), "item")
        result = Interactions(users, items, len(user_ids), len(item_ids), self.timestamps, user_ids, item_ids)
        result.truth = self.truth
        return result

    def deduplicate(self) -> "Interactions":
        """Each ``(user, item)`` pair once: the earliest occurrence (by timestamp when there are timestamps,
        else by position), in the original order."""
        codes = self.users * max(self.n_items, 1) + self.items
        if self.timestamps is not None:
            order = np.lexsort((np.arange(len(self)), self.timestamps))
            _, first = np.unique(codes[order], return_index=True)
            keep = np.sort(order[first])
        else:
            _, keep = np.unique(codes, return_index=True)
            keep = np.sort(keep)
        return self._subset(keep)

    def split_by_user(self, test_size: float = 0.2, random_state: Any = None) -> tuple:
        """Per-user random holdout.

        Every user with at least two distinct items gives ``round(test_size * n_u)`` of them (rounded
        half up, at least 1, at most ``n_u - 1``) to the test part and keeps the rest; users with one
        item stay in train. Repeated pairs go to the same side, so the two parts share no pair.

        Parameters
        ----------
        test_size : float in (0, 1), default=0.2
        random_state : None, int or RandomState

        Returns
        -------
        train, test : Interactions
            Same ``n_users``/``n_items`` and id maps as ``self``; together exactly ``self``.
        """
        from sklearn.utils import check_random_state

        test_size = _check_fraction(test_size, "Interactions.split_by_user")
        rng = check_random_state(random_state)
        if len(self) == 0:
            return self._subset(np.zeros(0, dtype=np.int64)), self._subset(np.zeros(0, dtype=np.int64))
        codes = self.users * self.n_items + self.items
        unique, inverse = np.unique(codes, return_inverse=True)
        pair_users = unique // self.n_items
        order = np.lexsort((rng.random_sample(unique.shape[0]), pair_users))
        position, counts = _rank_within_user(pair_users, order, self.n_users)
        to_test = position < _holdout_counts(counts, test_size)[pair_users]
        mask = to_test[inverse.reshape(-1)]
        return self._subset(~mask), self._subset(mask)

    def split_by_time(self, test_size: float = 0.2, per_user: bool = False) -> tuple:
        """Split by time: the latest interactions form the test part.

        Parameters
        ----------
        test_size : float in (0, 1), default=0.2
        per_user : bool, default=False
            False: the globally latest ``round(test_size * n)`` interactions (the ``1 - test_size``
            timestamp quantile) are the test part, so no train interaction is later than a test one.
            True: each user with at least two interactions gives the latest ``round(test_size * n_u)``
            (at least 1, at most ``n_u - 1``) of its own history.

        Returns
        -------
        train, test : Interactions
            Same ``n_users``/``n_items`` and id maps as ``self``; ties in time are broken by position.

        Raises
        ------
        ValueError
            If there are no timestamps.
        """
        if self.timestamps is None:
            raise ValueError("split_by_time needs timestamps and these Interactions have none; "
                             "use split_by_user for a random holdout")
        test_size = _check_fraction(test_size, "Interactions.split_by_time")
        n = len(self)
        mask = np.zeros(n, dtype=bool)
        if per_user:
            order = np.lexsort((np.arange(n), self.timestamps, self.users))
            position, counts = _rank_within_user(self.users, order, self.n_users)
            from_end = counts[self.users] - 1 - position
            mask = from_end < _holdout_counts(counts, test_size)[self.users]
        elif n >= 2:
            n_test = int(np.clip(np.floor(test_size * n + 0.5), 1, n - 1))
            order = np.lexsort((np.arange(n), self.timestamps))
            mask[order[n - n_test:]] = True
        return self._subset(~mask), self._subset(mask)


def _reindexed(indices: np.ndarray, own: np.ndarray, ids: np.ndarray, kind: str) -> np.ndarray:
    """``indices`` into the id map ``own`` as indices into ``ids``, or a ``ValueError`` naming unknown ids."""
    if own.shape == ids.shape and np.array_equal(own, ids):
        return indices
    where = pd.Index(ids).get_indexer(own)
    result = where[indices]
    unknown = np.flatnonzero(result < 0)
    if unknown.size:
        missing = pd.unique(own[indices[unknown]])
        raise ValueError(f"{len(missing)} {kind} id(s) are not among the {kind} ids of the model or data they "
                         f"must match, e.g. {missing[:5].tolist()}")
    return result


def _resized(data: Interactions, n_users: Optional[int], n_items: Optional[int]) -> Interactions:
    """``data`` with ``n_users``/``n_items`` enlarged to the given counts (the same object when unchanged)."""
    sizes = {}
    for name, value, current, ids in (("n_users", n_users, data.n_users, data.user_ids),
                                      ("n_items", n_items, data.n_items, data.item_ids)):
        if value is None or value == current:
            sizes[name] = (current, ids)
            continue
        if value < current:
            raise ValueError(f"{name}={value} is smaller than the {current} the data already have")
        if not np.array_equal(ids, np.arange(current)):
            raise ValueError(f"cannot enlarge {name} of Interactions that map indices to their own ids")
        sizes[name] = (int(value), np.arange(int(value), dtype=np.int64))
    if sizes["n_users"][0] == data.n_users and sizes["n_items"][0] == data.n_items:
        return data
    result = Interactions(data.users, data.items, sizes["n_users"][0], sizes["n_items"][0], data.timestamps,
                          sizes["n_users"][1], sizes["n_items"][1])
    result.truth = data.truth
    return result


@validate_params({"n_users": [integers(0), None], "n_items": [integers(0), None]})
def as_interactions(data: Any, n_users: Optional[int] = None, n_items: Optional[int] = None) -> Interactions:
    """An :class:`Interactions` from the kinds of input the recommenders accept.

    Parameters
    ----------
    data : Interactions, scipy.sparse matrix, torch.Tensor, DataFrame, ndarray or list of pairs
        An :class:`Interactions` is returned as is (or with ``n_users``/``n_items`` enlarged); a
        sparse ``users x items`` matrix (SciPy or torch) gives one interaction per stored nonzero.
        Pairs ``(user, item)`` hold raw ids or indices by this rule:

        - raw ids: a pandas DataFrame of two columns (user, item), whatever their dtype, or an
          ``(n, 2)`` array or list whose values are not all numbers (strings, bytes, objects).
          Internal indices follow the sorted distinct ids of each column, which ``user_ids`` /
          ``item_ids`` keep (as :meth:`Interactions.from_ids`). Use a DataFrame to keep integer ids
          as ids whatever their range.
        - indices: an ``(n, 2)`` array, list or tensor of numbers, read by
          :meth:`Interactions.from_pairs`: the internal indices themselves, or, for a column whose
          ids are sparse (hashed or 64-bit ids, the largest at least ``2 n + 65536``), remapped
          with the ids kept in ``user_ids``/``item_ids``.
    n_users, n_items : int, optional
        At least the number the data need; larger values add users/items without interactions
        (only where the ids are the indices).

    Returns
    -------
    Interactions

    Raises
    ------
    ValueError
        Empty data, negative or fractional indices, indices above int64, a shape other than
        ``(n, 2)`` (a DataFrame of other than two columns), missing raw ids (None, NaN), or
        ``n_users``/``n_items`` too small for the data.
    TypeError
        Indices that are not real numbers (booleans, complex numbers), or a path (use
        :func:`read_lightgcn` or :func:`read_movielens`).

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.interactions import as_interactions
    >>> data = as_interactions(np.array([[0, 1], [2, 0]]), n_items=5)
    >>> data.n_users, data.n_items, data.items.tolist()
    (3, 5, [1, 0])
    >>> hashed = as_interactions([[0, 10**12], [1, 2]])      # sparse item ids: remapped, kept
    >>> hashed.shape, hashed.items.tolist(), hashed.item_ids.tolist()
    ((2, 2), [1, 0], [2, 1000000000000])
    >>> named = as_interactions([["ann", "x"], ["bob", "y"], ["ann", "y"]])   # raw ids: kept
    >>> named.users.tolist(), named.user_ids.tolist(), named.item_ids.tolist()
    ([0, 1, 0], ['ann', 'bob'], ['x', 'y'])
    """
    if isinstance(data, Interactions):
        result = _resized(data, n_users, n_items)
    elif sp.issparse(data):
        result = _resized(Interactions.from_sparse(data), n_users, n_items)
    elif isinstance(data, torch.Tensor) and data.layout != torch.strided:
        coo = data.to_sparse_coo().coalesce().cpu() if data.layout != torch.sparse_coo else data.coalesce().cpu()
        if coo.ndim != 2:
            raise ValueError(f"data must be a 2-D users x items matrix; got shape {tuple(coo.shape)}")
        index = coo.indices().numpy()
        matrix = sp.coo_matrix((coo.values().detach().numpy(), (index[0], index[1])), shape=tuple(coo.shape))
        result = _resized(Interactions.from_sparse(matrix), n_users, n_items)
    elif isinstance(data, (str, bytes, os.PathLike)):
        raise TypeError("data must be interactions, a sparse matrix or an (n, 2) array of pairs; got a path "
                        "(read files with read_lightgcn or read_movielens)")
    elif holds_raw_ids(data):
        (users, user_ids), (items, item_ids) = (factorize_ids(column, name) for name, column in raw_id_columns(data))
        result = _resized(Interactions(users, items, len(user_ids), len(item_ids), user_ids=user_ids,
                                       item_ids=item_ids), n_users, n_items)
    else:
        result = Interactions.from_pairs(data, n_users=n_users, n_items=n_items)
    if len(result) == 0:
        raise ValueError("data is empty: there are no interactions")
    return result


# ------------------------------------------------------------------------------------------------
# Interaction readers

_NOT_AN_ID = re.compile(rb"[^0-9 \t\n\r\x0b\x0c]")   # anything but ASCII digits and the whitespace split() drops


def _refuse_lightgcn_line(path: Path, number: int, line: bytes) -> None:
    """Raise for a line of a LightGCN file that holds something other than non-negative integer ids."""
    negative = next((t for t in line.split() if re.fullmatch(rb"-[0-9]+", t)), None)
    if negative is not None:
        raise ValueError(f"{path}, line {number}: ids must be non-negative; got the negative value "
                         f"{negative.decode()}")
    raise ValueError(f"{path}, line {number}: expected integer ids 'user item item ...'; "
                     f"got {line[:80].decode(errors='replace')!r}")


def _lightgcn_ids(path: Path, lines: list) -> np.ndarray:
    """Every id of the (digit-only) lines, line by line, with a ``ValueError`` for one above int64."""
    values = []
    for number, line in enumerate(lines, start=1):
        for token in line.split():
            digits = token.lstrip(b"0") or b"0"
            if len(digits) > len(str(_INT64_MAX)) or int(digits) > _INT64_MAX:
                raise ValueError(f"{path}, line {number}: the id {token[:40].decode()}"
                                 f"{'...' if len(token) > 40 else ''} is above the largest id {_INT64_MAX} (int64)")
            values.append(int(digits))
    return np.array(values, dtype=np.int64)


def _parse_lightgcn(path: Path) -> tuple:
    """``(line_users, users, items)`` of a LightGCN file: each line ``user item item ...``.

    Raises a ``ValueError`` naming the file and line for anything but non-negative integer ids within
    int64 (signs, underscores, NUL bytes ... included), and for a file without ids.
    """
    if not path.exists():
        raise FileNotFoundError(f"no LightGCN interaction file at {path}")
    text = path.read_bytes()
    lines = text.split(b"\n")
    bad = _NOT_AN_ID.search(text)
    if bad is not None:
        number = text.count(b"\n", 0, bad.start()) + 1
        _refuse_lightgcn_line(path, number, lines[number - 1])
    tokens = text.split()
    if not tokens:
        raise ValueError(f"{path} holds no ids (an empty file); expected lines 'user item item ...'")
    try:
        values = np.fromiter(map(int, tokens), dtype=np.int64, count=len(tokens))
    except (OverflowError, ValueError):   # an id above int64, or one too long for int()
        values = _lightgcn_ids(path, lines)
    counts = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    line_users = values[starts]
    is_item = np.ones(values.shape[0], dtype=bool)
    is_item[starts] = False
    return line_users, np.repeat(line_users, counts - 1), values[is_item]


@validate_params({"n_users": [integers(0), None], "n_items": [integers(0), None]})
def read_lightgcn(path: Any, n_users: Optional[int] = None, n_items: Optional[int] = None) -> Interactions:
    """Read the LightGCN/NGCF text format: each line ``user item1 item2 ...`` of 0-based ids.

    A line with a user and no items is allowed (that user exists but has no interaction here);
    blank lines are skipped. The file is parsed in bulk (Gowalla's 810k interactions in well under a
    second).

    Parameters
    ----------
    path : str or Path
    n_users, n_items : int, optional
        Defaults: one more than the largest user (including users of item-less lines) / item, and
        the ids are the internal indices (identity id maps, as in LightGCN's data sets). Without a
        given size, users or items whose ids are sparse (the largest at least ``2 n + 65536`` for
        ``n`` ids in the file) are remapped instead: internal indices follow the sorted distinct ids,
        which ``user_ids``/``item_ids`` keep, so memory follows the data, never the largest id.

    Returns
    -------
    Interactions
        Without timestamps.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file and line: anything but non-negative integer ids (signs, fractions, letters,
        NUL bytes), an id above int64; also a file without ids, or ``n_users``/``n_items`` too
        small for the ids.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.interactions import read_lightgcn
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.txt").write_text("0 1 2\\n1 0\\n2\\n")
    >>> data = read_lightgcn(folder / "train.txt")
    >>> data, data.users.tolist(), data.items.tolist()
    (Interactions(n_users=3, n_items=3, n_interactions=3), [0, 0, 1], [1, 2, 0])
    >>> _ = (folder / "hashed.txt").write_text("7 3000000000 12\\n")
    >>> hashed = read_lightgcn(folder / "hashed.txt")
    >>> hashed, hashed.item_ids[hashed.items].tolist()
    (Interactions(n_users=8, n_items=2, n_interactions=2), [3000000000, 12])
    """
    path = Path(path)
    line_users, users, items = _parse_lightgcn(path)
    user_ids = item_ids = None
    if n_users is None:
        user_ids, n_users = _shared_ids([line_users])
    elif n_users <= line_users.max():
        raise ValueError(f"{path} holds the user {int(line_users.max())} but n_users={n_users}")
    if n_items is None:
        item_ids, n_items = _shared_ids([items])
    return Interactions(_positions(users, user_ids), _positions(items, item_ids), n_users=n_users,
                        n_items=n_items, user_ids=user_ids, item_ids=item_ids)


def read_lightgcn_split(folder: Any) -> tuple:
    """``(train, test)`` from ``folder/train.txt`` and ``folder/test.txt`` in the LightGCN format.

    Both parts get the same ``n_users``/``n_items`` and id maps: identity maps sized by the largest
    id over the two files, or, for users or items whose ids are sparse (see :func:`read_lightgcn`),
    the sorted distinct ids of both files.

    Raises
    ------
    FileNotFoundError
        No folder, or a file missing.
    ValueError
        As :func:`read_lightgcn`, naming the file and line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no LightGCN data folder at {folder}")
    parts = [_parse_lightgcn(folder / name) for name in ("train.txt", "test.txt")]
    user_ids, n_users = _shared_ids([p[0] for p in parts])
    item_ids, n_items = _shared_ids([p[2] for p in parts])
    return tuple(Interactions(_positions(p[1], user_ids), _positions(p[2], item_ids), n_users=n_users,
                              n_items=n_items, user_ids=user_ids, item_ids=item_ids) for p in parts)


_MOVIELENS_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


def _text_lines(path: Path) -> list:
    """The lines of a UTF-8 text file (any line ending), or a ``ValueError`` naming the line that is not UTF-8."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        number = raw.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}, line {number}: not UTF-8 text ({error.reason})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _movielens_layout(path: Path, number: int, first: str) -> tuple:
    """``(separator, columns, has_header)`` from the first non-blank line."""
    separator = "::" if "::" in first else "\t"
    cells = [c.strip() for c in first.split(separator)]
    if any(":" in c for c in cells) or cells[0].lower() in ("user_id", "userid", "user"):
        columns = [c.split(":", 1)[0].strip() for c in cells]
        for column in ("user_id", "item_id"):
            if column not in columns:
                raise ValueError(f"{path} has no {column!r} column; columns are {columns}")
        return separator, columns, True
    if not 2 <= len(cells) <= 4:
        raise ValueError(f"{path}, line {number}: expected 'user item [rating [timestamp]]' rows; "
                         f"got {len(cells)} fields")
    return separator, list(_MOVIELENS_COLUMNS[:len(cells)]), False


def _movielens_ids(path: Path, lines: np.ndarray, column: pd.Series, name: str) -> np.ndarray:
    """One id column: int64 when every id is an integer within int64, else the text as written."""
    text = column.str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if empty.size:
        raise ValueError(f"{path}, line {lines[empty[0]]}: {name} is empty")
    whole = pd.to_numeric(text, errors="coerce")
    if whole.dtype == np.int64:
        return whole.to_numpy()
    return text.to_numpy(dtype=object)


def _movielens_numbers(path: Path, lines: np.ndarray, column: pd.Series, name: str) -> np.ndarray:
    """A rating or timestamp column as float64, or a ``ValueError`` naming the first line that is not a
    finite number."""
    parsed = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(parsed))
    if bad.size:
        raise ValueError(f"{path}, line {lines[bad[0]]}: {name} must be a finite number; "
                         f"got {column.iloc[bad[0]]!r}")
    return parsed


@validate_params({"min_rating": [reals(), None]})
def read_movielens(path: Any, min_rating: Optional[float] = None) -> Interactions:
    """MovieLens ratings as implicit feedback.

    Parameters
    ----------
    path : str or Path
        ``u.data`` (tab separated ``user item rating timestamp``, no header), ML-1M's ``ratings.dat``
        (``::`` separated), a RecBole atomic ``.inter`` file (header ``user_id:token item_id:token
        rating:float timestamp:float``), or a folder holding one of them. The layout is detected
        from the first non-blank line; blank lines are skipped and fields are stripped of spaces.
    min_rating : float, optional
        Keep only ratings ``>= min_rating`` (e.g. 4 for "liked"); all ratings by default.

    Returns
    -------
    Interactions
        Internal indices follow the sorted raw ids (which ``user_ids``/``item_ids`` keep: int64 when
        every id of the column is an integer within int64, else the text as written); only users and
        items left after the rating filter are indexed; timestamps kept when present.

    Raises
    ------
    FileNotFoundError
        No file (or no ratings file in the folder).
    ValueError
        An empty file, a header without ``user_id``/``item_id``, ``min_rating`` that is not a finite
        number or without a rating column, and, naming the file and line, a row with another number of
        fields than the first, an empty id, a rating or timestamp that is not a finite number, or text
        that is not UTF-8.
    """
    path = Path(path)
    if path.is_dir():
        found = [path / "u.data", path / "ratings.dat"] + sorted(path.glob("*.inter"))
        found = [f for f in found if f.exists()]
        if not found:
            raise FileNotFoundError(f"no MovieLens ratings (u.data, ratings.dat or *.inter) in {path}")
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"no MovieLens ratings at {path}")
    rows = [(number, line) for number, line in enumerate(_text_lines(path), start=1) if line.strip()]
    if not rows:
        raise ValueError(f"{path} is empty; expected MovieLens ratings")
    separator, columns, has_header = _movielens_layout(path, *rows[0])
    rows = rows[1:] if has_header else rows
    if min_rating is not None and "rating" not in columns:
        raise ValueError(f"min_rating needs a rating column and {path} has none")
    for number, line in rows:
        if line.count(separator) != len(columns) - 1:
            raise ValueError(f"{path}, line {number}: expected {len(columns)} fields ({', '.join(columns)}); "
                             f"got {len(line.split(separator))}")
    lines = np.array([number for number, _ in rows], dtype=np.int64)
    text = "\n".join(line for _, line in rows)
    # pandas 2's C parser ends a field at a NUL character; the Python parser keeps it (and takes "::")
    python = separator == "::" or "\x00" in text
    frame = pd.read_csv(io.StringIO(text), sep=separator, header=None, names=columns, dtype=str,
                        keep_default_na=False, quoting=csv.QUOTE_NONE, skip_blank_lines=False,
                        engine="python" if python else "c") if rows \
        else pd.DataFrame({c: pd.Series([], dtype=str) for c in columns})
    users = _movielens_ids(path, lines, frame["user_id"], "user_id")
    items = _movielens_ids(path, lines, frame["item_id"], "item_id")
    parsed = {c: _movielens_numbers(path, lines, frame[c], c) for c in ("rating", "timestamp") if c in columns}
    keep = slice(None) if min_rating is None else parsed["rating"] >= float(min_rating)
    timestamps = parsed["timestamp"][keep] if "timestamp" in parsed else None
    return Interactions.from_ids(users[keep], items[keep], timestamps=timestamps)
