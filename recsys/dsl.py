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
symmetric-normalised user-item graph ``D^-1/2 A D^-1/2`` and averaged over the layers, ``1/(L+1)`` each;
the network is in :mod:`recsys._dsl_net`).

With ``sparse_storage=True`` (default) the tables are :class:`recsys.sparse.SparseTable` modules that
hold only the active weights, and Adam keeps moments for them only, so memory falls with the density;
``sparse_storage=False`` keeps dense tables under masks. ``density=1.0`` trains the dense model.
Measurements and the evidence behind the defaults: docs/dsl.md.

Examples
--------
>>> from recsys.datasets import make_low_rank_interactions
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

import time
from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_is_fitted

from recsys._checks import check_cutoffs
from recsys._dsl_net import _DSLNet, bpr_loss, normalized_adjacency, training_state_bytes
from recsys._dsl_parallel import ParallelTraining, rank_random_state, rank_shares, share_random_state
from recsys._ids import holds_raw_ids
from recsys.sparse import (GROW_RULES, REDISTRIBUTIONS, REGROW_INITS, REGROW_MOMENTS, DynamicSparsity,
                           degree_row_counts)
from tensorkit import backend
from tensorkit.base import StrOptions, TorchEstimator, check_parameters, integers, reals
from tensorkit.distributed import check_identical, current_world, stage
from tensorkit.utils import progress
from tensorkit.validation import check_finite_result, reject_complex

__all__ = ["DSLRecommender", "auto_update_epochs", "bpr_loss", "normalized_adjacency", "sample_negatives"]

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
    from recsys.interactions import as_interactions

    return as_interactions(data, n_users=n_users, n_items=n_items)


def _aligned(data: Any, user_ids: np.ndarray, item_ids: np.ndarray):
    """``data`` indexed like training data with these id maps: read as internal indices when both maps
    are the identity and ``data`` holds numbers (as it always was), else matched by id
    (:meth:`recsys.data.Interactions.reindex`)."""
    if _is_identity(user_ids) and _is_identity(item_ids) and not holds_raw_ids(data):
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

# ------------------------------------------------------------------------------------------------
# the estimator


class _CaseInsensitiveOptions(StrOptions):
    """:class:`StrOptions` whose strings match in any case (``"MF"`` is ``"mf"``)."""

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, str) and val.lower() in self.options


class DSLRecommender(TorchEstimator):
    """Top-k recommender trained with Dynamic Sparse Learning (DSL) on MF or LightGCN, BPR loss.

    Parameters
    ----------
    backbone : {"mf", "lightgcn"}, default="mf"
        Matrix factorisation, or LightGCN's propagation over the user-item graph (any case).
    n_factors : int, default=64
        Embedding width ``d``.
    n_layers : int, default=3
        LightGCN propagation layers (ignored by MF).
    density : float in (0, 1], default=0.5
        Fraction of active weights of each embedding table; 1.0 trains the dense model (no engine).
    fix : bool, default=False
        Keep the initial random sparse pattern (static sparse training).
    update_interval : "auto", None or int, default="auto"
        Optimizer steps between prune/grow updates (``Delta T``). None: one update an epoch. "auto":
        one every :func:`auto_update_epochs` epochs (about ten updates over an MF fit, twenty over a
        LightGCN one). The last step takes no update, as nothing would train what it regrows.
    update_ratio : float in [0, 1], default=0.5
        Fraction of active weights replaced at the first update (``r_0``).
    final_update_ratio : float in [0, 1], default=0.005
        The fraction at the last step; the cosine schedule of :func:`recsys.sparse.update_ratio` runs
        over the whole training.
    redistribution : {None, "global"}, default=None
        "global": one budget for both tables; the user/item split moves with the pooled magnitudes and
        gradients.
    grow : {"gradient", "random"}, default="gradient"
        RigL's rule (largest gradient magnitude) or SET's uniformly random choice.
    regrow_init : {"zero", "random", "gradient"}, default="gradient"
        Initial value of regrown weights. "gradient" (an extension; the paper and RigL use "zero"): a
        step along the negative growth gradient, scaled to the root mean square of the pruned weights.
    regrow_moments : {"auto", "zero", "gradient"}, default="auto"
        Initial Adam moments of regrown weights: "zero" (the paper's reset), or "gradient", the moments
        a steady gradient would have built from the growth window's mean gradient (an extension).
        "auto": "gradient" for MF, "zero" for LightGCN.
    grad_window : int or None, default=None
        Steps whose gradients are summed to choose regrown weights. None: the whole
        ``update_interval``; 1: the last mini-batch only (the paper's rule).
    grad_decay : "auto" or float in [0, 1], default="auto"
        How much of the earlier windows' gradient still counts when choosing regrown weights (an
        extension). 0: the current window alone; 1: each inactive weight's gradient since it last
        became inactive. "auto": 1 for LightGCN, 0 for MF.
    balance : {"auto", None, "row", "degree"}, default="auto"
        None: one budget per table (the paper's). "row": every user and item row keeps ``round(density
        * n_factors)`` weights and prune/grow happens within rows. "degree": the same total, the busiest
        quarter of the rows holding 1.5 times as many (:func:`recsys.sparse.degree_row_counts`). Both
        need ``sparse_storage=True`` and no ``redistribution``. "auto": "row" for LightGCN where the
        settings allow it, None for MF.
    sparse_storage : bool, default=True
        Hold only the active weights (:class:`recsys.sparse.SparseTable`) rather than dense tables
        under masks.
    n_epochs : int, default=30
    batch_size : int, default=2048
    lr : float, default=1e-3
        Adam's learning rate.
    lr_schedule : {"constant", "cosine"}, default="constant"
        "cosine": a cosine from ``lr`` down to ``min_lr`` over the epochs, stepped once per epoch.
    min_lr : float, default=1e-4
        The learning rate after the last epoch with ``lr_schedule="cosine"``.
    reg : float, default=1e-4
        L2 weight on the batch's ego embeddings, ``reg * (|u|^2 + |i|^2 + |j|^2) / 2 / batch`` (LightGCN's).
    n_negatives : int, default=1
        Negative items per training pair, uniform over the items the user has not interacted with.
    init_std : float, default=0.1
        Embeddings start as ``N(0, init_std^2)``.
    eval_every : int, default=0
        With ``eval_set``: evaluate every this many epochs (0: after the last epoch only).
    eval_k : int or tuple of int, default=(20,)
        Cut-offs of the metrics recorded in ``history_``.
    random_state : None, int or RandomState
    device : str or torch.device, default="auto"
    dtype : str or torch.dtype, default="float32"
    verbose : int, default=1
        Progress bar over the epochs (see :meth:`tensorkit.base.TorchEstimator._progress`).

    Attributes
    ----------
    model_ : nn.Module
        The trained tables, on the device of the fit (pickles hold CPU copies).
    n_users_, n_items_ : int
    user_ids_, item_ids_ : ndarray
        The ids behind the internal indices (those of the training :class:`~recsys.interactions.Interactions`;
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
        index buffers (and masks in masked mode); with ``sparse_storage`` about ``20 * active`` bytes
        in float32 against ``16 * n_parameters_`` for the dense model.
    history_ : list of dict
        Per epoch: ``epoch``, ``loss``, ``seconds``, ``n_active``, ``lr`` and, with ``eval_set``, the
        metrics.

    See Also
    --------
    recsys.sparse.DynamicSparsity : The prune/grow engine, around any torch model.

    Notes
    -----
    Data-parallel training: under an initialised ``torch.distributed`` group of several processes
    (``torchrun --nproc_per_node N``) each rank trains on its share of every global batch of
    ``batch_size`` pairs, with its own negatives; the gradients are summed over the ranks (embedding
    rows row-sparse), so a step is the single-process step on the whole batch, and the growth gradients
    are summed before each prune/grow update, whose masks are checked identical. Every rank ends with
    the same model; the progress bar is rank 0's. A group of one trains as a single process.

    Evidence for the defaults that differ from the paper (update interval, regrown values and
    moments, growth window and decay, row balance) and measured Recall@20 and memory on Gowalla:
    docs/dsl.md.

    References
    ----------
    S. Wang, Y. Sui, J. Wu, Z. Zheng and H. Xiong, "Dynamic Sparse Learning: A Novel Paradigm for
    Efficient Recommendation", WSDM 2024, arXiv:2402.02855.
    X. He, K. Deng, X. Wang, Y. Li, Y. Zhang and M. Wang, "LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation", SIGIR 2020.

    Examples
    --------
    >>> from recsys.datasets import make_low_rank_interactions
    >>> data = make_low_rank_interactions(n_users=60, n_items=50, rank=4, interactions_per_user=8,
    ...                                   random_state=0)
    >>> rec = DSLRecommender(backbone="lightgcn", n_factors=8, n_layers=2, density=0.5, n_epochs=2,
    ...                      update_interval=2, random_state=0, device="cpu", verbose=0).fit(data)
    >>> rec.user_embeddings_.shape, rec.item_embeddings_.shape
    ((60, 8), (50, 8))
    """

    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "backbone": [_CaseInsensitiveOptions(set(BACKBONES))],
        "n_factors": [integers(1)],
        "n_layers": [integers(0)],
        "density": [reals(0, 1, closed="right")],
        "fix": ["boolean"],
        "update_interval": [StrOptions({"auto"}), None, integers(1)],
        "update_ratio": [reals(0, 1)],
        "final_update_ratio": [reals(0, 1)],
        "redistribution": [StrOptions({r for r in REDISTRIBUTIONS if r is not None}), None],
        "grow": [StrOptions(set(GROW_RULES))],
        "regrow_init": [StrOptions(set(REGROW_INITS))],
        "regrow_moments": [StrOptions({"auto", *REGROW_MOMENTS})],
        "grad_window": [None, integers(1)],
        "grad_decay": [StrOptions({"auto"}), reals(0, 1)],
        "balance": [StrOptions(set(BALANCE_OPTIONS)), None],
        "sparse_storage": ["boolean"],
        "n_epochs": [integers(1)],
        "batch_size": [integers(1)],
        "lr": [reals(0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "min_lr": [reals(0)],
        "reg": [reals(0)],
        "n_negatives": [integers(1)],
        "init_std": [reals(0)],
        "eval_every": [integers(0)],
        "eval_k": [integers(1), "array-like"],
    }

    def __init__(self, backbone: str = "mf", *, n_factors: int = 64, n_layers: int = 3, density: float = 0.5,
                 fix: bool = False, update_interval: Any = "auto", update_ratio: float = 0.5,
                 final_update_ratio: float = 0.005, redistribution: Optional[str] = None, grow: str = "gradient",
                 regrow_init: str = "gradient", regrow_moments: str = "auto", grad_window: Optional[int] = None,
                 grad_decay: Any = "auto", balance: Optional[str] = "auto", sparse_storage: bool = True,
                 n_epochs: int = 30, batch_size: int = 2048, lr: float = 1e-3, lr_schedule: str = "constant",
                 min_lr: float = 1e-4, reg: float = 1e-4, n_negatives: int = 1, init_std: float = 0.1,
                 eval_every: int = 0, eval_k: Any = (20,), random_state: Any = None, device: Any = "auto",
                 dtype: Any = "float32", verbose: int = 1):
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

    # -- parameters -------------------------------------------------------------------------------
    def _check_param_combinations(self) -> None:
        if self.balance in _ROW_BALANCES and not self._row_balance_possible():
            raise ValueError(f"balance={self.balance!r} needs sparse_storage=True and redistribution=None")
        check_cutoffs(self.eval_k, "eval_k", type(self).__name__)


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
        interactions : Interactions, scipy sparse matrix (users x items), DataFrame of two columns
            (user, item), or (n, 2) array of (user, item) pairs
            Anything :func:`recsys.interactions.as_interactions` accepts, which decides whether pairs
            hold raw ids or internal indices:

            - raw ids: a DataFrame (any dtype: strings, hashed or 64-bit integers ...), an array or
              list of strings or other non-numbers, an :class:`~recsys.interactions.Interactions`
              with its own id maps, and pairs of numbers whose column is sparse (the largest id at
              least ``2 n + 65536`` for ``n`` pairs). Internal indices follow the sorted distinct ids,
              so the tables follow the data, never the largest id.
            - indices: a sparse matrix, and pairs of numbers ``0..n-1`` otherwise (as always).

            The ids are kept in ``user_ids_``/``item_ids_`` (``arange`` for indices);
            :meth:`recommend`, :meth:`scores`, :meth:`evaluate` and :meth:`score` take and return
            them. To keep dense integer ids as ids, pass a DataFrame.
        y : ignored
        eval_set : same kinds, optional
            Held-out interactions, named like ``interactions`` (matched by id where the ids are not
            the indices or ``eval_set`` holds raw ids); Recall@K and NDCG@K (full ranking, training
            items masked) go into ``history_``.

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
        setup = self._fit_setup()
        device, dtype, rng = setup.device, setup.dtype, setup.random
        world = current_world()
        with stage(world, "reading DSLRecommender's training data"):
            inter = _interactions(interactions)
            train = _binary_csr(inter)
            if train.nnz == 0:
                raise ValueError("interactions is empty; at least one (user, item) pair is needed")
            test = None
            if eval_set is not None:
                # kept with the training maps, so evaluate() matches it by id (a bare matrix is indices)
                test = _aligned(eval_set, inter.user_ids, inter.item_ids)
        if world.active:
            check_identical(world, (train.shape, train.indptr, train.indices), "the training interactions")
            share_random_state(world, rng)
        backbone = self.backbone.lower()
        with stage(world, "building DSLRecommender's model"):
            net, adj, optimizer, scheduler, engine, pairs = self._build(train, backbone, rng, device, dtype)
        trainer = own = None
        if world.active:
            trainer = ParallelTraining(world, net, optimizer, engine, adj, float(self.reg))
            own = rank_random_state(world, rng)
        n_users, n_items = train.shape
        self.n_users_, self.n_items_ = n_users, n_items
        self.user_ids_, self.item_ids_ = inter.user_ids, inter.item_ids
        self.train_ = train
        self.history_ = []
        epochs = range(1, int(self.n_epochs) + 1)
        bar = self._progress(epochs, desc=f"DSL-{backbone}") if world.is_main else progress(epochs, verbose=0)
        try:
            for epoch in bar:
                started = time.perf_counter()
                net.train()
                if trainer is None:
                    loss = self._train_epoch(net, optimizer, engine, adj, pairs, train, rng.numpy, device)
                else:
                    loss = self._train_epoch_parallel(trainer, pairs, train, rng.numpy, own, device)
                check_finite_result(np.float64(loss), f"the BPR loss of epoch {epoch}", self._divergence_hint())
                record = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started,
                          "n_active": self._n_active(net, engine), "lr": optimizer.param_groups[0]["lr"]}
                if scheduler is not None:
                    scheduler.step()
                last = epoch == int(self.n_epochs)
                if test is not None and (last or (self.eval_every and epoch % int(self.eval_every) == 0)):
                    with stage(world, "evaluating DSLRecommender"):
                        self._store_embeddings(net, adj)
                        record.update(self.evaluate(test, k=self.eval_k))
                self.history_.append(record)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("loss", "recall@20")})
        finally:
            bar.close()
            if engine is not None:
                engine.remove_hooks()
        net.eval()
        self.training_state_bytes_ = training_state_bytes(net, optimizer, engine)
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

    def _build(self, train: sp.csr_matrix, backbone: str, rng: Any, device: torch.device, dtype: torch.dtype):
        """The fit's network, graph (LightGCN), optimizer, learning-rate schedule, engine (None for the
        dense model) and training pairs ``(users, items)``."""
        n_users, n_items = train.shape
        density = float(self.density)
        dense = density >= 1.0
        storage = "dense" if dense or not self.sparse_storage else "table"
        init_gen = rng.spawn_generator()
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
                                     random_state=rng.spawn_seed(), optimizer=optimizer,
                                     regrow_init=self.regrow_init,
                                     regrow_moments=self._regrow_moments(backbone),
                                     balance="row" if balance in _ROW_BALANCES else None,
                                     grad_decay=self._grad_decay(backbone),
                                     grad_window=interval if self.grad_window is None
                                     else min(int(self.grad_window), interval))
        return net, adj, optimizer, scheduler, engine, (pair_users, pair_items)

    def _train_epoch_parallel(self, trainer: ParallelTraining, pairs: tuple, train: sp.csr_matrix,
                              shared: np.random.RandomState, own: np.random.RandomState,
                              device: torch.device) -> float:
        """:meth:`_train_epoch` as one rank of data-parallel training: the permutation comes from ``shared``
        (the same on every rank), the rank takes its share of each global batch and draws its negatives
        from ``own``. Returns the mean BPR loss over all ranks."""
        pair_users, pair_items = pairs
        n_pairs = len(pair_users) * int(self.n_negatives)
        order = shared.permutation(n_pairs) % len(pair_users)
        picks, batches = rank_shares(trainer.world, n_pairs, int(self.batch_size))
        mine = order[picks]
        del order, picks
        users, pos = pair_users[mine], pair_items[mine]
        neg = sample_negatives(users, train, own)
        users, pos, neg = (torch.as_tensor(a, device=device) for a in (users, pos, neg))
        total, at = 0.0, 0
        for size, count in batches:
            total += trainer.step(users[at:at + count], pos[at:at + count], neg[at:at + count], size)
            at += count
            if trainer.updates_next():   # prune/grow needs finite weights (total is the same on every rank)
                check_finite_result(np.float64(total), "the BPR loss", self._divergence_hint())
            trainer.sparsify()
        trainer.finish_epoch()
        return total / n_pairs

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
    def _user_indices(self, users: Any, indices: bool = False) -> np.ndarray:
        """Internal indices of ``users``: the ids of the training data, or internal indices when
        ``indices`` (all users when None)."""
        if users is not None and not indices and (not _is_identity(self.user_ids_) or holds_raw_ids(users)):
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
                             f"{arr[unknown[:5]].tolist()}; users are given by their ids (user_ids_), or by internal "
                             f"index with indices=True")
        return positions.astype(np.int64)

    def scores(self, users: Any = None, *, indices: bool = False) -> np.ndarray:
        """Predicted scores ``(len(users), n_items)``: dot products of the final embeddings.

        ``users`` are ids of the training data, or internal indices with ``indices=True`` (see
        :meth:`recommend`); column ``j`` scores the item ``item_ids_[j]``.
        """
        check_is_fitted(self, "user_embeddings_")
        idx = self._user_indices(users, indices)
        return self.user_embeddings_[idx] @ self.item_embeddings_.T

    def recommend(self, users: Any = None, k: int = 20, exclude_seen: bool = True, *,
                  indices: bool = False) -> Any:
        """The ``k`` highest-scored items per user, best first.

        Users and items are named as in the training data: by their ids (``user_ids_``,
        ``item_ids_``; see :meth:`fit` for when pairs hold ids), which are the internal indices
        themselves when the model was fitted on indices (a matrix, or pairs of dense numbers). With
        ``indices=True`` both sides are internal indices instead (rows of ``user_embeddings_``,
        ``item_embeddings_``).

        Parameters
        ----------
        users : array-like, optional
            User ids (default: all users, in the order of ``user_ids_``).
        k : int, default=20
        exclude_seen : bool, default=True
            Never recommend a user's training items.
        indices : bool, default=False
            Take internal user indices and return internal item indices.

        Returns
        -------
        ndarray of shape (len(users), k)
            Item ids (or indices), best first; a torch tensor when ``users`` was one and the result
            holds integers.

        Raises
        ------
        ValueError
            A user that is not in the training data (naming the unknown ids), or ``k`` outside
            ``[1, n_items]``.

        Examples
        --------
        >>> import pandas as pd
        >>> log = pd.DataFrame({"user": ["ann", "ann", "bob", "cy", "cy"],
        ...                     "item": ["tea", "jam", "tea", "jam", "oat"]})
        >>> rec = DSLRecommender(n_factors=4, n_epochs=2, random_state=0, device="cpu", verbose=0).fit(log)
        >>> rec.recommend(["ann"], k=1).tolist()                 # ann's one unseen item, by its id
        [['oat']]
        >>> rec.recommend([0], k=1, indices=True).tolist()       # the same, as internal indices
        [[1]]
        """
        from recsys.metrics import topk_items

        check_is_fitted(self, "user_embeddings_")
        idx = self._user_indices(users, indices)
        check_parameters({"k": [integers(1, self.n_items_)]}, {"k": k}, f"{type(self).__name__}.recommend")
        top = backend.to_numpy(topk_items(self.user_embeddings_, self.item_embeddings_, k=int(k),
                                          exclude=self.train_ if exclude_seen else None, users=idx))
        if not indices and not _is_identity(self.item_ids_):
            top = self.item_ids_[top]
        as_tensor = isinstance(users, torch.Tensor) and top.dtype.kind == "i"
        return backend.to_output(top, like=users if as_tensor else np.empty(0))

    def evaluate(self, test: Any, k: Any = (20,)) -> dict:
        """Recall@K and NDCG@K (and precision) on held-out interactions, full ranking, training items masked.

        ``test`` names users and items like the training data: by id where the ids are not the
        indices or ``test`` holds raw ids (a DataFrame, strings; see :meth:`fit`), as :meth:`recommend`
        does; an id that the training data lack is a ``ValueError``.

        Returns
        -------
        dict
            ``{"recall@20": ..., "ndcg@20": ..., ...}`` for every cut-off in ``k``.
        """
        from recsys.metrics import evaluate_ranking

        check_is_fitted(self, "user_embeddings_")
        ks = check_cutoffs(k, "k", f"{type(self).__name__}.evaluate")
        test_csr = _binary_csr(_aligned(test, self.user_ids_, self.item_ids_))
        result = evaluate_ranking(self.user_embeddings_, self.item_embeddings_, self.train_, test_csr, ks=ks)
        return {key: float(value) for key, value in result.items()}

    def score(self, X: Any, y: Any = None) -> float:
        """Recall@20 on held-out interactions ``X`` (for ``GridSearchCV``; larger is better), named by
        id like :meth:`evaluate`'s ``test``."""
        return self.evaluate(X, k=(20,))["recall@20"]


def _numpy(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu()
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy().copy()
