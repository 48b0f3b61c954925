"""The fits behind ``benchmarks/dsl_gowalla.py``: data, one :class:`recsys.DSLRecommender` per call,
scores at checkpoints, and the peak memory of a short fit with every large block mmapped."""

from __future__ import annotations

import gc
import math
import statistics

from .harness import Meter
from .paths import shared_data

VALIDATION_FRACTION = 0.1   # of each user's training items, held out of training for the validation split
# the backbones' fixed training settings (the old benchmark's): MF at Adam 1e-3, LightGCN (3 layers) at 1e-2
# with a large batch, since it propagates over the whole graph at every step
BACKBONES = {"MF": {"backbone": "mf", "batch_size": 2048, "lr": 1e-3},
             "LightGCN": {"backbone": "lightgcn", "batch_size": 32768, "lr": 1e-2}}
QUICK_BATCH = 512
QUICK_INTERVAL = 5          # optimizer steps between prune/grow updates on the quick data
MEMORY_EPOCHS = 3           # the memory fit: one update an epoch, so two updates (none on the last step)
MMAP_THRESHOLD = 64 << 10   # blocks of 64 KiB and more mmapped in the memory fit (glibc's M_MMAP_THRESHOLD)
M_MMAP_THRESHOLD = -3


def load(quick: bool, density: float) -> dict:
    """Gowalla's LightGCN split (or small generated interactions), with a validation split carved out of
    training: ``{"validation": (fit part, held-out part), "test": (training, test), ...}``."""
    from recsys.datasets import make_low_rank_interactions
    from recsys.interactions import read_lightgcn_split

    if quick:
        data = make_low_rank_interactions(n_users=400, n_items=300, rank=8, interactions_per_user=20,
                                          random_state=0)
        train, test = data.split_by_user(test_size=0.2, random_state=0)
    else:
        train, test = read_lightgcn_split(shared_data("recsys", "gowalla"))
    fit_part, held_out = train.split_by_user(test_size=VALIDATION_FRACTION, random_state=0)
    return {"validation": (fit_part, held_out), "test": (train, test), "density": density, "quick": quick}


def estimator_params(data: dict, backbone: str, mode: str, epochs: int, seed: int, regrow_init: str) -> dict:
    """:class:`recsys.DSLRecommender` keyword arguments for one row."""
    density = data["density"]
    fixed = BACKBONES[backbone]
    params = dict(backbone=fixed["backbone"], n_factors=64, n_layers=3, density=density, n_epochs=int(epochs),
                  batch_size=QUICK_BATCH if data["quick"] else fixed["batch_size"], lr=fixed["lr"], reg=1e-4,
                  update_ratio=0.5, update_interval=QUICK_INTERVAL if data["quick"] else "auto",
                  regrow_init=regrow_init, random_state=seed, device="cpu", verbose=0)
    if mode == "dense-small":   # a dense model with as many weights as the sparse ones
        params.update(n_factors=max(1, round(density * 64)), density=1.0)
    elif mode == "static":
        params.update(fix=True, balance=None)
    elif mode == "paper":       # last batch's gradient, regrown weights and moments at zero, one budget a table
        params.update(grad_window=1, regrow_init="zero", regrow_moments="zero", grad_decay=0.0, balance=None)
    return params


def warm_up(params: dict, train) -> None:
    """A fit on a few pairs, so that lazy imports and the allocator's first growth are not measured."""
    import numpy as np

    from recsys import DSLRecommender

    pairs = np.stack([train.users[:256], train.items[:256]], axis=1)
    DSLRecommender(**{**params, "n_epochs": 1, "batch_size": 64}).fit(pairs)


def scored_epochs(history: list, wanted) -> dict:
    """``{epoch: {"recall@20", "ndcg@20"}}`` from a fit's history, for the ``wanted`` epochs."""
    by_epoch = {record["epoch"]: record for record in history}
    return {int(e): {"recall@20": by_epoch[e]["recall@20"], "ndcg@20": by_epoch[e]["ndcg@20"]} for e in wanted}


def memory_peak(params: dict, train) -> float:
    """Resident memory a short fit adds (two prune/grow updates), with every block of 64 KiB and more
    mmapped, so that freed memory leaves the process and the peak follows live memory."""
    import ctypes

    from recsys import DSLRecommender

    gc.collect()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    model = DSLRecommender(**{**params, "n_epochs": MEMORY_EPOCHS, "update_interval": None})
    meter = Meter()
    with meter:
        model.fit(train)
    return meter.peak_bytes


def fit(data, *, split, seed, meter, backbone, mode, epochs, regrow_init="gradient", plan=None,
        checkpoints=None, memory=False):
    """Train on the split's training part and score Recall@20 / NDCG@20 on its held-out part.

    ``epochs``: where the scores are read. ``plan``: the epochs the fit (and DSL's prune/grow schedule)
    is planned for, ``epochs`` when None. ``checkpoints``: score at each of these epochs of one fit
    (the runner's validation of an epochs grid). ``memory``: on the test split, also measure a short fit's peak.
    """
    from recsys import DSLRecommender

    train, held_out = data[split]
    wanted = sorted(int(e) for e in checkpoints) if checkpoints else [int(epochs)]
    length = int(plan) if plan is not None else max(wanted)
    if length < max(wanted):
        raise ValueError(f"the fit is planned for {length} epochs but is scored at {max(wanted)}")
    params = estimator_params(data, backbone, mode, length, seed, regrow_init)
    warm_up(params, train)
    every = math.gcd(*wanted) if len(wanted) > 1 else wanted[0]
    model = DSLRecommender(**params, eval_every=every)
    with meter:
        model.fit(train, eval_set=held_out)
    scores = scored_epochs(model.history_, wanted)
    extra = {"epoch_seconds": statistics.median(r["seconds"] for r in model.history_),
             "n_active": int(model.n_active_parameters_), "n_updates": int(model.n_updates_),
             "n_factors": int(params["n_factors"])}
    if checkpoints:
        return {"checkpoints": {e: {**metrics, **extra} for e, metrics in scores.items()}}
    result = {**scores[int(epochs)], **extra}
    if memory and split == "test":
        del model
        result["memory_peak_bytes"] = memory_peak(params, train)
    return result
