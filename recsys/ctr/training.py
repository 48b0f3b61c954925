"""The training loop of the CTR models: Adam on the binary cross-entropy with early stopping, on one
process or data-parallel over a ``torch.distributed`` process group.

:func:`train_ctr_model` trains on encoded rows held in memory; :func:`run_epochs` is the loop it
and the streamed fit (:mod:`recsys.ctr.streaming`) share: it takes, per epoch, an iterator of
batches and a validation function, so the rows may come from memory or from files.

Data-parallel steps (a :class:`tensorkit.distributed.World` of several ranks) follow
DistributedDataParallel's semantics: each rank runs its own batch, the summed losses' gradients are
summed over the ranks (embedding tables row-sparse: only the rows the step touched travel) and
divided by the rows of the global batch, so one step equals the single-process step on the
concatenated batches. Ranks may run out of rows at different steps; an empty batch contributes
nothing, and the epoch ends when every rank is out. In a world of one the step is the plain
single-process step (mean loss, backward, Adam).
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state

from tensorkit import backend, distributed
from tensorkit.utils import progress
from tensorkit.validation import check_finite_result

__all__ = ["predict_logits", "run_epochs", "train_ctr_model", "train_steps"]


def module_device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def predict_logits(model: torch.nn.Module, inputs: Any, batch_size: int = 4096) -> torch.Tensor:
    """Logits of ``model`` on encoded ``inputs`` (:class:`~recsys.ctr.CTRInputs`), batch by batch, in eval
    mode, on the model's device."""
    device = module_device(model)
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            dense = torch.as_tensor(inputs.dense[start:start + batch_size], device=device).to(dtype)
            cats = torch.as_tensor(inputs.categorical[start:start + batch_size], device=device)
            out.append(model(dense, cats))
    model.train(was_training)
    if not out:
        return torch.zeros(0, device=device, dtype=dtype)
    return torch.cat(out)


def check_loss(value: float, what: str, learning_rate: float) -> None:
    check_finite_result(np.float64(value), what, f"training diverged; lower the learning rate (now "
                                                 f"{learning_rate:g}) or the initial scale of the weights "
                                                 f"(init_std)")


def warn_if_one_class(labels: np.ndarray, part: str) -> bool:
    """Warn when ``labels`` hold one class, where the AUC is undefined; return whether they do."""
    values = np.unique(labels)
    if len(values) != 1:
        return False
    consequence = ("a model trained on one class learns only the base rate" if part == "training"
                   else "val_auc is left out of the history")
    warnings.warn(f"the {part} labels are all {int(values[0])}: the AUC is undefined (it needs clicks and "
                  f"non-clicks); {consequence}", UserWarning, stacklevel=4)
    return True


def make_optimizer(model: torch.nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam (:func:`tensorkit.backend.adam`: fused where torch supports it) over the trainable parameters,
    after checking that its first step fits the weights' dtype."""
    dtype = next(model.parameters()).dtype
    if 10 * learning_rate > torch.finfo(dtype).max:   # Adam's first step is up to 10 times the rate
        raise ValueError(f"learning_rate={learning_rate:g} is too large for {str(dtype).replace('torch.', '')} "
                         f"weights (their largest value is {torch.finfo(dtype).max:g})")
    params = [p for p in model.parameters() if p.requires_grad]
    return backend.adam(params, learning_rate, weight_decay=weight_decay)   # fused where torch has it


def _embedding_weights(model: torch.nn.Module) -> list:
    """``(field, weight)`` of the trainable plain per-field embedding tables (the field embeddings and
    DeepFM's first-order terms): their gradients are row-sparse."""
    found = []
    for name in ("embeddings", "first_order"):
        tables = getattr(model, name, None) or ()
        found += [(f, table.weight) for f, table in enumerate(tables)
                  if isinstance(table, torch.nn.Embedding) and table.weight.requires_grad]
    return found


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator,
                world: distributed.World = distributed.World(), what: str = "training") -> tuple:
    """Run ``optimizer`` steps over ``batches`` of ``(dense, categorical, labels)`` tensors on the model's
    device; return ``(summed loss, rows)`` over every rank.

    An error in this rank's batch (reading a file, say) stops every rank: the others raise a
    :class:`tensorkit.distributed.RankFailedError` naming this rank and ``what``.
    """
    if not world.active:
        total, count = 0.0, 0
        for dense, cats, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(dense, cats), labels)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * labels.shape[0]
            count += labels.shape[0]
        return total, count
    params = [p for group in optimizer.param_groups for p in group["params"]]
    tables = _embedding_weights(model)
    no_rows = torch.zeros(0, dtype=torch.int64, device=module_device(model))
    total, count = 0.0, 0
    while True:
        optimizer.zero_grad(set_to_none=True)
        error, batch, local_loss = None, None, 0.0
        try:
            batch = next(batches, None)
            if batch is not None:
                dense, cats, labels = batch
                loss = F.binary_cross_entropy_with_logits(model(dense, cats), labels, reduction="sum")
                loss.backward()
                local_loss = float(loss.detach())
        except Exception as failure:   # reaches every rank through the step's status
            error = failure
        n_local = 0 if batch is None or error is not None else int(batch[2].shape[0])
        rows = {weight: (batch[1][:, f] if n_local else no_rows) for f, weight in tables}
        step = distributed.reduce_gradients(world, params, n_local, row_sparse=rows, extras=(local_loss,),
                                            failed=error is not None)
        if step.failed:
            distributed.share_failure(world, error, what)
        if step.n_rows == 0:
            return total, count
        for p in params:
            p.grad.div_(step.n_rows)
        optimizer.step()
        total += step.extras[0]
        count += int(step.n_rows)


def run_epochs(model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch_batches: Callable[[int], Iterator],
               validate: Optional[Callable[[], dict]], *, max_epochs: int, patience: int, learning_rate: float,
               world: distributed.World = distributed.World(), bar: Any = None) -> tuple:
    """Train epoch by epoch with early stopping on the validation log loss; ``(history, best_epoch)``.

    ``epoch_batches(epoch)`` gives the epoch's batches (see :func:`train_steps`); ``validate()`` gives
    ``{"val_loss": ..., "val_auc": ...}`` (the same on every rank) or is None for no early stopping.
    The best epoch's weights are kept in ``model``; ``bar`` is an iterable over the epochs with
    ``set_postfix`` and ``close`` (a progress bar).
    """
    history: list = []
    best_loss, best_epoch, best_state, waited = np.inf, 0, None, 0
    epochs = bar if bar is not None else range(1, max_epochs + 1)
    for epoch in epochs:
        started = time.perf_counter()
        model.train()
        total, count = train_steps(model, optimizer, epoch_batches(epoch), world, f"training epoch {epoch}")
        model.eval()
        record = {"epoch": epoch, "train_loss": total / max(count, 1)}
        check_loss(record["train_loss"], f"the training loss of epoch {epoch}", learning_rate)
        if validate is not None:
            record.update(validate())
            check_loss(record["val_loss"], f"the validation loss of epoch {epoch}", learning_rate)
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("train_loss", "val_loss", "val_auc")})
        if validate is None:
            best_epoch = epoch
            continue
        if record["val_loss"] < best_loss - 1e-7:
            best_loss, best_epoch, waited = record["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= patience:
                break
    if hasattr(epochs, "close"):
        epochs.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch


def _epoch_loss(model, dense, cats, labels, batch_size) -> float:
    total = 0.0
    with torch.inference_mode():
        for start in range(0, labels.shape[0], batch_size):
            logits = model(dense[start:start + batch_size], cats[start:start + batch_size])
            total += float(F.binary_cross_entropy_with_logits(logits, labels[start:start + batch_size],
                                                              reduction="sum"))
    return total / max(labels.shape[0], 1)


def train_ctr_model(model: torch.nn.Module, train: Any, y_train: np.ndarray, val: Any = None,
                    y_val: Optional[np.ndarray] = None, *, batch_size: int = 1024, max_epochs: int = 10,
                    learning_rate: float = 1e-3, weight_decay: float = 0.0, patience: int = 2,
                    random_state: Any = None, verbose: int = 0, desc: str = "CTR training",
                    progress_bar: Optional[Callable] = None, shuffle: bool = True,
                    world: distributed.World = distributed.World()) -> tuple:
    """Adam on the binary cross-entropy, early stopping on the validation log loss.

    Used by :meth:`CTRClassifier.fit` and by the fine-tuning step of :func:`recsys.ctr.compress`.
    Keeps the best epoch's weights in ``model`` (the last epoch's without validation data).

    Labels of one class train only the base rate and make the AUC undefined: a ``UserWarning`` says
    so (and ``val_auc`` is then left out of the history).

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place, on the device and in the dtype of its parameters.
    train, val : CTRInputs
        Encoded training and (optional) validation rows.
    y_train, y_val : ndarray of 0/1
    batch_size, max_epochs, learning_rate, weight_decay, patience
        As in :class:`CTRClassifier`.
    random_state : None, int or RandomState
        The batch order of every epoch (one permutation per epoch, drawn in turn).
    verbose : int, default=0
        The progress bar over the epochs (:func:`tensorkit.utils.progress`), titled ``desc``.
    progress_bar : callable, optional
        ``progress_bar(iterable, total=..., desc=...)`` in place of that bar (an estimator's ``_progress``).
    shuffle : bool, default=True
        Draw a new batch order every epoch; False keeps the rows' order.
    world : tensorkit.distributed.World, optional
        Several ranks: every rank holds the same rows and the same ``random_state``, and trains on its
        share of every batch (``batch_size`` is the global batch); gradients are summed over the ranks.

    Returns
    -------
    history : list of dict
    best_epoch : int

    Raises
    ------
    ValueError
        A learning rate whose steps overflow the weights' dtype.
    tensorkit.validation.NonFiniteResultError
        A ``ValueError``: an epoch's training or validation loss is not finite (training diverged; the
        message names the learning rate and the initial scale).
    """
    from recsys.metrics import roc_auc

    if world.is_main and not warn_if_one_class(y_train, "training") and val is not None and len(val):
        warn_if_one_class(y_val, "validation")
    rng = check_random_state(random_state)   # NumPy only: a torch generator would take a draw from it
    device = module_device(model)
    dtype = next(model.parameters()).dtype
    dense = torch.as_tensor(train.dense, device=device).to(dtype)
    cats = torch.as_tensor(train.categorical, device=device)
    labels = torch.as_tensor(y_train, device=device).to(dtype)
    validate: Optional[Callable[[], dict]] = None
    if val is not None and len(val):
        v_dense = torch.as_tensor(val.dense, device=device).to(dtype)
        v_cats = torch.as_tensor(val.categorical, device=device)
        v_labels = torch.as_tensor(y_val, device=device).to(dtype)

        def validate_rows() -> dict:
            record = {"val_loss": _epoch_loss(model, v_dense, v_cats, v_labels, max(batch_size, 4096))}
            if np.isfinite(record["val_loss"]) and 0 < float(v_labels.sum()) < v_labels.shape[0]:
                record["val_auc"] = roc_auc(y_val, predict_logits(model, val, max(batch_size, 4096)))
            return record
        validate = validate_rows
    optimizer = make_optimizer(model, learning_rate, weight_decay)
    n = labels.shape[0]

    def epoch_batches(epoch: int) -> Iterator:
        order = torch.as_tensor(rng.permutation(n) if shuffle else np.arange(n), device=device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if world.active:
                lo, hi = world.share(idx.shape[0])
                idx = idx[lo:hi]
            yield dense[idx], cats[idx], labels[idx]

    epochs = range(1, max_epochs + 1)
    if not world.is_main:
        bar = None
    else:
        bar = progress(epochs, verbose=verbose, desc=desc) if progress_bar is None else \
            progress_bar(epochs, total=max_epochs, desc=desc)
    return run_epochs(model, optimizer, epoch_batches, validate, max_epochs=max_epochs, patience=patience,
                      learning_rate=learning_rate, world=world, bar=bar)
