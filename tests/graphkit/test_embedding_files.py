"""graphkit.read_embedding reads back every format graphkit embed writes, and folders of shards."""

import json

import numpy as np
import pytest

from graphkit.embedding_files import FORMATS, read_embedding, shard_name, write_embedding, write_index


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("kind", ["int", "str", "big"])
def test_every_format_round_trips(tmp_path, suffix, kind):
    rng = np.random.default_rng(7)
    ids = {"int": np.array([-3, 0, 17, 4]), "str": np.array(["a", "New York", "007", "x"], dtype=object),
           "big": np.array([2**63 + 5, 1, 2**64 - 1, 9], dtype=np.uint64)}[kind]
    if suffix in (".txt", ".emb") and kind == "str":
        ids = np.array(["a", "b", "007", "x"], dtype=object)
    embedding = rng.standard_normal((4, 3)).astype(np.float32)
    path = tmp_path / f"emb{suffix}"
    write_embedding(path, ids, embedding)
    read_ids, read_vectors = read_embedding(path)
    assert [str(i) for i in read_ids] == [str(i) for i in ids]
    if kind != "str":
        assert read_ids.dtype.kind in "iu"
    np.testing.assert_allclose(read_vectors, embedding, rtol=1e-6)


def test_large_embeddings_are_written_in_blocks(tmp_path):
    ids = np.arange(70_000)
    embedding = np.random.default_rng(1).standard_normal((70_000, 2)).astype(np.float32)
    for suffix in (".csv", ".npy", ".parquet"):
        write_embedding(tmp_path / f"e{suffix}", ids, embedding)
        read_ids, vectors = read_embedding(tmp_path / f"e{suffix}")
        np.testing.assert_array_equal(read_ids, ids)
        np.testing.assert_allclose(vectors, embedding, rtol=1e-6)


def test_shards_are_read_back_in_sorted_id_order(tmp_path):
    rng = np.random.default_rng(3)
    ids = np.array(["d", "a", "c", "b", "e"], dtype=object)
    embedding = rng.standard_normal((5, 2)).astype(np.float32)
    parts = [[0, 2], [1, 3, 4]]
    for rank, rows in enumerate(parts):
        write_embedding(tmp_path / shard_name(rank), ids[rows], embedding[rows])
    write_index(tmp_path, [len(rows) for rows in parts], 2, ".npy")
    read_ids, vectors = read_embedding(tmp_path)
    order = np.argsort(ids)
    assert list(read_ids) == list(ids[order])
    np.testing.assert_array_equal(vectors, embedding[order])


def test_incomplete_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="index.json"):
        read_embedding(tmp_path)
    write_embedding(tmp_path / shard_name(0), np.array([1, 2]), np.ones((2, 2), np.float32))
    write_index(tmp_path, [2, 1], 2, ".npy")
    with pytest.raises(ValueError, match="part-00001.npy is missing"):
        read_embedding(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    index["shards"] = index["shards"][:1]
    index["shards"][0]["rows"] = 3
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="holds 2 rows, the index says 3"):
        read_embedding(tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        read_embedding(tmp_path / "missing.npy")


def test_a_npy_embedding_is_the_plain_matrix_with_its_ids_beside_it(tmp_path):
    ids = np.array([2**63 - 1, -5, 7], dtype=np.int64)   # 64-bit hashed ids kept exactly
    embedding = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_embedding(tmp_path / "emb.npy", ids, embedding)
    np.testing.assert_array_equal(np.load(tmp_path / "emb.npy"), embedding)
    np.testing.assert_array_equal(np.load(tmp_path / "emb.ids.npy"), ids)
    read_ids, vectors = read_embedding(tmp_path / "emb.npy")
    np.testing.assert_array_equal(read_ids, ids)
    np.testing.assert_array_equal(vectors, embedding)
    np.save(tmp_path / "emb.ids.npy", ids[:2])
    with pytest.raises(ValueError, match="emb.ids.npy holds 2 ids for 3 rows"):
        read_embedding(tmp_path / "emb.npy")
    (tmp_path / "emb.ids.npy").unlink()   # a bare matrix: rows numbered
    np.testing.assert_array_equal(read_embedding(tmp_path / "emb.npy")[0], np.arange(3))


def test_structured_npy_files_of_earlier_versions_still_read(tmp_path):
    record = np.zeros(2, dtype=[("id", "<U1"), ("vector", "<f4", (3,))])
    record["id"], record["vector"] = ["x", "y"], [[1, 2, 3], [4, 5, 6]]
    np.save(tmp_path / "old.npy", record)
    read_ids, vectors = read_embedding(tmp_path / "old.npy")
    assert read_ids.tolist() == ["x", "y"] and vectors.tolist() == [[1, 2, 3], [4, 5, 6]]
