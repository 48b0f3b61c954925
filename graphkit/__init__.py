"""graphkit: graph embeddings and clustering on one ``Graph`` type.

- :class:`Graph`, :func:`as_graph`, :func:`read_edgelist`: graphs in from edge lists, SciPy,
  networkx and PyTorch Geometric.
- :class:`FastRP`: node embeddings by very sparse random projection (Chen et al., CIKM 2019).
"""

from graphkit.fastrp import FastRP
from graphkit.graph import Graph, as_graph
from graphkit.io import EdgeListError, EdgeListNotFoundError, read_edgelist

__all__ = ["EdgeListError", "EdgeListNotFoundError", "FastRP", "Graph", "as_graph", "read_edgelist"]
