"""The one graph type of :mod:`graphkit`: a SciPy CSR adjacency with the original node ids.

Every graph method in the toolkit takes a :class:`Graph` (or anything :func:`graphkit.as_graph`
turns into one). A graph is four plain attributes:

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

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from graphkit._edges import (
    adjacency_from_edges,
    as_id_array,
    canonical_csr,
    check_weight_values,
    checked_node_ids,
    has_non_unit_values,
    id_index,
    is_symmetric,
    raise_for_unknown_ids,
    unpack_pyg,
)
from tensorkit.backend import as_sparse_tensor
from tensorkit.validation import reject_complex

__all__ = ["Graph"]

DEGREE_DIRECTIONS = ("out", "in")


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
    Graph.from_edges, Graph.from_scipy, Graph.from_networkx, Graph.from_pyg, graphkit.io.as_graph

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
        matrix = canonical_csr(adjacency)
        check_weight_values(matrix.data, "adjacency")
        if not directed and not is_symmetric(matrix):
            raise ValueError(
                "adjacency must be symmetric for an undirected graph (directed=False); "
                "pass directed=True for a directed graph"
            )
        ids = checked_node_ids(node_ids, matrix.shape[0])
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
        self.weighted = has_non_unit_values(adjacency) if weighted is None else bool(weighted)

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
        query = as_id_array([ids] if single else ids, "ids")
        positions = self._node_lookup().get_indexer(query)
        raise_for_unknown_ids(query, positions, what="ids")
        return positions[0] if single else positions

    def _node_lookup(self) -> pd.Index:
        cached = self.__dict__.get("_id_lookup")
        if cached is None or cached[0] is not self.node_ids:
            cached = (self.node_ids, id_index(self.node_ids))
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
        adjacency, ids = adjacency_from_edges(src, dst, weight, directed=directed, n_nodes=n_nodes,
                                              node_ids=node_ids, self_loops=self_loops,
                                              duplicates=duplicates)
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
        adjacency = canonical_csr(matrix)
        if directed is None:
            directed = not is_symmetric(adjacency)
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
        ids = as_id_array(nodes, "node ids")
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
        edge_index, num_nodes, edge_weight = unpack_pyg(data_or_edge_index, num_nodes, edge_weight)
        as_directed = cls.from_edges(edge_index[0], edge_index[1], edge_weight, directed=True,
                                     n_nodes=num_nodes)
        if directed is None:
            directed = not is_symmetric(as_directed.adjacency)
        elif not directed and not is_symmetric(as_directed.adjacency):
            return cls.from_edges(edge_index[0], edge_index[1], edge_weight, directed=False,
                                  n_nodes=num_nodes)
        return cls._from_canonical(as_directed.adjacency, as_directed.node_ids, directed,
                                   weighted=None)
