"""Raw user and item ids (issue 38): DSLRecommender fits on strings, DataFrames and hashed ids, keeps the
id maps, takes user ids and returns item ids; plain arrays of dense numbers stay internal indices."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import DSLRecommender
from recsys.datasets import make_low_rank_interactions
from recsys.interactions import Interactions, as_interactions

ISSUE_PAIRS = np.array([["u1", "i1"], ["u2", "i2"], ["u1", "i3"], ["u3", "i2"], ["u3", "i4"], ["u2", "i4"]])


def model(**kwargs):
    return DSLRecommender(**{"n_factors": 4, "n_epochs": 3, "device": "cpu", "verbose": 0, "random_state": 0,
                             **kwargs})


def planted_with_names():
    """Planted data as index pairs, and the same pairs named by strings whose sorted order is the
    index order (so a model fitted on the names trains exactly as one fitted on the indices)."""
    data = make_low_rank_interactions(n_users=40, n_items=30, rank=3, interactions_per_user=6, random_state=1)
    (present_users, users), (present_items, items) = (np.unique(column, return_inverse=True)
                                                      for column in (data.users, data.items))
    pairs = np.stack([users, items], axis=1)           # dense indices over the users and items present
    user_names = np.array([f"user{u:03d}" for u in present_users])
    item_names = np.array([f"item{i:03d}" for i in present_items])
    named = pd.DataFrame({"user": user_names[users], "item": item_names[items]})
    return pairs, named, user_names, item_names


# ------------------------------------------------------------------------------------------------
# as_interactions: which pairs are raw ids


def test_string_pairs_are_raw_ids_with_sorted_maps():
    data = as_interactions(ISSUE_PAIRS)
    assert data.user_ids.tolist() == ["u1", "u2", "u3"] and data.item_ids.tolist() == ["i1", "i2", "i3", "i4"]
    assert list(zip(data.user_ids[data.users], data.item_ids[data.items])) == [tuple(p) for p in ISSUE_PAIRS]


def test_dataframe_of_integers_is_raw_ids_while_the_same_array_is_indices():
    frame = pd.DataFrame({"user": [3, 1, 3, 2], "item": [7, 7, 5, 9]})
    by_id = as_interactions(frame)
    assert by_id.shape == (3, 3)
    assert by_id.user_ids.tolist() == [1, 2, 3] and by_id.item_ids.tolist() == [5, 7, 9]
    assert by_id.user_ids.dtype == np.int64
    by_index = as_interactions(frame.to_numpy())
    assert by_index.shape == (4, 10)                                   # indices 0..max, as before
    np.testing.assert_array_equal(by_index.user_ids, np.arange(4))
    np.testing.assert_array_equal(by_index.users, [3, 1, 3, 2])


def test_a_list_keeps_the_type_of_each_column():
    data = as_interactions([["ann", 30], ["bob", 10], ["ann", 20]])
    assert data.user_ids.tolist() == ["ann", "bob"]
    assert data.item_ids.dtype == np.int64 and data.item_ids.tolist() == [10, 20, 30]


@pytest.mark.parametrize("given, error, pattern", [
    (pd.DataFrame({"user": ["a"], "item": ["x"], "rating": [5]}), ValueError,
     r"data must be a DataFrame of two columns \(user, item\); got 3 columns"),
    (np.array([["a", "x", "y"]]), ValueError, r"data must be an \(n, 2\) array of \(user, item\) ids"),
    (pd.DataFrame({"user": ["a", None], "item": ["x", "y"]}), ValueError, r"data\['user'\] contains missing ids"),
    (np.array([["a", "x"], ["b", None]], dtype=object), ValueError, r"data\[:, 1\] \(items\) contains missing ids"),
    (pd.DataFrame({"user": pd.Series([], dtype=str), "item": pd.Series([], dtype=str)}), ValueError, "empty"),
])
def test_bad_raw_ids_are_refused_naming_the_column(given, error, pattern):
    with pytest.raises(error, match=pattern):
        as_interactions(given)


def test_raw_ids_cannot_be_enlarged_by_a_size():
    with pytest.raises(ValueError, match="cannot enlarge n_users"):
        as_interactions(ISSUE_PAIRS, n_users=5)


# ------------------------------------------------------------------------------------------------
# DSLRecommender on raw ids


def test_the_issue_example_fits_and_recommends_item_ids():
    rec = model().fit(ISSUE_PAIRS)
    assert rec.user_ids_.tolist() == ["u1", "u2", "u3"] and rec.item_ids_.tolist() == ["i1", "i2", "i3", "i4"]
    top = rec.recommend(["u1", "u3"], k=2)
    assert set(top[0]) == {"i2", "i4"} and set(top[1]) == {"i1", "i3"}      # their unseen items
    np.testing.assert_array_equal(top, rec.item_ids_[rec.recommend([0, 2], k=2, indices=True)])


def test_raw_id_fit_equals_the_index_fit_mapped_back():
    pairs, named, user_names, item_names = planted_with_names()
    by_index = model().fit(pairs)
    by_name = model().fit(named)
    np.testing.assert_array_equal(by_name.user_ids_, user_names)
    np.testing.assert_array_equal(by_name.user_embeddings_, by_index.user_embeddings_)
    users = [5, 0, 17]
    np.testing.assert_array_equal(by_name.recommend(user_names[users], k=5),
                                  item_names[by_index.recommend(users, k=5)])
    np.testing.assert_array_equal(by_name.recommend(users, k=5, indices=True), by_index.recommend(users, k=5))
    np.testing.assert_array_equal(by_name.scores(user_names[users]), by_index.scores(users))
    np.testing.assert_array_equal(by_name.scores(users, indices=True), by_index.scores(users))
    test = pairs[::4]
    named_test = pd.DataFrame({"user": user_names[test[:, 0]], "item": item_names[test[:, 1]]})
    assert by_name.score(named_test) == by_index.score(test)
    assert by_name.evaluate(named_test.to_numpy(), k=(5,)) == by_index.evaluate(test, k=(5,))


def test_eval_set_is_matched_by_id():
    pairs, named, user_names, item_names = planted_with_names()
    held_out = named.iloc[::5]
    rec = model().fit(named, eval_set=held_out)
    assert rec.history_[-1]["recall@20"] == rec.score(held_out)
    reference = model().fit(pairs, eval_set=pairs[::5])
    assert rec.history_[-1]["recall@20"] == reference.history_[-1]["recall@20"]
    with pytest.raises(ValueError, match=r"item id\(s\) are not among"):
        model().fit(named, eval_set=pd.DataFrame({"user": ["user000"], "item": ["no-such-item"]}))


def test_hashed_64_bit_ids_in_a_dataframe_come_back_as_given():
    rng = np.random.RandomState(0)
    user_hashes = rng.randint(2**40, 2**62, size=6, dtype=np.int64)
    item_hashes = rng.randint(2**40, 2**62, size=5, dtype=np.int64)
    pairs = [(u, i) for u in range(6) for i in range(5) if (u + i) % 3 == 0]
    frame = pd.DataFrame({"user": user_hashes[[u for u, _ in pairs]], "item": item_hashes[[i for _, i in pairs]]})
    rec = model().fit(frame)
    assert (rec.n_users_, rec.n_items_) == (6, 5)
    top = rec.recommend(user_hashes[:2], k=2)
    assert top.dtype == np.int64 and set(top.ravel()) <= set(item_hashes.tolist())
    seen = {int(i) for i in frame.loc[frame["user"] == user_hashes[0], "item"]}
    assert not seen & set(top[0].tolist())
    tensor_top = rec.recommend(torch.as_tensor(user_hashes[:2]), k=2)
    assert isinstance(tensor_top, torch.Tensor) and tensor_top.tolist() == top.tolist()


def test_dense_integer_arrays_stay_indices_and_dataframes_are_ids():
    frame = pd.DataFrame({"user": [3, 1, 3, 2, 1, 2], "item": [7, 7, 5, 9, 5, 5]})
    by_index = model().fit(frame.to_numpy())
    assert (by_index.n_users_, by_index.n_items_) == (4, 10)
    np.testing.assert_array_equal(by_index.item_ids_, np.arange(10))
    np.testing.assert_array_equal(by_index.recommend([1, 3], k=3), by_index.recommend([1, 3], k=3, indices=True))
    by_id = model().fit(frame)
    assert by_id.item_ids_.tolist() == [5, 7, 9]
    assert by_id.recommend([3], k=1).tolist() == [[9]]                 # user 3's only unseen item
    assert by_id.recommend([2], k=1, indices=True).tolist() == [[2]]   # internal user 2 is user 3, item 2 is 9
    with pytest.raises(ValueError, match=r"users holds 1 id\(s\) that are not users of the training data, "
                                         r"e\.g\. \[0\]"):
        by_id.recommend([0], k=1)


def test_unknown_user_ids_are_named():
    rec = model().fit(ISSUE_PAIRS)
    with pytest.raises(ValueError, match=r"users holds 2 id\(s\) that are not users of the training data, "
                                         r"e\.g\. \['dan', 'eve'\]"):
        rec.recommend(["u1", "dan", "eve"], k=1)
    with pytest.raises(ValueError, match=r"e\.g\. \['dan'\]"):
        rec.scores(["dan"])
    with pytest.raises(ValueError, match=r"users must be indices in \[0, 3\)"):
        rec.recommend([3], k=1, indices=True)


def test_string_users_for_a_model_fitted_on_indices_are_named_as_unknown():
    rec = model().fit(np.array([[0, 1], [1, 0], [2, 2], [0, 2]]))
    with pytest.raises(ValueError, match=r"not users of the training data, e\.g\. \['0'\]"):
        rec.recommend(["0"], k=1)


def test_pickle_keeps_the_id_maps():
    rec = model().fit(ISSUE_PAIRS)
    restored = pickle.loads(pickle.dumps(rec))
    np.testing.assert_array_equal(restored.user_ids_, rec.user_ids_)
    np.testing.assert_array_equal(restored.item_ids_, rec.item_ids_)
    np.testing.assert_array_equal(restored.recommend(["u2", "u3"], k=2), rec.recommend(["u2", "u3"], k=2))


def test_interactions_with_their_own_ids_are_used_by_id():
    data = Interactions.from_ids(ISSUE_PAIRS[:, 0], ISSUE_PAIRS[:, 1])
    from_frame = model().fit(pd.DataFrame(ISSUE_PAIRS, columns=["user", "item"]))
    np.testing.assert_array_equal(model().fit(data).recommend(["u2"], k=2), from_frame.recommend(["u2"], k=2))


def test_eval_set_of_sparse_integer_ids_is_matched_by_id():
    # the held-out pairs were matched by id once and then read again as indices (a ValueError)
    pairs = [[0, 10**12], [1, 2], [1, 10**12], [2, 5], [2, 2], [0, 3]]
    held_out = [[0, 2], [1, 5], [2, 3]]
    rec = model(eval_k=(1,)).fit(pairs, eval_set=held_out)
    assert rec.item_ids_.tolist() == [2, 3, 5, 10**12]
    assert rec.history_[-1]["recall@1"] == rec.evaluate(held_out, k=(1,))["recall@1"]
    top = rec.recommend([0, 1, 2], k=1)[:, 0].tolist()
    expected = np.mean([top[0] == 2, top[1] == 5, top[2] == 3])    # one held-out item per user
    assert rec.history_[-1]["recall@1"] == pytest.approx(expected)
