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


# -- the shared contract (tensorkit.base.TorchEstimator) ------------------------------------------

def dsl_recommender():
    from recsys import DSLRecommender

    return DSLRecommender(n_factors=8, density=0.5, n_epochs=2, update_interval=2, random_state=0, device="cpu",
                          verbose=0)


CONTRACT_ESTIMATORS = ESTIMATORS + [dsl_recommender()]


def contract_fit_data(estimator):
    """Fit arguments and an output that depends on everything fitted: ``(fit_args, output(fitted))``."""
    from recsys import DSLRecommender

    if isinstance(estimator, DSLRecommender):
        from recsys import make_low_rank_interactions

        data = make_low_rank_interactions(n_users=60, n_items=40, rank=3, interactions_per_user=8, random_state=0)
        return (np.stack([data.users, data.items], axis=1),), lambda fitted: fitted.recommend(k=5)
    fit_args, method, X = fit_data(estimator)
    return fit_args, lambda fitted: getattr(fitted, method)(X)


def contract_id(estimator):
    return type(estimator).__name__


class _NotAValidValue:
    """A value that satisfies no declared constraint (not a number, string, type, callable or array)."""

    def __repr__(self):
        return "<not a valid value>"


@pytest.mark.parametrize("estimator", CONTRACT_ESTIMATORS, ids=contract_id)
def test_estimator_is_built_on_the_shared_base(estimator):
    from tensorkit.base import TorchEstimator

    assert isinstance(estimator, TorchEstimator)
    assert "_validate_params" not in vars(type(estimator)), "declare _parameter_constraints instead"
    assert set(estimator._parameter_constraints) == set(estimator.get_params(deep=False))
    assert type(estimator)().verbose == 1


@pytest.mark.parametrize("estimator", CONTRACT_ESTIMATORS, ids=contract_id)
def test_parameters_are_keyword_only_after_the_first(estimator):
    import inspect

    parameters = list(inspect.signature(type(estimator).__init__).parameters.values())[1:]
    positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert len(positional) <= 1, positional
    with pytest.raises(TypeError):
        type(estimator)(*[p.default for p in parameters[:2]])


@pytest.mark.parametrize("estimator", CONTRACT_ESTIMATORS, ids=contract_id)
def test_every_parameter_error_names_the_parameter(estimator):
    from tensorkit.base import InvalidParameterError

    fit_args, _ = contract_fit_data(estimator)
    for name in estimator.get_params(deep=False):
        bad = clone(estimator).set_params(**{name: _NotAValidValue()})
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {type(estimator).__name__}"):
            bad.fit(*fit_args)


@pytest.mark.parametrize("estimator", CONTRACT_ESTIMATORS, ids=contract_id)
def test_same_seed_same_result_and_history(estimator):
    fit_args, output = contract_fit_data(estimator)
    first = clone(estimator).set_params(random_state=0).fit(*fit_args)
    second = clone(estimator).set_params(random_state=0).fit(*fit_args)
    np.testing.assert_array_equal(output(first), output(second))
    assert isinstance(first.history_, list) and all(isinstance(record, dict) for record in first.history_)


def fitted_tensors(value, seen=None):
    """Every tensor reachable from a fitted estimator's attributes (modules' parameters included)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, torch.nn.Module):
        yield from value.parameters()
        yield from value.buffers()
    elif isinstance(value, dict):
        for item in value.values():
            yield from fitted_tensors(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from fitted_tensors(item, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, type) and type(value).__module__.split(".")[0] in (
            "tensorkit", "graphkit", "recsys"):
        yield from fitted_tensors(vars(value), seen)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("estimator", CONTRACT_ESTIMATORS, ids=contract_id)
def test_a_pickle_from_any_device_loads_on_the_cpu(estimator, device):
    fit_args, output = contract_fit_data(estimator)
    fitted = clone(estimator).set_params(device=device).fit(*fit_args)
    payload = pickle.dumps(fitted)
    restored = pickle.loads(payload)
    devices = {tensor.device.type for tensor in fitted_tensors(vars(restored))}
    assert devices <= {"cpu"}, devices
    restored.set_params(device="cpu")
    np.testing.assert_allclose(np.asarray(output(restored), dtype=float), np.asarray(output(fitted), dtype=float),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("estimator", [e for e in CONTRACT_ESTIMATORS if hasattr(e, "transform")], ids=contract_id)
def test_transformers_name_their_output_columns(estimator):
    pandas = pytest.importorskip("pandas")
    fit_args, _ = contract_fit_data(estimator)
    fitted = clone(estimator).set_output(transform="pandas")
    frame = fitted.fit_transform(*fit_args)
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == list(fitted.get_feature_names_out())
    assert frame.shape[1] == len(set(frame.columns))
