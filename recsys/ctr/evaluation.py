"""Sizes, quality and speed of a compressed CTR model next to the original.

:func:`evaluate_compression` is the report of a compression made by :func:`recsys.ctr.compress`:
what was compressed (method, ranks, folding, fine-tuning history), the parameter and byte counts
before and after, and on held-out data the AUC, the log loss and the CPU latency of both models.
:func:`count_parameters`, :func:`count_bytes` and :func:`measure_latency` are its parts.

Examples
--------
>>> import numpy as np
>>> from recsys.ctr import DNN, CTRInputs, compress, evaluate_compression
>>> model = DNN(n_dense=2, cardinalities=(50, 40), embed_dim=8, hidden=(32, 16), random_state=0)
>>> rng = np.random.default_rng(0)
>>> X = CTRInputs(rng.random((500, 2), dtype=np.float32), np.stack([rng.integers(0, 50, 500), rng.integers(0, 40, 500)], 1))
>>> y = rng.integers(0, 2, 500)
>>> small = compress(model, X, ranks={"embeddings": 3, "mlp.linear0": 8})
>>> report = evaluate_compression(model, small, X, y, latency_batches=(1,))
>>> report["ranks"], report["params_after"] < report["params_before"]
({'embeddings.0': 3, 'embeddings.1': 3, 'mlp.linear0': 8}, True)
>>> sorted(k for k in report if k.endswith("_after"))
['auc_after', 'bytes_after', 'latency_after', 'logloss_after', 'params_after']
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from recsys.ctr.classifier import CTRClassifier, check_click_labels, predict_logits
from recsys.ctr.models import CTRModel
from recsys.ctr.schema import CTRInputs, as_inputs

__all__ = ["count_bytes", "count_parameters", "evaluate_compression", "measure_latency"]


def count_parameters(module: nn.Module) -> int:
    """Parameters of ``module`` (trainable or not)."""
    return int(sum(p.numel() for p in module.parameters()))


def count_bytes(module: nn.Module) -> int:
    """Bytes of the parameters and buffers of ``module``."""
    tensors = list(module.parameters()) + list(module.buffers())
    return int(sum(t.numel() * t.element_size() for t in tensors))


def measure_latency(model: nn.Module, inputs: CTRInputs, batch_size: int, min_time: float = 0.2,
                    min_repeats: int = 5, warmup: int = 2) -> float:
    """Median seconds of one forward pass over ``batch_size`` rows, on the CPU, in inference mode.

    The rows are taken from ``inputs`` (cycled when there are fewer); a CPU copy of ``model`` is
    timed with the number of torch threads in force.
    """
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    n = len(inputs)
    if n == 0:
        raise ValueError("latency needs at least one input row")
    take = np.arange(batch_size) % n
    dtype = next(cpu_model.parameters()).dtype
    dense = torch.as_tensor(inputs.dense[take]).to(dtype)
    cats = torch.as_tensor(inputs.categorical[take])
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            cpu_model(dense, cats)
        total = 0.0
        while len(times) < min_repeats or total < min_time:
            started = time.perf_counter()
            cpu_model(dense, cats)
            elapsed = time.perf_counter() - started
            times.append(elapsed)
            total += elapsed
            if len(times) >= 1000:
                break
    return float(statistics.median(times))


def evaluate_compression(original: Any, compressed: Any, X_eval: Any = None, y_eval: Any = None, *,
                         latency_batches: Sequence[int] = (1, 4096), batch_size: Optional[int] = None) -> dict:
    """The report of a compression: what was compressed, the sizes, and quality and latency on held-out data.

    Parameters
    ----------
    original : CTRClassifier (fitted) or CTRModel
        The model before compression.
    compressed : same kind as ``original``
        What :func:`recsys.ctr.compress` returned for it.
    X_eval : raw rows (for classifiers), CTRInputs or a (dense, categorical) pair (for modules), optional
        Held-out rows; without them (and ``y_eval``) the report has the sizes only.
    y_eval : array-like of 0/1, optional
        Their click labels.
    latency_batches : sequence of int, default=(1, 4096)
        Batch sizes of the latency measurement (:func:`measure_latency`; empty: none).
    batch_size : int, optional
        Rows per forward pass for the AUC and log loss (default: the classifier's, at least 1024, or 4096).

    Returns
    -------
    dict
        What ``compressed`` records of its compression (``method``, ``targets``, ``ranks``,
        ``folded``, ``activation``, with fine-tuning ``finetune_history``), then ``params_before``,
        ``params_after``, ``bytes_before``, ``bytes_after``, ``ratio`` (``params_before /
        params_after``); with ``X_eval``/``y_eval`` also ``auc_before``, ``logloss_before``,
        ``latency_before``, ``auc_after``, ``logloss_after`` and ``latency_after`` (dict batch size
        -> median seconds on the CPU). The AUC is NaN when ``y_eval`` holds one class.

    Raises
    ------
    ValueError
        Only one of ``X_eval`` and ``y_eval``, labels that are not clicks (0/1), or models of
        different kinds.
    TypeError
        A model that is neither a fitted CTRClassifier nor a CTRModel.
    """
    from recsys.metrics import log_loss, roc_auc

    before, encode, batch_size = _model_parts(original, batch_size)
    after, _, _ = _model_parts(compressed, batch_size)
    if isinstance(original, CTRClassifier) != isinstance(compressed, CTRClassifier):
        raise ValueError(f"original and compressed must be of the same kind; got {type(original).__name__} and "
                         f"{type(compressed).__name__}")
    if (X_eval is None) != (y_eval is None):
        raise ValueError("give both X_eval and y_eval, or neither")
    report = dict(getattr(after, "compression_", {}))
    report.update(params_before=count_parameters(before), params_after=count_parameters(after),
                  bytes_before=count_bytes(before), bytes_after=count_bytes(after))
    report["ratio"] = report["params_before"] / report["params_after"]
    if X_eval is None:
        return report
    held_out = encode(X_eval)
    truth = check_click_labels(y_eval, len(held_out))
    for tag, net in (("before", before), ("after", after)):
        logits = predict_logits(net, held_out, batch_size)
        prob = torch.sigmoid(logits.to(torch.float64))
        report[f"auc_{tag}"] = roc_auc(truth, logits) if 0 < truth.sum() < truth.shape[0] else float("nan")
        report[f"logloss_{tag}"] = log_loss(truth, prob)
        report[f"latency_{tag}"] = {int(b): measure_latency(net, held_out, int(b)) for b in latency_batches}
    return report


def _model_parts(model: Any, batch_size: Optional[int] = None) -> tuple:
    """``(module, encode, batch_size)`` of a fitted CTRClassifier (its module on its device, its
    :meth:`~recsys.ctr.CTRClassifier.encode`, its batch size but at least 1024) or of a CTRModel
    (itself, :func:`~recsys.ctr.schema.as_inputs`, 4096); a given ``batch_size`` is kept."""
    if isinstance(model, CTRClassifier):
        return model.module(), model.encode, batch_size or max(model.batch_size, 1024)
    if isinstance(model, CTRModel):
        return model, as_inputs, batch_size or 4096
    raise TypeError(f"model must be a fitted CTRClassifier or a recsys.ctr CTRModel; got {type(model).__name__}")
