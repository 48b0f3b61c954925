"""Row-local pieces of FastRP, shared by the in-memory, the out-of-core and the partitioned fit.

Every step of FastRP except the products with the transition matrix works on whole rows and
needs, from the other rows, only a few global numbers (the extremes of the degree factors, the
column sums). So any subset of the rows (a block on disk, the rows a process owns) can be
computed here from the global node numbering alone, and gives the rows of the in-memory fit:

- :func:`draw_projection_entries` (and :func:`sparse_projection`, scikit-learn's draw): the very
  sparse random projection R;
- :func:`sparse_dense_product`: the product with the transition matrix, in a fixed order on CUDA
  in deterministic mode;
- :func:`initial_rows`: the rows of R (scaled by ``degree ** beta``) for given global node
  numbers; a node's vector depends only on the seed, the number of nodes and its place in the
  sorted node ids, never on the layout of the computation;
- :func:`degree_exponents` and :func:`log2_row_sums`: the degree factors, with the global
  extremes passed in when the rows are spread over processes;
- :func:`add_normalized_`: one term of the weighted sum of row-normalised iterates;
- :func:`standard_scale`: the column scale of the standardisation from summed squares.
"""

from __future__ import annotations

from typing import Any, Optional

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import DataDimensionalityWarning
from sklearn.random_projection import SparseRandomProjection

from graphkit.ops import rows_scaled_by_powers_of_two
from tensorkit.validation import NonFiniteResultError


def sparse_projection(n_rows: int, n_components: int, density: Optional[float], seed: int) -> sp.csr_matrix:
    """The very sparse random projection matrix R (``n_rows`` x ``n_components``), drawn by scikit-learn.

    Exactly what :class:`sklearn.random_projection.SparseRandomProjection` draws as its
    ``components_`` for ``n_features=n_rows`` with ``random_state=seed``, transposed: each entry is
    ``±sqrt(1 / (s * n_components))`` with probability ``s / 2`` each and 0 otherwise, where the
    density ``s`` defaults to ``1 / sqrt(n_rows)`` (Li, Hastie and Church, 2006). This is the
    matrix of the authors' code; :func:`draw_projection_entries` draws the same law faster.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_rows, n_components), float64
    """
    projector = SparseRandomProjection(
        n_components=n_components, density="auto" if density is None else density, random_state=seed
    )
    with warnings.catch_warnings():
        # Fewer nodes than dimensions is fine for an embedding; sklearn warns for projections.
        warnings.simplefilter("ignore", DataDimensionalityWarning)
        projector.fit(sp.csr_matrix((1, n_rows)))
    return sp.csr_matrix(projector.components_.T)


def draw_projection_entries(
    n_rows: int, n_components: int, density: Optional[float], seed: int, sampler: str = "torch"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices, column indices and values of a very sparse random projection, on the CPU.

    Every entry is non-zero independently with probability ``s`` (default ``1 / sqrt(n_rows)``),
    with value ``±sqrt(1 / (s * n_components))`` and a fair sign: the law of
    :class:`~sklearn.random_projection.SparseRandomProjection`.

    ``sampler="sklearn"`` takes scikit-learn's own draw (see :func:`sparse_projection`), which
    reproduces the authors' matrix for the same seed but loops in Python over the columns.
    ``sampler="torch"`` draws the same law in a few vectorised steps: the gaps between successive
    non-zeros of the flattened matrix are independent geometric variables, so their cumulative
    sums give the positions; a ``torch.Generator`` seeded with ``seed`` draws them on the CPU, so
    every device gets the same matrix.

    Returns
    -------
    rows, cols : torch.Tensor of int64
    values : torch.Tensor of float64
    """
    density = 1.0 / np.sqrt(n_rows) if density is None else float(density)
    if sampler == "sklearn":
        coo = sparse_projection(n_rows, n_components, density, seed).tocoo()
        return (torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64)),
                torch.from_numpy(coo.data))
    if sampler != "torch":
        raise ValueError(f"sampler must be 'torch' or 'sklearn'; got {sampler!r}")
    generator = torch.Generator().manual_seed(seed)
    size = n_rows * n_components
    if density >= 1.0:
        positions = torch.arange(size)
    else:
        expected = size * density
        chunk = int(expected + 6 * np.sqrt(expected) + 16)
        pieces, end = [], -1
        while end < size - 1:
            gaps = torch.empty(chunk, dtype=torch.float64).geometric_(density, generator=generator).long()
            piece = gaps.cumsum(0) + end
            pieces.append(piece)
            end = int(piece[-1])
        positions = torch.cat(pieces)
        positions = positions[positions < size]
    signs = torch.randint(0, 2, (positions.numel(),), generator=generator, dtype=torch.float64).mul_(2).sub_(1)
    values = signs.mul_(np.sqrt(1.0 / (density * n_components)))
    return torch.div(positions, n_components, rounding_mode="floor"), positions % n_components, values


def log2_row_sums(adjacency: sp.csr_matrix, weighted: bool) -> np.ndarray:
    """``log2`` of each row's degree as :meth:`graphkit.Graph.degrees` counts it (-inf for degree 0).

    Unweighted: the number of stored entries. Weighted: the sum of the row, over rows scaled by
    powers of two first, so that a degree beyond the largest float (weights near 1e308) still
    has its logarithm.
    """
    if weighted:
        scaled, exponents = rows_scaled_by_powers_of_two(adjacency)
        degree = np.asarray(scaled.sum(axis=1), dtype=np.float64).ravel()
    else:
        degree, exponents = np.diff(adjacency.indptr).astype(np.float64), 0
    with np.errstate(divide="ignore"):
        return np.log2(degree) + exponents


def exponent_extremes(log2_degrees: np.ndarray, beta: float) -> tuple[float, float]:
    """``(smallest, largest)`` ``log2`` degree factor of these rows (0 for none), to combine over processes."""
    exponents = np.where(np.isfinite(log2_degrees), beta * log2_degrees, 0.0)
    if not exponents.size:
        return 0.0, 0.0
    return float(exponents.min()), float(exponents.max())


def degree_exponents(log2_degrees: np.ndarray, beta: float, dtype: torch.dtype, rescale: bool,
                     extremes: Optional[tuple[float, float]] = None) -> np.ndarray:
    """``log2`` of the degree factors ``degree ** beta`` (factor 1 for degree 0), checked to fit ``dtype``.

    The factors are computed in float64 from the logarithms, so tiny or huge degrees do not
    overflow on the way. They must lie within ``2 ** ±limit`` with ``limit`` a quarter of
    ``dtype``'s exponent range (32 for float32, 256 for float64), so that the scaled vectors, their
    squares and sums stay finite and normal. Where they do not and ``rescale`` is true (the
    embedding does not depend on a common factor of all vectors), they are all divided by the
    power of two nearest the geometric mean of the largest and the smallest factor.

    ``extremes`` are the smallest and largest exponent over all nodes (see
    :func:`exponent_extremes`) when ``log2_degrees`` holds only some of them; default: these rows'.

    Raises
    ------
    NonFiniteResultError
        If the factors span more than ``2 ** (2 * limit)``, or, without ``rescale``, lie outside
        ``2 ** ±limit``.
    """
    exponents = np.where(np.isfinite(log2_degrees), beta * log2_degrees, 0.0)
    low, high = exponent_extremes(log2_degrees, beta) if extremes is None else extremes
    limit = np.log2(torch.finfo(dtype).max) / 4
    if max(abs(low), abs(high)) <= limit:
        return exponents
    shift = np.round((high + low) / 2)
    if rescale and max(abs(high - shift), abs(low - shift)) <= limit:
        return exponents - shift
    name = str(dtype).replace("torch.", "")
    reach = (f"a span beyond the 2^{2 * limit:g} that {name} holds safely" if rescale else
             f"beyond the 2^{-limit:g} to 2^{limit:g} that {name} holds safely (the embedding depends on a common "
             "factor of the vectors here: node features, or neither normalize nor standardize)")
    raise NonFiniteResultError(
        f"normalization_strength={beta}: degree ** normalization_strength ranges from 2^{low:.4g} to "
        f"2^{high:.4g} over the nodes, {reach}, so the embedding would overflow or vanish; lower "
        "|normalization_strength| or bring the edge weights (degrees) closer to 1"
        + ("" if dtype == torch.float64 else ", or use dtype='float64'")
    )


def initial_rows(rows: np.ndarray, n_nodes: int, n_columns: int, density: Optional[float], seed: int,
                 sampler: str, exponents: Optional[np.ndarray], dtype: torch.dtype, device: Any,
                 out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The rows ``rows`` (sorted global node numbers) of R, each scaled by ``2 ** exponents``.

    R is the ``n_nodes x n_columns`` very sparse projection of
    :func:`graphkit.fastrp.draw_projection_entries` for ``seed``; its ``d * sqrt(n_nodes)``
    non-zeros (default density) are drawn whole and those of ``rows`` kept, so every process and
    every block sees the same matrix. ``exponents`` (one per row, or None for factor 1) are the
    :func:`degree_exponents` of these rows. Written into ``out`` (zeroed first) when given.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if out is None:
        out = torch.zeros((len(rows), n_columns), dtype=dtype, device=device)
    else:
        out.zero_()
    entry_rows, cols, values = draw_projection_entries(n_nodes, n_columns, density, seed, sampler)
    entry_rows = entry_rows.numpy()
    local = np.searchsorted(rows, entry_rows)
    local[local >= len(rows)] = 0
    mine = (rows[local] == entry_rows) if len(rows) else np.zeros(len(entry_rows), dtype=bool)
    local, values = local[mine], values[torch.from_numpy(mine)]
    if exponents is not None:
        values = values * torch.from_numpy(np.exp2(np.asarray(exponents, dtype=np.float64)[local]))
    out[torch.from_numpy(local).to(out.device), cols[torch.from_numpy(mine)].to(out.device)] = values.to(
        device=out.device, dtype=out.dtype)
    return out


def sparse_dense_product(transition: torch.Tensor, dense: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = transition @ dense``, in a fixed summation order when PyTorch's deterministic mode is on.

    cuSPARSE's CSR product sums a row's terms in an order that varies between calls (repeated
    products differed by one ulp on an H200), and ``torch.use_deterministic_algorithms(True)`` does
    not cover it; the standardisation can magnify such differences in a near-constant column. So on
    CUDA in deterministic mode the rows are summed by :func:`segment_product` instead (about 10x
    slower there than cuSPARSE: 1.3 against 0.14 ms for 400k non-zeros x 256 columns). The CPU
    product is deterministic already.
    """
    if dense.device.type != "cpu" and torch.are_deterministic_algorithms_enabled():
        return segment_product(transition, dense, out)
    return torch.mm(transition, dense, out=out)


def segment_product(transition: torch.Tensor, dense: torch.Tensor, out: torch.Tensor,
                    max_elements: int = 1 << 24) -> torch.Tensor:
    """``out = transition @ dense`` for a CSR ``transition``, each row summed by ``torch.segment_reduce``.

    The terms ``value * dense[column]`` are formed over chunks of rows holding at most about
    ``max_elements`` of them (one row at least), so the work space stays bounded on large graphs.
    """
    crow, columns, values = transition.crow_indices(), transition.col_indices(), transition.values()
    bounds = crow.cpu().long()
    n_rows, width = out.shape
    per_chunk = max(max_elements // max(width, 1), 1)
    row = 0
    while row < n_rows:
        stop = int(torch.searchsorted(bounds, bounds[row] + per_chunk, right=True)) - 1
        stop = min(max(stop, row + 1), n_rows)
        low, high = int(bounds[row]), int(bounds[stop])
        terms = values[low:high, None] * dense[columns[low:high]]
        out[row:stop] = torch.segment_reduce(terms, "sum", offsets=crow[row:stop + 1] - low, axis=0, initial=0)
        row = stop
    return out


def row_norms(matrix: torch.Tensor) -> torch.Tensor:
    """L2 norm of each row as a column, with 1 for all-zero rows (as ``sklearn.preprocessing.normalize``)."""
    norms = torch.linalg.vector_norm(matrix, dim=1, keepdim=True)
    return norms.masked_fill_(norms == 0, 1.0)


def add_normalized_(total: Optional[torch.Tensor], iterate: torch.Tensor, weight: float,
                    normalize: bool) -> torch.Tensor:
    """``total + weight * N(iterate)`` (``N``: per-row L2 normalisation, or the identity), in place.

    With ``total`` None the term is written into ``iterate`` itself and returned.
    """
    if normalize:
        if total is None:
            return iterate.div_(row_norms(iterate)).mul_(weight)
        return total.addcdiv_(iterate, row_norms(iterate), value=weight)
    return iterate.mul_(weight) if total is None else total.add_(iterate, alpha=weight)


def standard_scale(squares: torch.Tensor, n_rows: int, magnitude: Any, dtype: torch.dtype) -> torch.Tensor:
    """The column scale of the standardisation from the float64 sums of centred squares.

    The population standard deviation, or 1 for a column whose deviation is at most
    ``10 * eps`` (of ``dtype``) times ``magnitude``, the largest absolute entry of the whole
    embedding before centring (see :func:`graphkit._fastrp_core.standardize_`).
    """
    scale = (squares / max(n_rows, 1)).sqrt().to(dtype)
    return scale.masked_fill_(scale <= 10 * torch.finfo(dtype).eps * magnitude, 1.0)
