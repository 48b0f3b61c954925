"""Streamed CTR data sources (recsys.ctr.sources) and the gzip/Avazu readers of recsys.ctr.data.

Chunks are checked against the whole-file readers (``read_criteo``, ``read_avazu``, ``pd.read_parquet``)
row for row; the chunks of several ranks together against those of one rank; and a bad line inside a
chunk that a rank does not own must not be parsed by that rank.
"""

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.ctr.data import AVAZU_COLUMNS, CRITEO_COLUMNS, iter_avazu, read_avazu, read_criteo, write_criteo
from recsys.ctr.schema import Schema
from recsys.ctr.sources import ChunkSource, detect_format, is_path_like, resolve_paths
from recsys.datasets import make_criteo_like

AVAZU_SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "recsys" / "avazu_sample"
BIG_ID = "10000169349117863715"   # above the int64 range: must stay text


def write_criteo_file(path, n, seed=0):
    write_criteo(make_criteo_like(n_samples=n, max_cardinality=50, random_state=seed), path)
    return path


def gzipped(path, target):
    with open(path, "rb") as source, gzip.open(target, "wb") as out:
        shutil.copyfileobj(source, out)
    return target


def avazu_rows(n, start=0):
    rows = []
    for i in range(start, start + n):
        rows.append([BIG_ID if i == 0 else str(10**18 + i), str(i % 2), "14102100"]
                    + [f"v{i % 3}_{j}" for j in range(21)])
    return rows


def write_avazu_file(path, rows):
    path.write_text(",".join(AVAZU_COLUMNS) + "\n" + "".join(",".join(row) + "\n" for row in rows))
    return path


def collect(source, rank=0, world_size=1):
    return list(source.chunks(rank=rank, world_size=world_size))


def joined(chunks):
    return (pd.concat([c.features for c in chunks], ignore_index=True),
            np.concatenate([c.labels for c in chunks]))


# ------------------------------------------------------------------------------------------------
# readers: gzip and Avazu

def test_read_criteo_reads_gzip_by_its_magic_bytes(tmp_path):
    plain = write_criteo_file(tmp_path / "day_0.txt", 30)
    packed = gzipped(plain, tmp_path / "day_0.bin")   # no .gz suffix: found by the magic bytes
    pd.testing.assert_frame_equal(read_criteo(packed), read_criteo(plain))
    suffixed = gzipped(plain, tmp_path / "d.txt.gz")
    pd.testing.assert_frame_equal(read_criteo(suffixed, nrows=7), read_criteo(plain, nrows=7))


def test_gzip_criteo_errors_name_the_file_and_line(tmp_path):
    plain = write_criteo_file(tmp_path / "day_0.txt", 6)
    lines = plain.read_bytes().splitlines(keepends=True)
    lines[3] = b"1\t2\n"
    target = tmp_path / "bad.gz"
    with gzip.open(target, "wb") as out:
        out.write(b"".join(lines))
    with pytest.raises(ValueError, match=r"bad\.gz, line 4: a Criteo row has 40 tab-separated fields.*got 2"):
        read_criteo(target)
    (tmp_path / "broken.gz").write_bytes(target.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"broken\.gz.*gzip"):
        read_criteo(tmp_path / "broken.gz")


def test_read_avazu_keeps_ids_as_text_and_clicks_as_int(tmp_path):
    rows = avazu_rows(9)
    path = write_avazu_file(tmp_path / "train.csv", rows)
    frame = read_avazu(path)
    assert list(frame.columns) == list(AVAZU_COLUMNS)
    assert frame["click"].dtype == np.int64 and frame["click"].tolist() == [int(r[1]) for r in rows]
    assert frame["id"].tolist() == [r[0] for r in rows] and frame["id"].iloc[0] == BIG_ID
    assert frame["C21"].tolist() == [r[-1] for r in rows]
    assert [len(c) for c in iter_avazu(path, chunksize=4)] == [4, 4, 1]
    pd.testing.assert_frame_equal(read_avazu(gzipped(path, tmp_path / "train.gz")), frame)
    assert read_avazu(path, nrows=0).shape == (0, 24)


@pytest.mark.parametrize("line, bad, pattern", [
    (4, "2", r"line 4: click must be 0 or 1; got '2'"),
    (3, "", r"line 3: click must be 0 or 1; got an empty field"),
    (5, "1.0", r"line 5: click must be 0 or 1; got '1.0'"),
])
def test_avazu_click_is_checked_strictly(tmp_path, line, bad, pattern):
    rows = avazu_rows(6)
    rows[line - 2][1] = bad
    with pytest.raises(ValueError, match=r"train\.csv, " + pattern):
        read_avazu(write_avazu_file(tmp_path / "train.csv", rows))


def test_avazu_field_count_and_header_errors(tmp_path):
    rows = avazu_rows(6)
    rows[2] = rows[2][:-1]
    with pytest.raises(ValueError, match=r"train\.csv, line 4: an Avazu row has 24 comma-separated fields.*got 23"):
        read_avazu(write_avazu_file(tmp_path / "train.csv", rows))
    (tmp_path / "test.csv").write_text("id,hour,C1\n1,2,3\n")
    with pytest.raises(ValueError, match=r"test\.csv, line 1: the Avazu header"):
        read_avazu(tmp_path / "test.csv")


@pytest.mark.skipif(not AVAZU_SAMPLE.is_dir(), reason="the Avazu sample is not in ../shared/data")
def test_avazu_sample_reads_exactly():
    path = AVAZU_SAMPLE / "avazu_sample.txt"
    frame = read_avazu(path)
    raw = [line.split(",") for line in path.read_text().splitlines()[1:]]
    assert frame.shape == (len(raw), 24)
    assert frame["id"].tolist() == [r[0] for r in raw]
    assert frame["click"].tolist() == [int(r[1]) for r in raw]
    source = ChunkSource(path, chunksize=30)
    assert source.format == "avazu" and source.n_chunks() == 4
    features, labels = joined(collect(source))
    pd.testing.assert_frame_equal(features, frame.drop(columns=["id", "click"]))
    assert source.default_schema() == Schema(categorical=AVAZU_COLUMNS[2:])


# ------------------------------------------------------------------------------------------------
# paths and formats

def test_is_path_like():
    assert is_path_like("a.txt") and is_path_like(Path("a.txt")) and is_path_like(("a", Path("b")))
    assert not is_path_like([]) and not is_path_like(["a", 1]) and not is_path_like(np.zeros((2, 2)))
    assert not is_path_like(pd.DataFrame({"a": [1]}))


def test_resolve_paths_globs_lists_and_errors(tmp_path):
    for name in ("day_2.txt", "day_0.txt", "day_1.txt", "other.csv"):
        (tmp_path / name).write_text("x")
    names = lambda X: [p.name for p in resolve_paths(X)]   # noqa: E731
    assert names(str(tmp_path / "day_*.txt")) == ["day_0.txt", "day_1.txt", "day_2.txt"]
    assert names([tmp_path / "other.csv", str(tmp_path / "day_[01].txt")]) == ["other.csv", "day_0.txt", "day_1.txt"]
    assert names([tmp_path / "day_2.txt", tmp_path / "day_0.txt"]) == ["day_2.txt", "day_0.txt"]
    with pytest.raises(FileNotFoundError, match=r"nothing_\*\.txt"):
        resolve_paths(str(tmp_path / "nothing_*.txt"))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        resolve_paths([tmp_path / "day_0.txt", tmp_path / "missing.txt"])
    with pytest.raises(IsADirectoryError, match="folder"):
        resolve_paths(tmp_path)
    with pytest.raises(ValueError, match="named twice"):
        resolve_paths([tmp_path / "day_0.txt", str(tmp_path / "day_*.txt")])
    with pytest.raises(TypeError, match="X must be a path"):
        resolve_paths([])


def test_detect_format_and_mixed_formats(tmp_path):
    criteo = write_criteo_file(tmp_path / "a_day.txt", 5)
    avazu = write_avazu_file(tmp_path / "b_train.csv", avazu_rows(3))
    parquet = tmp_path / "c.parquet"
    pd.DataFrame({"label": [0, 1], "x": ["a", "b"]}).to_parquet(parquet)
    assert [detect_format(p) for p in (criteo, avazu, parquet)] == ["criteo", "avazu", "parquet"]
    assert detect_format(gzipped(avazu, tmp_path / "b.gz")) == "avazu"
    with pytest.raises(ValueError, match=r"a_day\.txt is criteo but .*b_train\.csv is avazu"):
        ChunkSource([criteo, avazu])
    with pytest.raises(ValueError, match=r"a_day\.txt is criteo but .*c\.parquet is parquet"):
        ChunkSource(str(tmp_path / "[ac]*"))
    with pytest.raises(ValueError, match=r"data_format='avazu' but .*a_day\.txt is a criteo file"):
        ChunkSource(criteo, data_format="avazu")
    with pytest.raises(ValueError, match="data_format"):
        ChunkSource(criteo, data_format="csv")
    with pytest.raises(ValueError, match="chunksize"):
        ChunkSource(criteo, chunksize=0)


# ------------------------------------------------------------------------------------------------
# Criteo chunks

@pytest.mark.parametrize("packed", [False, True])
def test_criteo_chunks_round_trip(tmp_path, packed):
    files = [write_criteo_file(tmp_path / "day_0.txt", 23, seed=0),
             write_criteo_file(tmp_path / "day_1.txt", 7, seed=1)]
    if packed:
        files = [gzipped(files[0], tmp_path / "day_0.txt.gz"), gzipped(files[1], tmp_path / "day_1.txt.gz")]
    source = ChunkSource([str(f) for f in files], chunksize=5)
    assert source.files == tuple(files) and source.format == "criteo" and source.label_column == "label"
    chunks = collect(source)
    assert [c.ordinal for c in chunks] == list(range(7)) and source.n_chunks() == 7
    assert [len(c.labels) for c in chunks] == [5, 5, 5, 5, 3, 5, 2]
    assert chunks[1].where == f"{files[0].name}, lines 6-10" and chunks[6].where == f"{files[1].name}, lines 6-7"
    expected = pd.concat([read_criteo(f) for f in files], ignore_index=True)
    features, labels = joined(chunks)
    pd.testing.assert_frame_equal(features, expected.drop(columns="label"))
    assert labels.dtype == np.int64 and labels.tolist() == expected["label"].tolist()
    assert source.default_schema() == Schema(dense=CRITEO_COLUMNS[1:14], categorical=CRITEO_COLUMNS[14:])
    head, head_labels = source.first_rows(25)
    pd.testing.assert_frame_equal(head, expected.drop(columns="label").iloc[:25])
    assert head_labels.tolist() == expected["label"].tolist()[:25]


def test_two_ranks_together_give_the_chunks_of_one(tmp_path):
    files = [write_criteo_file(tmp_path / "day_0.txt", 23, seed=0),
             write_criteo_file(tmp_path / "day_1.txt", 7, seed=1)]
    source = ChunkSource(str(tmp_path / "day_*.txt"), chunksize=4)
    single = {c.ordinal: c for c in collect(source)}
    ranks = [collect(source, rank, 2) for rank in range(2)]
    assert [c.ordinal for c in ranks[0]] == [0, 2, 4, 6] and [c.ordinal for c in ranks[1]] == [1, 3, 5, 7]
    for chunk in ranks[0] + ranks[1]:
        pd.testing.assert_frame_equal(chunk.features, single[chunk.ordinal].features)
        np.testing.assert_array_equal(chunk.labels, single[chunk.ordinal].labels)
        assert chunk.where == single[chunk.ordinal].where
    assert source.n_chunks() == len(single) == 8 and len(files) == 2
    with pytest.raises(ValueError, match="rank must be below world_size"):
        collect(source, 2, 2)


def test_a_rank_does_not_parse_the_chunks_it_does_not_own(tmp_path):
    path = write_criteo_file(tmp_path / "day_0.txt", 20)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[7] = b"1\tnot a row\n"   # line 8: chunk 1 (lines 6-10) with chunksize 5
    path.write_bytes(b"".join(lines))
    source = ChunkSource(path, chunksize=5)
    assert [c.ordinal for c in collect(source, 0, 2)] == [0, 2]
    with pytest.raises(ValueError, match=r"day_0\.txt, line 8: a Criteo row has 40"):
        collect(source, 1, 2)
    with pytest.raises(ValueError, match=r"day_0\.txt, line 8"):
        collect(source)
    assert source.n_chunks() == 4


ROW_COUNTS = st.lists(st.integers(1, 11), min_size=1, max_size=3)


@settings(max_examples=15, deadline=None)
@given(counts=ROW_COUNTS, chunksize=st.integers(1, 6), world_size=st.integers(1, 4))
def test_chunks_partition_the_rows_over_ranks(counts, chunksize, world_size):
    """Every row lands in exactly one rank's chunks, in the chunk and place it has for one process."""
    folder = Path(tempfile.mkdtemp())
    row = 0
    for f, n in enumerate(counts):
        text = ""
        for _ in range(n):
            text += f"{row % 2}\t" + "\t".join([str(row)] * 13) + "\t" + "\t".join([f"r{row}"] * 26) + "\n"
            row += 1
        (folder / f"part_{f}.txt").write_text(text)
    source = ChunkSource(str(folder / "part_*.txt"), chunksize=chunksize)
    single = collect(source)
    assert sum(len(c.labels) for c in single) == row and source.n_chunks() == len(single)
    assert [c.features["C1"].tolist() for c in single] == \
        [[f"r{r}" for r in range(start, start + len(c.labels))]
         for c, start in zip(single, np.cumsum([0] + [len(c.labels) for c in single[:-1]]))]
    shared = sorted((c for rank in range(world_size) for c in collect(source, rank, world_size)),
                    key=lambda c: c.ordinal)
    assert [c.ordinal for c in shared] == [c.ordinal for c in single]
    assert [c.features["C1"].tolist() for c in shared] == [c.features["C1"].tolist() for c in single]
    shutil.rmtree(folder)


@settings(max_examples=15, deadline=None)
@given(counts=st.lists(st.integers(0, 11), min_size=1, max_size=3), row_group_size=st.integers(1, 5),
       chunksize=st.integers(1, 6), world_size=st.integers(1, 4))
def test_parquet_chunks_are_cut_at_multiples_of_chunksize_whatever_the_row_groups(counts, row_group_size, chunksize,
                                                                                  world_size):
    folder = Path(tempfile.mkdtemp())
    frames, row = [], 0
    for f, n in enumerate(counts):
        frames.append(pd.DataFrame({"row": np.arange(row, row + n), "label": np.arange(row, row + n) % 2}))
        frames[-1].to_parquet(folder / f"part_{f}.parquet", row_group_size=row_group_size)
        row += n
    source = ChunkSource(str(folder / "part_*.parquet"), chunksize=chunksize)
    single = collect(source)
    ends = np.cumsum(counts).tolist()
    expected = [list(range(start, min(start + chunksize, end)))
                for end, n in zip(ends, counts) for start in range(end - n, end, chunksize)]
    assert [c.features["row"].tolist() for c in single] == expected
    assert source.n_chunks() == len(single) and [c.ordinal for c in single] == list(range(len(single)))
    shared = sorted((c for rank in range(world_size) for c in collect(source, rank, world_size)),
                    key=lambda c: c.ordinal)
    assert [(c.ordinal, c.where, c.features["row"].tolist(), c.labels.tolist()) for c in shared] == \
        [(c.ordinal, c.where, c.features["row"].tolist(), c.labels.tolist()) for c in single]
    shutil.rmtree(folder)


# ------------------------------------------------------------------------------------------------
# Avazu and parquet chunks

def test_avazu_chunks(tmp_path):
    path = write_avazu_file(tmp_path / "train.csv", avazu_rows(11))
    source = ChunkSource(path, chunksize=4)
    assert source.label_column == "click" and source.n_chunks() == 3
    chunks = collect(source)
    assert [c.where for c in chunks] == ["train.csv, lines 2-5", "train.csv, lines 6-9", "train.csv, lines 10-12"]
    expected = read_avazu(path)
    features, labels = joined(chunks)
    pd.testing.assert_frame_equal(features, expected.drop(columns=["id", "click"]))
    assert labels.tolist() == expected["click"].tolist()
    rows = avazu_rows(11)
    rows[6][1] = "yes"   # line 8: chunk 1
    write_avazu_file(path, rows)
    assert [c.ordinal for c in collect(ChunkSource(path, chunksize=4), 0, 2)] == [0, 2]
    with pytest.raises(ValueError, match=r"train\.csv, line 8: click must be 0 or 1"):
        collect(ChunkSource(path, chunksize=4), 1, 2)


def parquet_frames():
    rng = np.random.default_rng(0)
    frames = []
    for n in (13, 6):
        frames.append(pd.DataFrame({"price": rng.normal(size=n), "count": rng.integers(0, 9, size=n),
                                    "shop": [f"s{i % 4}" for i in range(n)], "member": rng.random(n) < 0.5,
                                    "label": rng.integers(0, 2, size=n)}))
    return frames


def test_parquet_round_trip_two_files(tmp_path):
    frames = parquet_frames()
    for i, frame in enumerate(frames):
        frame.to_parquet(tmp_path / f"part_{i}.parquet", row_group_size=3)
    source = ChunkSource(str(tmp_path / "*.parquet"), chunksize=5)
    assert source.format == "parquet" and source.label_column == "label"
    assert source.default_schema() == Schema(dense=["price", "count"], categorical=["shop", "member"])
    chunks = collect(source)
    assert [len(c.labels) for c in chunks] == [5, 5, 3, 5, 1] and source.n_chunks() == 5
    assert chunks[1].where == "part_0.parquet, rows 6-10"
    expected = pd.concat(frames, ignore_index=True)
    features, labels = joined(chunks)
    pd.testing.assert_frame_equal(features, expected.drop(columns="label"), check_dtype=False)
    assert [str(t) for t in features.dtypes] == ["float64", "int64", str(pd.read_parquet(tmp_path / "part_0.parquet")
                                                                          ["shop"].dtype), "bool"]
    assert labels.dtype == np.int64 and labels.tolist() == expected["label"].tolist()
    shared = sorted(collect(source, 0, 2) + collect(source, 1, 2), key=lambda c: c.ordinal)
    assert [c.ordinal for c in shared] == list(range(5))
    pd.testing.assert_frame_equal(joined(shared)[0], features)
    head, head_labels = source.first_rows(15)
    pd.testing.assert_frame_equal(head, features.iloc[:15])
    assert head_labels.tolist() == labels.tolist()[:15]


def test_parquet_rank_reads_only_the_row_groups_of_its_chunks(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    frame = parquet_frames()[0].iloc[:12]
    frame.to_parquet(tmp_path / "part.parquet", row_group_size=3)
    read = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, row_groups=None, **kwargs):
        read.extend(row_groups)
        return original(self, *args, row_groups=row_groups, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    source = ChunkSource(tmp_path / "part.parquet", chunksize=3)
    labels = np.concatenate([c.labels for c in collect(source, 1, 2)])
    assert read == [1, 3]
    assert labels.tolist() == frame["label"].iloc[np.r_[3:6, 9:12]].tolist()


def test_parquet_label_and_schema_errors(tmp_path):
    pd.DataFrame({"click": [1.0, 0.0], "x": ["a", "b"]}).to_parquet(tmp_path / "clicks.parquet")
    source = ChunkSource(tmp_path / "clicks.parquet")
    assert source.label_column == "click" and collect(source)[0].labels.tolist() == [1, 0]
    pd.DataFrame({"y": [1, 0], "x": ["a", "b"]}).to_parquet(tmp_path / "nolabel.parquet")
    with pytest.raises(ValueError, match=r"nolabel\.parquet has no label column.*\['y', 'x'\]"):
        ChunkSource(tmp_path / "nolabel.parquet")
    pd.DataFrame({"label": [1, 0], "x": [1, 2]}).to_parquet(tmp_path / "b.parquet")
    pd.DataFrame({"label": [1, 0], "x": ["a", "b"]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ValueError, match=r"b\.parquet has the columns"):
        ChunkSource([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    pd.DataFrame({"label": [1, 0, 2], "x": ["a", "b", "c"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet, row 3: label must be 0 or 1; got 2"):
        collect(ChunkSource(tmp_path / "bad.parquet"))


def test_missing_pyarrow_message(tmp_path, monkeypatch):
    import sys

    pd.DataFrame({"label": [1, 0], "x": ["a", "b"]}).to_parquet(tmp_path / "a.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="reading parquet files needs pyarrow: pip install pyarrow"):
        ChunkSource(tmp_path / "a.parquet")


def test_repr_names_files_and_format(tmp_path):
    path = write_criteo_file(tmp_path / "day_0.txt", 3)
    assert repr(ChunkSource(path, chunksize=10)) == f"ChunkSource(['{path}'], data_format='criteo', chunksize=10)"
