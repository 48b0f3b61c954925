"""FastRP's "auto" settings: held-out edges split as documented, the AUC is scikit-learn's, every
candidate scores as its own fit on the kept graph would, the best is refitted exactly, and
what cannot be chosen is refused with a message."""

import pickle

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError

from graphkit import FastRP, FastRPSearchCV, Graph, PartitionedGraph
from graphkit._fastrp_auto import (AUTO_BETAS, AUTO_ITERATION_WEIGHTS, MIN_EDGES, choose_by_link_prediction,
                                   hold_out_edges, link_prediction_auc)


@pytest.fixture(scope="module")
def blocks():
    """Three planted blocks of unequal degree."""
    sizes = [60, 60, 60]
    probabilities = [[0.25, 0.01, 0.01], [0.01, 0.1, 0.01], [0.01, 0.01, 0.05]]
    return Graph.from_networkx(nx.stochastic_block_model(sizes, probabilities, seed=1))


def small_fastrp(**params):
    return FastRP(16, random_state=2, device="cpu", verbose=0, dtype="float64", **params)


@pytest.mark.parametrize("directed", [False, True])
def test_held_out_edges_leave_the_graph_and_random_pairs_join_them(directed):
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 40)) < 0.2) * rng.uniform(0.5, 2.0, (40, 40))
    if not directed:
        dense = np.triu(dense, 1) + np.triu(dense, 1).T
    np.fill_diagonal(dense, 1.0)   # self loops are never held out
    adjacency = sp.csr_matrix(dense)
    kept, pairs, is_edge = hold_out_edges(adjacency, directed, 0.25, seed=3)
    n_edges = int((np.triu(dense, 1) != 0).sum() if not directed else ((dense != 0).sum() - 40))
    n_held = int(round(0.25 * n_edges))
    assert is_edge.tolist() == [True] * n_held + [False] * n_held
    held = pairs[is_edge]
    assert np.all(dense[held[:, 0], held[:, 1]] != 0)
    assert np.all(kept.toarray()[held[:, 0], held[:, 1]] == 0)
    if not directed:
        assert np.all(kept.toarray()[held[:, 1], held[:, 0]] == 0)
        assert abs(kept - kept.T).max() == 0
    expected = dense.copy()
    expected[held[:, 0], held[:, 1]] = 0
    if not directed:
        expected[held[:, 1], held[:, 0]] = 0
    np.testing.assert_array_equal(kept.toarray(), expected)
    random_pairs = pairs[~is_edge]
    assert np.all(random_pairs[:, 0] != random_pairs[:, 1])
    assert random_pairs.min() >= 0 and random_pairs.max() < 40


def test_too_few_edges_are_refused_with_the_remedy():
    path = sp.csr_matrix(nx.to_scipy_sparse_array(nx.path_graph(MIN_EDGES)))   # MIN_EDGES - 1 edges
    with pytest.raises(ValueError, match=f"at least {MIN_EDGES} edges.*this graph has {MIN_EDGES - 1}"):
        hold_out_edges(path, False, 0.1, 0)
    with pytest.raises(ValueError, match="give normalization_strength and iteration_weights as numbers"):
        small_fastrp(normalization_strength="auto").fit(nx.path_graph(MIN_EDGES))


def test_the_auc_is_scikit_learns_with_ties():
    rng = np.random.default_rng(1)
    embedding = rng.integers(-1, 2, size=(30, 3)).astype(float)   # many tied similarities
    pairs = rng.integers(0, 30, size=(200, 2))
    is_edge = rng.random(200) < 0.4
    unit = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    similarity = (unit[pairs[:, 0]] * unit[pairs[:, 1]]).sum(axis=1)
    assert link_prediction_auc(torch.from_numpy(embedding), pairs, is_edge) == pytest.approx(
        roc_auc_score(is_edge, similarity), abs=1e-12)


def test_every_candidate_scores_as_its_own_fit_of_the_kept_graph(blocks):
    kept, pairs, is_edge = hold_out_edges(blocks.adjacency, False, 0.1, seed=0)
    kept_graph = Graph(kept)
    starts = small_fastrp().fit(kept_graph)
    betas, weightings = (0.0, -1.0, 1.5), ((0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 6.67))
    results = choose_by_link_prediction(
        kept, pairs, is_edge, lambda beta: starts._initial_vectors("cpu", torch.float64, beta=beta), betas, weightings)
    assert [(p["normalization_strength"], p["iteration_weights"]) for p in results["params"]] == [
        (beta, weights) for beta in betas for weights in weightings]
    for params, auc in zip(results["params"], results["auc"]):
        embedding = small_fastrp(**params).fit(kept_graph).embedding_
        assert auc == pytest.approx(link_prediction_auc(torch.from_numpy(embedding), pairs, is_edge), abs=1e-9)
    assert results["best_index"] == int(np.argmax(results["auc"]))


def test_auto_refits_the_best_candidate_exactly_and_transform_uses_it(blocks):
    model = small_fastrp(normalization_strength="auto", iteration_weights="auto").fit(blocks)
    results = model.auto_results_
    assert len(results["params"]) == len(AUTO_BETAS) * len(AUTO_ITERATION_WEIGHTS)
    best = results["params"][results["best_index"]]
    assert results["auc"][results["best_index"]] == np.nanmax(results["auc"])
    assert (model.normalization_strength_, model.iteration_weights_) == (best["normalization_strength"],
                                                                        best["iteration_weights"])
    fixed = small_fastrp(**best).fit(blocks)
    np.testing.assert_allclose(model.embedding_, fixed.embedding_, rtol=1e-12, atol=1e-12)
    rows = blocks.adjacency[:5]
    np.testing.assert_allclose(model.transform(rows), model.embedding_[:5], rtol=1e-9, atol=1e-9)
    assert pickle.loads(pickle.dumps(model)).normalization_strength_ == model.normalization_strength_
    assert clone(model).normalization_strength == "auto"


def test_only_the_auto_setting_is_searched(blocks):
    model = small_fastrp(iteration_weights="auto", normalization_strength=0.5).fit(blocks)
    assert {p["normalization_strength"] for p in model.auto_results_["params"]} == {0.5}
    assert [p["iteration_weights"] for p in model.auto_results_["params"]] == list(AUTO_ITERATION_WEIGHTS)
    plain = small_fastrp(normalization_strength=0.5).fit(blocks)
    assert plain.auto_results_ is None
    assert (plain.normalization_strength_, plain.iteration_weights_) == (0.5, (0.0, 1.0, 1.0))


def test_a_beta_whose_factors_cannot_be_held_is_skipped():
    graph = nx.gnm_random_graph(60, 200, seed=0)
    for u, v in graph.edges():
        graph[u][v]["weight"] = 1e-30   # degree ** beta overflows float32 for beta <= -1.5 ...
    # ... and nothing rescales it: no per-row normalisation, no standardisation
    model = FastRP(8, random_state=0, device="cpu", verbose=0, normalize=False, standardize=False,
                   normalization_strength="auto").fit(graph)
    aucs = dict(zip((p["normalization_strength"] for p in model.auto_results_["params"]), model.auto_results_["auc"]))
    assert np.isnan(aucs[-1.0]) and np.isnan(aucs[2.0])
    assert np.isfinite(aucs[0.0]) and model.normalization_strength_ in (0.0, -0.5, 0.5, 1.0)


@pytest.mark.parametrize("params, message", [
    (dict(normalization_strength="Auto"), "normalization_strength"),
    (dict(iteration_weights="best"), "iteration_weights"),
])
def test_other_strings_are_refused(blocks, params, message):
    with pytest.raises(InvalidParameterError, match=message):
        small_fastrp(**params).fit(blocks)


def test_auto_is_refused_outside_memory(tmp_path):
    edges = tmp_path / "ring.txt"
    edges.write_text("".join(f"{i} {(i + 1) % 50}\n" for i in range(50)))
    with pytest.raises(ValueError, match="normalization_strength='auto' is supported only for a fit in memory"):
        FastRP(8, normalization_strength="auto", memory_budget="1GB", verbose=0).fit(str(edges))
    with pytest.raises(ValueError, match="iteration_weights='auto' is supported only for a fit in memory"):
        FastRP(8, iteration_weights="auto", verbose=0).fit(PartitionedGraph.from_graph(nx.cycle_graph(50)))


def test_the_label_aware_search_refuses_auto(blocks):
    labels = np.repeat(np.arange(3), 60)
    with pytest.raises(ValueError, match="normalization_strength is 'auto'.*put it in param_grid"):
        FastRPSearchCV(small_fastrp(normalization_strength="auto"),
                       {"iteration_weights": [(0.0, 1.0, 1.0)]}).fit(blocks, labels)
    with pytest.raises(ValueError, match="holds 'auto'"):
        FastRPSearchCV(small_fastrp(), {"normalization_strength": ["auto", 1.0]}).fit(blocks, labels)
    searched = FastRPSearchCV(small_fastrp(normalization_strength="auto"), {"normalization_strength": [0.0, 1.0]},
                              random_state=0).fit(blocks, labels)
    assert searched.best_estimator_.auto_results_ is None
