"""Dynamic sparse training: masks, the prune/grow schedule and budget accounting.

This package implements the training engine of Dynamic Sparse Learning (DSL; Wang, Sui, Wu, Zheng and
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

Adam's ``step`` count is kept through updates (see :mod:`recsys.sparse.optimizer_state`); evidence
for the choices that differ from the paper: docs/dsl.md.

The package's modules, by job: :mod:`~recsys.sparse.selection` (budgets, schedule, exact top-k),
:mod:`~recsys.sparse.optimizer_state`, :mod:`~recsys.sparse.tables` (:class:`SparseTable`),
:mod:`~recsys.sparse.targets` (masked parameters and tables as the engine sees them) and
:mod:`~recsys.sparse.engine` (:class:`DynamicSparsity`).

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

from recsys.sparse.engine import DynamicSparsity, release_host_memory
from recsys.sparse.optimizer_state import (GRADIENT_STATE_POWERS, remap_optimizer_state, replace_parameter,
                                           reset_optimizer_state, seed_optimizer_state)
from recsys.sparse.selection import (BALANCES, GROW_RULES, PRUNE_RULES, REDISTRIBUTIONS, REGROW_INITS, REGROW_MOMENTS,
                                     SCHEDULES, check_density, degree_row_counts, exact_budget, largest_k,
                                     random_positions, replayable, smallest_k, split_positions, update_count,
                                     update_ratio)
from recsys.sparse.tables import Rewiring, SparseTable

__all__ = [
    "BALANCES",
    "GRADIENT_STATE_POWERS",
    "GROW_RULES",
    "PRUNE_RULES",
    "REDISTRIBUTIONS",
    "REGROW_INITS",
    "REGROW_MOMENTS",
    "SCHEDULES",
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
