"""The peer of the CTR benchmark: deepctr-torch's ``DeepFM`` and ``DCN(cross_parameterization="matrix")``.

The PyPI package ``deepctr-torch==0.3.0`` (the ``bench`` extra) starts, on import, a thread that asks
PyPI for a newer release; the benchmark runs offline, so that request is answered here, locally,
with "unavailable" (no network).
"""

from __future__ import annotations

import types

import numpy as np

from .harness import Unavailable


def import_peer():
    """deepctr-torch's model classes and callbacks; :class:`Unavailable` when it is not installed."""
    try:
        import requests

        # deepctr-torch's version check calls requests.get in a thread; answer it offline
        requests.get = lambda *args, **kwargs: types.SimpleNamespace(status_code=503, text="")
        import deepctr_torch
        from deepctr_torch.callbacks import EarlyStopping
        from deepctr_torch.inputs import SparseFeat
        from deepctr_torch.models import DCN, DeepFM
    except ImportError:
        raise Unavailable("the PyPI package deepctr-torch is not installed (pip install '.[bench]')") from None
    return types.SimpleNamespace(version=deepctr_torch.__version__, SparseFeat=SparseFeat, DeepFM=DeepFM,
                                 DCN=DCN, EarlyStopping=EarlyStopping)


def build(peer, kind: str, columns: list, config: dict, seed: int):
    """A deepctr-torch ``DeepFM`` or matrix ``DCN`` at our widths, its defaults otherwise."""
    if kind == "deepfm":
        return peer.DeepFM(columns, columns, dnn_hidden_units=config["hidden"], task="binary", device="cpu",
                           seed=seed)
    return peer.DCN(columns, columns, cross_num=config["cross_layers"], cross_parameterization="matrix",
                    dnn_hidden_units=config["hidden"], task="binary", device="cpu", seed=seed)


def fit_and_score(kind: str, X_train, y_train, X_test, y_test, config: dict, seed: int, meter) -> dict:
    """Train the peer with early stopping on its last 10% of (shuffled) training rows; test AUC and log loss.

    Both models see our integer codes (our vocabulary, fitted on the training split), categorical
    fields only, as in the old benchmark.
    """
    import torch

    from recsys.ctr import CTRPreprocessor
    from recsys.metrics import log_loss, roc_auc

    peer = import_peer()
    pre = CTRPreprocessor().fit(X_train)
    train, test = pre.transform(X_train), pre.transform(X_test)
    names = list(pre.schema_.categorical)
    columns = [peer.SparseFeat(name, vocabulary_size=card, embedding_dim=config["embed_dim"])
               for name, card in zip(names, pre.cardinalities_)]
    torch.manual_seed(seed)
    model = build(peer, kind, columns, config, seed)
    model.compile(torch.optim.Adam(model.parameters(), lr=config["learning_rate"]), "binary_crossentropy",
                  metrics=["binary_crossentropy"])
    stopper = peer.EarlyStopping(monitor="val_binary_crossentropy", patience=config["patience"], mode="min",
                                 restore_best_weights=True)
    order = np.random.RandomState(seed).permutation(len(y_train))   # validation_split takes the last rows
    with meter:
        history = model.fit({n: train.categorical[order, j] for j, n in enumerate(names)},
                            y_train[order].astype(np.float32), batch_size=config["batch_size"],
                            epochs=config["max_epochs"], verbose=0, validation_split=config["validation_fraction"],
                            callbacks=[stopper])
    prob = model.predict({n: test.categorical[:, j] for j, n in enumerate(names)}, 4096).reshape(-1)
    losses = history.history.get("val_binary_crossentropy", [])
    return {"auc": roc_auc(y_test, prob), "logloss": log_loss(y_test, prob), "epochs": len(losses),
            "best_epoch": int(np.argmin(losses)) + 1 if losses else 0}
