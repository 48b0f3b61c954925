"""A graph whose rows (nodes) are split over the ranks of a ``torch.distributed`` process group.

:class:`PartitionedGraph` holds, on each rank, the adjacency rows of the nodes that rank owns
(all columns, in the global numbering of the sorted node ids) and a halo plan: which rows of the
other ranks its rows reach, and which of its own rows the others need. With it, a product of
the adjacency with a row-distributed matrix needs one all-to-all per step that moves only the
needed rows (:meth:`PartitionedGraph.exchange`), never the whole matrix.

Build it from edge-list files, each rank reading its own blocks of lines
(:meth:`PartitionedGraph.from_edgelist`), or from a graph every rank holds in memory
(:meth:`PartitionedGraph.from_graph`). Without a process group (or with one process) it is a
world of one that owns every node. The partitioned FastRP is
:func:`graphkit._fastrp_partitioned.fastrp_partitioned`.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.distributed as dist

from graphkit._edge_blocks import (
    DEFAULT_BLOCK_BYTES,
    EdgeBlockReader,
    directed_triples,
    max_merged_csr,
    merge_ids,
    positions_of,
)
from graphkit.io import as_graph
from tensorkit import backend, distributed
from tensorkit.utils import progress

__all__ = ["PARTITIONS", "PartitionedGraph"]

PARTITIONS = ("hash", "range")


class PartitionedGraph:
    """The adjacency rows of this rank's nodes, and the plan to fetch the rows of remote neighbours.

    Every rank holds the sorted ids of all nodes and the owner of every node; a rank holds only
    the adjacency rows of the nodes it owns (``local``, with global column numbers). Build it with
    :meth:`from_edgelist` or :meth:`from_graph`, on every rank at the same point; the constructor
    itself is for those two (it exchanges the halo plan with the other ranks).

    Parameters
    ----------
    world : tensorkit.distributed.World
        The ranks the graph is split over.
    node_ids : ndarray of shape (n_nodes,)
        Sorted ids of all nodes, the same on every rank.
    owner : ndarray of int64, shape (n_nodes,)
        The rank that owns each node, the same on every rank.
    local : scipy.sparse.csr_matrix of shape (n_owned, n_nodes)
        Float64 rows of the owned nodes (in increasing global number), sorted column indices, no
        repeats and no stored zeros.
    directed, weighted : bool
        As :class:`graphkit.Graph` has them.
    partition : {"hash", "range"}
        How ``owner`` was chosen (for the record).

    Attributes
    ----------
    world, node_ids, owner, local, directed, weighted, partition
        As given.
    n_nodes : int
    n_edges : int
        Edges over all ranks, counted as :attr:`graphkit.Graph.n_edges` counts them.
    owned : ndarray of int64
        Sorted global numbers of this rank's nodes (the rows of ``local``).
    halo : ndarray of int64
        Sorted global numbers of the remote nodes that ``local`` has columns for.
    edge_cut : float
        Share of the stored entries, over all ranks, whose column is owned by another rank.

    Examples
    --------
    Without a process group, the world is one process that owns every node:

    >>> import numpy as np, torch
    >>> from graphkit import Graph
    >>> graph = Graph.from_edges(np.array([0, 1, 2]), np.array([1, 2, 3]))
    >>> parts = PartitionedGraph.from_graph(graph)
    >>> parts.n_nodes, parts.n_edges, parts.owned.tolist(), parts.halo.tolist()
    (4, 3, [0, 1, 2, 3], [])
    >>> parts.exchange(torch.ones(4, 2)).shape
    torch.Size([0, 2])
    """

    def __init__(self, world: distributed.World, node_ids: np.ndarray, owner: np.ndarray, local: sp.csr_matrix, *,
                 directed: bool, weighted: bool, partition: str):
        self.world = world
        self.node_ids = node_ids
        self.owner = np.asarray(owner, dtype=np.int64)
        self.local = local
        self.directed, self.weighted, self.partition = bool(directed), bool(weighted), partition
        self.owned = np.flatnonzero(self.owner == world.rank).astype(np.int64)
        if local.shape != (len(self.owned), len(node_ids)):
            raise ValueError(f"local must have shape (owned rows, n_nodes) = {(len(self.owned), len(node_ids))}; "
                             f"got {local.shape}")
        self._device = _collective_device(world)
        self._count_edges()
        self._plan_halo()

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_edgelist(cls, paths: Any, *, directed: bool = False, weighted: Optional[bool] = None,
                      delimiter: Optional[str] = None, header: Any = "infer", weight_column: Any = None,
                      self_loops: str = "keep", partition: str = "hash", block_bytes: int = DEFAULT_BLOCK_BYTES,
                      world: Optional[distributed.World] = None, verbose: int = 0) -> "PartitionedGraph":
        """Read edge-list files, each rank parsing its own blocks of lines, into a partitioned graph.

        The graph is :func:`graphkit.read_edgelist`'s (default ``self_loops="keep"``,
        ``duplicates="max"``; weight-0 edges dropped but their nodes kept), split by rows.

        Parameters
        ----------
        paths : path or sequence of paths
            Regular files (plain, gzip, bz2 or xz), read as one edge list.
        directed : bool, default=False
        weighted, delimiter, header, weight_column, self_loops
            As for :func:`graphkit.read_edgelist`.
        partition : {"hash", "range"}, default="hash"
            Which rank owns a node: a stable hash of its id modulo the number of ranks, or
            contiguous ranges of about ``n_nodes / size`` nodes of the sorted ids.
        block_bytes : int, default=64 MiB
            Size of a block of text; block ``i`` is parsed by rank ``i % size``.
        world : tensorkit.distributed.World, optional
            Default :func:`tensorkit.distributed.current_world`.
        verbose : int, default=0
            Rank 0 shows a progress bar over the blocks it reads.

        Returns
        -------
        PartitionedGraph

        Raises
        ------
        graphkit.EdgeListError
            On the rank that read a bad line (naming the file and the line); the other ranks
            raise :class:`tensorkit.distributed.RankFailedError`.

        Examples
        --------
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "edges.txt")
        >>> with open(path, "w") as handle:
        ...     _ = handle.write("a b\\nb c\\n")
        >>> parts = PartitionedGraph.from_edgelist(path)
        >>> parts.node_ids.tolist(), parts.n_edges
        (['a', 'b', 'c'], 2)
        """
        _check_partition(partition)
        world = distributed.current_world() if world is None else world
        with distributed.stage(world, "reading the edge list"):
            reader = EdgeBlockReader(paths, weighted=weighted, delimiter=delimiter, header=header,
                                     weight_column=weight_column, self_loops=self_loops, block_bytes=block_bytes)
            parts = [raw for _, raw in progress(reader.edges(world.rank, world.size), verbose if world.is_main else 0,
                                                desc=f"Reading edges (rank 0 of {world.size})", unit=" blocks")]
            local_ids = merge_ids([p.src for p in parts] + [p.dst for p in parts])
        node_ids = merge_ids(distributed.all_gather_objects(world, local_ids))
        distributed.check_identical(world, (_ids_digest(node_ids), reader.weighted),
                                    "the node ids and whether the edges are weighted")
        with distributed.stage(world, "numbering the edges"):
            rows, cols, values = _numbered_entries(parts, node_ids, directed, reader.weighted, reader.drop_self_loops)
            del parts
            owner = _owners(node_ids, world.size, partition)
        local = _rows_to_owners(world, owner, rows, cols, values)
        return cls(world, node_ids, owner, local, directed=directed, weighted=reader.weighted, partition=partition)

    @classmethod
    def from_graph(cls, graph: Any, partition: str = "hash",
                   world: Optional[distributed.World] = None) -> "PartitionedGraph":
        """Keep this rank's rows of a graph that every rank holds whole.

        Parameters
        ----------
        graph : graph-like
            Anything :func:`graphkit.as_graph` takes; the same graph on every rank (checked by
            the digest of its node ids).
        partition : {"hash", "range"}, default="hash"
            See :meth:`from_edgelist`.
        world : tensorkit.distributed.World, optional
            Default :func:`tensorkit.distributed.current_world`.

        Returns
        -------
        PartitionedGraph

        Examples
        --------
        >>> import numpy as np
        >>> from graphkit import Graph
        >>> parts = PartitionedGraph.from_graph(Graph.from_edges(np.array([0, 1]), np.array([1, 2])), "range")
        >>> parts.local.shape, parts.edge_cut
        ((3, 3), 0.0)
        """
        _check_partition(partition)
        world = distributed.current_world() if world is None else world
        with distributed.stage(world, "reading the graph"):
            graph = as_graph(graph)
        distributed.check_identical(world, (_ids_digest(graph.node_ids), graph.adjacency.nnz),
                                    "the graph (node ids and number of entries)")
        owner = _owners(graph.node_ids, world.size, partition)
        local = graph.adjacency[np.flatnonzero(owner == world.rank)]
        local.sort_indices()
        return cls(world, graph.node_ids, owner, sp.csr_matrix(local, dtype=np.float64), directed=graph.directed,
                   weighted=graph.weighted, partition=partition)

    # -- sizes ----------------------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        """Number of nodes over all ranks."""
        return len(self.node_ids)

    def _count_edges(self) -> None:
        """``n_edges`` and ``edge_cut`` over all ranks, from one all-reduce."""
        rows = np.repeat(self.owned, np.diff(self.local.indptr))
        columns = self.local.indices
        loops = int(np.count_nonzero(rows == columns))
        remote = int(np.count_nonzero(self.owner[columns] != self.world.rank)) if len(columns) else 0
        stored, loops, remote = _sum_over_ranks(self.world, [self.local.nnz, loops, remote], self._device)
        self.n_edges = int(stored) if self.directed else int(stored + loops) // 2
        self.edge_cut = float(remote / stored) if stored else 0.0

    def __repr__(self) -> str:
        return (f"PartitionedGraph(n_nodes={self.n_nodes}, n_edges={self.n_edges}, directed={self.directed}, "
                f"weighted={self.weighted}, partition={self.partition!r}, rank={self.world.rank}/{self.world.size}, "
                f"owned={len(self.owned)}, halo={len(self.halo)})")

    # -- the halo exchange ----------------------------------------------------------------------

    def _plan_halo(self) -> None:
        """Which remote rows this rank receives (from whom) and which own rows it sends (to whom)."""
        rank, size = self.world.rank, self.world.size
        present = np.zeros(len(self.owner), dtype=bool)
        present[self.local.indices] = True
        columns = np.flatnonzero(present)
        self.halo = columns[self.owner[columns] != rank]
        by_owner = np.argsort(self.owner[self.halo], kind="stable")
        self._receive_order = by_owner  # received row k is halo[by_owner[k]]
        wanted = [self.halo[self.owner[self.halo] == source] for source in range(size)]
        self._receive_counts = [len(part) for part in wanted]
        requested = _exchange_arrays(self.world, wanted, self._device)
        local_of = _local_numbers(self.owned, len(self.owner))
        self._send_rows = [local_of[part] for part in requested]
        self._send_counts = [len(part) for part in self._send_rows]
        self._indices_on: dict = {}

    def _send_index(self, device: torch.device) -> torch.Tensor:
        """The owned rows to send, all ranks' lists concatenated, on ``device`` (cached)."""
        key = str(device)
        if key not in self._indices_on:
            flat = np.concatenate(self._send_rows) if self._send_rows else np.zeros(0, dtype=np.int64)
            self._indices_on[key] = torch.from_numpy(flat).to(device)
        return self._indices_on[key]

    def exchange_in_receive_order(self, values: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The rows of the halo from their owners, grouped by owner rank (``halo[receive_order]``).

        The order in which :meth:`exchange` receives them; writing them into ``out`` (a contiguous
        ``len(halo) x d`` tensor) saves the permutation and the copy.
        """
        values = _check_rows(values, len(self.owned), "values")
        width = values.shape[1]
        if out is None:
            out = values.new_empty((len(self.halo), width))
        if not self.world.active:
            return out
        sent = values.index_select(0, self._send_index(values.device)) if len(values) else values[:0]
        # rows on another device than the group's (CUDA rows over gloo) travel through the group's
        received = out if out.device == self._device else out.new_empty(out.shape, device=self._device)
        # the single-tensor form: gloo's list form needs equal sizes; this one sends uneven row counts
        dist.all_to_all_single(received, sent.to(self._device).contiguous(), output_split_sizes=self._receive_counts,
                               input_split_sizes=self._send_counts, group=self.world.group)
        if received is not out:
            out.copy_(received)
        return out

    @property
    def receive_order(self) -> np.ndarray:
        """Positions in ``halo`` of the rows :meth:`exchange_in_receive_order` returns, in its order."""
        return self._receive_order

    def exchange(self, values: torch.Tensor) -> torch.Tensor:
        """The rows of ``halo`` from their owners: one all-to-all that moves only the needed rows.

        Every rank must call it at the same point.

        Parameters
        ----------
        values : torch.Tensor of shape (len(owned), d)
            This rank's rows, in the order of ``owned``.

        Returns
        -------
        torch.Tensor of shape (len(halo), d)
            Row ``k`` is node ``halo[k]``'s row on its owner; same dtype and device as ``values``.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from graphkit import Graph
        >>> parts = PartitionedGraph.from_graph(Graph.from_edges(np.array([0]), np.array([1])))
        >>> parts.exchange(torch.zeros(2, 3)).shape  # one process: no remote rows
        torch.Size([0, 3])
        """
        received = self.exchange_in_receive_order(values)
        result = torch.empty_like(received)
        result[torch.from_numpy(self._receive_order).to(received.device)] = received
        return result

    def bytes_per_step(self, n_columns: int, itemsize: int = 4) -> int:
        """Bytes this rank sends plus receives in one :meth:`exchange` of ``n_columns`` columns.

        Examples
        --------
        >>> import numpy as np
        >>> from graphkit import Graph
        >>> PartitionedGraph.from_graph(Graph.from_edges(np.array([0]), np.array([1]))).bytes_per_step(8)
        0
        """
        if not self.world.active:
            return 0
        return int(sum(self._send_counts) + sum(self._receive_counts)) * int(n_columns) * int(itemsize)


# -- helpers ---------------------------------------------------------------------------------------

def _check_partition(partition: Any) -> None:
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be 'hash' or 'range'; got {partition!r}")


def _check_rows(values: Any, n_rows: int, name: str) -> torch.Tensor:
    if not isinstance(values, torch.Tensor) or values.dim() != 2 or values.shape[0] != n_rows:
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{name} must be a 2-D torch.Tensor with one row per owned node ({n_rows}); got {shape}")
    return values


def _ids_digest(node_ids: np.ndarray) -> str:
    """A digest of the ids' values (:func:`tensorkit.distributed.digest` of an object array would
    digest its pointers, which differ between processes)."""
    ids = np.asarray(node_ids)
    if ids.dtype == object:
        return distributed.digest((len(ids), pd.util.hash_array(ids)))
    return distributed.digest(ids)


def _owners(node_ids: np.ndarray, size: int, partition: str) -> np.ndarray:
    """The rank of every node: a hash of its id modulo ``size``, or contiguous ranges of the numbering."""
    n_nodes = len(node_ids)
    if size == 1 or n_nodes == 0:
        return np.zeros(n_nodes, dtype=np.int64)
    if partition == "hash":
        # pandas' hash is seeded by a fixed key, so every process computes the same values
        return (pd.util.hash_array(np.asarray(node_ids)) % np.uint64(size)).astype(np.int64)
    base, extra = divmod(n_nodes, size)
    return np.repeat(np.arange(size, dtype=np.int64), [base + (rank < extra) for rank in range(size)])


def _collective_device(world: distributed.World) -> torch.device:
    """Where the group's tensors live: the current CUDA device for NCCL, the CPU otherwise."""
    if world.active and dist.get_backend(world.group) == "nccl":
        return backend.resolve_device("cuda")
    return backend.resolve_device("cpu")


def _sum_over_ranks(world: distributed.World, numbers: Sequence[float], device: torch.device) -> list:
    """``numbers`` summed over the ranks (float64)."""
    tensor = torch.tensor([float(n) for n in numbers], dtype=torch.float64, device=device)
    if world.active:
        dist.all_reduce(tensor, group=world.group)
    return tensor.tolist()


def _exchange_arrays(world: distributed.World, parts: Sequence[np.ndarray], device: torch.device) -> list:
    """``parts[r]`` (integer arrays of one dtype, rows of any width) sent to rank ``r``; what each rank sent here."""
    if not world.active:
        return [np.asarray(parts[0])]
    dtype = np.result_type(*parts) if parts else np.int64
    parts = [np.ascontiguousarray(part, dtype=dtype) for part in parts]
    tail = parts[0].shape[1:]
    counts = torch.tensor([len(part) for part in parts], dtype=torch.int64, device=device)
    incoming = torch.empty_like(counts)
    dist.all_to_all_single(incoming, counts, group=world.group)
    incoming = incoming.tolist()
    send = torch.from_numpy(np.concatenate(parts)).to(device)
    receive = torch.empty((sum(incoming), *tail), dtype=send.dtype, device=device)
    dist.all_to_all_single(receive, send, output_split_sizes=incoming, input_split_sizes=[len(part) for part in parts],
                           group=world.group)
    return list(np.split(backend.to_numpy(receive), np.cumsum(incoming)[:-1]))


def _numbered_entries(parts: list, node_ids: np.ndarray, directed: bool, weighted: bool,
                      drop_self_loops: bool) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Rows, columns (int32 when the node numbers fit) and, for weighted edges, values of every block's entries."""
    index_dtype = np.int32 if len(node_ids) < 2**31 else np.int64
    pieces = []
    for raw in parts:
        rows, cols, values = directed_triples(positions_of(node_ids, raw.src), positions_of(node_ids, raw.dst),
                                              raw.weight, directed, drop_self_loops)
        pieces.append((rows.astype(index_dtype), cols.astype(index_dtype), values if weighted else None))
    rows = np.concatenate([piece[0] for piece in pieces]) if pieces else np.zeros(0, dtype=index_dtype)
    cols = np.concatenate([piece[1] for piece in pieces]) if pieces else np.zeros(0, dtype=index_dtype)
    values = (np.concatenate([piece[2] for piece in pieces]) if pieces else np.zeros(0)) if weighted else None
    return rows, cols, values


def _local_numbers(owned: np.ndarray, n_nodes: int) -> np.ndarray:
    """Position of each node among this rank's ``owned`` nodes (-1 for the others): a lookup table."""
    local_of = np.full(n_nodes, -1, dtype=np.int64)
    local_of[owned] = np.arange(len(owned))
    return local_of


def _rows_to_owners(world: distributed.World, owner: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    values: Optional[np.ndarray]) -> sp.csr_matrix:
    """This rank's CSR rows (owned x n_nodes), from the entries every rank read, each sent to its row's owner.

    ``values`` None: every entry weighs 1, and only the positions travel. The entries go in rounds
    of at most ``_ENTRIES_PER_ROUND`` per rank, so that the send and receive buffers stay small
    next to the entries themselves.
    """
    owned = np.flatnonzero(owner == world.rank)
    shape = (len(owned), len(owner))
    if world.size == 1:
        return max_merged_csr(rows, cols, values, shape)
    destination = owner[rows].astype(np.int16 if world.size < 2**15 else np.int64)   # small ints sort by radix
    order = np.argsort(destination, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(destination, minlength=world.size))])
    del destination
    rounds = max(distributed.all_gather_objects(world, -(-len(rows) // _ENTRIES_PER_ROUND)))
    device = _collective_device(world)
    received_pairs, received_values = [], []
    for number in range(rounds):
        picks = [order[lo + (hi - lo) * number // rounds: lo + (hi - lo) * (number + 1) // rounds]
                 for lo, hi in zip(bounds[:-1], bounds[1:])]
        received_pairs += _exchange_arrays(world, [np.stack([rows[pick], cols[pick]], axis=1) for pick in picks],
                                           device)
        if values is not None:
            received_values += _exchange_arrays(world, [values[pick].view(np.int64) for pick in picks], device)
    del order
    pairs = np.concatenate(received_pairs) if received_pairs else np.zeros((0, 2), dtype=rows.dtype)
    del received_pairs
    local_rows = _local_numbers(owned, len(owner))[pairs[:, 0]]
    merged_values = (None if values is None else
                     np.concatenate(received_values).view(np.float64) if received_values else np.zeros(0))
    return max_merged_csr(local_rows, pairs[:, 1], merged_values, shape)


_ENTRIES_PER_ROUND = 1 << 23
