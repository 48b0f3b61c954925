"""Embedding files: what ``graphkit embed`` writes, and :func:`read_embedding` to read any of it back.

One file holds node ids and vectors in one of the formats below (picked by the extension); a
``.npy`` output is the plain ``(n_nodes, dim)`` float matrix that ``np.load`` returns, its node ids
in a second file beside it (``NAME.ids.npy``: integers, or fixed-width text that loads without
pickle). A partitioned run (``torchrun ... -m graphkit embed EDGES --out DIR/``) writes a folder holding one
shard per process (``part-00000.npy``, ... or ``.parquet``) and an ``index.json`` naming them.

====================  ===========================================================================
``.csv`` / ``.tsv``   ``id``, then one column per dimension (``dim_0``, ``dim_1``, ...)
``.txt`` / ``.emb``   word2vec text: a ``n_nodes dim`` line, then ``id v0 v1 ...``
``.npy``              the ``(n_nodes, dim)`` matrix; the ids in ``NAME.ids.npy`` beside it
``.npz``              arrays ``ids`` and ``embedding``
``.parquet``          ``id`` and ``dim_*`` columns (needs pyarrow)
====================  ===========================================================================

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "emb.npy")
>>> write_embedding(path, np.array(["a", "b"]), np.eye(2, dtype=np.float32))
>>> np.load(path).shape, np.load(ids_path(path)).tolist()
((2, 2), ['a', 'b'])
>>> ids, embedding = read_embedding(path)
>>> ids.tolist(), embedding.shape
(['a', 'b'], (2, 2))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

__all__ = ["FORMATS", "ids_path", "read_embedding", "write_embedding"]

FORMATS = (".npy", ".npz", ".csv", ".tsv", ".txt", ".emb", ".parquet")
SHARD_FORMATS = (".npy", ".parquet")
WORD2VEC_FORMATS = (".txt", ".emb")
INDEX_NAME = "index.json"
_INDEX_KIND = "graphkit-embedding-shards"
_ROWS_PER_WRITE = 65536
NON_FINITE_HINT = (
    "the degree normalisation overflowed or underflowed: bring --beta closer to 0, lower the "
    "--iteration-weights, or rescale edge weights that are very large or very small "
    "(--unweighted ignores them)"
)


def write_embedding(path: os.PathLike | str, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    """Write embeddings with their node ids; the file appears only once it is complete.

    The rows go to a temporary file beside the target (made with :func:`tempfile.mkstemp`),
    which then replaces it in one step. An existing target keeps its permission bits; a new one
    gets the usual ones (0666 less the umask). A symbolic link keeps pointing at the file it
    names, which is the one replaced. On any error the temporary is removed (SIGTERM included
    when the ``graphkit`` command runs); only a SIGKILL can leave it behind. ``embedding`` may be
    a memory-mapped array: the text formats are written block by block.

    Parameters
    ----------
    path : path-like
        Output file; its extension picks the format (see the module's table). For ``.npy`` the
        ids go to :func:`ids_path` of it, written before the matrix.
    node_ids : ndarray of shape (n_nodes,)
    embedding : ndarray of shape (n_nodes, dim)

    Raises
    ------
    ValueError
        For an unknown extension, a missing folder, a target that is not a regular file,
        non-finite values in ``embedding``, or ids holding whitespace in the word2vec
        formats (.txt, .emb).
    """
    from tensorkit.utils import replaced_atomically
    from tensorkit.validation import check_finite_result

    target = checked_output_path(Path(path))
    suffix = target.suffix.lower()
    for start, stop in _row_blocks(len(embedding)):
        check_finite_result(np.asarray(embedding[start:stop]), "the embedding", hint=NON_FINITE_HINT)
    if suffix in WORD2VEC_FORMATS:
        _check_word2vec_ids(node_ids, path)
    if suffix == ".npy":
        write_node_ids(path, node_ids)
    with replaced_atomically(target, suffix=suffix) as temporary:
        _write_format(temporary, suffix, node_ids, embedding)


def ids_path(path: os.PathLike | str) -> Path:
    """The file of node ids beside a ``.npy`` embedding: ``emb.npy`` -> ``emb.ids.npy``."""
    path = Path(path)
    return path.with_name(path.name[: -len(path.suffix)] + ".ids.npy")


def write_node_ids(path: os.PathLike | str, node_ids: np.ndarray) -> None:
    """Write the ids of the ``.npy`` embedding ``path`` to :func:`ids_path` of it, atomically."""
    from tensorkit.utils import replaced_atomically

    target = checked_output_path(ids_path(path))
    with replaced_atomically(target, suffix=".npy") as temporary:
        np.save(temporary, storable_ids(node_ids), allow_pickle=False)


def checked_output_path(path: Path, formats: tuple = FORMATS) -> Path:
    """The file to write for ``path``: the file a symbolic link names, checked writable."""
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise ValueError(f"cannot write {path}: unknown extension {suffix!r}; use one of {', '.join(formats)}")
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {path.parent} does not exist")
    if target.exists() and not target.is_file():
        raise ValueError(f"cannot write {path}: it exists and is not a regular file")
    return target


def _check_word2vec_ids(node_ids: np.ndarray, path: os.PathLike | str) -> None:
    as_text = np.asarray(node_ids).astype(str)
    spaced = [str(node) for node in as_text if len(node.split()) != 1]
    if spaced:
        raise ValueError(
            f"cannot write {path}: node id {spaced[0]!r} holds whitespace (or is empty), which the "
            "word2vec text format cannot keep apart from the vector; use .csv, .tsv or .npy"
        )


def storable_ids(node_ids: np.ndarray) -> np.ndarray:
    """String ids as fixed-width text (NumPy files then load without pickle); others unchanged."""
    node_ids = np.asarray(node_ids)
    return node_ids.astype(str) if node_ids.dtype == object else node_ids


def _write_format(path: Path, suffix: str, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    node_ids = storable_ids(node_ids)
    if suffix == ".npy":
        matrix = np.lib.format.open_memmap(path, mode="w+", dtype=embedding.dtype, shape=embedding.shape)
        for start, stop in _row_blocks(len(node_ids)):
            matrix[start:stop] = embedding[start:stop]
        matrix.flush()
        del matrix
    elif suffix == ".npz":
        np.savez(path, ids=node_ids, embedding=np.asarray(embedding))
    elif suffix in WORD2VEC_FORMATS:
        with open(path, "w") as stream:
            stream.write(f"{embedding.shape[0]} {embedding.shape[1]}\n")
            write_rows(stream, node_ids, embedding, " ")
    elif suffix == ".parquet":
        _write_parquet(path, node_ids, embedding)
    else:
        with open(path, "w") as stream:
            write_rows(stream, node_ids, embedding, "," if suffix == ".csv" else "\t", header=True)


def _row_blocks(n_rows: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_rows, _ROWS_PER_WRITE):
        yield start, min(start + _ROWS_PER_WRITE, n_rows)
    if n_rows == 0:
        yield 0, 0


def _embedding_frame(node_ids: np.ndarray, embedding: np.ndarray):
    import pandas as pd

    frame = pd.DataFrame(np.asarray(embedding), columns=[f"dim_{i}" for i in range(embedding.shape[1])])
    frame.insert(0, "id", node_ids)
    return frame


def _write_parquet(path: Path, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for start, stop in _row_blocks(len(node_ids)):
            table = pa.Table.from_pandas(_embedding_frame(node_ids[start:stop], embedding[start:stop]),
                                         preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def write_rows(stream, node_ids: np.ndarray, embedding: np.ndarray, separator: str, header: bool = False) -> None:
    """CSV-like rows (``id, v0, v1, ...``) to an open text stream, block by block."""
    for start, stop in _row_blocks(len(node_ids)):
        frame = _embedding_frame(node_ids[start:stop], embedding[start:stop])
        frame.to_csv(stream, sep=separator, index=False, header=header and start == 0, float_format="%.7g")


# -- shards of a partitioned run -------------------------------------------------------------------

def shard_name(rank: int, suffix: str = ".npy") -> str:
    return f"part-{rank:05d}{suffix}"


def write_index(folder: Path, shard_rows: list, dim: int, suffix: str, extra: Optional[dict] = None) -> None:
    """``folder/index.json``: the shards (file and row count, in rank order), the width and the total."""
    index = {"kind": _INDEX_KIND, "version": 1, "n_nodes": int(sum(shard_rows)), "dim": int(dim),
             "order": "rows of the shards concatenated, then sorted by id, give the node order",
             "shards": [{"file": shard_name(rank, suffix), "rows": int(rows)} for rank, rows in enumerate(shard_rows)],
             **(extra or {})}
    temporary = folder / f".{INDEX_NAME}.tmp"
    temporary.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(temporary, folder / INDEX_NAME)


# -- reading back ---------------------------------------------------------------------------------

def read_embedding(path: os.PathLike | str) -> tuple[np.ndarray, np.ndarray]:
    """Read any output of ``graphkit embed`` back: ``ids, embedding = read_embedding(path)``.

    Parameters
    ----------
    path : path-like
        One embedding file (.npy, .npz, .csv, .tsv, .txt, .emb or .parquet) or the folder of
        shards of a partitioned run (with its ``index.json``).

    Returns
    -------
    ids : ndarray of shape (n_nodes,)
        Integers when every id is an integer, else strings. For a ``.npy`` matrix without its
        ``NAME.ids.npy`` beside it, ``0 .. n_nodes - 1``.
    embedding : ndarray of shape (n_nodes, dim)
        A folder's shards are put back in the order of a single run: sorted by id.

    Raises
    ------
    ValueError
        For a missing file, an unknown extension, a folder without ``index.json``, a shard that
        is missing or holds another number of rows than the index says, or a ``.npy`` matrix
        whose ids file holds another number of ids.

    Examples
    --------
    >>> ids, embedding = read_embedding("emb.npy")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        return _read_shards(path)
    if not path.exists():
        raise ValueError(f"cannot read {path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot read {path}: unknown extension {suffix!r}; use one of {', '.join(FORMATS)}")
    if suffix == ".npy":
        return _read_npy(path)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return _integer_ids_kept(archive["ids"]), archive["embedding"]
    return _read_table(path, suffix)


def _read_npy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A ``.npy`` matrix and the ids beside it; also the structured ``id``/``vector`` records that
    ``graphkit embed`` wrote before version 0.2."""
    record = np.load(path, mmap_mode="r", allow_pickle=False)
    if record.dtype.names is not None:
        return _integer_ids_kept(np.asarray(record["id"])), np.asarray(record["vector"])
    embedding = np.asarray(record)
    beside = ids_path(path)
    if not beside.exists():
        return np.arange(len(embedding)), embedding
    ids = np.load(beside, allow_pickle=False)
    if len(ids) != len(embedding):
        raise ValueError(f"cannot read {path}: {beside.name} holds {len(ids)} ids for {len(embedding)} rows")
    return _integer_ids_kept(ids), embedding


def _read_table(path: Path, suffix: str) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix in WORD2VEC_FORMATS:
        frame = pd.read_csv(path, sep=" ", header=None, skiprows=1, dtype={0: str}, keep_default_na=False)
    else:
        frame = pd.read_csv(path, sep="," if suffix == ".csv" else "\t", dtype={"id": str}, keep_default_na=False)
    ids = _integer_ids_kept(frame.iloc[:, 0].astype(str).to_numpy(dtype=object))
    return ids, frame.iloc[:, 1:].to_numpy(dtype=np.float32)


def _integer_ids_kept(ids: np.ndarray) -> np.ndarray:
    """Ids as integers when every one is an integer written plainly, else as text."""
    if ids.dtype.kind in "iu":
        return ids
    from graphkit._edgelist_format import is_integer

    text = ids.astype(str)
    if len(text) and all(is_integer(token) for token in text):
        try:
            return text.astype(np.int64)
        except OverflowError:
            return text.astype(np.uint64)
    return text.astype(object)


def _read_shards(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    index_path = folder / INDEX_NAME
    if not index_path.exists():
        raise ValueError(f"cannot read {folder}: a folder of embedding shards needs its {INDEX_NAME} "
                         "(written last by a complete partitioned run)")
    index = json.loads(index_path.read_text())
    if index.get("kind") != _INDEX_KIND:
        raise ValueError(f"cannot read {folder}: {index_path} is not an index of embedding shards")
    parts = []
    for shard in index["shards"]:
        file = folder / shard["file"]
        if not file.exists():
            raise ValueError(f"cannot read {folder}: shard {shard['file']} is missing")
        ids, rows = read_embedding(file)
        if len(ids) != shard["rows"]:
            raise ValueError(f"cannot read {folder}: shard {shard['file']} holds {len(ids)} rows, the index "
                             f"says {shard['rows']}")
        parts.append((ids, rows))
    ids = np.concatenate([part[0].astype(object) if part[0].dtype.kind not in "iu" else part[0] for part in parts])
    embedding = np.concatenate([part[1] for part in parts]) if parts else np.zeros((0, index["dim"]), np.float32)
    order = np.argsort(ids, kind="stable")
    return _integer_ids_kept(ids[order]) if ids.dtype == object else ids[order], embedding[order]
