"""Dynamic sparse training: masks, the prune/grow schedule and budget accounting.

This module implements the training engine of Dynamic Sparse Learning (DSL; Wang, Sui, Wu, Zheng and
Xiong, "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation", WSDM 2024,
arXiv:2402.02855): a model is sparse from the first step to the last. Every sparse tensor starts with a
uniformly random set of exactly ``round(density * numel)`` active weights, weights outside that set stay
exactly zero, and every ``update_interval`` optimizer steps each tensor drops its ``k`` active weights of
smallest magnitude and activates ``k`` inactive ones with the largest gradient magnitude (RigL's rule,
Evci et al., ICML 2020), with ``k = ceil(r_t * active)`` and the update ratio ``r_t`` annealed by

    r_t = r_min + (r_0 - r_min) * (1 + cos(pi * t / T_end)) / 2,    0 <= t <= T_end

(``r_0 = update_ratio``, ``r_min = final_update_ratio``, ``T_end = end_step``; no updates after ``T_end``).

Two ways to hold a sparse tensor share the same selection code (:func:`smallest_k`, :func:`largest_k`,
:func:`split_positions`, :func:`update_count`):

- **masked** (:class:`DynamicSparsity` around any ``nn.Module`` and any torch optimizer): the parameter
  stays dense, a boolean mask zeroes its inactive entries after every step and (by a gradient hook)
  the gradient at inactive entries before the optimizer sees it, so optimizer state stays zero there.
- **memory-true** (:class:`SparseTable`, an embedding table): only the active weights exist, as a
  ``values`` parameter of exactly ``budget`` entries and sorted flat ``indices`` with a CSR row pointer;
  optimizer state lives on ``values`` only. Between updates no dense ``n x d`` parameter, gradient or
  optimizer state exists. The gradient that chooses which weights grow is needed at the inactive
  entries only: a hook records the gradients of the row blocks that the forward pass gathers during the
  steps before an update (the growth window) and sums them into one vector over the inactive entries,
  ``(1 - density) * n * d`` long; at the update it is read chunk by chunk of rows and reduced by an
  exact top-k, so the dense gradient never exists whole (except where the forward pass itself built
  the whole table, as LightGCN's propagation does). With ``grad_decay`` that vector is kept through the
  update, remapped to the new inactive entries, so growth can weigh what earlier windows saw.

The fixes over the authors' reference code: the top-k selections are exact (ties at a threshold cannot
make a tensor exceed or miss its budget), the optimizer state of pruned and of regrown weights is reset
(moments zeroed; survivors keep theirs), nothing assumes CUDA (devices come from
:mod:`tensorkit.backend`), and ``redistribution="global"`` pools the magnitudes and gradients of all
tensors, so the split of one global budget between tensors (e.g. the user and the item table) can move.

Adam's ``step`` count is one number per parameter in torch and is deliberately not reset: resetting it
would re-apply the start-up bias correction to every surviving weight. A reset weight therefore starts
with zero moments under the tensor's (already near 1) bias correction, like a weight that RigL regrows;
for a steady gradient its step after ``n`` updates is ``lr * (1 - beta1^n) / sqrt(1 - beta2^n)``, which for
the default betas peaks at about ``6.6 * lr`` (``n = 12``) and falls back towards ``lr`` (1.26 at
``n = 1000``). A per-entry step count would remove this but costs a budget-sized tensor; it is not done.
The boost is not all bad: on a validation split of Gowalla (``benchmarks/dsl_gowalla.py``'s notes), starting a
regrown weight's second moment at the surviving weights' mean, which removes it, lowered MF's Recall@20 by
3-5%. A milder boost lifted MF by 0.8-2.5% but lowered LightGCN by 3-12%: ``regrow_moments="gradient"`` starts
the moments where a steady gradient, the growth window's mean, would have brought them (first steps of about
the learning rate), and :class:`recsys.DSLRecommender` uses it for MF only.

Examples
--------
>>> import torch
>>> from recsys.sparse import DynamicSparsity
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
>>> opt = torch.optim.Adam(model.parameters(), lr=1e-2)
>>> ds = DynamicSparsity(model, density=0.25, update_interval=5, end_step=20, optimizer=opt, random_state=0)
>>> x, y = torch.randn(64, 8), torch.randn(64, 1)
>>> for _ in range(20):
...     opt.zero_grad()
...     torch.nn.functional.mse_loss(model(x), y).backward()
...     opt.step()
...     changed = ds.step()
>>> ds.density_report()["total"]
{'active': 36, 'numel': 144, 'density': 0.25}
>>> mask = ds.masks["0.weight"]
>>> int(mask.sum()), bool((model[0].weight[~mask] == 0).all())
(32, True)
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tensorkit import backend

__all__ = [
    "DynamicSparsity",
    "Rewiring",
    "SparseTable",
    "check_density",
    "degree_row_counts",
    "exact_budget",
    "largest_k",
    "random_positions",
    "release_host_memory",
    "replayable",
    "remap_optimizer_state",
    "replace_parameter",
    "reset_optimizer_state",
    "seed_optimizer_state",
    "smallest_k",
    "split_positions",
    "update_count",
    "update_ratio",
]

SCHEDULES = ("cosine", "linear", "constant")
GROW_RULES = ("gradient", "random")
PRUNE_RULES = ("magnitude",)
REDISTRIBUTIONS = (None, "none", "global")
REGROW_INITS = ("zero", "random", "gradient")
REGROW_MOMENTS = ("zero", "gradient")
# optimizer state that ``regrow_moments="gradient"`` starts from the window's mean gradient g, as the power
# of g it holds (Adam's first and second moments, SGD's momentum); any other per-entry state starts at zero
GRADIENT_STATE_POWERS = {"exp_avg": 1, "exp_avg_sq": 2, "max_exp_avg_sq": 2, "momentum_buffer": 1}
BALANCES = (None, "row")


# ------------------------------------------------------------------------------------------------
# small functions with one job: budgets, schedule, exact selections


def check_density(density: Any, name: str = "density") -> float:
    """``density`` as a float in (0, 1], or a ``ValueError`` naming it."""
    if isinstance(density, bool) or not isinstance(density, numbers.Real) or not np.isfinite(density):
        raise ValueError(f"{name} must be a number in (0, 1]; got {density!r}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"{name} must be in (0, 1]; got {density!r}")
    return float(density)


def exact_budget(density: float, numel: int) -> int:
    """The number of active weights of a tensor of ``numel`` entries: ``round(density * numel)``, at least 1."""
    return int(min(numel, max(1, round(check_density(density) * numel))))


def degree_row_counts(degrees: Any, dim: int, density: float, head_fraction: float = 0.25,
                      head_ratio: float = 1.5) -> np.ndarray:
    """Active weights per row of a row-balanced table that give busier rows more, at the uniform total.

    The total is that of ``round(density * dim)`` weights in every row. The ``ceil(head_fraction *
    n_rows)`` rows of highest degree (ties: lower index first) hold ``floor(head_ratio * round(density *
    dim))`` each (at most ``dim``); the other rows share the rest evenly, the busier ones taking the
    remainder one weight each. For :class:`SparseTable` ``row_counts`` (an extension, not in the DSL paper;
    see :class:`recsys.DSLRecommender`'s ``balance="degree"``).

    Parameters
    ----------
    degrees : array-like of shape (n_rows,)
        A row's number of training interactions (any non-negative score of how busy it is).
    dim : int
    density : float in (0, 1]
    head_fraction : float in [0, 1), default=0.25
    head_ratio : float >= 1, default=1.5

    Returns
    -------
    ndarray of int64, shape (n_rows,)
        Each in ``[1, dim]``; they sum to ``n_rows * round(density * dim)``.

    Examples
    --------
    >>> degree_row_counts([5, 1, 9, 2, 3, 0, 4, 8], dim=16, density=0.5).tolist()
    [7, 6, 12, 7, 7, 6, 7, 12]
    """
    degrees = np.asarray(degrees)
    if degrees.ndim != 1 or degrees.size == 0 or not np.issubdtype(degrees.dtype, np.number):
        raise ValueError(f"degrees must be a non-empty 1-D array of numbers; got shape {degrees.shape}")
    if not np.all(np.isfinite(degrees)) or np.any(degrees < 0):
        raise ValueError("degrees must be finite and non-negative")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive int; got {dim!r}")
    if not 0.0 <= float(head_fraction) < 1.0:
        raise ValueError(f"head_fraction must be in [0, 1); got {head_fraction!r}")
    if not float(head_ratio) >= 1.0:
        raise ValueError(f"head_ratio must be at least 1; got {head_ratio!r}")
    n_rows = degrees.size
    mean = exact_budget(density, dim)
    order = np.argsort(-degrees, kind="stable")                 # busiest first
    n_head = int(math.ceil(float(head_fraction) * n_rows))
    n_tail = n_rows - n_head
    head = min(dim, int(math.floor(float(head_ratio) * mean)))
    if n_tail == 0:
        head = mean
    elif n_head:   # at most what leaves every tail row one weight
        head = min(head, (n_rows * mean - n_tail) // n_head)
    rest = n_rows * mean - n_head * head
    counts = np.empty(n_rows, dtype=np.int64)
    counts[order[:n_head]] = head
    if n_tail:
        base, extra = divmod(rest, n_tail)
        tail = np.full(n_tail, base, dtype=np.int64)
        tail[:extra] += 1
        counts[order[n_head:]] = tail
    return counts


def update_ratio(step: int, initial: float = 0.5, final: float = 0.005, end_step: Optional[int] = None,
                 schedule: str = "cosine") -> float:
    """The fraction ``r_t`` of active weights that is pruned and regrown at step ``t``.

    ``cosine``: ``r_t = final + (initial - final) * (1 + cos(pi * t / end_step)) / 2``;
    ``linear``: ``r_t = initial + (final - initial) * t / end_step``; ``constant``: ``r_t = initial``.
    Steps after ``end_step`` give 0 (no more updates). Without ``end_step`` every schedule is constant.

    Examples
    --------
    >>> update_ratio(0, 0.5, 0.005, end_step=100), update_ratio(100, 0.5, 0.005, end_step=100)
    (0.5, 0.005)
    >>> round(update_ratio(50, 0.5, 0.005, end_step=100), 4)
    0.2525
    """
    if end_step is None or schedule == "constant":
        return float(initial) if end_step is None or step <= end_step else 0.0
    if step > end_step:
        return 0.0
    frac = min(max(step / max(end_step, 1), 0.0), 1.0)
    if schedule == "cosine":
        return float(final + (initial - final) * (1.0 + math.cos(math.pi * frac)) / 2.0)
    if schedule == "linear":
        return float(initial + (final - initial) * frac)
    raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}")


def update_count(ratio: float, active: int, inactive: int) -> int:
    """``k = ceil(ratio * active)``, limited so that ``k`` weights can be pruned and ``k`` regrown."""
    if ratio <= 0 or active <= 0 or inactive <= 0:
        return 0
    return int(min(math.ceil(ratio * active - 1e-9), active, inactive))


def smallest_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the ``k`` smallest entries of a 1-D tensor, exactly ``k`` of them (ties broken arbitrarily).

    Non-negative float32 scores (magnitudes) go through :func:`_kth_largest`'s radix select and a
    comparison, which hold the ``k`` positions and a byte per entry instead of a top-k's values, indices
    and work space.
    """
    k = int(k)
    if k <= 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    if scores.dtype != torch.float32 or k >= scores.numel() or bool((scores < 0).any()) \
            or bool(torch.isnan(scores).any()):
        return torch.topk(scores, k, largest=False, sorted=False).indices
    threshold = _kth_largest(scores, scores.numel() - k + 1)   # the k-th smallest
    below = torch.nonzero(scores < threshold).squeeze(1)
    ties = k - below.numel()
    if ties == 0:
        return below
    return torch.cat([below, torch.nonzero(scores == threshold).squeeze(1)[:ties]])


def largest_k(chunks: Any, k: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Exact top-k over score chunks: the global positions of the ``k`` largest scores.

    Parameters
    ----------
    chunks : iterable of ``(offset, scores, payload)``, or a callable returning a fresh such iterable
        ``scores`` is a 1-D tensor of the entries ``offset .. offset + len(scores) - 1``; ``-inf`` marks
        entries that may not be chosen. ``payload`` (same length, or None) is carried along, e.g. the
        signed gradient of each entry. A callable must give the same chunks each time it is called; the
        selection then takes three passes (two for the k-th largest score, one for the positions) and
        holds a histogram, the scores that share the answer's high 16 bits and the ``k`` results,
        instead of a running ``(k + chunk)``-long set of scores and positions.
    k : int

    Returns
    -------
    positions : LongTensor of shape (k,)
    payload : tensor of shape (k,) or None
        The payload of the chosen entries.

    Raises
    ------
    ValueError
        When fewer than ``k`` entries may be chosen.
    """
    if callable(chunks):
        return _largest_k_two_pass(chunks, k)
    best_s = best_p = best_v = None
    for offset, scores, payload in chunks:
        if k <= 0:
            break
        scores = scores.reshape(-1)
        kk = min(int(k), scores.numel())
        top = torch.topk(scores, kk, largest=True, sorted=False)
        pos = top.indices + int(offset)
        val = None if payload is None else payload.reshape(-1)[top.indices]
        if best_s is None:
            best_s, best_p, best_v = top.values, pos, val
            continue
        cat_s = torch.cat([best_s, top.values])
        cat_p = torch.cat([best_p, pos])
        cat_v = None if val is None or best_v is None else torch.cat([best_v, val])
        if cat_s.numel() > k:
            keep = torch.topk(cat_s, int(k), largest=True, sorted=False).indices
            cat_s, cat_p = cat_s[keep], cat_p[keep]
            cat_v = None if cat_v is None else cat_v[keep]
        best_s, best_p, best_v = cat_s, cat_p, cat_v
    if k <= 0 or best_s is None:
        return torch.zeros(0, dtype=torch.long), None
    if best_s.numel() < k or bool(torch.isneginf(best_s).any()):
        raise ValueError(f"cannot choose {k} entries: fewer candidates are allowed")
    return best_p, best_v


def _largest_k_two_pass(make_chunks: Callable[[], Iterable], k: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """:func:`largest_k` over replayable chunks: the k-th largest allowed score (:func:`_kth_largest_of_chunks`),
    then a pass that takes the positions above it and as many at it as make ``k``."""
    k = int(k)
    if k <= 0:
        return torch.zeros(0, dtype=torch.long), None
    threshold, ties, device = _kth_largest_of_chunks(make_chunks, k)
    positions = torch.empty(k, dtype=torch.long, device=device)
    chosen_payload = None
    filled = 0
    for offset, scores, payload in make_chunks():
        scores = scores.reshape(-1)
        take = torch.nonzero(scores > threshold).squeeze(1)
        if ties > 0:
            equal = torch.nonzero(scores == threshold).squeeze(1)[:ties]
            ties -= equal.numel()
            take = torch.cat([take, equal])
        if take.numel() == 0:
            continue
        positions[filled:filled + take.numel()] = take + int(offset)
        if payload is not None:
            if chosen_payload is None:
                chosen_payload = payload.new_empty(k)
            chosen_payload[filled:filled + take.numel()] = payload.reshape(-1)[take]
        filled += take.numel()
    if filled != k:  # the chunks changed between the passes
        raise RuntimeError(f"the second pass over the chunks chose {filled} entries instead of {k}")
    return positions, chosen_payload


def _kth_largest_of_chunks(make_chunks: Callable[[], Iterable], k: int) -> tuple[torch.Tensor, int, Any]:
    """The ``k``-th largest allowed (not ``-inf``) score over replayable chunks, how many entries equal to
    it the top ``k`` takes, and the scores' device.

    Non-negative float32 scores (gradient magnitudes, uniform random scores) go through
    :func:`_kth_largest`'s radix select spread over two passes: a histogram of the high 16 bits, summed
    over the chunks, then the allowed scores of the one bucket holding the answer. That holds a
    histogram and one bucket rather than every allowed score (and a copy to join them). Other scores
    are gathered whole.
    """
    histogram, n_allowed, device = None, 0, None
    for _, scores, _ in make_chunks():
        scores = scores.reshape(-1)
        device = scores.device
        allowed = scores[~torch.isneginf(scores)]
        if scores.dtype != torch.float32 or _not_radix_sortable(allowed):
            return _kth_largest_gathered(make_chunks, k)
        counts = torch.bincount(_high_bits(allowed), minlength=1 << 15)
        histogram = counts if histogram is None else histogram + counts
        n_allowed += allowed.numel()
    if n_allowed < k:
        raise ValueError(f"cannot choose {k} entries: fewer candidates are allowed")
    bucket, above = _radix_bucket(histogram, k)
    inside = []
    for _, scores, _ in make_chunks():
        scores = scores.reshape(-1)
        inside.append(scores[_high_bits(scores) == bucket])   # -inf's high bits are negative: never a bucket
    inside = torch.cat(inside)
    threshold = torch.kthvalue(inside, inside.numel() - (k - above) + 1).values
    return threshold, k - above - int(torch.count_nonzero(inside > threshold)), device


def _kth_largest_gathered(make_chunks: Callable[[], Iterable], k: int) -> tuple[torch.Tensor, int, Any]:
    """:func:`_kth_largest_of_chunks` for any scores: every allowed score gathered in one vector."""
    allowed = []
    for _, scores, _ in make_chunks():
        scores = scores.reshape(-1)
        allowed.append(scores[~torch.isneginf(scores)])
    allowed = torch.cat(allowed) if allowed else torch.zeros(0)
    if allowed.numel() < k:
        raise ValueError(f"cannot choose {k} entries: fewer candidates are allowed")
    threshold = _kth_largest(allowed, k)
    return threshold, k - int(torch.count_nonzero(allowed > threshold)), allowed.device


def _high_bits(values: torch.Tensor) -> torch.Tensor:
    """The high 16 bits of float32 ``values`` (as int32: monotone in the value for non-negative floats)."""
    return values.view(torch.int32) >> 16


def _radix_bucket(histogram: torch.Tensor, k: int) -> tuple[int, int]:
    """From a histogram of :func:`_high_bits`: the bucket holding the ``k``-th largest value and how many
    values lie in the buckets above it."""
    at_least = histogram.flip(0).cumsum(0).flip(0)   # count(high >= h)
    bucket = int(torch.nonzero(at_least >= k).max())
    return bucket, int(at_least[bucket + 1]) if bucket + 1 < at_least.numel() else 0


def _not_radix_sortable(values: torch.Tensor) -> bool:
    """Whether float32 ``values`` hold a sign bit (negative numbers, -0.0) or a NaN, whose bit patterns
    do not order as the values do."""
    return bool((values.view(torch.int32) < 0).any()) or bool(torch.isnan(values).any())


def _kth_largest(values: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th largest of a float32 vector, by a radix select on the bit patterns of non-negative
    floats (monotone as int32): a histogram of the high 16 bits finds the bucket holding the answer, a
    k-th value inside that bucket finishes. It holds 4 bytes per entry where a top-k or a k-th value over
    the whole vector would hold copies and int64 indices."""
    if values.dtype != torch.float32 or _not_radix_sortable(values):
        return torch.kthvalue(values, values.numel() - k + 1).values
    high = _high_bits(values)
    bucket, above = _radix_bucket(torch.bincount(high, minlength=1 << 15), k)
    inside = values[high == bucket]
    del high
    return torch.kthvalue(inside, inside.numel() - (k - above) + 1).values


def replayable(make_chunks: Callable[[], Iterable], generator: Optional[torch.Generator]) -> Callable[[], Iterable]:
    """``make_chunks`` for :func:`largest_k`'s passes: ``generator`` (random growth) restarts from the
    same state on each call, so every pass sees the same random scores."""
    if generator is None:
        return make_chunks
    state = generator.get_state()

    def again() -> Iterable:
        generator.set_state(state)
        return make_chunks()

    return again


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim``, or None (another C library, or no ctypes)."""
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except (ImportError, OSError):  # pragma: no cover - non-glibc platforms
        return None
    return trim


def release_host_memory(device: Any) -> None:
    """Give the CPU heap freed by a prune/grow update back to the operating system (glibc only).

    An update allocates and frees many chunk-sized temporaries; glibc keeps such freed heap
    mapped, so without this the process's resident memory after the first update stays about
    20 MB (Gowalla, MF) above what is live. No-op for CUDA tensors and other C libraries.
    """
    if torch.device(device).type != "cpu":
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _narrow(positions: torch.Tensor, bound: int) -> torch.Tensor:
    """``positions`` (all below ``bound``) as int32 where ``bound`` allows: an update holds several
    k-long position vectors at once, and int64 doubles them."""
    return positions.to(torch.int32) if bound < 2**31 else positions


def split_positions(positions: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Split global positions over consecutive blocks of the given sizes into local positions per block."""
    bounds = np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))])
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = (positions >= int(lo)) & (positions < int(hi))
        out.append(positions[sel] - int(lo))
    return out


def random_positions(numel: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct positions in ``range(numel)``, uniformly at random, sorted (int64, on the CPU).

    Uses memory proportional to ``count`` rather than ``numel`` when ``count`` is a small fraction.
    """
    count = int(count)
    if count >= numel:
        return torch.arange(numel, dtype=torch.long)
    if count * 4 >= numel:
        return torch.sort(torch.randperm(numel, generator=generator)[:count]).values
    drawn = torch.unique(torch.randint(0, numel, (int(count * 1.2) + 16,), generator=generator))
    while drawn.numel() < count:
        more = torch.randint(0, numel, (count - drawn.numel() + 16,), generator=generator)
        drawn = torch.unique(torch.cat([drawn, more]))
    keep = torch.randperm(drawn.numel(), generator=generator)[:count]
    return torch.sort(drawn[keep]).values


def reset_optimizer_state(optimizer: Optional[torch.optim.Optimizer], param: torch.Tensor,
                          positions: torch.Tensor) -> None:
    """Zero every per-entry state tensor of ``param`` (Adam's moments, SGD's momentum) at flat ``positions``."""
    if optimizer is None or positions.numel() == 0:
        return
    state = optimizer.state.get(param)
    if not state:
        return
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.shape == param.shape and value.numel() > 1:
            value.view(-1)[positions.to(value.device)] = 0


def remap_optimizer_state(optimizer: Optional[torch.optim.Optimizer], param: torch.Tensor,
                          rewiring: "Rewiring", grown_gradient: Optional[torch.Tensor] = None) -> None:
    """Move the per-entry optimizer state of a values vector as a :meth:`SparseTable.rewire` moved the values.

    Surviving entries keep their state (Adam's moments); regrown ones start at zero, or, with
    ``grown_gradient`` (one mean gradient per grown position, in sorted position order), at the state a
    steady gradient would have built (:data:`GRADIENT_STATE_POWERS`). Scalar entries (Adam's ``step``) are
    kept. One state tensor is rebuilt at a time.
    """
    if optimizer is None:
        return
    state = optimizer.state.get(param)
    if not state:
        return
    for key, value in list(state.items()):
        if isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() == rewiring.old_size \
                and rewiring.old_size > 1:
            state[key] = rewiring.move(value, _grown_state(key, grown_gradient, value))


def _grown_state(key: str, gradient: Optional[torch.Tensor], like: torch.Tensor) -> Any:
    """The start of optimizer state ``key`` at regrown weights: 0, or a power of their mean gradient."""
    power = GRADIENT_STATE_POWERS.get(key)
    if gradient is None or power is None:
        return 0
    return gradient.to(device=like.device, dtype=like.dtype).pow(power)


def seed_optimizer_state(optimizer: Optional[torch.optim.Optimizer], param: torch.Tensor,
                         positions: torch.Tensor, gradient: torch.Tensor) -> None:
    """Start the per-entry optimizer state of ``param`` at flat ``positions`` from their mean ``gradient``.

    Adam's moments become ``g`` and ``g**2`` and SGD's momentum ``g`` (:data:`GRADIENT_STATE_POWERS`),
    what a steady gradient ``g`` builds up; other state is left as it is.
    """
    if optimizer is None or positions.numel() == 0:
        return
    state = optimizer.state.get(param)
    if not state:
        return
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape == param.shape and value.numel() > 1 \
                and key in GRADIENT_STATE_POWERS:
            value.view(-1)[positions.to(value.device)] = _grown_state(key, gradient, value)


def replace_parameter(optimizer: Optional[torch.optim.Optimizer], old: torch.Tensor, new: torch.Tensor) -> None:
    """Let ``optimizer`` update ``new`` instead of ``old``, carrying ``old``'s state over."""
    if optimizer is None or old is new:
        return
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    if old in optimizer.state:
        optimizer.state[new] = optimizer.state.pop(old)


def _regrown_values(mode: str, grads: Optional[torch.Tensor], survivors: torch.Tensor, pruned: torch.Tensor,
                    count: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Initial values of ``count`` regrown weights.

    ``zero`` (RigL); ``random``: normal with the standard deviation of the surviving weights (SET);
    ``gradient``: the negative gradient, scaled so that its root mean square equals that of the pruned
    weights (a step of typical size along the steepest descent direction). Not much larger: an update
    early in training regrows up to half the active weights at once. Measured on Gowalla (d = 64,
    density 0.5, one update an epoch, seed 0), Recall@20 with the scale times 0.25 / 0.5 / 1 / 2: MF
    (10 epochs) 0.1218 / 0.1234 / 0.1216 / 0.0651; with a second seed, 0.5 and 1 gave MF 0.1218 and
    0.1212, and LightGCN (20 epochs) 0.1382 and 0.1398 (seed 0), 0.1397 and 0.1413 (seed 1). On a
    validation split held out of train (10% of each user's items), MF with 0.5 did worse than with 1 at
    density 0.5 (0.1203 / 0.1210 against 0.1216 / 0.1221, seeds 0 / 1) and at 0.2 (0.1079 / 0.1037
    against 0.1099 / 0.1075), so the scale stays 1. Twice the scale is far worse for LightGCN too on that
    split (seed 0: 0.1059 at 0.5 and 0.0629 at 0.2, against 0.1317 and 0.1208).
    """
    if count == 0 or mode == "zero":
        return like.new_zeros(count)
    if mode == "random":
        std = float(survivors.detach().float().std()) if survivors.numel() > 1 else 0.0
        noise = torch.randn(count, generator=generator, dtype=torch.float32)
        return (noise * std).to(device=like.device, dtype=like.dtype)
    if mode == "gradient":
        if grads is None:
            return like.new_zeros(count)
        g = grads.to(device=like.device, dtype=like.dtype)
        g_rms = g.pow(2).mean().sqrt()
        w_rms = pruned.detach().to(like.dtype).pow(2).mean().sqrt() if pruned.numel() else g_rms.new_zeros(())
        return torch.where(g_rms > 0, -g * (w_rms / g_rms.clamp_min(1e-30)), torch.zeros_like(g))
    raise ValueError(f"regrow_init must be one of {REGROW_INITS}; got {mode!r}")


# ------------------------------------------------------------------------------------------------
# memory-true storage


class Rewiring:
    """How :meth:`SparseTable.rewire` moves the per-entry tensors of a table (values, indices, optimizer state).

    The active positions stay sorted: a surviving entry moves down by the pruned entries before it and up
    by the grown positions before it; grown positions land between them. :meth:`move` builds one new
    tensor at a time, chunk by chunk of old slots, so an update holds one extra per-entry tensor and a
    keep-mask (1 byte per entry) rather than slot maps for every entry.

    Parameters
    ----------
    indices : 1-D int tensor
        The sorted active positions before the update.
    prune_slots : 1-D long tensor
        Slots (into ``indices``) that leave.
    grown : 1-D long tensor
        Sorted, distinct positions that join (inactive, or among the pruned).
    chunk : int
        Old slots per step of :meth:`move`.
    """

    def __init__(self, indices: torch.Tensor, prune_slots: torch.Tensor, grown: torch.Tensor, chunk: int = 1 << 16):
        device = indices.device
        self.indices = indices
        self.old_size = int(indices.numel())
        self.keep = torch.ones(self.old_size, dtype=torch.bool, device=device)
        self.keep[prune_slots.to(device)] = False
        self.grown = grown.to(device=device, dtype=indices.dtype)  # the index dtype: int32 for most tables
        self.chunk = int(chunk)
        n_pruned = self.old_size - int(torch.count_nonzero(self.keep))   # a bool sum would copy to int64
        self.new_size = self.old_size - n_pruned + self.grown.numel()
        # kept entries before each chunk of old slots
        per_chunk = [int(torch.count_nonzero(self.keep[a:a + self.chunk]))
                     for a in range(0, self.old_size, self.chunk)]
        self.kept_before = np.concatenate([[0], np.cumsum(per_chunk)]).astype(np.int64)
        if self.grown.numel():
            narrow = self.new_size < 2**31   # slots as int32: half the memory of the k-long slot vectors
            at = torch.searchsorted(indices, self.grown, out_int32=narrow)
            # a grown position equal to a kept active one would sit at its slot (past the end: the last)
            slot = at.clamp(max=max(self.old_size - 1, 0))
            clash = self.old_size > 0 and bool(((indices.index_select(0, slot) == self.grown)
                                                & self.keep.index_select(0, slot)).any())
            if clash or bool((self.grown[1:] == self.grown[:-1]).any()):
                raise RuntimeError("rewire would activate an already active position")
            del slot
            # kept entries below each grown position = all active below it - pruned below it (both sorted)
            at -= torch.searchsorted(indices[~self.keep], self.grown, out_int32=narrow)
            at += torch.arange(self.grown.numel(), device=device, dtype=at.dtype)
            self.new_grown = at
        else:
            self.new_grown = self.grown.long()

    def move(self, tensor: torch.Tensor, grown_fill: Any) -> torch.Tensor:
        """The new tensor: ``tensor``'s surviving entries at their new slots, ``grown_fill`` (a scalar or one
        value per grown position, in sorted position order) at the grown ones."""
        out = tensor.new_zeros(self.new_size)
        if isinstance(grown_fill, torch.Tensor) or grown_fill != 0:
            # index_add_ takes int32 slots as they are (an assignment would copy them to int64 first)
            fill = torch.as_tensor(grown_fill, dtype=out.dtype, device=out.device).expand(self.new_grown.numel())
            out.index_add_(0, self.new_grown, fill)
        for step, a in enumerate(range(0, self.old_size, self.chunk)):
            src = torch.nonzero(self.keep[a:a + self.chunk]).squeeze(1) + a
            rank = torch.arange(src.numel(), device=src.device) + int(self.kept_before[step])
            dest = rank + torch.searchsorted(self.grown, self.indices[src], right=True)
            out[dest] = tensor[src]
        return out


class _Gather(torch.autograd.Function):
    """``out[target] = values[slots]`` into a zero vector of length ``size`` (``target`` distinct)."""

    @staticmethod
    def forward(ctx, values, slots, target, size):
        ctx.save_for_backward(slots, target)
        ctx.n_values = values.numel()
        out = values.new_zeros(size)
        out.index_copy_(0, target, values.index_select(0, slots))
        return out

    @staticmethod
    def backward(ctx, grad):
        slots, target = ctx.saved_tensors
        picked = grad.reshape(-1).index_select(0, target)
        return grad.new_zeros(ctx.n_values).index_add_(0, slots, picked), None, None, None


class SparseTable(nn.Module):
    """An ``n_rows x dim`` embedding table that stores only its active weights.

    Parameters
    ----------
    n_rows, dim : int
    density : float in (0, 1], default=0.5
        The table holds ``round(density * n_rows * dim)`` active weights (its budget). Not used with
        ``row_counts``, where the density is ``sum(row_counts) / (n_rows * dim)``.
    init_std : float, default=0.1
        Active weights start as ``N(0, init_std^2)``.
    random_state : None, int or RandomState
        Seeds the initial random positions and values.
    device, dtype :
        Through :func:`tensorkit.backend.resolve_device` / :func:`~tensorkit.backend.resolve_dtype`.
    row_balanced : bool, default=False
        Give every row exactly ``round(density * dim)`` active weights (the budget is then ``n_rows`` times
        that); :class:`DynamicSparsity` with ``balance="row"`` keeps it so.
    row_counts : array-like of int, shape (n_rows,), optional
        Row-balanced with these counts instead (each in ``[0, dim]``; see :func:`degree_row_counts`):
        row ``r`` holds ``row_counts[r]`` active weights at random columns, and ``balance="row"`` keeps
        every row at its own count. Implies ``row_balanced``.

    Attributes
    ----------
    values : nn.Parameter of shape (budget,)
        The active weights, in the order of ``indices``.
    indices : buffer, int32 (int64 for tables of 2**31 entries or more), shape (budget,)
        Sorted, distinct flat positions ``row * dim + col`` of the active weights.
    indptr : buffer, int64, shape (n_rows + 1,)
        Row pointer: the active weights of row ``r`` are ``values[indptr[r]:indptr[r + 1]]``.

    Notes
    -----
    Rows are gathered into dense ``(B, dim)`` blocks (:meth:`gather_rows`, ``table(rows)``) and the whole
    table into a dense ``(n_rows, dim)`` tensor (:meth:`to_dense`, ``table()``); both are differentiable
    with respect to ``values``. While :meth:`record_gradients` is on, the gradients of those blocks are
    kept (summed over the inactive entries once they would outgrow a vector of that length) so that
    :meth:`dense_gradient_chunks` can give the gradient with respect to the dense table at its inactive
    entries, chunk by chunk of rows, for choosing which weights grow. :meth:`rewire` moves the active set.

    Examples
    --------
    >>> import torch
    >>> table = SparseTable(100, 8, density=0.25, random_state=0, device="cpu")
    >>> table.budget, table.values.shape
    (200, torch.Size([200]))
    >>> block = table(torch.tensor([3, 7, 3]))
    >>> block.shape, bool(torch.equal(block, table.to_dense()[[3, 7, 3]]))
    (torch.Size([3, 8]), True)
    """

    _accumulate = False   # class defaults too, for tables pickled before the attributes existed
    _carried = None

    def __init__(self, n_rows: int, dim: int, density: float = 0.5, init_std: float = 0.1,
                 random_state: Any = None, device: Any = None, dtype: Any = None, row_balanced: bool = False,
                 row_counts: Any = None):
        super().__init__()
        for name, value in (("n_rows", n_rows), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        self.n_rows, self.dim = int(n_rows), int(dim)
        dev = backend.resolve_device("cpu" if device is None else device)
        dt = backend.resolve_dtype(dtype)
        gen = backend.check_random_state(random_state).torch
        self.row_balanced = bool(row_balanced) or row_counts is not None
        if row_counts is not None:
            counts = self._check_row_counts(row_counts)
            self.density = float(counts.sum()) / self.numel
        else:
            self.density = check_density(density)
            counts = torch.full((self.n_rows,), exact_budget(self.density, self.dim), dtype=torch.long)
        if self.row_balanced:  # row r: counts[r] active columns, chosen at random (those of lowest random rank)
            rank = torch.argsort(torch.argsort(torch.rand(self.n_rows, self.dim, generator=gen), dim=1), dim=1)
            flat = torch.nonzero((rank < counts.unsqueeze(1)).view(-1)).squeeze(1)
            del rank
            budget = flat.numel()
        else:
            budget = exact_budget(self.density, self.numel)
            flat = random_positions(self.numel, budget, gen)
        values = torch.randn(budget, generator=gen, dtype=torch.float32) * float(init_std)
        self.values = nn.Parameter(values.to(device=dev, dtype=dt))
        self.register_buffer("indices", flat.to(device=dev, dtype=self.index_dtype))
        self.register_buffer("indptr", self._row_pointer(self.indices))
        self._records: Optional[list] = None
        self._inactive_grad: Optional[torch.Tensor] = None
        self._carried: Optional[torch.Tensor] = None
        self._accumulate = False
        self._n_recorded = 0

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def numel(self) -> int:
        """Entries of the dense table, ``n_rows * dim``."""
        return self.n_rows * self.dim

    @property
    def budget(self) -> int:
        """Number of active weights (the length of ``values``)."""
        return int(self.values.numel())

    @property
    def index_dtype(self) -> torch.dtype:
        return torch.int32 if self.numel < 2**31 else torch.int64

    @property
    def row_counts(self) -> torch.Tensor:
        """Active weights in each row (int64, shape ``(n_rows,)``)."""
        return torch.diff(self.indptr).long()

    def _check_row_counts(self, row_counts: Any) -> torch.Tensor:
        counts = np.asarray(row_counts)
        if counts.shape != (self.n_rows,) or not np.issubdtype(counts.dtype, np.integer):
            raise ValueError(f"row_counts must be {self.n_rows} ints (one per row); got an array of shape "
                             f"{counts.shape} and dtype {counts.dtype}")
        if counts.min() < 0 or counts.max() > self.dim or counts.sum() < 1:
            raise ValueError(f"row_counts must be in [0, {self.dim}] (the row length) with at least one "
                             f"active weight in all; got min {counts.min()}, max {counts.max()}")
        return torch.as_tensor(counts, dtype=torch.long)

    def _row_pointer(self, flat: torch.Tensor) -> torch.Tensor:
        """``indptr[r]`` = number of active positions before row ``r`` (a search in the sorted ``flat``)."""
        bounds = torch.arange(self.n_rows + 1, device=flat.device, dtype=flat.dtype) * self.dim
        return torch.searchsorted(flat, bounds)

    def extra_repr(self) -> str:
        return f"n_rows={self.n_rows}, dim={self.dim}, budget={self.budget}"

    # -- forward ----------------------------------------------------------------------------
    def forward(self, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``table(rows)`` gathers rows (:meth:`gather_rows`); ``table()`` is :meth:`to_dense`."""
        return self.to_dense() if rows is None else self.gather_rows(rows)

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Dense ``(len(rows), dim)`` block of the given rows (repeats allowed); gradients flow into ``values``."""
        rows = torch.as_tensor(rows, device=self.indptr.device).long().reshape(-1)
        n = rows.numel()
        slots, target = self._block_layout(rows)
        out = _Gather.apply(self.values, slots, target, n * self.dim).view(n, self.dim)
        self._maybe_record(rows, out, target)
        return out

    def _block_layout(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a dense ``(len(rows), dim)`` block of the given rows: the slots of ``values`` it holds and,
        for each, its flat position in the block."""
        start = self.indptr.index_select(0, rows)
        counts = self.indptr.index_select(0, rows + 1) - start
        total = int(counts.sum())
        owner = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), counts, output_size=total)
        shift = (start - (torch.cumsum(counts, 0) - counts)).index_select(0, owner)
        slots = torch.arange(total, device=rows.device) + shift          # positions in values / indices
        base = (owner - rows.index_select(0, owner)) * self.dim           # (out row - table row) * dim
        return slots, self.indices.index_select(0, slots).long() + base   # flat positions in the block

    def _range_mask(self, lo: int, hi: int) -> torch.Tensor:
        """Boolean ``(hi - lo) * dim`` mask of the active entries of rows ``lo .. hi - 1`` (flattened)."""
        mask = torch.zeros((hi - lo) * self.dim, dtype=torch.bool, device=self.indices.device)
        first, last = int(self.indptr[lo]), int(self.indptr[hi])
        mask[self.indices[first:last].long() - lo * self.dim] = True
        return mask

    def _inactive_range(self, lo: int, hi: int) -> tuple[int, int]:
        """The inactive entries of rows ``lo .. hi - 1`` are ``[start, stop)`` of the inactive order."""
        return lo * self.dim - int(self.indptr[lo]), hi * self.dim - int(self.indptr[hi])

    def to_dense(self) -> torch.Tensor:
        """The whole table as a dense ``(n_rows, dim)`` tensor (a temporary, differentiable w.r.t. ``values``)."""
        out = self.values.new_zeros(self.numel).index_add(0, self.indices, self.values).view(self.n_rows, self.dim)
        self._maybe_record(None, out)
        return out

    def active_mask(self) -> torch.Tensor:
        """Dense boolean mask of the active entries (for inspection and tests; it is ``n_rows x dim``)."""
        mask = torch.zeros(self.numel, dtype=torch.bool, device=self.indices.device)
        mask.index_fill_(0, self.indices.long(), True)
        return mask.view(self.n_rows, self.dim)

    # -- gradients for growth -----------------------------------------------------------------
    def record_gradients(self, on: bool = True, accumulate: bool = False) -> None:
        """Keep (``on``) or stop keeping the gradients of the blocks the next forward passes build.

        With ``accumulate``, each block is summed at once into one vector over the inactive entries (for
        a window of many steps); otherwise blocks are kept as they come until they would outgrow it. A
        gradient kept by :meth:`carry_gradients` is where a new recording starts from.
        """
        self._records = [] if on else None
        # the carried gradient, if any; otherwise made by the first block (until then it would only add to a peak)
        self._inactive_grad = self._carried if on else None
        if on:
            self._carried = None
        self._accumulate = on and accumulate
        self._n_recorded = 0

    def carry_gradients(self, decay: float) -> None:
        """Stop recording, keeping ``decay`` times the recorded gradient at the inactive entries for the
        next recording to add to (``decay = 0`` keeps nothing). :meth:`rewire` keeps it in step with the
        active set: grown entries leave it and pruned ones join it at zero, so each inactive entry holds
        its gradient since it last became inactive, ``decay`` times per update for the older windows."""
        if decay and self.recording:
            if self._records:
                self._fold_records()
            carried, self._inactive_grad = self._inactive_grad, None
            if carried is not None:
                carried[-1] = 0   # the sink of the active entries' gradient
                self._carried = carried.mul_(float(decay))
        else:
            self._carried = None
        self.record_gradients(False)

    def _new_inactive_grad(self) -> torch.Tensor:
        """Zeros over the inactive entries, plus one last entry that collects what active entries add."""
        return self.values.new_zeros(self.numel - self.budget + 1)

    @property
    def recording(self) -> bool:
        return self._records is not None

    def _maybe_record(self, rows: Optional[torch.Tensor], out: torch.Tensor,
                      active: Optional[torch.Tensor] = None) -> None:
        if self._records is None or not out.requires_grad:
            return
        records = self._records

        def keep(grad: torch.Tensor) -> None:
            if records is not self._records:   # recording was stopped or restarted since the forward pass
                return
            self._n_recorded += 1
            if self._accumulate:
                if self._inactive_grad is None:
                    self._inactive_grad = self._new_inactive_grad()
                self._add_inactive_gradient(rows, grad.detach(), active)
                return
            records.append((rows, grad.detach()))
            self._compact_records()

        out.register_hook(keep)

    def _compact_records(self) -> None:
        """Bound what a window of recorded gradients holds. Growth reads the gradient at inactive entries
        only, so once the recorded row blocks hold more than a quarter of the table's inactive entries (or
        a whole-table block arrives, as LightGCN's propagation gives), they are summed into one vector over
        the inactive entries, ``(1 - density) * n_rows * dim`` long, and later blocks are added to it: a
        window never keeps more than about 1.25 times that."""
        records = self._records
        n_partial = sum(int(rows.numel()) for rows, _ in records if rows is not None)
        whole = any(rows is None for rows, _ in records)
        inactive = self.numel - self.budget
        if self._inactive_grad is None and not whole and n_partial * self.dim <= max(inactive // 4, 1024 * self.dim):
            return
        self._fold_records()

    def _fold_records(self) -> None:
        """Sum the kept row blocks into the vector over the inactive entries (made if need be)."""
        if self._inactive_grad is None:
            self._inactive_grad = self._new_inactive_grad()
        for rows, grad in self._records:
            self._add_inactive_gradient(rows, grad)
        self._records.clear()

    @torch.no_grad()
    def _add_inactive_gradient(self, rows: Optional[torch.Tensor], grad: torch.Tensor,
                               active: Optional[torch.Tensor] = None, chunk_rows: int = 4096) -> None:
        """Add a gradient block's inactive entries into ``_inactive_grad`` (kept in flat-position order).

        ``active``: the flat positions of the block's active entries, when the caller has them."""
        total = self._inactive_grad
        if rows is None:
            for lo in range(0, self.n_rows, chunk_rows):
                hi = min(lo + chunk_rows, self.n_rows)
                start, stop = self._inactive_range(lo, hi)
                total[start:stop] += grad[lo:hi].reshape(-1)[~self._range_mask(lo, hi)].to(total.dtype)
            return
        if active is None:
            active = self._block_layout(rows)[1]
        free = torch.ones(rows.numel() * self.dim, dtype=torch.bool, device=rows.device)
        free.index_fill_(0, active, False)
        # an inactive entry's place: its flat position less the active entries before it, those of the
        # rows above (indptr[row]) and those to its left in its row (its column less the free ones there)
        first = rows.unsqueeze(1) * self.dim - self.indptr.index_select(0, rows).unsqueeze(1)
        index = torch.int32 if total.numel() < 2**31 else torch.int64
        place = first.to(index) + torch.cumsum(free.view(rows.numel(), self.dim), dim=1, dtype=index) - 1
        # active entries add into the extra last entry (cheaper than selecting the free ones)
        place = place.view(-1).index_fill_(0, active, total.numel() - 1)
        total.index_add_(0, place, grad.reshape(-1).to(total.dtype))

    def has_gradients(self) -> bool:
        """Whether gradients were recorded since :meth:`record_gradients` was turned on."""
        return self.recording and self._n_recorded > 0

    def dense_gradient_chunks(self, chunk_rows: int = 4096) -> Iterator[tuple[int, torch.Tensor]]:
        """The recorded gradient w.r.t. the dense table at its inactive entries (zero at the active ones,
        which growth does not read), as ``(first_row, (rows, dim) block)`` chunks."""
        records = self._records or []
        for lo in range(0, self.n_rows, chunk_rows):
            hi = min(lo + chunk_rows, self.n_rows)
            block = self.values.new_zeros(hi - lo, self.dim)
            flat = block.view(-1)
            active = self._range_mask(lo, hi)
            if self._inactive_grad is not None:
                start, stop = self._inactive_range(lo, hi)
                flat[~active] = self._inactive_grad[start:stop]
            for rows, grad in records:
                sel = (rows >= lo) & (rows < hi)
                if bool(sel.any()):
                    block.index_add_(0, rows[sel] - lo, grad[sel].to(block.dtype))
            flat[active] = 0
            yield lo, block

    def grow_candidates(self, chunk_rows: int = 4096, offset: int = 0, random: Optional[torch.Generator] = None,
                        payload: bool = True) -> Iterator[tuple[int, torch.Tensor, Optional[torch.Tensor]]]:
        """Score chunks for :func:`largest_k`: ``|grad|`` (or random scores), ``-inf`` at active entries.

        With ``payload`` the signed gradient comes along (for ``regrow_init="gradient"``).
        """
        active = self.indices
        for lo, block in self.dense_gradient_chunks(chunk_rows) if random is None else self._zero_chunks(chunk_rows):
            first, last = lo * self.dim, lo * self.dim + block.numel()
            if random is None:
                scores = block.reshape(-1).abs().to(torch.float32)
            else:
                scores = torch.rand(block.numel(), generator=random).to(block.device)
            bounds = torch.tensor([first, last], device=active.device, dtype=active.dtype)
            lo_slot, hi_slot = torch.searchsorted(active, bounds).tolist()
            scores[active[lo_slot:hi_slot].long() - first] = -math.inf
            yield offset + first, scores, block.reshape(-1) if payload else None

    def _zero_chunks(self, chunk_rows: int) -> Iterator[tuple[int, torch.Tensor]]:
        for lo in range(0, self.n_rows, chunk_rows):
            hi = min(lo + chunk_rows, self.n_rows)
            yield lo, self.values.new_zeros(hi - lo, self.dim)

    def balanced_selection(self, ratio: float, chunk_rows: int = 4096, random: Optional[torch.Generator] = None,
                           payload: bool = False) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Per-row prune/grow for a row-balanced table: in every row with a recorded gradient (every row
        under random growth) holding ``c`` weights, the ``k = ceil(ratio * c)`` smallest ``|values|`` leave
        and the ``k`` inactive entries of largest ``|gradient|`` join, so every row keeps its count.

        Returns
        -------
        prune_slots, grow_positions : int tensors (int32 where the table has fewer than 2**31 entries)
            Slots of ``values`` that leave and flat positions that join (equally many).
        payload : tensor or None
            The signed gradient at ``grow_positions`` (with ``payload``).
        """
        if not self.row_balanced:
            raise ValueError("balanced_selection needs a row-balanced table (SparseTable(row_balanced=True))")
        device = self.values.device
        prunes, grows, payloads = [], [], []
        values = self.values.detach()
        all_counts = self.row_counts
        chunks = self.dense_gradient_chunks(chunk_rows) if random is None else self._zero_chunks(chunk_rows)
        for lo, block in chunks:
            hi = lo + block.shape[0]
            if random is None:
                scores = block.abs().to(torch.float32)
                informed = scores.amax(dim=1) > 0   # rows with gradient information
            else:
                scores = torch.rand(block.shape, generator=random).to(device)
                informed = torch.ones(hi - lo, dtype=torch.bool, device=device)
            counts = all_counts[lo:hi]
            for count in torch.unique(counts[informed]).tolist():   # rows of one count at a time
                k = update_count(ratio, count, self.dim - count)
                if k == 0:
                    continue
                rows = torch.nonzero(informed & (counts == count)).squeeze(1)
                slots = self.indptr.index_select(0, rows + lo).unsqueeze(1) + torch.arange(count, device=device)
                columns = self.indices[slots].long() % self.dim
                row_scores = scores.index_select(0, rows).scatter_(1, columns, -math.inf)
                grow_cols = torch.topk(row_scores, k, dim=1).indices
                prune_at = torch.topk(values[slots].abs(), k, dim=1, largest=False).indices
                grows.append(_narrow(((rows + lo).unsqueeze(1) * self.dim + grow_cols).reshape(-1), self.numel))
                prunes.append(_narrow(slots.gather(1, prune_at).reshape(-1), self.numel))
                if payload:
                    payloads.append(block.index_select(0, rows).gather(1, grow_cols).reshape(-1))
        if not grows:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty, (self.values.new_zeros(0) if payload else None)
        return torch.cat(prunes), torch.cat(grows), (torch.cat(payloads) if payload else None)

    def prune_scores(self) -> torch.Tensor:
        """``|values|``: the scores of :func:`smallest_k` for pruning (slot order)."""
        return self.values.detach().abs().to(torch.float32)

    # -- moving the active set ----------------------------------------------------------------
    def prune_and_grow(self, k: int, optimizer: Optional[torch.optim.Optimizer] = None, grow: str = "gradient",
                       generator: Optional[torch.Generator] = None, chunk_rows: int = 4096
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """One update of this table alone: drop the ``k`` smallest ``|values|``, activate ``k`` inactive entries.

        ``grow="gradient"`` takes the ``k`` largest recorded ``|dense gradient|`` (record with
        :meth:`record_gradients` before the forward/backward pass); ``"random"`` uniformly random ones.
        Regrown weights start at zero; ``optimizer``'s state is remapped (survivors keep their moments).
        :class:`DynamicSparsity` does the same with a schedule, for several tables and masked parameters.

        Returns
        -------
        pruned, grown : LongTensor
            The flat positions that left and joined the active set.
        """
        if grow not in GROW_RULES:
            raise ValueError(f"grow must be one of {GROW_RULES}; got {grow!r}")
        k = update_count(1.0, min(int(k), self.budget), self.numel - self.budget) if k > 0 else 0
        with torch.no_grad():
            prune = smallest_k(self.prune_scores(), k)
            random = (generator or torch.Generator().manual_seed(0)) if grow == "random" else None
            grown, _ = largest_k(replayable(lambda: self.grow_candidates(chunk_rows, 0, random, payload=False),
                                            random), k)
            self.record_gradients(False)
            pruned = self.indices.index_select(0, prune.to(self.indices.device)).long()
            self.rewire(prune, grown, optimizer=optimizer)
        return pruned, grown.to(pruned.device)

    @torch.no_grad()
    def rewire(self, prune_slots: torch.Tensor, grow_positions: torch.Tensor,
               grow_values: Optional[torch.Tensor] = None,
               optimizer: Optional[torch.optim.Optimizer] = None,
               grow_gradient: Optional[torch.Tensor] = None) -> Rewiring:
        """Drop the weights at ``prune_slots`` and activate the flat ``grow_positions`` (inactive ones).

        The budget changes by ``len(grow) - len(prune)``; when it does, ``values`` becomes a new Parameter
        (autograd fixes a leaf's shape). With ``optimizer``, the new Parameter takes the old one's place
        there (:func:`replace_parameter`) and its per-entry state moves with the values
        (:func:`remap_optimizer_state`; regrown entries start at zero, or from ``grow_gradient``, their
        mean gradient, in ``grow_positions`` order) before the indices do, so that the old and new indices
        do not both exist while the state moves. Returns the :class:`Rewiring` (for moving other per-entry
        tensors the same way).
        """
        device = self.values.device
        positions = grow_positions.to(device=device, dtype=self.index_dtype)   # int32 for most tables
        grown, order = torch.sort(positions)
        fill: Any = 0.0
        if grow_values is not None:
            fill = grow_values.to(device=device, dtype=self.values.dtype)[order]
        if grow_gradient is not None:
            grow_gradient = grow_gradient.to(device=device, dtype=self.values.dtype)[order]
        del positions, order
        if self._carried is not None:   # before the values move, so that its two copies meet a smaller peak
            self._carried = self._remap_carried(prune_slots.to(device), grown)
        rewiring = Rewiring(self.indices, prune_slots.to(device), grown)
        values = rewiring.move(self.values.detach(), fill)
        del fill   # the grown values are in place; the state's regrown entries need only ``grow_gradient``
        before = self.values
        if rewiring.new_size == rewiring.old_size:
            self.values.data = values
            self.values.grad = None
        else:  # autograd caches a leaf's shape: a new budget needs a new Parameter (see replace_parameter)
            self.values = nn.Parameter(values, requires_grad=self.values.requires_grad)
        del values
        replace_parameter(optimizer, before, self.values)
        del before
        remap_optimizer_state(optimizer, self.values, rewiring, grow_gradient)
        del grow_gradient
        indices = rewiring.move(self.indices, grown.to(self.index_dtype))
        self.indices = indices
        self.indptr = self._row_pointer(indices)
        return rewiring

    def _remap_carried(self, prune_slots: torch.Tensor, grown: torch.Tensor, chunk_rows: int = 4096) -> torch.Tensor:
        """The carried gradient (:meth:`carry_gradients`) in the inactive order after a rewire that prunes
        ``prune_slots`` and activates the sorted ``grown`` positions: those leave it, the pruned join at zero."""
        old = self._carried
        pruned = torch.sort(self.indices.index_select(0, prune_slots)).values
        out = old.new_zeros(self.numel - (self.budget - prune_slots.numel() + grown.numel()) + 1)
        filled = 0
        for lo in range(0, self.n_rows, chunk_rows):
            hi = min(lo + chunk_rows, self.n_rows)
            first, last = lo * self.dim, hi * self.dim
            active = self._range_mask(lo, hi)
            start, stop = self._inactive_range(lo, hi)
            block = old.new_zeros(last - first)
            block[~active] = old[start:stop]
            for positions, state in ((pruned, False), (grown, True)):
                bounds = torch.tensor([first, last], device=positions.device, dtype=positions.dtype)
                a, b = torch.searchsorted(positions, bounds).tolist()
                active[positions[a:b].long() - first] = state
            piece = block[~active]
            out[filled:filled + piece.numel()] = piece
            filled += piece.numel()
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "values"
        if key in state_dict and state_dict[key].shape != self.values.shape:
            # another budget (e.g. after global redistribution): a new Parameter, so create optimizers after loading
            size = state_dict[key].shape
            self.values = nn.Parameter(self.values.detach().new_zeros(size), requires_grad=self.values.requires_grad)
            self.indices = self.indices.new_zeros(size)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __getstate__(self) -> dict:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_records"] = None
        state["_inactive_grad"] = None
        state["_carried"] = None
        state["_accumulate"] = False
        return state


# ------------------------------------------------------------------------------------------------
# the engine


class _MaskedTarget:
    """A dense parameter under a boolean mask."""

    kind = "masked"

    def __init__(self, name: str, param: nn.Parameter, mask: torch.Tensor):
        self.name, self.param, self.mask = name, param, mask
        self.factor = mask.to(param.dtype)    # 1.0 active / 0.0 inactive: multiplying is fast on every device
        self.dense_grad: Optional[torch.Tensor] = None
        self.carried: Optional[torch.Tensor] = None
        self.recording = False
        self.handle = None

    @property
    def numel(self) -> int:
        return self.param.numel()

    @property
    def active(self) -> int:
        return int(self.mask.sum())

    def active_positions(self) -> torch.Tensor:
        return torch.nonzero(self.mask.view(-1)).squeeze(1)

    def prune_scores(self) -> torch.Tensor:
        return self.param.detach().view(-1)[self.active_positions()].abs().to(torch.float32)

    def gradient(self) -> Optional[torch.Tensor]:
        return self.dense_grad if self.dense_grad is not None else self.param.grad

    def grow_candidates(self, chunk_rows: int, offset: int, random: Optional[torch.Generator] = None,
                        payload: bool = True):
        keep_payload = payload
        if random is None:
            grad = self.gradient()
            if grad is None:
                raise RuntimeError(f"parameter {self.name!r} has no gradient; call DynamicSparsity.step() after "
                                   "loss.backward() and optimizer.step(), before zeroing the gradients")
            payload = grad.detach().reshape(-1)
            scores = payload.abs().to(torch.float32)
        else:
            payload = None
            scores = torch.rand(self.numel, generator=random).to(self.param.device)
        scores = scores.masked_fill(self.mask.view(-1), -math.inf)
        yield offset, scores, payload if keep_payload else None

    def hook(self, grad: torch.Tensor) -> torch.Tensor:
        if self.recording:
            if self.dense_grad is None:
                carried, self.carried = self.carried, None
                self.dense_grad = grad.detach().clone() if carried is None else carried.add_(grad.detach())
            else:
                self.dense_grad = self.dense_grad + grad.detach()
        return grad * self.factor

    def refresh(self) -> None:
        """Recompute the cached 0/1 factor after the mask changed."""
        self.factor.copy_(self.mask)

    @torch.no_grad()
    def release_gradients(self, decay: float = 0.0) -> None:
        """Drop the window's summed gradient (once growth has been chosen), keeping ``decay`` times it at the
        inactive entries for the next window to start from (as :meth:`SparseTable.carry_gradients`)."""
        grad, self.dense_grad, self.carried = self.dense_grad, None, None
        if decay and grad is not None:
            self.carried = grad.mul_(float(decay)).masked_fill_(self.mask, 0)

    def apply_mask(self) -> None:
        self.param.data.mul_(self.factor)


class _TableTarget:
    """A :class:`SparseTable` (memory-true storage)."""

    kind = "table"

    def __init__(self, name: str, table: SparseTable):
        self.name, self.table = name, table

    @property
    def param(self) -> nn.Parameter:
        return self.table.values

    @property
    def numel(self) -> int:
        return self.table.numel

    @property
    def active(self) -> int:
        return self.table.budget

    def prune_scores(self) -> torch.Tensor:
        return self.table.prune_scores()

    def release_gradients(self, decay: float = 0.0) -> None:
        """Drop the recorded gradients (once growth has been chosen), before the rewiring's temporaries exist,
        keeping ``decay`` times them for the next window (:meth:`SparseTable.carry_gradients`)."""
        self.table.carry_gradients(decay)

    def grow_candidates(self, chunk_rows: int, offset: int, random: Optional[torch.Generator] = None,
                        payload: bool = True):
        if random is None and not self.table.has_gradients():
            raise RuntimeError(f"table {self.name!r} recorded no gradient before this update step; run the "
                               "forward and backward pass between DynamicSparsity.step() calls")
        return self.table.grow_candidates(chunk_rows, offset, random, payload)


def _is_embedding_weight(module: nn.Module) -> bool:
    return isinstance(module, (nn.Embedding, nn.EmbeddingBag))


class DynamicSparsity:
    """Dynamic sparse training of a model's weights, around any torch optimizer (DSL, WSDM 2024).

    Masked parameters start with a uniformly random mask of exactly ``round(density * numel)`` entries;
    :class:`SparseTable` modules found in a model bring their own budget and are updated in place
    (memory-true). Call :meth:`step` right after every ``optimizer.step()``: it re-applies the masks and,
    every ``update_interval`` steps up to ``end_step``, prunes the ``k`` active weights of smallest
    magnitude and regrows the ``k`` inactive ones of largest gradient magnitude per tensor, with
    ``k = ceil(r_t * active)`` and ``r_t`` from :func:`update_ratio`. The optimizer's per-entry state is
    reset at pruned and regrown positions and carried for the others.

    Parameters
    ----------
    params_or_model : nn.Module, or list of parameters or of ``(name, parameter)`` pairs
        For a module: every parameter with two or more dimensions and every embedding weight, and every
        :class:`SparseTable`.
    density : float in (0, 1], default=0.5
        Fraction of active weights of each masked parameter.
    update_interval : int, default=100
        ``Delta T``: optimizer steps between two prune/grow updates.
    update_ratio : float in [0, 1], default=0.5
        ``r_0``: the fraction of active weights replaced at the first update.
    final_update_ratio : float, default=0.005
        ``r_min``: the ratio reached at ``end_step``.
    end_step : int or None, default=None
        ``T_end``: the last step with an update. None: updates never stop and ``r_t = r_0`` (constant).
    prune : {"magnitude"}, default="magnitude"
    grow : {"gradient", "random"}, default="gradient"
        RigL's gradient rule, or SET's uniformly random choice among inactive weights.
    schedule : {"cosine", "linear", "constant"}, default="cosine"
    redistribution : {None, "global"}, default=None
        None: every tensor keeps its own budget. "global": one budget for all tensors; the ``k`` pruned
        weights are the globally smallest magnitudes and the ``k`` regrown the globally largest
        gradients, so the per-tensor split moves while the total stays fixed.
    fix : bool, default=False
        Keep the initial random masks for ever (static sparse training).
    random_state : None, int or RandomState
        Seeds the initial masks and random choices.
    optimizer : torch.optim.Optimizer, optional
        Whose state is reset/remapped on updates; also settable with :meth:`attach_optimizer`.
    regrow_init : {"zero", "random", "gradient"}, default="zero"
        Initial value of regrown weights (see :func:`_regrown_values`); RigL uses zero.
    regrow_moments : {"zero", "gradient"}, default="zero"
        Initial optimizer state of regrown weights. "zero" (RigL's and the paper's reset): under a bias
        correction near 1, Adam's first steps of a regrown weight are then several times the learning rate
        (see the module docstring). "gradient" (an extension): the state a steady gradient ``g`` would
        have built, with ``g`` the growth gradient's mean over the ``grad_window`` steps (Adam: ``g`` and
        ``g**2``, so its first steps are about the learning rate; SGD's momentum: ``g``; see
        :data:`GRADIENT_STATE_POWERS`).
    mask_gradients : bool, default=True
        Zero the gradient of inactive masked entries before the optimizer sees it (a gradient hook), so
        optimizer state stays exactly zero there; the dense gradient is kept for growth on the step before
        an update.
    chunk_rows : int, default=4096
        Rows per chunk when scanning a table's dense gradient.
    balance : {None, "row"}, default=None
        "row" (an extension, not in the paper): prune and grow within every row of row-balanced
        :class:`SparseTable` targets, so each user and item keeps its count (``round(density * dim)``
        weights, or the table's ``row_counts``) and only rows with gradient information change.
        Per-tensor magnitude pruning (None, the paper's rule) drains rarely seen rows, whose weights stay
        small, towards popular ones.
    grad_window : int, default=1
        Grow by the gradient summed over the last ``grad_window`` steps before an update (at most
        ``update_interval``). 1 is RigL's and the DSL code's rule: the gradient of the last mini-batch.
        For embedding tables a mini-batch touches few rows, so the last batch's gradient is zero on most
        rows and growth can only reach the rows of that batch; a longer window lets every row that
        appeared recently compete. The window's gradient is kept until the update: the gathered row
        blocks, summed into one dense ``(n_rows, dim)`` block once they exceed a quarter of the table
        (so at most about 1.25 tables of gradient, 4 to 5 bytes per table entry in float32).
    grad_decay : float in [0, 1], default=0.0
        How much of the earlier windows' gradient growth still counts (an extension, not in the paper or
        RigL): at an update the inactive entries keep ``grad_decay`` times their summed gradient, and
        the next window adds to it. 0 scores growth by the current window alone; 1 scores each inactive
        entry by its gradient summed since it last became inactive (since the start for entries never
        active). A rarely seen embedding row gets a gradient in few steps of a window, so one window's
        sum says little about it; the older windows add what they saw. Pruned entries join at zero, and
        entries that grow leave it, so what is kept is one vector over the inactive entries, the one a
        window records anyway, now kept through the update (its peak holds two copies briefly, before
        the values move).

    Attributes
    ----------
    step_count : int
        Calls of :meth:`step` so far.
    masks : dict of str to BoolTensor
        The masks of the masked parameters (tables keep ``indices`` instead).
    updates : list of dict
        One entry per prune/grow update: ``step``, ``ratio``, ``changed`` (weights pruned = regrown), and
        ``active`` per tensor.

    References
    ----------
    S. Wang, Y. Sui, J. Wu, Z. Zheng and H. Xiong, "Dynamic Sparse Learning: A Novel Paradigm for
    Efficient Recommendation", WSDM 2024, arXiv:2402.02855.
    U. Evci, T. Gale, J. Menick, P. S. Castro and E. Elsen, "Rigging the Lottery: Making All Tickets
    Winners", ICML 2020.

    Examples
    --------
    See the module docstring of :mod:`recsys.sparse`.
    """

    def __init__(self, params_or_model: Any, density: float = 0.5, update_interval: int = 100,
                 update_ratio: float = 0.5, final_update_ratio: float = 0.005, end_step: Optional[int] = None,
                 prune: str = "magnitude", grow: str = "gradient", schedule: str = "cosine",
                 redistribution: Optional[str] = None, fix: bool = False, random_state: Any = None,
                 optimizer: Optional[torch.optim.Optimizer] = None, regrow_init: str = "zero",
                 mask_gradients: bool = True, chunk_rows: int = 4096, grad_window: int = 1,
                 balance: Optional[str] = None, regrow_moments: str = "zero", grad_decay: float = 0.0):
        self.density = check_density(density)
        if isinstance(update_interval, bool) or not isinstance(update_interval, (int, np.integer)) \
                or update_interval < 1:
            raise ValueError(f"update_interval must be a positive int; got {update_interval!r}")
        for name, value in (("update_ratio", update_ratio), ("final_update_ratio", final_update_ratio)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
        if end_step is not None and (isinstance(end_step, bool) or not isinstance(end_step, (int, np.integer))
                                     or end_step < 0):
            raise ValueError(f"end_step must be None or a non-negative int; got {end_step!r}")
        for name, value, choices in (("prune", prune, PRUNE_RULES), ("grow", grow, GROW_RULES),
                                     ("schedule", schedule, SCHEDULES), ("regrow_init", regrow_init, REGROW_INITS),
                                     ("regrow_moments", regrow_moments, REGROW_MOMENTS),
                                     ("redistribution", redistribution, REDISTRIBUTIONS)):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}; got {value!r}")
        if isinstance(grad_window, bool) or not isinstance(grad_window, (int, np.integer)) \
                or not 1 <= grad_window <= update_interval:
            raise ValueError(f"grad_window must be an int in [1, update_interval={update_interval}]; "
                             f"got {grad_window!r}")
        self.grad_window = int(grad_window)
        if isinstance(grad_decay, bool) or not isinstance(grad_decay, numbers.Real) or not 0 <= grad_decay <= 1:
            raise ValueError(f"grad_decay must be a number in [0, 1]; got {grad_decay!r}")
        self.grad_decay = float(grad_decay)
        self._growth_steps = 0.0   # the steps the growth gradient sums over, older windows weighted by the decay
        if balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}; got {balance!r}")
        if balance == "row" and redistribution == "global":
            raise ValueError("balance='row' keeps every row's count, so it cannot be combined with "
                             "redistribution='global'")
        self.balance = balance
        self.update_interval = int(update_interval)
        self.update_ratio = float(update_ratio)
        self.final_update_ratio = float(final_update_ratio)
        self.end_step = None if end_step is None else int(end_step)
        self.prune, self.grow, self.schedule = prune, grow, schedule
        self.redistribution = None if redistribution == "none" else redistribution
        self.fix = bool(fix)
        self.regrow_init = regrow_init
        self.regrow_moments = regrow_moments
        self.mask_gradients = bool(mask_gradients)
        self.chunk_rows = int(chunk_rows)
        self.optimizer = optimizer
        self._random = backend.check_random_state(random_state)
        self.step_count = 0
        self.updates: list[dict] = []
        self.targets: list = []
        self._build_targets(params_or_model)
        if not self.targets:
            raise ValueError("params_or_model has no parameter to sparsify (no parameter with dim >= 2, "
                             "embedding weight or SparseTable)")
        if self.balance == "row" and any(t.kind != "table" or not t.table.row_balanced for t in self.targets):
            raise ValueError("balance='row' works on row-balanced SparseTables only "
                             "(SparseTable(..., row_balanced=True)); masked parameters are not supported")
        self._set_recording(self._update_ahead(0))

    # -- construction -------------------------------------------------------------------------
    def _build_targets(self, params_or_model: Any) -> None:
        named: list[tuple[str, nn.Parameter]] = []
        if isinstance(params_or_model, nn.Module):
            table_params = set()
            for name, module in params_or_model.named_modules():
                if isinstance(module, SparseTable):
                    self.targets.append(_TableTarget(name or "table", module))
                    table_params.add(id(module.values))
            embedding_params = {id(m.weight) for m in params_or_model.modules() if _is_embedding_weight(m)}
            for name, param in params_or_model.named_parameters():
                if id(param) in table_params or not param.requires_grad:
                    continue
                if param.dim() >= 2 or id(param) in embedding_params:
                    named.append((name, param))
        else:
            if isinstance(params_or_model, torch.Tensor):
                raise TypeError("params_or_model must be an nn.Module or a list of parameters; got one tensor "
                                "(wrap it in a list)")
            for i, item in enumerate(params_or_model):
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                    name, param = item
                else:
                    name, param = str(i), item
                if isinstance(param, SparseTable):
                    self.targets.append(_TableTarget(name, param))
                    continue
                if not isinstance(param, torch.Tensor):
                    raise TypeError(f"params_or_model[{i}] must be a parameter or (name, parameter); "
                                    f"got {type(param).__name__}")
                named.append((name, param))
        for name, param in named:
            budget = exact_budget(self.density, param.numel())
            flat = random_positions(param.numel(), budget, self._random.torch)
            mask = torch.zeros(param.numel(), dtype=torch.bool)
            mask[flat] = True
            target = _MaskedTarget(name, param, mask.view(param.shape).to(param.device))
            target.apply_mask()
            if self.mask_gradients and param.requires_grad:
                target.handle = param.register_hook(target.hook)
            self.targets.append(target)

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> "DynamicSparsity":
        """Use ``optimizer``'s state for resets and remaps from now on; returns self."""
        self.optimizer = optimizer
        return self

    def remove_hooks(self) -> None:
        """Remove the gradient hooks from the masked parameters and drop any recorded window gradient and
        any gradient carried by ``grad_decay`` (when training is over, or before pickling the model)."""
        for target in self.targets:
            if getattr(target, "handle", None) is not None:
                target.handle.remove()
                target.handle = None
            target.release_gradients()

    # -- schedule -----------------------------------------------------------------------------
    def update_ratio_at(self, step: int) -> float:
        """``r_t`` at optimizer step ``step`` (see :func:`update_ratio`)."""
        return update_ratio(step, self.update_ratio, self.final_update_ratio, self.end_step, self.schedule)

    def _is_update_step(self, step: int) -> bool:
        if self.fix or step <= 0 or step % self.update_interval:
            return False
        if self.end_step is not None and step > self.end_step:
            return False
        return self.update_ratio_at(step) > 0

    def _update_ahead(self, step: int) -> bool:
        """Whether an update comes within the ``grad_window`` steps after ``step``."""
        return any(self._is_update_step(step + ahead) for ahead in range(1, self.grad_window + 1))

    def _set_recording(self, on: bool) -> None:
        """Start (keeping what is recorded already) or stop (dropping it) recording growth gradients."""
        on = on and self.grow == "gradient"
        for target in self.targets:
            if target.kind == "table":
                if on != target.table.recording:
                    target.table.record_gradients(on, accumulate=self.grad_window > 1)
            elif on != target.recording:
                target.recording = on
                target.dense_grad = None

    # -- the step -----------------------------------------------------------------------------
    def step(self) -> bool:
        """Call after ``optimizer.step()``: re-apply the masks and, at update steps, prune and regrow.

        Returns
        -------
        bool
            Whether this step changed the active sets.
        """
        self.step_count += 1
        for target in self.targets:
            if target.kind == "masked":
                target.apply_mask()
        changed = False
        if self._is_update_step(self.step_count):
            self._update(self.step_count)
            changed = True
            self._set_recording(False)  # the next window starts afresh
        self._set_recording(self._update_ahead(self.step_count))
        return changed

    @property
    def _payload(self) -> bool:
        """Whether growth must bring the signed gradient of the grown positions along."""
        return self.regrow_init == "gradient" or self.regrow_moments == "gradient"

    def _mean_gradient_(self, payload: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The grown positions' mean gradient over the growth window, when ``regrow_moments="gradient"``:
        ``payload`` (their summed gradient, not needed after the regrown values are set) divided in place.
        With ``grad_decay``, by the steps of the windows it sums, each older one ``grad_decay`` times less:
        exact for positions inactive since the start, an underestimate for those pruned since."""
        if self.regrow_moments != "gradient" or payload is None:
            return None
        return payload.div_(self._growth_steps)

    @torch.no_grad()
    def _update(self, step: int) -> None:
        for target in self.targets:
            if target.kind == "table":  # the step is taken; rewiring would drop this gradient anyway
                target.table.values.grad = None
        ratio = self.update_ratio_at(step)
        random = self._random.torch if self.grow == "random" else None
        self._growth_steps = self.grad_window + self.grad_decay * self._growth_steps
        decay = self.grad_decay
        changed = 0
        if self.redistribution == "global":
            prunes, grows, payloads = self._select_global(ratio, random)
            for target in self.targets:
                target.release_gradients(decay)
            for target, prune, grow, payload in zip(self.targets, prunes, grows, payloads):
                self._apply(target, prune, grow, payload)
                changed += prune.numel()
        elif self.balance == "row":
            for target in self.targets:
                prune, grow, payload = target.table.balanced_selection(ratio, self.chunk_rows, random, self._payload)
                target.release_gradients(decay)
                self._apply(target, prune, grow, payload)
                changed += prune.numel()
        else:  # one tensor at a time, so that only one tensor's temporaries exist at once
            for target in self.targets:
                k = update_count(ratio, target.active, target.numel - target.active)
                prune = smallest_k(target.prune_scores(), k)
                candidates = functools.partial(target.grow_candidates, self.chunk_rows, 0, random, self._payload)
                grow, payload = largest_k(replayable(candidates, random), k)
                prune, grow = _narrow(prune, target.numel), _narrow(grow, target.numel)
                target.release_gradients(decay)  # the window's gradient is not needed past this point
                self._apply(target, prune, grow, payload)
                changed += prune.numel()
        self.updates.append({"step": step, "ratio": ratio, "changed": int(changed),
                             "active": {t.name: t.active for t in self.targets}})

    def _select_global(self, ratio: float, random: Optional[torch.Generator]):
        actives = [t.active for t in self.targets]
        numels = [t.numel for t in self.targets]
        k = update_count(ratio, sum(actives), sum(numels) - sum(actives))
        device = self.targets[0].param.device
        scores = torch.cat([t.prune_scores().to(device) for t in self.targets])
        prunes = split_positions(smallest_k(scores, k), actives)
        offsets = np.concatenate([[0], np.cumsum(numels)])[:-1]

        def chunks():
            for target, offset in zip(self.targets, offsets):
                for off, s, payload in target.grow_candidates(self.chunk_rows, int(offset), random, self._payload):
                    yield off, s.to(device), None if payload is None else payload.to(device)

        grow, payload = largest_k(replayable(chunks, random), k)
        grows = split_positions(grow, numels)
        payloads = []
        for part, (lo, size) in zip(grows, zip(offsets, numels)):
            if payload is None:
                payloads.append(None)
            else:
                sel = (grow >= int(lo)) & (grow < int(lo) + size)
                payloads.append(payload[sel])
        return prunes, grows, payloads

    def _apply(self, target, prune: torch.Tensor, grow: torch.Tensor, payload: Optional[torch.Tensor]) -> None:
        if target.kind == "masked":
            positions = target.active_positions()
            pruned = positions[prune.to(positions.device)]
            flat = target.param.data.view(-1)
            mask = target.mask.view(-1)
            grow = grow.to(flat.device)
            if bool(mask[grow].any()):
                raise RuntimeError("growth chose an active position")
            survivors = flat[mask].clone() if self.regrow_init == "random" else flat[:0]
            init = _regrown_values(self.regrow_init, payload, survivors, flat[pruned].clone(), grow.numel(),
                                   self._random.torch, flat)
            mask[pruned] = False
            flat[pruned] = 0
            mask[grow] = True
            flat[grow] = init
            target.refresh()
            reset_optimizer_state(self.optimizer, target.param, torch.cat([pruned, grow]))
            mean_gradient = self._mean_gradient_(payload)
            if mean_gradient is not None:
                seed_optimizer_state(self.optimizer, target.param, grow, mean_gradient)
        else:
            table = target.table
            vals = table.values.detach()
            prune = prune.to(vals.device)
            survivors = pruned = vals[:0]
            if self.regrow_init == "random":
                keep = torch.ones(vals.numel(), dtype=torch.bool, device=vals.device)
                keep[prune] = False
                survivors = vals[keep]
            elif self.regrow_init == "gradient":
                pruned = vals[prune]
            init = _regrown_values(self.regrow_init, payload, survivors, pruned, grow.numel(), self._random.torch,
                                   vals)
            del vals, survivors, pruned   # views of the old values: they would keep them alive through the move
            table.rewire(prune, grow, init, optimizer=self.optimizer, grow_gradient=self._mean_gradient_(payload))
        release_host_memory(target.param.device)

    # -- reports and state --------------------------------------------------------------------
    @property
    def masks(self) -> dict:
        return {t.name: t.mask for t in self.targets if t.kind == "masked"}

    def density_report(self) -> dict:
        """Per tensor ``{"active", "numel", "density"}``, and the same under ``"total"``."""
        report = {}
        for t in self.targets:
            report[t.name] = {"active": t.active, "numel": t.numel, "density": t.active / t.numel}
        active = sum(r["active"] for r in report.values())
        numel = sum(r["numel"] for r in report.values())
        report["total"] = {"active": active, "numel": numel, "density": active / numel}
        return report

    def state_dict(self) -> dict:
        """Step count and masks (tables keep their active set in the model's own ``state_dict``)."""
        return {"step_count": self.step_count,
                "masks": {name: mask.detach().cpu().clone() for name, mask in self.masks.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` gave; masks are re-applied to the parameters."""
        masks = state.get("masks", {})
        for target in self.targets:
            if target.kind == "masked" and target.name in masks:
                mask = masks[target.name].to(device=target.mask.device, dtype=torch.bool)
                if mask.shape != target.mask.shape:
                    raise ValueError(f"mask {target.name!r} has shape {tuple(mask.shape)}; "
                                     f"expected {tuple(target.mask.shape)}")
                target.mask.copy_(mask)
                target.refresh()
                target.apply_mask()
        self.step_count = int(state.get("step_count", self.step_count))
        self._set_recording(self._update_ahead(self.step_count))
