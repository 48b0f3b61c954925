"""recsys's cases of the issue-32 corpus: Criteo, LightGCN and MovieLens files.

Every file is generated here as bytes. A malformed row is a ``ValueError`` that names the file and
the line (the readers never pad, guess or drop a field); files that are unusual but well formed
(sparse 64-bit ids, quotes inside a Criteo field) read back exactly, without allocating by the
largest id.
"""

from __future__ import annotations

import re

from recsys.ctr.data import CRITEO_CATEGORICAL, CRITEO_DENSE, read_criteo
from recsys.interactions import read_lightgcn, read_lightgcn_split, read_movielens
from tests.fuzz.corpus import Case

CRITEO = "day_0.txt"
FIELDS = "a Criteo row has 40 tab-separated fields (label, I1-I13, C1-C26)"


def criteo_line(label: str = "1", dense: str = "5", category: str = "68fd1e64", n_fields: int = 40) -> bytes:
    """One raw Criteo row (tab separated) cut or padded to ``n_fields`` fields."""
    fields = [label] + [dense] * len(CRITEO_DENSE) + [category] * len(CRITEO_CATEGORICAL)
    fields = (fields + ["extra"] * n_fields)[:n_fields]
    return ("\t".join(fields) + "\n").encode()


def criteo_file(bad: bytes, good_before: int = 2) -> dict:
    """``good_before`` good rows, the bad one, and a good row after it."""
    return {CRITEO: criteo_line() * good_before + bad + criteo_line()}


def read_criteo_file(folder, **kwargs):
    return read_criteo(folder / CRITEO, **kwargs)


def criteo_case(name: str, behaviour: str, bad: bytes, message: str) -> Case:
    """Reading a Criteo file whose third line is ``bad`` raises ``message`` (literal text) for that line."""
    return Case(f"recsys-criteo-{name}", behaviour, run=read_criteo_file, files=criteo_file(bad), raises=ValueError,
                match=re.escape(f"{CRITEO}, line 3: {message}"))


def check_quoted(frame, folder) -> None:
    assert len(frame) == 4, "a quote must not join rows"
    assert frame["C1"].tolist() == ["68fd1e64", "68fd1e64", '"68fd', "68fd1e64"]


CRITEO_CASES = [
    criteo_case("38-fields", "a row with 38 fields is refused (it was padded with NaN)",
                criteo_line(n_fields=38), FIELDS + "; got 38"),
    criteo_case("39-fields", "a row with 39 fields is refused", criteo_line(n_fields=39), FIELDS + "; got 39"),
    criteo_case("41-fields", "a row with 41 fields is refused, naming the file (it was pandas' tokenizer error)",
                criteo_line(n_fields=41), FIELDS + "; got 41"),
    criteo_case("blank-line", "a blank line inside the data is a row without its fields", b"\n", FIELDS + "; got 1"),
    criteo_case("label-2", "a label other than 0/1", criteo_line(label="2"), "label must be 0 or 1; got '2'"),
    criteo_case("label-text", "a label that is not a number", criteo_line(label="click"),
                "label must be 0 or 1; got 'click'"),
    criteo_case("label-empty", "a missing label", criteo_line(label=""), "label must be 0 or 1; got an empty field"),
    criteo_case("dense-text", "a dense field that is not a number", criteo_line(dense="many"),
                "I1 must be a finite number or empty; got 'many'"),
    criteo_case("dense-inf", "an infinite dense field (pandas reads 'inf')", criteo_line(dense="inf"),
                "I1 must be a finite number or empty; got 'inf'"),
    criteo_case("dense-underscore", "a dense field with an underscore (Python's float() reads '1_0' as 10)",
                criteo_line(dense="1_0"), "I1 must be a finite number or empty; got '1_0'"),
    criteo_case("not-utf8", "bytes that are not UTF-8", b"1\t\xff\xfe" + b"\t" * 38 + b"\n", "not UTF-8 text"),
    Case("recsys-criteo-empty-file", "an empty file", run=read_criteo_file, files={CRITEO: b""}, raises=ValueError,
         match=re.escape(f"{CRITEO} is empty")),
    Case("recsys-criteo-41-fields-first-line", "a first row with 41 fields", run=read_criteo_file,
         files={CRITEO: criteo_line(n_fields=41) + criteo_line()}, raises=ValueError,
         match=re.escape(f"{CRITEO}, line 1: {FIELDS}; got 41")),
    Case("recsys-criteo-nrows-negative", "nrows=-1 is refused, naming nrows (it read nothing)",
         run=lambda folder: read_criteo_file(folder, nrows=-1), files={CRITEO: criteo_line()}, raises=ValueError,
         match=r"The 'nrows' parameter of read_criteo must be an int in the range \[0, inf\) or None\. Got -1 instead"),
    Case("recsys-criteo-quote", "a quote inside a field is an ordinary character (it joined the following rows)",
         run=read_criteo_file, files=criteo_file(criteo_line(category='"68fd')), check=check_quoted),
]


# ------------------------------------------------------------------------------------------------
# LightGCN train.txt / test.txt


def split_files(train: bytes, test: bytes = b"0 1\n") -> dict:
    return {"train.txt": train, "test.txt": test}


def lightgcn_case(name: str, behaviour: str, line: bytes, message: str) -> Case:
    """Reading a split whose train.txt has ``line`` as its third line raises ``message`` for that line."""
    return Case(f"recsys-lightgcn-{name}", behaviour, run=read_lightgcn_split,
                files=split_files(b"0 1 2\n1 2\n" + line + b"\n"), raises=ValueError,
                match=re.escape(f"train.txt, line 3: {message}"))


def check_sparse_split(parts, folder) -> None:
    train, test = parts
    assert train.shape == test.shape == (1, 2), "the id space is remapped, not allocated by the largest id"
    assert train.item_ids.tolist() == [1, 3_000_000_000]
    assert list(zip(train.user_ids[train.users], train.item_ids[train.items])) == [(0, 3_000_000_000)]
    assert list(zip(test.user_ids[test.users], test.item_ids[test.items])) == [(0, 1)]


def check_hashed_users(data, folder) -> None:
    ids = [9_223_372_036_854_775, 9_223_372_036_854_775_807]
    assert data.shape == (2, 2)
    assert data.user_ids.tolist() == ids
    assert list(zip(data.user_ids[data.users], data.item_ids[data.items])) == [(ids[1], 0), (ids[1], 1), (ids[0], 1)]


LIGHTGCN_CASES = [
    Case("recsys-lightgcn-sparse-id", "the 18-byte train.txt '0 3000000000' reads into two items (it took 5 GB)",
         run=read_lightgcn_split, files=split_files(b"0 3000000000\n"), check=check_sparse_split),
    Case("recsys-lightgcn-hashed-users", "64-bit user ids are remapped and mapped back exactly",
         run=lambda folder: read_lightgcn(folder / "train.txt"),
         files={"train.txt": b"9223372036854775807 0 1\n9223372036854775 1\n"}, check=check_hashed_users),
    lightgcn_case("overflow-id", "an id above int64 (it was an OverflowError)", b"2 99999999999999999999",
                  "the id 99999999999999999999 is above the largest id 9223372036854775807 (int64)"),
    lightgcn_case("id-2-pow-63", "the id 2**63, one above int64", b"2 9223372036854775808",
                  "the id 9223372036854775808 is above the largest id"),
    lightgcn_case("negative-id", "a negative id", b"2 -7", "ids must be non-negative; got the negative value -7"),
    lightgcn_case("fraction", "a fractional id", b"2 1.5", "expected integer ids 'user item item ...'; got '2 1.5'"),
    lightgcn_case("underscore", "an id with an underscore (int() reads '5_0' as 50)", b"2 5_0",
                  "expected integer ids"),
    lightgcn_case("plus-sign", "an id with a sign", b"2 +5", "expected integer ids"),
    lightgcn_case("nul-byte", "a NUL byte after an id (NumPy dropped it)", b"2 7\x00", "expected integer ids"),
    lightgcn_case("letters", "a word instead of an id", b"2 seven", "expected integer ids"),
    Case("recsys-lightgcn-empty-train", "an empty train.txt (it was an IndexError)", run=read_lightgcn_split,
         files=split_files(b""), raises=ValueError, match=re.escape("train.txt holds no ids (an empty file)")),
    Case("recsys-lightgcn-blank-test", "a test.txt of blank lines holds no ids", run=read_lightgcn_split,
         files=split_files(b"0 1\n", b"\n  \n"), raises=ValueError, match=re.escape("test.txt holds no ids")),
]


# ------------------------------------------------------------------------------------------------
# MovieLens u.data / .inter


UDATA = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n"


def movielens_case(name: str, behaviour: str, line: bytes, message: str) -> Case:
    """Reading a u.data whose third line is ``line`` raises ``message`` for that line."""
    return Case(f"recsys-movielens-{name}", behaviour, run=lambda folder: read_movielens(folder / "u.data"),
                files={"u.data": UDATA + line + b"\n"}, raises=ValueError,
                match=re.escape(f"u.data, line 3: {message}"))


def check_long_ids(data, folder) -> None:
    assert data.user_ids.tolist() == ["18446744073709551615", "18446744073709551616"], "ids kept as written"
    assert len(data) == 2 and data.n_users == 2


MOVIELENS_CASES = [
    movielens_case("extra-field", "a row with five fields", b"1\t2\t3\t4\t5",
                   "expected 4 fields (user_id, item_id, rating, timestamp); got 5"),
    movielens_case("missing-field", "a row with three fields (its timestamp was NaN)", b"1\t2\t3",
                   "expected 4 fields (user_id, item_id, rating, timestamp); got 3"),
    movielens_case("one-field", "a row with one field", b"1", "expected 4 fields"),
    movielens_case("bad-rating", "a rating that is not a number", b"1\t2\tgood\t4",
                   "rating must be a finite number; got 'good'"),
    movielens_case("bad-timestamp", "a timestamp that is not a number", b"1\t2\t3\tyesterday",
                   "timestamp must be a finite number; got 'yesterday'"),
    movielens_case("empty-user", "an empty user id", b"\t2\t3\t4", "user_id is empty"),
    movielens_case("not-utf8", "bytes that are not UTF-8", b"1\t\xff\t3\t4", "not UTF-8 text"),
    Case("recsys-movielens-empty-file", "an empty file", run=lambda folder: read_movielens(folder / "u.data"),
         files={"u.data": b""}, raises=ValueError, match=re.escape("u.data is empty")),
    Case("recsys-movielens-inter-short-row", "a RecBole .inter row shorter than its header",
         run=lambda folder: read_movielens(folder / "ml.inter"),
         files={"ml.inter": b"user_id:token\titem_id:token\trating:float\n1\t2\t5\n3\t4\n"}, raises=ValueError,
         match=re.escape("ml.inter, line 3: expected 3 fields (user_id, item_id, rating); got 2")),
    Case("recsys-movielens-ids-above-int64", "ids above int64 are kept exactly as written",
         run=lambda folder: read_movielens(folder / "u.data"),
         files={"u.data": b"18446744073709551615\t1\t5\t0\n18446744073709551616\t1\t4\t1\n"}, check=check_long_ids),
]

CASES = CRITEO_CASES + LIGHTGCN_CASES + MOVIELENS_CASES
