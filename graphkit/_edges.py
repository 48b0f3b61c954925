"""Node ids, edge arrays and adjacency matrices checked and turned into canonical CSR parts.

The input side of :class:`graphkit.Graph`: nothing here knows the ``Graph`` type, so both
:mod:`graphkit.graph` and :mod:`graphkit.io` import it without importing each other.

- :func:`adjacency_from_edges`: ``(src, dst[, weight])`` arrays to a CSR adjacency and node ids,
  renumbering ids in linear time where they are small integers.
- :func:`canonical_csr`, :func:`is_symmetric`: SciPy input to the canonical ``float64`` CSR form.
- :func:`as_id_array`, :func:`checked_node_ids`: node ids as 1-D arrays, with clear errors.
- :func:`unpack_pyg`: the edge index, node count and weights of PyTorch Geometric input.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from tensorkit.validation import reject_complex

__all__ = ["DUPLICATE_POLICIES", "SELF_LOOP_POLICIES", "EdgeInputError", "adjacency_from_edges",
           "as_id_array", "canonical_csr", "check_choice", "check_weight_values", "checked_node_ids",
           "has_non_unit_values", "id_index", "is_symmetric", "raise_for_unknown_ids", "unpack_pyg"]

SELF_LOOP_POLICIES = ("keep", "drop")
DUPLICATE_POLICIES = ("max", "sum", "error")

# Integer ids up to this multiple of the number of endpoints are renumbered with a dense lookup
# table (linear time) instead of a hash table; beyond it the table would waste memory.
_DENSE_RENUMBER_FACTOR = 4

_MAX_NAMED_IDS = 5


class EdgeInputError(ValueError):
    """A ValueError about particular input edges.

    ``positions`` are the indices of the offending edges in the arrays given to
    :meth:`Graph.from_edges`, so that a reader can name the lines they came from.
    """

    def __init__(self, message: str, positions: tuple[int, ...]):
        super().__init__(message)
        self.positions = tuple(int(p) for p in positions)


# -- validation and conversion of inputs --------------------------------------------------------

def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def canonical_csr(matrix: Any) -> sp.csr_matrix:
    """A float64 copy in CSR form with sorted indices, no repeats and no stored zeros."""
    if not sp.issparse(matrix):
        raise TypeError(
            f"adjacency must be a scipy.sparse matrix or array; got {type(matrix).__name__}"
        )
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"adjacency must be a square matrix; got shape {matrix.shape}")
    csr = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def check_weight_values(values: np.ndarray, name: str) -> None:
    if np.iscomplexobj(values):
        raise ValueError(f"{name} values must be real numbers; got complex data")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} values must be finite; found NaN or infinity")
    if values.size and values.min() < 0:
        raise ValueError(f"Negative values in data: {name} values must be non-negative; found {float(values.min())}")


def is_symmetric(matrix: sp.csr_matrix) -> bool:
    """Exact symmetry of a canonical CSR matrix (sorted indices, no repeats)."""
    transposed = matrix.T.tocsr()
    transposed.sort_indices()
    return (
        np.array_equal(matrix.indptr, transposed.indptr)
        and np.array_equal(matrix.indices, transposed.indices)
        and np.array_equal(matrix.data, transposed.data)
    )


def has_non_unit_values(matrix: sp.csr_matrix) -> bool:
    return bool(np.any(matrix.data != 1.0))


def as_id_array(values: Any, name: str) -> np.ndarray:
    """A 1-D array of node ids: integers (int64 for integral floats), strings or objects."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    elif isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    array = values if isinstance(values, np.ndarray) else _array_from_sequence(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {array.shape}")
    if array.dtype.kind == "f":
        return _integral_floats_as_int(array, name)
    if array.dtype.kind not in "iuUSO":
        raise ValueError(f"{name} must hold integers or strings; got dtype {array.dtype}")
    return array


def _array_from_sequence(values: Any) -> np.ndarray:
    array = np.asarray(values)
    # NumPy turns [1, "a"] into strings and a list of tuples into a 2-D array; keep such
    # ids as Python objects instead.
    mixed = array.dtype.kind in "US" and not all(isinstance(v, (str, bytes)) for v in values)
    if array.ndim > 1 or mixed:
        items = list(values)
        array = np.empty(len(items), dtype=object)
        for position, item in enumerate(items):
            array[position] = item
    return array


def _integral_floats_as_int(array: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold integers or strings; found NaN or infinity")
    if np.any(array != np.round(array)):
        raise ValueError(f"{name} must hold integers or strings; got non-integral numbers")
    exact_bits = np.finfo(array.dtype).nmant + 1
    if array.size and np.abs(array).max() > 2.0**exact_bits:
        raise ValueError(
            f"{name} holds floating-point ids beyond 2**{exact_bits}, which {array.dtype} cannot "
            "hold exactly (distinct ids may have merged); pass integer ids"
        )
    return array.astype(np.int64)


def _as_weight_array(weight: Any, n_edges: int) -> np.ndarray:
    reject_complex(weight, "weight")
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().cpu().numpy()
    try:
        weights = np.asarray(weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weight must be numeric; {exc}") from exc
    if weights.ndim != 1 or len(weights) != n_edges:
        raise ValueError(
            f"weight must be one-dimensional with one value per edge ({n_edges}); "
            f"got shape {weights.shape}"
        )
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        position = int(np.argmax(bad))
        raise EdgeInputError(
            f"weight must be finite and non-negative; edge {position} has weight "
            f"{float(weights[position])}",
            positions=(position,),
        )
    return weights


def checked_node_ids(node_ids: Any, n_nodes: int) -> np.ndarray:
    if node_ids is None:
        return np.arange(n_nodes)
    ids = as_id_array(node_ids, "node_ids")
    if len(ids) != n_nodes:
        raise ValueError(f"node_ids must have one id per node ({n_nodes}); got {len(ids)}")
    if ids.dtype == object and pd.isna(ids).any():
        raise ValueError("node_ids must not contain missing values (None or NaN)")
    lookup = id_index(ids)
    if not lookup.is_unique:
        repeated = pd.unique(ids[lookup.duplicated()])[:_MAX_NAMED_IDS]
        raise ValueError(f"node_ids must be unique; repeated: {_format_ids(repeated)}")
    return ids


def id_index(ids: np.ndarray) -> pd.Index:
    # tupleize_cols=False keeps tuple ids (e.g. grid coordinates) as single labels.
    return pd.Index(ids, tupleize_cols=False)


def _format_ids(ids: Any) -> str:
    return ", ".join(repr(i.item() if isinstance(i, np.generic) else i) for i in ids)


def raise_for_unknown_ids(query: np.ndarray, positions: np.ndarray, what: str) -> None:
    unknown = positions < 0
    if unknown.any():
        names = pd.unique(query[unknown])
        raise ValueError(
            f"unknown node id(s) in {what}: {_format_ids(names[:_MAX_NAMED_IDS])}"
            f"{' ...' if len(names) > _MAX_NAMED_IDS else ''} "
            f"({int(unknown.sum())} of {len(query)} not in the graph)"
        )


def unpack_pyg(obj: Any, num_nodes: int | None, edge_weight: Any):
    """``(edge_index as a (2, E) int array, num_nodes, edge_weight)`` from PyG-style input."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        edge_index = obj
    elif hasattr(obj, "edge_index"):
        edge_index = obj.edge_index
        if num_nodes is None:
            num_nodes = _pyg_num_nodes(obj)
        if edge_weight is None:
            edge_weight = _pyg_edge_weight(obj)
    else:
        raise TypeError(
            "expected a torch_geometric.data.Data or a 2 x E edge-index tensor; "
            f"got {type(obj).__name__}"
        )
    if isinstance(edge_index, torch.Tensor):
        edge_index = edge_index.detach().cpu().numpy()
    edge_index = np.asarray(edge_index)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2 or edge_index.dtype.kind not in "iu":
        raise ValueError(
            "edge_index must be an integer array of shape (2, E); "
            f"got dtype {edge_index.dtype} and shape {edge_index.shape}"
        )
    if edge_index.size and edge_index.min() < 0:
        raise ValueError("edge_index must not hold negative node indices")
    if num_nodes is None:
        num_nodes = _implied_num_nodes(edge_index)
    return edge_index, None if num_nodes is None else int(num_nodes), edge_weight


def _implied_num_nodes(edge_index: np.ndarray) -> int | None:
    """PyG's default, the largest index plus one, unless the indices are so sparse that this
    would allocate by the largest index rather than by the edges: None (ids are renumbered)."""
    if not edge_index.size:
        return 0
    largest = int(edge_index.max())
    return largest + 1 if largest < _DENSE_RENUMBER_FACTOR * edge_index.size else None


def _pyg_num_nodes(data: Any) -> int | None:
    """The number of nodes a PyG ``Data`` states (stored, or the rows of its node features);
    None when PyG would only guess it from the largest index."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        num_nodes = getattr(data, "num_nodes", None)
    if any("infer 'num_nodes'" in str(warning.message) for warning in caught):
        return None
    return num_nodes


def _pyg_edge_weight(data: Any) -> Any:
    weight = getattr(data, "edge_weight", None)
    if weight is None:
        attributes = getattr(data, "edge_attr", None)
        if attributes is not None and attributes.ndim == 1:
            weight = attributes
    return weight



def adjacency_from_edges(src: Any, dst: Any, weight: Any, *, directed: bool, n_nodes: int | None,
                         node_ids: Any, self_loops: str,
                         duplicates: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(canonical CSR adjacency, node ids)`` of the edges, as :meth:`Graph.from_edges` says."""
    check_choice(self_loops, "self_loops", SELF_LOOP_POLICIES)
    check_choice(duplicates, "duplicates", DUPLICATE_POLICIES)
    sources, targets = as_id_array(src, "src"), as_id_array(dst, "dst")
    if len(sources) != len(targets):
        raise ValueError(
            f"src and dst must have the same length; got {len(sources)} and {len(targets)}"
        )
    weights = None if weight is None else _as_weight_array(weight, len(sources))
    ids, rows, cols = _endpoint_positions(sources, targets, n_nodes, node_ids)
    kept = _kept_edges(rows, cols, weights, drop_self_loops=self_loops == "drop")
    if kept is not None:
        rows, cols = rows[kept], cols[kept]
        weights = None if weights is None else weights[kept]
    if not directed:
        rows, cols = np.minimum(rows, cols), np.maximum(rows, cols)
    keys = rows.astype(np.int64, copy=False) * len(ids) + cols
    if duplicates == "error":
        _raise_for_repeated_edge(keys, sources, targets, kept, directed)
    rows, cols, values = _merge_repeated_edges(keys, weights, len(ids), duplicates)
    if directed:
        adjacency = _csr_from_sorted_edges(rows, cols, values, len(ids))
    else:
        adjacency = _symmetric_csr_from_upper_edges(rows, cols, values, len(ids))
    return adjacency, ids


# -- from_edges steps ---------------------------------------------------------------------------

def _endpoint_positions(sources: np.ndarray, targets: np.ndarray, n_nodes: int | None,
                        node_ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(node ids, source positions, target positions)`` following :meth:`Graph.from_edges`."""
    if n_nodes is not None and (not isinstance(n_nodes, (int, np.integer)) or n_nodes < 0):
        raise ValueError(f"n_nodes must be a non-negative integer; got {n_nodes!r}")
    if node_ids is not None:
        ids = checked_node_ids(node_ids, len(node_ids) if n_nodes is None else n_nodes)
        lookup = id_index(ids)
        rows, cols = lookup.get_indexer(sources), lookup.get_indexer(targets)
        raise_for_unknown_ids(sources, rows, what="src")
        raise_for_unknown_ids(targets, cols, what="dst")
        return ids, rows, cols
    if n_nodes is not None and _are_non_negative_integers(sources, targets):
        _check_below(sources, n_nodes, "src")
        _check_below(targets, n_nodes, "dst")
        return np.arange(n_nodes), sources.astype(np.int64), targets.astype(np.int64)
    ids, rows, cols = _renumber(sources, targets)
    if n_nodes is not None and n_nodes != len(ids):
        raise ValueError(
            f"n_nodes={n_nodes}, but the edges name {len(ids)} distinct nodes; "
            "pass node_ids to include nodes without edges"
        )
    return ids, rows, cols


def _are_non_negative_integers(*arrays: np.ndarray) -> bool:
    return all(
        a.dtype.kind in "iu" and (a.size == 0 or a.min() >= 0) for a in arrays
    )


def _check_below(ids: np.ndarray, n_nodes: int, name: str) -> None:
    too_large = ids >= n_nodes
    if too_large.any():
        raise ValueError(
            f"{name} holds node id {ids[np.argmax(too_large)].item()}, but n_nodes={n_nodes} "
            f"allows only ids 0 .. {n_nodes - 1}"
        )


def _renumber(sources: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Sorted distinct ids of all endpoints and the positions of sources and targets among them."""
    n_endpoints = len(sources) + len(targets)
    if n_endpoints and _are_non_negative_integers(sources, targets) and (
        max(sources.max(initial=0), targets.max(initial=0)) < _DENSE_RENUMBER_FACTOR * n_endpoints
    ):
        return _renumber_small_integers(sources, targets)
    if sources.dtype.kind in "iu" and targets.dtype.kind in "iu":
        sources, targets = _common_integer_ids(sources, targets)
    elif sources.dtype.kind != targets.dtype.kind:
        sources, targets = sources.astype(object), targets.astype(object)
    ids, codes = _factorize_sorted(np.concatenate([sources, targets]))
    return ids, codes[: len(sources)], codes[len(sources):]


def _common_integer_ids(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays in one integer dtype that holds every id exactly.

    NumPy promotes int64 with uint64 to float64, which merges distinct ids above 2**53:
    int64 is used when every id fits, uint64 when none is negative, else Python integers.
    """
    if len({a.dtype for a in arrays}) == 1:
        return list(arrays)
    int64 = np.iinfo(np.int64)
    if all(a.size == 0 or (a.min() >= int64.min and a.max() <= int64.max) for a in arrays):
        return [a.astype(np.int64) for a in arrays]
    if all(a.size == 0 or a.min() >= 0 for a in arrays):
        return [a.astype(np.uint64) for a in arrays]
    return [a.astype(object) for a in arrays]


def _factorize_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and the position of each value among them (hash based)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        # Sorting the few distinct strings as a fixed-width array is faster than letting
        # pandas sort Python objects.
        codes, distinct = pd.factorize(values, sort=False)
        order = np.argsort(distinct.astype(str), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return np.asarray(distinct)[order], rank[codes]
    codes, distinct = pd.factorize(values, sort=True)
    if codes.size and codes.min() < 0:
        raise ValueError("node ids must not be missing (None or NaN)")
    return np.asarray(distinct), codes.astype(np.int64, copy=False)


def _renumber_small_integers(sources: np.ndarray, targets: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_renumber` in linear time, through a table indexed by the ids themselves."""
    largest = max(sources.max(initial=0), targets.max(initial=0))
    present = np.zeros(int(largest) + 1, dtype=bool)
    present[sources] = True
    present[targets] = True
    position_of_id = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present), position_of_id[sources], position_of_id[targets]


def _kept_edges(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray | None,
                drop_self_loops: bool) -> np.ndarray | None:
    """Mask of the edges to keep (zero weights and, if asked, self loops go); None keeps all."""
    keep = np.ones(len(rows), dtype=bool)
    if drop_self_loops:
        keep &= rows != cols
    if weights is not None:
        keep &= weights > 0
    return None if keep.all() else keep


def _raise_for_repeated_edge(keys: np.ndarray, sources: np.ndarray, targets: np.ndarray,
                             kept: np.ndarray | None, directed: bool) -> None:
    """Raise for the earliest edge that repeats an earlier one (``keys`` identify edges)."""
    repeated = pd.Series(keys).duplicated().to_numpy()
    if not repeated.any():
        return
    second = int(np.argmax(repeated))
    first = int(np.argmax(keys == keys[second]))
    if kept is not None:
        first, second = (int(p) for p in np.flatnonzero(kept)[[first, second]])
    note = "" if directed else "; (u, v) and (v, u) are the same edge of an undirected graph"
    raise EdgeInputError(
        f"edge {second} ({_format_ids([sources[second], targets[second]])}) repeats edge "
        f"{first} ({_format_ids([sources[first], targets[first]])}), and "
        f"duplicates='error'{note}",
        positions=(first, second),
    )


def _merge_repeated_edges(keys: np.ndarray, weights: np.ndarray | None, n_nodes: int,
                          how: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the distinct edges, sorted by (row, column).

    ``keys`` are ``row * n_nodes + column``; repeats combine by maximum or sum (``how``).
    """
    if weights is None:
        order, sorted_keys = None, np.sort(keys)
    else:
        order = np.argsort(keys)
        sorted_keys = keys[order]
    is_first = np.ones(len(keys), dtype=bool)
    is_first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.flatnonzero(is_first)
    distinct_keys = sorted_keys[starts]
    if len(keys) == 0:
        values = np.zeros(0)
    elif weights is None:
        values = (np.ones(len(starts)) if how != "sum"
                  else np.diff(np.append(starts, len(keys))).astype(np.float64))
    else:
        reduce = np.add if how == "sum" else np.maximum
        values = reduce.reduceat(weights[order], starts)
    rows, cols = np.divmod(distinct_keys, max(n_nodes, 1))
    return rows, cols, values


def _csr_from_sorted_edges(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                           n_nodes: int) -> sp.csr_matrix:
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_nodes), out=indptr[1:])
    matrix = sp.csr_matrix((values, cols, indptr), shape=(n_nodes, n_nodes))
    matrix.has_sorted_indices = True
    return matrix


def _symmetric_csr_from_upper_edges(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                                    n_nodes: int) -> sp.csr_matrix:
    """The symmetric matrix holding the sorted edges ``rows <= cols`` and their mirror images."""
    upper = _csr_from_sorted_edges(rows, cols, values, n_nodes)
    off_diagonal = rows != cols
    strictly_upper = _csr_from_sorted_edges(
        rows[off_diagonal], cols[off_diagonal], values[off_diagonal], n_nodes
    )
    # The two parts share no entry, so their sum just interleaves them.
    symmetric = (upper + strictly_upper.T.tocsr()).tocsr()
    symmetric.sort_indices()
    return symmetric
