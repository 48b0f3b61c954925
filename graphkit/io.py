"""Reading graphs from edge-list files.

An edge list has one edge per line: a source id, a target id and, optionally, a weight,
separated by runs of whitespace, commas, tabs or semicolons. :func:`read_edgelist` detects the
delimiter and a header line, reads the file with pandas' C parser (no Python loop per line) and
builds a :class:`~graphkit.graph.Graph` through :meth:`Graph.from_edges`. Bad input raises
:class:`EdgeListError`, whose message names the file and, where there is one, the line.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "edges.csv")
>>> with open(path, "w") as handle:
...     _ = handle.write("source,target,weight\\n1,2,0.5\\n2,3,2.0\\n")
>>> read_edgelist(path)
Graph(n_nodes=3, n_edges=2, directed=False, weighted=True)
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from dataclasses import dataclass
from itertools import islice
from typing import Any, Iterator

import numpy as np
import pandas as pd

from graphkit.graph import (
    DUPLICATE_POLICIES,
    SELF_LOOP_POLICIES,
    Graph,
    _check_choice,
    _EdgeInputError,
)

__all__ = ["EdgeListError", "EdgeListNotFoundError", "read_edgelist"]

_COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open, None: open}
_DELIMITER_CANDIDATES = (",", "\t", ";")
_WHITESPACE_SPELLINGS = (" ", r"\s+")
_SNIFF_LINE_COUNT = 50
_COLUMN_NAMES = frozenset({
    "source", "target", "src", "dst", "from", "to", "u", "v", "i", "j", "node1", "node2",
    "node_1", "node_2", "source_id", "target_id", "head", "tail", "weight", "weights", "w",
    "value", "time", "timestamp", "label", "sign", "user", "item", "rating",
})


class EdgeListError(ValueError):
    """Bad edge-list input; the message names the file and (where there is one) the line."""


class EdgeListNotFoundError(EdgeListError, FileNotFoundError):
    """The edge-list file does not exist; both an :class:`EdgeListError` and a
    :class:`FileNotFoundError`."""


@dataclass(frozen=True)
class _Layout:
    """How an edge-list file is laid out, as found from its first lines."""

    path: str
    compression: str | None
    comments: str | None
    delimiter: str | None  # None: runs of whitespace
    header_line: int | None  # 1-based line number of the header, if there is one
    n_fields: int  # fields on the first edge line
    first_edge_line: int
    sample: tuple[tuple[str, ...], ...]  # fields of the first edge lines

    def split(self, content: str) -> list[str]:
        return _split(content, self.delimiter)

    def error(self, problem: str, line: int | None = None) -> EdgeListError:
        where = self.path if line is None else f"{self.path}, line {line}"
        return EdgeListError(f"{where}: {problem}")


def read_edgelist(path: str | os.PathLike, directed: bool = False, weighted: bool | None = None,
                  delimiter: str | None = None, comments: str | None = "#",
                  header: bool | str = "infer", self_loops: str = "keep",
                  duplicates: str = "max", node_type: type | None = None) -> Graph:
    """Read a graph from an edge-list file: ``source target [weight]`` on each line.

    Parameters
    ----------
    path : str or os.PathLike
        Files ending in ``.gz``, ``.bz2`` or ``.xz`` are decompressed. Text must be UTF-8.
    directed : bool, default=False
    weighted : bool, optional
        None: the third field of each line is the weight when lines have three or more fields.
        True: a third field is required. False: only the first two fields are read, and every
        edge weighs 1.
    delimiter : str, optional
        None detects it from the first lines: a comma, tab or semicolon when one splits them,
        else runs of whitespace (also what ``" "`` means). Otherwise a single character.
    comments : str or None, default="#"
        A single character starting a comment, on its own line or after an edge; None: no
        comments. Blank lines are skipped.
    header : {"infer", True, False}, default="infer"
        Whether the first non-comment line names the columns. "infer" says yes when every
        field is a common column name (source, target, src, dst, from, to, u, v, node1,
        node2, weight, ...), or when a column is non-numeric on the first line but numeric on
        the lines that follow.
    self_loops : {"keep", "drop"}, default="keep"
    duplicates : {"max", "sum", "error"}, default="max"
        How repeated edges combine; see :meth:`Graph.from_edges`. For an undirected graph
        ``u v`` and ``v u`` are the same edge.
    node_type : {None, int, str}, optional
        None: integer ids when every id parses as an integer, else strings (kept exactly as
        written, e.g. ``"007"``). ``int`` requires integers; ``str`` always keeps strings.

    Returns
    -------
    Graph
        Node ids are sorted. ``weighted`` is True when a weight column was read. Edges of
        weight 0 are dropped, but their end nodes are kept, like nodes whose only edges are
        dropped self loops.

    Raises
    ------
    EdgeListNotFoundError
        If the file does not exist (also a :class:`FileNotFoundError`).
    EdgeListError
        For an empty file, lines with a different number of fields than the first edge line
        (or a single field), empty fields, non-numeric, negative, NaN or infinite weights,
        non-integer ids with ``node_type=int``, or a repeated edge with
        ``duplicates="error"``. The message names the file and the line.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "karate.txt")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("# a triangle\\n1 2\\n2 3\\n3 1\\n")
    >>> g = read_edgelist(path)
    >>> g, g.node_ids
    (Graph(n_nodes=3, n_edges=3, directed=False, weighted=False), array([1, 2, 3]))
    """
    path = os.fspath(path)
    _check_options(delimiter, comments, header, node_type, self_loops, duplicates)
    _check_file_exists(path)
    layout = _sniff_layout(path, delimiter, comments, header)
    use_weights = _reads_weights(weighted, layout)
    # weighted=False reads two fields of each line; otherwise lines must agree on the count.
    table = _read_edge_table(layout, weighted is not False, node_type)
    sources = table.iloc[:, 0].to_numpy()
    targets = table.iloc[:, 1].to_numpy()
    weights = _weight_column(table.iloc[:, 2], layout) if use_weights else None
    try:
        graph = Graph.from_edges(sources, targets, weights, directed=directed,
                                 self_loops=self_loops, duplicates=duplicates)
    except _EdgeInputError as exc:
        raise _edge_error(layout, exc, sources, targets) from exc
    if use_weights:
        graph.weighted = True
    return graph


# -- options and file ---------------------------------------------------------------------------

def _check_options(delimiter, comments, header, node_type, self_loops, duplicates) -> None:
    if delimiter is not None and not (isinstance(delimiter, str) and (
            delimiter in _WHITESPACE_SPELLINGS or len(delimiter) == 1)):
        raise ValueError(f"delimiter must be None, ' ' or a single character; got {delimiter!r}")
    if comments is not None and not (isinstance(comments, str) and len(comments) == 1):
        raise ValueError(f"comments must be None or a single character; got {comments!r}")
    if header != "infer" and not isinstance(header, bool):
        raise ValueError(f"header must be 'infer', True or False; got {header!r}")
    if node_type not in (None, int, str):
        raise ValueError(f"node_type must be None, int or str; got {node_type!r}")
    _check_choice(self_loops, "self_loops", SELF_LOOP_POLICIES)
    _check_choice(duplicates, "duplicates", DUPLICATE_POLICIES)


def _check_file_exists(path: str) -> None:
    if not os.path.exists(path):
        raise EdgeListNotFoundError(f"{path}: no such edge-list file")
    if os.path.isdir(path):
        raise EdgeListError(f"{path}: is a directory, not an edge-list file")


def _compression_of(path: str) -> str | None:
    return _COMPRESSION_BY_SUFFIX.get(os.path.splitext(path)[1].lower())


def _content_lines(path: str, compression: str | None,
                   comments: str | None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line that is not blank once its comment is removed."""
    with _OPENERS[compression](path, "rt", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if comments:
                line = line.split(comments, 1)[0]
            content = line.strip()
            if content:
                yield number, content


def _split(content: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return content.split()
    return [field.strip() for field in content.split(delimiter)]


# -- layout detection ---------------------------------------------------------------------------

def _sniff_layout(path: str, delimiter: str | None, comments: str | None,
                  header: bool | str) -> _Layout:
    compression = _compression_of(path)
    try:
        sample = list(islice(_content_lines(path, compression, comments), _SNIFF_LINE_COUNT))
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise EdgeListError(f"{path}: cannot be read as {compression or 'plain'} UTF-8 text "
                            f"({exc})") from exc
    if not sample:
        raise EdgeListError(f"{path}: no edges (the file is empty or holds only comments and "
                            "blank lines)")
    if delimiter is None:
        delimiter = _detect_delimiter([content for _, content in sample])
    elif delimiter in _WHITESPACE_SPELLINGS:
        delimiter = None
    rows = [(number, _split(content, delimiter)) for number, content in sample]
    has_header = _looks_like_header(rows) if header == "infer" else header
    edge_rows = rows[1:] if has_header else rows
    if not edge_rows:
        raise EdgeListError(f"{path}: no edges after the header on line {rows[0][0]}")
    first_line, first_fields = edge_rows[0]
    layout = _Layout(
        path=path, compression=compression, comments=comments, delimiter=delimiter,
        header_line=rows[0][0] if has_header else None, n_fields=len(first_fields),
        first_edge_line=first_line, sample=tuple(tuple(fields) for _, fields in edge_rows),
    )
    if layout.n_fields < 2:
        raise layout.error("has a single field; an edge needs a source and a target", first_line)
    return layout


def _detect_delimiter(contents: list[str]) -> str | None:
    """The first candidate splitting most sample lines in two or more; None: whitespace."""
    for candidate in _DELIMITER_CANDIDATES:
        n_split = sum(len(_split(content, candidate)) >= 2 for content in contents)
        if 2 * n_split > len(contents):
            if candidate == "\t" and not _fields_hold_spaces(contents, "\t"):
                return None  # same fields, and whitespace mode also forgives stray spaces
            return candidate
    return None


def _fields_hold_spaces(contents: list[str], delimiter: str) -> bool:
    return any(" " in field for content in contents for field in _split(content, delimiter))


def _looks_like_header(rows: list[tuple[int, list[str]]]) -> bool:
    first = rows[0][1]
    if all(field.lower() in _COLUMN_NAMES for field in first):
        return True
    following = [fields for _, fields in rows[1:]]
    if not following:
        return False
    return any(
        not _is_number(name) and all(len(fields) > column and _is_number(fields[column])
                                     for fields in following)
        for column, name in enumerate(first)
    )


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _is_integer(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def _reads_weights(weighted: bool | None, layout: _Layout) -> bool:
    if weighted is None:
        return layout.n_fields >= 3
    if weighted and layout.n_fields < 3:
        raise layout.error(
            f"weighted=True, but the edge has {layout.n_fields} fields; a third field (the "
            "weight) is needed", layout.first_edge_line,
        )
    return bool(weighted)


# -- reading the table --------------------------------------------------------------------------

def _read_edge_table(layout: _Layout, all_fields: bool, node_type: type | None) -> pd.DataFrame:
    """The edge lines as columns: source, target, then the other fields when ``all_fields``."""
    ids_as_strings = node_type is str or (node_type is None and not all(
        len(fields) < 2 or (_is_integer(fields[0]) and _is_integer(fields[1]))
        for fields in layout.sample
    ))
    table = _read_table(layout, all_fields, ids_as_strings)
    if ids_as_strings or _has_integer_ids(table):
        return table
    if node_type is int:
        raise _non_integer_id_error(layout, table)
    # An id beyond the sampled lines is not an integer: read the ids again, as written.
    return _read_table(layout, all_fields, ids_as_strings=True)


def _read_table(layout: _Layout, all_fields: bool, ids_as_strings: bool) -> pd.DataFrame:
    options = dict(
        sep=r"\s+" if layout.delimiter is None else layout.delimiter,
        header=None,
        engine="c",
        comment=layout.comments,
        skip_blank_lines=True,
        skiprows=None if layout.header_line is None else [layout.header_line - 1],
        usecols=None if all_fields else [0, 1],
        dtype={0: str, 1: str} if ids_as_strings else None,
        # Only empty fields are missing values: ids such as "NA" or "null" stay strings.
        keep_default_na=False,
        na_values=[""],
        compression=layout.compression,
        encoding="utf-8",
    )
    if layout.delimiter is not None:
        options["skipinitialspace"] = True
    try:
        table = pd.read_csv(layout.path, **options)
    except pd.errors.ParserError as exc:
        raise _malformed_line_error(layout, all_fields, cause=exc) from exc
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise layout.error(f"cannot be read as UTF-8 text ({exc})") from exc
    return _without_blank_rows(table, layout, all_fields)


def _without_blank_rows(table: pd.DataFrame, layout: _Layout, all_fields: bool) -> pd.DataFrame:
    """Drop rows pandas made of lines with nothing in them; raise for rows with a gap."""
    missing = table.isna().to_numpy()
    if not missing.any():
        return table
    blank = missing.all(axis=1)
    if blank.any():
        table = table[~blank].reset_index(drop=True)
        missing = missing[~blank]
    if missing.any():
        raise _malformed_line_error(layout, all_fields)
    return table


def _has_integer_ids(table: pd.DataFrame) -> bool:
    return all(table.dtypes.iloc[column].kind in "iu" for column in (0, 1))


# -- errors with line numbers (slow re-scans, only when something is wrong) ---------------------

def _edge_lines(layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each edge line, in the order pandas gives the rows."""
    for number, content in _content_lines(layout.path, layout.compression, layout.comments):
        if number == layout.header_line:
            continue
        fields = layout.split(content)
        if any(fields):  # lines of bare delimiters are blank rows to pandas too
            yield number, fields


def _line_numbers_of_rows(layout: _Layout, rows: list[int]) -> dict[int, int]:
    wanted = set(rows)
    found: dict[int, int] = {}
    for row, (number, _) in enumerate(_edge_lines(layout)):
        if row in wanted:
            found[row] = number
            if len(found) == len(wanted):
                break
    return found


def _malformed_line_error(layout: _Layout, all_fields: bool,
                          cause: Exception | None = None) -> EdgeListError:
    """The error for the first line with a wrong number of fields or an empty field."""
    for number, fields in _edge_lines(layout):
        if len(fields) < 2:
            return layout.error(
                f"has {len(fields)} field; an edge needs a source and a target", number
            )
        if all_fields and len(fields) != layout.n_fields:
            return layout.error(
                f"has {len(fields)} fields, but line {layout.first_edge_line} has "
                f"{layout.n_fields}", number,
            )
        empty = [position + 1 for position, field in enumerate(fields) if not field]
        if empty:
            return layout.error(f"field {empty[0]} is empty", number)
    return layout.error(f"cannot be parsed ({cause})" if cause else "cannot be parsed")


def _non_integer_id_error(layout: _Layout, table: pd.DataFrame) -> EdgeListError:
    first_bad_row, bad_token = len(table), None
    for column in (0, 1):
        ids = table.iloc[:, column]
        as_numbers = pd.to_numeric(ids, errors="coerce").to_numpy(np.float64)
        bad = np.isnan(as_numbers) | (as_numbers != np.round(as_numbers))
        if bad.any() and int(np.argmax(bad)) < first_bad_row:
            first_bad_row = int(np.argmax(bad))
            bad_token = ids.iloc[first_bad_row]
    line = _line_numbers_of_rows(layout, [first_bad_row]).get(first_bad_row)
    return layout.error(f"node id {bad_token!r} is not an integer (node_type=int)", line)


def _weight_column(column: pd.Series, layout: _Layout) -> np.ndarray:
    weights = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.argmax(bad))
        line = _line_numbers_of_rows(layout, [row]).get(row)
        raise layout.error(_weight_problem(column.iloc[row]), line)
    return weights


def _weight_problem(token: Any) -> str:
    try:
        value = float(token)
    except (TypeError, ValueError):
        return (f"weight {token!r} is not a number (pass weighted=False to ignore the third "
                "field)")
    if not np.isfinite(value):
        return f"weight {token!r} is not finite"
    return f"weight {token!r} is negative"


def _edge_error(layout: _Layout, exc: _EdgeInputError, sources: np.ndarray,
                targets: np.ndarray) -> EdgeListError:
    lines = _line_numbers_of_rows(layout, list(exc.positions))
    if len(exc.positions) == 2:
        first, second = exc.positions
        edge = f"{sources[second]!r} {targets[second]!r}"
        return layout.error(
            f"edge {edge} repeats the edge on line {lines.get(first)}, and duplicates='error'",
            lines.get(second),
        )
    return layout.error(str(exc), lines.get(exc.positions[0]) if exc.positions else None)
