"""Raw line blocks of delimited text files (plain or gzip-compressed), shared by the CTR readers.

The readers check every block of raw lines before pandas parses it (field counts, carriage
returns, UTF-8), so a bad row is named by its file and line; the streamed sources skip the blocks a
process does not own without parsing them (:func:`line_blocks` with ``keep``).
"""

from __future__ import annotations

import gzip
import io
import itertools
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

GZIP_MAGIC = b"\x1f\x8b"
_COUNT_BUFFER = 1 << 20   # bytes read at a time when counting lines


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes (whatever its suffix)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is gzip-compressed."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


class _ReadError(ValueError):
    pass


def _unreadable(path: Path, error: BaseException) -> ValueError:
    return _ReadError(f"{path}: not a readable gzip file ({type(error).__name__}: {error})")


_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def head_bytes(path: Path, n_lines: int = 1) -> list:
    """The first ``n_lines`` raw lines (fewer at the end of the file), decompressed."""
    try:
        with open_binary(path) as handle:
            return list(itertools.islice(handle, n_lines))
    except _GZIP_ERRORS as error:
        raise _unreadable(path, error) from None


class LineBlock(NamedTuple):
    """``count`` raw lines from line ``first`` (1-based); ``lines`` is None for a block not kept."""

    index: int
    first: int
    lines: Optional[list]
    count: int


def line_blocks(path: Path, skip: int, size: int, limit: Optional[int] = None,
                keep: Optional[Callable[[int], bool]] = None) -> Iterator[LineBlock]:
    """Blocks of at most ``size`` raw lines after ``skip`` lines, ``limit`` lines in all (None: to the end).

    Blocks are numbered 0, 1, ... in the file; those for which ``keep(index)`` is false are only
    counted (their lines are read past, never kept or parsed).
    """
    try:
        with open_binary(path) as handle:
            for _ in range(skip):
                handle.readline()
            number, left = skip + 1, limit
            for index in itertools.count():
                want = size if left is None else min(size, left)
                if want <= 0:
                    return
                if keep is None or keep(index):
                    lines = list(itertools.islice(handle, want))
                    count = len(lines)
                else:
                    lines, count = None, sum(1 for _ in itertools.islice(handle, want))
                if not count:
                    return
                yield LineBlock(index, number, lines, count)
                number += count
                left = None if left is None else left - count
    except _GZIP_ERRORS as error:
        raise _unreadable(path, error) from None


def count_lines(path: Path) -> int:
    """The number of lines (a last line without a newline counts), without parsing them."""
    n, last = 0, b"\n"
    try:
        with open_binary(path) as handle:
            while True:
                buffer = handle.read(_COUNT_BUFFER)
                if not buffer:
                    break
                n += buffer.count(b"\n")
                last = buffer[-1:]
    except _GZIP_ERRORS as error:
        raise _unreadable(path, error) from None
    return n + (last != b"\n")


def separator_name(separator: str) -> str:
    return "tab" if separator == "\t" else "comma"


# pandas 3 parses floats exactly by default and deprecates the option
_ROUND_TRIP = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def read_exactly(text: str, dtype: Any, numeric: Sequence[str] = (), **options: Any) -> pd.DataFrame:
    """``pd.read_csv`` of ``text`` that gives back every field exactly under every supported pandas.

    pandas 2's C parser reads some floats one ulp off unless asked for round-trip parsing, and ends a
    field at a NUL character; text holding one is read as strings by the Python parser instead, and
    the ``numeric`` columns converted by Python's correctly rounded ``float``.
    """
    if "\x00" not in text:
        return pd.read_csv(io.StringIO(text), dtype=dtype, engine="c", **_ROUND_TRIP, **options)
    frame = pd.read_csv(io.StringIO(text), dtype=str, engine="python", **options)
    for column in numeric:
        frame[column] = frame[column].to_numpy(dtype=object).astype(np.float64)
    return frame


def decoded(path: Path, first: int, lines: list) -> str:
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


def check_field_counts(path: Path, first: int, lines: list, separator: str, n_fields: int, what: str,
                       fields: str = "") -> None:
    """Every line holds exactly ``n_fields`` fields (and no carriage return but at its end).

    The separators of every line are counted at once over the block's bytes (each line ends at its
    newline, so none is empty). ``what`` names a row in the error (``"a Criteo row"``), ``fields`` lists
    the fields after their count (``" (label, I1-I13, C1-C26)"``).
    """
    block = np.frombuffer(b"".join(lines), dtype=np.uint8)
    starts = np.cumsum([0] + [len(line) for line in lines[:-1]])
    counts = np.add.reduceat(block == ord(separator), starts, dtype=np.int64) + 1
    bad = np.flatnonzero(counts != n_fields)
    if bad.size:
        raise ValueError(f"{path}, line {first + int(bad[0])}: {what} has {n_fields} {separator_name(separator)}"
                         f"-separated fields{fields}; got {int(counts[bad[0]])}")
    if (block == ord("\r")).any():
        for offset, line in enumerate(lines):
            if b"\r" in line.rstrip(b"\r\n"):
                raise ValueError(f"{path}, line {first + offset}: a carriage return inside a row")


def first_bad(path: Path, first: int, chunk: pd.DataFrame, columns: Any, bad: np.ndarray, expected: str) -> None:
    """Raise for the earliest row flagged in ``bad`` (rows x columns), naming its line, column and value."""
    rows, cols = np.nonzero(bad)
    if not rows.size:
        return
    pick = int(np.lexsort((cols, rows))[0])
    row, column = int(rows[pick]), columns[int(cols[pick])]
    value = chunk[column].iloc[row]
    shown = "an empty field" if pd.isna(value) else repr(value)
    raise ValueError(f"{path}, line {first + row}: {column} must be {expected}; got {shown}")
