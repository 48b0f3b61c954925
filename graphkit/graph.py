"""The one graph type of :mod:`graphkit`: a SciPy CSR adjacency with the original node ids.

Every graph method in the toolkit takes a :class:`Graph` (or anything :func:`as_graph` turns into
one). A graph is four plain attributes:

- ``adjacency``: an ``n x n`` :class:`scipy.sparse.csr_matrix` of ``float64`` with sorted indices
  and no explicitly stored zeros; row ``i`` holds the edges that leave node ``i``. An undirected
  graph has a symmetric adjacency, with a self loop stored once on the diagonal.
- ``node_ids``: the original id of each row/column (integers or strings), all different.
- ``directed``: whether ``(u, v)`` and ``(v, u)`` are different edges.
- ``weighted``: whether the stored values are meaningful weights rather than just ``1``.

Examples
--------
>>> g = Graph.from_edges(["a", "b", "c"], ["b", "c", "a"])
>>> g
Graph(n_nodes=3, n_edges=3, directed=False, weighted=False)
>>> g.index_of(["c", "a"])
array([2, 0])
>>> g.degrees()
array([2., 2., 2.])
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from tensorkit.backend import as_sparse_tensor
from tensorkit.validation import reject_complex

__all__ = ["Graph", "as_graph"]

SELF_LOOP_POLICIES = ("keep", "drop")
DUPLICATE_POLICIES = ("max", "sum", "error")
DEGREE_DIRECTIONS = ("out", "in")

# Integer ids up to this multiple of the number of endpoints are renumbered with a dense lookup
# table (linear time) instead of a hash table; beyond it the table would waste memory.
_DENSE_RENUMBER_FACTOR = 4

_MAX_NAMED_IDS = 5


class _EdgeInputError(ValueError):
    """A ValueError about particular input edges.

    ``positions`` are the indices of the offending edges in the arrays given to
    :meth:`Graph.from_edges`, so that a reader can name the lines they came from.
    """

    def __init__(self, message: str, positions: tuple[int, ...]):
        super().__init__(message)
        self.positions = tuple(int(p) for p in positions)


class Graph:
    """A graph: a SciPy CSR adjacency, the original node ids, a directed flag and edge weights.

    Parameters
    ----------
    adjacency : scipy.sparse matrix or array, shape (n, n)
        Any sparse format. It is copied into a ``float64`` CSR matrix with sorted indices,
        repeated entries summed and explicit zeros removed. Row = source, column = target.
        Values must be finite and non-negative.
    node_ids : array-like of shape (n,), optional
        The original id of each node (integers or strings), all different.
        Default: ``0, 1, ..., n - 1``.
    directed : bool, default=False
        An undirected graph needs an exactly symmetric adjacency.
    weighted : bool, optional
        Whether the stored values are meaningful weights. Default: True when any stored value
        differs from 1.

    Attributes
    ----------
    adjacency : scipy.sparse.csr_matrix
    node_ids : numpy.ndarray
    directed : bool
    weighted : bool

    Raises
    ------
    TypeError
        If ``adjacency`` is not a SciPy sparse matrix.
    ValueError
        If it is not square, holds negative or non-finite values, is not symmetric while
        ``directed=False``, or if ``node_ids`` has the wrong length or repeats an id.

    See Also
    --------
    Graph.from_edges, Graph.from_scipy, Graph.from_networkx, Graph.from_pyg, as_graph

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> g = Graph(sp.csr_matrix([[0, 1], [1, 0]]), node_ids=["x", "y"])
    >>> g.n_nodes, g.n_edges, g.weighted
    (2, 1, False)
    """

    def __init__(self, adjacency: Any, node_ids: Any = None, directed: bool = False,
                 weighted: bool | None = None):
        reject_complex(adjacency, "adjacency")
        matrix = _canonical_csr(adjacency)
        _check_weight_values(matrix.data, "adjacency")
        if not directed and not _is_symmetric(matrix):
            raise ValueError(
                "adjacency must be symmetric for an undirected graph (directed=False); "
                "pass directed=True for a directed graph"
            )
        ids = _checked_node_ids(node_ids, matrix.shape[0])
        self._set_attributes(matrix, ids, directed, weighted)

    @classmethod
    def _from_canonical(cls, adjacency: sp.csr_matrix, node_ids: np.ndarray, directed: bool,
                        weighted: bool | None) -> "Graph":
        """A graph from parts that are already checked; skips the copies and the symmetry test."""
        graph = cls.__new__(cls)
        graph._set_attributes(adjacency, node_ids, directed, weighted)
        return graph

    def _set_attributes(self, adjacency, node_ids, directed, weighted) -> None:
        self.adjacency = adjacency
        self.node_ids = node_ids
        self.directed = bool(directed)
        self.weighted = _has_non_unit_values(adjacency) if weighted is None else bool(weighted)

    # -- size ---------------------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return self.adjacency.shape[0]

    @property
    def n_edges(self) -> int:
        """Number of edges; an undirected edge, self loops included, counts once."""
        stored = self.adjacency.nnz
        if self.directed:
            return stored
        n_self_loops = int(np.count_nonzero(self.adjacency.diagonal()))
        return (stored + n_self_loops) // 2

    def __repr__(self) -> str:
        return (
            f"Graph(n_nodes={self.n_nodes}, n_edges={self.n_edges}, "
            f"directed={self.directed}, weighted={self.weighted})"
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_id_lookup", None)  # a cache, rebuilt on demand
        return state

    # -- queries ------------------------------------------------------------------------------

    def degrees(self, weighted: bool = True, direction: str = "out") -> np.ndarray:
        """Degree of every node.

        Parameters
        ----------
        weighted : bool, default=True
            Sum the edge weights when the graph is weighted; otherwise count the edges.
        direction : {"out", "in"}, default="out"
            Row sums (edges leaving a node) or column sums (edges entering it). Both are the same
            for an undirected graph, where a self loop counts once.

        Returns
        -------
        numpy.ndarray of float64, shape (n_nodes,)

        Examples
        --------
        >>> g = Graph.from_edges([0, 0, 1], [1, 2, 2], directed=True)
        >>> g.degrees(direction="out"), g.degrees(direction="in")
        (array([2., 1., 0.]), array([0., 1., 2.]))
        """
        if direction not in DEGREE_DIRECTIONS:
            raise ValueError(f"direction must be one of {DEGREE_DIRECTIONS}; got {direction!r}")
        incoming = direction == "in" and self.directed
        if weighted and self.weighted:
            matrix = self.adjacency.T if incoming else self.adjacency
            return np.asarray(matrix @ np.ones(self.n_nodes), dtype=np.float64)
        if incoming:
            counts = np.bincount(self.adjacency.indices, minlength=self.n_nodes)
        else:
            counts = np.diff(self.adjacency.indptr)
        return counts.astype(np.float64)

    def index_of(self, ids: Any) -> np.ndarray:
        """Positions (rows of ``adjacency``) of nodes given by their original ids.

        Parameters
        ----------
        ids : id or array-like of ids

        Returns
        -------
        numpy.ndarray of int
            One position per id; a 0-d array for a single id.

        Raises
        ------
        ValueError
            If some ids are not nodes of the graph; the message names the first few.

        Examples
        --------
        >>> g = Graph.from_edges(["a", "b"], ["b", "c"])
        >>> g.index_of(["c", "a"])
        array([2, 0])
        >>> int(g.index_of("b"))
        1
        """
        single = np.ndim(ids) == 0 and not isinstance(ids, (list, tuple))
        query = _as_id_array([ids] if single else ids, "ids")
        positions = self._node_lookup().get_indexer(query)
        _raise_for_unknown_ids(query, positions, what="ids")
        return positions[0] if single else positions

    def _node_lookup(self) -> pd.Index:
        cached = self.__dict__.get("_id_lookup")
        if cached is None or cached[0] is not self.node_ids:
            cached = (self.node_ids, _id_index(self.node_ids))
            self._id_lookup = cached
        return cached[1]

    # -- conversions --------------------------------------------------------------------------

    def to_torch(self, device: Any = None, dtype: Any = None,
                 layout: torch.layout = torch.sparse_csr) -> torch.Tensor:
        """The adjacency as a torch sparse tensor.

        Parameters
        ----------
        device : str, torch.device or None, default=None
            None puts it on the CPU; ``"auto"`` picks CUDA when present
            (see :func:`tensorkit.backend.resolve_device`).
        dtype : dtype-like, optional
            Default ``float32``, the toolkit's default.
        layout : torch.sparse_csr or torch.sparse_coo, default=torch.sparse_csr

        Returns
        -------
        torch.Tensor

        Examples
        --------
        >>> g = Graph.from_edges([0], [1])
        >>> g.to_torch().to_dense()
        tensor([[0., 1.],
                [1., 0.]])
        """
        return as_sparse_tensor(self.adjacency, device=device, dtype=dtype, layout=layout)

    def to_scipy(self) -> sp.csr_matrix:
        """A copy of the adjacency as a SciPy CSR matrix.

        Examples
        --------
        >>> Graph.from_edges([0], [1], [2.5]).to_scipy().toarray()
        array([[0. , 2.5],
               [2.5, 0. ]])
        """
        return self.adjacency.copy()

    def to_networkx(self):
        """A :class:`networkx.Graph` (or ``DiGraph``) with the original node ids.

        Every edge carries a ``'weight'`` attribute (1.0 for an unweighted graph); isolated
        nodes are kept.

        Examples
        --------
        >>> nx_graph = Graph.from_edges(["a"], ["b"], [3.0]).to_networkx()
        >>> nx_graph["a"]["b"]["weight"]
        3.0
        """
        import networkx as nx

        nx_graph = nx.DiGraph() if self.directed else nx.Graph()
        nx_graph.add_nodes_from(self.node_ids.tolist())
        coo = self.adjacency.tocoo()
        rows, cols, values = coo.row, coo.col, coo.data
        if not self.directed:
            upper = rows <= cols
            rows, cols, values = rows[upper], cols[upper], values[upper]
        nx_graph.add_weighted_edges_from(
            zip(self.node_ids[rows].tolist(), self.node_ids[cols].tolist(), values.tolist())
        )
        return nx_graph

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_edges(cls, src: Any, dst: Any, weight: Any = None, *, directed: bool = False,
                   n_nodes: int | None = None, node_ids: Any = None, self_loops: str = "keep",
                   duplicates: str = "max") -> "Graph":
        """A graph from arrays of edge endpoints.

        Parameters
        ----------
        src, dst : array-like of shape (n_edges,)
            Original node ids (integers or strings) of each edge's source and target.
        weight : array-like of shape (n_edges,), optional
            Finite, non-negative edge weights. Edges of weight 0 are dropped (their end nodes
            stay in the graph). Default: every edge has weight 1.
        directed : bool, default=False
            For an undirected graph ``(u, v)`` and ``(v, u)`` are the same edge.
        n_nodes : int, optional
            With non-negative integer ids and no ``node_ids``, the ids are the positions
            ``0 .. n_nodes - 1`` (so nodes without edges are kept). Otherwise it must equal the
            number of nodes.
        node_ids : array-like, optional
            All node ids, in the order of the adjacency; ``src`` and ``dst`` are looked up in it.
            Default: the distinct ids of ``src`` and ``dst``, sorted.
        self_loops : {"keep", "drop"}, default="keep"
        duplicates : {"max", "sum", "error"}, default="max"
            How repeated edges combine: the largest weight (unweighted repeats collapse to one
            edge of weight 1), the sum of the weights (unweighted repeats count), or a
            ValueError naming the repeated edge.

        Returns
        -------
        Graph

        Raises
        ------
        ValueError
            For arrays of different lengths, unknown ids, ids not below ``n_nodes``, negative
            or non-finite weights, or repeated edges under ``duplicates="error"``.

        Examples
        --------
        >>> g = Graph.from_edges([0, 1, 1], [1, 0, 2], [1.0, 3.0, 2.0])
        >>> g.to_scipy().toarray()
        array([[0., 3., 0.],
               [3., 0., 2.],
               [0., 2., 0.]])
        >>> float(Graph.from_edges([0, 1, 1], [1, 0, 2], duplicates="sum").to_scipy()[0, 1])
        2.0
        """
        _check_choice(self_loops, "self_loops", SELF_LOOP_POLICIES)
        _check_choice(duplicates, "duplicates", DUPLICATE_POLICIES)
        sources, targets = _as_id_array(src, "src"), _as_id_array(dst, "dst")
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
        return cls._from_canonical(adjacency, ids, directed, weighted=None)

    @classmethod
    def from_scipy(cls, matrix: Any, *, directed: bool | None = None,
                   node_ids: Any = None) -> "Graph":
        """A graph from a SciPy sparse adjacency (row = source, column = target).

        Parameters
        ----------
        matrix : scipy.sparse matrix or array, shape (n, n)
        directed : bool, optional
            Default: undirected when the matrix is exactly symmetric, else directed.
        node_ids : array-like of shape (n,), optional

        Returns
        -------
        Graph

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> Graph.from_scipy(sp.csr_matrix([[0, 1], [0, 0]])).directed
        True
        """
        reject_complex(matrix, "matrix")
        adjacency = _canonical_csr(matrix)
        if directed is None:
            directed = not _is_symmetric(adjacency)
        return cls(adjacency, node_ids=node_ids, directed=directed)

    @classmethod
    def from_networkx(cls, nx_graph: Any, weight: str | None = "weight") -> "Graph":
        """A graph from a networkx graph, keeping its node ids and node order.

        Parameters
        ----------
        nx_graph : networkx.Graph, DiGraph, MultiGraph or MultiDiGraph
            Directed when ``nx_graph.is_directed()``. Parallel edges of a multigraph are summed.
        weight : str or None, default="weight"
            Edge attribute holding the weight (edges without it weigh 1); None: all weigh 1.

        Returns
        -------
        Graph

        Examples
        --------
        >>> import networkx as nx
        >>> Graph.from_networkx(nx.path_graph(4))
        Graph(n_nodes=4, n_edges=3, directed=False, weighted=False)
        """
        import networkx as nx

        nodes = list(nx_graph.nodes)
        ids = _as_id_array(nodes, "node ids")
        directed = nx_graph.is_directed()
        if not nodes:
            return cls(sp.csr_matrix((0, 0)), node_ids=ids, directed=directed)
        matrix = nx.to_scipy_sparse_array(
            nx_graph, nodelist=nodes, weight=weight, dtype=np.float64, format="csr"
        )
        return cls(matrix, node_ids=ids, directed=directed)

    @classmethod
    def from_pyg(cls, data_or_edge_index: Any, num_nodes: int | None = None,
                 edge_weight: Any = None, directed: bool | None = None) -> "Graph":
        """A graph from a PyTorch Geometric ``Data`` object or a ``2 x E`` edge index.

        Parameters
        ----------
        data_or_edge_index : torch_geometric.data.Data or tensor of shape (2, E)
            From a ``Data`` object: ``edge_index``, ``num_nodes`` and ``edge_weight`` (or a 1-D
            ``edge_attr``) are used.
        num_nodes : int, optional
            Default: ``data.num_nodes`` when the ``Data`` states it (stored, or the rows of its
            node features); else the largest node index plus one, unless the indices are
            sparse (the largest is at least four times the number of endpoints): then only the
            nodes that appear are kept, with their indices as ``node_ids``, so memory follows
            the edges rather than the largest index.
        edge_weight : tensor or array of shape (E,), optional
        directed : bool, optional
            Default: undirected when every edge is listed in both directions with the same
            weight (PyG's convention for undirected graphs). ``directed=False`` symmetrises
            as :meth:`from_edges` does, repeats combining by their maximum.

        Returns
        -------
        Graph
            Node ids are ``0 .. num_nodes - 1``, or the indices that appear for sparse indices.

        Examples
        --------
        >>> import torch
        >>> Graph.from_pyg(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
        Graph(n_nodes=3, n_edges=2, directed=False, weighted=False)
        """
        edge_index, num_nodes, edge_weight = _unpack_pyg(data_or_edge_index, num_nodes, edge_weight)
        as_directed = cls.from_edges(edge_index[0], edge_index[1], edge_weight, directed=True,
                                     n_nodes=num_nodes)
        if directed is None:
            directed = not _is_symmetric(as_directed.adjacency)
        elif not directed and not _is_symmetric(as_directed.adjacency):
            return cls.from_edges(edge_index[0], edge_index[1], edge_weight, directed=False,
                                  n_nodes=num_nodes)
        return cls._from_canonical(as_directed.adjacency, as_directed.node_ids, directed,
                                   weighted=None)


def as_graph(obj: Any, *, directed: bool | None = None, weighted: bool | None = None) -> Graph:
    """Turn any supported graph input into a :class:`Graph`.

    Parameters
    ----------
    obj
        - :class:`Graph`: returned as it is;
        - ``str`` or ``os.PathLike``: an edge-list file, read by
          :func:`graphkit.io.read_edgelist`;
        - a tuple or list ``(src, dst)`` or ``(src, dst, weight)`` of arrays: see
          :meth:`Graph.from_edges`;
        - a square NumPy array (or square floating torch tensor): a dense adjacency matrix;
        - any other NumPy array of shape ``(E, 2)`` or ``(E, 3)``: one edge per row
          (source, target[, weight]); pass a list of two or three edges as a tuple of
          columns, since a 2 x 2 or 3 x 3 array is read as an adjacency;
        - a SciPy sparse adjacency: see :meth:`Graph.from_scipy`;
        - a networkx graph: see :meth:`Graph.from_networkx`;
        - a PyTorch Geometric ``Data`` or a ``2 x E`` integer tensor: see :meth:`Graph.from_pyg`.
    directed : bool, optional
        For edge lists (files, tuples, arrays) None means undirected; for SciPy matrices and
        PyG input None infers it from symmetry. A networkx graph or a :class:`Graph` must
        already agree with a given value.
    weighted : bool, optional
        None keeps what the input says. False replaces every weight by 1; True marks the
        weights as meaningful.

    Returns
    -------
    Graph

    Raises
    ------
    TypeError
        For any other kind of input.
    ValueError
        If the graph has no nodes, or a networkx graph or :class:`Graph` disagrees with
        ``directed``.

    Examples
    --------
    >>> import numpy as np
    >>> as_graph(np.array([[0, 1], [1, 2], [2, 3]]))  # three edges
    Graph(n_nodes=4, n_edges=3, directed=False, weighted=False)
    >>> as_graph(np.array([[0, 1], [1, 0]]))  # square: an adjacency matrix
    Graph(n_nodes=2, n_edges=1, directed=False, weighted=False)
    >>> as_graph(([0, 1], [1, 2], [0.5, 2.0]), directed=True)
    Graph(n_nodes=3, n_edges=2, directed=True, weighted=True)
    """
    _reject_complex_input(obj)
    graph = _graph_from_any(obj, directed, weighted)
    if graph.n_nodes == 0:
        raise ValueError("graph has no nodes")
    if directed is not None and graph.directed != bool(directed):
        raise ValueError(
            f"directed={directed!r} was asked for, but the {type(obj).__name__} given is "
            f"{'directed' if graph.directed else 'undirected'}; convert it first"
        )
    return _with_weighted(graph, weighted)


# -- as_graph helpers ---------------------------------------------------------------------------

_ACCEPTED_INPUTS = (
    "a graphkit Graph, a path to an edge-list file, a tuple (src, dst[, weight]), a square "
    "NumPy adjacency, a NumPy array of shape (E, 2) or (E, 3), a SciPy sparse adjacency, a networkx graph, a PyTorch Geometric "
    "Data object or a 2 x E edge-index tensor"
)


def _reject_complex_input(obj: Any) -> None:
    """A TypeError for complex arrays (or a tuple of arrays) before anything casts them."""
    if isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
        for name, part in zip(("src", "dst", "weight"), obj):
            reject_complex(part, name)
    elif isinstance(obj, (np.ndarray, torch.Tensor)) or sp.issparse(obj):
        reject_complex(obj, "graph")


def _graph_from_any(obj: Any, directed: bool | None, weighted: bool | None) -> Graph:
    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from graphkit.io import read_edgelist  # graphkit.io imports this module

        return read_edgelist(obj, directed=bool(directed), weighted=weighted)
    if isinstance(obj, list) and len(obj) not in (2, 3):
        obj = np.asarray(obj)
    if isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
        return Graph.from_edges(*obj, directed=bool(directed))
    if not isinstance(obj, (np.ndarray, torch.Tensor, tuple, list, str, os.PathLike, Graph)) \
            and hasattr(obj, "__array__") and not sp.issparse(obj):
        obj = np.asarray(obj)
    if _is_dense_square(obj):
        return Graph.from_scipy(sp.csr_matrix(np.asarray(obj.cpu() if isinstance(obj, torch.Tensor) else obj,
                                                         dtype=np.float64)), directed=directed)
    if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.shape[1] in (2, 3):
        weights = obj[:, 2] if obj.shape[1] == 3 else None
        return Graph.from_edges(obj[:, 0], obj[:, 1], weights, directed=bool(directed))
    if sp.issparse(obj):
        return Graph.from_scipy(obj, directed=directed)
    if _is_networkx_graph(obj):
        return Graph.from_networkx(obj)
    if _is_pyg_data(obj) or (isinstance(obj, torch.Tensor) and obj.ndim == 2 and obj.shape[0] == 2):
        return Graph.from_pyg(obj, directed=directed)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        raise ValueError(f"cannot make a graph from an array of shape {tuple(obj.shape)}; expected {_ACCEPTED_INPUTS}")
    raise TypeError(f"cannot make a graph from {type(obj).__name__}; expected {_ACCEPTED_INPUTS}")


def _is_dense_square(obj: Any) -> bool:
    """A square NumPy array, or a square floating torch tensor, is read as a dense adjacency."""
    if isinstance(obj, np.ndarray):
        return obj.ndim == 2 and obj.shape[0] == obj.shape[1]
    return isinstance(obj, torch.Tensor) and obj.layout == torch.strided and obj.ndim == 2 \
        and obj.shape[0] == obj.shape[1] and obj.is_floating_point()


def _is_networkx_graph(obj: Any) -> bool:
    # An object can only be a networkx graph if networkx is already imported.
    nx = sys.modules.get("networkx")
    return nx is not None and isinstance(obj, nx.Graph)


def _is_pyg_data(obj: Any) -> bool:
    pyg_data = sys.modules.get("torch_geometric.data")
    return pyg_data is not None and isinstance(obj, pyg_data.Data)


def _with_weighted(graph: Graph, weighted: bool | None) -> Graph:
    """``graph`` itself when it already matches ``weighted``, else a re-flagged copy."""
    if weighted is None:
        return graph
    if weighted:
        if graph.weighted:
            return graph
        return Graph._from_canonical(graph.adjacency.copy(), graph.node_ids, graph.directed, True)
    if not graph.weighted and not _has_non_unit_values(graph.adjacency):
        return graph
    unit_weights = graph.adjacency.copy()
    unit_weights.data[:] = 1.0
    return Graph._from_canonical(unit_weights, graph.node_ids, graph.directed, False)


# -- validation and conversion of inputs --------------------------------------------------------

def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def _canonical_csr(matrix: Any) -> sp.csr_matrix:
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


def _check_weight_values(values: np.ndarray, name: str) -> None:
    if np.iscomplexobj(values):
        raise ValueError(f"{name} values must be real numbers; got complex data")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} values must be finite; found NaN or infinity")
    if values.size and values.min() < 0:
        raise ValueError(f"Negative values in data: {name} values must be non-negative; found {float(values.min())}")


def _is_symmetric(matrix: sp.csr_matrix) -> bool:
    """Exact symmetry of a canonical CSR matrix (sorted indices, no repeats)."""
    transposed = matrix.T.tocsr()
    transposed.sort_indices()
    return (
        np.array_equal(matrix.indptr, transposed.indptr)
        and np.array_equal(matrix.indices, transposed.indices)
        and np.array_equal(matrix.data, transposed.data)
    )


def _has_non_unit_values(matrix: sp.csr_matrix) -> bool:
    return bool(np.any(matrix.data != 1.0))


def _as_id_array(values: Any, name: str) -> np.ndarray:
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
        raise _EdgeInputError(
            f"weight must be finite and non-negative; edge {position} has weight "
            f"{float(weights[position])}",
            positions=(position,),
        )
    return weights


def _checked_node_ids(node_ids: Any, n_nodes: int) -> np.ndarray:
    if node_ids is None:
        return np.arange(n_nodes)
    ids = _as_id_array(node_ids, "node_ids")
    if len(ids) != n_nodes:
        raise ValueError(f"node_ids must have one id per node ({n_nodes}); got {len(ids)}")
    if ids.dtype == object and pd.isna(ids).any():
        raise ValueError("node_ids must not contain missing values (None or NaN)")
    lookup = _id_index(ids)
    if not lookup.is_unique:
        repeated = pd.unique(ids[lookup.duplicated()])[:_MAX_NAMED_IDS]
        raise ValueError(f"node_ids must be unique; repeated: {_format_ids(repeated)}")
    return ids


def _id_index(ids: np.ndarray) -> pd.Index:
    # tupleize_cols=False keeps tuple ids (e.g. grid coordinates) as single labels.
    return pd.Index(ids, tupleize_cols=False)


def _format_ids(ids: Any) -> str:
    return ", ".join(repr(i.item() if isinstance(i, np.generic) else i) for i in ids)


def _raise_for_unknown_ids(query: np.ndarray, positions: np.ndarray, what: str) -> None:
    unknown = positions < 0
    if unknown.any():
        names = pd.unique(query[unknown])
        raise ValueError(
            f"unknown node id(s) in {what}: {_format_ids(names[:_MAX_NAMED_IDS])}"
            f"{' ...' if len(names) > _MAX_NAMED_IDS else ''} "
            f"({int(unknown.sum())} of {len(query)} not in the graph)"
        )


def _unpack_pyg(obj: Any, num_nodes: int | None, edge_weight: Any):
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


# -- from_edges steps ---------------------------------------------------------------------------

def _endpoint_positions(sources: np.ndarray, targets: np.ndarray, n_nodes: int | None,
                        node_ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(node ids, source positions, target positions)`` following :meth:`Graph.from_edges`."""
    if n_nodes is not None and (not isinstance(n_nodes, (int, np.integer)) or n_nodes < 0):
        raise ValueError(f"n_nodes must be a non-negative integer; got {n_nodes!r}")
    if node_ids is not None:
        ids = _checked_node_ids(node_ids, len(node_ids) if n_nodes is None else n_nodes)
        lookup = _id_index(ids)
        rows, cols = lookup.get_indexer(sources), lookup.get_indexer(targets)
        _raise_for_unknown_ids(sources, rows, what="src")
        _raise_for_unknown_ids(targets, cols, what="dst")
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
    raise _EdgeInputError(
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
