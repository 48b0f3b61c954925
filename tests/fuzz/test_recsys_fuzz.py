"""Property-based tests of the recommenders' readers and writers (issue 32).

- Criteo: random well-formed frames (labels, dense values with missing ones, any text without tabs
  or line breaks, columns in any order) written by ``write_criteo`` read back exactly with
  ``read_criteo``; a random corruption of one line of a valid file (fields cut or added, a bad label
  or dense value, a blank line, bytes that are not UTF-8) always gives a ValueError naming the file
  and that line.
- LightGCN: random files (small and 64-bit ids, any ASCII whitespace, blank lines) read back as the
  same pairs, sparse ids remapped and mapped back exactly, dense ids kept as the indices; a random bad
  id on one line always gives a ValueError naming the file and that line.
- MovieLens: a random bad row gives a ValueError naming the file and that line.
- Pairs of random ids given to ``as_interactions`` map back exactly, never allocating by the largest id.
"""

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.ctr.data import CRITEO_CATEGORICAL, CRITEO_COLUMNS, CRITEO_DENSE, read_criteo, write_criteo
from recsys.interactions import as_interactions, read_lightgcn_split, read_movielens

INT64_MAX = 2**63 - 1
FIELD_TEXT = st.text(st.characters(exclude_characters="\t\n\r", exclude_categories=("Cs",)), min_size=1, max_size=6)
DENSE = st.one_of(st.just(np.nan), st.integers(-10**6, 10**9).map(float),
                  st.floats(allow_nan=False, allow_infinity=False))
LETTERS = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=5)


@st.composite
def criteo_frames(draw):
    n = draw(st.integers(1, 6))
    columns = {"label": draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))}
    for name in CRITEO_DENSE:
        columns[name] = draw(st.lists(DENSE, min_size=n, max_size=n))
    for name in CRITEO_CATEGORICAL:
        columns[name] = draw(st.lists(st.none() | FIELD_TEXT, min_size=n, max_size=n))
    frame = pd.DataFrame({name: pd.Series(values, dtype=object if name in CRITEO_CATEGORICAL else None)
                          for name, values in columns.items()})
    return frame[draw(st.permutations(list(CRITEO_COLUMNS)))]


@given(criteo_frames())
def test_criteo_frames_round_trip_exactly(frame):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "day.txt"
        write_criteo(frame, path)
        back = read_criteo(path)
        assert [p.name for p in Path(folder).iterdir()] == ["day.txt"]
    assert list(back.columns) == list(CRITEO_COLUMNS)
    np.testing.assert_array_equal(back["label"].to_numpy(), frame["label"].to_numpy(dtype=np.int64))
    for name in CRITEO_DENSE:
        np.testing.assert_array_equal(back[name].to_numpy(), frame[name].to_numpy(dtype=np.float64))
    for name in CRITEO_CATEGORICAL:
        written = [None if value is None else value for value in frame[name]]
        read = [None if pd.isna(value) else value for value in back[name]]
        assert read == written


def criteo_row(label="1", dense="5", category="68fd1e64"):
    return [label] + [dense] * len(CRITEO_DENSE) + [category] * len(CRITEO_CATEGORICAL)


@st.composite
def corrupted_criteo(draw):
    """``(file bytes, 1-based number of the corrupted line)``."""
    rows = [("\t".join(criteo_row()) + "\n").encode() for _ in range(draw(st.integers(1, 5)))]
    where = draw(st.integers(0, len(rows) - 1))
    kind = draw(st.sampled_from(["cut", "extend", "label", "dense", "blank", "bytes"]))
    fields = criteo_row()
    if kind == "cut":
        fields = fields[:draw(st.integers(1, 39))]
    elif kind == "extend":
        fields = fields + ["x"] * draw(st.integers(1, 5))
    elif kind == "label":
        fields[0] = draw(LETTERS | st.integers().filter(lambda v: v not in (0, 1)).map(str))
    elif kind == "dense":
        fields[draw(st.integers(1, len(CRITEO_DENSE)))] = draw(LETTERS)
    line = ("\t".join(fields) + "\n").encode()
    if kind == "blank":
        line = b"\n"
    elif kind == "bytes":
        line = line.replace(b"68fd", draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])), 1)
    rows[where] = line
    return b"".join(rows), where + 1


@given(corrupted_criteo())
def test_a_corrupted_criteo_line_is_named(case):
    content, line = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "day.txt"
        path.write_bytes(content)
        with pytest.raises(ValueError) as caught:
            read_criteo(path)
    assert str(caught.value).startswith(f"{path}, line {line}: "), str(caught.value)


IDS = st.one_of(st.integers(0, 40), st.integers(0, INT64_MAX))


@st.composite
def lightgcn_files(draw):
    """``(text, [(user, [items]), ...])`` of a LightGCN file with random whitespace and blank lines."""
    lines = draw(st.lists(st.tuples(IDS, st.lists(IDS, max_size=4)), min_size=1, max_size=6))
    text = []
    for user, items in lines:
        if draw(st.booleans()):
            text.append(draw(st.sampled_from(["", "  ", "\t"])) + draw(st.sampled_from(["\n", "\r\n"])))
        gaps = [draw(st.sampled_from([" ", "\t", "  ", " \x0b"])) for _ in items]
        text.append(str(user) + "".join(gap + str(item) for gap, item in zip(gaps, items))
                    + draw(st.sampled_from(["", " "])) + draw(st.sampled_from(["\n", "\r\n"])))
    return "".join(text).encode(), lines


def file_pairs(lines):
    return [(user, item) for user, items in lines for item in items]


@given(lightgcn_files(), lightgcn_files())
def test_lightgcn_splits_read_back_the_same_pairs(train_file, test_file):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "train.txt").write_bytes(train_file[0])
        (Path(folder) / "test.txt").write_bytes(test_file[0])
        parts = read_lightgcn_split(folder)
    users = [user for _, lines in (train_file, test_file) for user, _ in lines]
    items = [item for _, lines in (train_file, test_file) for _, line_items in lines for item in line_items]
    for data, (_, lines) in zip(parts, (train_file, test_file)):
        pairs = list(zip(data.user_ids[data.users].tolist(), data.item_ids[data.items].tolist()))
        assert pairs == file_pairs(lines)
        assert set(user for user, _ in lines) <= set(data.user_ids.tolist())
        assert data.shape == parts[0].shape
    for ids, values in ((parts[0].user_ids, users), (parts[0].item_ids, items)):
        if values and max(values) < 2 * len(values) + 2**16:            # dense: the ids are the indices
            np.testing.assert_array_equal(ids, np.arange(max(values) + 1))
        else:                                                           # sparse: only the ids that occur
            assert ids.tolist() == sorted(set(values))


BAD_IDS = st.one_of(st.integers(max_value=-1).map(str), st.integers(2**63, 2**80).map(str), LETTERS,
                    st.sampled_from(["1.5", "+5", "5_0", "7\x00", "0x10", "1e3", "\u0661", "--1"]))


@given(lightgcn_files(), st.data())
def test_a_bad_lightgcn_id_is_named(train_file, data):
    _, lines = train_file
    where = data.draw(st.integers(0, len(lines) - 1))
    text = [" ".join(map(str, [user] + items)) for user, items in lines]
    text[where] += " " + data.draw(BAD_IDS)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "train.txt").write_bytes(("\n".join(text) + "\n").encode())
        (Path(folder) / "test.txt").write_bytes(b"0 1\n")
        with pytest.raises(ValueError) as caught:
            read_lightgcn_split(folder)
    assert re.match(rf"{re.escape(str(Path(folder) / 'train.txt'))}, line {where + 1}: ", str(caught.value)), \
        str(caught.value)


@given(st.lists(st.sampled_from(["", " ", "\n", "\t\r\n"]), max_size=4))
def test_a_lightgcn_file_without_ids_is_refused(blank):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "train.txt").write_bytes("".join(blank).encode())
        (Path(folder) / "test.txt").write_bytes(b"0 1\n")
        with pytest.raises(ValueError, match=r"train\.txt holds no ids"):
            read_lightgcn_split(folder)


@given(st.integers(1, 4), st.data())
def test_a_bad_movielens_row_is_named(n_good, data):
    rows = ["196\t242\t3\t881250949"] * n_good
    kind = data.draw(st.sampled_from(["fields", "rating", "timestamp", "user"]))
    where = data.draw(st.integers(1 if kind == "fields" else 0, n_good))   # the first line sets the layout
    cells = ["1", "2", "3", "4"]
    if kind == "fields":
        cells = cells[:data.draw(st.integers(1, 3))] if data.draw(st.booleans()) else cells + ["5"]
    else:
        bad = "" if kind == "user" else data.draw(LETTERS | st.just("inf"))
        cells[{"user": 0, "rating": 2, "timestamp": 3}[kind]] = bad
    rows.insert(where, "\t".join(cells))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "u.data"
        path.write_text("\n".join(rows) + "\n")
        with pytest.raises(ValueError) as caught:
            read_movielens(path)
    assert str(caught.value).startswith(f"{path}, line {where + 1}: "), str(caught.value)


@given(st.lists(st.tuples(IDS, IDS), min_size=1, max_size=20))
def test_pairs_of_any_ids_map_back_exactly(pairs):
    data = as_interactions(pairs)
    assert list(zip(data.user_ids[data.users].tolist(), data.item_ids[data.items].tolist())) == pairs
    assert data.n_users <= 2 * len(pairs) + 2**16 and data.n_items <= 2 * len(pairs) + 2**16
