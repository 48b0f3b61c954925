"""The prune/grow engine: :class:`DynamicSparsity` around any model and torch optimizer.

Every ``update_interval`` optimizer steps each target (:mod:`recsys.sparse.targets`) drops its ``k``
active weights of smallest magnitude and activates ``k`` inactive ones of largest gradient magnitude
(RigL's rule), ``k = ceil(r_t * active)`` with ``r_t`` from :func:`~recsys.sparse.update_ratio`.

Examples
--------
>>> import torch
>>> from recsys.sparse.engine import DynamicSparsity
>>> layer = torch.nn.Linear(4, 4)
>>> ds = DynamicSparsity(layer, density=0.5, random_state=0)
>>> ds.density_report()["weight"]
{'active': 8, 'numel': 16, 'density': 0.5}
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from recsys.sparse.selection import (BALANCES, GROW_RULES, PRUNE_RULES, REDISTRIBUTIONS, REGROW_INITS,
                                     REGROW_MOMENTS, SCHEDULES, _narrow, exact_budget, largest_k,
                                     random_positions, replayable, smallest_k, split_positions, update_count,
                                     update_ratio)
from recsys.sparse.tables import SparseTable
from recsys.sparse.targets import MaskedTarget, TableTarget
from tensorkit import backend
from tensorkit.base import StrOptions, check_parameters, integers, reals

__all__ = ["DynamicSparsity", "release_host_memory"]


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
    mapped, so without this the process's resident memory after an update stays above what is
    live. No-op for CUDA tensors and other C libraries.
    """
    if backend.resolve_device(device).type != "cpu":
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _options(choices: tuple) -> list:
    """The constraint "one of ``choices``" (strings, and None where it is one)."""
    return [StrOptions({c for c in choices if c is not None})] + ([None] if None in choices else [])


_CONSTRAINTS = {
    "density": [reals(0, 1, closed="right")], "update_interval": [integers(1)], "update_ratio": [reals(0, 1)],
    "final_update_ratio": [reals(0, 1)], "end_step": [integers(0), None], "prune": _options(PRUNE_RULES),
    "grow": _options(GROW_RULES), "schedule": _options(SCHEDULES), "redistribution": _options(REDISTRIBUTIONS),
    "regrow_init": _options(REGROW_INITS), "chunk_rows": [integers(1)], "grad_window": [integers(1)],
    "balance": _options(BALANCES), "regrow_moments": _options(REGROW_MOMENTS), "grad_decay": [reals(0, 1)],
}


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
        Initial value of regrown weights (see :func:`recsys.sparse.targets.regrown_values`); RigL uses zero.
    regrow_moments : {"zero", "gradient"}, default="zero"
        Initial optimizer state of regrown weights. "zero" (RigL's and the paper's reset): under a bias
        correction near 1, Adam's first steps of a regrown weight are then several times the learning rate
        (see :mod:`recsys.sparse.optimizer_state`). "gradient" (an extension): the state a steady gradient ``g`` would
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
    synchronize : callable or None
        For data-parallel training (set by the trainer, None by default): ``synchronize(tensor)`` sums
        ``tensor`` over the processes in place. Each update first sums the recorded growth gradients with
        it, so every process makes the same prune/grow choices.
    holds_carried : bool
        Whether this process keeps the gradient carried by ``grad_decay`` (default True). Under
        ``synchronize`` exactly one process should, as the sum adds every process's recording.
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
        check_parameters(_CONSTRAINTS, {
            "density": density, "update_interval": update_interval, "update_ratio": update_ratio,
            "final_update_ratio": final_update_ratio, "end_step": end_step, "prune": prune, "grow": grow,
            "schedule": schedule, "redistribution": redistribution, "regrow_init": regrow_init,
            "chunk_rows": chunk_rows, "grad_window": grad_window, "balance": balance,
            "regrow_moments": regrow_moments, "grad_decay": grad_decay}, type(self).__name__)
        self.density = float(density)
        if grad_window > update_interval:
            raise ValueError(f"grad_window must be an int in [1, update_interval={update_interval}]; "
                             f"got {grad_window!r}")
        self.grad_window = int(grad_window)
        self.grad_decay = float(grad_decay)
        self._growth_steps = 0.0   # the steps the growth gradient sums over, older windows weighted by the decay
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
        self.synchronize: Optional[Callable[[torch.Tensor], None]] = None
        self.holds_carried = True
        self.updates: list[dict] = []
        self.targets: list = []
        self._build_targets(params_or_model)
        if not self.targets:
            raise ValueError("params_or_model has no parameter to sparsify (no parameter with dim >= 2, "
                             "embedding weight or SparseTable)")
        if self.balance == "row" and not all(t.row_balanced for t in self.targets):
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
                    self.targets.append(TableTarget(name or "table", module))
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
                    self.targets.append(TableTarget(name, param))
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
            target = MaskedTarget(name, param, mask.view(param.shape).to(param.device))
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

    def updates_next(self) -> bool:
        """Whether the next :meth:`step` prunes and regrows."""
        return self._is_update_step(self.step_count + 1)

    def _update_ahead(self, step: int) -> bool:
        """Whether an update comes within the ``grad_window`` steps after ``step``."""
        return any(self._is_update_step(step + ahead) for ahead in range(1, self.grad_window + 1))

    def _set_recording(self, on: bool) -> None:
        """Start (keeping what is recorded already) or stop (dropping it) recording growth gradients."""
        on = on and self.grow == "gradient"
        for target in self.targets:
            target.record(on, accumulate=self.grad_window > 1)

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

    @torch.no_grad()
    def _update(self, step: int) -> None:
        if self.synchronize is not None and self.grow == "gradient":   # first: nothing before it may fail alone
            for target in self.targets:
                target.synchronize_gradients(self.synchronize)
        for target in self.targets:
            target.before_update()
        ratio = self.update_ratio_at(step)
        random = self._random.torch if self.grow == "random" else None
        self._growth_steps = self.grad_window + self.grad_decay * self._growth_steps
        decay = self.grad_decay if self.holds_carried else 0.0
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
                prune, grow, payload = target.balanced_selection(ratio, self.chunk_rows, random, self._payload)
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
        # regrown moments from the mean gradient: the payload (summed gradient) over the steps it sums, each
        # older window grad_decay times less (exact for positions inactive since the start)
        growth_steps = self._growth_steps if self.regrow_moments == "gradient" else None
        target.apply(prune, grow, payload, regrow_init=self.regrow_init, growth_steps=growth_steps,
                     optimizer=self.optimizer, generator=self._random.torch)
        release_host_memory(target.param.device)

    # -- reports and state --------------------------------------------------------------------
    @property
    def masks(self) -> dict:
        return {t.name: t.mask for t in self.targets if t.mask is not None}

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
            if target.name in masks:
                target.load_mask(masks[target.name])
        self.step_count = int(state.get("step_count", self.step_count))
        self._set_recording(self._update_ahead(self.step_count))
