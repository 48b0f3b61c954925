"""graphkit: graph embeddings and clustering on one ``Graph`` type.

- :class:`Graph`, :func:`as_graph`, :func:`read_edgelist`: graphs in from edge lists, SciPy,
  networkx and PyTorch Geometric.
- :class:`FastRP`: node embeddings by very sparse random projection (Chen et al., CIKM 2019), in
  memory, out of core (``memory_budget``) or over the ranks of ``torch.distributed``
  (:class:`PartitionedGraph`); :class:`FastRPSearchCV` chooses its settings on labelled nodes, and
  :func:`spectral_propagation` (ProNE's band-pass filter, Zhang et al., IJCAI 2019) sharpens any embedding; :func:`read_embedding` reads back what ``graphkit embed`` writes.
- :class:`PamC`: block-contrastive deep graph clustering with meta-node negatives
  (Kulatilleke et al., arXiv:2209.14067); :class:`ModularitySearch` chooses a clustering's
  settings without labels, by the modularity of its partition.
- :class:`ManifoldClustering` (alias :data:`MLC`): manifold linearizing and clustering, MCR² with a
  doubly stochastic membership (Ding et al., ICCV 2023, arXiv:2301.01805).
- :mod:`graphkit.datasets`: :func:`make_union_of_manifolds` (points on a union of subspaces or
  of curves) and :func:`make_attributed_sbm` (an attributed stochastic block model).
- :mod:`graphkit.metrics`: clustering accuracy (Hungarian), NMI, ARI, macro F1; node
  classification F1.
"""

from tensorkit import __version__
from tensorkit.utils import lazy_exports

# Names are imported on first use (``graphkit embed`` starts without torch-heavy modules it does not need).
_EXPORTS = {
    "read_embedding": "graphkit.embedding_files",
    **dict.fromkeys(("AttributedGraph", "ManifoldData", "make_attributed_sbm", "make_union_of_manifolds"),
                    "graphkit.datasets"),
    "FastRP": "graphkit.fastrp",
    "FastRPSearchCV": "graphkit._fastrp_search",
    "Graph": "graphkit.graph",
    **dict.fromkeys(("EdgeListError", "EdgeListNotFoundError", "as_graph", "read_edgelist"), "graphkit.io"),
    **dict.fromkeys(("MLC", "ManifoldClustering"), "graphkit.mlc"),
    **dict.fromkeys(("ModularitySearch", "PAMC_PUBLISHED_SETTINGS"), "graphkit._modularity_search"),
    **dict.fromkeys(("ClusterCollapseWarning", "PamC"), "graphkit.pamc"),
    "PartitionedGraph": "graphkit.partitioned",
    "spectral_propagation": "graphkit._spectral_propagation",
}
_SUBMODULES = ("cli", "datasets", "embedding_files", "fastrp", "graph", "io", "metrics", "mlc", "ops", "pamc",
               "partitioned")

__all__ = ["AttributedGraph", "ClusterCollapseWarning", "EdgeListError", "EdgeListNotFoundError", "FastRP", "FastRPSearchCV", "Graph", "MLC", "ManifoldClustering",
           "ManifoldData", "ModularitySearch", "PAMC_PUBLISHED_SETTINGS", "PamC", "PartitionedGraph", "__version__", "as_graph", "make_attributed_sbm",
           "make_union_of_manifolds", "read_edgelist", "read_embedding", "spectral_propagation"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
