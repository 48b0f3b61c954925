"""Raw user and item ids: which inputs hold them, and how they become internal indices.

The rule that :func:`recsys.interactions.as_interactions` (and so every recommender) follows:

- a pandas DataFrame of two columns ``(user, item)`` holds raw ids, whatever their dtype;
- an ``(n, 2)`` array or nested list holds raw ids when its values are not all numbers (strings,
  bytes, Python objects: NumPy dtype kinds ``U``, ``S``, ``O``);
- an array of numbers holds indices (or, for a sparse column, ids that are remapped): see
  :meth:`recsys.interactions.Interactions.from_pairs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tensorkit import backend
from tensorkit.validation import reject_complex

_INT64 = np.iinfo(np.int64)
_NOT_NUMBERS = "USO"   # dtype kinds of strings, bytes and Python objects


def holds_raw_ids(data: Any) -> bool:
    """Whether ``data`` names users and items by raw ids (see the module's rule), not by indices."""
    if isinstance(data, pd.DataFrame):
        return True
    if isinstance(data, np.ndarray):
        return data.dtype.kind in _NOT_NUMBERS
    if isinstance(data, (list, tuple)):
        try:
            return np.asarray(data).dtype.kind in _NOT_NUMBERS
        except ValueError:   # ragged lists: left to the pairs reader, which names the shape
            return False
    return False


def raw_id_columns(data: Any, name: str = "data") -> tuple:
    """``((users_name, users), (items_name, items))``: the two id columns of raw-id ``data``.

    Raises
    ------
    ValueError
        A DataFrame without exactly two columns, or an array that is not ``(n, 2)``.
    """
    if isinstance(data, pd.DataFrame):
        if data.shape[1] != 2:
            raise ValueError(f"{name} must be a DataFrame of two columns (user, item); got {data.shape[1]} "
                             f"columns {list(data.columns)[:10]} (select them, e.g. {name}[['user', 'item']])")
        return tuple((f"{name}[{column!r}]", data[column].to_numpy()) for column in data.columns)
    # object dtype keeps each value's own type: a list [["u1", 3]] would otherwise turn 3 into "3"
    arr = np.array(data, dtype=object) if isinstance(data, (list, tuple)) else np.asarray(data)
    if arr.size == 0 and arr.ndim < 2:
        arr = arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be an (n, 2) array of (user, item) ids; got shape {arr.shape}")
    return (f"{name}[:, 0] (users)", arr[:, 0]), (f"{name}[:, 1] (items)", arr[:, 1])


def factorize_ids(raw: Any, name: str) -> tuple:
    """``(codes, ids)``: each raw id's internal index and the distinct ids behind the indices.

    The ids are sorted (in the order of first appearance when they cannot be sorted); Python integers
    within int64 become an int64 array.

    Raises
    ------
    ValueError
        A 1-D sequence is needed; missing ids (None or NaN) are refused.
    TypeError
        Complex ids.
    """
    reject_complex(raw, name)
    arr = np.asarray(raw, dtype=object) if isinstance(raw, (list, tuple)) else backend.to_numpy(raw)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of ids; got shape {arr.shape}")
    try:
        codes, uniques = pd.factorize(arr, sort=True)
    except TypeError:   # ids of kinds that do not compare (strings beside numbers)
        codes, uniques = pd.factorize(arr, sort=False)
    if (codes < 0).any():
        raise ValueError(f"{name} contains missing ids (None or NaN)")
    uniques = np.asarray(uniques)
    if uniques.dtype == object and len(uniques) and all(
            isinstance(u, (int, np.integer)) and _INT64.min <= u <= _INT64.max
            for u in uniques):
        uniques = uniques.astype(np.int64)
    return codes.astype(np.int64), uniques
