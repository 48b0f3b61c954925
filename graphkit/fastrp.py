"""FastRP node embeddings (Chen et al., CIKM 2019).

Chen, Sultan, Tian, Chen and Skiena, "Fast and Accurate Network Embeddings via Very Sparse Random
Projection", CIKM 2019 (arXiv:1908.11512).

The functional core is :func:`fastrp_embed` (in :mod:`graphkit._fastrp_core`, re-exported here);
:class:`FastRP` is the scikit-learn estimator on top.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from graphkit.graph import Graph
from graphkit.io import as_graph
from graphkit._fastrp_rows import (  # noqa: F401 (the projection draws are part of this module's API)
    degree_exponents,
    draw_projection_entries,
    log2_row_sums,
    segment_product,
    sparse_dense_product,
    sparse_projection,
)
from graphkit._fastrp_core import fastrp_embed, fastrp_iterates, standardize_, transition_tensor
from graphkit.ops import rows_scaled_by_powers_of_two
from tensorkit import backend
from tensorkit.base import StrOptions, TorchEstimator, integers, reals
from tensorkit.validation import check_finite_result, real_dtype, reject_complex

__all__ = ["FastRP", "draw_projection_entries", "fastrp_embed", "fastrp_iterates", "segment_product", "sparse_dense_product",
           "sparse_projection", "transition_tensor"]


def _project_features(features: sp.csr_matrix, n_columns: int, seed: int, sampler: str) -> np.ndarray:
    """Very sparse random projection of node features, each row scaled to unit L2 norm.

    The rows are divided by powers of two first (:func:`rows_scaled_by_powers_of_two`), which
    leaves the unit-norm result unchanged and keeps features near the largest float from
    overflowing in the projection.
    """
    rows, cols, values = draw_projection_entries(features.shape[1], n_columns, None, seed, sampler)
    projection = sp.csr_matrix((values.numpy(), (rows.numpy(), cols.numpy())), shape=(features.shape[1], n_columns))
    scaled, _ = rows_scaled_by_powers_of_two(features)
    block = np.asarray((scaled @ projection).todense(), dtype=np.float64)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.where(norms == 0, 1.0, norms)


def _device_memory(device: torch.device) -> Optional[int]:
    """Total memory of ``device`` in bytes (the physical memory for the CPU), or None where unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
            return None
    return None


class FastRP(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimator):
    """FastRP node embeddings by very sparse random projection.

    Each node gets a very sparse random vector (the rows of R, drawn as scikit-learn's
    :class:`~sklearn.random_projection.SparseRandomProjection` draws them), scaled by its degree
    to the power ``normalization_strength``; the vectors are averaged over neighbourhoods ``k``
    times with the transition matrix ``D^-1 A``; every iterate is L2-normalised per row; their
    weighted sum is standardised per column. Configured as the authors' code (``sampler="sklearn"``,
    ``random_state=42``, ``dtype="float64"``), it reproduces their embedding to floating-point
    tolerance.

    Parameters
    ----------
    n_components : int, default=128
        Embedding dimension.
    iteration_weights : sequence of float or "auto", default=(0.0, 1.0, 1.0)
        Weight of each product with the transition matrix: the first applies to ``M R``, the
        second to ``M^2 R`` and so on. Their number is the number of products ``k``. Any finite
        numbers, negative ones included. ``"auto"``: chosen among (0, 1, 1), (0, 1, 1, 1),
        (0, 0, 1, 1) and (0, 0, 1, 6.67) by link prediction (see the Notes).
    normalization_strength : float or "auto", default=0.0
        ``beta``: node ``j``'s random vector is multiplied by ``degree_j ** beta``; negative values
        damp high-degree nodes (the authors use -0.64 on BlogCatalog), positive values favour
        them (1 to 2 score best on the citation and co-authorship graphs Cora, Citeseer, PubMed
        and DBLP; the benchmark report ``fastrp_study``). ``"auto"``: chosen among -1, -0.5, 0,
        0.5, 1 and 2 by link prediction, without labels (see the Notes);
        :class:`graphkit.FastRPSearchCV` chooses it from labels. Nodes of degree 0 keep
        their vector as drawn. The factors are computed in float64 from the degrees' logarithms,
        so that tiny or huge weighted degrees do not overflow; see the Notes for when they are
        rescaled and when :meth:`fit` refuses them.
    density : float in (0, 1] or None, default=None
        Share of non-zero entries of R; None gives ``1 / sqrt(n_nodes)``.
    self_influence : float, default=0.0
        Weight of each node's own (normalised) random vector in the sum (an extension from
        Neo4j's FastRP; 0 reproduces the paper).
    normalize : bool, default=True
        L2-normalise each iterate per row before the weighted sum (the authors' setting).
    standardize : bool, default=True
        Scale each embedding column to zero mean and unit variance at the end (the authors'
        setting). A column constant up to rounding (standard deviation at most ``10 * eps`` of
        its largest absolute value) is only centred, as scikit-learn leaves near-constant
        features unscaled, so that float32 and float64 agree on it instead of amplifying
        rounding noise into ±1.
    spectral_propagation : bool, default=False
        Filter the embedding with ProNE's spectral propagation at the end
        (:func:`graphkit.spectral_propagation` with its defaults: a band-pass of the graph's
        spectrum, an SVD, unit rows; Zhang et al., IJCAI 2019), which is not part of FastRP: about
        20 more sparse products. In memory only, and :meth:`transform` then refuses new nodes.
    feature_share : float in [0, 1), default=0.5
        When node features are given to :meth:`fit`, the share of the ``n_components`` columns
        given to a sparse random projection of the features; their rows are L2-normalised so that
        the identity and feature blocks weigh the same. Ignored without features.
    sampler : {"torch", "sklearn"}, default="torch"
        How R is drawn. Both draw the same law; ``"sklearn"`` takes scikit-learn's
        ``SparseRandomProjection`` draw, so that with ``random_state=42`` and ``dtype="float64"`` the
        embedding equals the authors' code to floating-point tolerance, while ``"torch"`` draws it
        vectorised (about 50 times faster on BlogCatalog, where scikit-learn's per-column loop
        would take a third of the whole embedding time). The two give different numbers for the
        same seed. See :func:`draw_projection_entries`.
    random_state : int, RandomState instance or None, default=None
        R is drawn with the seed itself (scikit-learn's matrix for it with ``sampler="sklearn"``),
        the feature projection with a sub-seed spawned from it; the same seed gives the same embedding on every
        device, up to floating-point rounding. On the CPU, repeated fits are bitwise equal; on
        CUDA they are under ``torch.use_deterministic_algorithms(True)`` (see
        :func:`sparse_dense_product`), and otherwise equal up to rounding.
    device : str or torch.device, default="auto"
        Where the products run; see :func:`tensorkit.backend.resolve_device`.
    dtype : str or torch.dtype, default="float32"
        A real floating dtype (complex ones are refused).
    verbose : int, default=1
        Show a progress bar over the iterations.
    memory_budget : int, str or None, default=None
        Fit out of core within this much resident memory (bytes, or a size such as ``"4GB"`` or
        ``"512MiB"``): the adjacency goes to a CSR on disk (an edge-list path is read in blocks,
        never whole) and the products run over row blocks with the iterates in memory-mapped
        files, so the process's anonymous memory stays within the budget whatever the graph's
        size; ``embedding_`` is then a memory-mapped array. None: everything in memory. A budget
        too small for one block raises a ValueError naming the smallest that works. Not for
        node features or :meth:`transform`. See :func:`graphkit._fastrp_out_of_core.fastrp_out_of_core`.
    temp_dir : str, path-like or None, default=None
        Folder of the out-of-core fit's files (default: the system's temporary folder); its free
        space is checked before they are made, and they are removed when the fit ends.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_nodes, n_components)
    node_ids_ : ndarray of shape (n_nodes,)
        Original id of each row of ``embedding_``.
    graph_ : graphkit.Graph
        The fitted graph (needed by :meth:`transform`).
    mean_, scale_ : ndarray of shape (n_components,)
        The column standardisation that was applied (zeros and ones when ``standardize=False``;
        scale 1 for a column constant up to rounding).
    history_ : list of dict
        Per iteration: weight, mean row norm of the raw iterate and seconds taken.
    n_features_in_ : int
        Number of nodes of the fitted graph (the width :meth:`transform` expects).
    normalization_strength_ : float
    iteration_weights_ : tuple of float
        The values the fit used (chosen ones for ``"auto"``).
    auto_results_ : dict or None
        With an ``"auto"`` setting: ``params`` (each candidate), ``auc`` (its link-prediction
        score) and ``best_index``; otherwise None.

    Notes
    -----
    ``"auto"`` settings are chosen without labels, by link prediction
    (:func:`graphkit._fastrp_auto.choose_by_link_prediction`): 10% of the edges are held out,
    every candidate embeds the rest with the fit's random vectors, and the candidate whose cosine
    similarities best tell the held-out edges from as many random pairs of nodes (ROC AUC) is
    fitted on the whole graph. One propagation per candidate beta serves every candidate
    weighting: on BlogCatalog (10,312 nodes, one CPU thread) a fit with both ``"auto"`` takes about
    16 times a default fit (0.9 s against 0.06 s), with ``normalization_strength="auto"`` alone 9
    times, with ``iteration_weights="auto"`` alone 4 times. This step is not in the FastRP paper;
    its accuracy against the defaults is in the benchmark report ``fastrp_study``. With
    ``spectral_propagation=True`` the candidates are scored without the filter. In memory only.

    Isolated nodes (and, in a directed graph, nodes without out-edges) have no neighbours to
    average: all their iterates are zero, so their embedding is ``self_influence`` times their own
    random vector before standardisation, which with the default ``self_influence=0`` puts all of
    them at the same point. In a directed graph a node averages its out-neighbours, and its degree
    for ``normalization_strength`` is its (weighted) out-degree.

    Degrees far from 1 (tiny or huge edge weights) with ``normalization_strength`` far from 0
    give factors ``degree ** beta`` that float32 cannot hold (weights 1e-70 with ``beta=-0.64``
    give 1e45). The factors must lie within ``2 ** ±32`` in float32 (``2 ** ±256`` in float64) so
    that the vectors, their squares and sums stay finite and normal. Where they do not and the
    embedding does not depend on a common factor of all random vectors (with
    ``normalize=True`` and no node features, where every row is normalised, or with
    ``standardize=True`` and ``normalize=False``, where every column is standardised), all
    factors are divided by one power of two (exact), which gives the embedding float64 computes
    without it; ``history_``'s row norms (and ``mean_``, ``scale_`` without ``normalize``) are then
    those of the rescaled vectors. Factors spanning more than that range, or outside it where no
    rescaling is possible, raise :class:`~tensorkit.validation.NonFiniteResultError` naming
    ``normalization_strength``. Edge weights near the largest float (1e308) are handled by
    dividing each node's weights by a power of two before summing them (exact as well).

    References
    ----------
    Chen, Sultan, Tian, Chen and Skiena. "Fast and Accurate Network Embeddings via Very Sparse
    Random Projection." CIKM 2019. https://arxiv.org/abs/1908.11512

    Examples
    --------
    >>> import networkx as nx
    >>> from graphkit import FastRP
    >>> graph = nx.karate_club_graph()
    >>> model = FastRP(n_components=16, random_state=0).fit(graph)
    >>> model.embedding_.shape
    (34, 16)
    """

    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "n_components": [integers(1)],
        "iteration_weights": ["array-like", StrOptions({"auto"})],
        "normalization_strength": [reals(), StrOptions({"auto"})],
        "density": [reals(0, 1, closed="right"), None],
        "self_influence": [reals()],
        "normalize": ["boolean"],
        "standardize": ["boolean"],
        "spectral_propagation": ["boolean"],
        "feature_share": [reals(0, 1, closed="left")],
        "sampler": [StrOptions({"torch", "sklearn"})],
        "memory_budget": [None, str, integers(1)],
        "temp_dir": [None, str, os.PathLike],
    }

    def __init__(
        self,
        n_components: int = 128,
        *,
        iteration_weights: Sequence[float] | str = (0.0, 1.0, 1.0),
        normalization_strength: float | str = 0.0,
        density: Optional[float] = None,
        self_influence: float = 0.0,
        normalize: bool = True,
        standardize: bool = True,
        spectral_propagation: bool = False,
        feature_share: float = 0.5,
        sampler: str = "torch",
        random_state: Any = None,
        device: Any = "auto",
        dtype: Any = "float32",
        verbose: int = 1,
        memory_budget: Any = None,
        temp_dir: Any = None,
    ):
        self.n_components = n_components
        self.iteration_weights = iteration_weights
        self.normalization_strength = normalization_strength
        self.density = density
        self.self_influence = self_influence
        self.normalize = normalize
        self.standardize = standardize
        self.spectral_propagation = spectral_propagation
        self.feature_share = feature_share
        self.sampler = sampler
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.memory_budget = memory_budget
        self.temp_dir = temp_dir

    def _check_param_combinations(self) -> None:
        """``iteration_weights`` is "auto" or a non-empty sequence of finite reals; ``dtype`` is real floating."""
        real_dtype(self.dtype)
        if self.memory_budget is not None:
            from graphkit._disk_csr import parse_memory_budget

            parse_memory_budget(self.memory_budget)
        if isinstance(self.iteration_weights, str):
            return
        try:
            weights = np.asarray(self.iteration_weights)
        except (TypeError, ValueError):  # ragged or not array-like
            weights = None
        if weights is None or weights.ndim != 1 or weights.dtype.kind not in "iuf" or weights.size == 0 \
                or not np.all(np.isfinite(weights)):
            raise ValueError(
                f"iteration_weights must be 'auto' or a non-empty sequence of finite real numbers; "
                f"got {self.iteration_weights!r}"
            )

    def fit(self, X: Any, y: Any = None, node_features: Any = None, *, output: Any = None) -> "FastRP":
        """Embed the nodes of a graph.

        Parameters
        ----------
        X : graph-like or graphkit.PartitionedGraph
            A :class:`graphkit.Graph`, an edge-list path, ``(src, dst[, weight])`` arrays, an
            ``(n_edges, 2 or 3)`` array, a SciPy sparse adjacency, a networkx graph, or a PyTorch
            Geometric ``Data`` / ``edge_index``. With ``memory_budget``, an edge-list path (or a
            list of them) is read in blocks. A :class:`graphkit.PartitionedGraph` is embedded
            over its ranks: ``embedding_`` and ``node_ids_`` then hold this rank's rows only
            (rows of the whole graph's embedding, the same in any layout).
        y : ignored
        node_features : array-like or sparse of shape (n_nodes, n_features), optional
            Rows in the order of the graph's nodes; mixed in as ``feature_share`` of the columns.
            Only for a fit in memory.
        output : callable, optional
            With ``memory_budget``: ``output(node_ids, n_components)`` returns the writable
            ``(n_nodes, n_components)`` array (e.g. a memory-mapped ``.npy``) that the embedding
            is written into, in place; default: a temporary file.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a bad parameter (named), including a complex ``dtype``, and an ``n_components``
            whose dense ``n_nodes x n_components`` blocks do not fit in the device's memory; for
            ``node_features`` of the wrong shape or not finite.
        TypeError
            For complex ``node_features`` (before any cast could drop the imaginary part).
        tensorkit.validation.NonFiniteResultError
            A ``ValueError``: when ``degree ** normalization_strength`` cannot be held in
            ``dtype`` (see the Notes), or when the embedding would hold NaN or infinity (the
            message names the likely cause: ``iteration_weights`` or ``self_influence`` too large).
        """
        device, dtype, source = self._fit_setup()
        from graphkit.partitioned import PartitionedGraph

        if isinstance(X, PartitionedGraph):
            return self._fit_partitioned(X, node_features, device, dtype, source.seed)
        if self.memory_budget is not None:
            return self._fit_out_of_core(X, node_features, device, dtype, source.seed, output)
        graph = self._start_in_memory(X, node_features, device, dtype, source)
        with self._out_of_memory_names_n_components(graph.n_nodes, device):
            self._choose_automatic_settings(graph, device, dtype, source)
            transition = transition_tensor(graph.adjacency, device=device, dtype=dtype)
            embedding, self.history_ = fastrp_embed(
                transition, self._initial_vectors(device, dtype), self.iteration_weights_,
                self.self_influence, self.normalize, self.verbose,
            )
            del transition
            if self.standardize:
                mean, scale = standardize_(embedding)
            else:
                mean = torch.zeros(embedding.shape[1], dtype=dtype)
                scale = torch.ones(embedding.shape[1], dtype=dtype)
        check_finite_result(embedding, "FastRP embedding", hint=self._overflow_hint(dtype))
        check_finite_result(scale, "FastRP column scale", hint=self._overflow_hint(dtype))
        if self.spectral_propagation:
            from graphkit._spectral_propagation import propagate

            embedding = propagate(graph.adjacency, embedding, order=10, mu=0.2, theta=0.5)
        self.mean_, self.scale_ = backend.to_numpy(mean), backend.to_numpy(scale)
        self.embedding_ = backend.to_numpy(embedding)
        return self

    def fit_transform(self, X: Any, y: Any = None, node_features: Any = None) -> Any:
        """Fit and return ``embedding_`` (a torch tensor on X's device when X was a torch tensor)."""
        self.fit(X, y, node_features=node_features)
        return backend.to_output(self.embedding_, like=X)

    def _fit_partitioned(self, graph: Any, node_features: Any, device: torch.device, dtype: torch.dtype,
                         seed: int) -> "FastRP":
        """The fit on a :class:`graphkit.PartitionedGraph`: this rank's rows, with the others' by all-to-all."""
        from graphkit._fastrp_partitioned import fastrp_partitioned

        self._refuse_outside_memory(node_features, "a PartitionedGraph",
                                    also=("memory_budget",) if self.memory_budget is not None else ())
        self._start_without_features(graph.n_nodes, seed)
        rows, mean, scale, self.history_ = fastrp_partitioned(
            graph, verbose=self.verbose if graph.world.is_main else 0, device=device, **self._core_settings(dtype))
        self.graph_ = None
        self.node_ids_ = graph.node_ids[graph.owned]
        return self._keep_result(rows, mean, scale, dtype)

    def _fit_out_of_core(self, X: Any, node_features: Any, device: torch.device, dtype: torch.dtype, seed: int,
                         output: Any) -> "FastRP":
        """The fit within ``memory_budget``: CSR on disk, iterates memory-mapped (see :mod:`graphkit._disk_csr`)."""
        import shutil
        import tempfile

        from graphkit._disk_csr import (DiskGraph, budget_beside_process, disk_graph_from_edges, disk_graph_from_graph,
                                        edge_block_bytes, parse_memory_budget)
        from graphkit._edge_blocks import EdgeBlockReader
        from graphkit._fastrp_out_of_core import fastrp_out_of_core

        self._refuse_outside_memory(node_features, f"memory_budget={self.memory_budget!r}")
        folder = tempfile.mkdtemp(prefix="graphkit-fastrp-", dir=self.temp_dir)
        try:
            with budget_beside_process(parse_memory_budget(self.memory_budget)) as budget:
                if isinstance(X, DiskGraph):
                    graph = X
                elif _is_edge_file(X):
                    graph = disk_graph_from_edges(EdgeBlockReader(X, block_bytes=edge_block_bytes(budget)), folder,
                                                  directed=False, memory_budget=budget, verbose=self.verbose)
                else:
                    graph = disk_graph_from_graph(as_graph(X), folder)
                self._start_without_features(graph.n_nodes, seed)
                result = fastrp_out_of_core(
                    graph, memory_budget=budget, folder=folder, device=device, verbose=self.verbose,
                    hint=self._overflow_hint(dtype), **self._core_settings(dtype),
                    out=None if output is None else output(graph.node_ids, self.n_components))
            self.node_ids_ = graph.node_ids
        finally:
            # A memory-mapped result stays readable once its file is unlinked (POSIX).
            shutil.rmtree(folder, ignore_errors=True)
        self.graph_ = None
        self.history_ = result.history
        return self._keep_result(result.embedding, result.mean, result.scale, dtype)

    def _refuse_outside_memory(self, node_features: Any, where: str, also: tuple = ()) -> None:
        if node_features is not None:
            raise ValueError(f"node_features are supported only for a fit in memory, not with {where}")
        if self.spectral_propagation:
            raise ValueError(f"spectral_propagation=True is supported only for a fit in memory, not with {where}")
        automatic = [name for name in ("normalization_strength", "iteration_weights") if isinstance(getattr(self, name), str)]
        if automatic:
            raise ValueError(f"{automatic[0]}='auto' is supported only for a fit in memory, not with {where}: "
                             "choose it in memory (on the graph or a sample of it) and give the chosen value as a number")
        if also:
            raise ValueError(f"{also[0]} applies to a fit in one process, not to {where}, whose rows are spread "
                             "over the ranks already; leave it None")

    def _start_in_memory(self, X: Any, node_features: Any, device: torch.device, dtype: torch.dtype,
                         source: Any) -> Graph:
        """Check the inputs of a fit in memory and keep what :meth:`_initial_vectors` draws from."""
        graph = as_graph(X)
        features = self._check_features(node_features, graph.n_nodes)
        n_feature_cols = self._n_feature_columns(features)
        self._check_memory(graph.n_nodes, device, dtype)
        self.graph_ = graph
        self.node_ids_ = graph.node_ids
        self.n_features_in_ = graph.n_nodes
        self._seed = source.seed  # R is scikit-learn's draw for this seed with sampler="sklearn"
        self._n_identity_cols = self.n_components - n_feature_cols
        self._n_features_out = self.n_components
        self._feature_block = None
        if n_feature_cols:
            self._feature_block = _project_features(features, n_feature_cols, source.spawn_seed(), self.sampler)
        self._keep_settings()
        return graph

    def _keep_settings(self) -> None:
        """The fitted settings where they are numbers (``"auto"`` ones are chosen by the fit)."""
        self.auto_results_ = None
        if not isinstance(self.normalization_strength, str):
            self.normalization_strength_ = float(self.normalization_strength)
        if not isinstance(self.iteration_weights, str):
            self.iteration_weights_ = tuple(float(weight) for weight in self.iteration_weights)

    def _choose_automatic_settings(self, graph: Graph, device: torch.device, dtype: torch.dtype, source: Any) -> None:
        """Choose the ``"auto"`` settings by link prediction on held-out edges (see the Notes)."""
        from graphkit._fastrp_auto import (AUTO_BETAS, AUTO_ITERATION_WEIGHTS, choose_by_link_prediction,
                                           hold_out_edges)

        auto_beta, auto_weights = (isinstance(value, str) for value in (self.normalization_strength, self.iteration_weights))
        if not (auto_beta or auto_weights):
            return
        kept, pairs, is_edge = hold_out_edges(graph.adjacency, graph.directed, 0.1, source.spawn_seed())
        weighted = graph.weighted

        def initial_vectors(beta: float) -> torch.Tensor:
            return self._initial_vectors(device, dtype, adjacency=(kept, weighted), beta=beta)

        self.auto_results_ = choose_by_link_prediction(
            kept, pairs, is_edge, initial_vectors, AUTO_BETAS if auto_beta else (self.normalization_strength_,),
            AUTO_ITERATION_WEIGHTS if auto_weights else (self.iteration_weights_,), self_influence=self.self_influence,
            normalize=self.normalize, standardize=self.standardize, verbose=self.verbose)
        best = self.auto_results_["params"][self.auto_results_["best_index"]]
        self.normalization_strength_ = best["normalization_strength"]
        self.iteration_weights_ = best["iteration_weights"]

    def _start_without_features(self, n_nodes: int, seed: int) -> None:
        self.n_features_in_ = n_nodes
        self._seed = seed
        self._n_identity_cols = self._n_features_out = self.n_components
        self._feature_block = None
        self._keep_settings()

    def _core_settings(self, dtype: torch.dtype) -> dict:
        """The keyword arguments every functional core of FastRP takes, from the parameters."""
        return dict(n_components=self.n_components, iteration_weights=list(self.iteration_weights_),
                    self_influence=float(self.self_influence), normalize=self.normalize, standardize=self.standardize,
                    density=self.density, seed=self._seed, sampler=self.sampler,
                    normalization_strength=self.normalization_strength_,
                    rescale=self._independent_of_a_common_factor(), dtype=dtype)

    def _keep_result(self, embedding: Any, mean: Any, scale: Any, dtype: torch.dtype) -> "FastRP":
        if isinstance(embedding, torch.Tensor):  # the out-of-core core checks its blocks itself
            check_finite_result(embedding, "FastRP embedding", hint=self._overflow_hint(dtype))
        self.mean_, self.scale_ = (np.asarray(backend.to_numpy(value) if isinstance(value, torch.Tensor) else value)
                                   for value in (mean, scale))
        check_finite_result(self.scale_, "FastRP column scale", hint=self._overflow_hint(dtype))
        self.embedding_ = backend.to_numpy(embedding) if isinstance(embedding, torch.Tensor) else embedding
        return self

    def transform(self, X: Any) -> Any:
        """Embed new nodes from their edges to the fitted graph.

        A new node's iterates average its neighbours' iterates on the fitted graph, and the fitted
        column standardisation is applied; the fitted embedding is not changed by the new nodes.
        New nodes have no random vector of their own, so ``self_influence`` adds nothing for them.
        For a fitted node's own row of the adjacency this gives back its row of ``embedding_``
        exactly when ``self_influence=0``. Each call propagates over the fitted graph again (it
        keeps no iterates between calls, to stay within the memory of one fit), so it costs
        about one :meth:`fit`: embed many new nodes in one call.

        Parameters
        ----------
        X : array-like, sparse matrix or torch.Tensor of shape (n_new, n_fitted_nodes), or tuple
            Either the weights of the edges from each new node (rows) to the fitted nodes
            (columns, in the order of ``node_ids_``), or ``(new_ids, fitted_ids[, weights])``
            edge arrays, in which case the rows of the result follow ``numpy.unique(new_ids)``.

        Returns
        -------
        ndarray or torch.Tensor of shape (n_new, n_components)

        Raises
        ------
        TypeError
            For complex ``X`` (before any cast could drop the imaginary part).
        ValueError
            For ``X`` of the wrong shape, with negative, NaN or infinite weights or unknown
            fitted ids, or too many new nodes to fit in memory.
        tensorkit.validation.NonFiniteResultError
            A ``ValueError``: when the output would hold NaN or infinity (see :meth:`fit`).
            With ``spectral_propagation=True`` (the filter is of the whole graph).
        """
        check_is_fitted(self, "embedding_")
        if self.spectral_propagation:
            raise ValueError("transform cannot embed new nodes with spectral_propagation=True: the filter and its SVD "
                             "act on the whole graph at once; refit on the graph with the new nodes added")
        if self.graph_ is None:
            raise ValueError("transform needs the fitted graph in memory; this FastRP was fitted out of core "
                             "(memory_budget) or on a PartitionedGraph: fit it in memory to embed new nodes")
        links = self._links_matrix(X)
        device = backend.resolve_device(self.device)
        dtype = backend.resolve_dtype(self.dtype)
        n_fitted, n_new = self.graph_.n_nodes, links.shape[0]
        self._check_memory(n_fitted + n_new, device, dtype,
                           remedy="embed fewer new nodes per call or lower n_components")
        with self._out_of_memory_names_n_components(n_fitted + n_new, device):
            augmented = sp.bmat([[self.graph_.adjacency, None], [links, sp.csr_matrix((n_new, n_new))]], format="csr")
            initial = self._initial_vectors(device, dtype, extra_rows=n_new)
            transition = transition_tensor(augmented, device=device, dtype=dtype)
            embedding, _ = fastrp_embed(
                transition, initial, self.iteration_weights_, self.self_influence, self.normalize, verbose=0
            )
            new_rows = embedding[n_fitted:]
            if self.standardize:
                mean, scale = (torch.as_tensor(values, device=device) for values in (self.mean_, self.scale_))
                new_rows = (new_rows - mean) / scale
        check_finite_result(new_rows, "FastRP transform output", hint=self._overflow_hint(dtype))
        return backend.to_output(new_rows, like=X)

    def _check_memory(self, n_rows: int, device: torch.device, dtype: torch.dtype,
                      remedy: str = "lower n_components") -> None:
        """Refuse, before allocating, an ``n_components`` whose three dense ``n_rows x n_components``
        blocks (the most :func:`fastrp_embed` keeps) exceed the device's total memory."""
        needed = 3 * n_rows * int(self.n_components) * dtype.itemsize
        total = _device_memory(device)
        if total is not None and needed > total:
            raise ValueError(
                f"n_components={self.n_components} is too large for {n_rows} nodes: the embedding needs about "
                f"{needed / 2**30:.3g} GiB while computing (three dense {n_rows} x {self.n_components} blocks), "
                f"more than the {total / 2**30:.3g} GiB of memory of {device}; {remedy}"
            )

    @contextlib.contextmanager
    def _out_of_memory_names_n_components(self, n_rows: int, device: torch.device):
        """Turn an allocation failure into a ValueError naming ``n_components``."""
        try:
            yield
        except (MemoryError, torch.OutOfMemoryError) as error:
            raise ValueError(
                f"n_components={self.n_components}: the {n_rows} x {self.n_components} embedding does not fit in the "
                f"free memory of {device} ({error}); lower n_components"
            ) from error

    def _overflow_hint(self, dtype: torch.dtype) -> str:
        """The likely cause of a non-finite embedding, once the degree factors are known to fit."""
        largest = max(abs(float(weight)) for weight in (self.self_influence, *self.iteration_weights_))
        return (f"the weighted sum of the iterates overflowed {str(dtype).replace('torch.', '')}: lower "
                f"iteration_weights and self_influence (largest |weight| {largest:.3g})"
                + ("" if dtype == torch.float64 else ", or use dtype='float64'"))

    def _links_matrix(self, X: Any) -> sp.csr_matrix:
        reject_complex(X, "X")
        n_fitted = self.graph_.n_nodes
        if isinstance(X, tuple):
            if len(X) not in (2, 3):
                raise ValueError("transform takes (new_ids, fitted_ids) or (new_ids, fitted_ids, weights)")
            new_ids = np.asarray(X[0])
            new_nodes, rows = np.unique(new_ids, return_inverse=True)
            cols = self.graph_.index_of(np.asarray(X[1]))
            weights = np.ones(len(rows)) if len(X) == 2 else np.asarray(X[2], dtype=float)
            links = sp.csr_matrix((weights, (rows, cols)), shape=(len(new_nodes), n_fitted))
        elif sp.issparse(X):
            links = sp.csr_matrix(X, dtype=np.float64)
        else:
            dense = backend.to_numpy(X)
            if dense.ndim != 2:
                raise ValueError(f"X must be 2-D (n_new, {n_fitted}); got an array of shape {dense.shape}. "
                                 "Reshape your data with X.reshape(1, -1) for a single new node")
            links = sp.csr_matrix(dense.astype(np.float64, copy=False))
        if links.nnz and not np.all(np.isfinite(links.data)):
            raise ValueError("X must hold finite edge weights; found NaN or infinity")
        if links.ndim != 2 or links.shape[1] != n_fitted:
            raise ValueError(
                f"X has {links.shape[1]} features, but FastRP is expecting {n_fitted} features as input "
                f"(one column per fitted node)"
            )
        if links.nnz and links.data.min() < 0:
            raise ValueError("Negative values in data: X must hold non-negative edge weights")
        return links

    def _check_features(self, node_features: Any, n_nodes: int) -> Optional[sp.csr_matrix]:
        if node_features is None:
            return None
        reject_complex(node_features, "node_features")
        features = node_features if sp.issparse(node_features) else backend.to_numpy(node_features)
        if features.ndim != 2 or features.shape[0] != n_nodes:
            raise ValueError(
                f"node_features must have shape (n_nodes={n_nodes}, n_features); got {features.shape}"
            )
        features = sp.csr_matrix(features, dtype=np.float64)
        if not np.all(np.isfinite(features.data)):
            raise ValueError("node_features contains NaN or infinite values")
        return features

    def _n_feature_columns(self, features: Optional[sp.csr_matrix]) -> int:
        """How many of the ``n_components`` columns project the node features."""
        if features is None or self.feature_share == 0 or self.n_components < 2:
            return 0
        return int(min(self.n_components - 1, max(1, round(self.feature_share * self.n_components))))

    def _initial_vectors(self, device: torch.device, dtype: torch.dtype, extra_rows: int = 0,
                         adjacency: Optional[tuple] = None, beta: Optional[float] = None) -> torch.Tensor:
        """R scaled by degree ** beta (default ``normalization_strength_``; degrees from the fitted
        graph, or from ``adjacency=(matrix, weighted)``), beside the projected features, then
        ``extra_rows`` zero rows (for :meth:`transform`); filled in one preallocated buffer."""
        n_nodes, n_identity = self.graph_.n_nodes, self._n_identity_cols
        matrix, weighted = adjacency or (self.graph_.adjacency, self.graph_.weighted)
        beta = self.normalization_strength_ if beta is None else beta
        initial = torch.zeros((n_nodes + extra_rows, self.n_components), dtype=dtype, device=device)
        rows, cols, values = draw_projection_entries(n_nodes, n_identity, self.density, self._seed, self.sampler)
        if beta != 0:
            exponents = degree_exponents(log2_row_sums(matrix, weighted), float(beta), dtype,
                                         rescale=self._independent_of_a_common_factor())
            values = values * torch.from_numpy(np.exp2(exponents))[rows]
        initial[rows.to(device), cols.to(device)] = values.to(device=device, dtype=dtype)
        if self._feature_block is not None:
            initial[:n_nodes, n_identity:] = torch.as_tensor(self._feature_block, device=device, dtype=dtype)
        return initial

    def _independent_of_a_common_factor(self) -> bool:
        """Whether multiplying every random vector by one constant leaves the embedding unchanged:
        rows normalised over identity columns only, or columns standardised without row norms."""
        return (self.normalize and self._feature_block is None) or (self.standardize and not self.normalize)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.pairwise = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = []
        return tags


def _is_edge_file(X: Any) -> bool:
    """Whether ``X`` names edge-list files (a path, or a list or tuple of paths)."""
    if isinstance(X, (str, os.PathLike)):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(item, (str, os.PathLike)) for item in X)
