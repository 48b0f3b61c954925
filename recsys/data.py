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

Interactions (implicit feedback: who interacted with what)

- :class:`Interactions`: user-item pairs as internal indices ``0..n_users-1`` / ``0..n_items-1``, the
  maps back to the original ids, optional timestamps; conversion to a binary CSR matrix, per-user
  random holdout (:meth:`Interactions.split_by_user`) and time splits (:meth:`Interactions.split_by_time`).
- :func:`as_interactions`: an :class:`Interactions` from pairs (NumPy, lists, torch) or a SciPy sparse
  user x item matrix, with clear errors for empty, negative, non-integer or misshapen input.
- :func:`read_lightgcn` / :func:`read_lightgcn_split`: the LightGCN/NGCF text format
  (``user item item ...`` per line; Gowalla, Yelp2018, Amazon-book). Ids far sparser than the data
  (hashed or 64-bit ids) are remapped and kept in the id maps: nothing allocates by the largest id.

Every reader names the file and line of a row it cannot read exactly, rather than pad, guess or
drop a field; :func:`write_criteo` refuses a frame that :func:`read_criteo` would not read back.
- :func:`read_movielens`: MovieLens ``u.data`` or a RecBole ``.inter`` file as implicit feedback.
- :func:`make_low_rank_interactions`: synthetic implicit feedback with planted low-rank preferences
  (the truth is kept in the result's ``truth`` attribute, a :class:`LowRankTruth`).

Examples
--------
>>> from recsys.data import make_criteo_like
>>> frame = make_criteo_like(n_samples=1000, n_dense=2, n_categorical=3, random_state=0)
>>> list(frame.columns)
['label', 'I1', 'I2', 'C1', 'C2', 'C3']
>>> str(frame["C1"].dtype), frame["label"].isin([0, 1]).all()
('category', np.True_)
>>> from recsys.data import Interactions
>>> data = Interactions.from_ids(["ann", "bob", "ann"], ["x", "y", "y"])
>>> data
Interactions(n_users=2, n_items=2, n_interactions=3)
>>> data.to_csr().toarray()
array([[1., 1.],
       [0., 1.]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import numbers
import os
import re
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tensorkit._utils import replaced_atomically

__all__ = [
    "CRITEO_CATEGORICAL",
    "CRITEO_COLUMNS",
    "CRITEO_DENSE",
    "CriteoTruth",
    "Interactions",
    "LowRankTruth",
    "as_interactions",
    "iter_criteo",
    "load_movielens_ctr",
    "make_criteo_like",
    "make_low_rank_interactions",
    "read_criteo",
    "read_lightgcn",
    "read_lightgcn_split",
    "read_movielens",
    "write_criteo",
]

# ------------------------------------------------------------------------------------------------
# CTR: Criteo format

CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label",) + CRITEO_DENSE + CRITEO_CATEGORICAL
_CRITEO_FIELDS = "(label, I1-I13, C1-C26)"
_WRITE_BLOCK = 65_536   # rows formatted and written at a time by write_criteo


def _separator_name(separator: str) -> str:
    return "tab" if separator == "\t" else "comma"


def _criteo_layout(path: Path) -> tuple:
    """``(separator, has_header)`` from the first line."""
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\r\n")
    if not first and path.stat().st_size == 0:
        raise ValueError(f"{path} is empty; expected Criteo rows {_CRITEO_FIELDS}")
    separator = "\t" if "\t" in first else ","
    cells = first.split(separator)
    if len(cells) != len(CRITEO_COLUMNS):
        raise ValueError(f"{path}, line 1: a Criteo row has {len(CRITEO_COLUMNS)} {_separator_name(separator)}"
                         f"-separated fields {_CRITEO_FIELDS}; got {len(cells)}")
    has_header = cells[0].strip().lower() == "label"
    if has_header and [c.strip() for c in cells] != list(CRITEO_COLUMNS):
        raise ValueError(f"{path}: header must be {','.join(CRITEO_COLUMNS[:3])},...,C26; got {first[:80]!r}")
    return separator, has_header


def _check_row_count(value: Any, name: str, smallest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < smallest:
        kind = "positive" if smallest > 0 else "non-negative"
        raise ValueError(f"{name} must be a {kind} int; got {value!r}")


def _line_blocks(path: Path, skip: int, size: int, limit: Optional[int]) -> Iterator[tuple]:
    """``(number of the first line, list of raw lines)`` of at most ``size`` lines each, after ``skip``
    lines, ``limit`` lines in all (None: to the end)."""
    with open(path, "rb") as handle:
        for _ in range(skip):
            handle.readline()
        number, left = skip + 1, limit
        while left is None or left > 0:
            lines = list(itertools.islice(handle, size if left is None else min(size, left)))
            if not lines:
                return
            yield number, lines
            number += len(lines)
            left = None if left is None else left - len(lines)


def _decoded(path: Path, first: int, lines: list) -> str:
    """The lines as one UTF-8 text, or a ``ValueError`` naming the line that is not UTF-8."""
    try:
        return b"".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        for offset, line in enumerate(lines):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}, line {first + offset}: not UTF-8 text ({error.reason} at byte "
                                 f"{error.start})") from None
        raise


def _check_criteo_fields(path: Path, first: int, lines: list, separator: str) -> None:
    """Every line holds exactly the 40 fields (and no carriage return but at its end).

    The separators of every line are counted at once over the block's bytes (each line ends at its
    newline, so none is empty).
    """
    block = np.frombuffer(b"".join(lines), dtype=np.uint8)
    starts = np.cumsum([0] + [len(line) for line in lines[:-1]])
    counts = np.add.reduceat(block == ord(separator), starts, dtype=np.int64) + 1
    bad = np.flatnonzero(counts != len(CRITEO_COLUMNS))
    if bad.size:
        raise ValueError(f"{path}, line {first + int(bad[0])}: a Criteo row has {len(CRITEO_COLUMNS)} "
                         f"{_separator_name(separator)}-separated fields {_CRITEO_FIELDS}; got {int(counts[bad[0]])}")
    if (block == ord("\r")).any():
        for offset, line in enumerate(lines):
            if b"\r" in line.rstrip(b"\r\n"):
                raise ValueError(f"{path}, line {first + offset}: a carriage return inside a row")


def _first_bad(path: Path, first: int, chunk: pd.DataFrame, columns: Any, bad: np.ndarray, expected: str) -> None:
    """Raise for the earliest row flagged in ``bad`` (rows x columns), naming its line, column and value."""
    rows, cols = np.nonzero(bad)
    if not rows.size:
        return
    pick = int(np.lexsort((cols, rows))[0])
    row, column = int(rows[pick]), columns[int(cols[pick])]
    value = chunk[column].iloc[row]
    shown = "an empty field" if pd.isna(value) else repr(value)
    raise ValueError(f"{path}, line {first + row}: {column} must be {expected}; got {shown}")


def _read_block(text: str, separator: str, numbers: bool) -> pd.DataFrame:
    """Parse checked Criteo rows; the label and dense fields as float64 with ``numbers``, else all as text."""
    dtype = {**{c: "float64" for c in ("label",) + CRITEO_DENSE}, **{c: "str" for c in CRITEO_CATEGORICAL}} \
        if numbers else str
    return pd.read_csv(io.StringIO(text), sep=separator, header=None, names=list(CRITEO_COLUMNS), dtype=dtype,
                       quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""], skip_blank_lines=False)


def _strict_block(path: Path, first: int, text: str, separator: str) -> pd.DataFrame:
    """Checked Criteo rows read as text, then the label and dense fields converted one by one, raising for
    the first label that is not 0/1 or dense value that is not a finite number."""
    chunk = _read_block(text, separator, numbers=False)
    labels = pd.to_numeric(chunk["label"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _first_bad(path, first, chunk, ["label"], ~np.isin(labels, (0.0, 1.0))[:, None], "0 or 1")
    dense = np.column_stack([pd.to_numeric(chunk[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                             for c in CRITEO_DENSE])
    given = chunk[list(CRITEO_DENSE)].notna().to_numpy()
    _first_bad(path, first, chunk, CRITEO_DENSE, given & ~np.isfinite(dense), "a finite number or empty")
    chunk["label"] = labels.astype(np.int64)
    for j, column in enumerate(CRITEO_DENSE):
        chunk[column] = dense[:, j]
    return chunk


_BOOLEAN_WORDS = ("true", "false")
"""Words pandas' parser reads as 1 and 0 in a float column (in any case)."""


def _holds_boolean_word(text: str) -> bool:
    lowered = text.lower()  # one copy, then substring searches: far faster than a case-blind regex
    return any(word in lowered for word in _BOOLEAN_WORDS)


def _parse_criteo_block(path: Path, first: int, lines: list, separator: str) -> pd.DataFrame:
    """One block of lines as a DataFrame with the reader's dtypes, or a ``ValueError`` naming the bad line.

    pandas' parser reads the numbers at once; a block it refuses, one where it lets through a label
    other than 0/1 or an infinite value, and one holding a word it would read as a number
    (true/false) are read by :func:`_strict_block`, which names the bad field.
    """
    _check_criteo_fields(path, first, lines, separator)
    text = _decoded(path, first, lines)
    if not _holds_boolean_word(text):
        with contextlib.suppress(ValueError):   # a field that is not a number: the strict reading finds it
            chunk = _read_block(text, separator, numbers=True)
            if chunk["label"].isin((0.0, 1.0)).all() and not np.isinf(chunk[list(CRITEO_DENSE)].to_numpy()).any():
                chunk["label"] = chunk["label"].to_numpy().astype(np.int64)
                return chunk
    return _strict_block(path, first, text, separator)


def iter_criteo(path: Any, chunksize: int = 100_000, nrows: Optional[int] = None) -> Iterator[pd.DataFrame]:
    """Stream a Criteo-format file as DataFrames of at most ``chunksize`` rows.

    Parameters
    ----------
    path : str or Path
        Raw Criteo (``train.txt``/``dac_sample.txt``: tab separated, no header) or a comma-separated file
        whose header is ``label,I1,...,I13,C1,...,C26``. Fields are taken as written: quotes are
        ordinary characters.
    chunksize : int, default=100_000
    nrows : int, optional
        Stop after this many rows (0: none).

    Yields
    ------
    DataFrame
        Columns ``label`` (int64), ``I1``-``I13`` (float64, NaN where missing), ``C1``-``C26``
        (strings, missing as NaN).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        ``chunksize`` or ``nrows`` not a positive / non-negative int; an empty file; and, naming the
        file and line, a row with more or fewer than 40 fields (a blank line included), a label other
        than 0/1, a dense value that is not a finite number, or text that is not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no Criteo file at {path}")
    _check_row_count(chunksize, "chunksize", 1)
    if nrows is not None:
        _check_row_count(nrows, "nrows", 0)
    separator, has_header = _criteo_layout(path)
    for first, lines in _line_blocks(path, int(has_header), int(chunksize), None if nrows is None else int(nrows)):
        chunk = _parse_criteo_block(path, first, lines, separator)
        chunk.index = pd.RangeIndex(first - 1 - int(has_header), first - 1 - int(has_header) + len(chunk))
        yield chunk


def read_criteo(path: Any, nrows: Optional[int] = None) -> pd.DataFrame:
    """The whole file (or its first ``nrows`` rows) as one DataFrame; see :func:`iter_criteo` (also for
    the errors)."""
    chunks = list(iter_criteo(path, nrows=nrows))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(CRITEO_COLUMNS))


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column of ``frame`` as float64 (NaN where missing), or a ``TypeError`` naming it."""
    from tensorkit.validation import reject_complex

    reject_complex(frame[column], f"frame[{column!r}]")
    try:
        return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise TypeError(f"frame[{column!r}] must hold numbers; got dtype {frame[column].dtype}") from None


def _criteo_labels(frame: pd.DataFrame) -> np.ndarray:
    labels = _numbers(frame, "label")
    bad = np.flatnonzero(~np.isin(labels, (0.0, 1.0)))
    if bad.size:
        raise ValueError(f"frame['label'] must hold the click labels 0 and 1 (no missing values); row "
                         f"{int(bad[0])} holds {frame['label'].iloc[int(bad[0])]!r}")
    return labels.astype(np.int64)


def _dense_text(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A dense column as Criteo fields: whole numbers as integers, others in Python's shortest exact form,
    missing values as empty fields."""
    values = _numbers(frame, column)
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        raise ValueError(f"frame[{column!r}] holds infinity at row {int(infinite[0])}; a Criteo dense field is "
                         f"a finite number or missing (NaN)")
    text = np.full(values.shape[0], "", dtype=object)
    present = ~np.isnan(values)
    whole = present & (values == np.round(values)) & (np.abs(values) < 2.0 ** 53)
    text[whole] = values[whole].astype(np.int64).astype(str)
    other = np.flatnonzero(present & ~whole)
    text[other] = [repr(float(v)) for v in values[other]]
    return text


def _categorical_text(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A categorical column as Criteo fields (``str`` of each value, missing values as empty fields).

    Values whose text is empty are refused here; tabs and line breaks inside a value are found when
    the rows are joined (:func:`_criteo_rows`).
    """
    from tensorkit.validation import reject_complex

    reject_complex(frame[column], f"frame[{column!r}]")
    missing = frame[column].isna().to_numpy()
    out = np.full(missing.shape[0], "", dtype=object)
    out[~missing] = [str(v) for v in frame[column].astype(object).to_numpy()[~missing]]
    empty = np.flatnonzero(~missing & (out == ""))
    if empty.size:
        _refuse_categorical(frame, column, int(empty[0]))
    return out


def _refuse_categorical(frame: pd.DataFrame, column: str, row: int) -> None:
    raise ValueError(f"frame[{column!r}] row {row} holds {frame[column].iloc[row]!r}; a Criteo field is "
                     f"non-empty text without tabs or line breaks (use NaN for a missing value)")


def _criteo_rows(frame: pd.DataFrame, fields: list, start: int) -> str:
    """Rows ``start`` to ``start + _WRITE_BLOCK`` as Criteo lines, after checking that no field added a tab
    or a line break."""
    columns = [column[start:start + _WRITE_BLOCK] for column in fields]
    n = columns[0].shape[0]
    text = "".join("\t".join(row) + "\n" for row in zip(*columns))
    if text.count("\t") != (len(fields) - 1) * n or text.count("\n") != n or "\r" in text:
        for name, column in zip(CRITEO_CATEGORICAL, columns[-len(CRITEO_CATEGORICAL):]):
            bad = np.flatnonzero(pd.Series(column, dtype=object).str.contains("[\t\n\r]", regex=True))
            if bad.size:
                _refuse_categorical(frame, name, start + int(bad[0]))
    return text


def _criteo_frame(frame: Any) -> pd.DataFrame:
    """``frame`` with string column names, after checking that it has the Criteo columns and a row."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    names = [str(c) for c in frame.columns]
    missing = [c for c in CRITEO_COLUMNS if c not in names]
    extra = [c for c in names if c not in CRITEO_COLUMNS]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if missing or extra or repeated:
        raise ValueError(f"frame must have exactly the columns label, I1-I13 and C1-C26, once each (in any "
                         f"order); missing {missing}, unexpected {extra}, repeated {repeated}")
    if len(frame) == 0:
        raise ValueError("frame has no rows; a Criteo file holds at least one")
    return frame.rename(columns=str)


def _criteo_fields(frame: pd.DataFrame) -> list:
    """The 40 columns of a checked frame as arrays of field text, in Criteo order."""
    return ([_criteo_labels(frame).astype(str).astype(object)] + [_dense_text(frame, c) for c in CRITEO_DENSE]
            + [_categorical_text(frame, c) for c in CRITEO_CATEGORICAL])


def _replace_atomically(path: Path, blocks: Iterator[str]) -> None:
    """Write ``blocks`` of text to a temporary file beside ``path``, then rename it over ``path``
    (see :func:`tensorkit._utils.replaced_atomically`)."""
    with replaced_atomically(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as out:
        for block in blocks:
            out.write(block)


def write_criteo(frame: pd.DataFrame, path: Any) -> None:
    """Write a Criteo frame as a raw Criteo file (tab separated, no header) that :func:`read_criteo` reads
    back as it is.

    Dense values are written as integers where they are whole numbers (below ``2**53``), other
    values exactly (Python's shortest repr), missing values as empty fields; categorical values as
    their text. The file appears only once it is complete: rows go to a temporary file made by
    :func:`tempfile.mkstemp` in the target's folder, which then replaces ``path`` (keeping its mode;
    through a symbolic link, the file it points to); on failure the temporary is removed.

    Parameters
    ----------
    frame : DataFrame
        Exactly the columns ``label``, ``I1``-``I13`` and ``C1``-``C26``, in any order (written in
        Criteo's order), and at least one row.
    path : str or Path

    Raises
    ------
    ValueError
        Missing or unexpected columns, no rows, a label other than 0/1 (NaN included), an infinite
        dense value, or a categorical value that is empty or holds a tab or a line break.
    TypeError
        ``frame`` is not a DataFrame, or the label or a dense column does not hold real numbers.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.data import make_criteo_like, read_criteo, write_criteo
    >>> frame = make_criteo_like(n_samples=5, random_state=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "day_0.txt"
    >>> write_criteo(frame, path)
    >>> read_criteo(path)["label"].tolist() == frame["label"].tolist()
    True
    """
    frame = _criteo_frame(frame)
    fields = _criteo_fields(frame)
    blocks = (_criteo_rows(frame, fields, start) for start in range(0, len(frame), _WRITE_BLOCK))
    _replace_atomically(Path(path), blocks)


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


# ------------------------------------------------------------------------------------------------
# Interactions (implicit feedback)

def _as_array(values: Any, name: str) -> np.ndarray:
    """NumPy view of array-like or torch input (sparse and complex input is not accepted here)."""
    from tensorkit import backend
    from tensorkit.validation import reject_complex

    if sp.issparse(values):
        raise TypeError(f"{name} must be a dense array; got a scipy.sparse matrix")
    reject_complex(values, name)
    return backend.to_numpy(values)


_INT64_MAX = int(np.iinfo(np.int64).max)


def _whole_numbers(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as int64 after checking that it holds finite, whole, non-negative numbers within int64."""
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold integer indices; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity; expected integer indices")
        fractional = arr != np.round(arr)
        if fractional.any():
            raise ValueError(f"{name} must hold whole numbers (integer indices); got {arr[fractional].flat[0]!r}")
    if arr.size and arr.max() > _INT64_MAX:
        raise ValueError(f"{name} holds {arr.max()!r}, above the largest index {_INT64_MAX} (int64); give such ids "
                         f"to Interactions.from_ids, which keeps them as they are")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must hold non-negative indices; got the negative value {int(out.min())}")
    return out


def _index_vector(values: Any, name: str) -> np.ndarray:
    arr = _as_array(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices; got shape {arr.shape}")
    return _whole_numbers(arr, name)


_DENSE_SLACK = 1 << 16
"""How far above twice the number of values an index may go before its space counts as sparse."""


def _is_sparse(indices: np.ndarray) -> bool:
    """Whether ``max + 1`` slots for ``indices`` would be out of proportion to them: the largest index
    is at least ``2 * len(indices) + 65536``. Such id spaces are remapped, never allocated."""
    return bool(indices.size) and int(indices.max()) >= 2 * indices.size + _DENSE_SLACK


def _shared_ids(parts: list) -> tuple:
    """``(ids, n)`` for index arrays that share one id space: the sorted distinct values and their count
    when the space is sparse (:func:`_is_sparse`), else None and ``max + 1`` (identity maps)."""
    values = np.concatenate(parts)
    if _is_sparse(values):
        ids = np.unique(values)
        return ids, len(ids)
    return None, int(values.max()) + 1 if values.size else 0


def _positions(values: np.ndarray, ids: Optional[np.ndarray]) -> np.ndarray:
    """Indices of ``values`` in the sorted ``ids`` (the values themselves when ``ids`` is None)."""
    return values if ids is None else np.searchsorted(ids, values).astype(np.int64)


def _size(value: Any, indices: np.ndarray, name: str, index_name: str) -> int:
    """``n_users``/``n_items``: the given count (checked against the indices) or ``max + 1``, which is
    refused for a sparse index space (it would allocate by the largest index)."""
    needed = int(indices.max()) + 1 if indices.size else 0
    if value is None:
        if _is_sparse(indices):
            raise ValueError(f"{index_name} holds the index {needed - 1} for only {indices.size} interactions; "
                             f"internal indices must be dense (0 .. {name} - 1): give the ids to "
                             f"Interactions.from_ids or as_interactions, which remap them, or set {name}")
        return needed
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value!r}")
    if needed > value:
        raise ValueError(f"{index_name} holds the index {needed - 1} but {name}={int(value)}; "
                         f"indices must be below {name}")
    return int(value)


def _id_map(ids: Any, n: int, name: str) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = _as_array(ids, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one id per index ({n}); got shape {arr.shape}")
    if len(pd.unique(arr)) != n:
        raise ValueError(f"{name} must hold distinct ids")
    return arr


def _check_fraction(test_size: Any) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer, np.floating)) \
            or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1); got {test_size!r}")
    return float(test_size)


def _holdout_counts(counts: np.ndarray, test_size: float) -> np.ndarray:
    """Per user: ``round(test_size * n)`` (half up), at least 1 and at most ``n - 1``; 0 for ``n < 2``."""
    wanted = np.floor(test_size * counts + 0.5).astype(np.int64)
    return np.where(counts >= 2, np.clip(wanted, 1, np.maximum(counts - 1, 1)), 0)


def _rank_within_user(users: np.ndarray, order: np.ndarray, n_users: int) -> tuple:
    """For rows sorted by ``order`` (grouped by user): position within the user's group and group sizes."""
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(len(users), dtype=np.int64)
    position[order] = np.arange(len(users)) - starts[users[order]]
    return position, counts


class Interactions:
    """Implicit-feedback user-item interactions with id maps.

    Users and items are stored as internal indices ``0..n_users-1`` and ``0..n_items-1``;
    ``user_ids[u]`` and ``item_ids[i]`` are the original ids behind them. Duplicated pairs are
    allowed (a log can repeat an interaction); :meth:`to_csr` collapses them to 1 and
    :meth:`deduplicate` removes them.

    Parameters
    ----------
    users, items : array-like or torch.Tensor of shape (n,)
        Internal indices (whole, non-negative numbers; cast to int64).
    n_users, n_items : int, optional
        Number of users / items; ``max + 1`` of the indices by default, refused when that would be
        out of proportion to the data (the largest index at least ``2 n + 65536`` for ``n``
        interactions: give such ids to :meth:`from_ids` or :meth:`from_pairs`, which remap them).
        Larger values keep users or items without interactions.
    timestamps : array-like of shape (n,), optional
        Times of the interactions (finite numbers, stored as float64).
    user_ids, item_ids : array-like, optional
        Original id of each internal index (distinct; ``arange`` by default).

    Attributes
    ----------
    users, items : ndarray of int64
    timestamps : ndarray of float64 or None
    n_users, n_items : int
    user_ids, item_ids : ndarray
    truth : LowRankTruth or None
        The planted model, for data from :func:`make_low_rank_interactions` (and their splits).

    Raises
    ------
    ValueError
        Arrays that are not 1-D or differ in length, negative, fractional or NaN indices, an index
        not below ``n_users``/``n_items`` or above int64, a sparse index space without a given size,
        id maps of the wrong length or with repeated ids.
    TypeError
        Indices that are not real numbers.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> data = Interactions([0, 0, 1, 2], [1, 2, 2, 0], n_items=4)
    >>> data
    Interactions(n_users=3, n_items=4, n_interactions=4)
    >>> data.to_csr().toarray()
    array([[0., 1., 1., 0.],
           [0., 0., 1., 0.],
           [1., 0., 0., 0.]], dtype=float32)
    >>> train, test = data.split_by_user(test_size=0.5, random_state=0)
    >>> len(train), len(test)
    (3, 1)
    """

    truth: Optional["LowRankTruth"] = None

    def __init__(self, users: Any, items: Any, n_users: Optional[int] = None, n_items: Optional[int] = None,
                 timestamps: Any = None, user_ids: Any = None, item_ids: Any = None) -> None:
        users = _index_vector(users, "users")
        items = _index_vector(items, "items")
        if users.shape[0] != items.shape[0]:
            raise ValueError(f"users and items must have the same length; got {users.shape[0]} and {items.shape[0]}")
        self.users = users
        self.items = items
        self.n_users = _size(n_users, users, "n_users", "users")
        self.n_items = _size(n_items, items, "n_items", "items")
        if timestamps is not None:
            ts = _as_array(timestamps, "timestamps")
            if ts.ndim != 1 or ts.shape[0] != users.shape[0]:
                raise ValueError(f"timestamps must be a 1-D array with one time per interaction ({users.shape[0]}); "
                                 f"got shape {ts.shape}")
            if ts.dtype == bool or not (np.issubdtype(ts.dtype, np.integer) or np.issubdtype(ts.dtype, np.floating)):
                raise TypeError(f"timestamps must be numbers; got dtype {ts.dtype}")
            ts = ts.astype(np.float64)
            if not np.isfinite(ts).all():
                raise ValueError("timestamps contains NaN or infinity")
            timestamps = ts
        self.timestamps = timestamps
        self.user_ids = _id_map(user_ids, self.n_users, "user_ids")
        self.item_ids = _id_map(item_ids, self.n_items, "item_ids")

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def __repr__(self) -> str:
        return f"Interactions(n_users={self.n_users}, n_items={self.n_items}, n_interactions={len(self)})"

    @property
    def shape(self) -> tuple:
        """``(n_users, n_items)``, the shape of :meth:`to_csr`."""
        return (self.n_users, self.n_items)

    def to_csr(self, dtype: Any = np.float32) -> sp.csr_matrix:
        """The binary ``n_users x n_items`` matrix (1 where a pair occurs, duplicates collapsed), sorted indices."""
        matrix = sp.csr_matrix((np.ones(len(self), dtype=dtype), (self.users, self.items)),
                               shape=(self.n_users, self.n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1
        matrix.sort_indices()
        return matrix

    # constructors ---------------------------------------------------------------------------------

    @classmethod
    def from_pairs(cls, pairs: Any, n_users: Optional[int] = None, n_items: Optional[int] = None,
                   timestamps: Any = None) -> "Interactions":
        """From an ``(n, 2)`` array-like (or torch tensor) of ``(user, item)`` ids (whole, non-negative
        numbers within int64).

        A column whose size is not given and whose ids are sparse (the largest at least ``2 n + 65536``
        for ``n`` pairs) is remapped: its internal indices follow the sorted distinct ids, which
        ``user_ids``/``item_ids`` keep, so nothing is allocated by the largest id. Otherwise the ids are
        the internal indices themselves (identity maps).
        """
        arr = _as_array(pairs, "pairs")
        if arr.size == 0 and arr.ndim < 2:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"pairs must be an (n, 2) array of (user, item) indices; got shape {arr.shape}")
        arr = _whole_numbers(arr, "pairs")
        columns = []
        for column, size in ((arr[:, 0], n_users), (arr[:, 1], n_items)):
            ids, n = _shared_ids([column]) if size is None else (None, size)
            columns.append((_positions(column, ids), ids, n))
        (users, user_ids, n_users), (items, item_ids, n_items) = columns
        return cls(users, items, n_users=n_users, n_items=n_items, timestamps=timestamps, user_ids=user_ids,
                   item_ids=item_ids)

    @classmethod
    def from_ids(cls, raw_users: Any, raw_items: Any, timestamps: Any = None) -> "Interactions":
        """From original ids of any hashable kind (strings, large integers ...).

        Internal indices follow the sorted distinct ids (the order of first appearance when the ids
        cannot be sorted); ``user_ids``/``item_ids`` map them back.
        """
        from tensorkit.validation import reject_complex

        columns = []
        for name, raw in (("raw_users", raw_users), ("raw_items", raw_items)):
            reject_complex(raw, name)
            arr = _as_array(raw, name) if not isinstance(raw, (list, tuple)) else np.asarray(raw, dtype=object)
            if arr.ndim != 1:
                raise ValueError(f"{name} must be a 1-D sequence of ids; got shape {arr.shape}")
            try:
                codes, uniques = pd.factorize(arr, sort=True)
            except TypeError:
                codes, uniques = pd.factorize(arr, sort=False)
            if (codes < 0).any():
                raise ValueError(f"{name} contains missing ids (None or NaN)")
            uniques = np.asarray(uniques)
            if uniques.dtype == object and len(uniques) and all(
                    isinstance(u, (int, np.integer)) and -_INT64_MAX - 1 <= u <= _INT64_MAX for u in uniques):
                uniques = uniques.astype(np.int64)
            columns.append((codes.astype(np.int64), uniques))
        (users, user_ids), (items, item_ids) = columns
        if users.shape[0] != items.shape[0]:
            raise ValueError(f"raw_users and raw_items must have the same length; "
                             f"got {users.shape[0]} and {items.shape[0]}")
        return cls(users, items, n_users=len(user_ids), n_items=len(item_ids), timestamps=timestamps,
                   user_ids=user_ids, item_ids=item_ids)

    @classmethod
    def from_sparse(cls, matrix: Any) -> "Interactions":
        """From a SciPy sparse ``n_users x n_items`` matrix; every stored nonzero is one interaction."""
        if not sp.issparse(matrix):
            raise TypeError(f"matrix must be a scipy.sparse matrix; got {type(matrix).__name__}")
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2-D (users x items); got shape {matrix.shape}")
        csr = sp.csr_matrix(matrix, copy=True)
        csr.sum_duplicates()
        if csr.data.dtype.kind in "fc" and not np.isfinite(csr.data).all():
            raise ValueError("matrix contains NaN or infinity")
        csr.eliminate_zeros()
        csr.sort_indices()
        users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        return cls(users, csr.indices.astype(np.int64), n_users=csr.shape[0], n_items=csr.shape[1])

    # transformations ------------------------------------------------------------------------------

    def _subset(self, index: np.ndarray) -> "Interactions":
        """The interactions at ``index`` (a mask or positions) with the same sizes and id maps."""
        result = Interactions(self.users[index], self.items[index], self.n_users, self.n_items,
                              None if self.timestamps is None else self.timestamps[index],
                              self.user_ids, self.item_ids)
        result.truth = self.truth
        return result

    def reindex(self, user_ids: Any, item_ids: Any) -> "Interactions":
        """The same interactions under other id maps: internal user ``u`` becomes the user whose id is
        ``user_ids[u]`` (likewise for items), so data read or split apart can be indexed like a model's
        training data.

        Parameters
        ----------
        user_ids, item_ids : array-like
            Distinct ids; every id that ``self`` uses must be among them.

        Returns
        -------
        Interactions
            ``n_users = len(user_ids)``, ``n_items = len(item_ids)``; timestamps kept.

        Raises
        ------
        ValueError
            An id of ``self`` missing from the maps, or maps with repeated ids.
        """
        users = _reindexed(self.users, self.user_ids, _id_map(user_ids, len(user_ids), "user_ids"), "user")
        items = _reindexed(self.items, self.item_ids, _id_map(item_ids, len(item_ids), "item_ids"), "item")
        result = Interactions(users, items, len(user_ids), len(item_ids), self.timestamps, user_ids, item_ids)
        result.truth = self.truth
        return result

    def deduplicate(self) -> "Interactions":
        """Each ``(user, item)`` pair once: the earliest occurrence (by timestamp when there are timestamps,
        else by position), in the original order."""
        codes = self.users * max(self.n_items, 1) + self.items
        if self.timestamps is not None:
            order = np.lexsort((np.arange(len(self)), self.timestamps))
            _, first = np.unique(codes[order], return_index=True)
            keep = np.sort(order[first])
        else:
            _, keep = np.unique(codes, return_index=True)
            keep = np.sort(keep)
        return self._subset(keep)

    def split_by_user(self, test_size: float = 0.2, random_state: Any = None) -> tuple:
        """Per-user random holdout.

        Every user with at least two distinct items gives ``round(test_size * n_u)`` of them (rounded
        half up, at least 1, at most ``n_u - 1``) to the test part and keeps the rest; users with one
        item stay in train. Repeated pairs go to the same side, so the two parts share no pair.

        Parameters
        ----------
        test_size : float in (0, 1), default=0.2
        random_state : None, int or RandomState

        Returns
        -------
        train, test : Interactions
            Same ``n_users``/``n_items`` and id maps as ``self``; together exactly ``self``.
        """
        from sklearn.utils import check_random_state

        test_size = _check_fraction(test_size)
        rng = check_random_state(random_state)
        if len(self) == 0:
            return self._subset(np.zeros(0, dtype=np.int64)), self._subset(np.zeros(0, dtype=np.int64))
        codes = self.users * self.n_items + self.items
        unique, inverse = np.unique(codes, return_inverse=True)
        pair_users = unique // self.n_items
        order = np.lexsort((rng.random_sample(unique.shape[0]), pair_users))
        position, counts = _rank_within_user(pair_users, order, self.n_users)
        to_test = position < _holdout_counts(counts, test_size)[pair_users]
        mask = to_test[inverse.reshape(-1)]
        return self._subset(~mask), self._subset(mask)

    def split_by_time(self, test_size: float = 0.2, per_user: bool = False) -> tuple:
        """Split by time: the latest interactions form the test part.

        Parameters
        ----------
        test_size : float in (0, 1), default=0.2
        per_user : bool, default=False
            False: the globally latest ``round(test_size * n)`` interactions (the ``1 - test_size``
            timestamp quantile) are the test part, so no train interaction is later than a test one.
            True: each user with at least two interactions gives the latest ``round(test_size * n_u)``
            (at least 1, at most ``n_u - 1``) of its own history.

        Returns
        -------
        train, test : Interactions
            Same ``n_users``/``n_items`` and id maps as ``self``; ties in time are broken by position.

        Raises
        ------
        ValueError
            If there are no timestamps.
        """
        if self.timestamps is None:
            raise ValueError("split_by_time needs timestamps and these Interactions have none; "
                             "use split_by_user for a random holdout")
        test_size = _check_fraction(test_size)
        n = len(self)
        mask = np.zeros(n, dtype=bool)
        if per_user:
            order = np.lexsort((np.arange(n), self.timestamps, self.users))
            position, counts = _rank_within_user(self.users, order, self.n_users)
            from_end = counts[self.users] - 1 - position
            mask = from_end < _holdout_counts(counts, test_size)[self.users]
        elif n >= 2:
            n_test = int(np.clip(np.floor(test_size * n + 0.5), 1, n - 1))
            order = np.lexsort((np.arange(n), self.timestamps))
            mask[order[n - n_test:]] = True
        return self._subset(~mask), self._subset(mask)


def _reindexed(indices: np.ndarray, own: np.ndarray, ids: np.ndarray, kind: str) -> np.ndarray:
    """``indices`` into the id map ``own`` as indices into ``ids``, or a ``ValueError`` naming unknown ids."""
    if own.shape == ids.shape and np.array_equal(own, ids):
        return indices
    where = pd.Index(ids).get_indexer(own)
    result = where[indices]
    unknown = np.flatnonzero(result < 0)
    if unknown.size:
        missing = pd.unique(own[indices[unknown]])
        raise ValueError(f"{len(missing)} {kind} id(s) are not among the {kind} ids of the model or data they "
                         f"must match, e.g. {missing[:5].tolist()}")
    return result


def _resized(data: Interactions, n_users: Optional[int], n_items: Optional[int]) -> Interactions:
    """``data`` with ``n_users``/``n_items`` enlarged to the given counts (the same object when unchanged)."""
    sizes = {}
    for name, value, current, ids in (("n_users", n_users, data.n_users, data.user_ids),
                                      ("n_items", n_items, data.n_items, data.item_ids)):
        if value is None or value == current:
            sizes[name] = (current, ids)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an int; got {value!r}")
        if value < current:
            raise ValueError(f"{name}={value} is smaller than the {current} the data already have")
        if not np.array_equal(ids, np.arange(current)):
            raise ValueError(f"cannot enlarge {name} of Interactions that map indices to their own ids")
        sizes[name] = (int(value), np.arange(int(value), dtype=np.int64))
    if sizes["n_users"][0] == data.n_users and sizes["n_items"][0] == data.n_items:
        return data
    result = Interactions(data.users, data.items, sizes["n_users"][0], sizes["n_items"][0], data.timestamps,
                          sizes["n_users"][1], sizes["n_items"][1])
    result.truth = data.truth
    return result


def as_interactions(data: Any, n_users: Optional[int] = None, n_items: Optional[int] = None) -> Interactions:
    """An :class:`Interactions` from the kinds of input the recommenders accept.

    Parameters
    ----------
    data : Interactions, scipy.sparse matrix, torch.Tensor, ndarray or list of pairs
        An :class:`Interactions` is returned as is (or with ``n_users``/``n_items`` enlarged); a
        sparse ``users x items`` matrix (SciPy or torch) gives one interaction per stored nonzero;
        anything else is read as an ``(n, 2)`` array of ``(user, item)`` ids by
        :meth:`Interactions.from_pairs`: the internal indices themselves, or, for a column whose
        ids are sparse, remapped with the ids kept in ``user_ids``/``item_ids``.
    n_users, n_items : int, optional
        At least the number the data need; larger values add users/items without interactions.

    Returns
    -------
    Interactions

    Raises
    ------
    ValueError
        Empty data, negative or fractional ids, ids above int64, a shape other than ``(n, 2)``, or
        ``n_users``/``n_items`` too small for the data.
    TypeError
        Ids that are not numbers (complex numbers included), or a path (use :func:`read_lightgcn` or
        :func:`read_movielens`).

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.data import as_interactions
    >>> data = as_interactions(np.array([[0, 1], [2, 0]]), n_items=5)
    >>> data.n_users, data.n_items, data.items.tolist()
    (3, 5, [1, 0])
    >>> hashed = as_interactions([[0, 10**12], [1, 2]])      # sparse item ids: remapped, kept
    >>> hashed.shape, hashed.items.tolist(), hashed.item_ids.tolist()
    ((2, 2), [1, 0], [2, 1000000000000])
    """
    import torch

    if isinstance(data, Interactions):
        result = _resized(data, n_users, n_items)
    elif sp.issparse(data):
        result = _resized(Interactions.from_sparse(data), n_users, n_items)
    elif isinstance(data, torch.Tensor) and data.layout != torch.strided:
        coo = data.to_sparse_coo().coalesce().cpu() if data.layout != torch.sparse_coo else data.coalesce().cpu()
        if coo.ndim != 2:
            raise ValueError(f"data must be a 2-D users x items matrix; got shape {tuple(coo.shape)}")
        index = coo.indices().numpy()
        matrix = sp.coo_matrix((coo.values().detach().numpy(), (index[0], index[1])), shape=tuple(coo.shape))
        result = _resized(Interactions.from_sparse(matrix), n_users, n_items)
    elif isinstance(data, (str, bytes, os.PathLike)):
        raise TypeError("data must be interactions, a sparse matrix or an (n, 2) array of pairs; got a path "
                        "(read files with read_lightgcn or read_movielens)")
    else:
        result = Interactions.from_pairs(data, n_users=n_users, n_items=n_items)
    if len(result) == 0:
        raise ValueError("data is empty: there are no interactions")
    return result


# ------------------------------------------------------------------------------------------------
# Interaction readers

_NOT_AN_ID = re.compile(rb"[^0-9 \t\n\r\x0b\x0c]")   # anything but ASCII digits and the whitespace split() drops


def _refuse_lightgcn_line(path: Path, number: int, line: bytes) -> None:
    """Raise for a line of a LightGCN file that holds something other than non-negative integer ids."""
    negative = next((t for t in line.split() if re.fullmatch(rb"-[0-9]+", t)), None)
    if negative is not None:
        raise ValueError(f"{path}, line {number}: ids must be non-negative; got the negative value "
                         f"{negative.decode()}")
    raise ValueError(f"{path}, line {number}: expected integer ids 'user item item ...'; "
                     f"got {line[:80].decode(errors='replace')!r}")


def _lightgcn_ids(path: Path, lines: list) -> np.ndarray:
    """Every id of the (digit-only) lines, line by line, with a ``ValueError`` for one above int64."""
    values = []
    for number, line in enumerate(lines, start=1):
        for token in line.split():
            digits = token.lstrip(b"0") or b"0"
            if len(digits) > len(str(_INT64_MAX)) or int(digits) > _INT64_MAX:
                raise ValueError(f"{path}, line {number}: the id {token[:40].decode()}"
                                 f"{'...' if len(token) > 40 else ''} is above the largest id {_INT64_MAX} (int64)")
            values.append(int(digits))
    return np.array(values, dtype=np.int64)


def _parse_lightgcn(path: Path) -> tuple:
    """``(line_users, users, items)`` of a LightGCN file: each line ``user item item ...``.

    Raises a ``ValueError`` naming the file and line for anything but non-negative integer ids within
    int64 (signs, underscores, NUL bytes ... included), and for a file without ids.
    """
    if not path.exists():
        raise FileNotFoundError(f"no LightGCN interaction file at {path}")
    text = path.read_bytes()
    lines = text.split(b"\n")
    bad = _NOT_AN_ID.search(text)
    if bad is not None:
        number = text.count(b"\n", 0, bad.start()) + 1
        _refuse_lightgcn_line(path, number, lines[number - 1])
    tokens = text.split()
    if not tokens:
        raise ValueError(f"{path} holds no ids (an empty file); expected lines 'user item item ...'")
    try:
        values = np.fromiter(map(int, tokens), dtype=np.int64, count=len(tokens))
    except (OverflowError, ValueError):   # an id above int64, or one too long for int()
        values = _lightgcn_ids(path, lines)
    counts = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    line_users = values[starts]
    is_item = np.ones(values.shape[0], dtype=bool)
    is_item[starts] = False
    return line_users, np.repeat(line_users, counts - 1), values[is_item]


def read_lightgcn(path: Any, n_users: Optional[int] = None, n_items: Optional[int] = None) -> Interactions:
    """Read the LightGCN/NGCF text format: each line ``user item1 item2 ...`` of 0-based ids.

    A line with a user and no items is allowed (that user exists but has no interaction here);
    blank lines are skipped. The file is parsed in bulk (Gowalla's 810k interactions in well under a
    second).

    Parameters
    ----------
    path : str or Path
    n_users, n_items : int, optional
        Defaults: one more than the largest user (including users of item-less lines) / item, and
        the ids are the internal indices (identity id maps, as in LightGCN's data sets). Without a
        given size, users or items whose ids are sparse (the largest at least ``2 n + 65536`` for
        ``n`` ids in the file) are remapped instead: internal indices follow the sorted distinct ids,
        which ``user_ids``/``item_ids`` keep, so memory follows the data, never the largest id.

    Returns
    -------
    Interactions
        Without timestamps.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file and line: anything but non-negative integer ids (signs, fractions, letters,
        NUL bytes), an id above int64; also a file without ids, or ``n_users``/``n_items`` too
        small for the ids.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.data import read_lightgcn
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.txt").write_text("0 1 2\\n1 0\\n2\\n")
    >>> data = read_lightgcn(folder / "train.txt")
    >>> data, data.users.tolist(), data.items.tolist()
    (Interactions(n_users=3, n_items=3, n_interactions=3), [0, 0, 1], [1, 2, 0])
    >>> _ = (folder / "hashed.txt").write_text("7 3000000000 12\\n")
    >>> hashed = read_lightgcn(folder / "hashed.txt")
    >>> hashed, hashed.item_ids[hashed.items].tolist()
    (Interactions(n_users=8, n_items=2, n_interactions=2), [3000000000, 12])
    """
    path = Path(path)
    line_users, users, items = _parse_lightgcn(path)
    user_ids = item_ids = None
    if n_users is None:
        user_ids, n_users = _shared_ids([line_users])
    elif isinstance(n_users, (int, np.integer)) and not isinstance(n_users, bool) and n_users <= line_users.max():
        raise ValueError(f"{path} holds the user {int(line_users.max())} but n_users={n_users}")
    if n_items is None:
        item_ids, n_items = _shared_ids([items])
    return Interactions(_positions(users, user_ids), _positions(items, item_ids), n_users=n_users,
                        n_items=n_items, user_ids=user_ids, item_ids=item_ids)


def read_lightgcn_split(folder: Any) -> tuple:
    """``(train, test)`` from ``folder/train.txt`` and ``folder/test.txt`` in the LightGCN format.

    Both parts get the same ``n_users``/``n_items`` and id maps: identity maps sized by the largest
    id over the two files, or, for users or items whose ids are sparse (see :func:`read_lightgcn`),
    the sorted distinct ids of both files.

    Raises
    ------
    FileNotFoundError
        No folder, or a file missing.
    ValueError
        As :func:`read_lightgcn`, naming the file and line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no LightGCN data folder at {folder}")
    parts = [_parse_lightgcn(folder / name) for name in ("train.txt", "test.txt")]
    user_ids, n_users = _shared_ids([p[0] for p in parts])
    item_ids, n_items = _shared_ids([p[2] for p in parts])
    return tuple(Interactions(_positions(p[1], user_ids), _positions(p[2], item_ids), n_users=n_users,
                              n_items=n_items, user_ids=user_ids, item_ids=item_ids) for p in parts)


_MOVIELENS_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


def _text_lines(path: Path) -> list:
    """The lines of a UTF-8 text file (any line ending), or a ``ValueError`` naming the line that is not UTF-8."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        number = raw.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}, line {number}: not UTF-8 text ({error.reason})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _movielens_layout(path: Path, number: int, first: str) -> tuple:
    """``(separator, columns, has_header)`` from the first non-blank line."""
    separator = "::" if "::" in first else "\t"
    cells = [c.strip() for c in first.split(separator)]
    if any(":" in c for c in cells) or cells[0].lower() in ("user_id", "userid", "user"):
        columns = [c.split(":", 1)[0].strip() for c in cells]
        for column in ("user_id", "item_id"):
            if column not in columns:
                raise ValueError(f"{path} has no {column!r} column; columns are {columns}")
        return separator, columns, True
    if not 2 <= len(cells) <= 4:
        raise ValueError(f"{path}, line {number}: expected 'user item [rating [timestamp]]' rows; "
                         f"got {len(cells)} fields")
    return separator, list(_MOVIELENS_COLUMNS[:len(cells)]), False


def _movielens_ids(path: Path, lines: np.ndarray, column: pd.Series, name: str) -> np.ndarray:
    """One id column: int64 when every id is an integer within int64, else the text as written."""
    text = column.str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if empty.size:
        raise ValueError(f"{path}, line {lines[empty[0]]}: {name} is empty")
    whole = pd.to_numeric(text, errors="coerce")
    if whole.dtype == np.int64:
        return whole.to_numpy()
    return text.to_numpy(dtype=object)


def _movielens_numbers(path: Path, lines: np.ndarray, column: pd.Series, name: str) -> np.ndarray:
    """A rating or timestamp column as float64, or a ``ValueError`` naming the first line that is not a
    finite number."""
    parsed = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(parsed))
    if bad.size:
        raise ValueError(f"{path}, line {lines[bad[0]]}: {name} must be a finite number; "
                         f"got {column.iloc[bad[0]]!r}")
    return parsed


def read_movielens(path: Any, min_rating: Optional[float] = None) -> Interactions:
    """MovieLens ratings as implicit feedback.

    Parameters
    ----------
    path : str or Path
        ``u.data`` (tab separated ``user item rating timestamp``, no header), ML-1M's ``ratings.dat``
        (``::`` separated), a RecBole atomic ``.inter`` file (header ``user_id:token item_id:token
        rating:float timestamp:float``), or a folder holding one of them. The layout is detected
        from the first non-blank line; blank lines are skipped and fields are stripped of spaces.
    min_rating : float, optional
        Keep only ratings ``>= min_rating`` (e.g. 4 for "liked"); all ratings by default.

    Returns
    -------
    Interactions
        Internal indices follow the sorted raw ids (which ``user_ids``/``item_ids`` keep: int64 when
        every id of the column is an integer within int64, else the text as written); only users and
        items left after the rating filter are indexed; timestamps kept when present.

    Raises
    ------
    FileNotFoundError
        No file (or no ratings file in the folder).
    ValueError
        An empty file, a header without ``user_id``/``item_id``, ``min_rating`` that is not a finite
        number or without a rating column, and, naming the file and line, a row with another number of
        fields than the first, an empty id, a rating or timestamp that is not a finite number, or text
        that is not UTF-8.
    """
    path = Path(path)
    if path.is_dir():
        found = [path / "u.data", path / "ratings.dat"] + sorted(path.glob("*.inter"))
        found = [f for f in found if f.exists()]
        if not found:
            raise FileNotFoundError(f"no MovieLens ratings (u.data, ratings.dat or *.inter) in {path}")
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"no MovieLens ratings at {path}")
    if min_rating is not None and (isinstance(min_rating, bool) or not isinstance(min_rating, numbers.Real)
                                   or not np.isfinite(min_rating)):
        raise ValueError(f"min_rating must be a finite number; got {min_rating!r}")
    rows = [(number, line) for number, line in enumerate(_text_lines(path), start=1) if line.strip()]
    if not rows:
        raise ValueError(f"{path} is empty; expected MovieLens ratings")
    separator, columns, has_header = _movielens_layout(path, *rows[0])
    rows = rows[1:] if has_header else rows
    if min_rating is not None and "rating" not in columns:
        raise ValueError(f"min_rating needs a rating column and {path} has none")
    for number, line in rows:
        if line.count(separator) != len(columns) - 1:
            raise ValueError(f"{path}, line {number}: expected {len(columns)} fields ({', '.join(columns)}); "
                             f"got {len(line.split(separator))}")
    lines = np.array([number for number, _ in rows], dtype=np.int64)
    frame = pd.read_csv(io.StringIO("\n".join(line for _, line in rows)), sep=separator, header=None,
                        names=columns, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
                        skip_blank_lines=False, engine="python" if separator == "::" else "c") if rows \
        else pd.DataFrame({c: pd.Series([], dtype=str) for c in columns})
    users = _movielens_ids(path, lines, frame["user_id"], "user_id")
    items = _movielens_ids(path, lines, frame["item_id"], "item_id")
    parsed = {c: _movielens_numbers(path, lines, frame[c], c) for c in ("rating", "timestamp") if c in columns}
    keep = slice(None) if min_rating is None else parsed["rating"] >= float(min_rating)
    timestamps = parsed["timestamp"][keep] if "timestamp" in parsed else None
    return Interactions.from_ids(users[keep], items[keep], timestamps=timestamps)


# ------------------------------------------------------------------------------------------------
# Synthetic implicit feedback

class LowRankTruth(NamedTuple):
    """The planted preferences behind :func:`make_low_rank_interactions`.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, rank)
    item_factors : ndarray of shape (n_items, rank)
        The sampling logits are exactly ``user_factors @ item_factors.T`` (temperature folded in;
        the first factor also carries the item popularity): each user drew its items from
        ``softmax`` of its row without replacement. ``U, V = truth`` unpacks them.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray

    def scores(self, users: Any = None) -> np.ndarray:
        """The true logits ``U[users] @ V.T`` (all users by default)."""
        u = self.user_factors if users is None else self.user_factors[np.asarray(users)]
        return u @ self.item_factors.T


def make_low_rank_interactions(n_users: int = 500, n_items: int = 400, rank: int = 8, interactions_per_user: int = 20,
                               temperature: float = 0.25, popularity: float = 0.5,
                               random_state: Any = None) -> Interactions:
    """Synthetic implicit feedback with planted low-rank preferences.

    User and item factors ``U`` (``n_users x rank``) and ``V`` (``n_items x rank``) are standard
    Gaussian, except that the users' first factor has mean ``popularity``. The affinity is
    ``A = U V^T / sqrt(rank)`` (unit variance per pair; the shifted first factor adds the item bias
    ``popularity * V[:, 0] / sqrt(rank)``, a mild popularity effect shared by all users) and each user
    draws ``interactions_per_user`` distinct items with probabilities ``softmax(A[u] / temperature)``
    without replacement (the Gumbel-top-k trick). The defaults make the structure strongly learnable: on a per-user 80/20
    split, a rank-8 truncated SVD of the train matrix reaches a held-out Recall@20 of about 0.5, about
    three times that of recommending the most popular items (about 0.17); the true logits reach about 0.85.

    Parameters
    ----------
    n_users, n_items : int, default=500, 400
    rank : int, default=8
    interactions_per_user : int, default=20
        At most ``n_items``.
    temperature : float, default=0.25
        Smaller is more concentrated (more learnable).
    popularity : float, default=0.5
        Mean of the users' first factor (0: no popularity effect).
    random_state : None, int or RandomState

    Returns
    -------
    Interactions
        Sorted by user then item, with uniform random timestamps in ``[0, 1e6)`` (carrying no signal;
        they let time splits be exercised) and the attribute ``truth``, a :class:`LowRankTruth`
        ``(U, V)`` scaled so that the sampling logits are exactly ``U @ V.T``.

    Examples
    --------
    >>> from recsys.data import make_low_rank_interactions
    >>> data = make_low_rank_interactions(n_users=50, n_items=40, rank=4, interactions_per_user=5, random_state=0)
    >>> data, data.truth.user_factors.shape, data.truth.item_factors.shape
    (Interactions(n_users=50, n_items=40, n_interactions=250), (50, 4), (40, 4))
    """
    from sklearn.utils import check_random_state

    for name, value in (("n_users", n_users), ("n_items", n_items), ("rank", rank),
                        ("interactions_per_user", interactions_per_user)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if interactions_per_user > n_items:
        raise ValueError(f"interactions_per_user={interactions_per_user} is larger than n_items={n_items}")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number; got {temperature!r}")
    if not np.isfinite(popularity) or popularity < 0:
        raise ValueError(f"popularity must be a non-negative number; got {popularity!r}")
    rng = check_random_state(random_state)
    user_factors = rng.standard_normal((n_users, rank))
    user_factors[:, 0] += popularity
    item_factors = rng.standard_normal((n_items, rank))
    scale = 1.0 / np.sqrt(np.sqrt(rank) * temperature)
    user_factors *= scale
    item_factors *= scale
    k = int(interactions_per_user)
    chosen = np.empty((n_users, k), dtype=np.int64)
    batch = max(1, 2_000_000 // n_items)
    for start in range(0, n_users, batch):
        logits = user_factors[start:start + batch] @ item_factors.T
        keys = logits + rng.gumbel(size=logits.shape)
        if k < n_items:
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(n_items), (len(keys), 1))
        chosen[start:start + batch] = np.sort(top, axis=1)
    users = np.repeat(np.arange(n_users, dtype=np.int64), k)
    result = Interactions(users, chosen.reshape(-1), n_users=n_users, n_items=n_items,
                          timestamps=rng.uniform(0.0, 1e6, size=n_users * k))
    result.truth = LowRankTruth(user_factors, item_factors)
    return result
