"""The tensors :class:`~recsys.sparse.DynamicSparsity` sparsifies, one class per way of holding them.

A target knows how to score its weights for pruning and growth, how to record the growth gradient
and how to apply one prune/grow update to itself; the engine treats all targets alike.

- :class:`MaskedTarget`: a dense parameter under a boolean mask. A mask zeroes the inactive entries
  after every step and (by a gradient hook) their gradient before the optimizer sees it, so the
  optimizer state stays zero there.
- :class:`TableTarget`: a :class:`~recsys.sparse.SparseTable`, which stores its active weights only.

Examples
--------
>>> import torch
>>> from recsys.sparse.targets import MaskedTarget
>>> w = torch.nn.Parameter(torch.ones(2, 3))
>>> target = MaskedTarget("w", w, torch.tensor([[True, False, True], [False, True, False]]))
>>> target.apply_mask()
>>> target.active, w.detach().sum().item()
(3, 3.0)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
from torch import nn

from recsys.sparse.optimizer_state import reset_optimizer_state, seed_optimizer_state
from recsys.sparse.selection import REGROW_INITS
from recsys.sparse.tables import SparseTable

__all__ = ["MaskedTarget", "TableTarget", "regrown_values"]


def regrown_values(mode: str, grads: Optional[torch.Tensor], survivors: torch.Tensor, pruned: torch.Tensor,
                   count: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Initial values of ``count`` regrown weights.

    ``zero`` (RigL); ``random``: normal with the standard deviation of the surviving weights (SET);
    ``gradient``: the negative gradient, scaled so that its root mean square equals that of the pruned
    weights (a step of typical size along the steepest descent direction; not larger, because an
    update early in training regrows up to half the active weights at once). How the scale was
    chosen: docs/dsl.md.
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


def _mean_gradient_(payload: Optional[torch.Tensor], growth_steps: Optional[float]) -> Optional[torch.Tensor]:
    """The grown positions' mean gradient (``payload``, their summed gradient, divided in place by the
    steps it sums), or None where the regrown moments start at zero (``growth_steps`` None)."""
    if growth_steps is None or payload is None:
        return None
    return payload.div_(growth_steps)


class MaskedTarget:
    """A dense parameter under a boolean mask.

    Parameters
    ----------
    name : str
    param : nn.Parameter
    mask : BoolTensor of ``param``'s shape, on its device
        True at the active entries.
    """

    row_balanced = False

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
        """One chunk for :func:`~recsys.sparse.largest_k`: ``|grad|`` (or random scores), ``-inf`` where active."""
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
        """The gradient hook: sum the growth window's gradient while recording, zero the inactive entries."""
        if self.recording:
            if self.dense_grad is None:
                carried, self.carried = self.carried, None
                self.dense_grad = grad.detach().clone() if carried is None else carried.add_(grad.detach())
            else:
                self.dense_grad = self.dense_grad + grad.detach()
        return grad * self.factor

    def record(self, on: bool, accumulate: bool) -> None:
        """Start (keeping what is recorded) or stop (dropping it) recording the growth gradient."""
        if on != self.recording:
            self.recording = on
            self.dense_grad = None

    @torch.no_grad()
    def synchronize_gradients(self, reduce: Callable[[torch.Tensor], None]) -> None:
        """Sum the recorded growth gradient over data-parallel processes with ``reduce`` (in place); a
        process that recorded nothing takes part with zeros (or the gradient it carries)."""
        if not self.recording:
            return
        if self.dense_grad is None:
            carried, self.carried = self.carried, None
            self.dense_grad = torch.zeros_like(self.param.detach()) if carried is None else carried
        reduce(self.dense_grad)

    def before_update(self) -> None:
        """Nothing to drop before an update (the parameter keeps its gradient for growth)."""

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
        """Zero the inactive entries (after every optimizer step)."""
        self.param.data.mul_(self.factor)

    def balanced_selection(self, *args: Any, **kwargs: Any):
        raise ValueError("balance='row' works on row-balanced SparseTables only; masked parameters are not supported")

    def apply(self, prune: torch.Tensor, grow: torch.Tensor, payload: Optional[torch.Tensor], *, regrow_init: str,
              growth_steps: Optional[float], optimizer: Optional[torch.optim.Optimizer],
              generator: torch.Generator) -> None:
        """Deactivate the active slots ``prune`` and activate the flat positions ``grow``.

        Regrown weights start at :func:`regrown_values`; the optimizer state is reset at both, then,
        with ``growth_steps`` (``regrow_moments="gradient"``), seeded at the grown positions from their
        mean gradient, ``payload / growth_steps``.
        """
        positions = self.active_positions()
        pruned = positions[prune.to(positions.device)]
        flat = self.param.data.view(-1)
        mask = self.mask.view(-1)
        grow = grow.to(flat.device)
        if bool(mask[grow].any()):
            raise RuntimeError("growth chose an active position")
        survivors = flat[mask].clone() if regrow_init == "random" else flat[:0]
        init = regrown_values(regrow_init, payload, survivors, flat[pruned].clone(), grow.numel(), generator, flat)
        mask[pruned] = False
        flat[pruned] = 0
        mask[grow] = True
        flat[grow] = init
        self.refresh()
        reset_optimizer_state(optimizer, self.param, torch.cat([pruned, grow]))
        mean_gradient = _mean_gradient_(payload, growth_steps)
        if mean_gradient is not None:
            seed_optimizer_state(optimizer, self.param, grow, mean_gradient)

    def load_mask(self, mask: torch.Tensor) -> None:
        """Take ``mask`` (from :meth:`DynamicSparsity.state_dict`) and re-apply it to the parameter."""
        mask = mask.to(device=self.mask.device, dtype=torch.bool)
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask {self.name!r} has shape {tuple(mask.shape)}; expected {tuple(self.mask.shape)}")
        self.mask.copy_(mask)
        self.refresh()
        self.apply_mask()

    def state_bytes(self) -> int:
        """Bytes the target holds beside the parameter between steps: the mask and its 0/1 factor."""
        return self.mask.numel() * self.mask.element_size() + self.factor.numel() * self.factor.element_size()


class TableTarget:
    """A :class:`~recsys.sparse.SparseTable` (memory-true storage); its active set lives in the table.

    Parameters
    ----------
    name : str
    table : SparseTable
    """

    mask = None   # the active set is the table's ``indices``
    handle = None

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

    @property
    def row_balanced(self) -> bool:
        return self.table.row_balanced

    def prune_scores(self) -> torch.Tensor:
        return self.table.prune_scores()

    def record(self, on: bool, accumulate: bool) -> None:
        """Start or stop the table's recording of the growth gradient (:meth:`SparseTable.record_gradients`)."""
        if on != self.table.recording:
            self.table.record_gradients(on, accumulate=accumulate)

    def synchronize_gradients(self, reduce: Callable[[torch.Tensor], None]) -> None:
        """Sum the table's recorded growth gradient over data-parallel processes
        (:meth:`SparseTable.synchronize_gradients`)."""
        self.table.synchronize_gradients(reduce)

    def before_update(self) -> None:
        """Drop the values' gradient: the step is taken, and rewiring would drop it anyway."""
        self.table.values.grad = None

    def release_gradients(self, decay: float = 0.0) -> None:
        """Drop the recorded gradients (once growth has been chosen), before the rewiring's temporaries exist,
        keeping ``decay`` times them for the next window (:meth:`SparseTable.carry_gradients`)."""
        self.table.carry_gradients(decay)

    def apply_mask(self) -> None:
        """Nothing to do: inactive weights do not exist."""

    def grow_candidates(self, chunk_rows: int, offset: int, random: Optional[torch.Generator] = None,
                        payload: bool = True):
        """Score chunks for :func:`~recsys.sparse.largest_k` (:meth:`SparseTable.grow_candidates`)."""
        if random is None and not self.table.has_gradients():
            raise RuntimeError(f"table {self.name!r} recorded no gradient before this update step; run the "
                               "forward and backward pass between DynamicSparsity.step() calls")
        return self.table.grow_candidates(chunk_rows, offset, random, payload)

    def balanced_selection(self, ratio: float, chunk_rows: int, random: Optional[torch.Generator],
                           payload: bool):
        """Per-row prune/grow choices (:meth:`SparseTable.balanced_selection`)."""
        return self.table.balanced_selection(ratio, chunk_rows, random, payload)

    def apply(self, prune: torch.Tensor, grow: torch.Tensor, payload: Optional[torch.Tensor], *, regrow_init: str,
              growth_steps: Optional[float], optimizer: Optional[torch.optim.Optimizer],
              generator: torch.Generator) -> None:
        """Drop the slots ``prune`` and activate the flat positions ``grow`` (:meth:`SparseTable.rewire`),
        the regrown weights at :func:`regrown_values` and their optimizer state as :meth:`MaskedTarget.apply`."""
        vals = self.table.values.detach()
        prune = prune.to(vals.device)
        survivors = pruned = vals[:0]
        if regrow_init == "random":
            keep = torch.ones(vals.numel(), dtype=torch.bool, device=vals.device)
            keep[prune] = False
            survivors = vals[keep]
        elif regrow_init == "gradient":
            pruned = vals[prune]
        init = regrown_values(regrow_init, payload, survivors, pruned, grow.numel(), generator, vals)
        del vals, survivors, pruned   # views of the old values: they would keep them alive through the move
        self.table.rewire(prune, grow, init, optimizer=optimizer,
                          grow_gradient=_mean_gradient_(payload, growth_steps))

    def load_mask(self, mask: torch.Tensor) -> None:
        """Tables keep their active set in the model's own ``state_dict``; nothing to load."""

    def state_bytes(self) -> int:
        """Nothing beside the table's own parameters and buffers."""
        return 0
