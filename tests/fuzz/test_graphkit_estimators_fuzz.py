"""Property-based tests of what graphkit's estimators return (issue 32).

- FastRP on random small graphs, with edge weights spanning 1e-300 to 1e300 and
  ``normalization_strength`` (beta) in [-4, 4], in float32 or float64, returns a finite embedding
  or raises ``NonFiniteResultError``; it never returns NaN or infinity.
- On random small graphs whose weights share one scale anywhere in 1e-300 .. 1e300 (and spread
  over six orders of magnitude around it), with beta in [-1, 1], float32 and float64 agree to
  float32 tolerance: before standardisation everywhere, after it on the columns whose spread is
  not at the rounding level.
- Random absurd parameters of FastRP, PamC and ManifoldClustering give a ValueError or TypeError
  naming the parameter; random complex or too large features give a TypeError or ValueError
  naming ``X`` before anything is fitted.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from graphkit import FastRP, Graph, ManifoldClustering, PamC
from tensorkit.validation import NonFiniteResultError


@st.composite
def small_graphs(draw, log10_scale=st.floats(-300, 300), log10_spread=st.floats(-300, 300)):
    """A graph of 2 to 7 nodes with at least one edge; each weight is ``10 ** (scale + spread_e)``."""
    n = draw(st.integers(2, 7))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1]),
                          min_size=1, max_size=12, unique_by=lambda p: (min(p), max(p))))
    scale = draw(log10_scale)
    weights = [10.0 ** min(scale + draw(log10_spread), 307.0) for _ in pairs]
    src, dst = zip(*pairs)
    return Graph.from_edges(np.array(src), np.array(dst), np.array(weights))


def fastrp(**params):
    return FastRP(**{"n_components": 8, "device": "cpu", **params})


@given(graph=small_graphs(), beta=st.floats(-4, 4), dtype=st.sampled_from(["float32", "float64"]),
       normalize=st.booleans(), seed=st.integers(0, 2**16))
def test_fastrp_returns_a_finite_embedding_or_raises(graph, beta, dtype, normalize, seed):
    model = fastrp(normalization_strength=beta, dtype=dtype, normalize=normalize, random_state=seed)
    try:
        embedding = model.fit_transform(graph)
    except NonFiniteResultError as error:
        assert "normalization_strength" in str(error) or "iteration_weights" in str(error)
        return
    assert np.all(np.isfinite(embedding))
    assert np.all(np.isfinite(model.transform(graph.adjacency[:2])))


@given(graph=small_graphs(log10_spread=st.floats(-3, 3)), beta=st.floats(-1, 1), seed=st.integers(0, 2**16),
       weights=st.lists(st.floats(0.1, 5.0), min_size=1, max_size=3))
def test_fastrp_float32_agrees_with_float64(graph, beta, seed, weights):
    params = dict(normalization_strength=beta, iteration_weights=tuple(weights), random_state=seed)
    raw32 = fastrp(dtype="float32", standardize=False, **params).fit_transform(graph)
    raw64 = fastrp(dtype="float64", standardize=False, **params).fit_transform(graph)
    magnitude = sum(weights)  # every entry of a weighted sum of unit rows is at most this
    np.testing.assert_allclose(raw32, raw64, atol=1e-5 * magnitude)

    e32 = fastrp(dtype="float32", **params).fit_transform(graph)
    e64 = fastrp(dtype="float64", **params).fit_transform(graph)
    spread = raw64.std(axis=0) / magnitude
    settled = spread > 1e-3  # columns whose deviation is well above float32's rounding of the entries
    np.testing.assert_allclose(e32[:, settled], e64[:, settled], atol=1e-2)
    assert np.all(np.abs(e32[:, spread < 1e-12]) < 1e-5)  # constant columns stay (near) zero in float32 too


# (parameter, strategy of absurd values); every value must be refused naming the parameter
BAD_FASTRP_PARAMETERS = {
    "n_components": st.one_of(st.integers(max_value=0), st.integers(10**12, 10**15), st.floats(1.5, 10),
                              st.just(True)),
    "iteration_weights": st.one_of(
        st.just(()),
        st.lists(st.floats(0, 1), min_size=1, max_size=3).flatmap(
            lambda ws: st.sampled_from([float("nan"), float("inf"), -float("inf"), 1j, "1"]).map(
                lambda bad: (*ws, bad)))),
    "normalization_strength": st.sampled_from([float("nan"), float("inf"), -float("inf"), 1j, "0.5", None]),
    "self_influence": st.sampled_from([float("nan"), float("inf"), 1 + 0j, "1"]),
    "density": st.one_of(st.floats(max_value=0), st.floats(min_value=1.0, exclude_min=True), st.just(float("nan"))),
    "feature_share": st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1),
                               st.just(float("nan"))),
    "sampler": st.text(max_size=8).filter(lambda s: s not in ("torch", "sklearn")),
    "dtype": st.sampled_from(["complex64", "complex128", torch.complex64, np.complex128, "int64", torch.int32,
                              "banana"]),
}


@given(data=st.data(), name=st.sampled_from(sorted(BAD_FASTRP_PARAMETERS)))
def test_fastrp_refuses_absurd_parameters_naming_them(data, name):
    value = data.draw(BAD_FASTRP_PARAMETERS[name])
    graph = Graph.from_edges([0, 1, 2], [1, 2, 3])
    with pytest.raises((ValueError, TypeError), match=f"^{name}\\b|{name}=|'{name}' parameter"):
        FastRP(**{name: value}).fit(graph, node_features=np.ones((4, 2)))


CLUSTERERS = {
    "PamC": lambda **params: PamC(**{"n_clusters": 2, "hidden": (8,), "n_z": 2, "pretrain_epochs": 1,
                                     "n_epochs": 1, "n_init": 1, "random_state": 0, "device": "cpu",
                                     "verbose": 0, **params}),
    "ManifoldClustering": lambda **params: ManifoldClustering(**{"n_clusters": 2, "n_components": 2, "hidden": 8,
                                                                 "n_epochs": 1, "warmup_epochs": 1,
                                                                 "batch_size": 8, "n_init": 1, "random_state": 0,
                                                                 "device": "cpu", "verbose": 0, **params}),
}


@given(estimator=st.sampled_from(sorted(CLUSTERERS)), dtype=st.sampled_from(["float32", "float64"]),
       log10_scale=st.floats(0, 300), n_features=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_clusterers_refuse_features_too_large_for_the_dtype_naming_X(estimator, dtype, log10_scale, n_features,
                                                                      seed):
    X = np.random.default_rng(seed).uniform(0.5, 1.0, (8, n_features)) * 10.0 ** log10_scale
    limit = math.sqrt(torch.finfo(getattr(torch, dtype)).max / (4 * n_features))
    model = CLUSTERERS[estimator](dtype=dtype)
    if np.abs(X).max() > limit:
        with pytest.raises(ValueError, match=r"^X holds values up to .*: scale X"):
            model.fit(X)
    else:
        try:
            model.fit(X)
        except NonFiniteResultError as error:
            assert "scale X" in str(error)
            return
        for attribute in ("embedding_", "soft_assignments_", "membership_"):
            assert np.all(np.isfinite(getattr(model, attribute, 0.0)))


@given(estimator=st.sampled_from(sorted(CLUSTERERS)), kind=st.sampled_from(["numpy", "torch", "list"]),
       imaginary=st.floats(-1e3, 1e3).filter(lambda v: v != 0))
def test_clusterers_refuse_complex_features_naming_X(estimator, kind, imaginary):
    X = np.linspace(0.0, 1.0, 16).reshape(8, 2) + 1j * imaginary
    X = {"numpy": X, "torch": torch.tensor(X), "list": X.tolist()}[kind]
    with pytest.raises(TypeError, match="^X must hold real numbers"):
        CLUSTERERS[estimator]().fit(X)
