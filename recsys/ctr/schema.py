"""Field schema of a CTR data set and the transforms that turn raw columns into model inputs.

A CTR example is a row of *dense* fields (numbers: counts, prices, ages) and *categorical* fields
(ids: user, item, advertiser, hashed strings). :class:`Schema` names them; :func:`infer_schema`
reads a DataFrame's dtypes (strings, objects, booleans and pandas categories are categorical, numbers
are dense). :class:`CTRPreprocessor` learns the transforms on training data only:

- dense fields: ``"log"`` (``sign(x) log(1 + |x|)``, then min-max scaling to [0, 1] with the
  training range; the usual treatment of Criteo's heavy-tailed integer counts), ``"minmax"`` (min-max
  only) or ``"none"``; values outside the training range are clipped, missing values become 0;
- categorical fields: a vocabulary of the values seen at least ``min_frequency`` times in training
  (index 0 is the bucket for missing, rare and unseen values), or ``hash_buckets`` buckets of a
  stable (CRC-32, process-independent) hash of the value's text.

``partial_fit`` accumulates counts and ranges chunk by chunk, so a file larger than memory can be
fitted through :func:`recsys.ctr.data.iter_criteo`.

Examples
--------
>>> import pandas as pd
>>> from recsys.ctr import CTRPreprocessor, infer_schema
>>> frame = pd.DataFrame({"price": [1.0, 10.0, None], "shop": ["a", "b", "a"]})
>>> infer_schema(frame)
Schema(dense=('price',), categorical=('shop',))
>>> inputs = CTRPreprocessor().fit(frame).transform(pd.DataFrame({"price": [10.0], "shop": ["zzz"]}))
>>> inputs.dense.tolist(), inputs.categorical.tolist()
([[1.0]], [[0]])
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator

from tensorkit import backend
from tensorkit.base import StrOptions, check_parameters, integers
from tensorkit.validation import reject_complex

__all__ = [
    "CTRInputs",
    "CTRPreprocessor",
    "CategoricalField",
    "DenseField",
    "Schema",
    "as_frame",
    "as_inputs",
    "infer_schema",
]

DENSE_TRANSFORMS = ("log", "minmax", "none")


@dataclass(frozen=True)
class DenseField:
    """A numeric field.

    Parameters
    ----------
    name : str
        Column name (for arrays: the column index as a string, ``"0"``, ``"1"``, ...).
    transform : {"log", "minmax", "none"}, default="log"
        See the module docstring.
    """

    name: str
    transform: str = "log"

    def __post_init__(self):
        check_parameters({"transform": [StrOptions(set(DENSE_TRANSFORMS))]}, {"transform": self.transform},
                         f"DenseField {self.name!r}")


@dataclass(frozen=True)
class CategoricalField:
    """A categorical field with its own embedding table.

    Parameters
    ----------
    name : str
    min_frequency : int, default=1
        Values seen fewer times in the training data share the out-of-vocabulary bucket (index 0)
        with missing and unseen values.
    hash_buckets : int or None, default=None
        Use ``hash_buckets`` hashed buckets (plus bucket 0 for missing values) instead of a vocabulary.
    """

    name: str
    min_frequency: int = 1
    hash_buckets: Optional[int] = None

    def __post_init__(self):
        check_parameters({"min_frequency": [integers(1)], "hash_buckets": [integers(1), None]},
                         {"min_frequency": self.min_frequency, "hash_buckets": self.hash_buckets},
                         f"CategoricalField {self.name!r}")


FieldLike = Union[str, DenseField, CategoricalField]


class Schema:
    """The dense and categorical fields of a CTR data set, in model input order.

    Parameters
    ----------
    dense : sequence of str or DenseField, default=()
    categorical : sequence of str or CategoricalField, default=()

    Examples
    --------
    >>> Schema(dense=["I1", "I2"], categorical=["C1"]).names
    ('I1', 'I2', 'C1')
    """

    def __init__(self, dense: Sequence[FieldLike] = (), categorical: Sequence[FieldLike] = ()):
        if isinstance(dense, (str, DenseField)) or isinstance(categorical, (str, CategoricalField)):
            raise TypeError("Schema(dense=..., categorical=...) takes sequences of field names or fields")
        self.dense_fields = tuple(f if isinstance(f, DenseField) else DenseField(_field_name(f)) for f in dense)
        self.categorical_fields = tuple(f if isinstance(f, CategoricalField) else CategoricalField(_field_name(f))
                                        for f in categorical)
        for f in self.dense_fields:
            if not isinstance(f, DenseField):
                raise TypeError(f"dense fields must be names or DenseField; got {f!r}")
        for f in self.categorical_fields:
            if not isinstance(f, CategoricalField):
                raise TypeError(f"categorical fields must be names or CategoricalField; got {f!r}")
        names = self.names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"schema names a field more than once: {duplicated}")
        if not names:
            raise ValueError("schema has no fields")

    @property
    def dense(self) -> tuple:
        """Names of the dense fields."""
        return tuple(f.name for f in self.dense_fields)

    @property
    def categorical(self) -> tuple:
        """Names of the categorical fields."""
        return tuple(f.name for f in self.categorical_fields)

    @property
    def names(self) -> tuple:
        return self.dense + self.categorical

    def __repr__(self) -> str:
        return f"Schema(dense={self.dense}, categorical={self.categorical})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Schema) and self.dense_fields == other.dense_fields \
            and self.categorical_fields == other.categorical_fields

    def __hash__(self) -> int:
        return hash((self.dense_fields, self.categorical_fields))

    @classmethod
    def coerce(cls, schema: Any) -> "Schema":
        """A :class:`Schema` from a Schema or a dict ``{"dense": [...], "categorical": [...]}``."""
        if isinstance(schema, Schema):
            return schema
        if isinstance(schema, dict):
            unknown = set(schema) - {"dense", "categorical"}
            if unknown:
                raise ValueError(f"schema dict takes the keys 'dense' and 'categorical'; got {sorted(unknown)}")
            return cls(schema.get("dense", ()), schema.get("categorical", ()))
        raise TypeError(f"schema must be None, a Schema or a dict with 'dense'/'categorical' lists; got {schema!r}")


def _field_name(value: Any) -> str:
    if isinstance(value, str) or integers().is_satisfied_by(value):
        return str(value)
    raise TypeError(f"a field is named by a string (or a column index); got {value!r}")


def _is_categorical_dtype(dtype: Any) -> bool:
    return isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) \
        or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def as_frame(X: Any) -> pd.DataFrame:
    """A DataFrame view of ``X``: DataFrames as they are, arrays with columns named "0", "1", ...

    SciPy sparse matrices are densified and torch tensors are copied to the CPU. Complex values
    (a complex array, tensor or DataFrame column) raise a ``TypeError`` before any cast.
    """
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        for name in X.columns:
            reject_complex(X[name], f"X[{name!r}]")
        return X
    reject_complex(X, "X")
    if isinstance(X, torch.Tensor) or sp.issparse(X):
        X = backend.to_numpy(X)
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be a DataFrame or a 2-D array (n_samples, n_fields); got an array of "
                         f"shape {array.shape}")
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


def infer_schema(X: Any) -> Schema:
    """The schema a DataFrame's dtypes imply: strings, objects, booleans, categories are categorical.

    Numbers (integers included) are dense fields; give a :class:`Schema` to treat integer ids as
    categories. A numeric array gives dense fields named "0", "1", ...
    """
    frame = as_frame(X)
    dense, categorical = [], []
    for name, dtype in frame.dtypes.items():
        (categorical if _is_categorical_dtype(dtype) else dense).append(str(name))
    return Schema(dense, categorical)


class CTRInputs(NamedTuple):
    """Encoded model inputs: ``dense`` (n, n_dense) float32 and ``categorical`` (n, n_categorical) int64."""

    dense: np.ndarray
    categorical: np.ndarray

    def __len__(self) -> int:  # rows, not the tuple's two entries
        return int(self.dense.shape[0])

    def to_tensors(self, device: Any = "cpu", dtype: Any = torch.float32) -> tuple:
        return (torch.as_tensor(self.dense, device=backend.resolve_device(device)).to(backend.resolve_dtype(dtype)),
                torch.as_tensor(self.categorical, device=backend.resolve_device(device)))

    def subset(self, index: Any) -> "CTRInputs":
        return CTRInputs(self.dense[index], self.categorical[index])


def as_inputs(inputs: Any) -> CTRInputs:
    """Encoded model inputs from :class:`CTRInputs` or a ``(dense, categorical)`` pair of arrays.

    What the torch CTR models take (raw rows go through a fitted :class:`CTRPreprocessor` or
    :meth:`recsys.ctr.CTRClassifier.encode` first). Complex parts raise a ``TypeError``; misshapen
    parts and categorical values that are not non-negative integers a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> inputs = as_inputs((np.zeros((2, 1)), np.array([[0, 3], [1, 2]])))
    >>> inputs.dense.dtype, inputs.categorical.dtype, len(inputs)
    (dtype('float32'), dtype('int64'), 2)
    """
    if isinstance(inputs, CTRInputs):
        return inputs
    if isinstance(inputs, (tuple, list)) and len(inputs) == 2:
        for name, part in zip(("dense", "categorical"), inputs):
            reject_complex(part, f"the {name} inputs")
        dense, cats = (backend.to_numpy(part) for part in inputs)
        dense = np.asarray(dense, dtype=np.float32)
        cats = np.asarray(cats)
        if dense.ndim != 2 or cats.ndim != 2 or dense.shape[0] != cats.shape[0]:
            raise ValueError(f"encoded inputs must be (dense (n, n_dense), categorical (n, n_categorical)); "
                             f"got shapes {dense.shape} and {cats.shape}")
        if cats.size and (cats.dtype.kind not in "iu" or cats.min() < 0):
            raise ValueError("categorical inputs must be non-negative integer indices")
        return CTRInputs(dense, cats.astype(np.int64))
    raise TypeError("a torch CTR model takes encoded inputs: CTRInputs or a (dense, categorical) pair "
                    "(CTRClassifier.encode gives them); raw rows need the fitted CTRClassifier")


def _stable_hash(values: pd.Series, buckets: int) -> np.ndarray:
    """Bucket ``1 + crc32(str(value)) % buckets`` for each value, 0 for missing (hashed per unique value)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    hashed = np.fromiter((1 + zlib.crc32(str(u).encode("utf-8")) % buckets for u in uniques), dtype=np.int64,
                         count=len(uniques))
    out = np.zeros(len(values), dtype=np.int64)
    present = codes >= 0
    out[present] = hashed[codes[present]]
    return out


class CTRPreprocessor(BaseEstimator):
    """Learn per-field transforms on training data; encode raw rows as :class:`CTRInputs`.

    Parameters
    ----------
    schema : Schema, dict or None, default=None
        None infers it from the first data seen (:func:`infer_schema`).
    min_frequency : int, default=1
        Frequency threshold for categorical fields given by name only (a :class:`CategoricalField`
        carries its own).

    Attributes
    ----------
    schema_ : Schema
    vocabularies_ : dict of str to pandas.Index
        Known values of each vocabulary field, in index order (index ``i`` encodes as ``i + 1``).
    cardinalities_ : tuple of int
        Embedding table sizes, bucket 0 included, in the schema's categorical order.
    dense_min_, dense_max_ : ndarray
        Training range of each dense field after its log transform.
    n_seen_ : int
        Rows seen by ``fit``/``partial_fit``.

    Notes
    -----
    A plain scikit-learn estimator (it holds no torch state, so it has no device): its parameters
    are checked against ``_parameter_constraints`` when fitting starts. :meth:`transform` returns
    :class:`CTRInputs` (a dense block and a block of category indices), not a table, so there are
    no output feature names.
    """

    _parameter_constraints: dict = {
        "schema": [Schema, dict, None],
        "min_frequency": [integers(1)],
    }

    def __init__(self, schema: Any = None, *, min_frequency: int = 1):
        self.schema = schema
        self.min_frequency = min_frequency

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "CTRPreprocessor":
        """Learn the transforms from ``X`` (a DataFrame or an array), forgetting earlier data."""
        for attribute in ("schema_", "_counts", "_dense_lo", "_dense_hi", "n_seen_"):
            if hasattr(self, attribute):
                delattr(self, attribute)
        return self.partial_fit(X)._finalize()

    def partial_fit(self, X: Any, y: Any = None) -> "CTRPreprocessor":
        """Accumulate counts and ranges from one chunk; call :meth:`finalize` after the last one."""
        frame = as_frame(X)
        if not hasattr(self, "schema_") or not hasattr(self, "_counts"):
            self._validate_params()
            schema = infer_schema(frame) if self.schema is None else Schema.coerce(self.schema)
            self.schema_ = self._with_default_frequency(schema)
            self._counts = {f.name: pd.Series(dtype=np.int64) for f in self.schema_.categorical_fields
                            if f.hash_buckets is None}
            self._dense_lo = np.full(len(self.schema_.dense), np.inf)
            self._dense_hi = np.full(len(self.schema_.dense), -np.inf)
            self.n_seen_ = 0
        frame = self._check_columns(frame)
        if len(frame) == 0:
            raise ValueError("X has 0 rows; at least one is needed to fit the CTR transforms")
        dense = self._raw_dense(frame)
        with np.errstate(all="ignore"):
            lo, hi = np.nanmin(np.where(np.isnan(dense), np.inf, dense), axis=0, initial=np.inf), \
                np.nanmax(np.where(np.isnan(dense), -np.inf, dense), axis=0, initial=-np.inf)
        self._dense_lo = np.minimum(self._dense_lo, lo)
        self._dense_hi = np.maximum(self._dense_hi, hi)
        for name, counts in self._counts.items():
            chunk = frame[name].value_counts(dropna=True)
            self._counts[name] = counts.add(chunk, fill_value=0).astype(np.int64) if len(counts) else chunk
        self.n_seen_ += len(frame)
        return self

    def partial_state(self) -> Optional[dict]:
        """What :meth:`partial_fit` has accumulated (counts and ranges), for :meth:`merge_partial_states`;
        None before the first chunk."""
        if not hasattr(self, "_counts"):
            return None
        return {"schema": self.schema_, "counts": self._counts, "dense_lo": self._dense_lo,
                "dense_hi": self._dense_hi, "n_seen": self.n_seen_}

    def merge_partial_states(self, states: Sequence[Optional[dict]]) -> "CTRPreprocessor":
        """Replace what this preprocessor accumulated by the sum of ``states`` (from :meth:`partial_state` of
        preprocessors that saw disjoint chunks, e.g. one per rank); call :meth:`finalize` after.

        The result is what one preprocessor would have accumulated from all their chunks.
        """
        states = [state for state in states if state is not None]
        if not states:
            raise ValueError("no data to merge: every part saw 0 rows")
        schemas = {state["schema"] for state in states}
        if len(schemas) != 1:
            raise ValueError(f"the parts were fitted with different schemas: {sorted(map(repr, schemas))}")
        self.schema_ = states[0]["schema"]
        self._counts = {}
        for name in states[0]["counts"]:
            parts = [state["counts"][name] for state in states if len(state["counts"][name])]
            self._counts[name] = (pd.concat(parts).groupby(level=0, sort=False).sum().astype(np.int64) if parts
                                  else pd.Series(dtype=np.int64))
        self._dense_lo = np.min([state["dense_lo"] for state in states], axis=0)
        self._dense_hi = np.max([state["dense_hi"] for state in states], axis=0)
        self.n_seen_ = int(sum(state["n_seen"] for state in states))
        return self

    def finalize(self) -> "CTRPreprocessor":
        """Fix the vocabularies and ranges after the last :meth:`partial_fit`."""
        if not hasattr(self, "_counts"):
            raise ValueError("finalize() needs at least one partial_fit() first")
        return self._finalize()

    def _finalize(self) -> "CTRPreprocessor":
        self.vocabularies_ = {}
        sizes = []
        for f in self.schema_.categorical_fields:
            if f.hash_buckets is not None:
                sizes.append(f.hash_buckets + 1)
                continue
            counts = self._counts[f.name]
            kept = counts[counts >= f.min_frequency]
            # most frequent first; ties in a fixed order so that the encoding does not depend on chunking
            order = sorted(zip(-kept.to_numpy(), kept.index.astype(str), range(len(kept))))
            vocabulary = pd.Index([kept.index[i] for _, _, i in order])
            self.vocabularies_[f.name] = vocabulary
            sizes.append(len(vocabulary) + 1)
        self.cardinalities_ = tuple(sizes)
        lo = np.where(np.isfinite(self._dense_lo), self._dense_lo, 0.0)
        hi = np.where(np.isfinite(self._dense_hi), self._dense_hi, 0.0)
        self.dense_min_, self.dense_max_ = lo, hi
        del self._counts
        return self

    def _with_default_frequency(self, schema: Schema) -> Schema:
        """Apply ``min_frequency`` to the vocabulary fields left at the default threshold of 1."""
        if self.min_frequency == 1:
            return schema
        fields = [CategoricalField(f.name, int(self.min_frequency)) if f.min_frequency == 1 and f.hash_buckets is None
                  else f for f in schema.categorical_fields]
        return Schema(schema.dense_fields, fields)

    # -- transforming -----------------------------------------------------------------------
    def transform(self, X: Any) -> CTRInputs:
        """Encode ``X``: dense fields transformed and scaled, categorical fields as bucket indices."""
        if not hasattr(self, "cardinalities_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("this CTRPreprocessor is not fitted yet; call fit (or partial_fit + finalize)")
        frame = self._check_columns(as_frame(X))
        dense = self._raw_dense(frame)
        span = self.dense_max_ - self.dense_min_
        scaled = dense.copy()
        for j, f in enumerate(self.schema_.dense_fields):
            if f.transform != "none":
                scaled[:, j] = np.clip((dense[:, j] - self.dense_min_[j]) / span[j], 0.0, 1.0) if span[j] > 0 \
                    else np.where(np.isnan(dense[:, j]), np.nan, 0.0)
        scaled = np.nan_to_num(scaled, nan=0.0).astype(np.float32)
        categorical = np.zeros((len(frame), len(self.schema_.categorical)), dtype=np.int64)
        for j, f in enumerate(self.schema_.categorical_fields):
            column = frame[f.name]
            if f.hash_buckets is not None:
                categorical[:, j] = _stable_hash(column, f.hash_buckets)
            else:
                vocabulary = self.vocabularies_[f.name]
                if isinstance(column.dtype, pd.CategoricalDtype):
                    # encode the categories once, then map the codes
                    lookup = np.append(vocabulary.get_indexer(column.cat.categories), -1)
                    categorical[:, j] = lookup[column.cat.codes.to_numpy()] + 1
                else:
                    categorical[:, j] = vocabulary.get_indexer(column) + 1
        return CTRInputs(scaled, categorical)

    def fit_transform(self, X: Any, y: Any = None) -> CTRInputs:
        return self.fit(X).transform(X)

    def _check_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with string column names (a renamed view, the caller's frame is left alone)."""
        if not all(isinstance(c, str) for c in frame.columns):
            frame = frame.rename(columns=str)
        columns = list(frame.columns)
        missing = [n for n in self.schema_.names if n not in columns]
        if missing:
            raise ValueError(f"unknown field(s) {missing}: X has no such column; its columns are {columns[:20]}")
        return frame

    def _raw_dense(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.schema_.dense:
            return np.zeros((len(frame), 0))
        block = frame[list(self.schema_.dense)]
        bad = [n for n, dtype in block.dtypes.items() if not (pd.api.types.is_numeric_dtype(dtype)
                                                               and not pd.api.types.is_bool_dtype(dtype))]
        if bad:
            raise TypeError(f"dense field(s) {bad} must hold numbers; got dtypes "
                            f"{[str(block[n].dtype) for n in bad]} (make them categorical in the schema?)")
        values = np.array(block.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64, copy=True)
        if np.isinf(values).any():
            raise ValueError("dense fields contain infinity; use NaN for a missing value")
        for j, f in enumerate(self.schema_.dense_fields):
            if f.transform == "log":
                values[:, j] = np.sign(values[:, j]) * np.log1p(np.abs(values[:, j]))
        return values

    @property
    def n_dense_(self) -> int:
        return len(self.schema_.dense)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cardinalities_")
