"""Clustering scores: Hungarian-matched accuracy and F1 against brute force over all matchings."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, f1_score, normalized_mutual_info_score

import networkx as nx
import scipy.sparse as sp

from graphkit.metrics import clustering_accuracy, clustering_scores, match_clusters, modularity


def brute_force_accuracy(y_true, y_pred):
    """Best share of agreements over every one-to-one map of clusters to classes (or to nothing)."""
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    targets = list(classes) + [None] * len(clusters)
    best = 0.0
    for image in itertools.permutations(targets, len(clusters)):
        mapping = dict(zip(clusters, image))
        best = max(best, np.mean([mapping[p] == t for p, t in zip(y_pred, y_true)]))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_accuracy_is_the_best_one_to_one_matching(seed):
    rng = np.random.default_rng(seed)
    n_classes, n_clusters = rng.integers(2, 5), rng.integers(2, 5)
    y_true = rng.integers(0, n_classes, 25)
    y_pred = np.where(rng.random(25) < 0.6, y_true, rng.integers(0, n_clusters, 25)) + 10
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(brute_force_accuracy(y_true, y_pred))


def test_scores_are_invariant_to_renaming_the_clusters():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, 200))
    renamed = np.array(["d", "a", "c", "b"])[y_pred]
    assert clustering_scores(y_true, renamed) == pytest.approx(clustering_scores(y_true, y_pred))


def test_scores_match_sklearn_after_matching():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 150)
    y_pred = (np.where(rng.random(150) < 0.8, y_true, rng.integers(0, 3, 150)) + 1) % 3
    matched = match_clusters(y_true, y_pred)
    np.testing.assert_array_equal(matched, (y_pred + 2) % 3)  # undoes the planted renaming
    scores = clustering_scores(y_true, y_pred)
    assert scores["acc"] == pytest.approx(np.mean(matched == y_true))
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred))
    assert scores["f1"] == pytest.approx(f1_score(y_true, matched, average="macro"))


def test_more_clusters_than_classes_count_the_unmatched_as_errors():
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([5, 5, 7, 6, 6, 6])
    np.testing.assert_array_equal(match_clusters(y_true, y_pred), [0, 0, -1, 1, 1, 1])
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    scores = clustering_scores(y_true, y_pred)
    # macro F1 over the two true classes: class 0 has recall 2/3, precision 1
    assert scores["f1"] == pytest.approx(np.mean([2 * (2 / 3) / (1 + 2 / 3), 1.0]))
    assert list(match_clusters(["x", "x", "y"], [0, 1, 2])) in (["x", None, "y"], [None, "x", "y"])


def test_fewer_clusters_than_classes():
    assert clustering_accuracy([0, 1, 2, 2], [0, 0, 0, 0]) == pytest.approx(0.5)
    assert clustering_scores([0, 1, 2, 2], [0, 0, 0, 0])["f1"] == pytest.approx((0 + 0 + 2 * 0.5 / 1.5) / 3)


def test_bad_label_vectors():
    with pytest.raises(ValueError, match="same length"):
        clustering_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="one-dimensional"):
        clustering_scores(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="empty"):
        clustering_accuracy([], [])


# -- modularity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", [1.0, 0.5])
def test_modularity_equals_networkx_on_a_weighted_graph_with_a_self_loop(resolution):
    rng = np.random.default_rng(3)
    graph = nx.gnp_random_graph(40, 0.15, seed=4)
    for u, v in graph.edges:
        graph[u][v]["weight"] = rng.uniform(0.5, 2.0)
    graph.add_edge(5, 5, weight=1.5)
    labels = rng.integers(0, 4, 40)
    communities = [set(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    expected = nx.community.modularity(graph, communities, weight="weight", resolution=resolution)
    assert modularity(nx.to_scipy_sparse_array(graph), labels, resolution) == pytest.approx(expected, abs=1e-12)


def test_modularity_of_two_triangles_and_of_a_directed_copy():
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    rows, cols = zip(*edges)
    directed = sp.csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(6, 6))
    undirected = directed + directed.T
    # m = 7 edges; each triangle holds 3 and has total degree 7: Q = 2 * (3/7 - (7/14)^2)
    assert modularity(undirected, [0, 0, 0, 1, 1, 1]) == pytest.approx(2 * (3 / 7 - 0.25))
    assert modularity(directed, ["a", "a", "a", "b", "b", "b"]) == pytest.approx(2 * (3 / 7 - 0.25))
    assert modularity(undirected, np.zeros(6)) == pytest.approx(0.0)
    assert modularity(sp.csr_matrix((6, 6)), np.arange(6)) == 0.0


def test_modularity_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        modularity(np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="one label per node"):
        modularity(np.ones((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        modularity(-np.ones((2, 2)), [0, 1])
