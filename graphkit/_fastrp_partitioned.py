"""FastRP over a :class:`~graphkit.partitioned.PartitionedGraph`: each rank computes its own rows.

The in-memory fit (:func:`graphkit.fastrp.fastrp_embed` and ``standardize_``) works on whole
rows except for the products with the transition matrix and a few column statistics. Here each
rank holds the transition rows of its nodes and its rows of every iterate; each product fetches the
rows of its remote neighbours, a block of columns at a time (an all-to-all of those rows only,
:meth:`~graphkit.partitioned.PartitionedGraph.exchange_in_receive_order`), and the column
statistics (degree-factor extremes, column sums, largest entry, centred squares, mean row norms)
are all-reduced. Every rank's rows equal those rows of the in-memory fit up to float rounding.

A rank that fails in its local work (an allocation, a non-finite factor) tells the others through
the status all-reduced after every step, and every rank raises
(:func:`tensorkit.distributed.share_failure`); nothing waits on a failed rank longer than the
group's timeout.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist

from graphkit._fastrp_rows import (
    add_normalized_,
    degree_exponents,
    exponent_extremes,
    initial_rows,
    log2_row_sums,
    sparse_dense_product,
    standard_scale,
)
from graphkit.ops import normalized_adjacency
from graphkit.partitioned import PartitionedGraph
from tensorkit import backend, distributed
from tensorkit.utils import progress

__all__ = ["fastrp_partitioned"]


def fastrp_partitioned(
    graph: PartitionedGraph,
    *,
    n_components: int,
    iteration_weights: Sequence[float],
    self_influence: float = 0.0,
    normalize: bool = True,
    standardize: bool = True,
    density: Optional[float] = None,
    seed: int,
    sampler: str = "torch",
    normalization_strength: float = 0.0,
    rescale: bool = True,
    dtype: torch.dtype = torch.float32,
    device: Any = None,
    verbose: int = 0,
    block_columns: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    """This rank's rows of the FastRP embedding of a partitioned graph.

    Computes what :class:`graphkit.FastRP` (without node features) computes for the whole graph,
    restricted to the nodes this rank owns: the rows of ``R`` (:func:`initial_rows`, scaled by
    ``degree ** normalization_strength`` with the global extremes), ``k`` products with the
    random-walk transition matrix (each after an exchange of the remote neighbours' rows), the
    weighted sum ``self_influence * N(R) + sum_i w_i N(M^i R)`` and the column standardisation
    with global statistics. Every rank must call it at the same point.

    Parameters
    ----------
    graph : PartitionedGraph
    n_components : int
        Embedding dimension ``d``.
    iteration_weights : sequence of float
        One weight per product with the transition matrix (the first applies to ``M R``).
    self_influence : float, default=0.0
        Weight of ``N(R)`` itself.
    normalize : bool, default=True
        L2-normalise each iterate per row before the weighted sum.
    standardize : bool, default=True
        Scale each column to zero mean and unit variance over all nodes at the end.
    density : float, optional
        Share of non-zeros of ``R``; default ``1 / sqrt(n_nodes)``.
    seed : int
        The seed ``R`` is drawn with (``FastRP``'s ``_seed`` after a fit with the same
        ``random_state``).
    sampler : {"torch", "sklearn"}, default="torch"
    normalization_strength : float, default=0.0
        ``beta`` of the degree factors.
    rescale : bool, default=True
        Whether the degree factors may be divided by a common power of two (see
        :func:`graphkit._fastrp_rows.degree_exponents`).
    dtype : torch.dtype, default=torch.float32
    device : str or torch.device, optional
        Where the work runs; default the CPU (under NCCL it must be this rank's GPU).
    verbose : int, default=0
        A progress bar over the products (give it on rank 0 only).
    block_columns : int, optional
        The halo rows are fetched and multiplied this many columns at a time (default 32 on the
        CPU, 256 on a GPU), so that a rank holds its remote neighbours' rows only for one block of
        columns: with a hash partition of a graph of average degree 20, nearly every remote node is
        a neighbour, and whole-width halo rows would cost as much memory as the rank's own rows.

    Returns
    -------
    rows : torch.Tensor of shape (len(graph.owned), n_components)
        This rank's rows, in the order of ``graph.owned``.
    mean, scale : torch.Tensor of shape (n_components,)
        The column standardisation applied (zeros and ones when ``standardize=False``), the same
        on every rank.
    history : list of dict
        Per product: ``iteration``, ``weight``, ``mean_row_norm`` of the raw iterate over all
        nodes, ``seconds`` and ``bytes_exchanged`` (sent by all ranks together in that step's
        exchange); the same on every rank.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from graphkit import Graph
    >>> from graphkit.partitioned import PartitionedGraph
    >>> graph = PartitionedGraph.from_graph(Graph.from_edges(np.arange(9), np.arange(1, 10)))
    >>> rows, mean, scale, history = fastrp_partitioned(graph, n_components=4, iteration_weights=[1.0, 1.0], seed=0)
    >>> rows.shape, len(history)
    (torch.Size([10, 4]), 2)
    """
    world = graph.world
    device = backend.resolve_device("cpu" if device is None else device)
    weights = [float(self_influence)] + [float(w) for w in iteration_weights]
    state = _Reducer(world, device)
    with distributed.stage(world, "building the FastRP transition rows"):
        transition = _local_transition(graph, dtype, device)
        log2_degrees = log2_row_sums(graph.local, graph.weighted)
    exponents = None
    if normalization_strength != 0:
        low, high = exponent_extremes(log2_degrees, float(normalization_strength))
        low, high = state.extremes(low, high, empty=len(graph.owned) == 0)
        with distributed.stage(world, "drawing the FastRP random vectors"):
            exponents = degree_exponents(log2_degrees, float(normalization_strength), dtype, rescale, (low, high))
    n_owned = len(graph.owned)
    with distributed.stage(world, "drawing the FastRP random vectors"):
        current = initial_rows(graph.owned, graph.n_nodes, n_components, density, seed, sampler, exponents, dtype,
                               device)
        spare = torch.empty_like(current)
        total = None
        if weights[0] != 0.0:
            total = add_normalized_(None, current.clone(), weights[0], normalize)
    if block_columns is None:
        block_columns = 32 if device.type == "cpu" else 256
    blocks = [(start, min(start + block_columns, n_components)) for start in range(0, n_components, block_columns)]
    work: dict = {}
    history = []
    itemsize = torch.empty(0, dtype=dtype).element_size()
    for step in progress(range(1, len(weights)), verbose, desc="FastRP, propagation steps"):
        started = time.perf_counter()
        norm_sum = 0.0
        error = _product_by_blocks(graph, transition, current, spare, blocks, work)
        current, spare = spare, current
        try:
            if error is None:
                norm_sum = float(torch.linalg.vector_norm(current, dim=1).double().sum()) if n_owned else 0.0
                if weights[step] != 0.0:
                    total = add_normalized_(total, current if total is not None else current.clone(), weights[step],
                                            normalize)
        except Exception as failure:   # told to every rank below, so that none waits on this one
            error = failure
        norm_sum, sent = state.step_status(error, norm_sum, graph.bytes_per_step(n_components, itemsize) / 2,
                                           f"propagating FastRP (product {step})")
        history.append({"iteration": step, "weight": weights[step],
                        "mean_row_norm": norm_sum / max(graph.n_nodes, 1),
                        "seconds": time.perf_counter() - started, "bytes_exchanged": int(sent)})
    del current, spare, work
    if total is None:
        total = torch.zeros((n_owned, n_components), dtype=dtype, device=device)
    if not standardize:
        return (total, torch.zeros(n_components, dtype=dtype, device=device),
                torch.ones(n_components, dtype=dtype, device=device), history)
    mean, scale = _standardize_partitioned_(total, graph.n_nodes, state)
    return total, mean, scale, history


def _product_by_blocks(graph: PartitionedGraph, transition: torch.Tensor, current: torch.Tensor, out: torch.Tensor,
                       blocks: list, work: dict) -> Optional[BaseException]:
    """``out = transition @ [current; halo rows]``, a block of columns at a time; the first failure, if any.

    Every block's exchange runs on every rank even after a local failure, so that no rank waits
    on another's collective; the failure is reported after the step.
    """
    n_owned, error = len(current), None
    for start, stop in blocks:
        if stop - start not in work:
            work[stop - start] = (current.new_empty((n_owned + len(graph.halo), stop - start)),
                                  current.new_empty((n_owned, stop - start)))
        stacked, product = work[stop - start]   # own and halo rows side by side, in the transition's order
        if error is None:
            try:
                stacked[:n_owned].copy_(current[:, start:stop])
            except Exception as failure:
                error = failure
        graph.exchange_in_receive_order(current[:, start:stop], out=stacked[n_owned:])
        if error is None:
            try:
                out[:, start:stop].copy_(sparse_dense_product(transition, stacked, out=product))
            except Exception as failure:
                error = failure
    return error


def _local_transition(graph: PartitionedGraph, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """This rank's rows of ``D^-1 A`` as a torch CSR tensor over the columns ``[owned..., halo...]``.

    The halo columns follow the order in which the exchange receives their rows (grouped by
    owner), so the received rows land in place. Within a row the entries keep the global column
    order, so each row is summed in the same order as in the in-memory product.
    """
    transition = normalized_adjacency(graph.local, "random_walk")
    position = np.full(graph.n_nodes, -1, dtype=np.int64)
    position[graph.owned] = np.arange(len(graph.owned))
    position[graph.halo[graph.receive_order]] = len(graph.owned) + np.arange(len(graph.halo))
    columns = position[transition.indices]
    width = len(graph.owned) + len(graph.halo)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        tensor = torch.sparse_csr_tensor(
            torch.from_numpy(transition.indptr.astype(np.int64)), torch.from_numpy(columns),
            torch.from_numpy(transition.data).to(dtype), size=(transition.shape[0], width), check_invariants=False)
    return tensor.to(device)


class _Reducer:
    """The all-reduces of the partitioned fit, on the group's device, with failures told to every rank."""

    def __init__(self, world: distributed.World, device: torch.device):
        self.world = world
        nccl = world.active and dist.get_backend(world.group) == "nccl"
        self.device = device if nccl else backend.resolve_device("cpu")

    def reduce(self, values: torch.Tensor, op: Any = None) -> torch.Tensor:
        """``values`` reduced over the ranks (sum by default), moved to the group's device and back."""
        if not self.world.active:
            return values
        moved = values.to(self.device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM if op is None else op, group=self.world.group)
        return moved.to(values.device)

    def extremes(self, low: float, high: float, empty: bool) -> tuple[float, float]:
        """The smallest and largest degree exponent over all ranks (a rank without nodes adds nothing)."""
        pair = torch.tensor([np.inf if empty else -low, -np.inf if empty else high], dtype=torch.float64)
        pair = self.reduce(pair, dist.ReduceOp.MAX)
        low, high = -float(pair[0]), float(pair[1])
        return (0.0 if not np.isfinite(low) else low), (0.0 if not np.isfinite(high) else high)

    def step_status(self, error: Optional[BaseException], norm_sum: float, sent: float, what: str) -> tuple:
        """Sum the step's numbers over the ranks; every rank raises if any rank failed in the step."""
        summed = self.reduce(torch.tensor([norm_sum, sent, float(error is not None)], dtype=torch.float64)).tolist()
        if summed[2] > 0:
            if not self.world.active:
                raise error
            distributed.share_failure(self.world, error, what)
        return summed[0], summed[1]


def _standardize_partitioned_(rows: torch.Tensor, n_nodes: int, state: _Reducer) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale the columns of every rank's rows in place, as ``standardize_`` does for the whole.

    Column sums (float64), the largest absolute entry before centring and the float64 centred
    squares are all-reduced, so every rank applies the same ``mean`` and ``scale``.
    """
    width = rows.shape[1]
    magnitude = rows.abs().amax() if rows.numel() else rows.new_zeros(())
    magnitude = state.reduce(magnitude.double().reshape(1), dist.ReduceOp.MAX)[0]
    sums = state.reduce(rows.double().sum(dim=0) if len(rows) else rows.new_zeros(width, dtype=torch.float64))
    mean = (sums / max(n_nodes, 1)).to(rows.dtype)
    rows.sub_(mean)
    squares = torch.zeros(width, dtype=torch.float64, device=rows.device)
    for block in rows.split(8192):
        squares.add_(block.double().square().sum(dim=0))
    squares = state.reduce(squares)
    scale = standard_scale(squares, n_nodes, magnitude.to(rows.dtype), rows.dtype)
    rows.div_(scale)
    return mean, scale
