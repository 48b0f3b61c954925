"""scikit-learn's estimator checks over every estimator in the toolkit.

Graph estimators take a graph as ``X``; an ``(n_samples, n_features)`` array is not one, so the
checks that feed them arbitrary sample matrices are listed below with the reason.
"""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from graphkit import FastRP, ManifoldClustering, PamC
from recsys import CTRClassifier
from tensorkit import FunBaT, KroneckerSBL

# FunBaT reads each column of X as one continuous mode; the checks' data has up to 10 columns, so the
# Tucker entry uses rank 1 (a rank-3 core over 10 modes has 3^10 entries and is refused).
ESTIMATORS = [FastRP(n_components=4, random_state=0), KroneckerSBL(method="am"), KroneckerSBL(method="svd"),
              FunBaT(rank=1, n_epochs=5, n_init=1, verbose=0),
              FunBaT(rank=2, core="cp", n_epochs=5, n_init=1, verbose=0),
              CTRClassifier(embed_dim=4, hidden=(16,), max_epochs=20, batch_size=32, learning_rate=1e-2,
                            validation_fraction=0.0, random_state=0, device="cpu"),
              PamC(n_clusters=3, hidden=(16, 16), n_z=4, pretrain_epochs=5, n_epochs=20, n_init=5, random_state=0,
                   verbose=0),
              ManifoldClustering(n_clusters=3, n_components=8, hidden=32, n_epochs=5, warmup_epochs=2, batch_size=64,
                                 n_init=3, random_state=0, verbose=0)]

NOT_A_GRAPH = "X must be a graph; checks that pass an (n_samples, n_features) data matrix do not apply"


def expected_failed_checks(estimator):
    if isinstance(estimator, KroneckerSBL):
        return {"check_complex_data": "complex dictionaries and measurements are supported (the IRS-MIMO "
                                      "application of Kronecker SBL is complex), so complex data is not rejected"}
    expected = {"check_complex_data": COMPLEX_REFUSED}
    if isinstance(estimator, FastRP):
        expected.update(GRAPH_ESTIMATOR_EXCEPTIONS)
    if isinstance(estimator, CTRClassifier):
        expected.update({check: CTR_LABELS for check in (
            "check_estimators_dtypes", "check_classifier_data_not_an_array", "check_classifiers_classes")})
    return expected


COMPLEX_REFUSED = ("complex input is refused with a TypeError naming the argument before any cast "
                   "(tensorkit.validation.reject_complex), not with scikit-learn's ValueError")

CTR_LABELS = ("CTR labels are clicks: only 0/1 (or booleans) are accepted, by design; these checks train on "
              "the labels {1, 2} or strings, which are refused with a ValueError")

GRAPH_ESTIMATOR_EXCEPTIONS = {
    "check_estimators_empty_data_messages": NOT_A_GRAPH + " (a (12, 0) matrix is rejected as not a graph)",
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    # check_fit_idempotent wants bitwise-repeatable fits; on CUDA, FastRP gives them in PyTorch's
    # deterministic mode (cuSPARSE's product sums in a varying order otherwise)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(previous or isinstance(estimator, FastRP))
    try:
        check(estimator)
    finally:
        torch.use_deterministic_algorithms(previous)


def planted_adjacency(seed=0):
    import networkx as nx

    graph = nx.stochastic_block_model([30, 30], [[0.3, 0.01], [0.01, 0.3]], seed=seed)
    return nx.to_numpy_array(graph), np.repeat([0, 1], 30)


def fit_data(estimator):
    """Data each estimator fits on, and its prediction-like method."""
    if isinstance(estimator, FastRP):
        adjacency, _ = planted_adjacency()
        return (adjacency,), "transform", adjacency
    if isinstance(estimator, ManifoldClustering):
        from graphkit import make_union_of_manifolds

        data = make_union_of_manifolds(n_samples=120, n_manifolds=3, n_features=10, dim=2, random_state=0)
        return (data.X,), "predict", data.X
    if isinstance(estimator, PamC):
        from graphkit import make_attributed_sbm

        data = make_attributed_sbm(n_nodes=90, n_clusters=3, n_features=6, feature_signal=3.0, random_state=0)
        return (data.features, data.graph), "predict", data.features
    if isinstance(estimator, FunBaT):
        from tensorkit import make_functional_tucker

        data = make_functional_tucker(n_entries=400, rank=2, random_state=0)
        return (data.X, data.y), "predict", data.X
    if isinstance(estimator, CTRClassifier):
        from recsys.data import make_criteo_like

        frame = make_criteo_like(n_samples=2000, n_dense=2, n_categorical=4, max_cardinality=50, random_state=0)
        X = frame.drop(columns="label")
        return (X, frame["label"]), "predict_proba", X
    from tensorkit import make_kronecker_problem

    problem = make_kronecker_problem(((6, 8), (5, 7)), support_sizes=2, random_state=0)
    return (problem.factors, problem.y), "predict", problem.factors


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_pickle_and_identical_results(estimator):
    fit_args, method, X = fit_data(estimator)
    fitted = clone(estimator).fit(*fit_args)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(getattr(restored, method)(X), getattr(fitted, method)(X))
    assert clone(fitted).get_params() == fitted.get_params()


def test_fastrp_in_pipeline_and_grid_search():
    """GridSearchCV splits a pairwise estimator's X by rows and columns: each fold embeds its subgraph."""
    from sklearn.linear_model import LogisticRegression

    adjacency, labels = planted_adjacency()
    pipeline = Pipeline([("embed", FastRP(random_state=0)), ("classify", LogisticRegression())])
    search = GridSearchCV(pipeline, {"embed__n_components": [4, 16]}, cv=3).fit(adjacency, labels)
    assert search.best_score_ > 0.9
    assert (search.predict(sp.csr_matrix(adjacency)) == labels).mean() > 0.95


def test_dsl_recommender_clone_pickle_and_grid_search():
    """DSLRecommender fits (user, item) pairs, not a sample matrix, so scikit-learn's generic checks do not
    apply; the contract still holds: clone, pickling with identical recommendations, and GridSearchCV
    over pairs split by rows, scored by held-out Recall@20."""
    from sklearn.model_selection import KFold

    from recsys import DSLRecommender, make_low_rank_interactions

    data = make_low_rank_interactions(n_users=100, n_items=80, rank=4, interactions_per_user=12, random_state=0)
    pairs = np.stack([data.users, data.items], axis=1)
    estimator = DSLRecommender(n_factors=16, n_epochs=5, lr=1e-2, update_interval=5, random_state=0, device="cpu",
                               verbose=0)
    fitted = clone(estimator).set_params(density=0.5).fit(pairs)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.recommend(k=10), fitted.recommend(k=10))
    assert clone(fitted).get_params() == fitted.get_params()
    search = GridSearchCV(estimator, {"density": [0.25, 1.0]}, cv=KFold(3, shuffle=True, random_state=0)).fit(pairs)
    scores = search.cv_results_["mean_test_score"]
    assert np.all((scores > 0) & (scores <= 1))  # accuracy itself is tested in tests/recsys/test_dsl.py
    assert search.best_estimator_.n_active_parameters_ <= search.best_estimator_.n_parameters_
