"""MATLAB ``.mat`` files read as graphs: one variable of the file holds the adjacency matrix.

Many standard graphs are published this way (BlogCatalog's ``network``, HARP's DBLP ``A``, ...).
Used by :func:`graphkit.io.read_edgelist`, and so by :func:`graphkit.as_graph` and
``graphkit embed``; :func:`is_matlab` tells such a file from an edge list and
:func:`read_matlab` reads it with :func:`scipy.io.loadmat` (MAT-file versions 4 to 7.2; version
7.3 files are HDF5, which SciPy does not read). A version 5 file's layout is checked first
(:mod:`graphkit._matlab_layout`), since SciPy's compiled reader can crash on a damaged one.

The variable is the one named, or else the only square numeric matrix of the file, or else the
first of :data:`ADJACENCY_NAMES` the file holds. Row ``i`` and column ``j`` are nodes ``i`` and
``j`` (ids ``0 .. n - 1``, nodes without entries kept), and a non-zero entry ``a_ij`` is an edge
``i -> j`` of weight ``a_ij``, as in a Matrix Market file (:mod:`graphkit._matrix_market`).
"""

from __future__ import annotations

from typing import Any, Optional

import io

import numpy as np
import scipy.io
import scipy.sparse as sp

from graphkit._matlab_layout import MatlabLayoutError, check_layout
from graphkit._matrix_market import MatrixMarketError, check_entry_values, graph_of_entries
from graphkit.graph import Graph

__all__ = ["ADJACENCY_NAMES", "MatlabError", "is_matlab", "read_matlab"]

ADJACENCY_NAMES = ("network", "A", "adjacency", "adj", "graph", "net", "W")
_V5_HEADER = b"MATLAB 5.0 MAT-file"
_V73_HEADER = b"MATLAB 7.3 MAT-file"


class MatlabError(ValueError):
    """A ``.mat`` file that cannot be read, or holds no adjacency matrix to take."""


def is_matlab(path: str, name: str) -> bool:
    """Whether ``name`` ends in ``.mat`` or the data at ``path`` starts with a MATLAB 5 or 7.3
    file header."""
    if name.lower().endswith(".mat"):
        return True
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(_V5_HEADER))
    except OSError:
        return False   # the edge-list reader names what is wrong with the file
    return start in (_V5_HEADER, _V73_HEADER)


def read_matlab(path: str, *, variable: Optional[str], directed: bool, weighted: Optional[bool],
                self_loops: str, duplicates: str) -> tuple[Graph, str]:
    """The graph of the adjacency matrix held in ``path``, and one line saying how it was read.

    Parameters
    ----------
    path : str
    variable : str, optional
        The variable holding the adjacency matrix. None: the file's only square numeric
        matrix, or else the first of :data:`ADJACENCY_NAMES` that it holds.
    directed, weighted, self_loops, duplicates
        As for :func:`graphkit.read_edgelist`. With ``directed=False`` entries ``a_ij`` and
        ``a_ji`` are one edge, merged by ``duplicates`` (a symmetric matrix gives each edge
        once). ``weighted`` None or True reads the values as weights; False gives every non-zero
        entry weight 1.

    Raises
    ------
    MatlabError
        For a file SciPy cannot read (a version 7.3 file: HDF5), a ``variable`` the file does not
        hold, a variable that is not a square numeric matrix, a file with no such matrix or with
        several and none of the usual names (they are listed), complex, negative or non-finite
        values (unless ``weighted=False``), or a repeated edge under ``duplicates="error"``.
    """
    matrices = _load(path)
    chosen = _choose(matrices, variable)
    matrix = matrices[chosen]
    n = matrix.shape[0]
    if np.iscomplexobj(matrix):
        raise MatlabError(f"variable {chosen!r} is complex; edge weights must be real numbers")
    entries = sp.coo_matrix(matrix)
    keep = entries.data != 0
    rows, cols = entries.row[keep].astype(np.int64), entries.col[keep].astype(np.int64)
    values = entries.data[keep].astype(np.float64)
    use_values = weighted is not False
    try:
        if use_values:
            check_entry_values(rows, cols, values, "general")
        graph = graph_of_entries(rows, cols, values if use_values else None, n, directed=directed,
                                 self_loops=self_loops, duplicates=duplicates)
    except MatrixMarketError as exc:
        raise MatlabError(f"variable {chosen!r}: {exc}") from exc
    how = "weights from the values" if use_values else "unweighted (values ignored)"
    return graph, f"MATLAB file, variable {chosen!r} ({n} x {n}, {'sparse' if sp.issparse(matrix) else 'dense'}), {how}"


def _load(path: str) -> dict:
    """The file's variables that are 2-D numeric matrices (sparse or dense)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data.startswith(_V5_HEADER):
        try:
            check_layout(data)   # SciPy's compiled reader can crash on a damaged version 5 file
        except MatlabLayoutError as exc:
            raise MatlabError(str(exc)) from exc
    try:
        contents = scipy.io.loadmat(io.BytesIO(data))
    except NotImplementedError as exc:   # SciPy's answer to version 7.3 (HDF5) files
        raise MatlabError("is a MATLAB 7.3 file (HDF5), which SciPy cannot read; save it again with "
                          "save(..., '-v7') in MATLAB, or read the matrix with h5py and pass it to as_graph") from exc
    except Exception as exc:   # any failure of SciPy's parser on the file's bytes, MatReadError included
        raise MatlabError(f"is not a MATLAB file SciPy can read ({type(exc).__name__}: {exc})") from exc
    return {name: value for name, value in contents.items()
            if not name.startswith("__") and (sp.issparse(value) or _is_numeric_matrix(value))}


def _is_numeric_matrix(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "biufc"


def _choose(matrices: dict, variable: Optional[str]) -> str:
    square = {name: value for name, value in matrices.items() if value.shape[0] == value.shape[1] > 0}
    listed = ", ".join(f"{name} ({value.shape[0]} x {value.shape[1]})" for name, value in matrices.items()) or "none"
    if variable is not None:
        if variable not in matrices:
            raise MatlabError(f"holds no numeric matrix named {variable!r}; its numeric matrices: {listed}")
        if variable not in square:
            shape = matrices[variable].shape
            raise MatlabError(f"variable {variable!r} is {shape[0]} x {shape[1]}; an adjacency matrix must be "
                              "square (one row and one column per node)")
        return variable
    if len(square) == 1:
        return next(iter(square))
    named = [name for name in ADJACENCY_NAMES if name in square]
    if named:
        return named[0]
    if not square:
        raise MatlabError(f"holds no square numeric matrix to read as an adjacency matrix; its numeric matrices: "
                          f"{listed}")
    raise MatlabError(f"holds several square matrices ({', '.join(square)}) and none of the usual names "
                      f"({', '.join(ADJACENCY_NAMES)}); name the adjacency matrix (variable=..., or --mat-variable)")
