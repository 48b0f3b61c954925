"""Conditional-EP updates of FunBaT: the messages to each mode, the core and the noise.

Model (Fang et al., ICLR 2024, plus an intercept):
``yₙ = ⟨W, u¹(t¹ₙ) ∘ ⋯ ∘ uᴷ(tᴷₙ)⟩ + b + εₙ``, ``εₙ ~ N(0, 1/τ)``. One convention for the core
everywhere: ``vec(W)`` is the C-order (row-major) flattening of the ``R₁ x ⋯ x R_K`` core and the
entry's feature vector is ``φₙ = u¹ ⊗ ⋯ ⊗ uᴷ`` (``np.kron`` order, mode 1 slowest), so
``⟨W, u¹ ∘ ⋯ ∘ uᴷ⟩ = vec(W)ᵀ φₙ``. The mode-``k`` unfolding ``W₍ₖ₎`` is
``moveaxis(W, k, 0).reshape(R_k, -1)``, whose columns run over the other modes in the same order as
``r = ⊗_{j≠k} uʲ``, so ``vec(W)ᵀ φ = uᵏᵀ W₍ₖ₎ r``. The CP variant (``cp=True``) has a diagonal
core ``diag(λ)``: ``φ = u¹ ⊙ ⋯ ⊙ uᴷ`` and ``vec(W) = λ``. The core and the intercept share one
Gaussian posterior over ``w = [vec(W); b]``, with ``φ' = [φ; 1]``.

With the factorised posterior ``q(w) Πₖ q(Uᵏ) q(τ)``, the expected log-likelihood of entry ``n``
is quadratic in ``uᵏ(tᵏₙ)`` with precision ``E[τ] E[W₍ₖ₎ r rᵀ W₍ₖ₎ᵀ]`` and linear term
``E[τ] E[(yₙ - b) W₍ₖ₎] E[r]``; conditional EP (and variational message passing, which it
coincides with here) sends these as Gaussian messages. They are summed per distinct coordinate,
and the sums only need

    ``Gᵏᵢ = Σ_{n: tᵏₙ = tᵏᵢ} ⊗_{j≠k} E[uʲuʲᵀ]``,  ``gᵏᵢ = Σ yₙ ⊗_{j≠k} E[uʲ]``,
    ``hᵏᵢ = Σ ⊗_{j≠k} E[uʲ]``

(:func:`mode_sums`; entries are grouped by their coordinate tuples and reduced mode by mode, in
chunks, so memory is ``O(U_k R^{2(K-1)})`` plus a fixed chunk, never per entry), then
``Λᵏᵢ = E[τ] Σ_{cd} E[W W]_{(a c),(b d)} Gᵏᵢ[c, d]`` and
``ηᵏᵢ = E[τ] (E[W₍ₖ₎] gᵏᵢ - E[b W₍ₖ₎] hᵏᵢ)`` (:func:`site_parameters`). The core's statistics
``Σₙ E[φ'φ'ᵀ]`` and ``Σₙ yₙ E[φ']`` come from any mode's sums and its moments the same way, in
``O(R^{2K})`` memory (:func:`core_statistics`).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple, Optional, Sequence

import torch

__all__ = [
    "CoreStatistics",
    "SumPlan",
    "make_sum_plan",
    "core_posterior",
    "core_statistics",
    "entry_means",
    "expected_squared_error",
    "gaussian_kl",
    "gamma_kl",
    "mode_sums",
    "predictive_moments",
    "site_parameters",
]

CHUNK_ELEMENTS = 1 << 21
"""Elements per chunk of per-entry products (16 MiB in float64)."""


def _kron_rows(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Row-wise Kronecker product of ``(c, a)`` and ``(c, b)``, or of ``(c, a, a)`` and ``(c, b, b)``."""
    c = left.shape[0]
    if left.ndim == 2:
        return (left[:, :, None] * right[:, None, :]).reshape(c, -1)
    a, b = left.shape[1], right.shape[1]
    return (left[:, :, None, :, None] * right[:, None, :, None, :]).reshape(c, a * b, a * b)


def _chunk(n_per_row: int, chunk_elements: Optional[int]) -> int:
    """Rows per chunk so that a chunk holds about ``chunk_elements`` (default :data:`CHUNK_ELEMENTS`) numbers."""
    limit = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    return max(1, limit // max(1, n_per_row))


class SumPlan(NamedTuple):
    """How :func:`mode_sums` groups the entries for one mode (built once per fit by :func:`make_sum_plan`).

    The entries are grouped by their coordinates in ``mode`` and, successively, in the other modes
    ``order[0], order[1], ...``: ``Gᵏᵢ = Σ_{a} M_{o₁}[a] ⊗ (Σ_{b} M_{o₂}[b] ⊗ (⋯))`` over the
    distinct coordinate tuples present, so a dense-ish tensor costs ``O(#pairs R⁴ + n R²)`` instead
    of ``O(n R⁴)`` (three modes).

    Attributes
    ----------
    mode : int
    order : tuple of int
        The other modes, in the order they are contracted (outermost first).
    entry_group : (n,) int64 tensor
        Group of each entry at the finest level, keyed by ``(mode, order[:-1])`` coordinates.
    levels : list of (parent, coord, n_parents)
        From the finest level to the coarsest: for each group of level ``L``, its group at level
        ``L - 1`` and its coordinate in mode ``order[L - 1]`` (int64 tensors), and the number of
        groups at level ``L - 1``; the coarsest level's groups are the distinct coordinates of
        ``mode``.
    size : int
        ``U_k``, the number of distinct coordinates of ``mode``.
    cache : dict
        Filled by :func:`mode_sums`: the finest level as sparse (group x coordinate) matrices of
        counts and of summed targets, so that level costs two sparse products per call.
    """

    mode: int
    order: tuple
    entry_group: torch.Tensor
    levels: list
    size: int
    cache: Optional[dict] = None


def make_sum_plan(index: Sequence, sizes: Sequence[int], mode: int, device=None) -> SumPlan:
    """Group the entries for :func:`mode_sums` (greedy: the mode giving the fewest groups first)."""
    import numpy as np

    index = [np.asarray(i, dtype=np.int64) for i in index]
    K = len(index)
    remaining = [j for j in range(K) if j != mode]
    order: list = []
    keys = index[mode].copy()
    group_keys = [keys]  # entry-level key of each level 0, 1, ...
    while len(remaining) > 1:
        best = None
        for j in remaining:
            candidate = keys * sizes[j] + index[j]
            count = np.unique(candidate).shape[0]
            if best is None or count < best[0]:
                best = (count, j, candidate)
        _, j, candidate = best
        _, keys = np.unique(candidate, return_inverse=True)  # re-number densely to keep keys small
        keys = keys.reshape(-1)
        order.append(j)
        remaining.remove(j)
        group_keys.append(keys)
    order.extend(remaining)
    levels = []
    # group_keys[L] numbers the groups of level L (L = 0: the coordinates of `mode`)
    for L in range(len(group_keys) - 1, 0, -1):
        fine, coarse = group_keys[L], group_keys[L - 1]
        n_groups = int(fine.max()) + 1
        parent = np.zeros(n_groups, dtype=np.int64)
        coord = np.zeros(n_groups, dtype=np.int64)
        parent[fine] = coarse
        coord[fine] = index[order[L - 1]]
        levels.append((torch.as_tensor(parent, device=device), torch.as_tensor(coord, device=device),
                       int(coarse.max()) + 1))
    return SumPlan(mode, tuple(order), torch.as_tensor(group_keys[-1], device=device), levels, int(sizes[mode]), {})


def mode_sums(means: Sequence[torch.Tensor], seconds: Sequence[torch.Tensor], index: Sequence[torch.Tensor],
              y: torch.Tensor, plan: SumPlan, cp: bool, chunk_elements: Optional[int] = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``Gᵏ``, ``gᵏ`` and ``hᵏ``: the other modes' moments summed per distinct coordinate of ``plan.mode``.

    Parameters
    ----------
    means : list of (U_j, R_j) tensors
        ``E[uʲ]`` at each distinct coordinate of mode ``j``.
    seconds : list of (U_j, R_j, R_j) tensors
        ``E[uʲuʲᵀ]``.
    index : list of (n,) int64 tensors
        The distinct coordinate of each entry in each mode.
    y : (n,) tensor
    plan : SumPlan
        From :func:`make_sum_plan` for this mode.
    cp : bool
        Hadamard (CP) instead of Kronecker (Tucker) products.
    chunk_elements : int, optional
        Largest number of elements of a per-group product held at once (default
        :data:`CHUNK_ELEMENTS`).

    Returns
    -------
    G : (U_k, Q, Q) tensor
        ``Q = Π_{j≠k} R_j`` (Tucker, Kronecker factors in increasing mode order) or ``R`` (CP); for
        one mode, ``Q = 1`` and ``G`` counts entries.
    g : (U_k, Q) tensor
    h : (U_k, Q) tensor
        ``Σ_{n: tᵏₙ = tᵏᵢ} ⊗_{j≠k} E[uʲ]`` (unweighted; for the intercept).
    """
    like = means[plan.mode]
    if not plan.order:
        G = like.new_zeros((plan.size, 1, 1))
        G.index_add_(0, index[plan.mode], like.new_ones((y.shape[0], 1, 1)))
        g = like.new_zeros((plan.size, 1))
        g.index_add_(0, index[plan.mode], y[:, None])
        return G, g, G[:, :, 0].clone()
    last = plan.order[-1]
    n_groups = plan.levels[0][0].shape[0] if plan.levels else plan.size
    R_last = means[last].shape[1]
    G = like.new_zeros((n_groups, R_last, R_last))
    g = like.new_zeros((n_groups, R_last))
    h = like.new_zeros((n_groups, R_last))
    if chunk_elements is None and plan.cache is not None:
        counts, weighted = _finest_level_matrices(plan, index[last], y, n_groups, means[last].shape[0])
        U_last = means[last].shape[0]
        packed = counts @ torch.cat([seconds[last].reshape(U_last, R_last * R_last), means[last]], dim=1)
        G = packed[:, :R_last * R_last].reshape(n_groups, R_last, R_last)
        h = packed[:, R_last * R_last:]
        g = weighted @ means[last]
    else:
        n = y.shape[0]
        step = _chunk(R_last * R_last, chunk_elements)
        for start in range(0, n, step):
            sl = slice(start, min(n, start + step))
            rows, cols = plan.entry_group[sl], index[last][sl]
            G.index_add_(0, rows, seconds[last][cols])
            first = means[last][cols]
            g.index_add_(0, rows, first * y[sl, None])
            h.index_add_(0, rows, first)
    for (parent, coord, n_coarse), j in zip(plan.levels, reversed(plan.order[:-1])):
        width = seconds[j].shape[1] * G.shape[1]
        if cp:
            width = G.shape[1]
        coarse_G = like.new_zeros((n_coarse, width, width))
        coarse_g = like.new_zeros((n_coarse, width))
        coarse_h = like.new_zeros((n_coarse, width))
        step = _chunk(width * width, chunk_elements)
        for start in range(0, parent.shape[0], step):
            sl = slice(start, min(parent.shape[0], start + step))
            s_j, m_j = seconds[j][coord[sl]], means[j][coord[sl]]
            if cp:
                coarse_G.index_add_(0, parent[sl], s_j * G[sl])
                coarse_g.index_add_(0, parent[sl], m_j * g[sl])
                coarse_h.index_add_(0, parent[sl], m_j * h[sl])
            else:
                coarse_G.index_add_(0, parent[sl], _kron_rows(s_j, G[sl]))
                coarse_g.index_add_(0, parent[sl], _kron_rows(m_j, g[sl]))
                coarse_h.index_add_(0, parent[sl], _kron_rows(m_j, h[sl]))
        G, g, h = coarse_G, coarse_g, coarse_h
    if not cp and len(plan.order) > 1:
        ranks = [means[j].shape[1] for j in plan.order]
        G, g = _canonical_order(G, g, ranks, plan.order)
        _, h = _canonical_order(G, h, ranks, plan.order, matrix=False)
    return G, g, h


def _finest_level_matrices(plan: SumPlan, last_index: torch.Tensor, y: torch.Tensor, n_groups: int,
                           n_last: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse ``(groups x U_last)`` matrices: entries per (group, coordinate), and their summed ``y``.

    Built once per plan and target (the cache holds the target itself, so a new target rebuilds).
    """
    cached = plan.cache.get("finest")
    if cached is not None and cached[0] is y and cached[1] is last_index:
        return cached[2], cached[3]
    keys = plan.entry_group.to(y.device) * n_last + last_index
    unique, inverse = torch.unique(keys, return_inverse=True)
    ones = torch.ones_like(y)
    count = torch.zeros(unique.shape[0], dtype=y.dtype, device=y.device).index_add_(0, inverse, ones)
    total = torch.zeros(unique.shape[0], dtype=y.dtype, device=y.device).index_add_(0, inverse, y)
    rows, cols = unique // n_last, unique % n_last
    # CSR rows come out sorted because the keys are sorted by group first
    crow = torch.zeros(n_groups + 1, dtype=torch.int64, device=y.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_groups), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        counts = torch.sparse_csr_tensor(crow, cols, count, (n_groups, n_last))
        weighted = torch.sparse_csr_tensor(crow, cols, total, (n_groups, n_last))
    plan.cache["finest"] = (y, last_index, counts, weighted)
    return counts, weighted


def _canonical_order(G: torch.Tensor, g: torch.Tensor, ranks: Sequence[int], order: Sequence[int],
                     matrix: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Kronecker factors in ``order`` → in increasing mode order."""
    perm = sorted(range(len(order)), key=lambda a: order[a])
    if perm == list(range(len(order))):
        return G, g
    U, Q = g.shape
    m = len(order)
    g = g.reshape([U] + list(ranks)).permute([0] + [1 + a for a in perm]).reshape(U, Q)
    if not matrix:
        return G, g
    G = G.reshape([U] + list(ranks) + list(ranks))
    G = G.permute([0] + [1 + a for a in perm] + [1 + m + a for a in perm]).reshape(U, Q, Q)
    return G, g


def _mode_first(tensor: torch.Tensor, ranks: Sequence[int], mode: int) -> torch.Tensor:
    """``(P,)`` or ``(P, P)`` in C order over ``ranks`` → mode ``mode`` first: ``(R_k, Q)`` / ``(R_k, Q, R_k, Q)``."""
    K = len(ranks)
    Rk, Q = ranks[mode], math.prod(ranks) // ranks[mode]
    if tensor.ndim == 1:
        return torch.movedim(tensor.reshape(ranks), mode, 0).reshape(Rk, Q)
    full = tensor.reshape(tuple(ranks) + tuple(ranks))
    full = torch.movedim(full, (mode, K + mode), (0, K))
    return full.reshape(Rk, Q, Rk, Q)


def _mode_back(tensor: torch.Tensor, ranks: Sequence[int], mode: int) -> torch.Tensor:
    """Inverse of :func:`_mode_first`."""
    K = len(ranks)
    P = math.prod(ranks)
    others = [ranks[j] for j in range(K) if j != mode]
    if tensor.ndim == 2:  # (R_k, Q)
        return torch.movedim(tensor.reshape([ranks[mode]] + others), 0, mode).reshape(P)
    full = tensor.reshape([ranks[mode]] + others + [ranks[mode]] + others)
    return torch.movedim(full, (0, K), (mode, K + mode)).reshape(P, P)


def site_parameters(G: torch.Tensor, g: torch.Tensor, h: torch.Tensor, core_mean: torch.Tensor,
                    core_second: torch.Tensor, ranks: Sequence[int], mode: int, cp: bool, tau: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed messages ``(Λᵏᵢ, ηᵏᵢ)`` to mode ``mode`` at each of its distinct coordinates.

    ``core_mean`` and ``core_second`` are ``E[w]`` and ``E[wwᵀ]`` of ``w = [vec(W); b]`` (``P + 1``
    numbers; ``R + 1`` for CP), ``b`` the intercept:
    ``Λᵢ = τ Σ_{cd} E[W W]_{(a c),(b d)} Gᵢ[c, d]`` and
    ``ηᵢ = τ (E[W₍ₖ₎] gᵢ - E[b W₍ₖ₎] hᵢ)``.
    """
    P = core_mean.shape[0] - 1
    M, mu, cross = core_second[:P, :P], core_mean[:P], core_second[P, :P]
    if cp:
        return tau * M[None] * G, tau * (mu[None] * g - cross[None] * h)
    precision = tau * torch.einsum("acbd,icd->iab", _mode_first(M, ranks, mode), G)
    precision = 0.5 * (precision + precision.transpose(-1, -2))
    return precision, tau * (g @ _mode_first(mu, ranks, mode).T - h @ _mode_first(cross, ranks, mode).T)


class CoreStatistics(NamedTuple):
    """Sufficient statistics of ``w = [vec(W); b]`` with ``φ' = [φ; 1]``.

    ``second = Σₙ E[φ'ₙφ'ₙᵀ]``, ``first = Σₙ yₙ E[φ'ₙ]``, ``yy = Σₙ yₙ²``.
    """

    second: torch.Tensor
    first: torch.Tensor
    yy: float


def core_statistics(G: torch.Tensor, g: torch.Tensor, h: torch.Tensor, mean: torch.Tensor, second: torch.Tensor,
                    ranks: Sequence[int], mode: int, cp: bool, y_sums: tuple) -> CoreStatistics:
    """The core's sufficient statistics from mode ``mode``'s sums and its current moments.

    ``y_sums`` is ``(n, Σ yₙ, Σ yₙ²)``.
    """
    n, y_sum, yy = y_sums
    if cp:
        S = torch.einsum("iab,iab->ab", second, G)
        s = torch.einsum("ia,ia->a", mean, g)
        t = torch.einsum("ia,ia->a", mean, h)
    else:
        S = _mode_back(torch.einsum("iab,icd->acbd", second, G), ranks, mode)
        s = _mode_back(torch.einsum("ia,ic->ac", mean, g), ranks, mode)
        t = _mode_back(torch.einsum("ia,ic->ac", mean, h), ranks, mode)
    P = s.shape[0]
    full = S.new_empty((P + 1, P + 1))
    full[:P, :P] = 0.5 * (S + S.T)
    full[:P, P] = t
    full[P, :P] = t
    full[P, P] = n
    return CoreStatistics(full, torch.cat([s, s.new_tensor([y_sum])]), yy)


def core_posterior(stats: CoreStatistics, tau: float, prior_var: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Natural parameters (precision, precision @ mean) of ``q(W)`` under the ``N(0, prior_var I)`` prior."""
    P = stats.first.shape[0]
    eye = torch.eye(P, dtype=stats.first.dtype, device=stats.first.device)
    return eye / prior_var + tau * stats.second, tau * stats.first


def expected_squared_error(stats: CoreStatistics, core_mean: torch.Tensor, core_second: torch.Tensor) -> float:
    """``Σₙ E[(yₙ - wᵀφ'ₙ)²] = Σ y² - 2 E[w]ᵀ Σ yφ' + tr(E[wwᵀ] Σ E[φ'φ'ᵀ])``."""
    value = stats.yy - 2.0 * float(core_mean @ stats.first) + float((core_second * stats.second).sum())
    return max(value, 0.0)


def entry_means(means: Sequence[torch.Tensor], index: Sequence[torch.Tensor], core_mean: torch.Tensor, cp: bool,
                chunk_elements: Optional[int] = None) -> torch.Tensor:
    """``E[w]ᵀ E[φ'ₙ]`` for every entry (the posterior mean of the noise-free value, intercept included)."""
    n = index[0].shape[0]
    P = core_mean.shape[0] - 1
    out = core_mean.new_empty(n)
    step = _chunk(P, chunk_elements)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        phi = means[0][index[0][sl]]
        for j in range(1, len(means)):
            phi = phi * means[j][index[j][sl]] if cp else _kron_rows(phi, means[j][index[j][sl]])
        out[sl] = phi @ core_mean[:P] + core_mean[P]
    return out


def predictive_moments(means: Sequence[torch.Tensor], seconds: Sequence[torch.Tensor], core_mean: torch.Tensor,
                       core_second: torch.Tensor, cp: bool, chunk_elements: Optional[int] = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``wᵀφ'`` for query entries whose per-mode moments are given row by row.

    ``Var = tr(E[wwᵀ] E[φ'φ'ᵀ]) - (E[w]ᵀ E[φ'])²`` with ``E[φφᵀ] = ⊗ₖ E[uᵏuᵏᵀ]`` (``⊙`` for CP)
    and ``φ' = [φ; 1]`` (the intercept).
    """
    n = means[0].shape[0]
    P = core_mean.shape[0] - 1
    mu_w, mu_b = core_mean[:P], core_mean[P]
    M_ww, M_wb, M_bb = core_second[:P, :P], core_second[:P, P], core_second[P, P]
    mean = core_mean.new_empty(n)
    second = core_mean.new_empty(n)
    step = _chunk(P * P, chunk_elements)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        phi, phi2 = means[0][sl], seconds[0][sl]
        for j in range(1, len(means)):
            if cp:
                phi, phi2 = phi * means[j][sl], phi2 * seconds[j][sl]
            else:
                phi, phi2 = _kron_rows(phi, means[j][sl]), _kron_rows(phi2, seconds[j][sl])
        mean[sl] = phi @ mu_w + mu_b
        second[sl] = torch.einsum("cpq,pq->c", phi2, M_ww) + 2.0 * phi @ M_wb + M_bb
    return mean, (second - mean.square()).clamp_min(0.0)


def gaussian_kl(mean: torch.Tensor, cov: torch.Tensor, prior_var: float) -> float:
    """``KL(N(mean, cov) || N(0, prior_var I))``."""
    P = mean.shape[0]
    logdet = torch.linalg.slogdet(cov)[1]
    return 0.5 * float((torch.diagonal(cov).sum() + mean.square().sum()) / prior_var - P
                       + P * math.log(prior_var) - logdet)


def gamma_kl(a: float, b: float, a0: float, b0: float) -> float:
    """``KL(Gamma(a, b) || Gamma(a0, b0))`` (shape, rate)."""
    return ((a - a0) * float(torch.special.digamma(torch.tensor(a, dtype=torch.float64))) - math.lgamma(a)
            + math.lgamma(a0) + a0 * (math.log(b) - math.log(b0)) + a * (b0 - b) / b)
