"""CTRClassifier.score is the ROC AUC (issue 38), so scikit-learn's default scoring tunes the AUC."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GridSearchCV

from recsys import CTRClassifier


def rare_clicks(n=600, seed=0):
    """Dense features with clicks on about one row in six, driven by the first feature."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    y = (rng.random_sample(n) < 1 / (1 + np.exp(-(2.5 * X[:, 0] - 3)))).astype(np.int64)
    return X, y


def classifier(**kwargs):
    return CTRClassifier(**{"hidden": (8,), "embed_dim": 4, "max_epochs": 5, "batch_size": 64,
                            "learning_rate": 3e-2, "validation_fraction": 0.0, "random_state": 0,
                            "device": "cpu", "verbose": 0, **kwargs})


@pytest.fixture(scope="module")
def fitted():
    X, y = rare_clicks()
    return classifier().fit(X[:400], y[:400]), X[400:], y[400:]


def test_score_is_the_roc_auc_of_predict_proba_not_accuracy(fitted):
    clf, X, y = fitted
    expected = roc_auc_score(y, clf.predict_proba(X)[:, 1])
    assert clf.score(X, y) == pytest.approx(expected, abs=1e-12)
    assert abs(clf.score(X, y) - accuracy_score(y, clf.predict(X))) > 0.05


def test_score_takes_torch_input_and_sample_weights(fitted):
    clf, X, y = fitted
    assert clf.score(torch.as_tensor(X), torch.as_tensor(y)) == pytest.approx(clf.score(X, y), abs=1e-12)
    weights = np.random.RandomState(1).uniform(0.1, 2.0, size=len(y))
    expected = roc_auc_score(y, clf.predict_proba(X)[:, 1], sample_weight=weights)
    assert clf.score(X, y, sample_weight=weights) == pytest.approx(expected, abs=1e-12)
    assert clf.score(X, y, sample_weight=weights) != pytest.approx(clf.score(X, y), abs=1e-6)


@pytest.mark.parametrize("labels, pattern", [
    (np.zeros(200, dtype=int), r"CTRClassifier.score is the ROC AUC, which needs both click labels in y; "
                               r"y holds only the label 0"),
    (np.ones(200, dtype=int), "y holds only the label 1"),
    (np.r_[np.ones(100), np.full(100, 2)], "y must hold the click labels 0 and 1 only"),
    (np.r_[np.ones(100), np.zeros(99)], "X has 200 rows but y has 199 labels"),
])
def test_score_refuses_labels_without_an_auc(fitted, labels, pattern):
    clf, X, _ = fitted
    with pytest.raises(ValueError, match=pattern):
        clf.score(X, labels)


def test_grid_search_on_default_scoring_tunes_the_auc():
    X, y = rare_clicks()
    grid = {"learning_rate": [1e-5, 3e-2]}
    results = {scoring: GridSearchCV(classifier(), grid, cv=3, scoring=scoring).fit(X, y)
               for scoring in (None, "roc_auc", "accuracy")}
    default, auc, accuracy = (results[s].cv_results_["mean_test_score"] for s in (None, "roc_auc", "accuracy"))
    np.testing.assert_allclose(default, auc, rtol=0, atol=1e-12)
    assert np.abs(default - accuracy).min() > 0.05
    assert results[None].best_params_ == {"learning_rate": grid["learning_rate"][int(np.argmax(auc))]}
