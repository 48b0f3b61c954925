"""PamC's collapse (issue 37): the size-weighted node negatives against a dense reference and the all-pairs
loss, why the authors' meta-node negatives collapse, and the estimator's collapse watch."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphkit import PamC, make_attributed_sbm
from graphkit.metrics import clustering_accuracy
from graphkit.ops import normalized_adjacency, rhop_adjacency
from graphkit.pamc import (
    ClusterCollapseWarning,
    membership_weights,
    meta_nodes,
    negative_term,
    node_negative_term,
    pairwise_contrastive_loss,
    positive_term,
)
from graphkit.pamc import _split_largest


def dense_node_negative(Z, W, tau):
    """``mean_i log(1 + sum_l m_il exp(tau * mean cosine of i with l's other members))``, by loops."""
    U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n, k = W.shape
    total = 0.0
    for i in range(n):
        inner = 1.0
        for l in range(k):
            others = W[:, l].sum() - W[i, l]
            if others <= 0:
                continue
            cosine_sum = sum(W[j, l] * U[i] @ U[j] for j in range(n) if j != i)
            inner += others * np.exp(tau * cosine_sum / others)
        total += np.log(inner)
    return total / n


def exact_log_denominators(Z, tau):
    """``log sum_j exp(tau * cos(z_i, z_j))`` per node, the self pair counted as exp(0)."""
    U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, 0.0)
    return np.log(np.exp(tau * S).sum(axis=1))


def sbm_pairs(n_nodes=500, n_clusters=5, seed=0):
    data = make_attributed_sbm(n_nodes=n_nodes, n_clusters=n_clusters, avg_degree=11, homophily=0.8,
                               n_features=4, random_state=seed)
    coo = rhop_adjacency(normalized_adjacency(data.graph, self_loops=True, symmetrize=True), 1).tocoo()
    pairs = (torch.as_tensor(coo.row, dtype=torch.int64), torch.as_tensor(coo.col, dtype=torch.int64),
             torch.as_tensor(coo.data, dtype=torch.float64))
    return torch.as_tensor(data.labels), pairs


def simplex(k):
    """``k`` unit vectors with pairwise cosine ``-1 / (k - 1)``."""
    return F.normalize(torch.eye(k, dtype=torch.float64) - 1.0 / k, dim=1)


# -- the functional core ------------------------------------------------------------------------

@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_node_negative_term_matches_a_dense_loop(soft, tau):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((25, 5))
    q = torch.softmax(torch.as_tensor(rng.standard_normal((25, 4)) * 2), dim=1)
    W = membership_weights(q, "soft" if soft else "hard")
    got = node_negative_term(torch.as_tensor(Z), W, tau)
    np.testing.assert_allclose(float(got), dense_node_negative(Z, W.numpy(), tau), rtol=1e-12)


def test_membership_weights_are_one_hot_argmax_or_q_and_carry_no_gradient():
    q = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], requires_grad=True)
    assert torch.equal(membership_weights(q, "hard"), torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    soft = membership_weights(q, "soft")
    assert torch.equal(soft, q.detach()) and not soft.requires_grad
    with pytest.raises(ValueError, match="meta_nodes must be one of"):
        membership_weights(q, "fuzzy")
    # soft weights build the meta-nodes as q-weighted sums
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(meta_nodes(z, soft, 3).numpy(), (q.detach().T @ z).numpy())


def test_node_negatives_equal_the_all_pairs_loss_where_each_cluster_shares_a_direction():
    labels, pairs = sbm_pairs()
    rng = np.random.default_rng(1)
    z = simplex(5)[labels] * torch.as_tensor(rng.uniform(0.5, 3.0, size=(len(labels), 1)))  # lengths do not matter
    weights = F.one_hot(labels, 5).double()
    ours = positive_term(z, *pairs, 1.0) + node_negative_term(z, weights, 1.0)
    exact = pairwise_contrastive_loss(z, *pairs, 1.0)
    # equal but for the epsilons inside the logs (1e-8 of all / positives in the all-pairs loss)
    np.testing.assert_allclose(float(ours), float(exact), rtol=1e-5)
    np.testing.assert_allclose(float(node_negative_term(z, weights, 1.0)),
                               exact_log_denominators(z.numpy(), 1.0).mean(), rtol=1e-12)


def test_node_negatives_bound_the_exact_denominators_from_below():
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((60, 6))
    labels = torch.as_tensor(rng.integers(0, 4, size=60))
    value = float(node_negative_term(torch.as_tensor(Z), F.one_hot(labels, 4).double(), 1.5))
    exact = exact_log_denominators(Z, 1.5).mean()
    assert value < exact - 1e-3  # spread clusters: Jensen's inequality is strict


def test_node_negative_term_gradients():
    rng = np.random.default_rng(3)
    z = torch.tensor(rng.standard_normal((12, 3)), requires_grad=True)
    weights = membership_weights(torch.softmax(torch.as_tensor(rng.standard_normal((12, 3))), dim=1), "soft")
    assert torch.autograd.gradcheck(lambda x: node_negative_term(x, weights, 0.7), (z,))
    one_hot = F.one_hot(torch.as_tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]), 4).double()  # cluster 3 empty
    assert torch.autograd.gradcheck(lambda x: node_negative_term(x, one_hot, 0.7), (z,))


def test_the_authors_negatives_score_a_collapse_below_the_planted_partition_and_node_negatives_do_not():
    """The cause of the collapse: with meta-node pairs, every node but four in one cluster, the four
    alone on the other simplex directions, has the same negative term as the planted partition and a
    lower positive term."""
    labels, pairs = sbm_pairs()
    k = 5
    planted = simplex(k)[labels]
    collapsed_labels = torch.zeros_like(labels)
    collapsed_labels[1:k] = torch.arange(1, k)
    collapsed = simplex(k)[collapsed_labels]

    def losses(z, assignments):
        positive = positive_term(z, *pairs, 1.0)
        return {"meta-nodes": float(positive + negative_term(z, assignments, k, 1.0)),
                "nodes": float(positive + node_negative_term(z, F.one_hot(assignments, k).double(), 1.0)),
                "all pairs": float(pairwise_contrastive_loss(z, *pairs, 1.0))}

    at_planted, at_collapse = losses(planted, labels), losses(collapsed, collapsed_labels)
    np.testing.assert_allclose(float(negative_term(planted, labels, k, 1.0)),
                               float(negative_term(collapsed, collapsed_labels, k, 1.0)), rtol=1e-12)
    assert at_collapse["meta-nodes"] < at_planted["meta-nodes"] - 0.1
    assert at_collapse["nodes"] > at_planted["nodes"] + 0.5
    assert at_collapse["all pairs"] > at_planted["all pairs"] + 0.5


def test_split_largest_puts_the_two_centres_on_the_halves_of_the_largest_cluster():
    rng = np.random.default_rng(4)
    blob_a = rng.normal(loc=(-5.0, 0.0), scale=0.1, size=(40, 2))
    blob_b = rng.normal(loc=(5.0, 0.0), scale=0.1, size=(40, 2))
    far = rng.normal(loc=(0.0, 20.0), scale=0.1, size=(10, 2))
    z = torch.as_tensor(np.vstack([blob_a, blob_b, far]))
    assignments = torch.as_tensor([0] * 80 + [1] * 10)
    centers = torch.zeros(3, 2, dtype=torch.float64)
    assert _split_largest(z, assignments, centers, cluster=2, seed=0) == 0
    means = sorted(centers[[0, 2]].tolist())
    np.testing.assert_allclose(means, [blob_a.mean(axis=0).tolist(), blob_b.mean(axis=0).tolist()], atol=1e-9)


# -- the estimator ------------------------------------------------------------------------------

WEAK = dict(n_nodes=600, n_clusters=4, avg_degree=11, homophily=0.8, n_features=32, feature_signal=1.4)
FAST = dict(hidden=(64, 64), n_z=8, pretrain_epochs=10, n_epochs=100, tol=0.0, device="cpu", verbose=0)


def test_the_authors_negatives_collapse_on_weak_features_and_the_defaults_do_not():
    accuracies = {"meta-nodes": [], "nodes": []}
    for seed in range(4):
        data = make_attributed_sbm(**WEAK, random_state=seed)
        reference = PamC(n_clusters=4, negatives="meta-nodes", min_cluster_share=0.0, random_state=seed, **FAST)
        reference.fit(data.features, graph=data.graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClusterCollapseWarning)
            ours = PamC(n_clusters=4, random_state=seed, **FAST).fit(data.features, graph=data.graph)
        assert all(event["action"].startswith("re-seeded") for event in ours.collapses_)
        assert np.bincount(ours.labels_, minlength=4).min() >= 0.05 * 600 / 4
        for name, model in (("meta-nodes", reference), ("nodes", ours)):
            accuracies[name].append(clustering_accuracy(data.labels, model.labels_))
        if seed == 0:  # every node but a few in one cluster
            assert np.bincount(reference.labels_).max() > 0.85 * 600
    assert np.mean(accuracies["nodes"]) > np.mean(accuracies["meta-nodes"]) + 0.15


def test_history_records_cluster_sizes():
    data = make_attributed_sbm(**WEAK, random_state=0)
    model = PamC(n_clusters=4, random_state=0, **dict(FAST, n_epochs=5)).fit(data.features, graph=data.graph)
    assert all(sum(record["sizes"]) == 600 and len(record["sizes"]) == 4 for record in model.history_)
    assert model.history_[-1]["sizes"] != model.history_[0]["sizes"]


def test_a_collapse_is_re_seeded_then_stops_with_a_warning_after_two_re_seeds():
    data = make_attributed_sbm(**WEAK, random_state=0)
    # a floor no real partition of 4 clusters can keep: every cluster below 99.9% of 150 nodes but one
    model = PamC(n_clusters=4, min_cluster_share=0.999, random_state=0, **FAST)
    with pytest.warns(ClusterCollapseWarning) as caught:
        model.fit(data.features, graph=data.graph)
    messages = [str(w.message) for w in caught]
    assert {w.filename for w in caught} == {__file__}   # the warning points at the caller's fit
    assert any("re-seeded by splitting the largest cluster" in m for m in messages)
    assert "training stopped" in messages[-1] and "fewer than n_clusters=4" in messages[-1]
    assert model.collapses_[-1]["action"] == "stopped" and model.n_iter_ < 100
    seeded = [e for e in model.collapses_ if e["action"].startswith("re-seeded")]
    assert seeded and all(e["size"] < 0.999 * 150 for e in model.collapses_)
    last = [e for e in model.collapses_ if e["epoch"] == model.collapses_[-1]["epoch"]]
    assert {e["action"] for e in last} == {"stopped"}
    assert any(sum(e["cluster"] == s["cluster"] for e in seeded) >= 2 for s in last)
    assert model.labels_.shape == (600,)


def test_on_collapse_stop_stops_at_the_first_collapse():
    data = make_attributed_sbm(**WEAK, random_state=0)
    model = PamC(n_clusters=4, min_cluster_share=0.999, on_collapse="stop", random_state=0, **FAST)
    with pytest.warns(ClusterCollapseWarning, match="on_collapse='stop'"):
        model.fit(data.features, graph=data.graph)
    assert model.n_iter_ == model.collapses_[0]["epoch"] + 1
    assert {e["action"] for e in model.collapses_} == {"stopped"}


def test_no_watch_means_no_warning_and_no_events():
    data = make_attributed_sbm(**WEAK, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClusterCollapseWarning)
        model = PamC(n_clusters=4, negatives="meta-nodes", min_cluster_share=0.0, random_state=0,
                     **dict(FAST, n_epochs=30)).fit(data.features, graph=data.graph)
    assert model.collapses_ == []


@pytest.mark.parametrize("negatives", ["nodes", "meta-nodes"])
@pytest.mark.parametrize("meta", ["hard", "soft"])
def test_every_negative_option_fits_full_batch_and_in_mini_batches(negatives, meta):
    data = make_attributed_sbm(n_nodes=120, n_clusters=3, n_features=8, feature_signal=3.0, random_state=5)
    for batch_size in (None, 50):
        model = PamC(n_clusters=3, negatives=negatives, meta_nodes=meta, batch_size=batch_size, random_state=0,
                     **dict(FAST, n_epochs=20, hidden=(16,), n_z=4, pretrain_epochs=5))
        model.fit(data.features, graph=data.graph)
        assert np.isfinite([r["negative"] for r in model.history_]).all()
        assert clustering_accuracy(data.labels, model.labels_) > 0.6  # chance: 1/3


@pytest.mark.parametrize("bad, match", [({"negatives": "pairs"}, "negatives"), ({"meta_nodes": "fuzzy"}, "meta_nodes"),
                                        ({"min_cluster_share": 1.0}, "min_cluster_share"),
                                        ({"on_collapse": "ignore"}, "on_collapse")])
def test_bad_collapse_parameters_are_named(bad, match):
    data = make_attributed_sbm(n_nodes=60, n_clusters=2, n_features=4, random_state=0)
    with pytest.raises(ValueError, match=match):
        PamC(n_clusters=2, **bad, **FAST).fit(data.features, graph=data.graph)
