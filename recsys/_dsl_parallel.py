"""Data-parallel training of :class:`recsys.DSLRecommender` on an initialised process group.

Every rank builds the same model (the same seed, then rank 0's parameters broadcast), draws the same
per-epoch permutation of the training pairs and takes its contiguous share of each global batch
(:func:`rank_shares`), with negatives from a stream of its own (:func:`rank_random_state`). A rank's
loss is its summed BPR loss over the global batch size (and the penalty likewise), so the ranks'
gradients add up to the single-process gradient of the whole batch; they are summed row-sparse
(:func:`tensorkit.distributed.reduce_gradients`: only the embedding rows, or :class:`SparseTable`
slots, the rank's batch touched travel). The prune/grow engine sums the recorded growth gradients
over the ranks before each update (``DynamicSparsity.synchronize``) and the active sets are checked
identical after it. A rank that fails makes every rank raise.

Examples
--------
A world of one takes every pair of each batch:

>>> from recsys._dsl_parallel import rank_shares
>>> from tensorkit.distributed import World
>>> picks, batches = rank_shares(World(), n_pairs=5, batch_size=2)
>>> picks.tolist(), batches
([0, 1, 2, 3, 4], [(2, 2), (2, 2), (1, 1)])
>>> rank_shares(World(rank=1, size=2), n_pairs=5, batch_size=2)
(array([1, 3]), [(2, 1), (2, 1), (1, 0)])
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist

from recsys._dsl_net import _DSLNet
from recsys.sparse import DynamicSparsity, SparseTable
from tensorkit.distributed import (World, all_gather_objects, broadcast_parameters, check_identical,
                                   reduce_gradients, share_failure)

__all__ = ["ParallelTraining", "active_sets", "rank_random_state", "rank_shares", "share_random_state"]

_TRAINING = "training DSLRecommender"
_UPDATE = "the DSL prune/grow update"


def share_random_state(world: World, source: Any) -> None:
    """Give every rank rank 0's NumPy random state (``source`` a :class:`tensorkit.backend.RandomSource`),
    so that initial weights, masks and permutations agree even without a fixed ``random_state``."""
    if world.active:
        source.numpy.set_state(all_gather_objects(world, source.numpy.get_state())[0])


def rank_random_state(world: World, source: Any) -> np.random.RandomState:
    """This rank's own stream (for its negatives), spawned from the shared ``source``; every rank draws
    as many sub-seeds, so the shared stream stays the same on all ranks."""
    seeds = [source.spawn_seed() for _ in range(world.size)]
    return np.random.RandomState(seeds[world.rank])


def rank_shares(world: World, n_pairs: int, batch_size: int) -> tuple[np.ndarray, list]:
    """This rank's positions in an epoch's permutation and, per global batch, ``(global size, own count)``.

    Global batch ``b`` is positions ``[b * batch_size, min((b + 1) * batch_size, n_pairs))``; the rank
    takes its contiguous share of it (:meth:`World.share`).
    """
    pieces, batches = [], []
    for start in range(0, int(n_pairs), int(batch_size)):
        size = min(int(batch_size), int(n_pairs) - start)
        lo, hi = world.share(size)
        pieces.append(np.arange(start + lo, start + hi, dtype=np.int64))
        batches.append((size, hi - lo))
    return (np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)), batches


def active_sets(engine: DynamicSparsity) -> list:
    """The active set of every target: a mask, or a table's sorted active positions."""
    return [target.mask if target.mask is not None else target.table.indices for target in engine.targets]


def _all_reduce(world: World, tensor: torch.Tensor) -> None:
    dist.all_reduce(tensor, group=world.group)


def _nonzero_rows(grad: Optional[torch.Tensor]) -> torch.Tensor:
    if grad is None:
        return torch.zeros(0, dtype=torch.int64)
    return torch.nonzero(grad.reshape(grad.shape[0], -1).ne(0).any(1)).squeeze(1)


class ParallelTraining:
    """One rank's side of data-parallel DSL training: steps on its share of global batches.

    Parameters
    ----------
    world : World
        An active world (more than one process).
    net, optimizer, engine, adj :
        The fit's network, Adam, prune/grow engine (None for the dense model) and LightGCN's graph.
    reg : float
        The L2 weight of :meth:`_DSLNet.loss`.

    Every rank must call :meth:`step` and :meth:`sparsify` for every global batch (with an empty share
    if need be) and :meth:`finish_epoch` after each epoch.
    """

    def __init__(self, world: World, net: _DSLNet, optimizer: torch.optim.Optimizer,
                 engine: Optional[DynamicSparsity], adj: Optional[torch.Tensor], reg: float):
        self.world, self.net, self.optimizer, self.engine, self.adj = world, net, optimizer, engine, adj
        self.reg = float(reg)
        self.pending: Optional[BaseException] = None   # a failure after the step's gradient exchange
        broadcast_parameters(world, net)
        if engine is not None:
            engine.synchronize = functools.partial(_all_reduce, world)
            engine.holds_carried = world.is_main   # the carried gradient is added once, by rank 0
            check_identical(world, active_sets(engine), "the DSL masks")

    def step(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, size: int) -> float:
        """One global batch of ``size`` pairs, of which this rank holds ``users, pos, neg``: gradients summed
        over the ranks, then the optimizer's step. Returns the batch's summed BPR loss over all ranks."""
        error, self.pending = self.pending, None
        loss_sum = 0.0
        self.optimizer.zero_grad(set_to_none=True)
        params = list(self.net.parameters())   # each step: a rewired table may hold a new Parameter
        touched = {p: torch.zeros(0, dtype=torch.int64) for p in params}
        if error is None:
            try:
                if users.numel():
                    loss = self.net.loss(users, pos, neg, self.reg, self.adj, denominator=size)
                    loss.backward()
                    loss_sum = float(loss.detach()) * size
                    touched = self._touched(users, pos, neg)
            except Exception as caught:   # every rank learns of it through the exchange
                error = caught
        result = reduce_gradients(self.world, params, users.numel(), row_sparse=touched, extras=(loss_sum,),
                                  failed=error is not None)
        if result.failed:
            share_failure(self.world, error, _TRAINING)
        try:
            self.optimizer.step()
        except Exception as caught:
            self.pending = caught
        return result.extras[0]

    def _touched(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict:
        """Per parameter, the rows (or table slots) whose gradient this rank's batch made non-zero."""
        net = self.net
        if net.backbone == "lightgcn":   # propagation spreads a row's gradient over its neighbourhood
            return {p: _nonzero_rows(p.grad) for p in net.parameters()}
        touched = {}
        for table, rows in ((net.user, users), (net.item, torch.cat([pos, neg]))):
            rows = torch.unique(rows)
            if isinstance(table, SparseTable):
                touched[table.values] = table.slots_of_rows(rows)
            else:
                touched[table.weight] = rows
        return touched

    def updates_next(self) -> bool:
        """Whether the next :meth:`sparsify` prunes and regrows."""
        return self.engine is not None and self.engine.updates_next()

    def sparsify(self) -> None:
        """The engine's step; after an update, a failure on any rank raises on all and the active sets
        are checked identical."""
        if self.engine is None:
            return
        updating = self.engine.updates_next()
        try:
            self.engine.step()
        except Exception as caught:
            self.pending = self.pending or caught
        if updating:
            error, self.pending = self.pending, None
            share_failure(self.world, error, _UPDATE)
            check_identical(self.world, active_sets(self.engine), "the DSL masks")

    def finish_epoch(self) -> None:
        """Share a failure left over from the epoch's last step."""
        error, self.pending = self.pending, None
        share_failure(self.world, error, _TRAINING)
