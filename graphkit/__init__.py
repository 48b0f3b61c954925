"""graphkit: graph embeddings and clustering on one ``Graph`` type.

- :class:`Graph`, :func:`as_graph`, :func:`read_edgelist`: graphs in from edge lists, SciPy,
  networkx and PyTorch Geometric.
- :class:`FastRP`: node embeddings by very sparse random projection (Chen et al., CIKM 2019), in
  memory, out of core (``memory_budget``) or over the ranks of ``torch.distributed``
  (:class:`PartitionedGraph`); :func:`read_embedding` reads back what ``graphkit embed`` writes.
- :class:`PamC`: block-contrastive deep graph clustering with meta-node negatives
  (Kulatilleke et al., arXiv:2209.14067).
- :class:`ManifoldClustering` (alias :data:`MLC`): manifold linearizing and clustering, MCR² with a
  doubly stochastic membership (Ding et al., ICCV 2023, arXiv:2301.01805).
- :mod:`graphkit.datasets`: :func:`make_union_of_manifolds` (points on a union of subspaces or
  of curves) and :func:`make_attributed_sbm` (an attributed stochastic block model).
- :mod:`graphkit.metrics`: clustering accuracy (Hungarian), NMI, ARI, macro F1; node
  classification F1.
"""

from graphkit.embedding_files import read_embedding
from graphkit.datasets import AttributedGraph, ManifoldData, make_attributed_sbm, make_union_of_manifolds
from graphkit.fastrp import FastRP
from graphkit.graph import Graph
from graphkit.io import EdgeListError, EdgeListNotFoundError, as_graph, read_edgelist
from graphkit.mlc import MLC, ManifoldClustering
from graphkit.pamc import ClusterCollapseWarning, PamC
from graphkit.partitioned import PartitionedGraph
from tensorkit import __version__

__all__ = ["AttributedGraph", "ClusterCollapseWarning", "EdgeListError", "EdgeListNotFoundError", "FastRP", "Graph", "MLC", "ManifoldClustering",
           "ManifoldData", "PamC", "PartitionedGraph", "__version__", "as_graph", "make_attributed_sbm",
           "make_union_of_manifolds", "read_edgelist", "read_embedding"]
