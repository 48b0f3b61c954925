"""Interactions (implicit feedback): the container, conversions, splits, readers and the synthetic generator."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from recsys.datasets import LowRankTruth, make_low_rank_interactions
from recsys.interactions import Interactions, as_interactions, read_lightgcn, read_lightgcn_split, read_movielens

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "recsys"


def random_interactions(seed=0, n_users=40, n_items=30, n=400, timestamps=True):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    ts = rng.permutation(n).astype(float) if timestamps else None
    return Interactions(users, items, n_users=n_users, n_items=n_items, timestamps=ts)


def pair_multiset(data):
    return sorted(zip(data.users.tolist(), data.items.tolist()))


def pair_set(data):
    return set(zip(data.users.tolist(), data.items.tolist()))


# ------------------------------------------------------------------------------------------------
# the container


def test_constructor_stores_indices_and_defaults():
    data = Interactions([2, 0, 0], [1, 3, 3])
    assert data.users.dtype == np.int64 and data.items.dtype == np.int64
    assert (data.n_users, data.n_items, len(data)) == (3, 4, 3)
    assert data.timestamps is None
    np.testing.assert_array_equal(data.user_ids, np.arange(3))
    np.testing.assert_array_equal(data.item_ids, np.arange(4))
    assert repr(data) == "Interactions(n_users=3, n_items=4, n_interactions=3)"
    wide = Interactions([0], [0], n_users=5, n_items=7, timestamps=[3])
    assert wide.shape == (5, 7) and wide.timestamps.dtype == np.float64
    whole_floats = Interactions(np.array([1.0, 0.0]), torch.tensor([2, 1]))
    np.testing.assert_array_equal(whole_floats.users, [1, 0])
    np.testing.assert_array_equal(whole_floats.items, [2, 1])


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(users=[0, -1], items=[0, 1]), ValueError, "users.*negative"),
    (dict(users=[0, 1], items=[-3, 1]), ValueError, "items.*negative"),
    (dict(users=[0, 1], items=[0]), ValueError, "same length"),
    (dict(users=[[0, 1]], items=[[0, 1]]), ValueError, "users.*1-D"),
    (dict(users=[0, np.nan], items=[0, 1]), ValueError, "users.*NaN"),
    (dict(users=[0, 1.5], items=[0, 1]), ValueError, "users.*whole"),
    (dict(users=["a", "b"], items=[0, 1]), TypeError, "users"),
    (dict(users=[True, False], items=[0, 1]), TypeError, "users"),
    (dict(users=[0, 3], items=[0, 1], n_users=3), ValueError, "users.*n_users"),
    (dict(users=[0, 1], items=[0, 5], n_items=5), ValueError, "items.*n_items"),
    (dict(users=[0, 1], items=[0, 1], n_users=-1), ValueError, "n_users"),
    (dict(users=[0, 1], items=[0, 1], timestamps=[1.0]), ValueError, "timestamps"),
    (dict(users=[0, 1], items=[0, 1], timestamps=[1.0, np.inf]), ValueError, "timestamps"),
    (dict(users=[0, 1], items=[0, 1], user_ids=["a"]), ValueError, "user_ids"),
    (dict(users=[0, 1], items=[0, 1], item_ids=["a", "a"]), ValueError, "item_ids.*distinct"),
])
def test_constructor_rejects_bad_input(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Interactions(**kwargs)


def test_to_csr_is_binary_and_collapses_duplicates():
    data = Interactions([0, 0, 0, 2], [1, 1, 3, 0], n_users=4, n_items=5)
    matrix = data.to_csr()
    assert sp.isspmatrix_csr(matrix) and matrix.dtype == np.float32 and matrix.shape == (4, 5)
    expected = np.zeros((4, 5))
    expected[0, 1] = expected[0, 3] = expected[2, 0] = 1
    np.testing.assert_array_equal(matrix.toarray(), expected)
    assert matrix.nnz == 3 and matrix.has_sorted_indices
    assert data.to_csr(dtype=np.float64).dtype == np.float64


def test_sparse_round_trip():
    rng = np.random.default_rng(1)
    dense = (rng.random((20, 15)) < 0.2) * rng.integers(1, 5, (20, 15))
    matrix = sp.csr_matrix(dense)
    matrix.data[0] = 0                       # an explicit stored zero is not an interaction
    assert matrix.nnz == int((dense != 0).sum())
    data = Interactions.from_sparse(matrix)
    assert data.shape == (20, 15) and len(data) == matrix.nnz - 1
    np.testing.assert_array_equal(data.to_csr().toarray(), (matrix.toarray() != 0).astype(np.float32))
    again = Interactions.from_sparse(data.to_csr())
    assert pair_multiset(again) == pair_multiset(data)
    with pytest.raises(TypeError, match="matrix"):
        Interactions.from_sparse(dense)


def test_from_pairs_accepts_numpy_lists_and_torch():
    pairs = np.array([[0, 2], [1, 0], [1, 2]])
    for given in (pairs, pairs.tolist(), torch.from_numpy(pairs)):
        data = Interactions.from_pairs(given, n_items=4)
        np.testing.assert_array_equal(data.users, [0, 1, 1])
        np.testing.assert_array_equal(data.items, [2, 0, 2])
        assert data.shape == (2, 4)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        Interactions.from_pairs(np.zeros((3, 3), dtype=int))


def test_from_ids_maps_back_to_raw_ids():
    raw_users = ["carol", "alice", "bob", "alice", "carol"]
    raw_items = [1005, 17, 1005, 99999, 17]
    data = Interactions.from_ids(raw_users, raw_items, timestamps=[5, 4, 3, 2, 1])
    assert data.shape == (3, 3)
    assert data.user_ids.tolist() == ["alice", "bob", "carol"]          # sorted distinct ids
    assert data.item_ids.tolist() == [17, 1005, 99999]
    assert data.user_ids[data.users].tolist() == raw_users
    assert data.item_ids[data.items].tolist() == raw_items
    np.testing.assert_array_equal(data.timestamps, [5, 4, 3, 2, 1])
    with pytest.raises(ValueError, match="raw_users.*missing"):
        Interactions.from_ids(["a", None], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        Interactions.from_ids(["a", "b"], [1])


def test_deduplicate_keeps_the_earliest_occurrence():
    data = Interactions([0, 1, 0, 0, 1], [2, 0, 2, 1, 0], timestamps=[9.0, 1.0, 3.0, 4.0, 0.5])
    unique = data.deduplicate()
    assert pair_set(unique) == {(0, 2), (1, 0), (0, 1)} and len(unique) == 3
    kept = dict(zip(zip(unique.users.tolist(), unique.items.tolist()), unique.timestamps.tolist()))
    assert kept == {(0, 2): 3.0, (1, 0): 0.5, (0, 1): 4.0}
    positional = Interactions([0, 1, 0], [2, 0, 2]).deduplicate()
    assert pair_multiset(positional) == [(0, 2), (1, 0)]


# ------------------------------------------------------------------------------------------------
# splits


def test_split_by_user_holds_out_per_user():
    data = random_interactions(seed=3, n=500)
    train, test = data.split_by_user(test_size=0.25, random_state=0)
    for part in (train, test):
        assert part.shape == data.shape
        assert part.user_ids is data.user_ids and part.item_ids is data.item_ids
    assert sorted(pair_multiset(train) + pair_multiset(test)) == pair_multiset(data)       # union == original
    assert not pair_set(train) & pair_set(test)                                            # disjoint
    distinct = data.to_csr().getnnz(axis=1)
    train_counts = train.to_csr().getnnz(axis=1)
    test_counts = test.to_csr().getnnz(axis=1)
    expected = np.where(distinct >= 2, np.clip(np.floor(0.25 * distinct + 0.5), 1, distinct - 1), 0)
    np.testing.assert_array_equal(test_counts, expected)
    assert (train_counts[distinct >= 1] >= 1).all()                                        # everyone keeps >= 1
    # timestamps follow their interactions
    original = {(u, i, t) for u, i, t in zip(data.users, data.items, data.timestamps)}
    for part in (train, test):
        assert {(u, i, t) for u, i, t in zip(part.users, part.items, part.timestamps)} <= original


def test_split_by_user_edge_cases_and_randomness():
    data = Interactions([0, 1, 1, 2, 2, 2, 2], [0, 0, 1, 0, 1, 2, 3])
    train, test = data.split_by_user(test_size=0.5, random_state=1)
    np.testing.assert_array_equal(test.to_csr().getnnz(axis=1), [0, 1, 2])                # one-item user stays in train
    np.testing.assert_array_equal(train.to_csr().getnnz(axis=1), [1, 1, 2])
    big = random_interactions(seed=4, n=600)
    first = big.split_by_user(random_state=7)[1]
    again = big.split_by_user(random_state=7)[1]
    other = big.split_by_user(random_state=8)[1]
    assert pair_multiset(first) == pair_multiset(again)
    assert pair_multiset(first) != pair_multiset(other)
    # a repeated pair goes wholly to one side
    repeated = Interactions([0, 0, 0, 0, 0], [1, 1, 2, 3, 1])
    for seed in range(10):
        tr, te = repeated.split_by_user(test_size=0.4, random_state=seed)
        assert not pair_set(tr) & pair_set(te)
        assert len(tr) + len(te) == 5
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="test_size"):
            data.split_by_user(test_size=bad)


def test_split_by_time_global_and_per_user():
    data = random_interactions(seed=5, n=300)
    train, test = data.split_by_time(test_size=0.2)
    assert len(test) == 60 and len(train) == 240
    assert train.timestamps.max() < test.timestamps.min()
    assert sorted(pair_multiset(train) + pair_multiset(test)) == pair_multiset(data)
    assert train.shape == test.shape == data.shape

    train, test = data.split_by_time(test_size=0.3, per_user=True)
    counts = np.bincount(data.users, minlength=data.n_users)
    expected = np.where(counts >= 2, np.clip(np.floor(0.3 * counts + 0.5), 1, counts - 1), 0)
    np.testing.assert_array_equal(np.bincount(test.users, minlength=data.n_users), expected)
    for user in range(data.n_users):
        before = train.timestamps[train.users == user]
        after = test.timestamps[test.users == user]
        if after.size:
            assert before.max() < after.min()
    assert sorted(pair_multiset(train) + pair_multiset(test)) == pair_multiset(data)
    with pytest.raises(ValueError, match="timestamps"):
        random_interactions(timestamps=False).split_by_time()


# ------------------------------------------------------------------------------------------------
# as_interactions


def test_as_interactions_accepts_the_supported_kinds():
    data = Interactions([0, 1, 2], [1, 1, 0])
    assert as_interactions(data) is data
    wider = as_interactions(data, n_users=5, n_items=4)
    assert wider.shape == (5, 4) and pair_multiset(wider) == pair_multiset(data)
    np.testing.assert_array_equal(wider.user_ids, np.arange(5))
    expected = pair_multiset(data)
    for given in (data.to_csr(), data.to_csr().tocoo(), np.array([[0, 1], [1, 1], [2, 0]]),
                  [[0, 1], [1, 1], [2, 0]], torch.tensor([[0, 1], [1, 1], [2, 0]]),
                  torch.tensor(data.to_csr().toarray()).to_sparse()):
        result = as_interactions(given)
        assert isinstance(result, Interactions) and pair_multiset(result) == expected
    assert as_interactions(data.to_csr(), n_users=10).shape == (10, 2)
    with pytest.raises(ValueError, match="n_users"):
        as_interactions(data, n_users=2)
    named = Interactions.from_ids(["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="n_users"):
        as_interactions(named, n_users=3)


@pytest.mark.parametrize("given, error, pattern", [
    ([], ValueError, "empty"),
    (np.zeros((0, 2), dtype=int), ValueError, "empty"),
    (sp.csr_matrix((3, 4)), ValueError, "empty"),
    (np.array([[0, 1], [-1, 2]]), ValueError, "negative"),
    (np.array([[0, 1.5]]), ValueError, "whole"),
    (np.array([[True, False]]), TypeError, "integer"),   # strings are raw ids now (tests/recsys/test_raw_ids.py)
    (np.array([[0, 1, 2]]), ValueError, r"\(n, 2\)"),
    (np.array([0, 1]), ValueError, r"\(n, 2\)"),
    ("interactions.txt", TypeError, "path"),
])
def test_as_interactions_rejects_bad_input(given, error, pattern):
    with pytest.raises(error, match=pattern):
        as_interactions(given)


def test_as_interactions_checks_sizes_of_pairs():
    with pytest.raises(ValueError, match="n_items"):
        as_interactions(np.array([[0, 4]]), n_items=4)


# ------------------------------------------------------------------------------------------------
# readers


def test_read_lightgcn(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("0 3 1 4\n2 0\r\n\n4\n1 1 2 \n")
    data = read_lightgcn(path)
    assert data.shape == (5, 5)                  # user 4 has no items but exists
    assert pair_multiset(data) == sorted([(0, 3), (0, 1), (0, 4), (2, 0), (1, 1), (1, 2)])
    np.testing.assert_array_equal(data.users, [0, 0, 0, 2, 1, 1])       # file order
    np.testing.assert_array_equal(data.items, [3, 1, 4, 0, 1, 2])
    assert data.timestamps is None
    assert read_lightgcn(path, n_users=8, n_items=10).shape == (8, 10)
    with pytest.raises(ValueError, match="n_users"):
        read_lightgcn(path, n_users=4)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 2\n1 x 3\n")
    with pytest.raises(ValueError, match="line 2"):
        read_lightgcn(bad)
    bad.write_text("0 1 2\n1 -3\n")
    with pytest.raises(ValueError, match="line 2.*negative"):
        read_lightgcn(bad)
    with pytest.raises(FileNotFoundError):
        read_lightgcn(tmp_path / "absent.txt")


def test_read_lightgcn_split_shares_sizes(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1\n1 2\n")
    (tmp_path / "test.txt").write_text("0 5\n1 1\n2 3\n")
    train, test = read_lightgcn_split(tmp_path)
    assert train.shape == test.shape == (3, 6)
    assert pair_multiset(train) == [(0, 0), (0, 1), (1, 2)]
    assert pair_multiset(test) == [(0, 5), (1, 1), (2, 3)]


def test_read_movielens_udata_and_recbole_agree(tmp_path):
    rows = [(196, 242, 3, 881250949), (186, 302, 3, 891717742), (22, 377, 1, 878887116),
            (196, 51, 5, 880606923), (22, 242, 4, 886397596)]
    udata = tmp_path / "u.data"
    udata.write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    inter = tmp_path / "ml.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                     + "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    first, second = read_movielens(udata), read_movielens(inter)
    for data in (first, second):
        assert data.shape == (3, 4) and len(data) == 5
        assert data.user_ids.tolist() == [22, 186, 196]                 # numeric order, not text order
        assert data.item_ids.tolist() == [51, 242, 302, 377]
        assert list(zip(data.user_ids[data.users], data.item_ids[data.items])) == [(u, i) for u, i, _, _ in rows]
        np.testing.assert_array_equal(data.timestamps, [t for *_, t in rows])
    liked = read_movielens(inter, min_rating=4)
    assert list(zip(liked.user_ids[liked.users], liked.item_ids[liked.items])) == [(196, 51), (22, 242)]
    assert liked.shape == (2, 2)
    assert len(read_movielens(tmp_path)) == 5                            # a folder: u.data is found


# ------------------------------------------------------------------------------------------------
# synthetic data with planted low-rank preferences


def held_out_recall(scores, train, test, k=20):
    """Dense reference Recall@k with the train items excluded."""
    scores = np.array(scores, dtype=float)
    scores[train.toarray() > 0] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    relevant = test.toarray() > 0
    hits = np.take_along_axis(relevant, top, axis=1).sum(axis=1)
    n = relevant.sum(axis=1)
    return float(np.mean(hits[n > 0] / n[n > 0]))


def test_make_low_rank_interactions_shape_and_truth():
    data = make_low_rank_interactions(n_users=60, n_items=50, rank=3, interactions_per_user=7, random_state=0)
    assert data.shape == (60, 50) and len(data) == 420
    np.testing.assert_array_equal(np.bincount(data.users), np.full(60, 7))
    assert len(data.deduplicate()) == 420                                  # distinct items per user
    assert isinstance(data.truth, LowRankTruth)
    user_factors, item_factors = data.truth
    assert user_factors.shape == (60, 3) and item_factors.shape == (50, 3)
    np.testing.assert_allclose(data.truth.scores([1, 2]), user_factors[[1, 2]] @ item_factors.T)
    again = make_low_rank_interactions(n_users=60, n_items=50, rank=3, interactions_per_user=7, random_state=0)
    assert pair_multiset(again) == pair_multiset(data)
    train, test = data.split_by_user(random_state=0)
    assert train.truth is data.truth and test.truth is data.truth
    with pytest.raises(ValueError, match="interactions_per_user"):
        make_low_rank_interactions(n_items=10, interactions_per_user=11)
    with pytest.raises(ValueError, match="rank"):
        make_low_rank_interactions(rank=0)


def test_make_low_rank_interactions_plants_a_learnable_structure():
    data = make_low_rank_interactions(random_state=0)          # 500 users, 400 items, rank 8, 20 per user
    train, test = data.split_by_user(test_size=0.2, random_state=0)
    R, T = train.to_csr(), test.to_csr()
    popularity = np.tile(np.asarray(R.sum(axis=0)).ravel(), (R.shape[0], 1))
    u, s, vt = sla.svds(R.astype(np.float64), k=8, random_state=0)
    pop_recall = held_out_recall(popularity, R, T)
    svd_recall = held_out_recall((u * s) @ vt, R, T)
    oracle_recall = held_out_recall(data.truth.scores(), R, T)
    random_recall = held_out_recall(np.random.default_rng(0).random(R.shape), R, T)
    assert random_recall < 0.1
    assert pop_recall < 0.3
    assert svd_recall > 2 * pop_recall and svd_recall > 0.4
    assert oracle_recall > 0.75
    # the sampled items have much higher true affinity than the rest
    logits = data.truth.scores()
    chosen = data.to_csr().toarray() > 0
    assert logits[chosen].mean() > logits[~chosen].mean() + logits.std()


# ------------------------------------------------------------------------------------------------
# real data (slow; skipped without ../shared/data)


@pytest.mark.slow
def test_read_gowalla():
    folder = DATA / "gowalla"
    if not (folder / "train.txt").exists() or not (folder / "test.txt").exists():
        pytest.skip("gowalla not in ../shared/data")
    train, test = read_lightgcn_split(folder)
    assert train.shape == test.shape == (29_858, 40_981)
    assert len(train) == 810_128 and len(test) == 217_242
    assert not train.to_csr().multiply(test.to_csr()).nnz            # the LightGCN split is disjoint
    assert (train.to_csr().getnnz(axis=1) >= 1).all()


@pytest.mark.slow
def test_read_movielens_100k():
    path = DATA / "ml-100k" / "ml-100k.inter"
    if not path.exists():
        pytest.skip("ml-100k not in ../shared/data")
    data = read_movielens(path)
    assert len(data) == 100_000 and data.shape == (943, 1682)
    assert data.timestamps is not None and data.timestamps.min() > 8e8
    assert data.user_ids.tolist() == list(range(1, 944))
    liked = read_movielens(path, min_rating=4)
    assert 0 < len(liked) < 100_000
