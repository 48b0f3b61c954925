"""DSL recommenders: matrix factorization and LightGCN trained sparse from scratch.

:class:`DSLRecommender` trains a BPR recommender (Rendle et al., UAI 2009) whose user and item embedding
tables are sparse during the whole of training, following Dynamic Sparse Learning (Wang, Sui, Wu, Zheng
and Xiong, WSDM 2024, arXiv:2402.02855): each table starts with a uniformly random set of exactly
``round(density * n * d)`` active weights and, every ``update_interval`` optimizer steps, replaces its
``k`` smallest-magnitude weights by the ``k`` inactive ones of largest gradient magnitude, ``k`` falling
from ``update_ratio`` to ``final_update_ratio`` of the active weights on a cosine schedule (the engine is
:class:`recsys.sparse.DynamicSparsity`).

Backbones: ``"mf"`` (a user's score for an item is the dot product of their embeddings) and
``"lightgcn"`` (He et al., SIGIR 2020: the embeddings are propagated ``n_layers`` times over the
symmetric-normalised user-item graph ``D^-1/2 A D^-1/2`` and averaged over the layers, ``1/(L+1)`` each).
The layer mean is one linear, self-adjoint map, so training applies it (and, in the backward pass, to the
gradient) in place with two layer buffers and int32 graph indices, where autograd through the layers
would keep every layer and its running sum; the result is the same.

With ``sparse_storage=True`` (default) the tables are :class:`recsys.sparse.SparseTable` modules that
hold only the active weights, and Adam keeps moments for them only, so memory falls with the density;
``sparse_storage=False`` keeps dense tables under masks. ``density=1.0`` trains the dense model.

Examples
--------
>>> from recsys.data import make_low_rank_interactions
>>> from recsys.dsl import DSLRecommender
>>> data = make_low_rank_interactions(n_users=60, n_items=50, rank=4, interactions_per_user=8, random_state=0)
>>> rec = DSLRecommender(n_factors=8, density=0.5, n_epochs=2, update_interval=2, random_state=0,
...                      device="cpu", verbose=0).fit(data)
>>> rec.recommend([0, 1], k=5).shape
(2, 5)
>>> rec.n_active_parameters_ == round(0.5 * 60 * 8) + round(0.5 * 50 * 8)
True
"""

from __future__ import annotations

import copy
import numbers
import time
from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from recsys.sparse import (GROW_RULES, REDISTRIBUTIONS, REGROW_INITS, REGROW_MOMENTS, DynamicSparsity, SparseTable,
                           check_density, degree_row_counts)
from tensorkit import backend
from tensorkit._utils import progress
from tensorkit.validation import check_finite_result, reject_complex

__all__ = ["DSLRecommender", "bpr_loss", "normalized_adjacency", "sample_negatives"]

BACKBONES = ("mf", "lightgcn")
LR_SCHEDULES = ("constant", "cosine")
_NEGATIVE_CHUNK = 1 << 16   # pairs per membership test in negative sampling
AUTO_UPDATES = {"mf": 10, "lightgcn": 20}
"""About how many prune/grow updates ``DSLRecommender(update_interval="auto")`` makes over a fit."""
BALANCE_OPTIONS = ("auto", "row", "degree")
_ROW_BALANCES = ("row", "degree")   # the options that give every row its own count


# ------------------------------------------------------------------------------------------------
# data helpers


def auto_update_epochs(backbone: str, n_epochs: int) -> int:
    """Epochs between prune/grow updates under ``DSLRecommender(update_interval="auto")``.

    ``max(1, round(n_epochs / AUTO_UPDATES[backbone]))``: about ten updates over an MF fit and twenty
    over a LightGCN one (so one an epoch for LightGCN fits of up to 29 epochs).
    """
    return max(1, round(int(n_epochs) / AUTO_UPDATES[backbone]))


def _interactions(data: Any, n_users: Optional[int] = None, n_items: Optional[int] = None):
    from recsys.data import as_interactions

    return as_interactions(data, n_users=n_users, n_items=n_items)


def _aligned(data: Any, user_ids: np.ndarray, item_ids: np.ndarray):
    """``data`` indexed like training data with these id maps: read as internal indices when both maps
    are the identity (as it always was), else matched by id (:meth:`recsys.data.Interactions.reindex`)."""
    if _is_identity(user_ids) and _is_identity(item_ids):
        return _interactions(data, n_users=len(user_ids), n_items=len(item_ids))
    return _interactions(data).reindex(user_ids, item_ids)


def _is_identity(ids: np.ndarray) -> bool:
    """Whether an id map is ``0, 1, ..., n - 1`` (ids that are the internal indices themselves)."""
    return ids.dtype.kind in "iu" and np.array_equal(ids, np.arange(ids.shape[0]))


def _binary_csr(inter: Any) -> sp.csr_matrix:
    csr = sp.csr_matrix(inter.to_csr(), dtype=np.float32)
    csr.sum_duplicates()
    csr.data[:] = 1.0
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def sample_negatives(users: np.ndarray, train: sp.csr_matrix, rng: np.random.RandomState,
                     max_rounds: int = 100) -> np.ndarray:
    """One uniformly random item per user in ``users`` that is not among the user's training items.

    Vectorised rejection sampling: all draws at once, then only the rejected ones again. The membership
    tests run in chunks of rows, so the temporaries stay small beside the model (the draws, and so the
    result, do not depend on the chunks).

    Raises
    ------
    ValueError
        If some user in ``users`` has interacted with every item.
    """
    n_items = train.shape[1]
    degrees = np.diff(train.indptr)
    if len(users) and degrees[users].max() >= n_items:
        raise ValueError("a user has interacted with every item, so no negative item can be sampled")
    keys = (np.repeat(np.arange(train.shape[0], dtype=np.int64), degrees) * n_items
            + train.indices.astype(np.int64))  # sorted: CSR rows in order, sorted columns
    neg = rng.randint(0, n_items, size=len(users)).astype(np.int64)
    todo = None   # every draw, before the first test
    for _ in range(max_rounds):
        if todo is None:
            todo = np.flatnonzero(_interacted(keys, users, neg, n_items))
        else:
            todo = todo[_interacted(keys, users[todo], neg[todo], n_items)]
        if not len(todo):
            return neg
        neg[todo] = rng.randint(0, n_items, size=len(todo))
    # users with almost every item: pick exactly among their non-items
    for t in todo:
        seen = train.indices[train.indptr[users[t]]:train.indptr[users[t] + 1]]
        neg[t] = rng.choice(np.setdiff1d(np.arange(n_items), seen))
    return neg


def _interacted(keys: np.ndarray, users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Whether each ``(users[i], items[i])`` is among the sorted ``keys`` (``user * n_items + item``)."""
    out = np.zeros(len(users), dtype=bool)
    if not len(keys):
        return out
    for start in range(0, len(users), _NEGATIVE_CHUNK):
        stop = start + _NEGATIVE_CHUNK
        query = users[start:stop].astype(np.int64) * n_items + items[start:stop]
        where = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        out[start:stop] = keys[where] == query
    return out


def normalized_adjacency(train: sp.csr_matrix, device: Any = "cpu", dtype: Any = "float32") -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the user-item bipartite graph (users first), as a torch sparse CSR tensor.

    ``A = [[0, R], [R^T, 0]]`` is built as a :class:`graphkit.graph.Graph`; nodes without edges get a zero row.
    """
    from graphkit.graph import Graph

    n_users, n_items = train.shape
    adjacency = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float64)
    graph = Graph(adjacency, directed=False)
    degrees = graph.degrees()
    inv_sqrt = np.zeros_like(degrees)
    inv_sqrt[degrees > 0] = degrees[degrees > 0] ** -0.5
    scale = sp.diags(inv_sqrt)
    normalized = scale @ graph.adjacency @ scale
    narrow = max(normalized.nnz, normalized.shape[0]) < 2**31
    return backend.as_sparse_tensor(normalized, device=device, dtype=dtype,
                                    index_dtype=torch.int32 if narrow else torch.int64)


def mean_of_layers(adj: torch.Tensor, x: torch.Tensor, n_layers: int, total: torch.Tensor) -> torch.Tensor:
    """``total <- (x + adj x + ... + adj^n_layers x) / (n_layers + 1)``, LightGCN's layer mean, in place.

    ``total`` must hold a copy of ``x`` (or be ``x`` itself, which is then overwritten). Each layer is
    written by ``torch.addmm(..., beta=0, out=...)`` into one of two reused buffers, so the whole sum takes
    ``total`` and two ``x``-sized buffers; ``adj @ x`` would allocate two blocks per layer, and on a CPU
    CSR operand it is also about 2.5 times slower (Gowalla, one thread).
    """
    current, spare = x, None
    for _ in range(n_layers):
        layer = torch.empty_like(x) if spare is None else spare
        torch.addmm(layer, adj, current, beta=0, out=layer)
        total.add_(layer)
        spare = None if current is x else current   # x is the caller's (or total): never overwritten
        current = layer
    return total.div_(n_layers + 1)


class _LightGCNPropagation(torch.autograd.Function):
    """LightGCN's final embeddings ``mean_k adj^k ego`` (k = 0 .. n_layers) for a symmetric ``adj``.

    The map is linear and, with ``adj`` symmetric, self-adjoint, so the backward applies it to the
    gradient. Nothing but ``adj`` is saved: autograd through the layers would keep every layer and its
    running sum.
    """

    @staticmethod
    def forward(ctx, ego, adj, n_layers):
        ctx.adj, ctx.n_layers = adj, n_layers
        return mean_of_layers(adj, ego, n_layers, ego.clone())

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone(memory_format=torch.contiguous_format)   # ours to overwrite: x and total at once
        return mean_of_layers(ctx.adj, total, ctx.n_layers, total), None, None


class _SquaredRowNorms(torch.autograd.Function):
    """``|x_r|^2`` for every row ``r`` of a 2-D ``x``; the backward, ``2 grad_r x_r``, takes one ``x``-sized
    block (autograd through ``x.pow(2).sum(1)`` takes three, and the forward one more)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.bmm(x.unsqueeze(1), x.unsqueeze(2)).view(-1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return x * (2 * grad).unsqueeze(1)


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean BPR loss ``-log sigmoid(pos - neg)``."""
    return F.softplus(neg_scores - pos_scores).mean()


# ------------------------------------------------------------------------------------------------
# the network


class _DSLNet(nn.Module):
    """User and item tables (dense ``nn.Embedding`` or :class:`SparseTable`) and the backbone's forward."""

    def __init__(self, n_users: int, n_items: int, dim: int, backbone: str, n_layers: int, storage: str,
                 density: float, init_std: float, generator: torch.Generator, device, dtype,
                 row_balanced: bool = False, row_counts: Optional[tuple] = None):
        super().__init__()
        self.n_users, self.n_items, self.backbone, self.n_layers = n_users, n_items, backbone, n_layers
        self.storage = storage
        if storage == "table":
            seeds = torch.randint(0, 2**31 - 1, (2,), generator=generator).tolist()
            user_counts, item_counts = row_counts if row_counts is not None else (None, None)
            self.user = SparseTable(n_users, dim, density, init_std, seeds[0], device, dtype, row_balanced, user_counts)
            self.item = SparseTable(n_items, dim, density, init_std, seeds[1], device, dtype, row_balanced, item_counts)
        else:
            self.user = nn.Embedding(n_users, dim)
            self.item = nn.Embedding(n_items, dim)
            with torch.no_grad():
                for emb in (self.user, self.item):
                    w = torch.randn(emb.weight.shape, generator=generator) * init_std
                    emb.weight.copy_(w)
            self.to(device=device, dtype=dtype)

    def _rows(self, table: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        return table(rows) if isinstance(table, SparseTable) else table.weight[rows]

    def _full(self, table: nn.Module) -> torch.Tensor:
        return table() if isinstance(table, SparseTable) else table.weight

    def embeddings(self, adj: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final user and item embeddings and the stacked ego embeddings (layer 0)."""
        final, ego = self._stacked(adj)
        return final[: self.n_users], final[self.n_users:], ego

    def _stacked(self, adj: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Final and ego embeddings of all users, then all items, as two ``(n_users + n_items, dim)`` tables."""
        ego = torch.cat([self._full(self.user), self._full(self.item)])
        if self.backbone == "mf":
            return ego, ego
        return _LightGCNPropagation.apply(ego, adj, self.n_layers), ego

    def loss(self, users, pos, neg, reg: float, adj: Optional[torch.Tensor]) -> torch.Tensor:
        """BPR loss of a batch plus ``reg * (|u|^2 + |i|^2 + |j|^2) / 2 / batch`` on the ego embeddings."""
        if self.backbone == "mf":
            eu = self._rows(self.user, users)
            items = self._rows(self.item, torch.cat([pos, neg]))
            ei, ej = items[: pos.numel()], items[pos.numel():]
            ranking = bpr_loss((eu * ei).sum(1), (eu * ej).sum(1))
            penalty = (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / 2 / users.numel()
            return ranking + reg * penalty
        final, ego = self._stacked(adj)
        # one gather from the stacked table (users first), so the backward scatters into one zero table
        rows = torch.cat([users, pos + self.n_users, neg + self.n_users])
        fu, fi, fj = final[rows].view(3, users.numel(), -1).unbind(0)
        ranking = bpr_loss((fu * fi).sum(1), (fu * fj).sum(1))
        penalty = _SquaredRowNorms.apply(ego)[rows].sum()   # all rows' squared norms, then the batch's
        return ranking + reg * penalty / 2 / users.numel()

    def n_active(self) -> int:
        if self.storage == "table":
            return self.user.budget + self.item.budget
        return int((self.user.weight != 0).sum() + (self.item.weight != 0).sum())


# ------------------------------------------------------------------------------------------------
# the estimator


class DSLRecommender(BaseEstimator):
    """Top-k recommender trained with Dynamic Sparse Learning (DSL) on MF or LightGCN, BPR loss.

    Parameters
    ----------
    backbone : {"mf", "lightgcn"}, default="mf"
    n_factors : int, default=64
        Embedding width ``d``.
    n_layers : int, default=3
        LightGCN propagation layers (ignored by MF).
    density : float in (0, 1], default=0.5
        Fraction of active weights of each embedding table; 1.0 trains the dense model (no engine).
    fix : bool, default=False
        Keep the initial random sparse pattern (static sparse training).
    update_interval : "auto", None or int, default="auto"
        Optimizer steps between prune/grow updates (``Delta T``). None: one update an epoch (every
        ``ceil(n_pairs / batch_size)`` steps). "auto": for MF one update every ``max(1, round(n_epochs / 10))``
        epochs, about ten over the fit; for LightGCN one every ``max(1, round(n_epochs / 20))`` epochs,
        about twenty (one an epoch up to 29 epochs). On Gowalla (MF, 396 steps an epoch; LightGCN, 25)
        rare updates did better than frequent ones: at density 0.5 MF's Recall@20 rose from 0.114 with
        ``Delta T = 100`` to 0.119 with 300-600, LightGCN's from 0.133 with 6 to 0.137 with 25 (MF 10
        epochs at Adam 3e-3, LightGCN 20; regrown weights at zero; test split,
        ``benchmarks/dsl_gowalla.py``), and once an epoch beat the earlier intervals for both on a
        validation split held out of train (10% of each user's items). For MF trained 30 epochs at
        1e-3 (where its dense model peaks), Recall@20 on that validation split at density 0.2 by epochs
        between updates, 1 / 2 / 3 / 4 / 5: 0.1137 / 0.1224 / 0.1242 / 0.1188 / 0.1088, and at 0.5 0.1277
        with 1 and 0.1367 with 3 (dense: 0.1325), hence about ten updates. LightGCN on that split, at 0.5
        / 0.2: over 20 epochs 0.1319 / 0.1255 once an epoch and 0.1334 / 0.1182 every two epochs; over 100,
        0.1606 / 0.1449, 0.1695 / 0.1519 and 0.1721 / 0.1466 every 1, 5 and 10 epochs (dense 0.1776), so
        about twenty updates is the best count on average at both lengths. No update happens on the
        last step, where nothing would train what it regrows.
    update_ratio : float, default=0.5
        Fraction of active weights replaced at the first update (``r_0``).
    final_update_ratio : float, default=0.005
        The fraction at the last step; the cosine schedule of :func:`recsys.sparse.update_ratio` runs
        over the whole training (``T_end`` = the number of optimizer steps minus one: the last step
        takes no update).
    redistribution : {None, "global"}, default=None
        "global": one budget for both tables; the user/item split moves with the pooled magnitudes and
        gradients.
    grow : {"gradient", "random"}, default="gradient"
    regrow_init : {"zero", "random", "gradient"}, default="gradient"
        Initial value of regrown weights. "gradient": a step along the negative growth gradient, scaled
        to the root mean square of the pruned weights (see :class:`recsys.sparse.DynamicSparsity`). This
        deviates from the paper and from RigL, which start regrown weights at zero ("zero", still
        available): a weight at zero adds nothing to a score until Adam, with its moments reset, has
        moved it over several of its row's batches, while the gradient that chose it already says which
        way to go. Measured on Gowalla (MF 10 epochs at 3e-3, LightGCN 20), Recall@20 at density 0.5 rose
        from 0.119 to 0.122 for MF (every 600 steps; dense: 0.124) and from 0.137 to 0.140 for LightGCN (once
        an epoch; dense: 0.142). On the validation split above (once an epoch), Recall@20 at 0.5 / 0.2 rose
        from 0.118 / 0.097 to 0.122 / 0.110 for MF and from 0.128 / 0.115 to 0.132 / 0.121 for LightGCN;
        for MF in its present regime (30 epochs at 1e-3, every 3 epochs) from 0.127 / 0.101 to 0.137 / 0.124
        ("zero" with moments at zero against the defaults).
    regrow_moments : {"auto", "zero", "gradient"}, default="auto"
        Initial Adam moments of regrown weights (see :class:`recsys.sparse.DynamicSparsity`). "zero" (the
        paper's reset, RigL's): under Adam's bias correction, near 1 by then, a regrown weight's first steps
        are several times the learning rate. "gradient" (an extension): the moments a steady gradient
        would have built, from the growth gradient's mean over the window, so those steps are about the
        learning rate. "auto": "gradient" for MF, "zero" for LightGCN, as chosen on a validation split of
        Gowalla (10% of each user's training items held out; LightGCN 20 epochs, once an epoch; MF then 10
        epochs at Adam 3e-3, once an epoch; ``benchmarks/dsl_gowalla.py``): Recall@20 at density 0.5 / 0.2,
        MF seed 0 0.1216 / 0.1099 with "zero" and 0.1229 / 0.1117 with "gradient", seed 1 0.1221 / 0.1075
        and 0.1241 / 0.1102; LightGCN (seed 0) 0.1317 / 0.1208 with "zero" and 0.1218 / 0.1060 with
        "gradient" (with ``grad_decay=0``; with its default 1, 0.1319 / 0.1255 and 0.1318 / 0.1188).
        LightGCN, far from converged after 20 epochs, gains from its regrown weights' large first steps; MF
        from steadier ones. In MF's present regime there (30 epochs at 1e-3, every 3 epochs), "gradient"
        still leads: 0.1367 / 0.1242 against 0.1347 / 0.1236 with "zero".
    grad_window : int or None, default=None
        Steps whose gradients are summed to choose regrown weights (see
        :class:`recsys.sparse.DynamicSparsity`). None: the whole ``update_interval``. This deviates from
        the paper and its code, which grow by the gradient of the last mini-batch (``grad_window=1``,
        still available): an MF mini-batch touches a few thousand of the table's rows, so that gradient
        is zero elsewhere and growth can only go to those rows while pruning takes from all of them.
        On Gowalla (MF, d = 64, Adam 3e-3, 10 epochs, every 100 steps, regrown weights at zero) the
        interval's gradient lifts Recall@20 at density 0.5 from 0.093 to 0.114 and at density 0.2 from
        0.048 to 0.091 (dense: 0.124).
    grad_decay : "auto" or float in [0, 1], default="auto"
        How much of the earlier windows' gradient still counts when choosing regrown weights (see
        :class:`recsys.sparse.DynamicSparsity`; an extension, not in the paper). 0: the current window's
        gradient alone (the paper's and RigL's rule); 1: each inactive weight's gradient summed since it
        last became inactive. "auto": 1 for LightGCN, 0 for MF, chosen on the validation split described
        under ``regrow_moments`` (seed 0; Recall@20 at density 0.5 / 0.2). LightGCN: 0.1317 / 0.1208 with
        0, 0.1319 / 0.1255 with 1 (0.1218 at 0.2 with 0.5; one budget per table in all of these); on the
        test split (mean of seeds 0-2) it went from 0.1402 / 0.1314 to 0.1417 / 0.1351 (dense: 0.1419);
        trained for 100 epochs instead (seed 0), DSL at 0.2 with one update an epoch still ends 11.3% below
        dense (11.8% with 0), and 8.7% below with an update every 5 epochs (0.1484 with 0). MF (then 10 epochs
        at 3e-3): 0.1229 / 0.1117 with 0 and 0.1232 / 0.1126 with 1, within the seed-to-seed spread, while
        on the test split (seeds 0 and 1, at 0.2) 1 lowered MF from 0.1166 / 0.1156 to 0.1143 / 0.1138, so MF
        keeps the paper's rule; in its present regime (30 epochs at 1e-3, every 3 epochs) 0.1367 / 0.1242
        with 0 and 0.1377 / 0.1228 with 1, mixed again.
    balance : {"auto", None, "row", "degree"}, default="auto"
        "row" (an extension, not in the paper): every user and item row keeps ``round(density *
        n_factors)`` weights; prune/grow happens within rows (see :class:`recsys.sparse.DynamicSparsity`).
        "degree" (an extension too): the same total, but the quarter of users and of items with the most
        training interactions keep 1.5 times that each and the other rows share the rest
        (:func:`recsys.sparse.degree_row_counts`); prune/grow again keeps every row at its own count.
        Both need ``sparse_storage=True`` and no ``redistribution``. None: one budget per table (the
        paper's). "auto": "row" for LightGCN (where the settings allow it), None for MF. On the
        validation split described under ``regrow_moments`` (seed 0, Recall@20 at density 0.5 / 0.2),
        LightGCN over 20 epochs: 0.1319 / 0.1255 with one budget per table, 0.1372 / 0.1290 row-balanced
        (dense: 0.1347); over 100 epochs 0.1695 / 0.1519 against 0.1742 / 0.1576 (dense: 0.1776). MF did
        not gain from it: 0.1367 / 0.1242 against 0.1310 / 0.1199 (30 epochs), and in its earlier 10-epoch regime
        0.1099 / 0.1075 against 0.1096 / 0.1119 at 0.2 (seeds 0 / 1). "degree" against "row" for LightGCN
        on the same split over 20 epochs: 0.1365 / 0.1291 against 0.1372 / 0.1290 (seed 0), 0.1377 / 0.1293
        against 0.1348 / 0.1280 (seed 1), and 0.1205 against 0.1185 at 0.1 (seed 0); over 100 epochs
        (seed 0) 0.1731 / 0.1606 against 0.1742 / 0.1576. On the test split over 20 epochs (mean of seeds
        0-2) 0.1449 / 0.1376 against 0.1435 / 0.1375, and 0.1283 against 0.1269 at 0.1 (seed 0;
        ``benchmarks/results/dsl_gowalla.md``), and over 100 epochs (seed 0) 0.1647 / 0.1578 against
        0.1640 / 0.1556 (dense: 0.1683). Ahead by about the seed-to-seed spread over 20 epochs, so "auto"
        stays "row". The quarter at 1.25 times the mean (instead of 1.5) gave 0.1354 / 0.1283
        (seed 0) and 0.1368 / 0.1287 (seed 1) on the validation split over 20 epochs.
    sparse_storage : bool, default=True
        Hold only the active weights (:class:`recsys.sparse.SparseTable`) rather than dense tables
        under masks.
    n_epochs : int, default=30
    batch_size : int, default=2048
    lr : float, default=1e-3
        Adam's learning rate.
    lr_schedule : {"constant", "cosine"}, default="constant"
        "cosine": the learning rate follows a cosine from ``lr`` down to ``min_lr`` over the epochs
        (stepped once per epoch, as the authors' DSL code does with ``CosineAnnealingLR``).
    min_lr : float, default=1e-4
        The learning rate after the last epoch with ``lr_schedule="cosine"``.
    reg : float, default=1e-4
        L2 weight on the batch's ego embeddings, ``reg * (|u|^2 + |i|^2 + |j|^2) / 2 / batch`` (LightGCN's).
    n_negatives : int, default=1
        Negative items per training pair, uniform over the items the user has not interacted with.
    init_std : float, default=0.1
        Embeddings start as ``N(0, init_std^2)`` (LightGCN's initialisation).
    eval_every : int, default=0
        With ``eval_set``: evaluate every this many epochs (0: after the last epoch only).
    eval_k : tuple of int, default=(20,)
        Cut-offs of the metrics recorded in ``history_``.
    random_state : None, int or RandomState
    device : str or torch.device, default="auto"
    dtype : str or torch.dtype, default="float32"
    verbose : int, default=1
        Progress bar over the epochs.

    Attributes
    ----------
    model_ : nn.Module
        The trained tables (on the CPU after pickling).
    n_users_, n_items_ : int
    user_ids_, item_ids_ : ndarray
        The ids behind the internal indices (those of the training :class:`~recsys.data.Interactions`;
        ``arange`` when the model was fitted on indices): :meth:`recommend` and :meth:`scores` take
        user ids and name items by them.
    train_ : scipy.sparse.csr_matrix
        The binary training interactions (masked when recommending and evaluating).
    user_embeddings_, item_embeddings_ : ndarray
        Final embeddings (propagated for LightGCN).
    n_parameters_ : int
        Weights of the dense model, ``(n_users + n_items) * n_factors``.
    n_active_parameters_ : int
        Active (stored) weights after training.
    density_report_ : dict
        Per table ``active``, ``numel``, ``density`` and the total.
    n_updates_ : int
        Prune/grow updates performed.
    training_state_bytes_ : int
        Memory held between optimizer steps at the end of training: weights, gradients, Adam's moments,
        index buffers (and masks in masked mode). With ``sparse_storage`` it is about
        ``(4 + 4 + 8 + 4) * active`` bytes in float32 (values, gradient, two moments, int32 index) against
        ``16 * n_parameters_`` for the dense model, so it falls with the density (below dense for
        densities under 0.8).
    history_ : list of dict
        Per epoch: ``epoch``, ``loss``, ``seconds``, ``n_active`` and, with ``eval_set``, the metrics.

    Notes
    -----
    What a density buys. An MF score ``u · i`` sums over the dimensions where both rows are non-zero,
    so under a uniform random mask at density ``p`` a pair shares about ``p² · n_factors`` of them.
    Measured on Gowalla with the defaults (MF, d = 64, Adam 3e-3, 10 epochs;
    ``benchmarks/results/dsl_gowalla.md``):

    - static sparse training at 0.5 keeps that overlap (16 of 64 dimensions) and reaches Recall@20
      0.068, against 0.124 dense;
    - DSL's prune/grow aligns the masks: a test pair shares 26.5 dimensions of a row's 32, a random
      pair 20.6, and Recall@20 reaches 0.123;
    - a dense model with as many weights reaches 0.120 (d = 32), and DSL is ahead of it at every
      density: 0.117 against 0.110 (d = 13) at 0.2, 0.105 against 0.091 (d = 6) at 0.1. Its budget is
      per table, so some rows hold more weights than others; held to the same share in every row
      (``balance="row"``), DSL gives 0.119 at 0.5, below the dense d = 32.

    LightGCN averages each row with its neighbours', so its final embeddings are dense whatever the
    mask. There (Adam 1e-2, batch 32,768, 20 epochs, row-balanced budgets) DSL is ahead of the dense
    model of as many weights at every density: 0.143 against 0.133 (d = 32) at 0.5, 0.138 against
    0.122 (d = 13) at 0.2, 0.127 against 0.100 (d = 6) at 0.1; the dense d = 64 model reaches 0.142.
    Trained until the dense model levels off (300 epochs, seed 0, ``balance="degree"``) DSL at 0.5
    still matches dense (0.168 against 0.170, 1.1% lower), while 0.2 falls behind: 0.157, 7.6% lower.
    The dense models of as many weights end lower still (0.159 for d = 32, 0.141 for d = 13): at 0.2
    DSL recovers 55% of what the dense model gains from d = 13 to d = 64.

    Memory. The peak resident memory a fit adds (same benchmark, Gowalla, 3 epochs) falls with the
    density, by less than the weights do: MF 122 MiB dense, 108, 79 and 74 MiB at 0.5, 0.2 and 0.1 (an
    update rebuilds the values and Adam moments beside the old ones, and growth keeps the gradient at
    the inactive entries); LightGCN 192, 186, 171 and 167 MiB, most of it the backward pass through the
    propagation over the whole graph, whose ``(n_users + n_items) x n_factors`` blocks are dense at
    every density.

    References
    ----------
    S. Wang, Y. Sui, J. Wu, Z. Zheng and H. Xiong, "Dynamic Sparse Learning: A Novel Paradigm for
    Efficient Recommendation", WSDM 2024, arXiv:2402.02855.
    X. He, K. Deng, X. Wang, Y. Li, Y. Zhang and M. Wang, "LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation", SIGIR 2020.

    Examples
    --------
    >>> from recsys.data import make_low_rank_interactions
    >>> data = make_low_rank_interactions(n_users=60, n_items=50, rank=4, interactions_per_user=8,
    ...                                   random_state=0)
    >>> rec = DSLRecommender(backbone="lightgcn", n_factors=8, n_layers=2, density=0.5, n_epochs=2,
    ...                      update_interval=2, random_state=0, device="cpu", verbose=0).fit(data)
    >>> rec.user_embeddings_.shape, rec.item_embeddings_.shape
    ((60, 8), (50, 8))
    """

    def __init__(self, backbone: str = "mf", n_factors: int = 64, n_layers: int = 3, density: float = 0.5,
                 fix: bool = False, update_interval: Any = "auto", update_ratio: float = 0.5,
                 final_update_ratio: float = 0.005, redistribution: Optional[str] = None, grow: str = "gradient",
                 regrow_init: str = "gradient", regrow_moments: str = "auto", grad_window: Optional[int] = None,
                 grad_decay: Any = "auto", balance: Optional[str] = "auto",
                 sparse_storage: bool = True, n_epochs: int = 30,
                 batch_size: int = 2048, lr: float = 1e-3, lr_schedule: str = "constant", min_lr: float = 1e-4,
                 reg: float = 1e-4, n_negatives: int = 1, init_std: float = 0.1, eval_every: int = 0,
                 eval_k: tuple = (20,), random_state: Any = None,
                 device: Any = "auto", dtype: Any = "float32", verbose: int = 1):
        self.backbone = backbone
        self.n_factors = n_factors
        self.n_layers = n_layers
        self.density = density
        self.fix = fix
        self.update_interval = update_interval
        self.update_ratio = update_ratio
        self.final_update_ratio = final_update_ratio
        self.redistribution = redistribution
        self.grow = grow
        self.regrow_init = regrow_init
        self.regrow_moments = regrow_moments
        self.grad_window = grad_window
        self.grad_decay = grad_decay
        self.balance = balance
        self.sparse_storage = sparse_storage
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.min_lr = min_lr
        self.reg = reg
        self.n_negatives = n_negatives
        self.init_std = init_std
        self.eval_every = eval_every
        self.eval_k = eval_k
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # -- validation -----------------------------------------------------------------------------
    def _validate_params(self) -> None:
        if not isinstance(self.backbone, str) or self.backbone.lower() not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}; got {self.backbone!r}")
        check_density(self.density)
        if not (self.balance is None or (isinstance(self.balance, str) and self.balance in BALANCE_OPTIONS)):
            raise ValueError(f"balance must be None or one of {BALANCE_OPTIONS}; got {self.balance!r}")
        if self.balance in _ROW_BALANCES and not self._row_balance_possible():
            raise ValueError(f"balance={self.balance!r} needs sparse_storage=True and redistribution=None")
        if self.grad_window is not None and (isinstance(self.grad_window, bool)
                                             or not isinstance(self.grad_window, (int, np.integer))
                                             or self.grad_window < 1):
            raise ValueError(f"grad_window must be None or a positive int; got {self.grad_window!r}")
        decay = self.grad_decay
        if decay != "auto" and (isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0 <= decay <= 1):
            raise ValueError(f"grad_decay must be 'auto' or a number in [0, 1]; got {self.grad_decay!r}")
        interval = self.update_interval
        if not (interval is None or (isinstance(interval, str) and interval == "auto")
                or (isinstance(interval, (int, np.integer)) and not isinstance(interval, bool) and interval >= 1)):
            raise ValueError(f"update_interval must be 'auto', None or a positive int; got {interval!r}")
        for name in ("n_factors", "n_epochs", "batch_size", "n_negatives"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        for name in ("n_layers", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative int; got {value!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}; got {self.lr_schedule!r}")
        for name, low in (("lr", 0.0), ("min_lr", None), ("reg", None), ("init_std", None)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0 \
                    or (low is not None and value <= low):
                raise ValueError(f"{name} must be a {'positive' if low is not None else 'non-negative'} "
                                 f"number; got {value!r}")
        for name in ("update_ratio", "final_update_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
        if self.redistribution not in REDISTRIBUTIONS:
            raise ValueError(f"redistribution must be one of {REDISTRIBUTIONS}; got {self.redistribution!r}")
        if self.grow not in GROW_RULES:
            raise ValueError(f"grow must be one of {GROW_RULES}; got {self.grow!r}")
        if self.regrow_init not in REGROW_INITS:
            raise ValueError(f"regrow_init must be one of {REGROW_INITS}; got {self.regrow_init!r}")
        moments = ("auto",) + REGROW_MOMENTS
        if self.regrow_moments not in moments:
            raise ValueError(f"regrow_moments must be one of {moments}; got {self.regrow_moments!r}")
        _check_ks(self.eval_k, "eval_k")

    def _regrow_moments(self, backbone: str) -> str:
        """``regrow_moments`` with "auto" resolved for ``backbone``."""
        if self.regrow_moments != "auto":
            return self.regrow_moments
        return "gradient" if backbone == "mf" else "zero"

    def _update_interval(self, backbone: str, steps_per_epoch: int) -> int:
        """``update_interval`` in optimizer steps, with None and "auto" resolved for ``backbone``."""
        if self.update_interval is None:
            return steps_per_epoch
        if isinstance(self.update_interval, str):   # "auto"
            return auto_update_epochs(backbone, self.n_epochs) * steps_per_epoch
        return int(self.update_interval)

    def _row_balance_possible(self) -> bool:
        """Row-balanced budgets need sparse tables and a budget per table (no redistribution)."""
        return bool(self.sparse_storage) and self.redistribution is None

    def _balance(self, backbone: str) -> Optional[str]:
        """``balance`` with "auto" resolved: "row" for sparse LightGCN where the settings allow it."""
        if self.balance != "auto":
            return self.balance
        sparse = float(self.density) < 1.0
        return "row" if backbone == "lightgcn" and sparse and self._row_balance_possible() else None

    def _grad_decay(self, backbone: str) -> float:
        """``grad_decay`` with "auto" resolved for ``backbone``."""
        if self.grad_decay != "auto":
            return float(self.grad_decay)
        return 0.0 if backbone == "mf" else 1.0

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, interactions: Any, y: Any = None, eval_set: Any = None) -> "DSLRecommender":
        """Train on implicit feedback.

        Parameters
        ----------
        interactions : Interactions, scipy sparse matrix (users x items), or (n, 2) array of
            (user, item) id pairs
            Anything :func:`recsys.data.as_interactions` accepts. Pairs of sparse ids (hashed or
            64-bit ids, far larger than the number of pairs) are remapped, so the tables follow the
            data, never the largest id; their ids are kept in ``user_ids_``/``item_ids_`` and
            :meth:`recommend` takes and returns them.
        y : ignored
        eval_set : same kinds, optional
            Held-out interactions, named like ``interactions`` (by id where the ids are not the
            indices); Recall@K and NDCG@K (full ranking, training items masked) go into ``history_``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters (naming the parameter), empty or malformed interactions, and a
            :class:`tensorkit.validation.NonFiniteResultError` when training diverges (a loss or an
            embedding that is not finite), naming ``lr`` and ``init_std``.
        TypeError
            Interactions that are not real numbers (complex numbers included).
        """
        self._validate_params()
        inter = _interactions(interactions)
        train = _binary_csr(inter)
        if train.nnz == 0:
            raise ValueError("interactions is empty; at least one (user, item) pair is needed")
        n_users, n_items = train.shape
        test = None
        if eval_set is not None:
            test = _binary_csr(_aligned(eval_set, inter.user_ids, inter.item_ids))
        device = backend.resolve_device(self.device)
        dtype = backend.resolve_dtype(self.dtype)
        rng = backend.check_random_state(self.random_state)
        density = check_density(self.density)
        dense = density >= 1.0
        storage = "dense" if dense or not self.sparse_storage else "table"
        init_gen = torch.Generator().manual_seed(int(rng.numpy.randint(2**31 - 1)))
        backbone = self.backbone.lower()
        balance = self._balance(backbone) if storage == "table" else None
        row_counts = None
        if balance == "degree":
            row_counts = tuple(degree_row_counts(degrees, int(self.n_factors), density)
                               for degrees in (train.getnnz(axis=1), train.getnnz(axis=0)))
        net = _DSLNet(n_users, n_items, int(self.n_factors), backbone, int(self.n_layers), storage, density,
                      float(self.init_std), init_gen, device, dtype, row_balanced=balance in _ROW_BALANCES,
                      row_counts=row_counts)
        adj = normalized_adjacency(train, device, dtype) if backbone == "lightgcn" else None
        optimizer = backend.adam(net.parameters(), float(self.lr))
        scheduler = None
        if self.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(self.n_epochs),
                                                                   eta_min=min(float(self.min_lr), float(self.lr)))
        coo = train.tocoo()
        pair_users = coo.row.astype(np.int64)
        pair_items = coo.col.astype(np.int64)
        n_pairs = len(pair_users) * int(self.n_negatives)
        n_batches = -(-n_pairs // int(self.batch_size))
        interval = self._update_interval(backbone, n_batches)
        engine = None
        if not dense:
            # end_step: the last step takes no update, as nothing would train what it regrows
            engine = DynamicSparsity(net if storage == "table" else [("user", net.user.weight),
                                                                     ("item", net.item.weight)],
                                     density=density, update_interval=interval,
                                     update_ratio=float(self.update_ratio),
                                     final_update_ratio=float(self.final_update_ratio),
                                     end_step=int(self.n_epochs) * n_batches - 1, grow=self.grow,
                                     redistribution=self.redistribution, fix=bool(self.fix),
                                     random_state=int(rng.numpy.randint(2**31 - 1)), optimizer=optimizer,
                                     regrow_init=self.regrow_init,
                                     regrow_moments=self._regrow_moments(backbone),
                                     balance="row" if balance in _ROW_BALANCES else None,
                                     grad_decay=self._grad_decay(backbone),
                                     grad_window=interval if self.grad_window is None
                                     else min(int(self.grad_window), interval))
        self.n_users_, self.n_items_ = n_users, n_items
        self.user_ids_, self.item_ids_ = inter.user_ids, inter.item_ids
        self.train_ = train
        self.history_ = []
        bar = progress(range(1, int(self.n_epochs) + 1), verbose=self.verbose, desc=f"DSL-{backbone}")
        try:
            for epoch in bar:
                started = time.perf_counter()
                net.train()
                loss = self._train_epoch(net, optimizer, engine, adj, (pair_users, pair_items), train, rng.numpy,
                                         device)
                check_finite_result(np.float64(loss), f"the BPR loss of epoch {epoch}", self._divergence_hint())
                record = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started,
                          "n_active": self._n_active(net, engine), "lr": optimizer.param_groups[0]["lr"]}
                if scheduler is not None:
                    scheduler.step()
                last = epoch == int(self.n_epochs)
                if test is not None and (last or (self.eval_every and epoch % int(self.eval_every) == 0)):
                    self._store_embeddings(net, adj)
                    record.update(self.evaluate(test, k=self.eval_k))
                self.history_.append(record)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("loss", "recall@20")})
        finally:
            bar.close()
            if engine is not None:
                engine.remove_hooks()
        net.eval()
        self.training_state_bytes_ = _training_state_bytes(net, optimizer, engine)
        optimizer.state.clear()  # training is over: free the moments and gradients before the embeddings
        net.zero_grad(set_to_none=True)
        self.model_ = net
        self._store_embeddings(net, adj)
        for name, table in (("user", self.user_embeddings_), ("item", self.item_embeddings_)):
            check_finite_result(table, f"DSLRecommender's {name} embeddings", self._divergence_hint())
        self.n_parameters_ = (n_users + n_items) * int(self.n_factors)
        self.n_active_parameters_ = self._n_active(net, engine)
        if engine is not None:
            self.density_report_ = engine.density_report()
            self.n_updates_ = len(engine.updates)
        else:
            n = self.n_parameters_
            self.density_report_ = {"total": {"active": n, "numel": n, "density": 1.0}}
            self.n_updates_ = 0
        return self

    def _train_epoch(self, net: _DSLNet, optimizer: torch.optim.Optimizer, engine: Optional[DynamicSparsity],
                     adj: Optional[torch.Tensor], pairs: tuple, train: sp.csr_matrix, rng: np.random.RandomState,
                     device: torch.device) -> float:
        """One pass over the shuffled training pairs with fresh negatives; returns the mean BPR loss.

        The epoch's index arrays live only here, so they are freed before the next epoch draws its own
        (and before an evaluation) rather than held beside them.
        """
        pair_users, pair_items = pairs
        n_pairs = len(pair_users) * int(self.n_negatives)
        order = rng.permutation(n_pairs) % len(pair_users)
        users = pair_users[order]
        pos = pair_items[order]
        del order
        neg = sample_negatives(users, train, rng)
        users, pos, neg = (torch.as_tensor(a, device=device) for a in (users, pos, neg))
        total = torch.zeros((), device=device, dtype=torch.float64)   # summed on the device: no sync
        for start in range(0, n_pairs, int(self.batch_size)):
            stop = start + int(self.batch_size)
            optimizer.zero_grad(set_to_none=True)
            loss = net.loss(users[start:stop], pos[start:stop], neg[start:stop], float(self.reg), adj)
            loss.backward()
            optimizer.step()
            total += loss.detach().to(torch.float64) * (min(stop, n_pairs) - start)
            if engine is not None:
                if (engine.step_count + 1) % engine.update_interval == 0:   # prune/grow needs finite weights
                    check_finite_result(total, "the BPR loss", self._divergence_hint())
                engine.step()
        return float(total) / n_pairs

    def _divergence_hint(self) -> str:
        return (f"training diverged; lower lr (now {float(self.lr):g}) or init_std (now {float(self.init_std):g}), "
                f"or check the interactions")

    @staticmethod
    def _n_active(net: _DSLNet, engine: Optional[DynamicSparsity]) -> int:
        if engine is not None:
            return int(engine.density_report()["total"]["active"])
        return int(net.user.weight.numel() + net.item.weight.numel())

    def _store_embeddings(self, net: _DSLNet, adj: Optional[torch.Tensor]) -> None:
        with torch.no_grad():
            users, items, _ = net.embeddings(adj)
        self.user_embeddings_ = _numpy(users)
        self.item_embeddings_ = _numpy(items)

    # -- predicting -------------------------------------------------------------------------------
    def _user_indices(self, users: Any) -> np.ndarray:
        """Internal indices of ``users``: the ids of the training data (all users when None)."""
        if users is not None and not _is_identity(self.user_ids_):
            return self._indices_of_ids(users)
        arr = backend.to_numpy(users) if users is not None else np.arange(self.n_users_)
        arr = np.asarray(arr).reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"users must be integer user indices; got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_users_):
            raise ValueError(f"users must be indices in [0, {self.n_users_}); got values in "
                             f"[{arr.min()}, {arr.max()}]")
        return arr

    def _indices_of_ids(self, users: Any) -> np.ndarray:
        reject_complex(users, "users")
        arr = np.asarray(backend.to_numpy(users)).reshape(-1)
        positions = pd.Index(self.user_ids_).get_indexer(arr)
        unknown = np.flatnonzero(positions < 0)
        if unknown.size:
            raise ValueError(f"users holds {unknown.size} id(s) that are not users of the training data, e.g. "
                             f"{arr[unknown[:5]].tolist()}; users are given by their ids (user_ids_)")
        return positions.astype(np.int64)

    def scores(self, users: Any = None) -> np.ndarray:
        """Predicted scores ``(len(users), n_items)``: dot products of the final embeddings.

        ``users`` are ids of the training data (see :meth:`recommend`); column ``j`` scores the item
        ``item_ids_[j]``.
        """
        check_is_fitted(self, "user_embeddings_")
        idx = self._user_indices(users)
        return self.user_embeddings_[idx] @ self.item_embeddings_.T

    def recommend(self, users: Any = None, k: int = 20, exclude_seen: bool = True) -> Any:
        """The ``k`` highest-scored items per user, best first.

        Users and items are named as in the training data: by their ids (``user_ids_``,
        ``item_ids_``), which are the internal indices themselves when the model was fitted on
        indices (a matrix, or pairs of dense ids). Ids that were remapped (pairs of sparse ids, data
        read with their own ids) are taken and returned as the user gave them.

        Parameters
        ----------
        users : array-like, optional
            User ids (default: all users, in the order of ``user_ids_``).
        k : int, default=20
        exclude_seen : bool, default=True
            Never recommend a user's training items.

        Returns
        -------
        ndarray of shape (len(users), k)
            Item ids, best first; a torch tensor when ``users`` was one and the item ids are integers.

        Raises
        ------
        ValueError
            A user that is not in the training data, or ``k`` outside ``[1, n_items]``.
        """
        from recsys.metrics import topk_items

        check_is_fitted(self, "user_embeddings_")
        idx = self._user_indices(users)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_items_:
            raise ValueError(f"k must be an int in [1, n_items={self.n_items_}]; got {k!r}")
        top = backend.to_numpy(topk_items(self.user_embeddings_, self.item_embeddings_, k=int(k),
                                          exclude=self.train_ if exclude_seen else None, users=idx))
        if not _is_identity(self.item_ids_):
            top = self.item_ids_[top]
        as_tensor = isinstance(users, torch.Tensor) and top.dtype.kind == "i"
        return backend.to_output(top, like=users if as_tensor else np.empty(0))

    def evaluate(self, test: Any, k: Any = (20,)) -> dict:
        """Recall@K and NDCG@K (and precision) on held-out interactions, full ranking, training items masked.

        ``test`` names users and items like the training data (by id where the ids are not the
        indices, as :meth:`recommend` does).

        Returns
        -------
        dict
            ``{"recall@20": ..., "ndcg@20": ..., ...}`` for every cut-off in ``k``.
        """
        from recsys.metrics import evaluate_ranking

        check_is_fitted(self, "user_embeddings_")
        ks = _check_ks(k, "k")
        test_csr = _binary_csr(_aligned(test, self.user_ids_, self.item_ids_))
        result = evaluate_ranking(self.user_embeddings_, self.item_embeddings_, self.train_, test_csr, ks=ks)
        return {key: float(value) for key, value in result.items()}

    def score(self, X: Any, y: Any = None) -> float:
        """Recall@20 on held-out interactions ``X`` (for ``GridSearchCV``; larger is better)."""
        return self.evaluate(X, k=(20,))["recall@20"]

    # -- persistence ------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """Pickle the tables from the CPU, so a model trained on a GPU loads on a machine without one."""
        state = self.__dict__.copy()
        model = state.get("model_")
        if model is not None and any(p.device.type != "cpu" for p in model.parameters()):
            state["model_"] = copy.deepcopy(model).to("cpu")
        return state


def _numpy(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu()
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy().copy()


def _training_state_bytes(net: nn.Module, optimizer: torch.optim.Optimizer,
                          engine: Optional[DynamicSparsity]) -> int:
    """Bytes held between steps: parameters, their gradients, optimizer state, index buffers and masks."""
    total = sum(2 * p.numel() * p.element_size() for p in net.parameters())      # weights and gradients
    total += sum(b.numel() * b.element_size() for b in net.buffers())
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
    if engine is not None:
        for target in engine.targets:
            if target.kind == "masked":
                total += target.mask.numel() * target.mask.element_size()
                total += target.factor.numel() * target.factor.element_size()
    return int(total)


def _check_ks(k: Any, name: str) -> tuple:
    ks = (k,) if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else tuple(k)
    if not ks or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in ks):
        raise ValueError(f"{name} must be a positive int or a tuple of positive ints; got {k!r}")
    return tuple(int(v) for v in ks)
