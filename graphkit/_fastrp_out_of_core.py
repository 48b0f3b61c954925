"""FastRP out of core: the iterates in memory-mapped files, propagated in blocks of rows.

:func:`fastrp_out_of_core` computes the embedding of :class:`graphkit.FastRP` for a
:class:`~graphkit._disk_csr.DiskGraph` while its anonymous memory stays within a budget. Each
product ``U_i = M U_{i-1}`` runs over blocks of rows: the block's rows of the transition matrix
``M = D^-1 A`` (read from the CSR files) times the whole previous iterate, a tensor over a memory
map of which only the rows the block touches are paged in (file-backed memory the system can
drop). Only two iterates are kept on disk (the previous and the current one); each block's
row-normalised iterate is added into the output rows at once, in the order of
:func:`graphkit.fastrp.fastrp_embed`, so the result equals the in-memory fit up to rounding (the
row norms are summed in another order). The standardisation then takes three passes over the
output: column sums and the largest magnitude, the centred squares, the scaling.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
import torch

from graphkit._disk_csr import DiskGraph, MemoryBudgetError, check_disk_space, ids_nbytes, parse_memory_budget
from graphkit._fastrp_rows import add_normalized_, degree_exponents, initial_rows, sparse_dense_product, standard_scale
from graphkit.ops import normalized_adjacency
from tensorkit import backend
from tensorkit.utils import progress
from tensorkit.validation import check_finite_result

__all__ = ["OutOfCoreResult", "fastrp_out_of_core", "smallest_budget", "transition_rows"]

# Anonymous bytes per stored entry of a block of the transition matrix: the copies read from the
# files (indices, data), the powers-of-two scaling and its repeated row factors, the normalised
# values, and the torch values in dtype, with some room.
_BYTES_PER_ENTRY = 64
# Dense n_components-wide rows held per row of a block: the one buffer every pass reuses, and one
# for the temporaries of a strided ``out`` or a device other than the CPU.
_DENSE_ROWS_PER_ROW = 2
# Bytes per node held for the whole fit: log2 degrees, degree exponents and their temporaries.
_BYTES_PER_NODE = 40
# Rows of float64 copies formed at once in the standardisation.
_SQUARE_ROWS = 1024
# Bytes per non-zero of R while it is drawn (positions, gaps, signs, rows, columns, values, masks).
_BYTES_PER_PROJECTION_ENTRY = 80


class OutOfCoreResult(NamedTuple):
    """What :func:`fastrp_out_of_core` returns.

    Attributes
    ----------
    embedding : numpy.ndarray
        The ``out`` array given, or a ``numpy.memmap`` over ``folder/embedding.npy``.
    mean, scale : numpy.ndarray of shape (n_components,)
        The column standardisation applied (zeros and ones without ``standardize``).
    history : list of dict
        Per product: ``iteration``, ``weight``, ``mean_row_norm`` of the raw iterate, ``seconds``.
    """

    embedding: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    history: list


class _Plan(NamedTuple):
    fixed: int  # bytes held whatever the block size
    row_cost: int  # bytes per row of a block
    entry_cost: int  # bytes per stored entry of a block
    minimal_block: int  # bytes of the costliest single-row block


def _plan(graph: DiskGraph, n_components: int, dtype: torch.dtype, density: Optional[float],
          gather: bool) -> _Plan:
    """The memory model of :func:`fastrp_out_of_core` for ``graph``."""
    n, itemsize = graph.n_nodes, dtype.itemsize
    share = 1.0 / np.sqrt(max(n, 1)) if density is None else float(density)
    projection = int(share * n * n_components * 1.1 + 6 * np.sqrt(share * n * n_components) + 16)
    fixed = ids_nbytes(graph.node_ids) + _BYTES_PER_NODE * n + _BYTES_PER_PROJECTION_ENTRY * projection
    row_cost = _DENSE_ROWS_PER_ROW * n_components * itemsize + 64
    # Off the CPU the previous iterate's rows a block touches are gathered (at most one per entry).
    entry_cost = _BYTES_PER_ENTRY + (n_components * itemsize if gather else 0)
    return _Plan(fixed, row_cost, entry_cost, row_cost + entry_cost * graph.max_row_length())


def smallest_budget(graph: DiskGraph, n_components: int, dtype: Any = torch.float32,
                    density: Optional[float] = None, device: Any = None) -> int:
    """The smallest ``memory_budget`` (bytes) with which :func:`fastrp_out_of_core` runs on ``graph``.

    It holds the node ids, a few per-node arrays, the draw of the random projection and one block
    of a single row (the longest row); a larger budget gives larger blocks and fewer passes.

    Examples
    --------
    >>> import tempfile
    >>> import graphkit
    >>> from graphkit._disk_csr import disk_graph_from_graph
    >>> graph = disk_graph_from_graph(graphkit.Graph.from_edges([0, 1], [1, 2]), tempfile.mkdtemp())
    >>> smallest_budget(graph, 16) > 0
    True
    """
    dtype = backend.resolve_dtype(dtype)
    plan = _plan(graph, int(n_components), dtype, density, _resolve(device).type != "cpu")
    return plan.fixed + plan.minimal_block


def _resolve(device: Any) -> torch.device:
    return backend.resolve_device("cpu" if device is None else device)


def fastrp_out_of_core(
    graph: DiskGraph,
    *,
    n_components: int,
    iteration_weights: Sequence[float],
    seed: int,
    memory_budget: Any,
    folder: Any,
    self_influence: float = 0.0,
    normalize: bool = True,
    standardize: bool = True,
    density: Optional[float] = None,
    sampler: str = "torch",
    normalization_strength: float = 0.0,
    rescale: bool = True,
    dtype: Any = torch.float32,
    out: Optional[np.ndarray] = None,
    device: Any = None,
    hint: Optional[str] = None,
    verbose: int = 0,
) -> OutOfCoreResult:
    """FastRP's embedding of a graph on disk, in blocks of rows, within ``memory_budget``.

    The same embedding as ``FastRP(...).fit`` on the graph in memory (up to rounding: the row
    norms are summed in another order), with R drawn for ``seed`` (the fit's ``_seed``).

    Parameters
    ----------
    graph : DiskGraph
    n_components : int
    iteration_weights : sequence of float
        The weight of ``M^i R`` for ``i = 1..k`` (the first applies to ``M R``).
    seed : int
        Seed of the random projection R (see :func:`graphkit.fastrp.draw_projection_entries`).
    memory_budget : int or str
        Anonymous memory the data may take (the Python interpreter and PyTorch themselves are not
        counted); see :func:`graphkit._disk_csr.parse_memory_budget`. It sets the rows per block.
    folder : path-like
        Where the two temporary iterate files go (in a fresh sub-folder, removed at the end and
        on error), and ``embedding.npy`` when ``out`` is None.
    self_influence, normalize, standardize, density, sampler, normalization_strength
        As for :class:`graphkit.FastRP`.
    rescale : bool, default=True
        Whether the degree factors may be divided by a common power of two (true when the
        embedding does not depend on a common factor of the vectors; see
        :func:`graphkit._fastrp_rows.degree_exponents`).
    dtype : torch.dtype or str, default=torch.float32
    out : writable array of shape (n_nodes, n_components), optional
        Where the embedding is written in place (a ``numpy.memmap``, or a strided view such as a
        field of a structured memory map). Default: a new ``folder/embedding.npy``.
    device : str or torch.device, optional
        Where the blocks are computed; None is the CPU.
    hint : str, optional
        Appended to the error raised when the embedding holds NaN or infinity.
    verbose : int, default=0
        Progress bars over the blocks of each pass.

    Returns
    -------
    OutOfCoreResult
        ``(embedding, mean, scale, history)``.

    Raises
    ------
    ValueError
        For a budget below :func:`smallest_budget` (named in the message), or an ``out`` of the
        wrong shape. :class:`~tensorkit.validation.NonFiniteResultError` (a ValueError) when
        the degree factors or the embedding overflow ``dtype``.
    OSError
        When ``folder`` lacks the disk space for the iterates (checked before they are created).

    Examples
    --------
    >>> import tempfile
    >>> import graphkit
    >>> from graphkit._disk_csr import disk_graph_from_graph
    >>> folder = tempfile.mkdtemp()
    >>> graph = disk_graph_from_graph(graphkit.Graph.from_edges([0, 1, 2], [1, 2, 0]), folder)
    >>> result = fastrp_out_of_core(graph, n_components=4, iteration_weights=[1.0, 1.0], seed=0,
    ...                             memory_budget="10MB", folder=folder)
    >>> result.embedding.shape
    (3, 4)
    """
    budget = parse_memory_budget(memory_budget)
    dtype, device = backend.resolve_dtype(dtype), _resolve(device)
    n, d = graph.n_nodes, int(n_components)
    if n == 0:
        raise ValueError("the graph has no nodes to embed")
    plan = _plan(graph, d, dtype, density, device.type != "cpu")
    needed = plan.fixed + plan.minimal_block
    if needed > budget:
        raise MemoryBudgetError(needed, budget, f"{n} nodes and n_components={d}", f" ({needed} bytes)")
    if out is not None and tuple(out.shape) != (n, d):
        raise ValueError(f"out must have shape ({n}, {d}); got {tuple(out.shape)}")
    os.makedirs(folder, exist_ok=True)
    itemsize = dtype.itemsize
    check_disk_space(folder, (2 + (out is None)) * n * d * itemsize, "the FastRP iterates")
    blocks = list(graph.cost_blocks(plan.row_cost, plan.entry_cost, budget - plan.fixed))
    exponents = None
    if normalization_strength != 0:
        exponents = degree_exponents(graph.degrees_log2(), float(normalization_strength), dtype, rescale)
    if out is None:
        out = np.lib.format.open_memmap(os.path.join(os.fspath(folder), "embedding.npy"), mode="w+",
                                        dtype=_numpy_dtype(dtype), shape=(n, d))
    work = tempfile.mkdtemp(dir=os.fspath(folder), prefix=".fastrp-iterates-")
    try:
        iterates = [np.memmap(os.path.join(work, f"iterate-{number}.bin"), dtype=_numpy_dtype(dtype), mode="w+",
                              shape=(n, d)) for number in (0, 1)]
        weights = [float(self_influence)] + [float(weight) for weight in iteration_weights]
        spec = _Spec(graph, blocks, weights, normalize, device, dtype, _new_buffer(blocks, d, dtype, device), verbose)
        _write_initial(spec, iterates[0], out, exponents, density, seed, sampler)
        history = _propagate(spec, iterates, out)
        del iterates
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not any(weights):
        _zero(out, blocks)
    if standardize:
        mean, scale = _standardize_blocks(out, spec, hint)
    else:
        _check_finite_blocks(out, spec, hint)
        mean, scale = np.zeros(d, dtype=_numpy_dtype(dtype)), np.ones(d, dtype=_numpy_dtype(dtype))
    if isinstance(out, np.memmap):
        out.flush()
    return OutOfCoreResult(out, mean, scale, history)


class _Spec(NamedTuple):
    graph: DiskGraph
    blocks: list
    weights: list
    normalize: bool
    device: torch.device
    dtype: torch.dtype
    buffer: torch.Tensor  # rows of the largest block x n_components: every dense block lives in it
    verbose: int


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


def _new_buffer(blocks: list, n_components: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """One dense buffer for the largest block, reused by every block and pass (no allocation churn
    that the C library would keep resident)."""
    rows = max((stop - start for start, stop in blocks), default=0)
    return torch.empty((rows, n_components), dtype=dtype, device=device)


def _load(array: np.ndarray, start: int, stop: int, buffer: torch.Tensor) -> torch.Tensor:
    """Rows ``start:stop`` of ``array`` (any strides, e.g. a field of a structured memmap) into ``buffer``."""
    view = buffer[:stop - start]
    if view.device.type == "cpu":
        np.copyto(view.numpy(), array[start:stop], casting="same_kind")
    else:
        view.copy_(torch.from_numpy(np.ascontiguousarray(array[start:stop], dtype=_numpy_dtype(view.dtype))))
    return view


def _write(array: np.ndarray, start: int, block: torch.Tensor) -> None:
    array[start:start + block.shape[0]] = backend.to_numpy(block)


def _write_initial(spec: _Spec, first: np.ndarray, out: np.ndarray, exponents: Optional[np.ndarray],
                   density: Optional[float], seed: int, sampler: str) -> None:
    """R into ``first`` block by block; ``self_influence * N(R)`` into ``out`` when that weight is set."""
    n, d = first.shape
    for start, stop in progress(spec.blocks, spec.verbose, desc="FastRP, initial vectors"):
        rows = np.arange(start, stop, dtype=np.int64)
        block = initial_rows(rows, n, d, density, seed, sampler,
                             None if exponents is None else exponents[start:stop], spec.dtype, spec.device,
                             out=spec.buffer[:stop - start])
        _write(first, start, block)
        if spec.weights[0] != 0.0:
            _write(out, start, add_normalized_(None, block, spec.weights[0], spec.normalize))


def _propagate(spec: _Spec, iterates: list, out: np.ndarray) -> list:
    """The products ``U_i = M U_{i-1}``, each block's weighted term added into ``out``; the history."""
    history, started = [], spec.weights[0] != 0.0
    n = iterates[0].shape[0]
    for step in range(1, len(spec.weights)):
        began = time.perf_counter()
        previous, current = iterates[(step - 1) % 2], iterates[step % 2]
        previous_tensor = torch.from_numpy(previous)  # over the memory map: touched rows are paged in
        current_tensor = torch.from_numpy(current)
        weight, norm_sum = spec.weights[step], 0.0
        for start, stop in progress(spec.blocks, spec.verbose, desc=f"FastRP, product {step}"):
            transition = transition_rows(spec.graph.row_block(start, stop), spec.device, spec.dtype)
            if spec.device.type == "cpu":
                # addmm with beta=0 writes straight into the memory map; mm would allocate the block first.
                iterate = current_tensor[start:stop]
                torch.addmm(iterate, transition, previous_tensor, beta=0, out=iterate)
            else:
                iterate = _gathered_product(transition, previous, spec, sparse_dense_product)
                _write(current, start, iterate)
            norm_sum += float(torch.linalg.vector_norm(iterate, dim=1).double().sum())
            if weight != 0.0:
                if started:
                    total = add_normalized_(_load(out, start, stop, spec.buffer), iterate, weight, spec.normalize)
                else:
                    total = add_normalized_(None, spec.buffer[:stop - start].copy_(iterate), weight, spec.normalize)
                _write(out, start, total)
            del transition, iterate
        started = started or weight != 0.0
        del previous_tensor, current_tensor
        history.append({"iteration": step, "weight": weight, "mean_row_norm": norm_sum / n,
                        "seconds": time.perf_counter() - began})
    return history


def transition_rows(rows: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Rows of ``D^-1 A`` from the same rows of ``A`` (any number of rows, all columns), as a torch CSR
    tensor: :func:`graphkit.fastrp.transition_tensor`'s values, which depend on the row alone
    (overflow-safe degrees, zero rows for nodes without out-edges)."""
    transition = normalized_adjacency(rows, "random_walk")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        tensor = torch.sparse_csr_tensor(
            torch.from_numpy(transition.indptr.astype(np.int64, copy=False)),
            torch.from_numpy(transition.indices.astype(np.int64, copy=False)),
            torch.from_numpy(transition.data).to(dtype), size=transition.shape, check_invariants=False,
        )
    return tensor.to(device)


def _gathered_product(transition: torch.Tensor, previous: np.ndarray, spec: _Spec, product) -> torch.Tensor:
    """``transition @ previous`` off the CPU: only the rows of ``previous`` the block uses are moved."""
    columns = transition.col_indices()
    used, local = torch.unique(columns, return_inverse=True)
    rows = torch.from_numpy(np.asarray(previous[used.cpu().numpy()])).to(spec.device)
    with_local = torch.sparse_csr_tensor(transition.crow_indices(), local, transition.values(),
                                         size=(transition.shape[0], len(used)), check_invariants=False)
    return product(with_local, rows, out=spec.buffer[:transition.shape[0]].clone())


def _zero(out: np.ndarray, blocks: list) -> None:
    for start, stop in blocks:
        out[start:stop] = 0


def _check_finite(block: torch.Tensor, hint: Optional[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest and largest entry of ``block``; raises NonFiniteResultError naming the count of
    NaN and infinite entries when there is one (NaN propagates through the extremes)."""
    low, high = torch.aminmax(block) if block.numel() else (block.new_zeros(()), block.new_zeros(()))
    if not bool(torch.isfinite(low) & torch.isfinite(high)):
        check_finite_result(block, "FastRP embedding", hint=hint)
    return low, high


def _check_finite_blocks(out: np.ndarray, spec: _Spec, hint: Optional[str]) -> None:
    for start, stop in spec.blocks:
        _check_finite(_load(out, start, stop, spec.buffer), hint)


def _standardize_blocks(out: np.ndarray, spec: _Spec, hint: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
    """Scale each column of ``out`` to zero mean and unit variance in place, as
    :func:`graphkit._fastrp_core.standardize_` does in memory, in three passes over the blocks."""
    n, d = out.shape
    dtype, device = spec.dtype, spec.device
    sums = torch.zeros(d, dtype=torch.float64, device=device)
    magnitude = torch.zeros((), dtype=dtype, device=device)
    for start, stop in progress(spec.blocks, spec.verbose, desc="FastRP, column means"):
        block = _load(out, start, stop, spec.buffer)
        low, high = _check_finite(block, hint)
        magnitude = torch.maximum(magnitude, torch.maximum(low.abs(), high.abs()))
        for piece in block.split(_SQUARE_ROWS):  # float64 copies of a few rows at a time
            sums.add_(piece.double().sum(dim=0))
    mean = (sums / n).to(dtype)
    squares = torch.zeros(d, dtype=torch.float64, device=device)
    for start, stop in progress(spec.blocks, spec.verbose, desc="FastRP, column scales"):
        block = _load(out, start, stop, spec.buffer).sub_(mean)
        for piece in block.split(_SQUARE_ROWS):  # float64 copies of a few rows at a time
            squares.add_(piece.double().square_().sum(dim=0))
    scale = standard_scale(squares, n, magnitude, dtype)
    check_finite_result(scale, "FastRP column scale", hint=hint)
    for start, stop in progress(spec.blocks, spec.verbose, desc="FastRP, standardising"):
        _write(out, start, _load(out, start, stop, spec.buffer).sub_(mean).div_(scale))
    return backend.to_numpy(mean), backend.to_numpy(scale)
