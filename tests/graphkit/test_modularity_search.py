"""ModularitySearch: a graph clustering's settings chosen by the modularity of its partition (issue 37)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClusterMixin, clone

from graphkit import PAMC_PUBLISHED_SETTINGS, ModularitySearch, PamC, make_attributed_sbm
from graphkit.metrics import modularity
from graphkit.ops import knn_graph
from graphkit.pamc import MLPEncoder


class PlantedOrCollapsed(ClusterMixin, BaseEstimator):
    """A stand-in clustering: the planted blocks, every node in one cluster, or a random partition."""

    def __init__(self, mode="planted", n_clusters=3, planted=None, random_state=0):
        self.mode, self.n_clusters, self.planted, self.random_state = mode, n_clusters, planted, random_state

    def fit(self, X, y=None, graph=None):
        n = len(X)
        if self.mode == "planted":
            self.labels_ = np.asarray(self.planted)
        elif self.mode == "collapsed":
            self.labels_ = np.zeros(n, dtype=np.int64)
        else:
            self.labels_ = np.random.default_rng(self.random_state).integers(0, self.n_clusters, n)
        self.n_iter_ = 1
        return self


@pytest.fixture(scope="module")
def sbm():
    return make_attributed_sbm(n_nodes=240, n_clusters=3, avg_degree=10, homophily=0.9, n_features=8,
                               feature_signal=2.0, random_state=0)


def small_pamc(**params):
    return PamC(n_clusters=3, hidden=(32,), n_z=4, pretrain_epochs=5, n_epochs=15, n_init=3, random_state=0,
                device="cpu", verbose=0, **params)


def test_the_planted_partition_wins_over_a_collapsed_and_a_random_one(sbm):
    search = ModularitySearch(PlantedOrCollapsed(planted=sbm.labels),
                              {"mode": ["collapsed", "random", "planted"]}, verbose=0)
    search.fit(sbm.features, graph=sbm.graph)
    assert search.best_params_ == {"mode": "planted"}
    np.testing.assert_array_equal(search.labels_, sbm.labels)
    assert search.results_["smallest_share"][0] == 0.0
    assert search.results_["modularity"][0] == pytest.approx(0.0, abs=1e-12)   # one cluster: Q = 1 - 1
    assert search.best_score_ == pytest.approx(modularity(sbm.graph.adjacency, sbm.labels))


def test_every_candidate_scores_as_its_own_fit_and_the_best_is_kept(sbm):
    grid = {"beta": [0.1, 2.0], "order": [1, 2]}
    search = ModularitySearch(small_pamc(), grid, verbose=0).fit(sbm.features, graph=sbm.graph)
    assert len(search.results_["params"]) == 4
    for params, score, n_iter, labels in zip(search.results_["params"], search.results_["modularity"],
                                             search.results_["n_iter"], search.results_["labels"]):
        alone = small_pamc(**params).fit(sbm.features, graph=sbm.graph)
        np.testing.assert_array_equal(labels, alone.labels_)
        assert score == pytest.approx(modularity(sbm.graph.adjacency, alone.labels_))
        assert n_iter == alone.n_iter_
    assert search.best_index_ == int(np.argmax(search.results_["modularity"]))
    assert search.best_params_ == search.results_["params"][search.best_index_]
    np.testing.assert_array_equal(search.labels_,
                                  small_pamc(**search.best_params_).fit(sbm.features, graph=sbm.graph).labels_)


def test_pamc_candidates_differing_in_training_settings_pretrain_once(sbm, monkeypatch):
    calls = []
    pretrain = PamC._pretrain
    monkeypatch.setattr(PamC, "_pretrain", lambda self, *args: calls.append(1) or pretrain(self, *args))
    ModularitySearch(small_pamc(), {"beta": [0.1, 2.0], "order": [1, 2], "tau": [0.5]}, verbose=0).fit(
        sbm.features, graph=sbm.graph)
    assert len(calls) == 1
    ModularitySearch(small_pamc(), {"beta": [0.1, 2.0], "pretrain_epochs": [3, 5]}, verbose=0).fit(
        sbm.features, graph=sbm.graph)
    assert len(calls) == 1 + 2   # pretraining settings differ: one pretraining each
    twins = []
    for seed in (0, 1):   # the same architecture (and repr), other weights
        torch.manual_seed(seed)
        twins.append(MLPEncoder(sbm.features.shape[1], (32,), 4))
    search = ModularitySearch(small_pamc(), {"encoder": twins, "beta": [2.0]}, verbose=0).fit(
        sbm.features, graph=sbm.graph)
    assert len(calls) == 3 + 2
    for params, labels in zip(search.results_["params"], search.results_["labels"]):
        np.testing.assert_array_equal(labels, small_pamc(**params).fit(sbm.features, graph=sbm.graph).labels_)


def test_labels_passed_to_fit_do_not_change_the_choice(sbm):
    grid = {"beta": [0.1, 2.0]}
    plain = ModularitySearch(small_pamc(), grid, verbose=0).fit(sbm.features, graph=sbm.graph)
    shuffled = np.random.default_rng(1).permutation(sbm.labels)
    with_y = ModularitySearch(small_pamc(), grid, verbose=0).fit(sbm.features, shuffled, graph=sbm.graph)
    assert with_y.results_["modularity"] == plain.results_["modularity"]
    assert with_y.best_params_ == plain.best_params_


def test_without_a_graph_modularity_is_scored_on_the_knn_graph_the_estimator_builds(sbm):
    estimator = PlantedOrCollapsed(mode="random", n_clusters=3)
    estimator.n_neighbors = 5
    search = ModularitySearch(estimator, {"random_state": [0, 1, 2]}, verbose=0).fit(sbm.features)
    knn = knn_graph(sbm.features, n_neighbors=5).adjacency
    for params, score in zip(search.results_["params"], search.results_["modularity"]):
        labels = clone(estimator).set_params(**params).fit(sbm.features).labels_
        assert score == pytest.approx(modularity(knn, labels))


def test_pamc_defaults_to_the_published_settings_and_other_estimators_need_a_grid(sbm):
    from graphkit._modularity_search import _grid
    from sklearn.model_selection import ParameterGrid

    candidates = list(ParameterGrid(_grid(None, PamC())))
    assert candidates == [dict(settings) for settings in PAMC_PUBLISHED_SETTINGS]
    assert len({tuple(sorted(c.items())) for c in candidates}) == len(candidates)
    with pytest.raises(ValueError, match="param_grid"):
        ModularitySearch(PlantedOrCollapsed(planted=sbm.labels), verbose=0).fit(sbm.features, graph=sbm.graph)
    with pytest.raises(ValueError, match="resolution"):
        ModularitySearch(small_pamc(), {"beta": [1.0]}, resolution=0.0).fit(sbm.features, graph=sbm.graph)


def test_a_higher_resolution_is_passed_to_the_score(sbm):
    search = ModularitySearch(PlantedOrCollapsed(planted=sbm.labels), {"mode": ["planted"]}, resolution=2.0,
                              verbose=0).fit(sbm.features, graph=sbm.graph)
    assert search.best_score_ == pytest.approx(modularity(sbm.graph.adjacency, sbm.labels, resolution=2.0))


def test_pickles_and_predicts_as_its_best_estimator(sbm):
    search = ModularitySearch(small_pamc(), {"beta": [0.1, 2.0]}, verbose=0).fit(sbm.features, graph=sbm.graph)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(sbm.features), search.best_estimator_.predict(sbm.features))
    np.testing.assert_array_equal(restored.labels_, search.labels_)
    assert restored.n_features_in_ == sbm.features.shape[1]
