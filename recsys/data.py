"""Data readers and generators of the recommenders.

CTR data (click logs: a label and a row of dense and categorical fields)

- :func:`iter_criteo` / :func:`read_criteo`: the Criteo display-advertising format (label, 13 integer
  fields I1-I13, 26 hashed categorical fields C1-C26, tab separated, empty = missing), streamed in
  chunks; also reads the comma-separated samples with a header line that DeepCTR ships.
- :func:`write_criteo`: the inverse, for round trips and for handing synthetic data to other tools.
- :func:`make_criteo_like`: a synthetic Criteo-like click log with power-law field cardinalities,
  Zipf-distributed category frequencies, missing values and a planted low-rank (factorization
  machine) interaction structure, so models and their compression can be tested at scale.
- :func:`load_movielens_ctr`: MovieLens ratings as a CTR task (label = rating >= 4) from RecBole's
  atomic files (``ml-100k.inter`` with ``.user`` and ``.item`` beside it).

Interaction (implicit feedback) readers and splits are added here by their own issue.

Examples
--------
>>> from recsys.data import make_criteo_like
>>> frame = make_criteo_like(n_samples=1000, n_dense=2, n_categorical=3, random_state=0)
>>> list(frame.columns)
['label', 'I1', 'I2', 'C1', 'C2', 'C3']
>>> str(frame["C1"].dtype), frame["label"].isin([0, 1]).all()
('category', np.True_)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional

import numpy as np
import pandas as pd

__all__ = [
    "CRITEO_CATEGORICAL",
    "CRITEO_COLUMNS",
    "CRITEO_DENSE",
    "CriteoTruth",
    "iter_criteo",
    "load_movielens_ctr",
    "make_criteo_like",
    "read_criteo",
    "write_criteo",
]

# ------------------------------------------------------------------------------------------------
# CTR: Criteo format

CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label",) + CRITEO_DENSE + CRITEO_CATEGORICAL


def _criteo_layout(path: Path) -> tuple:
    """``(separator, has_header)`` from the first line."""
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\r\n")
    if not first:
        raise ValueError(f"{path} is empty; expected Criteo rows (label, I1-I13, C1-C26)")
    separator = "\t" if "\t" in first else ","
    cells = first.split(separator)
    if len(cells) != len(CRITEO_COLUMNS):
        raise ValueError(f"{path}: a Criteo row has {len(CRITEO_COLUMNS)} {('tab' if separator == chr(9) else 'comma')}"
                         f"-separated fields (label, I1-I13, C1-C26); the first line has {len(cells)}")
    has_header = cells[0].strip().lower() == "label"
    if has_header and [c.strip() for c in cells] != list(CRITEO_COLUMNS):
        raise ValueError(f"{path}: header must be {','.join(CRITEO_COLUMNS[:3])},...,C26; got {first[:80]!r}")
    return separator, has_header


def iter_criteo(path: Any, chunksize: int = 100_000, nrows: Optional[int] = None) -> Iterator[pd.DataFrame]:
    """Stream a Criteo-format file as DataFrames of at most ``chunksize`` rows.

    Parameters
    ----------
    path : str or Path
        Raw Criteo (``train.txt``/``dac_sample.txt``: tab separated, no header) or a comma-separated file
        whose header is ``label,I1,...,I13,C1,...,C26``.
    chunksize : int, default=100_000
    nrows : int, optional
        Stop after this many rows.

    Yields
    ------
    DataFrame
        Columns ``label`` (int64), ``I1``-``I13`` (float64, NaN where missing), ``C1``-``C26``
        (strings, missing as NaN).

    Raises
    ------
    ValueError
        Wrong number of fields, or a label other than 0/1.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no Criteo file at {path}")
    if isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive int; got {chunksize!r}")
    separator, has_header = _criteo_layout(path)
    dtypes = {"label": "float64", **{c: "float64" for c in CRITEO_DENSE}, **{c: "str" for c in CRITEO_CATEGORICAL}}
    reader = pd.read_csv(path, sep=separator, header=0 if has_header else None,
                         names=None if has_header else list(CRITEO_COLUMNS), dtype=dtypes,
                         chunksize=chunksize, nrows=nrows, keep_default_na=False,
                         na_values={c: [""] for c in CRITEO_COLUMNS})
    seen = 0
    for chunk in reader:
        labels = chunk["label"].to_numpy()
        bad = ~np.isin(labels, (0.0, 1.0))
        if bad.any():
            row = seen + int(np.flatnonzero(bad)[0]) + 1 + int(has_header)
            raise ValueError(f"{path}, line {row}: the label must be 0 or 1; got {chunk['label'].iloc[int(np.flatnonzero(bad)[0])]!r}")
        chunk["label"] = labels.astype(np.int64)
        seen += len(chunk)
        yield chunk


def read_criteo(path: Any, nrows: Optional[int] = None) -> pd.DataFrame:
    """The whole file (or its first ``nrows`` rows) as one DataFrame; see :func:`iter_criteo`."""
    chunks = list(iter_criteo(path, nrows=nrows))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(CRITEO_COLUMNS))


def write_criteo(frame: pd.DataFrame, path: Any) -> None:
    """Write ``label``, the ``I*`` and the ``C*`` columns of ``frame`` as a raw Criteo file (tab separated).

    Dense values are written as integers where they are whole numbers, missing values as empty
    fields. The file appears only once it is complete.
    """
    path = Path(path)
    dense = [c for c in frame.columns if str(c).startswith("I")]
    categorical = [c for c in frame.columns if str(c).startswith("C")]
    if "label" not in frame.columns:
        raise ValueError("frame needs a 'label' column")
    out = pd.DataFrame({"label": frame["label"].astype(np.int64)})
    for c in dense:
        values = frame[c].astype("float64")
        whole = values.dropna()
        out[c] = values.astype("Int64") if np.all(np.equal(np.mod(whole, 1), 0)) else values
    for c in categorical:
        out[c] = frame[c].astype("object")
    partial = path.with_name(path.name + ".tmp")
    try:
        out.to_csv(partial, sep="\t", header=False, index=False, na_rep="")
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


class CriteoTruth(NamedTuple):
    """The planted model behind :func:`make_criteo_like` (with ``return_truth=True``).

    Attributes
    ----------
    logits : ndarray of shape (n_samples,)
        The true log-odds of each row (``label ~ Bernoulli(sigmoid(logits))``).
    factors : list of ndarray
        Per categorical field, the ``(cardinality, rank)`` latent vectors of its categories.
    cardinalities : tuple of int
    """

    logits: np.ndarray
    factors: list
    cardinalities: tuple


def make_criteo_like(n_samples: int = 100_000, n_dense: int = 13, n_categorical: int = 26,
                     max_cardinality: int = 100_000, cardinality_exponent: float = 1.6, zipf_exponent: float = 1.1,
                     rank: int = 4, interaction_scale: float = 1.0, click_rate: float = 0.25,
                     missing_rate: float = 0.1, return_truth: bool = False, random_state: Any = None):
    """A synthetic click log shaped like Criteo, with a planted low-rank interaction structure.

    Field ``f`` (1-based) has ``max(2, round(max_cardinality * f ** -cardinality_exponent))`` categories
    (a power law: a few huge fields, many small ones), drawn with Zipf frequencies
    ``p(v) ∝ (v + 1) ** -zipf_exponent``. Each category has a first-order weight and a latent vector
    in ``R^rank``; the log-odds of a row are

        ``b + Σ_f w_f[v_f] + Σ_{f<g} <z_f[v_f], z_g[v_g]> + Σ_j β_j log(1 + I_j)``,

    a factorization machine of rank ``rank`` (the structure DeepFM models and low-rank embeddings can
    keep), with the intercept ``b`` set so that the mean click rate is ``click_rate``. Dense fields are
    log-normal counts; ``missing_rate`` of the dense and categorical values are missing (NaN).

    Parameters
    ----------
    n_samples : int, default=100_000
    n_dense, n_categorical : int, default=13, 26
    max_cardinality : int, default=100_000
    cardinality_exponent : float, default=1.6
    zipf_exponent : float, default=1.1
    rank : int, default=4
    interaction_scale : float, default=1.0
        Standard deviation of the pairwise term over rows, relative to about one logit.
    click_rate : float, default=0.25
    missing_rate : float, default=0.1
    return_truth : bool, default=False
        Also return a :class:`CriteoTruth`.
    random_state : None, int or RandomState

    Returns
    -------
    frame : DataFrame
        ``label``, ``I1``... (float64) and ``C1``... (pandas categoricals with integer categories).
    truth : CriteoTruth
        Only with ``return_truth=True``.
    """
    from sklearn.utils import check_random_state

    for name, value in (("n_samples", n_samples), ("max_cardinality", max_cardinality), ("rank", rank)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    for name, value in (("n_dense", n_dense), ("n_categorical", n_categorical)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative int; got {value!r}")
    if n_dense + n_categorical == 0:
        raise ValueError("n_dense + n_categorical must be at least 1")
    if not 0 < click_rate < 1:
        raise ValueError(f"click_rate must be in (0, 1); got {click_rate!r}")
    if not 0 <= missing_rate < 1:
        raise ValueError(f"missing_rate must be in [0, 1); got {missing_rate!r}")
    rng = check_random_state(random_state)
    n = int(n_samples)
    cardinalities = tuple(max(2, int(round(max_cardinality * (f + 1) ** -cardinality_exponent)))
                          for f in range(n_categorical))
    n_pairs = n_categorical * (n_categorical - 1) / 2
    # per-pair interaction variance sigma^4 * rank; the pairwise sum has std interaction_scale
    sigma2 = interaction_scale / np.sqrt(max(n_pairs, 1) * rank)
    logits = np.zeros(n)
    frame = {}
    factors, total, squares = [], np.zeros((n, rank)), np.zeros(n)
    for f, card in enumerate(cardinalities):
        weights = (np.arange(card) + 1.0) ** -zipf_exponent
        cumulative = np.cumsum(weights / weights.sum())
        codes = np.minimum(np.searchsorted(cumulative, rng.random_sample(n)), card - 1)
        first_order = rng.normal(0.0, 0.3, size=card)
        latent = rng.normal(0.0, np.sqrt(sigma2), size=(card, rank))
        factors.append(latent)
        missing = rng.random_sample(n) < missing_rate
        z = latent[codes]
        z[missing] = 0.0
        logits += np.where(missing, 0.0, first_order[codes])
        total += z
        squares += np.einsum("ij,ij->i", z, z)
        frame[f"C{f + 1}"] = pd.Categorical.from_codes(np.where(missing, -1, codes), categories=np.arange(card))
    logits += 0.5 * (np.einsum("ij,ij->i", total, total) - squares)
    dense = {}
    for j in range(n_dense):
        counts = np.floor(rng.lognormal(mean=rng.uniform(0, 3), sigma=1.0, size=n))
        logits += rng.normal(0.0, 0.3) * np.log1p(counts)
        values = counts.astype(np.float64)
        values[rng.random_sample(n) < missing_rate] = np.nan
        dense[f"I{j + 1}"] = values
    logits += _intercept_for_rate(logits, click_rate)
    labels = (rng.random_sample(n) < 1.0 / (1.0 + np.exp(-logits))).astype(np.int64)
    result = pd.DataFrame({"label": labels, **dense, **frame})
    if return_truth:
        return result, CriteoTruth(logits, factors, cardinalities)
    return result


def _intercept_for_rate(logits: np.ndarray, rate: float) -> float:
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ------------------------------------------------------------------------------------------------
# CTR: MovieLens as click-through data

def _read_atomic(path: Path) -> pd.DataFrame:
    """A RecBole atomic file: tab separated, header ``name:type``; every column read as text."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""], quoting=3)
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def load_movielens_ctr(path: Any, threshold: float = 4.0, side_features: bool = True) -> pd.DataFrame:
    """MovieLens ratings as a CTR data set: ``label = rating >= threshold``.

    Parameters
    ----------
    path : str or Path
        A RecBole atomic ``.inter`` file (``user_id``, ``item_id``, ``rating``, ``timestamp``) or the
        folder that holds it; ``.user`` and ``.item`` files with the same stem are joined when present.
    threshold : float, default=4.0
    side_features : bool, default=True
        Join user (age, gender, occupation, zip code) and item (release year, first genre) fields.

    Returns
    -------
    DataFrame
        ``label`` (0/1), ``timestamp`` (int64) and categorical (string) fields ``user_id``,
        ``item_id`` and, with side features, ``age``, ``gender``, ``occupation``, ``zip_code``,
        ``release_year``, ``genre``.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.inter"))
        if not found:
            raise FileNotFoundError(f"no RecBole .inter file in {path}")
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"no MovieLens interactions at {path}")
    inter = _read_atomic(path)
    for column in ("user_id", "item_id", "rating"):
        if column not in inter.columns:
            raise ValueError(f"{path} has no {column!r} column; columns are {list(inter.columns)}")
    rating = inter["rating"].astype(float)
    frame = pd.DataFrame({"user_id": inter["user_id"], "item_id": inter["item_id"]})
    if side_features:
        users, items = path.with_suffix(".user"), path.with_suffix(".item")
        if users.exists():
            user = _read_atomic(users)
            keep = [c for c in ("user_id", "age", "gender", "occupation", "zip_code") if c in user.columns]
            frame = frame.merge(user[keep], on="user_id", how="left")
        if items.exists():
            item = _read_atomic(items)
            extra = pd.DataFrame({"item_id": item["item_id"]})
            if "release_year" in item.columns:
                extra["release_year"] = item["release_year"]
            if "class" in item.columns:
                extra["genre"] = item["class"].str.split(" ").str[0]
            frame = frame.merge(extra, on="item_id", how="left")
    frame.insert(0, "label", (rating >= threshold).astype(np.int64).to_numpy())
    if "timestamp" in inter.columns:
        frame.insert(1, "timestamp", inter["timestamp"].astype(float).astype(np.int64).to_numpy())
    return frame
