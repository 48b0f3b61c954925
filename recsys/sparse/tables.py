"""Memory-true sparse storage: :class:`SparseTable`, an embedding table that holds only its active weights.

Only the active weights exist, as a ``values`` parameter of exactly ``budget`` entries and sorted flat
``indices`` with a CSR row pointer; optimizer state lives on ``values`` only. The gradient that chooses
which weights grow is needed at the inactive entries only: a hook records the gradients of the row
blocks the forward pass gathers during the growth window and sums them into one vector over the
inactive entries, read chunk by chunk of rows at the update, so the dense gradient never exists whole
(except where the forward pass itself built the whole table, as LightGCN's propagation does).
:class:`Rewiring` moves values, indices and optimizer state when the active set changes.

Examples
--------
>>> from recsys.sparse.tables import SparseTable
>>> table = SparseTable(10, 4, density=0.5, random_state=0, device="cpu")
>>> table.budget, tuple(table.to_dense().shape)
(20, (10, 4))
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import nn

from recsys.sparse.optimizer_state import remap_optimizer_state, replace_parameter
from recsys.sparse.selection import (GROW_RULES, _narrow, check_density, exact_budget, largest_k, random_positions,
                                     replayable, smallest_k, update_count)
from tensorkit import backend
from tensorkit.base import check_parameters, integers

__all__ = ["Rewiring", "SparseTable"]


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
        Seeds the initial random positions and values, then the random growth of
        :meth:`prune_and_grow` when it is given no generator.
    device, dtype :
        Through :func:`tensorkit.backend.resolve_device` / :func:`~tensorkit.backend.resolve_dtype`.
    row_balanced : bool, default=False
        Give every row exactly ``round(density * dim)`` active weights (the budget is then ``n_rows`` times
        that); :class:`~recsys.sparse.DynamicSparsity` with ``balance="row"`` keeps it so.
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
    _rng = None

    def __init__(self, n_rows: int, dim: int, density: float = 0.5, init_std: float = 0.1,
                 random_state: Any = None, device: Any = None, dtype: Any = None, row_balanced: bool = False,
                 row_counts: Any = None):
        super().__init__()
        check_parameters({"n_rows": [integers(1)], "dim": [integers(1)]}, {"n_rows": n_rows, "dim": dim},
                         type(self).__name__)
        self.n_rows, self.dim = int(n_rows), int(dim)
        dev = backend.resolve_device("cpu" if device is None else device)
        dt = backend.resolve_dtype(dtype)
        source = backend.check_random_state(random_state)
        gen = source.torch
        self._rng = source.numpy   # sub-seeds for prune_and_grow's random growth
        self.row_balanced = bool(row_balanced) or row_counts is not None
        if row_counts is not None:
            counts = self._check_row_counts(row_counts)
            self.density = float(counts.sum()) / self.numel
        else:
            self.density = check_density(density, caller=type(self).__name__)
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

    @torch.no_grad()
    def synchronize_gradients(self, reduce: Callable[[torch.Tensor], None]) -> None:
        """Sum the recorded growth gradient over data-parallel processes while recording: the kept row
        blocks are folded into the vector over the inactive entries, which ``reduce`` sums in place
        (every process holds one of the same length), and the counts of recorded blocks likewise."""
        if not self.recording:
            return
        self._fold_records()
        reduce(self._inactive_grad)
        count = self.values.detach().new_tensor([float(self._n_recorded)], dtype=torch.float64)
        reduce(count)
        self._n_recorded = int(count.item())

    def slots_of_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The slots of ``values`` (positions in ``indices``) that hold the active weights of ``rows``
        (distinct row indices), row by row: what a row-sparse gradient exchange sends for them."""
        rows = torch.as_tensor(rows, device=self.indptr.device).long().reshape(-1)
        return self._block_layout(rows)[0]

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
        :meth:`record_gradients` before the forward/backward pass); ``"random"`` uniformly random ones
        (drawn from ``generator``, else from the table's ``random_state``). Regrown weights start at
        zero; ``optimizer``'s state is remapped (survivors keep their moments).
        :class:`~recsys.sparse.DynamicSparsity` does the same with a schedule, for several tables and
        masked parameters.

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
            random = (generator or self._spawn_generator()) if grow == "random" else None
            grown, _ = largest_k(replayable(lambda: self.grow_candidates(chunk_rows, 0, random, payload=False),
                                            random), k)
            self.record_gradients(False)
            pruned = self.indices.index_select(0, prune.to(self.indices.device)).long()
            self.rewire(prune, grown, optimizer=optimizer)
        return pruned, grown.to(pruned.device)

    def _spawn_generator(self) -> torch.Generator:
        """A CPU generator seeded with the next sub-seed of the table's ``random_state``."""
        seed = int(check_random_state(self._rng).randint(2**31 - 1))
        return torch.Generator().manual_seed(seed)

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
