"""CTR data: the Criteo and Avazu formats and MovieLens as click-through data.

- :func:`iter_criteo` / :func:`read_criteo`: the Criteo display-advertising format (label, 13 integer
  fields I1-I13, 26 hashed categorical fields C1-C26, tab separated, empty = missing), streamed in
  chunks; also reads the comma-separated samples with a header line that DeepCTR ships.
- :func:`iter_avazu` / :func:`read_avazu`: the Avazu format (CSV with a header: ``id``, ``click``
  and 22 categorical fields), the ids kept as text.
- :func:`write_criteo`: the inverse, for round trips and for handing synthetic data to other tools.
- :func:`load_movielens_ctr`: MovieLens ratings as a CTR task (label = rating >= 4) from RecBole's
  atomic files (``ml-100k.inter`` with ``.user`` and ``.item`` beside it).

Every reader names the file and line of a row it cannot read exactly, rather than pad, guess or
drop a field, and reads gzip-compressed files as they are; :func:`write_criteo` refuses a frame that
:func:`read_criteo` would not read back. :mod:`recsys.ctr.sources` streams several files in chunks.
A synthetic Criteo-like log comes from :func:`recsys.datasets.make_criteo_like`.

Examples
--------
>>> import tempfile, pathlib
>>> from recsys.ctr.data import CRITEO_COLUMNS, read_criteo, write_criteo
>>> from recsys.datasets import make_criteo_like
>>> path = pathlib.Path(tempfile.mkdtemp()) / "day_0.txt"
>>> write_criteo(make_criteo_like(n_samples=3, random_state=0), path)
>>> read_criteo(path).shape == (3, len(CRITEO_COLUMNS))
True
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pandas as pd

from recsys.ctr._text_blocks import (check_field_counts, decoded, first_bad, head_bytes, line_blocks,
                                     read_exactly, separator_name)
from tensorkit.base import integers, validate_params
from tensorkit.utils import replaced_atomically

__all__ = [
    "AVAZU_CATEGORICAL",
    "AVAZU_COLUMNS",
    "CRITEO_CATEGORICAL",
    "CRITEO_COLUMNS",
    "CRITEO_DENSE",
    "iter_avazu",
    "iter_criteo",
    "load_movielens_ctr",
    "read_avazu",
    "read_criteo",
    "write_criteo",
]

# ------------------------------------------------------------------------------------------------
# The Criteo format

CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label",) + CRITEO_DENSE + CRITEO_CATEGORICAL
_CRITEO_FIELDS = "(label, I1-I13, C1-C26)"
_WRITE_BLOCK = 65_536   # rows formatted and written at a time by write_criteo


def _criteo_layout(path: Path) -> tuple:
    """``(separator, has_header)`` from the first line (of the decompressed text for a gzip file)."""
    head = head_bytes(path)
    if not head:
        raise ValueError(f"{path} is empty; expected Criteo rows {_CRITEO_FIELDS}")
    first = head[0].decode("utf-8", errors="replace").rstrip("\r\n")
    separator = "\t" if "\t" in first else ","
    cells = first.split(separator)
    if len(cells) != len(CRITEO_COLUMNS):
        raise ValueError(f"{path}, line 1: a Criteo row has {len(CRITEO_COLUMNS)} {separator_name(separator)}"
                         f"-separated fields {_CRITEO_FIELDS}; got {len(cells)}")
    has_header = cells[0].strip().lower() == "label"
    if has_header and [c.strip() for c in cells] != list(CRITEO_COLUMNS):
        raise ValueError(f"{path}: header must be {','.join(CRITEO_COLUMNS[:3])},...,C26; got {first[:80]!r}")
    return separator, has_header


def _read_block(text: str, separator: str, numbers: bool) -> pd.DataFrame:
    """Parse checked Criteo rows; the label and dense fields as float64 with ``numbers``, else all as text."""
    dtype = {**{c: "float64" for c in ("label",) + CRITEO_DENSE}, **{c: "str" for c in CRITEO_CATEGORICAL}} \
        if numbers else str
    return read_exactly(text, dtype, ("label",) + CRITEO_DENSE if numbers else (), sep=separator, header=None,
                        names=list(CRITEO_COLUMNS), quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""],
                        skip_blank_lines=False)


def _strict_block(path: Path, first: int, text: str, separator: str) -> pd.DataFrame:
    """Checked Criteo rows read as text, then the label and dense fields converted one by one, raising for
    the first label that is not 0/1 or dense value that is not a finite number."""
    chunk = _read_block(text, separator, numbers=False)
    labels = pd.to_numeric(chunk["label"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    first_bad(path, first, chunk, ["label"], ~np.isin(labels, (0.0, 1.0))[:, None], "0 or 1")
    dense = np.column_stack([pd.to_numeric(chunk[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                             for c in CRITEO_DENSE])
    given = chunk[list(CRITEO_DENSE)].notna().to_numpy()
    first_bad(path, first, chunk, CRITEO_DENSE, given & ~np.isfinite(dense), "a finite number or empty")
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
    check_field_counts(path, first, lines, separator, len(CRITEO_COLUMNS), "a Criteo row", f" {_CRITEO_FIELDS}")
    text = decoded(path, first, lines)
    if not _holds_boolean_word(text):
        with contextlib.suppress(ValueError):   # a field that is not a number: the strict reading finds it
            chunk = _read_block(text, separator, numbers=True)
            if chunk["label"].isin((0.0, 1.0)).all() and not np.isinf(chunk[list(CRITEO_DENSE)].to_numpy()).any():
                chunk["label"] = chunk["label"].to_numpy().astype(np.int64)
                return chunk
    return _strict_block(path, first, text, separator)


@validate_params({"chunksize": [integers(1)], "nrows": [integers(0), None]})
def iter_criteo(path: Any, chunksize: int = 100_000, nrows: Optional[int] = None) -> Iterator[pd.DataFrame]:
    """Stream a Criteo-format file as DataFrames of at most ``chunksize`` rows.

    Parameters
    ----------
    path : str or Path
        Raw Criteo (``train.txt``/``dac_sample.txt``: tab separated, no header) or a comma-separated file
        whose header is ``label,I1,...,I13,C1,...,C26``, plain or gzip-compressed (recognised by its
        first bytes, whatever its suffix). Fields are taken as written: quotes are ordinary characters.
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
        than 0/1, a dense value that is not a finite number, or text that is not UTF-8; a damaged
        gzip file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no Criteo file at {path}")
    separator, has_header = _criteo_layout(path)
    for _, first, lines, _ in line_blocks(path, int(has_header), int(chunksize),
                                          None if nrows is None else int(nrows)):
        chunk = _parse_criteo_block(path, first, lines, separator)
        chunk.index = pd.RangeIndex(first - 1 - int(has_header), first - 1 - int(has_header) + len(chunk))
        yield chunk


@validate_params({"nrows": [integers(0), None]})
def read_criteo(path: Any, nrows: Optional[int] = None) -> pd.DataFrame:
    """The whole file (or its first ``nrows`` rows) as one DataFrame; see :func:`iter_criteo` (also for
    the errors)."""
    chunks = list(iter_criteo(path, nrows=nrows))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(CRITEO_COLUMNS))


# ------------------------------------------------------------------------------------------------
# The Avazu format

AVAZU_COLUMNS = ("id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
                 "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
                 "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21")
AVAZU_CATEGORICAL = AVAZU_COLUMNS[2:]


def _check_avazu_header(path: Path) -> None:
    """The first line must be Avazu's header (the training files' 24 columns, ``click`` included)."""
    head = head_bytes(path)
    if not head:
        raise ValueError(f"{path} is empty; expected the Avazu header {','.join(AVAZU_COLUMNS[:3])},...,C21")
    first = head[0].decode("utf-8", errors="replace").rstrip("\r\n")
    if first.split(",") != list(AVAZU_COLUMNS):
        raise ValueError(f"{path}, line 1: the Avazu header is {','.join(AVAZU_COLUMNS)}; got {first[:120]!r}")


def _parse_avazu_block(path: Path, first: int, lines: list) -> pd.DataFrame:
    """One block of Avazu rows: ``click`` int64, every other field as text (empty = missing), or a
    ``ValueError`` naming the bad line."""
    check_field_counts(path, first, lines, ",", len(AVAZU_COLUMNS), "an Avazu row", " (id, click, hour, ..., C21)")
    text = decoded(path, first, lines)
    chunk = read_exactly(text, str, sep=",", header=None, names=list(AVAZU_COLUMNS), quoting=csv.QUOTE_NONE,
                         keep_default_na=False, na_values=[""], skip_blank_lines=False)
    clicks = chunk["click"].to_numpy(dtype=object)
    first_bad(path, first, chunk, ["click"], ~np.isin(clicks, ("0", "1"))[:, None], "0 or 1")
    chunk["click"] = (clicks == "1").astype(np.int64)
    return chunk


@validate_params({"chunksize": [integers(1)], "nrows": [integers(0), None]})
def iter_avazu(path: Any, chunksize: int = 100_000, nrows: Optional[int] = None) -> Iterator[pd.DataFrame]:
    """Stream an Avazu-format file (Kaggle's ``train``: CSV with a header) as DataFrames of at most
    ``chunksize`` rows.

    Parameters
    ----------
    path : str or Path
        Comma separated with the header ``id,click,hour,C1,banner_pos,site_id,...,C21`` (24 columns),
        plain or gzip-compressed (recognised by its first bytes). Fields are taken as written.
    chunksize : int, default=100_000
    nrows : int, optional
        Stop after this many rows (0: none).

    Yields
    ------
    DataFrame
        The 24 columns: ``click`` (int64, 0/1) and every other field as text, missing (empty) as NaN;
        the ids (``id``, ``site_id``, ..., hashed 64-bit numbers) stay text, never floats.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        An empty file or another header; and, naming the file and line, a row with more or fewer than
        24 fields, a click other than the text ``0``/``1``, or text that is not UTF-8; a damaged gzip file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.ctr.data import AVAZU_COLUMNS, read_avazu
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.csv"
    >>> row = ["10000169349117863715", "1", "14102100"] + ["x"] * 21
    >>> _ = path.write_text(",".join(AVAZU_COLUMNS) + "\\n" + ",".join(row) + "\\n")
    >>> frame = read_avazu(path)
    >>> frame["id"].tolist(), frame["click"].tolist()
    (['10000169349117863715'], [1])
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no Avazu file at {path}")
    _check_avazu_header(path)
    for _, first, lines, _ in line_blocks(path, 1, int(chunksize), None if nrows is None else int(nrows)):
        chunk = _parse_avazu_block(path, first, lines)
        chunk.index = pd.RangeIndex(first - 2, first - 2 + len(chunk))
        yield chunk


@validate_params({"nrows": [integers(0), None]})
def read_avazu(path: Any, nrows: Optional[int] = None) -> pd.DataFrame:
    """The whole Avazu file (or its first ``nrows`` rows) as one DataFrame; see :func:`iter_avazu`
    (also for the errors)."""
    chunks = list(iter_avazu(path, nrows=nrows))
    if chunks:
        return pd.concat(chunks, ignore_index=True)
    return pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "click" else str) for c in AVAZU_COLUMNS})


# ------------------------------------------------------------------------------------------------
# Writing Criteo files

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
    (see :func:`tensorkit.utils.replaced_atomically`)."""
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
    >>> from recsys.ctr.data import read_criteo, write_criteo
    >>> from recsys.datasets import make_criteo_like
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


# ------------------------------------------------------------------------------------------------
# MovieLens as click-through data

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
