"""FastRP's functional core: the transition matrix, the propagation and the column standardisation.

Chen, Sultan, Tian, Chen and Skiena, "Fast and Accurate Network Embeddings via Very Sparse Random
Projection", CIKM 2019 (arXiv:1908.11512). :class:`graphkit.FastRP` is the estimator on top; the
functions are re-exported by :mod:`graphkit.fastrp`.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from graphkit._fastrp_rows import sparse_dense_product, standard_scale
from graphkit.ops import normalized_adjacency
from tensorkit import backend
from tensorkit.utils import progress

__all__ = ["fastrp_embed", "fastrp_iterates", "standardize_", "transition_tensor", "weighted_terms"]


def transition_tensor(adjacency: sp.spmatrix, device: Any = None, dtype: Any = None) -> torch.Tensor:
    """The random-walk transition matrix ``D^-1 A`` as a torch CSR tensor on ``device``.

    :func:`graphkit.ops.normalized_adjacency` (``kind="random_walk"``): rows of nodes without
    out-edges stay zero, weights near the largest float (1e308) do not overflow the degree, and
    the index arrays of a canonical float64 CSR ``adjacency`` are shared, not copied.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> transition_tensor(sp.csr_matrix([[0, 2.0], [1.0, 0]]), device="cpu").to_dense()
    tensor([[0., 1.],
            [1., 0.]])
    """
    transition = normalized_adjacency(adjacency, "random_walk")
    index_dtype = np.int64 if transition.indices.dtype == np.int64 or transition.indptr.dtype == np.int64 else np.int32
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        tensor = torch.sparse_csr_tensor(
            torch.from_numpy(transition.indptr.astype(index_dtype, copy=False)),
            torch.from_numpy(transition.indices.astype(index_dtype, copy=False)),
            torch.from_numpy(transition.data).to(backend.resolve_dtype(dtype)),
            size=transition.shape, check_invariants=False,
        )
    return tensor.to(backend.resolve_device("cpu" if device is None else device))


def fastrp_embed(
    transition: torch.Tensor,
    initial: torch.Tensor,
    iteration_weights: Sequence[float],
    self_influence: float = 0.0,
    normalize: bool = True,
    verbose: int = 0,
    block_columns: Optional[int] = None,
) -> tuple[torch.Tensor, list]:
    """The FastRP weighted sum of propagated random projections, before standardisation.

    Computes ``sum_i w_i * N(M^i R)`` for ``i = 1..k`` plus ``self_influence * N(R)``, where
    ``M = transition``, ``R = initial``, ``w = iteration_weights`` and ``N`` is the per-row L2
    normalisation (the identity when ``normalize=False``). Follows the authors' reference code: the
    first weight applies to ``M R``, and iterates propagate unnormalised.

    The columns of ``M^i R`` do not depend on each other, so the products run over blocks of
    ``block_columns`` columns that stay in the CPU cache through all ``k`` products (about twice
    as fast as products over the whole width on BlogCatalog); only the row norms need whole rows,
    and they are summed over the blocks. The iterates with a non-zero weight are kept until their
    norms are known, ``initial`` holding the first of them (it is overwritten). With more than
    three such iterates, a second pass recomputes the blocks instead of keeping them, so at most
    three dense ``n x d`` blocks are ever alive (two with the authors' weights ``(0, 0, 1, 6.67)``).

    Parameters
    ----------
    transition : torch.Tensor
        Sparse CSR ``n x n`` transition matrix on the device the work runs on.
    initial : torch.Tensor
        Dense ``n x d`` starting vectors R, same device; overwritten.
    iteration_weights : sequence of float
        One weight per product with ``transition``.
    self_influence : float, default=0.0
        Weight of ``N(R)`` itself.
    normalize : bool, default=True
    verbose : int, default=0
        Show a progress bar over the column blocks.
    block_columns : int, optional
        Columns per block; default 32 on the CPU and 256 on a GPU.

    Returns
    -------
    embedding : torch.Tensor
        ``n x d``, same dtype and device as ``initial`` (and its memory when possible).
    history : list of dict
        Per product: ``iteration``, ``weight`` and ``mean_row_norm`` of the raw iterate.
    """
    weights = [float(self_influence)] + [float(w) for w in iteration_weights]
    n_rows, n_columns = initial.shape
    if block_columns is None:
        block_columns = 32 if initial.device.type == "cpu" else 256
    kept = [step for step, weight in enumerate(weights) if weight != 0.0]
    squared_norms = torch.zeros((len(weights), n_rows), dtype=initial.dtype, device=initial.device)
    blocks = [(start, min(start + block_columns, n_columns)) for start in range(0, n_columns, block_columns)]
    work: dict = {}

    def block_iterates(start, stop):
        """U_0 .. U_k restricted to columns start:stop; each view is valid until the next one."""
        width = stop - start
        if width not in work:
            work[width] = (initial.new_empty((n_rows, width)), initial.new_empty((n_rows, width)))
        current, spare = work[width]
        current.copy_(initial[:, start:stop])
        yield 0, current
        for step in range(1, len(weights)):
            sparse_dense_product(transition, current, out=spare)
            current, spare = spare, current
            yield step, current

    def combine(total, iterate, step):
        """Add weight * N(iterate) to total (None: write it into iterate); returns the sum."""
        weight = weights[step]
        if normalize:
            norms = squared_norms[step].sqrt().masked_fill_(squared_norms[step] == 0, 1.0).unsqueeze(1)
            if total is None:
                return iterate.div_(norms).mul_(weight)
            return total.addcdiv_(iterate, norms, value=weight)
        return iterate.mul_(weight) if total is None else total.add_(iterate, alpha=weight)

    one_pass = len(kept) <= 3
    storage = {}
    if one_pass and kept:
        storage = {kept[0]: initial, **{step: torch.empty_like(initial) for step in kept[1:]}}
    for start, stop in progress(blocks, verbose, desc="FastRP"):
        for step, iterate in block_iterates(start, stop):
            squared_norms[step].add_(iterate.square().sum(dim=1))
            if step in storage:
                storage[step][:, start:stop] = iterate
    history = [{"iteration": step, "weight": weights[step],
                "mean_row_norm": float(squared_norms[step].sqrt().mean())} for step in range(1, len(weights))]
    if not kept:
        return initial.zero_(), history
    if one_pass:
        total = None
        for step in kept:
            total = combine(total, storage.pop(step), step)
        return total, history
    for start, stop in progress(blocks, verbose, desc="FastRP, second pass"):
        block_total = None
        for step, iterate in block_iterates(start, stop):
            if weights[step] != 0.0:
                block_total = combine(block_total, iterate.clone() if block_total is None else iterate, step)
        initial[:, start:stop] = block_total
    return initial, history


def fastrp_iterates(transition: torch.Tensor, initial: torch.Tensor, n_products: int,
                    normalize: bool = True) -> torch.Tensor:
    """The terms FastRP weighs, stacked: ``N(R), N(M R), ..., N(M^k R)`` for ``k = n_products``.

    :func:`fastrp_embed` with weights ``w`` and ``self_influence = s`` is ``s * out[0] +
    sum_i w_i * out[i]``; keeping the terms lets many weightings be tried for the price of one
    propagation (:class:`graphkit.FastRPSearchCV`). Memory: ``k + 1`` dense ``n x d`` blocks.

    Parameters
    ----------
    transition : torch.Tensor
        Sparse CSR ``n x n`` transition matrix.
    initial : torch.Tensor
        Dense ``n x d`` starting vectors R (not modified).
    n_products : int
    normalize : bool, default=True
        Divide each row of each term by its L2 norm (rows of zeros stay zero).

    Returns
    -------
    torch.Tensor of shape (n_products + 1, n, d)
    """
    terms = initial.new_empty((n_products + 1, *initial.shape))
    terms[0] = initial
    for step in range(1, n_products + 1):
        sparse_dense_product(transition, terms[step - 1], out=terms[step])
    if normalize:
        norms = torch.linalg.vector_norm(terms, dim=2, keepdim=True)
        terms.div_(norms.masked_fill_(norms == 0, 1.0))
    return terms


def weighted_terms(terms: torch.Tensor, iteration_weights: Sequence[float], self_influence: float = 0.0,
                   standardize: bool = True) -> torch.Tensor:
    """The embedding of one weighting from :func:`fastrp_iterates`' ``terms`` (a new tensor):
    ``self_influence * terms[0] + sum_i w_i * terms[i]``, standardised per column (:func:`standardize_`)
    when ``standardize``, as :func:`fastrp_embed` and the column standardisation of a fit give it."""
    total = terms[0] * float(self_influence)
    for step, weight in enumerate(iteration_weights, start=1):
        if float(weight) != 0.0:
            total.add_(terms[step], alpha=float(weight))
    if standardize:
        standardize_(total)
    return total


def standardize_(embedding: torch.Tensor, block_entries: int = 2**20) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each column to zero mean and unit (population) variance in place, as ``sklearn.preprocessing.scale``.

    The variance is summed over blocks of rows in float64 (as scikit-learn accumulates it), so
    the only temporary is one block of about ``block_entries`` entries (8 MiB), squared in place,
    and the squares of large float32 entries do not overflow.

    A column whose standard deviation is at most ``10 * eps`` (of the embedding's dtype) times the
    largest absolute entry of the embedding is constant up to rounding: it is centred but not
    scaled (scale 1), as scikit-learn's ``_handle_zeros_in_scale`` treats a standard deviation
    below ``10 * eps``. The bound is relative to the entries' magnitude because FastRP's entries
    carry rounding errors of a few ``eps`` of the terms summed into them: dividing by such a
    deviation would turn a column that is constant in exact arithmetic (e.g. on a path of three
    nodes, or a column whose terms cancel to zero) into ±1 noise, differently in float32 and
    float64. The magnitude is the whole embedding's, not the column's, since a column of
    cancelled terms is itself only rounding noise.
    """
    low, high = torch.aminmax(embedding)   # over all entries: 30x faster than per column on the CPU
    magnitude = torch.maximum(low.abs(), high.abs())
    mean = embedding.mean(dim=0)
    embedding.sub_(mean)
    squares = torch.zeros(embedding.shape[1], dtype=torch.float64, device=embedding.device)
    block_rows = max(1, block_entries // max(embedding.shape[1], 1))
    for block in embedding.split(block_rows):
        squares.add_(block.to(torch.float64, copy=True).square_().sum(dim=0))
    scale = standard_scale(squares, embedding.shape[0], magnitude, embedding.dtype)
    embedding.div_(scale)
    return mean, scale
