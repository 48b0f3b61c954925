"""A graph's CSR adjacency in files on disk, built from an edge list in bounded memory.

:class:`DiskGraph` holds the node ids in memory (they are O(n)) and the ``indptr``, ``indices``
and ``data`` arrays of the float64 CSR adjacency as memory maps, so that reading a block of rows
pages in only those rows (file-backed memory the system can drop, never anonymous memory).

:func:`disk_graph_from_edges` builds it from an :class:`~graphkit._edge_blocks.EdgeBlockReader`
with the defaults of :func:`graphkit.read_edgelist` (sorted node ids, repeated edges combined by
their largest weight, weight-0 edges dropped but their nodes kept, self loops kept once):

1. each block is parsed once; its distinct ids are merged into the id set and its integer ids
   are spooled to disk (blocks with string ids are parsed again later instead);
2. the spooled edges become adjacency entries (row, column, value), counted per row;
3. they are spooled again into buckets of consecutive rows, each small enough for the budget;
4. each bucket is sorted and max-merged (:func:`~graphkit._edge_blocks.max_merged_csr`) and
   appended to the CSR files.
"""

from __future__ import annotations

import contextlib

import math
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Iterator, Optional

import numpy as np
import scipy.sparse as sp

from graphkit._edge_blocks import directed_triples, max_merged_csr, merge_ids, positions_of
from graphkit._fastrp_rows import log2_row_sums
from tensorkit.utils import progress

__all__ = ["DiskGraph", "check_disk_space", "disk_graph_from_edges", "disk_graph_from_graph", "edge_block_bytes",
           "format_bytes", "ids_nbytes", "parse_memory_budget", "MemoryBudgetError", "budget_beside_process",
           "process_anonymous_bytes"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_BUDGET = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_ENTRY = np.dtype([("row", "<i8"), ("col", "<i8"), ("value", "<f8")])
# Bytes of anonymous memory per adjacency entry while a bucket is max-merged: the loaded records,
# the keys, the sort order, the sorted copies, the flags and the merged arrays.
_MERGE_BYTES_PER_ENTRY = 128
# Bytes per entry while a block's edges become entries: ids, positions, mirrored triples.
_TRIPLE_BYTES_PER_EDGE = 96
# Anonymous bytes per byte of text while pandas parses a block (the text, the parser's buffers
# and the columns it returns).
_PARSE_BYTES_PER_TEXT_BYTE = 6
_PER_NODE_BYTES = 8 + 8 + 8  # per-row counts and their cumulative sum, and the indptr being written


def parse_memory_budget(value: Any) -> int:
    """A memory budget in bytes, from an int or a string such as ``"4GB"``, ``"512 MiB"`` or ``"1.5G"``.

    KB, MB, GB and TB are powers of 1000; K, M, G, T and KiB, MiB, GiB, TiB powers of 1024; no
    unit (or B) means bytes. Case does not matter.

    Parameters
    ----------
    value : int or str

    Returns
    -------
    int
        A positive number of bytes.

    Raises
    ------
    ValueError
        Naming ``memory_budget``, for anything else, zero or a negative number.

    Examples
    --------
    >>> parse_memory_budget("4GB"), parse_memory_budget("1.5 GiB"), parse_memory_budget(1000)
    (4000000000, 1610612736, 1000)
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"memory_budget must be a number of bytes or a size such as '4GB'; got {value!r}")
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, str) and (match := _BUDGET.fullmatch(value)) and match.group(2).upper() in _UNITS:
        number = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    else:
        raise ValueError(f"memory_budget must be a number of bytes or a size such as '4GB', '512MiB' or '1.5G'; "
                         f"got {value!r}")
    if number <= 0:
        raise ValueError(f"memory_budget must be positive; got {value!r}")
    return number


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in decimal units rounded up to two significant digits, e.g. ``"1.2 GB"``.

    Examples
    --------
    >>> format_bytes(1_150_000_000), format_bytes(512)
    ('1.2 GB', '512 bytes')
    """
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n_bytes >= size:
            value = n_bytes / size
            digits = 1 if value < 10 else 0
            rounded = math.ceil(value * 10**digits) / 10**digits
            return f"{rounded:.{digits}f} {unit}"
    return f"{int(math.ceil(n_bytes))} bytes"


def edge_block_bytes(memory_budget: int) -> int:
    """A block size for :class:`~graphkit._edge_blocks.EdgeBlockReader` that fits ``memory_budget``:
    an eighth of what parsing a block may take, between 64 KiB and 64 MiB.

    Examples
    --------
    >>> edge_block_bytes(4 * 10**9)
    67108864
    """
    return int(min(max(memory_budget // (8 * _PARSE_BYTES_PER_TEXT_BYTE), 1 << 16), 64 << 20))


def check_disk_space(folder: Any, needed_bytes: int, what: str) -> None:
    """Raise :class:`OSError` when ``folder``'s file system has less than ``needed_bytes`` free.

    Call it before creating the files, so that nothing large is left half written.

    Raises
    ------
    OSError
        Naming ``what``, the bytes needed and the bytes free.
    """
    free = shutil.disk_usage(os.fspath(folder)).free
    if needed_bytes > free:
        raise OSError(f"not enough disk space in {os.fspath(folder)} for {what}: needs {format_bytes(needed_bytes)} "
                      f"({needed_bytes} bytes), {format_bytes(free)} ({free} bytes) free; choose another "
                      "temporary folder")


def _open_array(path: str, dtype: Any, shape: tuple, mode: str) -> np.ndarray:
    """A memory map of a raw array file, or an empty in-memory array for zero elements (mmap needs bytes)."""
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode=mode, shape=shape)


class DiskGraph:
    """A graph whose CSR adjacency lies in memory-mapped files; the node ids are in memory.

    Attributes
    ----------
    node_ids : ndarray of shape (n_nodes,)
        Sorted original ids (integers or strings), as :func:`graphkit.read_edgelist` gives them.
    n_nodes, n_entries : int
        Number of nodes and of stored adjacency entries.
    directed, weighted : bool
    folder : str
        Where the files ``indptr.bin`` (int64), ``indices.bin`` (int64) and ``data.bin``
        (float64) lie.
    indptr, indices, data : numpy.memmap (read-only)

    Examples
    --------
    >>> import tempfile
    >>> import graphkit
    >>> graph = graphkit.Graph.from_edges([0, 1], [1, 2])
    >>> disk = disk_graph_from_graph(graph, tempfile.mkdtemp())
    >>> disk.row_block(1, 2).toarray()
    array([[1., 0., 1.]])
    """

    def __init__(self, node_ids: np.ndarray, folder: Any, n_entries: int, directed: bool, weighted: bool):
        self.node_ids = node_ids
        self.n_nodes = len(node_ids)
        self.n_entries = int(n_entries)
        self.directed = bool(directed)
        self.weighted = bool(weighted)
        self.folder = os.fspath(folder)
        self.indptr = _open_array(self._path("indptr"), np.int64, (self.n_nodes + 1,), "r")
        self.indices = _open_array(self._path("indices"), np.int64, (self.n_entries,), "r")
        self.data = _open_array(self._path("data"), np.float64, (self.n_entries,), "r")

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.bin")

    def __repr__(self) -> str:
        kind = "directed" if self.directed else "undirected"
        return (f"DiskGraph({self.n_nodes} nodes, {self.n_entries} entries, {kind}, "
                f"{'weighted' if self.weighted else 'unweighted'}, {format_bytes(self.nbytes_on_disk)} in {self.folder})")

    @property
    def n_edges(self) -> int:
        """Number of edges as :attr:`graphkit.Graph.n_edges` counts them (self loops are counted in blocks)."""
        if self.directed:
            return self.n_entries
        loops = 0
        for start, stop in self.row_blocks(1 << 22):
            low, high = int(self.indptr[start]), int(self.indptr[stop])
            rows = np.repeat(np.arange(start, stop), np.diff(np.asarray(self.indptr[start:stop + 1])))
            loops += int(np.count_nonzero(np.asarray(self.indices[low:high]) == rows))
        return (self.n_entries + loops) // 2

    @property
    def nbytes_on_disk(self) -> int:
        """Bytes of the three CSR files."""
        return 8 * (self.n_nodes + 1) + 16 * self.n_entries

    @property
    def ids_nbytes(self) -> int:
        """Approximate bytes of memory the node ids take (strings counted with their objects)."""
        return ids_nbytes(self.node_ids)

    def row_block(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``start:stop`` of the adjacency, shape ``(stop - start, n_nodes)``, copied into memory."""
        bounds = np.array(self.indptr[start:stop + 1], dtype=np.int64)
        low, high = int(bounds[0]), int(bounds[-1])
        matrix = sp.csr_matrix((np.array(self.data[low:high]), np.array(self.indices[low:high]), bounds - low),
                               shape=(stop - start, self.n_nodes))
        matrix.has_sorted_indices = True
        return matrix

    def row_lengths(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Stored entries of rows ``start:stop``."""
        return np.diff(np.asarray(self.indptr[start:(self.n_nodes if stop is None else stop) + 1]))

    def max_row_length(self, block_rows: int = 1 << 20) -> int:
        """The largest number of entries of one row (0 without nodes)."""
        return max((int(self.row_lengths(start, min(start + block_rows, self.n_nodes)).max())
                    for start in range(0, self.n_nodes, block_rows)), default=0)

    def row_blocks(self, max_entries: int, max_rows: Optional[int] = None) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of consecutive row blocks of at most ``max_entries`` entries and
        ``max_rows`` rows each (one row at least, whatever its length)."""
        yield from self.cost_blocks(0, 1, max_entries, max_rows)

    def cost_blocks(self, row_cost: int, entry_cost: int, budget: int,
                    max_rows: Optional[int] = None) -> Iterator[tuple[int, int]]:
        """Consecutive row blocks each costing at most ``budget``, where a block of ``r`` rows and
        ``e`` entries costs ``row_cost * r + entry_cost * e`` (one row at least per block)."""
        start, n = 0, self.n_nodes
        max_rows = n if max_rows is None else max(int(max_rows), 1)
        while start < n:
            base = int(self.indptr[start])
            low, high = start + 1, min(start + max_rows, n)
            while low < high:  # the last stop within the budget
                middle = (low + high + 1) // 2
                cost = row_cost * (middle - start) + entry_cost * (int(self.indptr[middle]) - base)
                low, high = (middle, high) if cost <= budget else (low, middle - 1)
            yield start, low
            start = low

    def degrees_log2(self, block_entries: int = 1 << 22) -> np.ndarray:
        """``log2`` of every node's degree (-inf for degree 0), as
        :func:`graphkit._fastrp_rows.log2_row_sums` gives it, computed over blocks of rows."""
        result = np.empty(self.n_nodes, dtype=np.float64)
        for start, stop in self.row_blocks(block_entries):
            result[start:stop] = log2_row_sums(self.row_block(start, stop), self.weighted)
        return result

    def to_scipy(self) -> sp.csr_matrix:
        """The whole adjacency in memory (for tests and small graphs)."""
        return self.row_block(0, self.n_nodes)


def ids_nbytes(ids: np.ndarray) -> int:
    """Approximate memory of an id array: its buffer, plus the string objects of an object array."""
    if ids.dtype != object or not len(ids):
        return int(ids.nbytes)
    sample = ids[:: max(len(ids) // 1000, 1)]
    per_object = sum(sys.getsizeof(value) for value in sample) / len(sample)
    return int(ids.nbytes + per_object * len(ids))


def disk_graph_from_graph(graph: Any, folder: Any) -> DiskGraph:
    """Write an in-memory :class:`graphkit.Graph`'s CSR adjacency to ``folder`` as a :class:`DiskGraph`.

    Examples
    --------
    >>> import tempfile
    >>> import graphkit
    >>> disk_graph_from_graph(graphkit.Graph.from_edges([0], [1]), tempfile.mkdtemp()).n_entries
    2
    """
    adjacency = graph.adjacency
    os.makedirs(folder, exist_ok=True)
    check_disk_space(folder, 8 * (graph.n_nodes + 1) + 16 * adjacency.nnz, "the graph's adjacency")
    writer = _CsrWriter(folder, graph.n_nodes)
    try:
        writer.append(adjacency)
    finally:
        writer.close()
    return DiskGraph(np.asarray(graph.node_ids), folder, adjacency.nnz, graph.directed, graph.weighted)


class _CsrWriter:
    """Appends blocks of rows (CSR matrices) to the files of a :class:`DiskGraph`."""

    def __init__(self, folder: Any, n_nodes: int):
        self.folder = os.fspath(folder)
        self.indptr = _open_array(os.path.join(self.folder, "indptr.bin"), np.int64, (n_nodes + 1,), "w+")
        self.indptr[0] = 0
        self.handles = [open(os.path.join(self.folder, f"{name}.bin"), "wb") for name in ("indices", "data")]
        self.row, self.n_entries = 0, 0

    def append(self, block: sp.csr_matrix) -> None:
        n_rows = block.shape[0]
        self.indptr[self.row + 1:self.row + n_rows + 1] = np.asarray(block.indptr[1:], dtype=np.int64) + self.n_entries
        np.asarray(block.indices, dtype=np.int64).tofile(self.handles[0])
        np.asarray(block.data, dtype=np.float64).tofile(self.handles[1])
        self.row += n_rows
        self.n_entries += block.nnz

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
        if isinstance(self.indptr, np.memmap):
            self.indptr.flush()
        del self.indptr


def disk_graph_from_edges(reader: Any, folder: Any, *, directed: bool, memory_budget: int,
                          verbose: int = 0) -> DiskGraph:
    """Read edge-list files block by block into a :class:`DiskGraph` in ``folder``, in bounded memory.

    Gives the graph :func:`graphkit.read_edgelist` reads (``duplicates="max"``, self loops kept):
    the same sorted node ids and the same adjacency. Parsing holds one block of text at a time;
    the id set (O(n)) and a few per-node counters stay in memory; the edges go through spool
    files in a temporary folder inside ``folder``, removed at the end (also on error).

    Parameters
    ----------
    reader : graphkit._edge_blocks.EdgeBlockReader
        Its ``block_bytes`` sets the text parsed at once (see :func:`edge_block_bytes`).
    folder : path-like
        Where the CSR files are written (created if missing).
    directed : bool
        False stores every edge in both directions, as ``read_edgelist(..., directed=False)``.
    memory_budget : int
        Bytes of anonymous memory the build may use (:func:`parse_memory_budget`); it sets how many
        rows are merged at once.
    verbose : int, default=0
        Progress bars over the blocks (see :func:`tensorkit.utils.progress`).

    Returns
    -------
    DiskGraph

    Raises
    ------
    ValueError
        When the budget cannot hold the node ids, the per-node counters and one block: the
        message names the smallest budget that would.
    OSError
        When ``folder`` lacks the disk space for the spool or the CSR files.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from graphkit._edge_blocks import EdgeBlockReader
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "edges.txt").write_text("a b\\nb c\\n")
    >>> graph = disk_graph_from_edges(EdgeBlockReader(folder / "edges.txt"), folder / "csr", directed=False,
    ...                               memory_budget=10**8)
    >>> graph.node_ids.tolist(), graph.n_entries
    (['a', 'b', 'c'], 4)
    """
    memory_budget = parse_memory_budget(memory_budget)
    os.makedirs(folder, exist_ok=True)
    block_cost = _largest_block(reader) * _PARSE_BYTES_PER_TEXT_BYTE
    if block_cost > memory_budget:
        raise MemoryBudgetError(block_cost, memory_budget, f"parsing blocks of {format_bytes(reader.block_bytes)} of "
                                "text", f", or the reader's block_bytes at most {edge_block_bytes(memory_budget)} "
                                "(see edge_block_bytes)")
    spool = tempfile.mkdtemp(dir=os.fspath(folder), prefix=".edges-")
    try:
        ids, n_edges, spooled = _gather_ids(reader, spool, memory_budget, verbose)
        return _build_csr(reader, folder, spool, ids, spooled, directed, memory_budget, block_cost, verbose)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _largest_block(reader: Any) -> int:
    """Bytes of text in the largest block: ``block_bytes``, or less when every file is plain and smaller
    (a block may pass ``block_bytes`` by the rest of a line, which the factor on it covers)."""
    if all(layout.compression is None for layout in reader.layouts):
        return min(reader.block_bytes, max(os.path.getsize(path) for path in reader.paths))
    return reader.block_bytes


class MemoryBudgetError(ValueError):
    """A ``memory_budget`` too small for the work: names the smallest budget that would do.

    ``budget`` and ``needed`` count the data only; :meth:`with_process_memory` adds what the
    process holds already (Python, torch), for messages in terms of the whole process.
    """

    def __init__(self, needed: int, budget: int, what: str, advice: str = ""):
        self.needed, self.budget, self.what, self.advice = int(needed), int(budget), what, advice
        super().__init__(f"memory_budget={format_bytes(budget)} is too small for {what}: it must be at least "
                         f"{format_bytes(needed)}{advice}")

    def __reduce__(self):
        return type(self), (self.needed, self.budget, self.what, self.advice)

    def with_process_memory(self, in_use: int) -> "MemoryBudgetError":
        return MemoryBudgetError(self.needed + in_use, self.budget + in_use,
                                 f"{self.what}, beside the {format_bytes(in_use)} this process holds already",
                                 self.advice)


def process_anonymous_bytes() -> int:
    """The resident anonymous memory of this process (Linux ``RssAnon``); 0 where it is not known."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@contextlib.contextmanager
def budget_beside_process(budget: int) -> Iterator[int]:
    """The part of ``budget`` left for the data once the process's own memory is counted.

    ``budget`` is for the whole process's resident anonymous memory, of which Python, torch and
    what the caller holds already take :func:`process_anonymous_bytes`; the block yields the rest,
    and a :class:`MemoryBudgetError` raised in it names the smallest budget for the whole process.
    """
    in_use = process_anonymous_bytes()
    if budget <= in_use:
        raise MemoryBudgetError(in_use, budget, "this process", " (Python, torch and the data it holds take that "
                                "much already), and more for the work")
    try:
        yield budget - in_use
    except MemoryBudgetError as error:
        raise error.with_process_memory(in_use) from None


def _smallest_budget_error(needed: int, budget: int, what: str) -> MemoryBudgetError:
    return MemoryBudgetError(needed, budget, what)


def _gather_ids(reader: Any, spool: str, memory_budget: int, verbose: int) -> tuple[np.ndarray, int, dict]:
    """Pass 1: the sorted distinct ids and the number of edges; integer-id blocks spooled to disk.

    Returns ``(ids, n_edges, spooled)`` with ``spooled[block index]`` True when the block's edges
    are in the spool (``None`` for a block with string ids, parsed again later).
    """
    ids = np.zeros(0, dtype=np.int64)
    pending: list = []
    pending_size, n_edges, spooled = 0, 0, {}
    plain = all(layout.compression is None for layout in reader.layouts)
    bar = progress(total=reader.n_bytes if plain else None, verbose=verbose, desc="Reading edges", unit="B",
                   unit_scale=True)
    for block, raw in _parsed_blocks(reader):
        n_edges += len(raw)
        if raw.src.dtype.kind in "iu" and raw.dst.dtype.kind in "iu":
            _spool_raw(spool, block.index, raw)
            spooled[block.index] = True
        else:
            spooled[block.index] = False
        pending.append(merge_ids([raw.src, raw.dst]))
        pending_size += len(pending[-1])
        if pending_size > max(len(ids), 1 << 16):  # merge when pending ids outgrow the set: linear time overall
            ids = merge_ids([ids, *pending])
            pending, pending_size = [], 0
            if ids_nbytes(ids) * 3 > memory_budget:
                raise _smallest_budget_error(ids_nbytes(ids) * 3, memory_budget, "the node ids")
        bar.update(len(block.data))
    bar.close()
    ids = merge_ids([ids, *pending]) if pending else ids
    return ids, n_edges, spooled


def _parsed_blocks(reader: Any) -> Iterator[tuple[Any, Any]]:
    for block in reader.blocks():
        yield block, reader.parse(block)


def _spool_raw(spool: str, index: int, raw: Any) -> None:
    """Write a block's integer ids (and weights) to ``spool/raw-<index>.npz``."""
    arrays = {"src": raw.src, "dst": raw.dst}
    if raw.weight is not None:
        arrays["weight"] = raw.weight
    check_disk_space(spool, sum(array.nbytes for array in arrays.values()), "the spooled edges")
    np.savez(os.path.join(spool, f"raw-{index}.npz"), **arrays)


def _raw_blocks(reader: Any, spool: str, spooled: dict) -> Iterator[tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]:
    """``(src, dst, weight)`` of every block in order: from the spool, or parsed again."""
    if all(spooled.values()):
        for index in sorted(spooled):
            with np.load(os.path.join(spool, f"raw-{index}.npz")) as saved:
                yield saved["src"], saved["dst"], (saved["weight"] if "weight" in saved else None)
        return
    for block in reader.blocks():
        if spooled.get(block.index):
            with np.load(os.path.join(spool, f"raw-{block.index}.npz")) as saved:
                yield saved["src"], saved["dst"], (saved["weight"] if "weight" in saved else None)
        else:
            raw = reader.parse(block)
            yield raw.src, raw.dst, raw.weight


def _build_csr(reader: Any, folder: Any, spool: str, ids: np.ndarray, spooled: dict, directed: bool,
               memory_budget: int, block_cost: int, verbose: int) -> DiskGraph:
    """Passes 2 and 3: entries counted per row, spooled into row buckets, merged into the CSR files."""
    n = len(ids)
    fixed = ids_nbytes(ids) + _PER_NODE_BYTES * n
    counts = np.zeros(n, dtype=np.int64)
    for index, (src, dst, weight) in enumerate(_raw_blocks(reader, spool, spooled)):
        rows, cols, values = directed_triples(positions_of(ids, src), positions_of(ids, dst), weight, directed,
                                              reader.drop_self_loops)
        counts += np.bincount(rows, minlength=n)
        _spool_entries(spool, index, rows, cols, values)
    n_entries = int(counts.sum())
    largest_row = int(counts.max()) if n else 0
    needed = fixed + max(block_cost, largest_row * _MERGE_BYTES_PER_ENTRY)
    if needed > memory_budget:
        raise _smallest_budget_error(needed, memory_budget, f"{n} node ids, their counters and the largest row "
                                     f"({largest_row} entries)")
    capacity = max((memory_budget - fixed) // _MERGE_BYTES_PER_ENTRY, largest_row, 1)
    bounds = _bucket_bounds(counts, capacity)
    check_disk_space(folder, 24 * n_entries + 16 * n_entries + 8 * (n + 1), "the adjacency's buckets and CSR files")
    bucket_files = [os.path.join(spool, f"bucket-{number}.bin") for number in range(len(bounds) - 1)]
    for index in range(len(spooled)):
        path = os.path.join(spool, f"entries-{index}.bin")
        entries = np.fromfile(path, dtype=_ENTRY)
        os.unlink(path)
        which = np.searchsorted(bounds, entries["row"], side="right") - 1
        order = np.argsort(which, kind="stable")
        entries, which = entries[order], which[order]
        splits = np.searchsorted(which, np.arange(len(bounds)))
        for number in range(len(bounds) - 1):
            if splits[number + 1] > splits[number]:
                with open(bucket_files[number], "ab") as handle:
                    entries[splits[number]:splits[number + 1]].tofile(handle)
    del counts
    writer = _CsrWriter(folder, n)
    try:
        for number in progress(range(len(bounds) - 1), verbose, desc="Sorting edges"):
            low, high = int(bounds[number]), int(bounds[number + 1])
            path = bucket_files[number]
            entries = np.fromfile(path, dtype=_ENTRY) if os.path.exists(path) else np.zeros(0, dtype=_ENTRY)
            writer.append(max_merged_csr(entries["row"] - low, entries["col"], entries["value"], (high - low, n)))
            del entries
            if os.path.exists(path):
                os.unlink(path)
    finally:
        writer.close()
    return DiskGraph(ids, folder, writer.n_entries, directed, reader.weighted)


def _spool_entries(spool: str, index: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    entries = np.empty(len(rows), dtype=_ENTRY)
    entries["row"], entries["col"], entries["value"] = rows, cols, values
    check_disk_space(spool, entries.nbytes, "the spooled adjacency entries")
    entries.tofile(os.path.join(spool, f"entries-{index}.bin"))


def _bucket_bounds(counts: np.ndarray, capacity: int) -> np.ndarray:
    """Row bounds ``b_0 = 0 < b_1 < ... = n`` of buckets of at most ``capacity`` entries (or one row)."""
    n = len(counts)
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    bounds, start = [0], 0
    while start < n:
        stop = int(np.searchsorted(cumulative, cumulative[start] + capacity, side="right")) - 1
        start = min(max(stop, start + 1), n)
        bounds.append(start)
    return np.asarray(bounds, dtype=np.int64)
