"""FastRPSearchCV: the scores from one shared propagation equal those of separate fits, the best
combination is refitted exactly, planted label structure is found, inputs are checked."""

import pickle

import networkx as nx
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.metrics import f1_score
from sklearn.model_selection import ShuffleSplit

from graphkit import FastRP, FastRPSearchCV, Graph
from graphkit._fastrp_search import DEFAULT_ALPHAS, _split_scores, f1_of
from graphkit.metrics import top_k_predictions
from graphkit.fastrp import fastrp_iterates, transition_tensor


@pytest.fixture(scope="module")
def blocks():
    """Four planted blocks, the labels the blocks."""
    sizes = [40, 40, 40, 40]
    probabilities = [[0.2 if i == j else 0.01 for j in range(4)] for i in range(4)]
    graph = Graph.from_networkx(nx.stochastic_block_model(sizes, probabilities, seed=3))
    return graph, np.repeat(np.arange(4), sizes)


def small_fastrp(**params):
    return FastRP(16, random_state=5, device="cpu", verbose=0, **params)


def assert_scores_of_separate_fits(search, graph, labels, alpha):
    """Every split score of a fitted 2-split ``search`` (random_state=0, one penalty) equals that of
    the candidate's own FastRP fit on the same splits."""
    targets = np.eye(labels.max() + 1)[labels]
    state = np.random.RandomState(0)
    state.randint(2**31 - 1)   # the draw FastRPSearchCV would give a base without a random_state
    splits = list(ShuffleSplit(2, test_size=0.5, random_state=state).split(labels))
    for index, params in enumerate(search.cv_results_["params"]):
        embedding = small_fastrp(**params).fit(graph).embedding_
        expected = [_split_scores(embedding, targets, train, held_out, np.array([alpha]), "micro_f1")[0]
                    for train, held_out in splits]
        np.testing.assert_allclose([search.cv_results_[f"split{i}_test_score"][index] for i in range(2)], expected,
                                   atol=1e-9)


def test_iterates_weigh_into_the_embedding_fastrp_fits(blocks):
    graph, _ = blocks
    model = small_fastrp(iteration_weights=(0.5, 1.0, 2.0), self_influence=0.3, normalization_strength=0.7,
                         standardize=False).fit(graph)
    probe = small_fastrp(normalization_strength=0.7)
    device, dtype, source = probe._fit_setup()
    probe._start_in_memory(graph, None, device, dtype, source)
    terms = fastrp_iterates(transition_tensor(graph.adjacency, device="cpu"), probe._initial_vectors(device, dtype), 3)
    combined = 0.3 * terms[0] + 0.5 * terms[1] + terms[2] + 2.0 * terms[3]
    np.testing.assert_allclose(combined.numpy(), model.embedding_, rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(terms.numpy(), axis=2)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)


def test_every_candidate_scores_as_its_own_fit_would(blocks):
    graph, labels = blocks
    grid = {"normalization_strength": [-0.5, 1.0], "iteration_weights": [(0.0, 1.0), (1.0, 0.0, 1.0)],
            "self_influence": [0.0, 0.5]}
    search = FastRPSearchCV(small_fastrp(), grid, n_splits=2, alpha=1.0, random_state=0).fit(graph, labels)
    assert len(search.cv_results_["params"]) == 8
    assert_scores_of_separate_fits(search, graph, labels, alpha=1.0)
    best = small_fastrp(**search.best_params_).fit(graph)
    np.testing.assert_array_equal(search.embedding_, best.embedding_)
    assert search.best_score_ == max(search.cv_results_["mean_test_score"])
    assert search.cv_results_["rank_test_score"][search.best_index_] == 1


def test_the_propagated_candidate_beats_random_vectors_on_planted_blocks(blocks):
    graph, labels = blocks
    grid = {"iteration_weights": [(0.0,), (0.0, 1.0, 1.0)], "self_influence": [1.0]}
    search = FastRPSearchCV(small_fastrp(), grid, random_state=1).fit(graph, labels)
    random_vectors, propagated = search.cv_results_["mean_test_score"]
    assert search.best_params_["iteration_weights"] == (0.0, 1.0, 1.0)
    assert propagated > 0.9 and random_vectors < 0.5


def test_labels_of_some_nodes_by_id_and_multi_label_targets(blocks):
    graph, labels = blocks
    named = Graph.from_networkx(nx.relabel_nodes(graph.to_networkx(), {i: f"n{i}" for i in range(160)}))
    chosen = np.arange(0, 160, 2)
    ids = np.array([f"n{i}" for i in chosen])
    search = FastRPSearchCV(small_fastrp(), {"normalization_strength": [0.0]}, random_state=0)
    assert search.fit(named, labels[chosen], nodes=ids).best_score_ > 0.9
    multi = np.zeros((160, 5), dtype=int)
    multi[np.arange(160), labels] = 1
    multi[::3, 4] = 1   # a second label for some nodes
    result = FastRPSearchCV(small_fastrp(), {"normalization_strength": [0.0]}, scoring="macro_f1",
                            random_state=0).fit(graph, multi)
    assert 0 < result.best_score_ <= 1 and result.embedding_.shape == (160, 16)


@pytest.mark.parametrize("arguments, message", [
    (dict(param_grid={"beta": [0.0]}), "'beta', which is not a FastRP parameter"),
    (dict(param_grid={"normalization_strength": []}), "non-empty sequence"),
    (dict(param_grid={"random_state": [0, 1]}), "cannot search 'random_state'"),
    (dict(param_grid={"device": ["cpu"]}), "cannot search 'device'"),
    (dict(alpha=[1.0, -1.0]), "alpha must be a positive number"),
    (dict(alpha=[]), "alpha must be a positive number"),
    (dict(n_splits=0), "n_splits"),
])
def test_bad_parameters_are_named(blocks, arguments, message):
    graph, labels = blocks
    with pytest.raises(ValueError, match=message):
        FastRPSearchCV(small_fastrp(), **arguments).fit(graph, labels)


def test_bad_labels_are_named(blocks):
    graph, labels = blocks
    search = FastRPSearchCV(small_fastrp(), {"normalization_strength": [0.0]})
    with pytest.raises(ValueError, match="y has 159 rows for 160 labelled nodes"):
        search.fit(graph, labels[:-1])
    with pytest.raises(ValueError, match="ids not in the graph"):
        search.fit(graph, labels[:3], nodes=[0, 1, 999])
    with pytest.raises(ValueError, match="at least 4 labelled nodes"):
        search.fit(graph, labels[:3], nodes=[0, 1, 2])


def test_clone_pickle_and_new_nodes_through_the_best_estimator(blocks):
    graph, labels = blocks
    search = FastRPSearchCV(small_fastrp(), {"normalization_strength": [0.0, 1.0]}, random_state=0)
    assert clone(search).get_params()["param_grid"] == {"normalization_strength": [0.0, 1.0]}
    search.fit(graph, labels)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.embedding_, search.embedding_)
    links = (["new"] * 4, [0, 1, 2, 3])
    np.testing.assert_array_equal(restored.best_estimator_.transform(links), search.best_estimator_.transform(links))


def test_the_split_scores_are_scikit_learns_ridge_and_f1_at_every_penalty():
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((60, 5))
    targets = (rng.random((60, 4)) < 0.3).astype(int)
    targets[np.arange(60), rng.integers(0, 4, 60)] = 1
    train, held_out = np.arange(40), np.arange(40, 60)
    alphas = np.array([0.01, 2.0, 50.0])
    for average in ("micro", "macro"):
        scores = _split_scores(embedding, targets, train, held_out, alphas, f"{average}_f1")
        for alpha, score in zip(alphas, scores):
            model = Ridge(alpha=alpha).fit(embedding[train], targets[train])
            predicted = top_k_predictions(model.predict(embedding[held_out]), targets[held_out].sum(axis=1))
            assert score == pytest.approx(f1_score(targets[held_out], predicted, average=average, zero_division=0))
    truth = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)   # the third label: never true, never predicted
    guess = np.array([[1, 0, 0], [1, 0, 0]], dtype=bool)
    assert f1_of(truth, guess, "macro_f1") == pytest.approx(f1_score(truth, guess, average="macro", zero_division=0))


def test_the_split_scores_hold_when_there_are_more_columns_than_training_nodes():
    rng = np.random.default_rng(1)
    embedding = rng.standard_normal((30, 50))
    targets = np.eye(3, dtype=int)[rng.integers(0, 3, 30)]
    train, held_out = np.arange(12), np.arange(12, 30)
    scores = _split_scores(embedding, targets, train, held_out, np.array([0.5, 500.0]), "micro_f1")
    for alpha, score in zip((0.5, 500.0), scores):
        model = Ridge(alpha=alpha).fit(embedding[train], targets[train])
        predicted = top_k_predictions(model.predict(embedding[held_out]), targets[held_out].sum(axis=1))
        assert score == pytest.approx(f1_score(targets[held_out], predicted, average="micro"))


def test_each_candidate_keeps_its_best_penalty(blocks):
    graph, labels = blocks
    grid = {"normalization_strength": [-0.5, 1.0]}
    alphas = [0.1, 10.0, 1000.0]
    search = FastRPSearchCV(small_fastrp(), grid, n_splits=2, alpha=alphas, random_state=0).fit(graph, labels)
    singles = [FastRPSearchCV(small_fastrp(), grid, n_splits=2, alpha=alpha, random_state=0).fit(graph, labels)
               for alpha in alphas]
    means = np.array([single.cv_results_["mean_test_score"] for single in singles])   # penalty x candidate
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], means.max(axis=0))
    np.testing.assert_array_equal(search.cv_results_["alpha"], np.array(alphas)[means.argmax(axis=0)])
    assert search.best_alpha_ == search.cv_results_["alpha"][search.best_index_]
    assert FastRPSearchCV().get_params()["alpha"] is None and len(DEFAULT_ALPHAS) == 11


def test_the_searched_penalties_rescue_a_wide_embedding_on_few_labelled_nodes():
    """Weak blocks, 50 training nodes, 128 columns: an almost unpenalised ridge fit interpolates
    its training labels; with the default penalties the wide embedding scores far higher and wins."""
    sizes = [25] * 4
    probabilities = [[0.15 if i == j else 0.05 for j in range(4)] for i in range(4)]
    graph = Graph.from_networkx(nx.stochastic_block_model(sizes, probabilities, seed=0))
    labels = np.repeat(np.arange(4), sizes)
    grid = {"n_components": [8, 128]}
    weak = FastRPSearchCV(FastRP(random_state=0, device="cpu"), grid, alpha=1e-6, random_state=0).fit(graph, labels)
    tuned = FastRPSearchCV(FastRP(random_state=0, device="cpu"), grid, random_state=0).fit(graph, labels)
    assert tuned.cv_results_["mean_test_score"][1] > weak.cv_results_["mean_test_score"][1] + 0.1
    assert tuned.best_params_ == {"n_components": 128} and tuned.best_alpha_ > 1.0


def test_spectral_propagation_is_applied_to_the_refitted_best_only(blocks):
    graph, labels = blocks
    grid = {"normalization_strength": [0.0, 1.0]}
    plain = FastRPSearchCV(small_fastrp(), grid, random_state=0).fit(graph, labels)
    filtered = FastRPSearchCV(small_fastrp(spectral_propagation=True), grid, random_state=0).fit(graph, labels)
    np.testing.assert_array_equal(plain.cv_results_["mean_test_score"], filtered.cv_results_["mean_test_score"])
    expected = small_fastrp(spectral_propagation=True, **filtered.best_params_).fit(graph).embedding_
    np.testing.assert_array_equal(filtered.embedding_, expected)


def test_spectral_propagation_searched_scores_the_filtered_candidates(blocks):
    graph, labels = blocks
    grid = {"normalization_strength": [0.0], "spectral_propagation": [False, True]}
    search = FastRPSearchCV(small_fastrp(), grid, n_splits=2, alpha=3.0, random_state=0).fit(graph, labels)
    assert_scores_of_separate_fits(search, graph, labels, alpha=3.0)
    unfiltered, filtered = search.cv_results_["params"]
    assert not unfiltered["spectral_propagation"] and filtered["spectral_propagation"]
    np.testing.assert_array_equal(search.embedding_, small_fastrp(**search.best_params_).fit(graph).embedding_)


@pytest.mark.parametrize("seed", range(5))
def test_top_k_predictions_keep_a_stable_sorts_order(seed):
    """Ties (rounded scores), infinities, NaN, counts of 0 and of more labels than there are: the
    labels kept are the first ``k`` of a stable descending sort."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.standard_normal((50, 6)), 1)
    counts = rng.integers(0, 8, 50)
    for case in (scores, np.where(rng.random(scores.shape) < 0.2, -np.inf, scores),
                 np.where(rng.random(scores.shape) < 0.2, np.nan, scores)):
        order = np.argsort(-case, axis=1, kind="stable")
        expected = np.zeros(case.shape, dtype=int)
        for row in range(len(case)):
            expected[row, order[row, :counts[row]]] = 1
        np.testing.assert_array_equal(top_k_predictions(case, counts), expected)
