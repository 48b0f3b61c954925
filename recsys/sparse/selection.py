"""Budgets, the update schedule and exact top-k selections of dynamic sparse training.

Every tensor's budget is :func:`exact_budget`; rows of a row-balanced table share it by
:func:`degree_row_counts`; the fraction replaced at a step is :func:`update_ratio` and the count
:func:`update_count`. :func:`smallest_k` picks the weights that leave and :func:`largest_k` (over
chunks of scores, so a dense score vector never exists whole) the ones that join; both take exactly
``k``, whatever the ties.

Examples
--------
>>> import torch
>>> from recsys.sparse.selection import largest_k, smallest_k
>>> scores = torch.tensor([0.5, 0.1, 0.9, 0.1, 0.7])
>>> sorted(smallest_k(scores, 2).tolist())
[1, 3]
>>> positions, _ = largest_k([(0, scores[:3], None), (3, scores[3:], None)], 2)
>>> sorted(positions.tolist())
[2, 4]
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import torch

from tensorkit.base import check_parameters, integers, reals, validate_params

__all__ = [
    "BALANCES",
    "GROW_RULES",
    "PRUNE_RULES",
    "REDISTRIBUTIONS",
    "REGROW_INITS",
    "REGROW_MOMENTS",
    "SCHEDULES",
    "check_density",
    "degree_row_counts",
    "exact_budget",
    "largest_k",
    "random_positions",
    "replayable",
    "smallest_k",
    "split_positions",
    "update_count",
    "update_ratio",
]

# the choices of the engine's rules (checked by DynamicSparsity and DSLRecommender)
SCHEDULES = ("cosine", "linear", "constant")
GROW_RULES = ("gradient", "random")
PRUNE_RULES = ("magnitude",)
REDISTRIBUTIONS = (None, "none", "global")
REGROW_INITS = ("zero", "random", "gradient")
REGROW_MOMENTS = ("zero", "gradient")
BALANCES = (None, "row")


_DENSITY = reals(0, 1, closed="right")


def check_density(density: Any, name: str = "density", caller: str = "check_density") -> float:
    """``density`` as a float in (0, 1], or an ``InvalidParameterError`` naming it and ``caller``."""
    check_parameters({name: [_DENSITY]}, {name: density}, caller)
    return float(density)


def exact_budget(density: float, numel: int) -> int:
    """The number of active weights of a tensor of ``numel`` entries: ``round(density * numel)``, at least 1."""
    return int(min(numel, max(1, round(check_density(density, caller="exact_budget") * numel))))


@validate_params({"dim": [integers(1)], "density": [_DENSITY], "head_fraction": [reals(0, 1, closed="left")],
                  "head_ratio": [reals(1)]})
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

