"""A scikit-learn classifier around the CTR models: :class:`CTRClassifier`."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from recsys._checks import check_each
from recsys.ctr.models import MODELS, CTRModel, build_model
from recsys.ctr.schema import CTRInputs, CTRPreprocessor, Schema
from recsys.ctr.training import module_device, predict_logits, train_ctr_model
from tensorkit import backend, distributed
from tensorkit.base import StrOptions, TorchEstimator, integers, reals
from tensorkit.validation import check_finite_result, reject_complex

__all__ = ["CTRClassifier", "check_click_labels", "predict_logits", "train_ctr_model"]


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

    :meth:`score` is the ROC AUC (not accuracy), so a grid search on its default scoring tunes
    the ranking of clicks.

    Data larger than memory: ``fit`` takes paths (or a glob) of Criteo, Avazu or parquet files and
    streams them in chunks (:mod:`recsys.ctr.streaming`); ``partial_fit`` trains on one chunk at a time.

    Data-parallel: when a ``torch.distributed`` process group of several processes is initialised
    (``torchrun --nproc_per_node N``), ``fit`` trains with DistributedDataParallel's semantics without
    other changes: with files, each rank reads its own share of the rows (equal shares, so an epoch
    has as many steps of the full batch as on one process); with rows in memory,
    every rank passes the same rows and trains on its share of every batch. ``batch_size`` is the
    global batch; gradients are summed over the ranks (embedding tables row-sparse), the schema is
    checked to be identical on every rank, every rank ends with the same model, and rank 0 shows the
    progress bar. A failing rank stops every rank with its error. A group of one is a plain fit.

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
    shuffle : bool, default=True
        Draw the batches in a new random order every epoch; False keeps the rows' order.
    data_format : {"auto", "criteo", "avazu", "parquet"}, default="auto"
        The format of the files when ``fit`` is given paths ("auto" detects it per file).
    chunksize : int, default=100_000
        Rows read at a time from files; validation holds out whole chunks.
    shuffle_buffer : int, default=200_000
        Rows held in the shuffle buffer of a streamed fit (0: the files' order).
    random_state : None, int or RandomState, default=None
        Seeds the initialisation, the validation split and the batch order (three sub-seeds drawn
        in that order; under ``torch.distributed`` rank 0's are used on every rank).
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
    n_rows_seen_ : int
        Training rows (of all ranks together), the held-out validation rows left out.
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
    >>> from sklearn.metrics import roc_auc_score
    >>> clf.score(X, y) == roc_auc_score(y, clf.predict_proba(X)[:, 1])    # the AUC, not accuracy
    True
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
        "shuffle": ["boolean"],
        "data_format": [StrOptions({"auto", "criteo", "avazu", "parquet"})],
        "chunksize": [integers(1)],
        "shuffle_buffer": [integers(0)],
    }

    def __init__(self, model: str = "deepfm", *, embed_dim: int = 16, hidden: tuple = (400, 400, 400),
                 cross_layers: int = 3, dropout: float = 0.0, schema: Any = None, min_frequency: int = 1,
                 batch_size: int = 1024, max_epochs: int = 10, learning_rate: float = 1e-3,
                 weight_decay: float = 0.0, validation_fraction: float = 0.1, patience: int = 2,
                 init_std: float = 0.01, shuffle: bool = True, data_format: str = "auto", chunksize: int = 100_000,
                 shuffle_buffer: int = 200_000, random_state: Any = None, device: Any = "auto",
                 dtype: Any = "float32", verbose: int = 1):
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
        self.shuffle = shuffle
        self.data_format = data_format
        self.chunksize = chunksize
        self.shuffle_buffer = shuffle_buffer
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "CTRClassifier":
        """Learn the field transforms on the training rows and train the model.

        Parameters
        ----------
        X : DataFrame, array-like, SciPy sparse matrix, torch.Tensor, or path(s)
            Rows of shape (n_samples, n_fields): missing values (NaN/None) are allowed, 0 for a dense
            field and the out-of-vocabulary bucket for a categorical one. Or a path, a list of paths
            or a glob of Criteo, Avazu (gz included) or parquet files (see ``data_format``): they are
            streamed in chunks of ``chunksize`` rows, labels read from the files
            (:mod:`recsys.ctr.streaming`).
        y : array-like of 0/1 click labels
            None (and only None) when ``X`` names files.

        Returns
        -------
        self
        """
        from recsys.ctr.sources import is_path_like

        setup = self._fit_setup()
        world = distributed.current_world()
        seeds = distributed.all_gather_objects(world, [setup.random.spawn_seed() for _ in range(3)])[0]
        if is_path_like(X):
            if y is not None:
                raise ValueError("y must be None when X names files: the labels are read from the files")
            return self._fit_files(X, setup, world, seeds)
        with distributed.stage(world, "checking the training data"):
            X = self._check_X(X, reset=True)
            labels = check_click_labels(y, _n_rows(X))
        n = labels.shape[0]
        n_val = int(np.floor(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            n_val = 0
        order = np.random.RandomState(seeds[1]).permutation(n)
        train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])
        frame = _frame(X)
        with distributed.stage(world, "fitting the field transforms"):
            self.preprocessor_ = CTRPreprocessor(self.schema, min_frequency=self.min_frequency).fit(
                _rows(frame, train_idx))
            inputs = self.preprocessor_.transform(frame)
        distributed.check_identical(world, inputs, "the encoded training data")
        self._build_model(setup, seeds[0])
        self.history_, self.best_epoch_ = train_ctr_model(
            self.model_, inputs.subset(train_idx), labels[train_idx],
            inputs.subset(val_idx) if n_val else None, labels[val_idx] if n_val else None,
            batch_size=self.batch_size, max_epochs=self.max_epochs, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, patience=self.patience, random_state=seeds[2],
            progress_bar=self._progress, shuffle=self.shuffle, world=world)
        self.n_rows_seen_ = int(train_idx.shape[0])
        return self

    def _build_model(self, setup: Any, seed: int) -> None:
        self.schema_ = self.preprocessor_.schema_
        self.model_ = build_model(self.model, self.preprocessor_.n_dense_, self.preprocessor_.cardinalities_,
                                  self.embed_dim, self.hidden, self.cross_layers, self.dropout, self.init_std,
                                  random_state=seed).to(device=setup.device, dtype=setup.dtype)
        self.classes_ = np.array([0, 1])

    def _fit_files(self, X: Any, setup: Any, world: distributed.World, seeds: list) -> "CTRClassifier":
        """:meth:`fit` on files, streamed (:mod:`recsys.ctr.streaming`)."""
        from recsys.ctr import streaming
        from recsys.ctr.sources import ChunkSource
        from recsys.ctr.training import make_optimizer, run_epochs, warn_if_one_class

        with distributed.stage(world, "opening the data files"):
            source = ChunkSource(X, data_format=self.data_format, chunksize=self.chunksize)
            schema = Schema.coerce(self.schema) if self.schema is not None else source.default_schema()
            names = streaming.first_feature_names(source)
        distributed.check_identical(world, ([p.name for p in source.files], source.format, schema, names),
                                    "the data files and their schema")
        held_out = streaming.HeldOut.draw(self.validation_fraction, np.random.RandomState(seeds[1]))
        self.preprocessor_ = CTRPreprocessor(schema, min_frequency=self.min_frequency)
        counts = streaming.fit_schema(source, self.preprocessor_, held_out, world)
        if world.is_main:   # one warning, not one per rank
            if counts["clicks"] in (0, counts["train_rows"]):
                warn_if_one_class(np.array([int(counts["clicks"] > 0)]), "training")
            streaming.warn_without_validation(source, self.validation_fraction, counts)
        self.n_features_in_ = len(names)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self._build_model(setup, seeds[0])
        distributed.broadcast_parameters(world, self.model_)
        optimizer = make_optimizer(self.model_, self.learning_rate, self.weight_decay)
        device, dtype = setup.device, setup.dtype
        local_batch = -(-int(self.batch_size) // world.size)
        buffer = streaming.RowBuffer(self.shuffle_buffer if self.shuffle else 0, local_batch,
                                     streaming.rank_generator(seeds[2], world))

        def to_device(batch: tuple) -> tuple:
            dense, cats, labels = batch
            return (torch.as_tensor(dense, device=device).to(dtype), torch.as_tensor(cats, device=device),
                    torch.as_tensor(labels, device=device).to(dtype))

        share = streaming.share_rows(counts["chunk_rows"], world.size)[world.rank]

        def epoch_batches(epoch: int):
            return streaming.training_batches(source, self.preprocessor_, share, buffer, to_device)

        def validate() -> dict:
            return streaming.validate_chunks(self.model_, source, self.preprocessor_, held_out, world,
                                             max(int(self.batch_size), 4096))
        epochs = range(1, int(self.max_epochs) + 1)
        bar = self._progress(epochs, total=int(self.max_epochs), desc="CTR training") if world.is_main else None
        self.history_, self.best_epoch_ = run_epochs(
            self.model_, optimizer, epoch_batches, validate if counts["val_chunks"] else None,
            max_epochs=int(self.max_epochs),
            patience=int(self.patience), learning_rate=float(self.learning_rate), world=world, bar=bar)
        self.n_rows_seen_ = counts["train_rows"]
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "CTRClassifier":
        """Train one pass over one chunk of rows (for streams the user drives); returns ``self``.

        The first call (on an unfitted estimator) learns the field transforms from this chunk and
        builds the model: later chunks' unseen categories fall in the out-of-vocabulary bucket, so
        give a :class:`~recsys.ctr.Schema` with ``hash_buckets`` fields for unbounded id spaces (or
        call :meth:`fit` first). Adam's state is kept between calls (not in pickles). Each call appends
        ``{"chunk", "train_loss", "rows"}`` to ``history_``. Under ``torch.distributed`` every rank passes
        its own chunk and the step is data-parallel, as in :meth:`fit`.

        Parameters
        ----------
        X : DataFrame, array-like, SciPy sparse matrix or torch.Tensor
        y : array-like of 0/1 click labels
        classes : ignored
            Accepted for scikit-learn's incremental-learning convention (clicks are always ``[0, 1]``).
        """
        from recsys.ctr.training import make_optimizer

        world = distributed.current_world()
        first = not hasattr(self, "model_")
        with distributed.stage(world, "checking the chunk"):
            if first:
                setup = self._fit_setup()
                X = self._check_X(X, reset=True)
            else:
                X = self._check_X(X, reset=False)
            labels = check_click_labels(y, _n_rows(X))
            frame = _frame(X)
        if first:
            seeds = distributed.all_gather_objects(world, [setup.random.spawn_seed() for _ in range(2)])[0]
            with distributed.stage(world, "fitting the field transforms"):
                self.preprocessor_ = CTRPreprocessor(self.schema, min_frequency=self.min_frequency).fit(frame)
            distributed.check_identical(world, self.preprocessor_.cardinalities_, "the schema")
            self._build_model(setup, seeds[0])
            self.history_, self.best_epoch_ = [], 0
            self._partial_rng = np.random.RandomState(seeds[1])
        if getattr(self, "_optimizer", None) is None:
            self._optimizer = make_optimizer(self.module(), self.learning_rate, self.weight_decay)
            if getattr(self, "_partial_rng", None) is None:
                self._partial_rng = backend.check_random_state(self.random_state).numpy
        model = self.module()
        inputs = self.preprocessor_.transform(frame)
        total, count = self._train_chunk(model, inputs, labels, world)
        self.history_.append({"chunk": len([h for h in self.history_ if "chunk" in h]) + 1,
                              "train_loss": total / max(count, 1), "rows": count})
        return self

    def _train_chunk(self, model: Any, inputs: CTRInputs, labels: np.ndarray, world: distributed.World) -> tuple:
        from recsys.ctr.training import train_steps

        device, dtype = module_device(model), next(model.parameters()).dtype
        order = self._partial_rng.permutation(len(labels)) if self.shuffle else np.arange(len(labels))
        local = -(-int(self.batch_size) // world.size)

        def batches():
            for start in range(0, len(order), local):
                idx = order[start:start + local]
                yield (torch.as_tensor(inputs.dense[idx], device=device).to(dtype),
                       torch.as_tensor(inputs.categorical[idx], device=device),
                       torch.as_tensor(labels[idx], device=device).to(dtype))
        model.train()
        result = train_steps(model, self._optimizer, batches(), world, "training on the chunk")
        model.eval()
        return result

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_optimizer", None)   # Adam's state refers to the parameters; partial_fit makes a new one
        return state

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

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """ROC AUC of the click probabilities on ``X`` against the clicks ``y`` (larger is better).

        This replaces :class:`~sklearn.base.ClassifierMixin`'s accuracy: clicks are rare, so accuracy
        rewards predicting "no click" everywhere, while the AUC measures how well clicks are ranked
        above non-clicks, the measure CTR models are judged by. ``GridSearchCV`` and
        ``cross_val_score`` with their default scoring therefore tune the AUC (pass
        ``scoring="accuracy"`` for the mixin's measure).

        Parameters
        ----------
        X : DataFrame, array-like, sparse matrix or torch.Tensor
            Rows as in :meth:`fit`.
        y : array-like or torch.Tensor of shape (n_samples,)
            Click labels 0/1 (or booleans).
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the rows in the AUC (:func:`sklearn.metrics.roc_auc_score`).

        Returns
        -------
        float
            In ``[0, 1]``; 0.5 for scores unrelated to the clicks.

        Raises
        ------
        ValueError
            Labels other than 0/1, a number of labels other than the rows of ``X``, or ``y`` with one
            class only (the AUC is undefined).
        """
        from sklearn.metrics import roc_auc_score

        p_click = backend.to_numpy(self.predict_proba(X))[:, 1]
        labels = check_click_labels(y, p_click.shape[0])
        if np.unique(labels).size < 2:
            raise ValueError(f"CTRClassifier.score is the ROC AUC, which needs both click labels in y; "
                             f"y holds only the label {int(labels[0])}")
        return float(roc_auc_score(labels, p_click, sample_weight=sample_weight))

    def module(self) -> CTRModel:
        """The fitted torch module, on the estimator's device."""
        check_is_fitted(self, "model_")
        device = backend.resolve_device(self.device)
        if module_device(self.model_) != device:
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
