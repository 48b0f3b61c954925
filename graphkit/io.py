"""Graphs in: edge-list files, and any graph-like object turned into a :class:`~graphkit.Graph`.

- :func:`read_edgelist`: an edge-list file (plain or compressed, a pipe or a stream) read with
  pandas' C parser, or a Matrix Market adjacency (``.mtx``) read with SciPy.
- :func:`as_graph`: a :class:`~graphkit.Graph` from whatever a graph method is given: a path,
  ``(src, dst[, weight])`` arrays, a dense or SciPy adjacency, a networkx graph or PyTorch
  Geometric input.

An edge list has one edge per line: a source id, a target id and, optionally, a weight,
separated by runs of whitespace, commas, tabs or semicolons. :func:`read_edgelist` detects the
delimiter, a header line, the compression and the weight column, reads the file with pandas' C
parser (no Python loop per line) and builds a :class:`~graphkit.Graph` through
:meth:`Graph.from_edges`. Bad input raises :class:`EdgeListError`, whose message names the file
and, where there is one, the line.

Nothing is guessed in a way that could change the data silently: integer ids stay exact (int64,
or uint64 beyond it; ids written in another form, such as ``007``, stay strings), a first line is
a header only if it cannot be an edge, a column whose header names something other than a
weight (a time, a date, a label) is not read as weights, and a pipe or standard input is read
whole before anything is detected.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "edges.csv")
>>> with open(path, "w") as handle:
...     _ = handle.write("source,target,weight\\n1,2,0.5\\n2,3,2.0\\n")
>>> read_edgelist(path)
Graph(n_nodes=3, n_edges=2, directed=False, weighted=True)
>>> as_graph(path).n_edges
2
"""

from __future__ import annotations

import contextlib
import lzma
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from itertools import islice
from typing import Any, BinaryIO, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from graphkit._edgelist_format import (
    BLANK_CHARACTERS,
    CANONICAL_INTEGER,
    FIELD_BREAKS,
    NOT_WEIGHT_NAME,
    OPENERS,
    WEIGHT_NAMES,
    compression_of,
    compression_of_bytes,
    detect_delimiter,
    is_integer,
    looks_like_header,
    padded_integer_starts,
    read_bytes,
    split,
    weight_problem,
)
from graphkit._edges import (
    DUPLICATE_POLICIES,
    SELF_LOOP_POLICIES,
    EdgeInputError,
    has_non_unit_values,
)
from graphkit._matlab import MatlabError, is_matlab, read_matlab
from graphkit._matrix_market import MatrixMarketError, is_matrix_market, read_matrix_market
from graphkit.graph import Graph
from tensorkit.base import Options, StrOptions, check_parameters, integers
from tensorkit.validation import reject_complex

__all__ = ["EdgeListError", "EdgeListNotFoundError", "as_graph", "read_edgelist"]

# pandas before 3.0 parses floats to within an ulp unless asked for its exact converter.
_PANDAS_ROUNDS_FLOATS = int(pd.__version__.split(".")[0]) < 3
_WHITESPACE_SPELLINGS = (" ", r"\s+")
_SNIFF_LINE_COUNT = 50
_MAX_LINE_CHARS = 1 << 20
_SPOOL_CHUNK_BYTES = 1 << 20
_SCAN_CHUNK_BYTES = 1 << 24


class EdgeListError(ValueError):
    """Bad edge-list input; the message names the file and (where there is one) the line."""


class EdgeListNotFoundError(EdgeListError, FileNotFoundError):
    """The edge-list file does not exist; both an :class:`EdgeListError` and a
    :class:`FileNotFoundError`."""


@dataclass(frozen=True)
class _Layout:
    """How an edge-list file is laid out, as found from its first lines."""

    path: str  # a regular file (a pipe or stream has been copied to one)
    name: str  # what messages call the file: the path or stream the user gave
    compression: str | None
    comments: str | None
    delimiter: str | None  # None: runs of whitespace
    header: tuple[str, ...] | None  # the header's fields, if there is one
    header_line: int | None  # 1-based line number of the header, if there is one
    n_fields: int  # fields on the first edge line
    first_edge_line: int
    sample: tuple[tuple[str, ...], ...]  # fields of the first edge lines

    def split(self, content: str) -> list[str]:
        return split(content, self.delimiter)

    def error(self, problem: str, line: int | None = None) -> EdgeListError:
        where = self.name if line is None else f"{self.name}, line {line}"
        return EdgeListError(f"{where}: {problem}")


@dataclass(frozen=True)
class _WeightChoice:
    """Which column holds the weights (0-based), and why; ``column`` None: unweighted."""

    column: int | None
    ignored: int | None = None  # a third column left out because its name is not a weight


def read_edgelist(path: str | os.PathLike | BinaryIO, directed: bool = False,
                  weighted: bool | None = None, delimiter: str | None = None,
                  comments: str | None = "#", header: bool | str = "infer",
                  self_loops: str = "keep", duplicates: str = "max",
                  node_type: type | None = None, weight_column: int | str | None = None,
                  variable: str | None = None) -> Graph:
    """Read a graph from an edge-list file: ``source target [weight]`` on each line.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        A file, a named pipe, ``/dev/stdin`` or an open binary stream (e.g.
        ``sys.stdin.buffer``); pipes and streams are copied to a temporary file first, so
        nothing is lost to detection. gzip, bz2 and xz data are decompressed, whatever the
        name. Text must be UTF-8. A Matrix Market file (a name ending in ``.mtx``,
        ``.mtx.gz`` or ``.mtx.bz2``, or data starting with the ``%%MatrixMarket`` banner) or a
        MATLAB file (``.mat``, or a MATLAB 5 header) is read as an adjacency matrix; see the Notes.
    directed : bool, default=False
    weighted : bool, optional
        None: weights are read when lines have three or more fields, from the column chosen
        as described under ``weight_column``. True: a weight column is required. False: only
        the first two fields are read, and every edge weighs 1.
    delimiter : str, optional
        None detects it from the first lines: a comma, tab or semicolon when one splits them,
        else runs of whitespace (also what ``" "`` means). Otherwise a single character.
        Fields may be quoted (``"New York"``), so a quoted field can hold the delimiter.
    comments : str or None, default="#"
        A single character starting a comment, on its own line or after an edge; None: no
        comments. Blank lines are skipped.
    header : {"infer", True, False}, default="infer"
        Whether the first non-comment line names the columns. "infer" says yes only when that
        line cannot be an edge of the file's shape: every field is a common column name
        (source, target, src, dst, from, to, u, v, node1, node2, weight, timestamp, ...) or
        differs in kind from its column below (a name over integer ids or numeric weights), or
        a field after the two ids is a column name over numbers (``a b weight``). ``hub 1``
        over integer edges is an edge (ids become strings), never a header.
    self_loops : {"keep", "drop"}, default="keep"
    duplicates : {"max", "sum", "error"}, default="max"
        How repeated edges combine; see :meth:`Graph.from_edges`. For an undirected graph
        ``u v`` and ``v u`` are the same edge.
    node_type : {None, int, str}, optional
        None: integer ids when every id is an integer written plainly (``-12``, ``0``, ``7``;
        not ``007`` or ``+7``), kept exactly as int64 or, beyond its range, uint64; else
        strings, kept exactly as written. ``int`` requires integers; ``str`` always keeps
        strings.
    weight_column : int or str, optional
        The column holding the weights: its 0-based position (2 is the third field) or its
        name in the header. Default: with a header, the first column after the ids named like
        a weight (weight, w, value, score, ...), else the third column, unless its name says
        it is something else (time, timestamp, date, ts, label, type, an id, ...: then the
        graph is unweighted); without a header, the third column.
    variable : str, optional
        A MATLAB file's variable holding the adjacency matrix (default: see the Notes).

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
        For an empty file, binary data (NUL bytes) or a line over a million characters, lines
        with a different number of fields than the first edge line (or a single field), empty
        fields, non-numeric, negative, NaN or infinite weights, non-integer ids with
        ``node_type=int``, an unknown ``weight_column``, or a repeated edge with
        ``duplicates="error"``. The message names the file and the line. For a Matrix Market
        file, see the Notes.

    Notes
    -----
    A Matrix Market file (coordinate or array format, read with :func:`scipy.io.mmread`) holds
    the adjacency matrix: nodes are its rows, with ids ``0 .. n - 1`` (nodes without entries
    kept), and entry ``a_ij`` is an edge ``i -> j``. ``symmetric``, ``skew-symmetric`` and
    ``hermitian`` files are expanded as the format defines; with ``directed=False``, ``a_ij``
    and ``a_ji`` are one edge, merged by ``duplicates`` (each stored entry of a mirrored file
    counts once). ``real`` and ``integer`` values are the weights (``weighted=False``: every
    non-zero entry weighs 1); ``pattern`` matrices are unweighted; entries of value 0 are not
    edges. ``delimiter``, ``comments`` and ``header`` do not apply. A malformed file, a vector,
    a non-square or complex matrix, negative or non-finite values (unless ``weighted=False``),
    ``weighted=True`` for a ``pattern`` matrix, ``node_type=str`` or a ``weight_column`` raise
    :class:`EdgeListError`. A MATLAB file (versions 4 to 7.2, :func:`scipy.io.loadmat`) is read
    the same way from ``variable``, or else its only square matrix, or else the first it holds of
    ``network``, ``A``, ``adjacency``, ``adj``, ``graph``, ``net``, ``W``; see :mod:`graphkit._matlab`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "karate.txt")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("# a triangle\\n1 2\\n2 3\\n3 1\\n")
    >>> g = read_edgelist(path)
    >>> g, g.node_ids
    (Graph(n_nodes=3, n_edges=3, directed=False, weighted=False), array([1, 2, 3]))

    A Matrix Market file: a path 0 - 1 - 2, and node 3 without edges.

    >>> path = os.path.join(tempfile.mkdtemp(), "path.mtx")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("%%MatrixMarket matrix coordinate pattern symmetric\\n4 4 2\\n2 1\\n3 2\\n")
    >>> g = read_edgelist(path)
    >>> g, g.node_ids
    (Graph(n_nodes=4, n_edges=2, directed=False, weighted=False), array([0, 1, 2, 3]))
    """
    graph, _ = _read_edgelist(path, directed=directed, weighted=weighted, delimiter=delimiter,
                              comments=comments, header=header, self_loops=self_loops,
                              duplicates=duplicates, node_type=node_type,
                              weight_column=weight_column, variable=variable)
    return graph


def _read_edgelist(path: Any, *, directed: bool, weighted: bool | None, delimiter: str | None,
                   comments: str | None, header: bool | str, self_loops: str, duplicates: str,
                   node_type: type | None,
                   weight_column: int | str | None, variable: str | None = None) -> tuple[Graph, str]:
    """:func:`read_edgelist`, and one line saying how the file was read (for the command)."""
    check_parameters(_OPTION_CONSTRAINTS, {"weighted": weighted, "header": header, "self_loops": self_loops,
                                           "duplicates": duplicates, "node_type": node_type,
                                           "weight_column": weight_column}, "read_edgelist")
    _check_characters(delimiter, comments)
    if weighted is False and weight_column is not None:
        raise ValueError("weighted=False and a weight_column contradict each other")
    with _regular_file(path) as (local_path, name):
        options = dict(directed=directed, weighted=weighted, self_loops=self_loops, duplicates=duplicates)
        if is_matlab(local_path, name):
            return _read_matrix_file(read_matlab, "a MATLAB", local_path, name, node_type, weight_column,
                                     variable=variable, **options)
        if variable is not None:
            raise EdgeListError(f"{name}: variable={variable!r} applies to MATLAB (.mat) files only")
        if is_matrix_market(local_path, name):
            return _read_matrix_file(read_matrix_market, "a Matrix Market", local_path, name, node_type,
                                     weight_column, **options)
        layout = _sniff_layout(local_path, name, delimiter, comments, header)
        choice = _choose_weight_column(weighted, weight_column, layout)
        # weighted=False reads two fields of each line; otherwise lines must agree on the count.
        table = _read_edge_table(layout, weighted is not False, node_type)
        sources = table.iloc[:, 0].to_numpy()
        targets = table.iloc[:, 1].to_numpy()
        weights = None if choice.column is None else _weight_column(table.iloc[:, choice.column],
                                                                    layout)
        try:
            graph = Graph.from_edges(sources, targets, weights, directed=directed,
                                     self_loops=self_loops, duplicates=duplicates)
        except EdgeInputError as exc:
            raise _edge_error(layout, exc, sources, targets) from exc
    if weights is not None:
        graph.weighted = True
    return graph, _describe(layout, choice)


def _read_matrix_file(reader: Any, kind: str, path: str, name: str, node_type: type | None, weight_column: Any,
                      **options: Any) -> tuple[Graph, str]:
    """A Matrix Market or MATLAB file (:mod:`graphkit._matrix_market`, :mod:`graphkit._matlab`), its
    errors naming the file."""
    if node_type is str or weight_column is not None:
        what = "node_type=str" if node_type is str else f"weight_column={weight_column!r}"
        raise EdgeListError(f"{name}: {what} does not apply to {kind} file (its nodes are "
                            "the matrix's rows 0 .. n-1 and its weights are the matrix's values)")
    try:
        return reader(path, **options)
    except (MatrixMarketError, MatlabError) as exc:
        raise EdgeListError(f"{name}: {exc}") from exc


# -- options and file ---------------------------------------------------------------------------

# Checked here rather than by a decorator on read_edgelist: graphkit embed calls _read_edgelist.
_OPTION_CONSTRAINTS = {
    "weighted": [bool, None],
    "header": [StrOptions({"infer"}), bool],
    "self_loops": [StrOptions(set(SELF_LOOP_POLICIES))],
    "duplicates": [StrOptions(set(DUPLICATE_POLICIES))],
    "node_type": [Options(type, {int, str}), None],
    "weight_column": [integers(2), str, None],
}


def _check_characters(delimiter: Any, comments: Any) -> None:
    """The delimiter and the comment character: single characters that do not clash."""
    if delimiter is not None and not (isinstance(delimiter, str) and (
            delimiter in _WHITESPACE_SPELLINGS or len(delimiter) == 1)):
        raise ValueError(f"delimiter must be None, ' ' or a single character; got {delimiter!r}")
    if delimiter is not None and delimiter not in _WHITESPACE_SPELLINGS and (
            delimiter == '"' or delimiter == comments or delimiter in "\r\n"):
        raise ValueError(f"delimiter {delimiter!r} cannot separate fields (it is the quote, the "
                         "comment character or a line break)")
    if comments is not None and not (isinstance(comments, str) and len(comments) == 1):
        raise ValueError(f"comments must be None or a single character; got {comments!r}")


@contextlib.contextmanager
def _regular_file(source: Any) -> Iterator[tuple[str, str]]:
    """``(path of a regular file holding the edge list, the name messages use)``.

    A pipe, a character device or an open stream is read once, into a temporary file that is
    removed afterwards: detection reads the start of the data and pandas then reads all of it,
    which only a regular file allows.
    """
    if hasattr(source, "read"):
        name = _stream_name(source)
        with _spooled(source, name) as path:
            yield path, name
        return
    name = os.fspath(source)
    if not isinstance(name, str):
        name = os.fsdecode(name)
    _check_file_exists(name)
    if stat.S_ISREG(os.stat(name).st_mode):
        yield name, name
        return
    try:
        stream = open(name, "rb")
    except OSError as exc:
        raise EdgeListError(f"{name}: cannot be opened ({exc.strerror or exc})") from exc
    with stream, _spooled(stream, name) as path:
        yield path, name


def _stream_name(stream: Any) -> str:
    name = getattr(stream, "name", None)
    if name == 0 or name == "<stdin>":
        return "<stdin>"
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else "<stream>"


@contextlib.contextmanager
def _spooled(stream: Any, name: str) -> Iterator[str]:
    """A temporary copy of everything ``stream`` holds; refuses binary data from the start."""
    with tempfile.TemporaryDirectory(prefix="graphkit-edges-") as folder:
        path = os.path.join(folder, "edges")
        with open(path, "wb") as copy:
            first = read_bytes(stream, _SPOOL_CHUNK_BYTES)
            if compression_of_bytes(first) is None and b"\x00" in first:
                raise EdgeListError(f"{name}: holds NUL bytes; this is binary data, not a text "
                                    "edge list")
            copy.write(first)
            while True:
                chunk = read_bytes(stream, _SPOOL_CHUNK_BYTES)
                if not chunk:
                    break
                copy.write(chunk)
        yield path


def _check_file_exists(path: str) -> None:
    if not os.path.exists(path):
        raise EdgeListNotFoundError(f"{path}: no such edge-list file")
    if os.path.isdir(path):
        raise EdgeListError(f"{path}: is a directory, not an edge-list file")


def _content_lines(path: str, name: str, compression: str | None,
                   comments: str | None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line that is not blank once its comment is removed."""
    with OPENERS[compression](path, "rt", encoding="utf-8-sig") as handle:
        for number, line in enumerate(iter(lambda: handle.readline(_MAX_LINE_CHARS + 1), ""),
                                      start=1):
            if len(line) > _MAX_LINE_CHARS:
                raise EdgeListError(f"{name}, line {number}: longer than {_MAX_LINE_CHARS:,} "
                                    "characters; this is not an edge list")
            if "\x00" in line:
                raise EdgeListError(f"{name}, line {number}: holds NUL bytes; this is binary "
                                    "data, not a text edge list")
            if comments:
                line = line.split(comments, 1)[0]
            content = line.strip(BLANK_CHARACTERS + "\r\n")
            if content:
                yield number, content


# -- layout detection ---------------------------------------------------------------------------

def _sniff_layout(path: str, name: str, delimiter: str | None, comments: str | None,
                  header: bool | str) -> _Layout:
    try:
        compression = compression_of(path)
    except OSError as exc:
        raise EdgeListError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        sample = list(islice(_content_lines(path, name, compression, comments), _SNIFF_LINE_COUNT))
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise EdgeListError(f"{name}: cannot be read as {compression or 'plain'} UTF-8 text "
                            f"({exc})") from exc
    if not sample:
        raise EdgeListError(f"{name}: no edges (the file is empty or holds only comments and "
                            "blank lines)")
    if delimiter is None:
        delimiter = detect_delimiter([content for _, content in sample])
    elif delimiter in _WHITESPACE_SPELLINGS:
        delimiter = None
    rows = [(number, fields) for number, fields in
            ((number, split(content, delimiter)) for number, content in sample) if any(fields)]
    if not rows:
        raise EdgeListError(f"{name}: no edges (its first lines hold only delimiters)")
    has_header = looks_like_header(rows) if header == "infer" else header
    edge_rows = rows[1:] if has_header else rows
    if not edge_rows:
        raise EdgeListError(f"{name}: no edges after the header on line {rows[0][0]}")
    first_line, first_fields = edge_rows[0]
    layout = _Layout(
        path=path, name=name, compression=compression, comments=comments, delimiter=delimiter,
        header=tuple(rows[0][1]) if has_header else None,
        header_line=rows[0][0] if has_header else None, n_fields=len(first_fields),
        first_edge_line=first_line, sample=tuple(tuple(fields) for _, fields in edge_rows),
    )
    if layout.n_fields < 2:
        raise layout.error("has a single field; an edge needs a source and a target", first_line)
    return layout


def _choose_weight_column(weighted: bool | None, weight_column: int | str | None,
                          layout: _Layout) -> _WeightChoice:
    if weighted is False:
        return _WeightChoice(None)
    if weight_column is not None:
        return _WeightChoice(_named_column(weight_column, layout))
    if layout.n_fields < 3:
        if weighted:
            raise layout.error(
                f"weighted=True, but the edge has {layout.n_fields} fields; a third field (the "
                "weight) is needed", layout.first_edge_line,
            )
        return _WeightChoice(None)
    names = [name.lower() for name in (layout.header or ())]
    named_weight = next((column for column, name in enumerate(names)
                         if column >= 2 and name in WEIGHT_NAMES), None)
    if named_weight is not None and named_weight < layout.n_fields:
        return _WeightChoice(named_weight)
    if not weighted and len(names) > 2 and NOT_WEIGHT_NAME.search(names[2]):
        return _WeightChoice(None, ignored=2)
    return _WeightChoice(2)


def _named_column(weight_column: int | str, layout: _Layout) -> int:
    if isinstance(weight_column, str):
        names = [name.lower() for name in (layout.header or ())]
        if weight_column.lower() not in names[2:]:
            header = (f"the header on line {layout.header_line} names "
                      f"{', '.join(map(repr, layout.header))}" if layout.header
                      else "the file has no header")
            raise layout.error(f"weight_column {weight_column!r} is not a column after the ids; "
                               f"{header}")
        return names.index(weight_column.lower(), 2)
    if weight_column >= layout.n_fields:
        raise layout.error(f"weight_column={weight_column} (0-based), but the edge has "
                           f"{layout.n_fields} fields", layout.first_edge_line)
    return int(weight_column)


def _describe(layout: _Layout, choice: _WeightChoice) -> str:
    """One line saying how the file was read: delimiter, header and weight column."""
    delimiter = {None: "whitespace", ",": "commas", "\t": "tabs", ";": "semicolons"}.get(
        layout.delimiter, repr(layout.delimiter))
    parts = [f"fields split on {delimiter}"]
    if layout.compression:
        parts.append(f"{layout.compression} data")
    parts.append(f"header on line {layout.header_line}" if layout.header else "no header")
    if choice.column is not None:
        parts.append(f"weights from column {choice.column + 1}{_column_name(layout, choice.column)}")
    elif choice.ignored is not None:
        name = layout.header[choice.ignored]
        parts.append(f"unweighted (column {choice.ignored + 1} {name!r} is not a weight; "
                     f"--weight-column {name} reads it as one)")
    else:
        parts.append("unweighted")
    return ", ".join(parts)


def _column_name(layout: _Layout, column: int) -> str:
    if layout.header and column < len(layout.header):
        return f" {layout.header[column]!r}"
    return ""


# -- reading the table --------------------------------------------------------------------------

def _read_edge_table(layout: _Layout, all_fields: bool, node_type: type | None) -> pd.DataFrame:
    """The edge lines as columns: source, target, then the other fields when ``all_fields``."""
    ids_as_strings = node_type is str or (node_type is None and not all(
        len(fields) < 2 or (is_integer(fields[0]) and is_integer(fields[1]))
        for fields in layout.sample
    ))
    table = _read_table(layout, all_fields, ids_as_strings)
    if ids_as_strings:
        return table
    if _has_integer_ids(table):
        if node_type is int or _ids_written_plainly(layout):
            return table
    elif node_type is int:
        raise _non_integer_id_error(layout, table)
    # An id beyond the sampled lines is not a plain integer (or is beyond uint64): read the ids
    # again, as written.
    return _read_table(layout, all_fields, ids_as_strings=True)


def _ids_written_plainly(layout: _Layout) -> bool:
    """Whether every id is written as its integer is (no "+", leading zeros or "-0"), so that
    reading ids as integers merges no two ids; a byte scan, then strings only if in doubt."""
    if not _may_hold_padded_integers(layout):
        return True
    ids = _read_table(layout, all_fields=False, ids_as_strings=True)
    return all(ids.iloc[:, column].str.fullmatch(CANONICAL_INTEGER.pattern).all()
               for column in (0, 1))


def _may_hold_padded_integers(layout: _Layout) -> bool:
    """Whether some field starts like "+7", "007" or "-0" (weights and comments included)."""
    breaks = FIELD_BREAKS + (layout.delimiter or "").encode()
    carried = b"\n"
    with OPENERS[layout.compression](layout.path, "rb") as handle:
        while True:
            chunk = handle.read(_SCAN_CHUNK_BYTES)
            data = carried + (chunk or b"\n\n")
            if padded_integer_starts(np.frombuffer(data, np.uint8), breaks):
                return True
            if not chunk:
                return False
            carried = data[-3:]


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
    if _PANDAS_ROUNDS_FLOATS:
        options["float_precision"] = "round_trip"  # weights exactly as written, to the last bit
    try:
        table = pd.read_csv(layout.path, **options)
    except pd.errors.ParserError as exc:
        raise _malformed_line_error(layout, all_fields, cause=exc) from exc
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise layout.error(f"cannot be read as UTF-8 text ({exc})") from exc
    if table.shape[1] < 2 or (all_fields and table.shape[1] != layout.n_fields):
        raise _malformed_line_error(layout, all_fields)
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
    if table.empty:
        raise layout.error("no edges (the file holds only blank lines, comments and delimiters)")
    return table


def _has_integer_ids(table: pd.DataFrame) -> bool:
    return all(table.dtypes.iloc[column].kind in "iu" for column in (0, 1))


# -- errors with line numbers (slow re-scans, only when something is wrong) ---------------------

def _edge_lines(layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each edge line, in the order pandas gives the rows."""
    for number, content in _content_lines(layout.path, layout.name, layout.compression,
                                          layout.comments):
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
    reason = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    return layout.error(f"cannot be parsed ({reason})" if reason else "cannot be parsed")


def _non_integer_id_error(layout: _Layout, table: pd.DataFrame) -> EdgeListError:
    first_bad_row, bad_token = len(table), None
    for column in (0, 1):
        ids = table.iloc[:, column]
        bad = ~np.array([is_integer(str(token)) for token in ids.to_numpy()], dtype=bool)
        if bad.any() and int(np.argmax(bad)) < first_bad_row:
            first_bad_row = int(np.argmax(bad))
            bad_token = ids.iloc[first_bad_row]
    if bad_token is None:  # integers, but beyond what uint64 holds
        return layout.error("node ids are integers beyond the int64 and uint64 ranges; pass "
                            "node_type=str to keep them as strings")
    line = _line_numbers_of_rows(layout, [first_bad_row]).get(first_bad_row)
    return layout.error(f"node id {bad_token!r} is not an integer (node_type=int)", line)


def _weight_column(column: pd.Series, layout: _Layout) -> np.ndarray:
    weights = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.argmax(bad))
        line = _line_numbers_of_rows(layout, [row]).get(row)
        problem = weight_problem(column.iloc[row])
        if line == layout.first_edge_line and layout.header is None:
            problem += f"; if line {line} is a header, pass header=True (--header)"
        raise layout.error(problem, line)
    return weights


def _edge_error(layout: _Layout, exc: EdgeInputError, sources: np.ndarray,
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


# -- any graph input ----------------------------------------------------------------------------

def as_graph(obj: Any, *, directed: bool | None = None, weighted: bool | None = None) -> Graph:
    """Turn any supported graph input into a :class:`Graph`.

    Parameters
    ----------
    obj
        - :class:`Graph`: returned as it is;
        - ``str`` or ``os.PathLike``: an edge-list, Matrix Market (``.mtx``) or MATLAB
          (``.mat``) file, read by :func:`read_edgelist`;
        - a tuple or list ``(src, dst)`` or ``(src, dst, weight)`` of arrays: see
          :meth:`Graph.from_edges`;
        - a square NumPy array (or square floating torch tensor): a dense adjacency matrix;
        - any other NumPy array of shape ``(E, 2)`` or ``(E, 3)``: one edge per row
          (source, target[, weight]); pass a list of two or three edges as a tuple of
          columns, since a 2 x 2 or 3 x 3 array is read as an adjacency;
        - a SciPy sparse adjacency: see :meth:`Graph.from_scipy`;
        - a networkx graph: see :meth:`Graph.from_networkx`;
        - a PyTorch Geometric ``Data`` or a ``2 x E`` integer tensor: see :meth:`Graph.from_pyg`.
    directed : bool, optional
        For edge lists (files, tuples, arrays) None means undirected; for SciPy matrices and
        PyG input None infers it from symmetry. A networkx graph or a :class:`Graph` must
        already agree with a given value.
    weighted : bool, optional
        None keeps what the input says. False replaces every weight by 1; True marks the
        weights as meaningful.

    Returns
    -------
    Graph

    Raises
    ------
    TypeError
        For any other kind of input.
    ValueError
        If the graph has no nodes, or a networkx graph or :class:`Graph` disagrees with
        ``directed``.

    Examples
    --------
    >>> import numpy as np
    >>> as_graph(np.array([[0, 1], [1, 2], [2, 3]]))  # three edges
    Graph(n_nodes=4, n_edges=3, directed=False, weighted=False)
    >>> as_graph(np.array([[0, 1], [1, 0]]))  # square: an adjacency matrix
    Graph(n_nodes=2, n_edges=1, directed=False, weighted=False)
    >>> as_graph(([0, 1], [1, 2], [0.5, 2.0]), directed=True)
    Graph(n_nodes=3, n_edges=2, directed=True, weighted=True)
    """
    _reject_complex_input(obj)
    graph = _graph_from_any(obj, directed, weighted)
    if graph.n_nodes == 0:
        raise ValueError("graph has no nodes")
    if directed is not None and graph.directed != bool(directed):
        raise ValueError(
            f"directed={directed!r} was asked for, but the {type(obj).__name__} given is "
            f"{'directed' if graph.directed else 'undirected'}; convert it first"
        )
    return _with_weighted(graph, weighted)


# -- as_graph helpers ---------------------------------------------------------------------------

_ACCEPTED_INPUTS = (
    "a graphkit Graph, a path to an edge-list file, a tuple (src, dst[, weight]), a square "
    "NumPy adjacency, a NumPy array of shape (E, 2) or (E, 3), a SciPy sparse adjacency, a "
    "networkx graph, a PyTorch Geometric Data object or a 2 x E edge-index tensor"
)


def _reject_complex_input(obj: Any) -> None:
    """A TypeError for complex arrays (or a tuple of arrays) before anything casts them."""
    if isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
        for name, part in zip(("src", "dst", "weight"), obj):
            reject_complex(part, name)
    elif isinstance(obj, (np.ndarray, torch.Tensor)) or sp.issparse(obj):
        reject_complex(obj, "graph")


def _graph_from_any(obj: Any, directed: bool | None, weighted: bool | None) -> Graph:
    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return read_edgelist(obj, directed=bool(directed), weighted=weighted)
    if isinstance(obj, list) and len(obj) not in (2, 3):
        obj = np.asarray(obj)
    if isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
        return Graph.from_edges(*obj, directed=bool(directed))
    if not isinstance(obj, (np.ndarray, torch.Tensor, tuple, list, str, os.PathLike, Graph)) \
            and hasattr(obj, "__array__") and not sp.issparse(obj):
        obj = np.asarray(obj)
    if _is_dense_square(obj):
        return Graph.from_scipy(sp.csr_matrix(np.asarray(obj.cpu() if isinstance(obj, torch.Tensor) else obj,
                                                         dtype=np.float64)), directed=directed)
    if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.shape[1] in (2, 3):
        weights = obj[:, 2] if obj.shape[1] == 3 else None
        return Graph.from_edges(obj[:, 0], obj[:, 1], weights, directed=bool(directed))
    if sp.issparse(obj):
        return Graph.from_scipy(obj, directed=directed)
    if _is_networkx_graph(obj):
        return Graph.from_networkx(obj)
    if _is_pyg_data(obj) or (isinstance(obj, torch.Tensor) and obj.ndim == 2 and obj.shape[0] == 2):
        return Graph.from_pyg(obj, directed=directed)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        raise ValueError(f"cannot make a graph from an array of shape {tuple(obj.shape)}; expected {_ACCEPTED_INPUTS}")
    raise TypeError(f"cannot make a graph from {type(obj).__name__}; expected {_ACCEPTED_INPUTS}")


def _is_dense_square(obj: Any) -> bool:
    """A square NumPy array, or a square floating torch tensor, is read as a dense adjacency."""
    if isinstance(obj, np.ndarray):
        return obj.ndim == 2 and obj.shape[0] == obj.shape[1]
    return isinstance(obj, torch.Tensor) and obj.layout == torch.strided and obj.ndim == 2 \
        and obj.shape[0] == obj.shape[1] and obj.is_floating_point()


def _is_networkx_graph(obj: Any) -> bool:
    # An object can only be a networkx graph if networkx is already imported.
    nx = sys.modules.get("networkx")
    return nx is not None and isinstance(obj, nx.Graph)


def _is_pyg_data(obj: Any) -> bool:
    pyg_data = sys.modules.get("torch_geometric.data")
    return pyg_data is not None and isinstance(obj, pyg_data.Data)


def features_and_graph(X: Any, graph: Any, estimator: str) -> tuple[Any, Any]:
    """``(X, graph)`` as given, or ``(data.x, data)`` for a PyTorch Geometric ``Data`` as ``X``.

    Raises
    ------
    ValueError
        If the ``Data`` has no node features ``x``, or a ``graph`` is given beside it.
    """
    if not _is_pyg_data(X):
        return X, graph
    if graph is not None:
        raise ValueError(f"{estimator}: graph was given beside a PyTorch Geometric Data as X, which "
                         "holds the graph already (edge_index); pass one or the other")
    if getattr(X, "x", None) is None:
        raise ValueError(f"{estimator} needs node features, but the PyTorch Geometric Data given as X "
                         "has no x; set data.x (one row per node), or pass the features as X")
    return X.x, X


def _with_weighted(graph: Graph, weighted: bool | None) -> Graph:
    """``graph`` itself when it already matches ``weighted``, else a re-flagged copy."""
    if weighted is None:
        return graph
    if weighted:
        if graph.weighted:
            return graph
        return Graph._from_canonical(graph.adjacency.copy(), graph.node_ids, graph.directed, True)
    if not graph.weighted and not has_non_unit_values(graph.adjacency):
        return graph
    unit_weights = graph.adjacency.copy()
    unit_weights.data[:] = 1.0
    return Graph._from_canonical(unit_weights, graph.node_ids, graph.directed, False)
