"""Top-K ranking and Recall/NDCG/precision@K against a dense NumPy reference."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.datasets import make_low_rank_interactions
from recsys.interactions import Interactions
from recsys.metrics import (evaluate_ranking, ndcg_at_k, precision_at_k, ranking_scores, recall_at_k,
                            topk_items)


# ------------------------------------------------------------------------------------------------
# dense reference


def reference_topk(U, V, k, exclude=None):
    scores = np.asarray(U, dtype=np.float64) @ np.asarray(V, dtype=np.float64).T
    if exclude is not None:
        scores[exclude.toarray() != 0] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def reference_metrics(top, relevant_dense, k):
    recalls, precisions, ndcgs = [], [], []
    for row, rel_row in zip(top, relevant_dense):
        relevant = set(np.flatnonzero(rel_row).tolist())
        if not relevant:
            continue
        hits = [1.0 if item in relevant else 0.0 for item in row[:k]]
        recalls.append(sum(hits) / len(relevant))
        precisions.append(sum(hits) / k)
        dcg = sum(h / np.log2(rank + 2) for rank, h in enumerate(hits))
        idcg = sum(1.0 / np.log2(rank + 2) for rank in range(min(len(relevant), k)))
        ndcgs.append(dcg / idcg)
    return {f"recall@{k}": np.mean(recalls), f"ndcg@{k}": np.mean(ndcgs), f"precision@{k}": np.mean(precisions)}


def random_problem(seed=0, n_users=37, n_items=23, dim=5, density=0.2):
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_users, dim))
    V = rng.standard_normal((n_items, dim))
    train = sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))
    test = sp.csr_matrix(((rng.random((n_users, n_items)) < density) & (train.toarray() == 0)).astype(np.float32))
    return U, V, train, test


# ------------------------------------------------------------------------------------------------
# topk_items


@pytest.mark.parametrize("batch_size", [1, 5, 36, 37, 1024])
def test_topk_matches_dense_reference(batch_size):
    U, V, train, _ = random_problem()
    got = topk_items(U, V, k=6, batch_size=batch_size)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.long and got.device.type == "cpu"
    assert tuple(got.shape) == (37, 6)
    np.testing.assert_array_equal(got.numpy(), reference_topk(U, V, 6))
    masked = topk_items(U, V, k=6, exclude=train, batch_size=batch_size)
    np.testing.assert_array_equal(masked.numpy(), reference_topk(U, V, 6, exclude=train))


def test_topk_never_recommends_excluded_items():
    U, V, train, _ = random_problem(seed=1, density=0.5)
    k = 23 - int(train.getnnz(axis=1).max())            # every user has at least k allowed items
    assert k >= 3
    top = topk_items(U, V, k=k, exclude=train, batch_size=4).numpy()
    dense = train.toarray()
    assert not np.take_along_axis(dense, top, axis=1).any()
    # without exclusion the best items include train items (so the check above is not vacuous)
    plain = topk_items(U, V, k=k).numpy()
    assert np.take_along_axis(dense, plain, axis=1).any()


def test_topk_with_a_subset_of_users():
    U, V, train, _ = random_problem(seed=2)
    users = np.array([30, 2, 2, 17, 0])
    got = topk_items(U, V, k=4, exclude=train, batch_size=2, users=users).numpy()
    np.testing.assert_array_equal(got, reference_topk(U, V, 4, exclude=train)[users])
    from_interactions = topk_items(U, V, k=4, exclude=Interactions.from_sparse(train), users=torch.tensor(users))
    np.testing.assert_array_equal(from_interactions.numpy(), got)


def test_topk_scores_at_most_batch_size_users_at_once(monkeypatch):
    U, V, train, _ = random_problem(seed=3, n_users=50)
    shapes = []
    real_topk = torch.topk

    def recording_topk(scores, *args, **kwargs):
        shapes.append(tuple(scores.shape))
        return real_topk(scores, *args, **kwargs)

    monkeypatch.setattr(torch, "topk", recording_topk)
    topk_items(U, V, k=3, exclude=train, batch_size=8)
    assert shapes and max(s[0] for s in shapes) <= 8 and sum(s[0] for s in shapes) == 50


def test_topk_on_device_and_torch_input(device):
    U, V, train, _ = random_problem(seed=4)
    Ut = torch.tensor(U, dtype=torch.float32, device=device)
    Vt = torch.tensor(V, dtype=torch.float32, device=device)
    got = topk_items(Ut, Vt, k=5, exclude=train, batch_size=10)
    assert got.device.type == "cpu" and got.dtype == torch.long
    scores = U @ V.T
    scores[train.toarray() != 0] = -np.inf
    reference = reference_topk(U, V, 5, exclude=train)
    np.testing.assert_allclose(np.take_along_axis(scores, got.numpy(), axis=1),
                               np.take_along_axis(scores, reference, axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(k=24), ValueError, "k=24.*items"),
    (dict(k=0), ValueError, "k"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(exclude=sp.csr_matrix((37, 22))), ValueError, "exclude"),
    (dict(exclude=sp.csr_matrix((10, 23))), ValueError, "exclude"),
    (dict(users=np.array([0, 37])), ValueError, "users"),
    (dict(exclude=np.zeros((37, 23))), TypeError, "exclude"),
])
def test_topk_rejects_bad_input(kwargs, error, pattern):
    U, V, _, _ = random_problem()
    with pytest.raises(error, match=pattern):
        topk_items(U, V, **kwargs)


def test_topk_rejects_mismatched_embeddings():
    with pytest.raises(ValueError, match="dimension"):
        topk_items(np.ones((3, 4)), np.ones((5, 3)), k=2)
    with pytest.raises(ValueError, match="user_embeddings.*2-D"):
        topk_items(np.ones(4), np.ones((5, 4)), k=2)


# ------------------------------------------------------------------------------------------------
# Recall, NDCG, precision


@pytest.mark.parametrize("k", [1, 3, 5, 8])
def test_metrics_match_dense_reference(k):
    rng = np.random.default_rng(k)
    m, n_items = 40, 30
    top = np.array([rng.permutation(n_items)[:8] for _ in range(m)])
    dense = rng.random((m, n_items)) < 0.15
    dense[3] = False                                     # a user without relevant items is skipped
    dense[4, :] = True                                   # |relevant| > k
    relevant = sp.csr_matrix(dense.astype(np.float32))
    expected = reference_metrics(top, dense, k)
    assert recall_at_k(top, relevant, k) == pytest.approx(expected[f"recall@{k}"], abs=1e-12)
    assert ndcg_at_k(top, relevant, k) == pytest.approx(expected[f"ndcg@{k}"], abs=1e-12)
    assert precision_at_k(top, relevant, k) == pytest.approx(expected[f"precision@{k}"], abs=1e-12)
    assert ranking_scores(torch.from_numpy(top), relevant, ks=(k,)) == pytest.approx(expected, abs=1e-12)


def test_rows_without_relevant_items_are_skipped():
    top = np.array([[0, 1], [2, 3]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    assert recall_at_k(top, relevant, k=2) == 1.0
    assert precision_at_k(top, relevant, k=2) == 0.5
    assert ndcg_at_k(top, relevant, k=2) == 1.0
    with pytest.raises(ValueError, match="no row"):
        recall_at_k(top, sp.csr_matrix((2, 4)), k=2)


def test_ndcg_is_one_when_relevant_items_come_first():
    top = np.array([[4, 2, 0, 1, 3], [1, 0, 2, 3, 4], [3, 1, 2, 0, 4]])
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 0, 1], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]]))
    assert ndcg_at_k(top, relevant, k=2) == pytest.approx(1.0)
    assert ndcg_at_k(top, relevant, k=5) == pytest.approx(1.0)
    # swapping a relevant item behind an irrelevant one lowers it
    assert ndcg_at_k(np.array([[2, 0, 4, 1, 3], [1, 0, 2, 3, 4], [3, 1, 2, 0, 4]]), relevant, k=5) < 1.0


def test_recall_with_more_relevant_items_than_k():
    top = np.array([[0, 1, 2, 9]])
    relevant = sp.csr_matrix(np.array([[1, 1, 0, 1, 1, 1, 0, 0, 0, 0]]))   # 5 relevant
    assert recall_at_k(top, relevant, k=3) == pytest.approx(2 / 5)
    assert precision_at_k(top, relevant, k=3) == pytest.approx(2 / 3)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(top, relevant, k=3) == pytest.approx((1 + 1 / np.log2(3)) / ideal)
    all_first = np.array([[0, 1, 3]])
    assert recall_at_k(all_first, relevant, k=3) == pytest.approx(3 / 5)
    assert ndcg_at_k(all_first, relevant, k=3) == pytest.approx(1.0)


def test_ranking_scores_for_several_ks():
    rng = np.random.default_rng(5)
    top = np.array([rng.permutation(12)[:6] for _ in range(9)])
    dense = rng.random((9, 12)) < 0.3
    dense[0, top[0, 0]] = True
    relevant = sp.csr_matrix(dense.astype(np.float32))
    scores = ranking_scores(top, relevant, ks=(2, 6))
    assert list(scores) == ["recall@2", "ndcg@2", "precision@2", "recall@6", "ndcg@6", "precision@6"]
    assert scores == pytest.approx({**reference_metrics(top, dense, 2), **reference_metrics(top, dense, 6)})
    for k in (2, 6):
        assert scores[f"recall@{k}"] == pytest.approx(recall_at_k(top, relevant, k))
        assert scores[f"ndcg@{k}"] == pytest.approx(ndcg_at_k(top, relevant, k))
    assert ranking_scores(top, relevant, ks=3) == pytest.approx(reference_metrics(top, dense, 3))


@pytest.mark.parametrize("topk, relevant, k, error, pattern", [
    (np.array([[0, 1]]), sp.csr_matrix(np.array([[1, 0, 0]])), 3, ValueError, "k=3"),
    (np.array([[0, 1]]), sp.csr_matrix(np.array([[1, 0, 0]])), 0, ValueError, "k"),
    (np.array([[0, 1], [1, 2]]), sp.csr_matrix(np.array([[1, 0, 0]])), 2, ValueError, "one row"),
    (np.array([[0, 3]]), sp.csr_matrix(np.array([[1, 0, 0]])), 2, ValueError, "outside"),
    (np.array([[0, -1]]), sp.csr_matrix(np.array([[1, 0, 0]])), 2, ValueError, "outside"),
    (np.array([[1, 1]]), sp.csr_matrix(np.array([[1, 1, 0]])), 2, ValueError, "repeats"),
    (np.array([0, 1]), sp.csr_matrix(np.array([[1, 0, 0]])), 2, ValueError, "2-D"),
    (np.array([[0.0, 1.0]]), sp.csr_matrix(np.array([[1, 0, 0]])), 2, TypeError, "integer"),
    (np.array([[0, 1]]), np.array([[1, 0, 0]]), 2, TypeError, "relevant"),
])
def test_metrics_reject_bad_input(topk, relevant, k, error, pattern):
    with pytest.raises(error, match=pattern):
        recall_at_k(topk, relevant, k=k)


def test_ranking_scores_rejects_bad_ks():
    top, relevant = np.array([[0, 1]]), sp.csr_matrix(np.array([[1, 0, 0]]))
    with pytest.raises(ValueError, match="ks"):
        ranking_scores(top, relevant, ks=())
    with pytest.raises(ValueError, match="ks"):
        ranking_scores(top, relevant, ks=(0,))


# ------------------------------------------------------------------------------------------------
# evaluate_ranking


def reference_evaluation(U, V, train, test, k):
    top = reference_topk(U, V, k, exclude=train)
    return reference_metrics(top, test.toarray(), k)


def test_evaluate_ranking_matches_reference_and_batching():
    U, V, train, test = random_problem(seed=6, n_users=45, n_items=26)
    test = test.tolil()
    test[5, :] = 0                                         # users without test items are not evaluated
    test[9, :] = 0
    test = test.tocsr()
    expected = {**reference_evaluation(U, V, train, test, 3), **reference_evaluation(U, V, train, test, 10)}
    one_batch = evaluate_ranking(U, V, train, test, ks=(3, 10), batch_size=1024)
    assert one_batch == pytest.approx(expected, abs=1e-12)
    assert evaluate_ranking(U, V, train, test, ks=(3, 10), batch_size=4) == one_batch
    as_objects = evaluate_ranking(torch.from_numpy(U), torch.from_numpy(V), Interactions.from_sparse(train),
                                  Interactions.from_sparse(test, ), ks=(3, 10), batch_size=7)
    assert as_objects == pytest.approx(one_batch, abs=1e-12)
    # the train items matter: without them excluded the scores differ
    assert evaluate_ranking(U, V, None, test, ks=(3, 10)) != pytest.approx(one_batch, abs=1e-6)


def test_evaluate_ranking_rejects_bad_input():
    U, V, train, test = random_problem(seed=7)
    with pytest.raises(ValueError, match="test"):
        evaluate_ranking(U, V[:-1], train, test)
    with pytest.raises(ValueError, match="train"):
        evaluate_ranking(U, V, train[:-1], test)
    with pytest.raises(ValueError, match="k=30"):
        evaluate_ranking(U, V, train, test, ks=(30,))
    with pytest.raises(ValueError, match="no user"):
        evaluate_ranking(U, V, train, sp.csr_matrix(test.shape))


def test_evaluate_ranking_ranks_the_planted_preferences_first():
    data = make_low_rank_interactions(n_users=200, n_items=150, rank=4, interactions_per_user=15, random_state=1)
    train, test = data.split_by_user(test_size=0.2, random_state=1)
    U, V = data.truth
    truth = evaluate_ranking(U, V, train, test, ks=(20,), batch_size=64)
    noise = evaluate_ranking(*(np.random.default_rng(0).standard_normal(f.shape) for f in (U, V)), train, test)
    assert truth["recall@20"] > 0.6 and noise["recall@20"] < 0.3
    assert truth["ndcg@20"] > 2 * noise["ndcg@20"]
