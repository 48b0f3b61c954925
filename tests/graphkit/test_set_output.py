"""Every graphkit transformer follows scikit-learn's set_output and get_feature_names_out."""

import inspect

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import graphkit
from graphkit import FastRP, ManifoldClustering, make_union_of_manifolds

GRAPH = nx.karate_club_graph()
MANIFOLDS = make_union_of_manifolds(n_samples=60, n_manifolds=3, n_features=6, dim=2, random_state=0)
FEATURES = pd.DataFrame(MANIFOLDS.X, columns=[f"f{i}" for i in range(6)], index=np.arange(100, 160))
NEW_NODES = np.eye(34)[:3]  # three new nodes, each linked to one fitted node


def cases():
    """(transformer, its fit input, an input for transform, the output name prefix)."""
    return [
        (FastRP(n_components=6, random_state=0, verbose=0, device="cpu"), GRAPH, NEW_NODES, "fastrp"),
        (ManifoldClustering(n_clusters=3, n_components=4, hidden=16, n_epochs=1, warmup_epochs=1, batch_size=60,
                            n_init=2, random_state=0, verbose=0, device="cpu"),
         FEATURES.to_numpy(), FEATURES.to_numpy(), "manifoldclustering"),
    ]


def test_the_cases_cover_every_graphkit_transformer():
    transformers = {obj for _, obj in inspect.getmembers(graphkit, inspect.isclass) if hasattr(obj, "transform")}
    assert transformers == {type(estimator) for estimator, *_ in cases()}


@pytest.mark.parametrize("estimator, fit_input, new_input, prefix", cases(), ids=["FastRP", "ManifoldClustering"])
def test_pandas_output_names_its_columns_and_holds_the_default_output(estimator, fit_input, new_input, prefix):
    plain = clone(estimator)
    expected_fit, expected_new = plain.fit_transform(fit_input), plain.transform(new_input)
    framed = clone(estimator).set_output(transform="pandas")
    frame = framed.fit_transform(fit_input)
    names = framed.get_feature_names_out()
    assert list(names) == [f"{prefix}{i}" for i in range(expected_fit.shape[1])]
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)
    np.testing.assert_array_equal(frame.to_numpy(), expected_fit)
    new_frame = framed.transform(new_input)
    assert isinstance(new_frame, pd.DataFrame) and list(new_frame.columns) == list(names)
    np.testing.assert_array_equal(new_frame.to_numpy(), expected_new)
    back = framed.set_output(transform="default").transform(new_input)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, expected_new)


def test_fastrp_in_a_pandas_pipeline():
    pipeline = make_pipeline(FastRP(n_components=6, random_state=0, verbose=0, device="cpu"), StandardScaler())
    frame = pipeline.set_output(transform="pandas").fit_transform(GRAPH)
    embedding = FastRP(n_components=6, random_state=0, verbose=0, device="cpu").fit_transform(GRAPH)
    assert list(frame.columns) == list(pipeline.get_feature_names_out()) == [f"fastrp{i}" for i in range(6)]
    np.testing.assert_allclose(frame.to_numpy(), StandardScaler().fit_transform(embedding))


def test_manifold_clustering_in_a_pandas_pipeline_keeps_the_row_index():
    model = cases()[1][0]
    pipeline = make_pipeline(StandardScaler(), clone(model)).set_output(transform="pandas")
    frame = pipeline.fit_transform(FEATURES)
    expected = clone(model).fit_transform(StandardScaler().fit_transform(FEATURES.to_numpy()))
    assert list(frame.columns) == list(pipeline.get_feature_names_out()) == [f"manifoldclustering{i}" for i in range(4)]
    assert list(frame.index) == list(FEATURES.index)
    np.testing.assert_allclose(frame.to_numpy(), expected, rtol=1e-6, atol=1e-6)
