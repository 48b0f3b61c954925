"""A scikit-learn classifier around the CTR models: :class:`CTRClassifier`."""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from recsys._checks import check_each
from recsys.ctr.models import MODELS, CTRModel, build_model
from recsys.ctr.schema import CTRInputs, CTRPreprocessor, Schema
from tensorkit import backend
from tensorkit.base import StrOptions, TorchEstimator, integers, reals
from tensorkit.utils import progress
from tensorkit.validation import check_finite_result, reject_complex

__all__ = ["CTRClassifier", "check_click_labels"]


def check_click_labels(y: Any, n_samples: Optional[int] = None) -> np.ndarray:
    """Labels as an int64 vector of 0/1, or a ``ValueError`` naming what was wrong.

    Clicks are the only labels a CTR model learns: booleans and the numbers 0 and 1. Other binary
    encodings (``{1, 2}``, strings) are refused rather than mapped, so that "1" always means a click.
    """
    from sklearn.utils.multiclass import type_of_target
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise ValueError("CTRClassifier requires y to be passed, but the target y is None")
    reject_complex(y, "y")
    labels = backend.to_numpy(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = column_or_1d(labels, warn=True)
    if labels.ndim != 1:
        raise ValueError(f"y must be a vector of click labels (0/1); got shape {labels.shape}")
    if n_samples is not None and labels.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {labels.shape[0]} labels")
    if labels.dtype == bool:
        return labels.astype(np.int64)
    kind = type_of_target(labels) if labels.size else "binary"
    if kind in ("unknown", "continuous"):
        raise ValueError(f"Unknown label type: {kind}; y must hold the click labels 0 and 1")
    if kind == "multiclass":
        raise ValueError(f"Only binary classification is supported (clicks: 0/1); y has "
                         f"{len(np.unique(labels))} classes (type of target: multiclass)")
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"y must hold the click labels 0 and 1; got {labels.dtype} values such as "
                         f"{labels[:3].tolist()}")
    values = np.unique(labels)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"y must hold the click labels 0 and 1 only (CTR is a binary task); got the values "
                         f"{values[:10].tolist()}")
    return labels.astype(np.int64)


class _ModelNames(StrOptions):
    """The model names of :data:`recsys.ctr.models.MODELS`, in any case (``"DeepFM"`` is ``"deepfm"``)."""

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, str) and val.lower() in self.options


class CTRClassifier(ClassifierMixin, TorchEstimator):
    """Click-through-rate prediction with DNN, DeepFM, DCN or DCN-V2 on a field schema.

    ``fit`` learns the field transforms (:class:`~recsys.ctr.CTRPreprocessor`) on the training rows,
    builds the model (:mod:`recsys.ctr.models`) and trains it with Adam on the binary cross-entropy,
    keeping the epoch with the lowest log loss on a held-out validation split (early stopping).
    The fitted model can be made smaller with :func:`recsys.ctr.compress` (Yu et al., KDD 2024).

    Parameters
    ----------
    model : {"deepfm", "dnn", "dcn", "dcnv2"}, default="deepfm"
    embed_dim : int, default=16
        Embedding width of every categorical field.
    hidden : tuple of int, default=(400, 400, 400)
        MLP hidden widths.
    cross_layers : int, default=3
        Cross layers of DCN / DCN-V2 (ignored by the others).
    dropout : float, default=0.0
        Dropout after each MLP activation (uses torch's global generator).
    schema : Schema, dict or None, default=None
        The dense and categorical fields. None infers it from the training data: strings, objects,
        booleans and pandas categories are categorical fields, numbers are dense fields (a numeric
        array gives dense fields named "0", "1", ...).
    min_frequency : int, default=1
        Categories seen fewer times in training share the out-of-vocabulary bucket.
    batch_size : int, default=1024
    max_epochs : int, default=10
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
        Adam's L2 penalty on every parameter.
    validation_fraction : float, default=0.1
        Share of the training rows held out for early stopping (0: no early stopping, train
        ``max_epochs``). Skipped when it would leave no row on either side.
    patience : int, default=2
        Epochs without a lower validation log loss before training stops; the best epoch's weights
        are kept.
    init_std : float, default=0.01
        Standard deviation of the embeddings' initialisation.
    random_state : None, int or RandomState, default=None
        Seeds the split, the initialisation and the batch order (one random source, drawn from in
        that order).
    device : str or torch.device, default="auto"
    dtype : str or torch.dtype, default="float32"
    verbose : int, default=1
        A progress bar over the epochs: 0 none, 1 once training has run 2 seconds, 2 at once.

    Attributes
    ----------
    model_ : CTRModel
        The trained torch module.
    preprocessor_ : CTRPreprocessor
    schema_ : Schema
    classes_ : ndarray, ``[0, 1]``
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss`` and ``val_auc`` (when validating), ``seconds``.
    best_epoch_ : int
        The epoch whose weights were kept (1-based).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fitted on a DataFrame.

    References
    ----------
    H. Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR Prediction", IJCAI 2017.
    R. Wang et al., "Deep & Cross Network for Ad Click Predictions", ADKDD 2017.
    R. Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale Learning
    to Rank Systems", WWW 2021.

    Examples
    --------
    >>> from recsys import CTRClassifier
    >>> from recsys.datasets import make_criteo_like
    >>> frame = make_criteo_like(n_samples=4000, n_dense=2, n_categorical=4, random_state=0)
    >>> X, y = frame.drop(columns="label"), frame["label"]
    >>> clf = CTRClassifier(embed_dim=4, hidden=(16,), max_epochs=3, random_state=0, device="cpu").fit(X, y)
    >>> clf.predict_proba(X.iloc[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "model": [_ModelNames(set(MODELS))],
        "embed_dim": [integers(1)],
        "hidden": ["array-like"],
        "cross_layers": [integers(1)],
        "dropout": [reals(0, 1, closed="left")],
        "schema": [Schema, dict, None],
        "min_frequency": [integers(1)],
        "batch_size": [integers(1)],
        "max_epochs": [integers(1)],
        "learning_rate": [reals(0, None, closed="neither")],
        "weight_decay": [reals(0, None)],
        "validation_fraction": [reals(0, 1, closed="left")],
        "patience": [integers(1)],
        "init_std": [reals(0, None)],
    }

    def __init__(self, model: str = "deepfm", *, embed_dim: int = 16, hidden: tuple = (400, 400, 400),
                 cross_layers: int = 3, dropout: float = 0.0, schema: Any = None, min_frequency: int = 1,
                 batch_size: int = 1024, max_epochs: int = 10, learning_rate: float = 1e-3,
                 weight_decay: float = 0.0, validation_fraction: float = 0.1, patience: int = 2,
                 init_std: float = 0.01, random_state: Any = None, device: Any = "auto", dtype: Any = "float32",
                 verbose: int = 1):
        self.model = model
        self.embed_dim = embed_dim
        self.hidden = hidden
        self.cross_layers = cross_layers
        self.dropout = dropout
        self.schema = schema
        self.min_frequency = min_frequency
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.init_std = init_std
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "CTRClassifier":
        """Learn the field transforms on the training rows and train the model.

        Parameters
        ----------
        X : DataFrame, array-like, SciPy sparse matrix or torch.Tensor of shape (n_samples, n_fields)
            Missing values (NaN/None) are allowed: 0 for a dense field, the out-of-vocabulary bucket
            for a categorical one.
        y : array-like of 0/1 click labels

        Returns
        -------
        self
        """
        setup = self._fit_setup()
        X = self._check_X(X, reset=True)
        labels = check_click_labels(y, _n_rows(X))
        n = labels.shape[0]
        n_val = int(np.floor(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            n_val = 0
        order = setup.random.numpy.permutation(n)
        train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])
        frame = _frame(X)
        self.preprocessor_ = CTRPreprocessor(self.schema, min_frequency=self.min_frequency).fit(
            _rows(frame, train_idx))
        self.schema_ = self.preprocessor_.schema_
        inputs = self.preprocessor_.transform(frame)
        self.model_ = build_model(self.model, self.preprocessor_.n_dense_, self.preprocessor_.cardinalities_,
                                  self.embed_dim, self.hidden, self.cross_layers, self.dropout, self.init_std,
                                  random_state=setup.random.spawn_seed()).to(device=setup.device, dtype=setup.dtype)
        self.classes_ = np.array([0, 1])
        self.history_, self.best_epoch_ = train_ctr_model(
            self.model_, inputs.subset(train_idx), labels[train_idx],
            inputs.subset(val_idx) if n_val else None, labels[val_idx] if n_val else None,
            batch_size=self.batch_size, max_epochs=self.max_epochs, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, patience=self.patience, random_state=setup.random.numpy,
            progress_bar=self._progress)
        return self

    def _check_param_combinations(self) -> None:
        check_each(integers(1), self.hidden, "hidden", type(self).__name__)
        if self.schema is not None:
            Schema.coerce(self.schema)

    def _check_X(self, X: Any, reset: bool) -> Any:
        """Validate ``X`` (scikit-learn messages for arrays, feature names for DataFrames); keep its kind.

        Complex values are refused with a ``TypeError`` before anything casts them.
        """
        if isinstance(X, pd.DataFrame):
            for name in X.columns:
                reject_complex(X[name], f"X[{name!r}]")
        else:
            reject_complex(X, "X")
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError("Found array with 0 sample(s) (shape=(0, %d)) while a minimum of 1 is required."
                                 % X.shape[1])
            return X
        if isinstance(X, torch.Tensor):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (n_samples, n_fields); got a tensor of shape {tuple(X.shape)}")
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        array = check_array(X, accept_sparse=True, ensure_all_finite="allow-nan", dtype=None)
        if sp.issparse(array):
            array = array.toarray()
        validate_data(self, array, reset=reset, skip_check_array=True)
        return array

    # -- predicting -------------------------------------------------------------------------
    def encode(self, X: Any) -> CTRInputs:
        """The model inputs for raw rows ``X``, transformed as in training."""
        check_is_fitted(self, "model_")
        return self.preprocessor_.transform(_frame(self._check_X(X, reset=False)))

    def _logits(self, X: Any) -> torch.Tensor:
        """The model's logits for raw rows ``X``, checked to be finite."""
        logits = predict_logits(self.module(), self.encode(X), batch_size=max(self.batch_size, 4096))
        check_finite_result(logits, "CTRClassifier's logits",
                            "the model's weights are not finite (training diverged: lower learning_rate or "
                            "init_std) or X holds extreme values")
        return logits

    def decision_function(self, X: Any) -> Any:
        """Logits (log-odds of a click), one per row; a torch tensor if ``X`` was one.

        Raises :class:`tensorkit.validation.NonFiniteResultError` (a ``ValueError``) rather than
        return a logit that is not finite; so do :meth:`predict_proba` and :meth:`predict`.
        """
        return backend.to_output(self._logits(X), like=X)

    def predict_proba(self, X: Any) -> Any:
        """``[P(no click), P(click)]`` per row."""
        p = torch.sigmoid(self._logits(X).to(torch.float64))
        return backend.to_output(torch.stack([1 - p, p], dim=1), like=X)

    def predict(self, X: Any) -> Any:
        """1 where the click probability is at least one half, else 0."""
        return backend.to_output((self._logits(X) >= 0).to(torch.int64), like=X)

    def module(self) -> CTRModel:
        """The fitted torch module, on the estimator's device."""
        check_is_fitted(self, "model_")
        device = backend.resolve_device(self.device)
        if _module_device(self.model_) != device:
            self.model_.to(device)
        return self.model_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def _n_rows(X: Any) -> int:
    return int(X.shape[0])


def _frame(X: Any) -> pd.DataFrame:
    from recsys.ctr.schema import as_frame
    return as_frame(X)


def _rows(frame: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    return frame.iloc[index]


def _module_device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def predict_logits(model: torch.nn.Module, inputs: CTRInputs, batch_size: int = 4096) -> torch.Tensor:
    """Logits of ``model`` on encoded ``inputs``, batch by batch, in eval mode, on the model's device."""
    device = _module_device(model)
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


def _epoch_loss(model, dense, cats, labels, batch_size) -> float:
    total = 0.0
    with torch.inference_mode():
        for start in range(0, labels.shape[0], batch_size):
            logits = model(dense[start:start + batch_size], cats[start:start + batch_size])
            total += float(F.binary_cross_entropy_with_logits(logits, labels[start:start + batch_size],
                                                              reduction="sum"))
    return total / max(labels.shape[0], 1)


def _check_loss(value: float, what: str, learning_rate: float) -> None:
    check_finite_result(np.float64(value), what, f"training diverged; lower the learning rate (now "
                                                 f"{learning_rate:g}) or the initial scale of the weights "
                                                 f"(init_std)")


def _warn_if_one_class(labels: np.ndarray, part: str) -> bool:
    """Warn when ``labels`` hold one class, where the AUC is undefined; return whether they do."""
    values = np.unique(labels)
    if len(values) != 1:
        return False
    consequence = ("a model trained on one class learns only the base rate" if part == "training"
                   else "val_auc is left out of the history")
    warnings.warn(f"the {part} labels are all {int(values[0])}: the AUC is undefined (it needs clicks and "
                  f"non-clicks); {consequence}", UserWarning, stacklevel=4)
    return True


def train_ctr_model(model: torch.nn.Module, train: CTRInputs, y_train: np.ndarray,
                    val: Optional[CTRInputs] = None, y_val: Optional[np.ndarray] = None, *,
                    batch_size: int = 1024, max_epochs: int = 10, learning_rate: float = 1e-3,
                    weight_decay: float = 0.0, patience: int = 2, random_state: Any = None, verbose: int = 0,
                    desc: str = "CTR training", progress_bar: Optional[Callable] = None) -> tuple:
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

    if not _warn_if_one_class(y_train, "training") and val is not None and len(val):
        _warn_if_one_class(y_val, "validation")
    rng = check_random_state(random_state)   # NumPy only: a torch generator would take a draw from it
    device = _module_device(model)
    dtype = next(model.parameters()).dtype
    dense = torch.as_tensor(train.dense, device=device).to(dtype)
    cats = torch.as_tensor(train.categorical, device=device)
    labels = torch.as_tensor(y_train, device=device).to(dtype)
    if val is not None and len(val):
        v_dense = torch.as_tensor(val.dense, device=device).to(dtype)
        v_cats = torch.as_tensor(val.categorical, device=device)
        v_labels = torch.as_tensor(y_val, device=device).to(dtype)
    else:
        val = None
    if 10 * learning_rate > torch.finfo(dtype).max:   # Adam's first step is up to 10 times the rate
        raise ValueError(f"learning_rate={learning_rate:g} is too large for {str(dtype).replace('torch.', '')} "
                         f"weights (their largest value is {torch.finfo(dtype).max:g})")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    history: list = []
    best_loss, best_epoch, best_state, waited = np.inf, 0, None, 0
    n = labels.shape[0]
    epochs = range(1, max_epochs + 1)
    bar = progress(epochs, verbose=verbose, desc=desc) if progress_bar is None else \
        progress_bar(epochs, total=max_epochs, desc=desc)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order = torch.as_tensor(rng.permutation(n), device=device)
        running = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(dense[idx], cats[idx]), labels[idx])
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) * idx.shape[0]
        model.eval()
        record = {"epoch": epoch, "train_loss": running / max(n, 1)}
        _check_loss(record["train_loss"], f"the training loss of epoch {epoch}", learning_rate)
        if val is not None:
            record["val_loss"] = _epoch_loss(model, v_dense, v_cats, v_labels, max(batch_size, 4096))
            _check_loss(record["val_loss"], f"the validation loss of epoch {epoch}", learning_rate)
            if 0 < float(v_labels.sum()) < v_labels.shape[0]:
                record["val_auc"] = roc_auc(y_val, predict_logits(model, val, max(batch_size, 4096)))
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("train_loss", "val_loss", "val_auc")})
        if val is None:
            best_epoch = epoch
            continue
        if record["val_loss"] < best_loss - 1e-7:
            best_loss, best_epoch, waited = record["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch
