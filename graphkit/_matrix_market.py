"""Matrix Market (``.mtx``) files read as graphs: the file holds the adjacency matrix.

Used by :func:`graphkit.io.read_edgelist`, and so by :func:`graphkit.as_graph` and
``graphkit embed``; :func:`is_matrix_market` tells such a file from an edge list and
:func:`read_matrix_market` reads it with :func:`scipy.io.mmread`.

Row ``i`` and column ``j`` of the matrix are nodes ``i`` and ``j`` (0-based ids ``0 .. n - 1``,
nodes without entries included); an entry ``a_ij`` is an edge ``i -> j`` of weight ``a_ij``.
``symmetric``, ``skew-symmetric`` and ``hermitian`` files store one triangle and are expanded
as the format defines (``a_ji = a_ij``, ``-a_ij``, ``conj(a_ij)``). Problems raise
:class:`MatrixMarketError`, whose message the reader prefixes with the file's name.
"""

from __future__ import annotations

import lzma
from typing import Any

import numpy as np
import scipy.io

from graphkit._edgelist_format import OPENERS, compression_of
from graphkit._edges import EdgeInputError
from graphkit.graph import Graph

__all__ = ["MATRIX_MARKET_SUFFIXES", "MatrixMarketError", "graph_of_entries", "is_matrix_market",
           "read_matrix_market"]

MATRIX_MARKET_SUFFIXES = (".mtx", ".mtx.gz", ".mtx.bz2")
_BANNER = b"%%matrixmarket"
_MIRRORED = ("symmetric", "skew-symmetric", "hermitian")


class MatrixMarketError(ValueError):
    """A Matrix Market file that is malformed or is not an adjacency matrix."""


def is_matrix_market(path: str, name: str) -> bool:
    """Whether ``name`` ends in ``.mtx`` (``.mtx.gz``, ``.mtx.bz2``) or the data at ``path``
    (decompressed) starts with the ``%%MatrixMarket`` banner."""
    if name.lower().endswith(MATRIX_MARKET_SUFFIXES):
        return True
    try:
        with OPENERS[compression_of(path)](path, "rb") as handle:
            start = handle.read(len(_BANNER) + 3)
    except (OSError, EOFError, lzma.LZMAError):
        return False  # the edge-list reader names what is wrong with the file
    return start.removeprefix(b"\xef\xbb\xbf").lower().startswith(_BANNER)


def read_matrix_market(path: str, *, directed: bool, weighted: bool | None, self_loops: str,
                       duplicates: str) -> tuple[Graph, str]:
    """The graph of the matrix in ``path``, and one line saying how it was read.

    Parameters are those of :func:`graphkit.read_edgelist`: an undirected graph merges
    ``a_ij`` and ``a_ji`` as an edge list merges ``u v`` and ``v u`` (``duplicates``); a
    mirrored file (``symmetric``, ...) gives each of its stored entries once. ``weighted``
    None or True reads real and integer values as weights (True refuses a ``pattern`` file),
    False gives every non-zero entry weight 1. Entries of value 0 are not edges.

    Raises
    ------
    MatrixMarketError
        For a malformed file, a vector, a non-square or complex matrix, negative or
        non-finite values (unless ``weighted=False``), an empty (0 x 0) matrix, ``weighted=True`` with a ``pattern``
        file, or a repeated entry under ``duplicates="error"``.
    """
    n_rows, n_cols, layout, field, symmetry = _header(path)
    kind = f"{layout} {field} {symmetry}"
    if n_rows == 0 or n_cols == 0:
        raise MatrixMarketError(f"holds a {n_rows} x {n_cols} matrix; a graph needs at least one node")
    if n_rows != n_cols:
        raise MatrixMarketError(f"holds a {n_rows} x {n_cols} {kind} matrix; an adjacency matrix "
                                "must be square (one row and one column per node)")
    if field == "complex":
        raise MatrixMarketError(f"holds a complex matrix ({kind}); edge weights must be real "
                                "numbers (real, integer or pattern files)")
    if field == "pattern" and weighted:
        raise MatrixMarketError("weighted=True, but it is a pattern matrix, which has no values")
    rows, cols, values = _entries(_read(path))
    use_values = field != "pattern" and weighted is not False
    if use_values:
        check_entry_values(rows, cols, values, symmetry)
    if not directed and symmetry in _MIRRORED:
        stored = rows >= cols  # the triangle the file holds; the other is its mirror image
        rows, cols, values = rows[stored], cols[stored], values[stored]
    graph = graph_of_entries(rows, cols, values if use_values else None, n_rows, directed=directed,
                             self_loops=self_loops, duplicates=duplicates)
    how = "weights from the values" if use_values else (
        "unweighted (pattern)" if field == "pattern" else "unweighted (values ignored)")
    return graph, f"Matrix Market {kind}, {n_rows} x {n_cols}, {how}"


def _header(path: str) -> tuple[int, int, str, str, str]:
    """``(rows, columns, format, field, symmetry)`` from the banner and the size line.

    Read here rather than with :func:`scipy.io.mminfo`, which aborts the process when given an
    open file (SciPy 1.17), and which reads compressed data only by the file's suffix.
    """
    try:
        with OPENERS[compression_of(path)](path, "rb") as handle:
            banner = handle.readline(1024).decode("utf-8", "replace").removeprefix("\ufeff").split()
            line = handle.readline(1024)
            while line and (line.startswith(b"%") or not line.strip()):
                line = handle.readline(1024)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise MatrixMarketError(f"cannot be read ({exc})") from exc
    words = [word.lower() for word in banner[1:5]]
    if not banner or banner[0].lower() != "%%matrixmarket" or len(words) != 4:
        raise MatrixMarketError("is not a Matrix Market file: line 1 must be a banner such as "
                                "'%%MatrixMarket matrix coordinate real general'")
    if words[0] != "matrix":
        raise MatrixMarketError(f"holds a {words[0]}, not a matrix")
    size = line.split()
    if len(size) < 2 or not all(token.isdigit() for token in size[:2]):
        raise MatrixMarketError("has no size line ('rows columns [entries]') after the banner")
    return int(size[0]), int(size[1]), words[1], words[2], words[3]


def _read(path: str) -> Any:
    """:func:`scipy.io.mmread` on the decompressed data, with our errors."""
    try:
        with OPENERS[compression_of(path)](path, "rb") as handle:
            return scipy.io.mmread(handle)
    except (ValueError, OSError, EOFError, lzma.LZMAError) as exc:
        raise MatrixMarketError(f"is not a valid Matrix Market file ({exc})") from exc


def _entries(matrix: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the non-zero entries (a dense array for the array format)."""
    if isinstance(matrix, np.ndarray):
        rows, cols = np.nonzero(matrix)
        values = matrix[rows, cols]
    else:
        keep = matrix.data != 0
        rows, cols, values = matrix.row[keep], matrix.col[keep], matrix.data[keep]
    return rows.astype(np.int64), cols.astype(np.int64), values.astype(np.float64)


def check_entry_values(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, symmetry: str) -> None:
    """Raise for the first negative or non-finite entry (named by its 1-based row and column)."""
    bad = ~np.isfinite(values) | (values < 0)
    if not bad.any():
        return
    at = int(np.argmax(bad))
    entry = f"entry ({rows[at] + 1}, {cols[at] + 1}) is {values[at]:g}"
    if not np.isfinite(values[at]):
        raise MatrixMarketError(f"{entry}; edge weights must be finite")
    why = ("a skew-symmetric matrix mirrors each entry as its negative; " if symmetry == "skew-symmetric"
           else "")
    raise MatrixMarketError(f"{entry}; {why}edge weights must be non-negative (weighted=False "
                            "reads the non-zero pattern only)")


def graph_of_entries(rows: np.ndarray, cols: np.ndarray, values: np.ndarray | None, n_nodes: int, *,
                     directed: bool, self_loops: str, duplicates: str) -> Graph:
    """The graph of an ``n_nodes x n_nodes`` matrix's entries (``values`` None: unweighted), marked
    weighted when it has values; a repeat under ``duplicates="error"`` raises :class:`MatrixMarketError`."""
    try:
        graph = Graph.from_edges(rows, cols, values, directed=directed, n_nodes=n_nodes,
                                 self_loops=self_loops, duplicates=duplicates)
    except EdgeInputError as exc:
        raise repeat_error(exc, rows, cols, directed) from exc
    if values is not None:
        graph.weighted = True
    return graph


def repeat_error(exc: EdgeInputError, rows: np.ndarray, cols: np.ndarray,
                 directed: bool) -> MatrixMarketError:
    """The error for an entry that repeats an earlier one under ``duplicates="error"``."""
    if len(exc.positions) != 2:
        return MatrixMarketError(str(exc))
    first, second = exc.positions
    note = "" if directed else " (a_ij and a_ji are the same edge of an undirected graph)"
    return MatrixMarketError(f"entry ({rows[second] + 1}, {cols[second] + 1}) repeats entry "
                             f"({rows[first] + 1}, {cols[first] + 1}), and duplicates='error'{note}")
