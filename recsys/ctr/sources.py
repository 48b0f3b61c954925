"""Streamed CTR data sources: click logs in files, read in chunks, shared out over processes.

A :class:`ChunkSource` takes a path, a list of paths or a glob pattern of files in one format:

- ``"criteo"``: the Criteo format (:func:`recsys.ctr.data.iter_criteo`), label column ``label``;
- ``"avazu"``: the Avazu format (:func:`recsys.ctr.data.iter_avazu`), label column ``click``;
- ``"parquet"``: parquet files (read with pyarrow), label column ``label`` or else ``click``;

text files may be gzip-compressed. :meth:`ChunkSource.chunks` yields the rows in chunks of at most
``chunksize`` rows, numbered 0, 1, 2, ... over the files in order; under ``world_size`` processes
rank ``r`` gets the chunks whose number is ``r`` modulo ``world_size`` and skips the others without
parsing them, so the ranks together read every row exactly once and each parses only its share.

Examples
--------
>>> import tempfile, pathlib
>>> from recsys.ctr.data import write_criteo
>>> from recsys.ctr.sources import ChunkSource
>>> from recsys.datasets import make_criteo_like
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> for day in range(2):
...     write_criteo(make_criteo_like(n_samples=5, random_state=day), folder / f"day_{day}.txt")
>>> source = ChunkSource(str(folder / "day_*.txt"), chunksize=2)
>>> source.format, source.label_column, source.n_chunks()
('criteo', 'label', 6)
>>> [(chunk.ordinal, chunk.where) for chunk in source.chunks(rank=1, world_size=2)]
[(1, 'day_0.txt, lines 3-4'), (3, 'day_1.txt, lines 1-2'), (5, 'day_1.txt, lines 5-5')]
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional

import numpy as np
import pandas as pd

from recsys.ctr._text_blocks import count_lines, head_bytes, line_blocks
from recsys.ctr.data import (AVAZU_CATEGORICAL, CRITEO_CATEGORICAL, CRITEO_DENSE, _check_avazu_header,
                             _criteo_layout, _parse_avazu_block, _parse_criteo_block)
from recsys.ctr.schema import Schema
from tensorkit.base import StrOptions, check_parameters, integers

__all__ = ["Chunk", "ChunkSource", "DATA_FORMATS", "detect_format", "is_path_like", "resolve_paths"]

DATA_FORMATS = ("criteo", "avazu", "parquet")
_GLOB_CHARACTERS = ("*", "?", "[")
_PARQUET_MAGIC = b"PAR1"
_AVAZU_START = b"id,click,"
_MISSING_PYARROW = "reading parquet files needs pyarrow: pip install pyarrow"


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(_MISSING_PYARROW) from error
    return pq


# ------------------------------------------------------------------------------------------------
# Paths

def _is_single_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def is_path_like(X: Any) -> bool:
    """Whether ``X`` names files: a ``str``, an ``os.PathLike``, or a non-empty list or tuple of them.

    Examples
    --------
    >>> is_path_like("data/day_*.txt"), is_path_like(["a.txt", "b.txt"]), is_path_like([]), is_path_like([[0, 1]])
    (True, True, False, False)
    """
    if _is_single_path(X):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(_is_single_path(item) for item in X)


def _expand(item: Any) -> list:
    """The files one path or glob pattern names (a glob sorted), or a ``FileNotFoundError`` naming it."""
    text = os.path.expanduser(os.fspath(item))
    if not os.path.exists(text) and any(c in text for c in _GLOB_CHARACTERS):
        matches = sorted(glob.glob(text))
        if not matches:
            raise FileNotFoundError(f"no file matches the pattern {text!r}")
        return [Path(match) for match in matches]
    if not os.path.exists(text):
        raise FileNotFoundError(f"no file at {text!r}")
    return [Path(text)]


def resolve_paths(X: Any) -> tuple:
    """The files named by a path, a glob pattern (``*``, ``?``, ``[``) or a list of them.

    Files come in the given order across list items, sorted within each glob.

    Raises
    ------
    TypeError
        ``X`` is not path-like (see :func:`is_path_like`).
    FileNotFoundError
        A path that does not exist or a pattern that matches nothing (named).
    IsADirectoryError
        A path (or a match of a pattern) is a folder.
    ValueError
        The same file named twice.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.txt", "a.txt", "c.csv"):
    ...     _ = (folder / name).write_text("")
    >>> [p.name for p in resolve_paths([folder / "c.csv", str(folder / "*.txt")])]
    ['c.csv', 'a.txt', 'b.txt']
    """
    if not is_path_like(X):
        raise TypeError(f"X must be a path, a glob pattern or a non-empty list of them (str or os.PathLike); "
                        f"got {type(X).__name__}")
    items = [X] if _is_single_path(X) else list(X)
    files, seen = [], {}
    for item in items:
        for path in _expand(item):
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a folder; name its files (a glob such as "
                                        f"{str(path / '*')!r}) instead")
            key = path.resolve()
            if key in seen:
                raise ValueError(f"{path} is named twice (also as {seen[key]}); every file is read once")
            seen[key] = path
            files.append(path)
    return tuple(files)


def detect_format(path: Any) -> str:
    """``"parquet"`` (a file starting with ``PAR1``), ``"avazu"`` (a first line starting with
    ``id,click,``) or ``"criteo"``; gzip-compressed text is looked at decompressed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.csv"
    >>> _ = path.write_text("id,click,hour\\n")
    >>> detect_format(path)
    'avazu'
    """
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC:
            return "parquet"
    head = head_bytes(path)
    return "avazu" if head and head[0].startswith(_AVAZU_START) else "criteo"


# ------------------------------------------------------------------------------------------------
# Chunks

class Chunk(NamedTuple):
    """Rows ``where`` of the source: chunk ``ordinal``, its features and its 0/1 labels."""

    ordinal: int
    features: pd.DataFrame
    labels: np.ndarray
    where: str


def _owner(start: int, rank: int, world_size: int) -> Callable[[int], bool]:
    """Whether a file's chunk ``index`` (global number ``start + index``) belongs to ``rank``."""
    return lambda index: (start + index) % world_size == rank


def _narrowed(owned: Callable[[int], bool], start: int, select: Callable[[int], bool]) -> Callable[[int], bool]:
    return lambda index: owned(index) and bool(select(start + index))


def _n_chunks(n_rows: int, chunksize: int) -> int:
    return -(-n_rows // chunksize)


class _TextFormat:
    """How one text format is laid out and parsed (Criteo or Avazu)."""

    def __init__(self, name: str):
        self.name = name
        self.label = "label" if name == "criteo" else "click"
        self.dropped = [self.label] if name == "criteo" else ["id", "click"]

    def layout(self, path: Path) -> tuple:
        """``(separator, header lines)``, after checking the first line."""
        if self.name == "criteo":
            separator, has_header = _criteo_layout(path)
            return separator, int(has_header)
        _check_avazu_header(path)
        return ",", 1

    def parse(self, path: Path, first: int, lines: list, separator: str) -> tuple:
        chunk = _parse_criteo_block(path, first, lines, separator) if self.name == "criteo" \
            else _parse_avazu_block(path, first, lines)
        labels = chunk[self.label].to_numpy(dtype=np.int64)
        return chunk.drop(columns=self.dropped).reset_index(drop=True), labels


def _parquet_labels(path: Path, start: int, values: Any, column: str) -> np.ndarray:
    """A label column as int64 0/1, or a ``ValueError`` naming the file and row (1-based)."""
    numbers = values.to_numpy(zero_copy_only=False)
    numbers = np.asarray(pd.array(numbers).to_numpy(dtype=np.float64, na_value=np.nan)
                         if numbers.dtype == object else numbers, dtype=np.float64)
    bad = np.flatnonzero(~np.isin(numbers, (0.0, 1.0)))
    if bad.size:
        value = values[int(bad[0])].as_py()
        shown = "a missing value" if value is None else repr(value)
        raise ValueError(f"{path}, row {start + int(bad[0]) + 1}: {column} must be 0 or 1; got {shown}")
    return numbers.astype(np.int64)


def _parquet_field_kind(path: Path, field: Any) -> str:
    import pyarrow as pa

    kind = field.type
    if pa.types.is_dictionary(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind) \
            or pa.types.is_boolean(kind) or getattr(pa.types, "is_string_view", lambda _: False)(kind):
        return "categorical"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "dense"
    raise ValueError(f"{path}: column {field.name!r} has type {kind}, neither a number nor a category "
                     f"(string, boolean, dictionary); give a schema naming the fields to use")


class ChunkSource:
    """Files of CTR rows in one format, streamed in chunks of at most ``chunksize`` rows.

    Parameters
    ----------
    X : str, os.PathLike, or list of them
        A path, a glob pattern or a list of paths and patterns (see :func:`resolve_paths`).
    data_format : {"auto", "criteo", "avazu", "parquet"}, default="auto"
        ``"auto"`` detects the format of every file (:func:`detect_format`); all must agree.
    chunksize : int, default=100_000
        The most rows in a chunk; every file starts a new chunk.

    Attributes
    ----------
    files : tuple of Path
    format : {"criteo", "avazu", "parquet"}
    label_column : str
        ``"label"`` (Criteo), ``"click"`` (Avazu); for parquet ``"label"`` if a file has it, else ``"click"``.
    chunksize : int

    Raises
    ------
    ValueError
        Files of two formats (both named), a file that is not in the given format, a first line that
        is not a Criteo row or the Avazu header, parquet files whose columns or types differ (the file
        named) or that have no ``label``/``click`` column.
    FileNotFoundError, IsADirectoryError, TypeError
        See :func:`resolve_paths`.
    ImportError
        Parquet files without pyarrow installed.

    Notes
    -----
    Parquet chunks are cut at multiples of ``chunksize`` rows in each file, whatever its row groups;
    a rank reads only the row groups its chunks overlap. Rows are numbered from 1 in ``where`` and
    in errors (lines for text files, counting a header line, rows for parquet).
    """

    def __init__(self, X: Any, data_format: str = "auto", chunksize: int = 100_000):
        check_parameters({"data_format": [StrOptions({"auto", *DATA_FORMATS})], "chunksize": [integers(1)]},
                         {"data_format": data_format, "chunksize": chunksize}, "ChunkSource")
        self.files = resolve_paths(X)
        self.chunksize = int(chunksize)
        self.format = self._common_format(data_format)
        if self.format == "parquet":
            self._parquet_schema = self._check_parquet_files()
            self.label_column = self._parquet_label_column()
        else:
            self._text = _TextFormat(self.format)
            self._layouts = tuple(self._text.layout(path) for path in self.files)
            self.label_column = self._text.label

    def __repr__(self) -> str:
        shown = ", ".join(repr(str(path)) for path in self.files[:3])
        more = f", ... ({len(self.files)} files)" if len(self.files) > 3 else ""
        return f"ChunkSource([{shown}{more}], data_format={self.format!r}, chunksize={self.chunksize})"

    # -- construction checks ---------------------------------------------------------------------

    def _common_format(self, data_format: str) -> str:
        detected = [(path, detect_format(path)) for path in self.files]
        if data_format != "auto":
            for path, found in detected:
                if found != data_format:
                    raise ValueError(f"data_format={data_format!r} but {path} is a {found} file")
            return data_format
        first_path, first = detected[0]
        for path, found in detected[1:]:
            if found != first:
                raise ValueError(f"the files must have one format; {first_path} is {first} but {path} is {found}")
        return first

    def _check_parquet_files(self) -> Any:
        pq = _pyarrow_parquet()
        schema = pq.read_schema(self.files[0])
        for path in self.files[1:]:
            other = pq.read_schema(path)
            if not other.equals(schema, check_metadata=False):
                raise ValueError(f"{path} has the columns {_describe(other)}, but {self.files[0]} has "
                                 f"{_describe(schema)}; all parquet files must have the same columns and types")
        return schema

    def _parquet_label_column(self) -> str:
        names = [name for name in self._parquet_schema.names if not _is_index_column(name)]
        label = next((name for name in ("label", "click") if name in names), None)
        if label is None:
            raise ValueError(f"{self.files[0]} has no label column ('label' or 'click'); its columns are {names}")
        import pyarrow as pa

        kind = self._parquet_schema.field(label).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            raise ValueError(f"{self.files[0]}: the label column {label!r} must hold 0/1 numbers; it has type {kind}")
        return label

    # -- public ------------------------------------------------------------------------------------

    def default_schema(self) -> Schema:
        """The fields used when none are given: Criteo's I1-I13 (dense) and C1-C26 (categorical);
        Avazu's columns but ``id`` and ``click`` (categorical); for parquet the columns but the
        label, strings, booleans and dictionaries categorical, numbers dense."""
        if self.format == "criteo":
            return Schema(dense=CRITEO_DENSE, categorical=CRITEO_CATEGORICAL)
        if self.format == "avazu":
            return Schema(categorical=AVAZU_CATEGORICAL)
        dense, categorical = [], []
        for name in self._feature_columns():
            field = self._parquet_schema.field(name)
            (dense if _parquet_field_kind(self.files[0], field) == "dense" else categorical).append(name)
        return Schema(dense=dense, categorical=categorical)

    def chunks(self, rank: int = 0, world_size: int = 1, select: Optional[Callable[[int], bool]] = None
               ) -> Iterator[Chunk]:
        """The chunks numbered ``rank``, ``rank + world_size``, ... (all of them for one process).

        ``select(ordinal)``, when given, narrows them further (e.g. to the chunks held out for
        validation). The other chunks are skipped without being parsed. A row that cannot be read
        raises a ``ValueError`` naming its file and line (row for parquet).
        """
        check_parameters({"rank": [integers(0)], "world_size": [integers(1)]},
                         {"rank": rank, "world_size": world_size}, "ChunkSource.chunks")
        if rank >= world_size:
            raise ValueError(f"rank must be below world_size={world_size}; got {rank}")
        reader = self._parquet_chunks if self.format == "parquet" else self._text_chunks
        start = 0
        for index, path in enumerate(self.files):
            owned = _owner(start, int(rank), int(world_size))
            if select is not None:
                owned = _narrowed(owned, start, select)
            start += yield from reader(index, path, owned, start)

    def n_chunks(self) -> int:
        """The number of chunks over all files (lines counted without parsing; parquet: from the metadata)."""
        return sum(self._file_chunks(index, path) for index, path in enumerate(self.files))

    def first_rows(self, n: int) -> tuple:
        """``(features, labels)`` of the first ``n`` rows over the files in order (all rows if fewer)."""
        check_parameters({"n": [integers(1)]}, {"n": n}, "ChunkSource.first_rows")
        features, labels, left = [], [], int(n)
        for index, path in enumerate(self.files):
            for frame, y in self._head(index, path, left):
                features.append(frame)
                labels.append(y)
                left -= len(y)
            if left == 0:
                break
        if not labels:
            raise ValueError(f"the files hold no rows: {', '.join(str(path) for path in self.files)}")
        return pd.concat(features, ignore_index=True), np.concatenate(labels)

    # -- text files --------------------------------------------------------------------------------

    def _text_chunks(self, index: int, path: Path, owned: Callable[[int], bool], start: int) -> Iterator[Chunk]:
        """The file's chunks that ``owned`` picks; returns the number of chunks in the file."""
        separator, header = self._layouts[index]
        n_blocks = 0
        for block in line_blocks(path, header, self.chunksize, keep=owned):
            n_blocks = block.index + 1
            if block.lines is None:
                continue
            features, labels = self._text.parse(path, block.first, block.lines, separator)
            yield Chunk(start + block.index, features, labels,
                        f"{path.name}, lines {block.first}-{block.first + block.count - 1}")
        return n_blocks

    def _file_chunks(self, index: int, path: Path) -> int:
        if self.format == "parquet":
            return _n_chunks(_pyarrow_parquet().ParquetFile(path).metadata.num_rows, self.chunksize)
        header = self._layouts[index][1]
        return _n_chunks(max(count_lines(path) - header, 0), self.chunksize)

    def _head(self, index: int, path: Path, n: int) -> Iterator[tuple]:
        if self.format == "parquet":
            parquet = _pyarrow_parquet().ParquetFile(path)
            seen = 0
            for batch in parquet.iter_batches(batch_size=min(n, self.chunksize), columns=self._read_columns()):
                batch = batch.slice(0, n - seen)
                yield self._parquet_frame(path, seen, batch)
                seen += batch.num_rows
                if seen >= n:
                    return
            return
        separator, header = self._layouts[index]
        for block in line_blocks(path, header, min(n, self.chunksize), limit=n):
            yield self._text.parse(path, block.first, block.lines, separator)

    # -- parquet files -----------------------------------------------------------------------------

    def _feature_columns(self) -> list:
        return [name for name in self._parquet_schema.names
                if name != self.label_column and not _is_index_column(name)]

    def _read_columns(self) -> list:
        return self._feature_columns() + [self.label_column]

    def _parquet_frame(self, path: Path, start: int, batch: Any) -> tuple:
        labels = _parquet_labels(path, start, batch.column(self.label_column), self.label_column)
        import pyarrow as pa

        table = pa.Table.from_batches([batch]).select(self._feature_columns())
        features = table.to_pandas(ignore_metadata=True)
        return features, labels

    def _parquet_chunks(self, index: int, path: Path, owned: Callable[[int], bool], start: int) -> Iterator[Chunk]:
        """The file's chunks that ``owned`` picks, reading only the row groups they overlap; returns the
        number of chunks in the file."""
        parquet = _pyarrow_parquet().ParquetFile(path)
        size, n_rows = self.chunksize, parquet.metadata.num_rows
        wanted = [k for k in range(_n_chunks(n_rows, size)) if owned(k)]
        for run_start, batches in _row_group_runs(parquet, wanted, size, self._read_columns()):
            for local, batch in _rechunked(batches, run_start, size, n_rows, owned):
                features, labels = self._parquet_frame(path, local * size, batch)
                yield Chunk(start + local, features, labels,
                            f"{path.name}, rows {local * size + 1}-{local * size + batch.num_rows}")
        return _n_chunks(n_rows, size)


def _is_index_column(name: str) -> bool:
    """pandas' stored index (``__index_level_0__``, ...), not a feature."""
    return name.startswith("__index_level_") and name.endswith("__")


def _describe(schema: Any) -> str:
    return "[" + ", ".join(f"{field.name}: {field.type}" for field in schema) + "]"


def _row_group_runs(parquet: Any, wanted: list, size: int, columns: list) -> Iterator[tuple]:
    """``(first row, batches)`` for each run of consecutive row groups that overlap a wanted chunk; the
    other row groups are never read."""
    metadata = parquet.metadata
    bounds = np.cumsum([0] + [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)])
    needed = np.zeros(metadata.num_row_groups, dtype=bool)
    for k in wanted:
        lo, hi = k * size, min((k + 1) * size, int(bounds[-1]))
        needed |= (bounds[:-1] < hi) & (bounds[1:] > lo)
    group = 0
    while group < len(needed):
        if not needed[group]:
            group += 1
            continue
        end = group
        while end < len(needed) and needed[end]:
            end += 1
        yield int(bounds[group]), parquet.iter_batches(batch_size=size, row_groups=list(range(group, end)),
                                                       columns=columns)
        group = end


def _rechunked(batches: Iterator, first_row: int, size: int, n_rows: int,
               owned: Callable[[int], bool]) -> Iterator[tuple]:
    """``(chunk index k in the file, batch)`` for the owned chunks (rows ``[k size, (k + 1) size)``) that
    lie wholly inside the run of batches starting at row ``first_row``, whatever the batches' bounds."""
    import pyarrow as pa

    pieces, row = [], first_row
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            k = row // size
            end = min((k + 1) * size, n_rows)
            take = min(end - row, batch.num_rows - offset)
            pieces.append(batch.slice(offset, take))
            offset, row = offset + take, row + take
            if row == end:
                complete = sum(piece.num_rows for piece in pieces) == end - k * size
                if complete and owned(k):
                    yield k, pieces[0] if len(pieces) == 1 else \
                        pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]
                pieces = []
