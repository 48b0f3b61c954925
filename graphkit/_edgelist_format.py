"""The text of edge-list files: compression, fields, delimiter, header and integer ids.

Pure functions on bytes and strings, used by :func:`graphkit.io.read_edgelist` to find how a
file is laid out before pandas reads it; they raise nothing of their own.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import re
from typing import Any

import numpy as np

OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open, None: open}
_MAGIC_NUMBERS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_DELIMITER_CANDIDATES = (",", "\t", ";")
COLUMN_NAMES = frozenset({
    "source", "target", "src", "dst", "from", "to", "u", "v", "i", "j", "node1", "node2",
    "node_1", "node_2", "source_id", "target_id", "head", "tail", "weight", "weights", "w",
    "value", "time", "timestamp", "label", "sign", "user", "item", "rating",
})
WEIGHT_NAMES = frozenset({"weight", "weights", "w", "wt", "value", "strength", "score"})
# Header names of a third column that is something other than a weight.
NOT_WEIGHT_NAME = re.compile(
    r"time|date|epoch|year|month|day|label|class|categor|type|kind|index|"
    r"^(t|ts|unixts|id|idx|edge|edge_id|eid)$|_id$"
)
# Integer ids as written by a program: no sign other than "-", no leading zeros.
CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
BLANK_CHARACTERS = " \t"
_BLANKS = re.compile("[ \t]+")
FIELD_BREAKS = b" \t\r\n,;\"\x0b\x0c"


def read_bytes(stream: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a binary or text stream (text is encoded as UTF-8)."""
    chunk = stream.read(size)
    return chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def compression_of_bytes(start: bytes) -> str | None:
    """The compression of data starting with ``start``: "gzip", "bz2", "xz" or None (plain)."""
    return next((kind for magic, kind in _MAGIC_NUMBERS if start.startswith(magic)), None)


def compression_of(path: str) -> str | None:
    with open(path, "rb") as handle:
        return compression_of_bytes(handle.read(8))


def split(content: str, delimiter: str | None) -> list[str]:
    """The fields of a line as pandas' C parser finds them, quotes included (its whitespace is
    spaces and tabs only)."""
    if delimiter is None:
        spaced = _BLANKS.sub(" ", content.strip(BLANK_CHARACTERS))
        if '"' not in spaced:
            return spaced.split(" ")
        return [field for field in next(csv.reader([spaced], delimiter=" ")) if field]
    if '"' not in content:
        return [field.strip(BLANK_CHARACTERS) for field in content.split(delimiter)]
    return [field.strip(BLANK_CHARACTERS) for field in next(csv.reader(
        [content], delimiter=delimiter, skipinitialspace=True))]


def detect_delimiter(contents: list[str]) -> str | None:
    """The first candidate splitting most sample lines in two or more; None: whitespace."""
    for candidate in _DELIMITER_CANDIDATES:
        n_split = sum(len(split(content, candidate)) >= 2 for content in contents)
        if 2 * n_split > len(contents):
            if candidate == "\t" and not _fields_hold_spaces(contents, "\t"):
                return None  # same fields, and whitespace mode also forgives stray spaces
            return candidate
    return None


def _fields_hold_spaces(contents: list[str], delimiter: str) -> bool:
    return any(" " in field for content in contents for field in split(content, delimiter))


def looks_like_header(rows: list[tuple[int, list[str]]]) -> bool:
    """Whether the first row cannot be an edge of the shape of the rows that follow it."""
    first = rows[0][1]
    known = [field.lower() in COLUMN_NAMES for field in first]
    if all(known):
        return True
    following = [fields for _, fields in rows[1:]]
    if not following:
        return False
    odd = [_differs_from_column(field, column, following) for column, field in enumerate(first)]
    if all(name or different for name, different in zip(known, odd)):
        return True
    return any(name and different for name, different in list(zip(known, odd))[2:])


def _differs_from_column(field: str, column: int, following: list[list[str]]) -> bool:
    """Whether ``field`` is of another kind than the column below it (ids: integers;
    other columns: numbers)."""
    values = [fields[column] for fields in following if len(fields) > column]
    if len(values) < len(following):
        return False
    kind = is_integer if column < 2 else _is_number
    return not kind(field) and all(kind(value) for value in values)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def is_integer(token: str) -> bool:
    """Whether ``token`` is an integer id written plainly, so that reading it as one keeps it."""
    return CANONICAL_INTEGER.fullmatch(token) is not None


def padded_integer_starts(data: np.ndarray, breaks: bytes) -> bool:
    """Whether a field of ``data`` (checked at positions 1 .. len - 3) starts like a padded
    integer."""
    is_break_byte = np.zeros(256, dtype=bool)
    is_break_byte[np.frombuffer(breaks, np.uint8)] = True
    is_break = is_break_byte[data]
    is_digit = (data >= ord("0")) & (data <= ord("9"))
    here, after, second = data[1:-2], slice(2, -1), slice(3, None)
    padded = (here == ord("+")) | ((here == ord("0")) & is_digit[after]) | (
        (here == ord("-")) & (data[after] == ord("0")) & (is_digit[second] | is_break[second]))
    return bool(np.any(padded & is_break[:-3]))


def weight_problem(token: Any) -> str:
    if isinstance(token, np.generic):
        token = token.item()
    shown = repr(token) if isinstance(token, str) else str(token)
    try:
        value = float(token)
    except (TypeError, ValueError):
        return (f"weight {shown} is not a number (pass weighted=False to ignore the weight "
                "column)")
    if not np.isfinite(value):
        return f"weight {shown} is not finite"
    return f"weight {shown} is negative"
