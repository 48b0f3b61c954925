"""Optimizer-state surgery for dynamic sparse training: reset, seed and move per-entry state.

A prune/grow update changes which weights exist; the optimizer's per-entry state (Adam's moments,
SGD's momentum) must follow. Masked parameters keep their shape, so their state is reset
(:func:`reset_optimizer_state`) or seeded (:func:`seed_optimizer_state`) at flat positions; a
:class:`~recsys.sparse.SparseTable`'s values vector is rebuilt, so its state is moved the same way
(:func:`remap_optimizer_state`) and the new parameter takes the old one's place
(:func:`replace_parameter`).

Adam's ``step`` count is one number per parameter in torch and is deliberately kept: resetting it
would re-apply the start-up bias correction to every surviving weight. A weight whose moments are
reset therefore starts under the tensor's (already near 1) bias correction, like a weight that RigL
regrows; for a steady gradient its step after ``n`` updates is ``lr * (1 - beta1^n) / sqrt(1 - beta2^n)``,
which for the default betas peaks at about ``6.6 * lr`` (``n = 12``). Seeding the moments from the
growth gradient (``regrow_moments="gradient"``) starts them where a steady gradient would have
brought them instead. Evidence on which to prefer: docs/dsl.md.

Examples
--------
>>> import torch
>>> from recsys.sparse.optimizer_state import reset_optimizer_state
>>> w = torch.nn.Parameter(torch.ones(4))
>>> opt = torch.optim.Adam([w], lr=0.1)
>>> w.grad = torch.ones(4)
>>> opt.step()
>>> reset_optimizer_state(opt, w, torch.tensor([1, 3]))
>>> opt.state[w]["exp_avg"].tolist()
[0.10000000149011612, 0.0, 0.10000000149011612, 0.0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch

if TYPE_CHECKING:   # only for the annotation: tables imports this module
    from recsys.sparse.tables import Rewiring

__all__ = [
    "GRADIENT_STATE_POWERS",
    "remap_optimizer_state",
    "replace_parameter",
    "reset_optimizer_state",
    "seed_optimizer_state",
]

# optimizer state that ``regrow_moments="gradient"`` starts from the window's mean gradient g, as the power
# of g it holds (Adam's first and second moments, SGD's momentum); any other per-entry state starts at zero
GRADIENT_STATE_POWERS = {"exp_avg": 1, "exp_avg_sq": 2, "max_exp_avg_sq": 2, "momentum_buffer": 1}


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


