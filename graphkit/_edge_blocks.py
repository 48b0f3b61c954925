"""Edge-list files read in blocks of whole lines: out of core, or by several processes.

:func:`graphkit.read_edgelist` reads a whole file into one table. The readers here read the same
files (the layout, the header, the weight column and the id kind are found the same way) as blocks
of whole lines of about ``block_bytes`` each, so that no process holds more than a block of text:

- :class:`EdgeBlockReader` numbers the blocks of one or more files; a process of rank ``r`` among
  ``w`` parses only the blocks ``i`` with ``i % w == r`` (in a plain file it seeks straight to
  its own byte ranges; compressed data is decompressed by every process but parsed only by the
  owner of each block).
- :func:`merge_ids` and :func:`positions_of` agree the node ids: sorted, integers when every id
  of every block is an integer written plainly (int64, or uint64 beyond it), else strings as
  written, exactly as :func:`~graphkit.read_edgelist` decides for the whole file.
- :func:`directed_triples` and :func:`max_merged_csr` give the adjacency's entries with the
  reader's defaults: edges of weight 0 dropped, self loops kept once, an undirected edge stored in
  both directions, repeated edges combined by their largest weight (``duplicates="max"``).

An error names the file and the line, as :func:`~graphkit.read_edgelist` does.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphkit._edgelist_format import (
    CANONICAL_INTEGER,
    FIELD_BREAKS,
    OPENERS,
    is_integer,
    padded_integer_starts,
    split,
    weight_problem,
)
from graphkit.io import (
    _OPTION_CONSTRAINTS,
    _PANDAS_ROUNDS_FLOATS,
    EdgeListError,
    _check_characters,
    _check_file_exists,
    _choose_weight_column,
    _describe,
    _Layout,
    _sniff_layout,
)
from tensorkit.base import check_parameters

DEFAULT_BLOCK_BYTES = 64 << 20
_SEEK_PIECE = 1 << 16
_COUNT_PIECE = 1 << 24


@dataclass(frozen=True)
class EdgeBlock:
    """Whole lines of one file: ``data`` starts at byte ``start`` of the (decompressed) text."""

    index: int  # number of the block over all files
    file: int  # position of the file in the reader's list
    start: int
    data: bytes
    lines_before: Optional[int] = None  # newlines before ``start``, when already counted


@dataclass(frozen=True)
class RawEdges:
    """Edges of a block as written: ids (integers or strings) and weights (None: unweighted)."""

    src: np.ndarray
    dst: np.ndarray
    weight: Optional[np.ndarray]

    def __len__(self) -> int:
        return len(self.src)


class EdgeBlockReader:
    """One or more edge-list files, read as numbered blocks of whole lines.

    Parameters
    ----------
    paths : path or sequence of paths
        Regular files (plain, gzip, bz2 or xz); pipes and streams are refused, since blocks are
        read by seeking.
    weighted, delimiter, comments, header, weight_column
        As for :func:`graphkit.read_edgelist`; every file is sniffed on its own and all must agree
        on whether weights are read.
    self_loops : {"keep", "drop"}, default="keep"
        As for :func:`graphkit.read_edgelist`: "drop" leaves out edges from a node to itself (their
        nodes are kept), when the edges become adjacency entries (:func:`directed_triples`).
    block_bytes : int, default=64 MiB
        Size of a block of text; a block ends at the first line end past it.
    """

    def __init__(self, paths: Any, *, weighted: Optional[bool] = None, delimiter: Optional[str] = None,
                 comments: Optional[str] = "#", header: Any = "infer", weight_column: Any = None,
                 self_loops: str = "keep", block_bytes: int = DEFAULT_BLOCK_BYTES):
        check_parameters({key: _OPTION_CONSTRAINTS[key] for key in ("weighted", "header", "weight_column", "self_loops")},
                         {"weighted": weighted, "header": header, "weight_column": weight_column,
                          "self_loops": self_loops}, "EdgeBlockReader")
        self.drop_self_loops = self_loops == "drop"
        _check_characters(delimiter, comments)
        if weighted is False and weight_column is not None:
            raise ValueError("weighted=False and a weight_column contradict each other")
        self.paths = [os.fsdecode(os.fspath(path)) for path in ([paths] if _is_one_path(paths) else list(paths))]
        if not self.paths:
            raise ValueError("no edge-list files given")
        self.block_bytes = int(block_bytes)
        self.layouts, self.choices = [], []
        for path in self.paths:
            _check_file_exists(path)
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise EdgeListError(f"{path}: not a regular file; reading in blocks needs a file it can seek in "
                                    "(write the pipe to a file first)")
            layout = _sniff_layout(path, path, delimiter, comments, header)
            self.layouts.append(layout)
            self.choices.append(_choose_weight_column(weighted, weight_column, layout))
        self.weighted = self.choices[0].column is not None
        disagree = [path for path, choice in zip(self.paths, self.choices) if (choice.column is not None) != self.weighted]
        if disagree:
            raise EdgeListError(f"{disagree[0]}: {'has no' if self.weighted else 'has a'} weight column, unlike "
                                f"{self.paths[0]}; pass weighted=False to read every file unweighted")

    def __repr__(self) -> str:
        return f"EdgeBlockReader({len(self.paths)} file{'s' if len(self.paths) > 1 else ''}, {self.n_bytes} bytes)"

    @property
    def n_bytes(self) -> int:
        """Bytes of all files on disk (compressed size for compressed files)."""
        return sum(os.path.getsize(path) for path in self.paths)

    def describe(self) -> str:
        """One line saying how the (first) file is read."""
        return _describe(self.layouts[0], self.choices[0])

    def blocks(self, rank: int = 0, world_size: int = 1) -> Iterator[EdgeBlock]:
        """The blocks ``i`` with ``i % world_size == rank``, in order, with their text."""
        index = 0
        for number, layout in enumerate(self.layouts):
            first = index
            pieces = (_plain_blocks if layout.compression is None else _compressed_blocks)(
                layout, self.block_bytes, lambda i, first=first: (first + i) % world_size == rank)
            for offset, (start, data, lines_before) in enumerate(pieces):
                index = first + offset + 1
                if data is not None:
                    yield EdgeBlock(first + offset, number, start, data, lines_before)

    def parse(self, block: EdgeBlock) -> RawEdges:
        """The edges of a block as written; raises :class:`EdgeListError` naming file and line."""
        return _parse_block(self.layouts[block.file], self.choices[block.file], block)

    def edges(self, rank: int = 0, world_size: int = 1) -> Iterator[tuple[EdgeBlock, RawEdges]]:
        """``(block, its edges)`` for the blocks of ``rank``."""
        for block in self.blocks(rank, world_size):
            yield block, self.parse(block)


def _is_one_path(paths: Any) -> bool:
    return isinstance(paths, (str, bytes, os.PathLike))


# -- blocks of whole lines --------------------------------------------------------------------------

def _plain_blocks(layout: _Layout, block_bytes: int, keep) -> Iterator[tuple[int, Optional[bytes], None]]:
    size = os.path.getsize(layout.path)
    with open(layout.path, "rb") as handle:
        start, number = 0, 0
        while start < size:
            end = _line_start_at_or_after(handle, min(start + block_bytes, size), size)
            if keep(number):
                handle.seek(start)
                yield start, handle.read(end - start), None
            else:
                yield start, None, None
            start, number = end, number + 1


def _line_start_at_or_after(handle, position: int, size: int) -> int:
    """The first offset at or after ``position`` that starts a line (or the file's end)."""
    if position >= size:
        return size
    handle.seek(position - 1)
    offset = position - 1
    while True:
        piece = handle.read(_SEEK_PIECE)
        if not piece:
            return size
        found = piece.find(b"\n")
        if found >= 0:
            return offset + found + 1
        offset += len(piece)


def _compressed_blocks(layout: _Layout, block_bytes: int, keep) -> Iterator[tuple[int, Optional[bytes], int]]:
    try:
        with OPENERS[layout.compression](layout.path, "rb") as handle:
            start, number, lines_before = 0, 0, 0
            while True:
                data = handle.read(block_bytes)
                if not data:
                    return
                if not data.endswith(b"\n"):
                    data += handle.readline()
                yield start, (data if keep(number) else None), lines_before
                start, number = start + len(data), number + 1
                lines_before += data.count(b"\n")
    except (OSError, EOFError) as exc:
        raise layout.error(f"cannot be read as {layout.compression} data ({exc})") from exc


def _lines_before(layout: _Layout, block: EdgeBlock) -> int:
    """Newlines in the file before the block (counted only when an error needs a line number)."""
    if block.lines_before is not None:
        return block.lines_before
    count, left = 0, block.start
    with open(layout.path, "rb") as handle:
        while left > 0:
            piece = handle.read(min(_COUNT_PIECE, left))
            if not piece:
                break
            count += piece.count(b"\n")
            left -= len(piece)
    return count


# -- parsing a block --------------------------------------------------------------------------------

def _parse_block(layout: _Layout, choice, block: EdgeBlock) -> RawEdges:
    all_fields = choice.column is not None
    sampled_strings = not all(len(fields) < 2 or (is_integer(fields[0]) and is_integer(fields[1]))
                              for fields in layout.sample)
    table = _read_block(layout, block, all_fields, ids_as_strings=sampled_strings)
    if not sampled_strings and not (_integer_columns(table) and _plain_integers(layout, block)):
        table = _read_block(layout, block, all_fields, ids_as_strings=True)
    weight = None if choice.column is None else _weights(table.iloc[:, choice.column], layout, block)
    return RawEdges(_ids(table.iloc[:, 0]), _ids(table.iloc[:, 1]), weight)


def _ids(column: pd.Series) -> np.ndarray:
    if column.dtype.kind in "iu":
        return column.to_numpy()
    return column.astype(str).to_numpy(dtype=object)


def _integer_columns(table: pd.DataFrame) -> bool:
    return all(table.dtypes.iloc[column].kind in "iu" for column in (0, 1))


def _plain_integers(layout: _Layout, block: EdgeBlock) -> bool:
    breaks = FIELD_BREAKS + (layout.delimiter or "").encode()
    if not padded_integer_starts(np.frombuffer(b"\n" + block.data + b"\n\n", np.uint8), breaks):
        return True
    ids = _read_block(layout, block, all_fields=False, ids_as_strings=True)
    return all(ids.iloc[:, column].str.fullmatch(CANONICAL_INTEGER.pattern).all() for column in (0, 1))


def _read_block(layout: _Layout, block: EdgeBlock, all_fields: bool, ids_as_strings: bool) -> pd.DataFrame:
    skip = [layout.header_line - 1] if layout.header_line is not None and block.start == 0 else None
    options = dict(
        sep=r"\s+" if layout.delimiter is None else layout.delimiter, header=None, engine="c",
        comment=layout.comments, skip_blank_lines=True, skiprows=skip,
        usecols=None if all_fields else [0, 1], dtype={0: str, 1: str} if ids_as_strings else None,
        keep_default_na=False, na_values=[""], encoding="utf-8",
    )
    if layout.delimiter is not None:
        options["skipinitialspace"] = True
    if _PANDAS_ROUNDS_FLOATS:
        options["float_precision"] = "round_trip"
    try:
        table = pd.read_csv(io.BytesIO(block.data), **options)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({0: np.zeros(0, np.int64), 1: np.zeros(0, np.int64)})
    except (pd.errors.ParserError, ValueError) as exc:
        raise _first_bad_line(layout, block, all_fields, exc) from exc
    except UnicodeDecodeError as exc:
        raise layout.error(f"cannot be read as UTF-8 text ({exc})") from exc
    if table.shape[1] < 2 or (all_fields and table.shape[1] != layout.n_fields) or table.isna().to_numpy().any():
        missing = table.isna().to_numpy()
        if table.shape[1] >= 2 and missing.all(axis=1).any() and not (missing.any(axis=1) & ~missing.all(axis=1)).any() \
                and not (all_fields and table.shape[1] != layout.n_fields):
            return table[~missing.all(axis=1)].reset_index(drop=True)
        raise _first_bad_line(layout, block, all_fields, None)
    return table


def _block_lines(layout: _Layout, block: EdgeBlock) -> Iterator[tuple[int, list[str]]]:
    """``(line number in the file, fields)`` of each edge line of the block."""
    first = _lines_before(layout, block) + 1
    for offset, raw in enumerate(block.data.decode("utf-8", errors="replace").split("\n")):
        number = first + offset
        if number == layout.header_line:
            continue
        line = raw.split(layout.comments, 1)[0] if layout.comments else raw
        content = line.strip(" \t\r")
        fields = split(content, layout.delimiter) if content else []
        if any(fields):
            yield number, fields


def _first_bad_line(layout: _Layout, block: EdgeBlock, all_fields: bool, cause) -> EdgeListError:
    for number, fields in _block_lines(layout, block):
        if len(fields) < 2:
            return layout.error(f"has {len(fields)} field; an edge needs a source and a target", number)
        if all_fields and len(fields) != layout.n_fields:
            return layout.error(f"has {len(fields)} fields, but line {layout.first_edge_line} has {layout.n_fields}",
                                number)
        empty = [position + 1 for position, field in enumerate(fields) if not field]
        if empty:
            return layout.error(f"field {empty[0]} is empty", number)
    reason = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    return layout.error(f"cannot be parsed ({reason})" if reason else "cannot be parsed")


def _weights(column: pd.Series, layout: _Layout, block: EdgeBlock) -> np.ndarray:
    weights = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.argmax(bad))
        line = next((number for position, (number, _) in enumerate(_block_lines(layout, block)) if position == row),
                    None)
        raise layout.error(weight_problem(column.iloc[row]), line)
    return weights


# -- node ids agreed over blocks --------------------------------------------------------------------

def distinct_ids(raw: RawEdges) -> np.ndarray:
    """The distinct ids of a block's edges, sorted (integers or strings)."""
    return merge_ids([raw.src, raw.dst])


def merge_ids(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Sorted distinct ids of ``parts``: integers if every part holds integers, else all as strings.

    Integers are int64 when every id fits, uint64 when none is negative, else Python integers, as
    :meth:`graphkit.Graph.from_edges` keeps them; integer ids among strings become their decimal
    text (they were written plainly, so that is how they were written).
    """
    parts = [np.asarray(part) for part in parts if len(part)]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    if all(part.dtype.kind in "iu" for part in parts):
        kinds = {part.dtype for part in parts}
        if len(kinds) > 1:
            parts = _common_integers(parts)
        return _sorted_distinct_integers(np.concatenate(parts))
    texts = [part if part.dtype == object else part.astype(str).astype(object) for part in parts]
    distinct = pd.unique(np.concatenate(texts).astype(object))
    return distinct[np.argsort(distinct.astype(str), kind="stable")]   # fixed-width text sorts fast


def _dense_table_fits(largest: int, count: int) -> bool:
    """Whether a table indexed by the ids themselves is small next to the data (at most 4 entries per value)."""
    return largest < 4 * count + 1024


def _sorted_distinct_integers(values: np.ndarray) -> np.ndarray:
    """``numpy.unique`` of integers: through a presence table for small non-negative ids, else by hashing."""
    if values.dtype == object:
        return np.unique(values)
    if values.size and values.min() >= 0 and _dense_table_fits(int(values.max()), values.size):
        present = np.zeros(int(values.max()) + 1, dtype=bool)
        present[values] = True
        return np.flatnonzero(present).astype(values.dtype, copy=False)
    return np.sort(pd.unique(values))


def _common_integers(parts: list) -> list:
    int64 = np.iinfo(np.int64)
    if all(part.min() >= int64.min and part.max() <= int64.max for part in parts):
        return [part.astype(np.int64) for part in parts]
    if all(part.min() >= 0 for part in parts):
        return [part.astype(np.uint64) for part in parts]
    return [part.astype(object) for part in parts]


def positions_of(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The position of each of ``values`` in the sorted distinct ``ids`` (all must be there)."""
    values = np.asarray(values)
    if ids.dtype == object and values.dtype != object:
        values = values.astype(str).astype(object)
    elif ids.dtype != object and values.dtype != ids.dtype:
        values = values.astype(ids.dtype)
    if ids.dtype.kind in "iu" and len(ids) and ids[0] >= 0 and _dense_table_fits(int(ids[-1]), len(ids) + len(values)):
        table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
        table[ids] = np.arange(len(ids))
        inside = (values >= 0) & (values <= ids[-1])
        found = table[np.where(inside, values, 0)] if inside.all() else np.where(inside, table[np.where(inside, values, 0)], -1)
    else:
        found = pd.Index(ids).get_indexer(values)   # a hash table: faster than binary search for many values
    if len(found) and found.min() < 0:
        raise ValueError(f"node id {values[int(np.argmin(found))]!r} is not among the agreed node ids")
    return found.astype(np.int64, copy=False)


# -- adjacency entries with the reader's defaults --------------------------------------------------------

def directed_triples(rows: np.ndarray, cols: np.ndarray, weights: Optional[np.ndarray],
                     directed: bool, drop_self_loops: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, values)`` of the adjacency entries the edges give.

    Edges of weight 0 are dropped, and self loops with ``drop_self_loops``; an undirected edge
    ``(u, v)`` with ``u != v`` gives both ``(u, v)`` and ``(v, u)``; a self loop is one entry.
    Repeats are left for :func:`max_merged_csr`.
    """
    values = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
    kept = values > 0 if weights is not None else np.ones(len(rows), dtype=bool)
    if drop_self_loops:
        kept &= rows != cols
    if not kept.all():
        rows, cols, values = rows[kept], cols[kept], values[kept]
    if directed:
        return rows, cols, values
    mirrored = rows != cols
    return (np.concatenate([rows, cols[mirrored]]), np.concatenate([cols, rows[mirrored]]),
            np.concatenate([values, values[mirrored]]))


def max_merged_csr(rows: np.ndarray, cols: np.ndarray, values: Optional[np.ndarray],
                   shape: tuple[int, int]) -> sp.csr_matrix:
    """A float64 CSR matrix with sorted indices, repeated ``(row, col)`` entries combined by maximum.

    ``values`` None: every entry is 1.
    """
    n_rows, n_cols = shape
    keys = rows.astype(np.int64, copy=False) * max(n_cols, 1) + cols
    if values is None:
        values = np.ones(1)
    same_values = len(values) > 0 and (len(values) == 1 or bool((values == values[0]).all()))
    if same_values:   # unweighted: the keys alone sort, about twice as fast as an argsort
        keys = np.sort(keys)
    else:
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(first)
    if same_values:
        merged = np.full(len(starts), float(values[0]))
    else:
        merged = np.maximum.reduceat(values, starts) if len(starts) else np.zeros(0)
    row_of, col_of = np.divmod(keys[starts], max(n_cols, 1))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=n_rows), out=indptr[1:])
    matrix = sp.csr_matrix((merged, col_of.astype(np.int64), indptr), shape=shape)
    matrix.has_sorted_indices = True
    return matrix
