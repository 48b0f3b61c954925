"""graphkit's estimator cases of the issue-32 corpus: FastRP, PamC and ManifoldClustering.

Every graph and feature matrix is built here from arrays (no files). FastRP returns a finite
embedding equal to the one float64 computes, or raises
:class:`~tensorkit.validation.NonFiniteResultError` naming the parameter to lower; complex input
is a ``TypeError`` before any cast; absurd parameters and features too large for the dtype are a
``ValueError`` naming them.
"""

from __future__ import annotations

import numpy as np
import torch

from graphkit import FastRP, Graph, ManifoldClustering, PamC, make_attributed_sbm, make_union_of_manifolds
from tensorkit.validation import NonFiniteResultError
from tests.fuzz.corpus import Case


def path(weight: float = 1.0, n: int = 5) -> Graph:
    """A path of ``n`` nodes whose edges all weigh ``weight``."""
    return Graph.from_edges(np.arange(n - 1), np.arange(1, n), np.full(n - 1, weight))


def embed(graph: Graph, node_features=None, **params):
    """``FastRP(...).fit_transform(graph)`` with a small, seeded default configuration."""
    return FastRP(**{"n_components": 8, "random_state": 0, "device": "cpu", **params}).fit_transform(
        graph, node_features=node_features)


def same_as(expected_params: dict, graph: Graph, atol: float = 1e-5):
    """A check that the result is finite and equals ``embed(graph, **expected_params)``."""
    def check(result, folder):
        assert np.all(np.isfinite(result))
        np.testing.assert_allclose(result, embed(graph, **expected_params), atol=atol)
    return check


def float32_agrees_with_float64(result, folder):
    e32, e64 = result
    np.testing.assert_allclose(e32, e64, atol=1e-5)
    assert all(np.allclose(column, 0, atol=1e-12) or np.isclose(column.std(), 1.0) for column in e64.T)


FASTRP_CASES = [
    Case("graphkit-estimator-fastrp-tiny-weights-negative-beta",
         "weights 1e-70 with normalization_strength=-0.64 in float32 (degree ** beta = 1e45 overflows): the "
         "embedding of unit weights, which a common factor of every degree does not change",
         run=lambda folder: embed(path(1e-70), normalization_strength=-0.64),
         check=same_as(dict(normalization_strength=-0.64), path(1.0))),
    Case("graphkit-estimator-fastrp-weights-near-max-float",
         "weights 1.7e308 (degrees overflow float64): the embedding of unit weights",
         run=lambda folder: embed(path(1.7e308), normalization_strength=-0.64),
         check=same_as(dict(normalization_strength=-0.64), path(1.0))),
    Case("graphkit-estimator-fastrp-beta-500",
         "normalization_strength=500 in float32: degree ** beta spans 2^500, refused naming the parameter",
         run=lambda folder: embed(path(), normalization_strength=500), raises=NonFiniteResultError,
         match=r"^normalization_strength=500\.0: .*lower \|normalization_strength\|"),
    Case("graphkit-estimator-fastrp-tiny-weights-with-features",
         "weights 1e-70, normalization_strength=-0.64 and node features: no common factor can be removed, refused",
         run=lambda folder: embed(path(1e-70), node_features=np.ones((5, 2)), normalization_strength=-0.64),
         raises=NonFiniteResultError, match="^normalization_strength=-0.64"),
    Case("graphkit-estimator-fastrp-overflowing-iteration-weights",
         "iteration_weights=(3e38, 3e38) overflow float32: NonFiniteResultError naming iteration_weights",
         run=lambda folder: embed(path(), iteration_weights=(3e38, 3e38)), raises=NonFiniteResultError,
         match=r"^FastRP embedding holds .* non-finite .*lower iteration_weights"),
    Case("graphkit-estimator-fastrp-float32-path-of-3",
         "a path of 3 nodes: float32 and float64 agree, constant columns stay zero instead of ±1",
         run=lambda folder: tuple(embed(path(n=3), dtype=dtype, random_state=3) for dtype in ("float32", "float64")),
         check=float32_agrees_with_float64),
    Case("graphkit-estimator-fastrp-complex-dtype", "dtype='complex64' is refused naming dtype",
         run=lambda folder: embed(path(), dtype="complex64"), raises=ValueError,
         match="^dtype must be a real floating dtype"),
    Case("graphkit-estimator-fastrp-complex-node-features", "complex node_features: TypeError before any cast",
         run=lambda folder: embed(path(), node_features=np.ones((5, 2)) * (1 + 2j)), raises=TypeError,
         match="^node_features must hold real numbers"),
    Case("graphkit-estimator-fastrp-complex-transform", "complex links given to transform: TypeError before any cast",
         run=lambda folder: FastRP(n_components=8, random_state=0).fit(path()).transform(
             np.ones((1, 5), dtype=np.complex128)), raises=TypeError, match="^X must hold real numbers"),
    Case("graphkit-estimator-fastrp-complex-iteration-weights", "complex iteration_weights are refused",
         run=lambda folder: embed(path(), iteration_weights=(1, 1j)), raises=ValueError, match="^iteration_weights"),
    Case("graphkit-estimator-fastrp-nan-normalization-strength", "normalization_strength=nan is refused",
         run=lambda folder: embed(path(), normalization_strength=float("nan")), raises=ValueError,
         match="^The 'normalization_strength' parameter of FastRP"),
    Case("graphkit-estimator-fastrp-huge-n-components",
         "n_components=10**12 is refused before anything is allocated",
         run=lambda folder: embed(path(), n_components=10**12), raises=ValueError,
         match=r"^n_components=1000000000000 is too large"),
]

SMALL_PAMC = dict(n_clusters=2, hidden=(16, 16), n_z=4, pretrain_epochs=2, n_epochs=3, n_init=2, random_state=0,
                  device="cpu", verbose=0)
SBM = make_attributed_sbm(n_nodes=30, n_clusters=2, n_features=4, random_state=11)
SMALL_MLC = dict(n_clusters=2, n_components=4, hidden=16, eta=0.3, n_epochs=2, warmup_epochs=1, batch_size=30,
                 random_state=0, device="cpu", verbose=0)
CURVES = make_union_of_manifolds(n_samples=60, n_manifolds=2, n_features=10, kind="curves", noise=0.02,
                                 random_state=0).X


def with_nan(X: np.ndarray) -> np.ndarray:
    bad = X.copy()
    bad[3, 1] = np.nan
    return bad


CLUSTERING_CASES = [
    Case("graphkit-estimator-pamc-features-times-1e20",
         "PamC on features scaled by 1e20 in float32: squared distances overflow, refused naming X",
         run=lambda folder: PamC(**SMALL_PAMC).fit(SBM.features * 1e20, graph=SBM.graph), raises=ValueError,
         match=r"^X holds values up to .*: scale X"),
    Case("graphkit-estimator-pamc-complex-features", "PamC on complex features: TypeError before any cast",
         run=lambda folder: PamC(**SMALL_PAMC).fit(torch.tensor(SBM.features) * 1j, graph=SBM.graph),
         raises=TypeError, match="^X must hold real numbers"),
    Case("graphkit-estimator-pamc-nan-features", "PamC on features holding NaN: ValueError naming X",
         run=lambda folder: PamC(**SMALL_PAMC).fit(with_nan(SBM.features), graph=SBM.graph), raises=ValueError,
         match="Input X contains NaN"),
    Case("graphkit-estimator-pamc-complex-dtype", "PamC(dtype='complex128') is refused naming dtype",
         run=lambda folder: PamC(**SMALL_PAMC, dtype="complex128").fit(SBM.features, graph=SBM.graph),
         raises=ValueError, match="^dtype must be a real floating dtype"),
    Case("graphkit-estimator-pamc-diverging-lr", "PamC with lr=1e10 diverges: NonFiniteResultError, not NaN labels",
         run=lambda folder: PamC(**{**SMALL_PAMC, "n_epochs": 10}, lr=1e10).fit(SBM.features, graph=SBM.graph),
         raises=NonFiniteResultError, match=r"^PamC's training loss holds .*lower lr"),
    Case("graphkit-estimator-mlc-features-times-1e20",
         "ManifoldClustering on features scaled by 1e20 in float32 (BatchNorm's variances overflowed and every "
         "sample got the same features): refused naming X",
         run=lambda folder: ManifoldClustering(**SMALL_MLC).fit(CURVES * 1e20), raises=ValueError,
         match=r"^X holds values up to .*: scale X"),
    Case("graphkit-estimator-mlc-complex-features", "ManifoldClustering on complex features: TypeError",
         run=lambda folder: ManifoldClustering(**SMALL_MLC).fit(CURVES + 1j), raises=TypeError,
         match="^X must hold real numbers"),
    Case("graphkit-estimator-mlc-infinite-features", "ManifoldClustering on features holding inf: ValueError naming X",
         run=lambda folder: ManifoldClustering(**SMALL_MLC).fit(np.where(CURVES > 0.3, np.inf, CURVES)),
         raises=ValueError, match="Input X contains infinity"),
    Case("graphkit-estimator-mlc-complex-dtype", "ManifoldClustering(dtype='complex64') is refused naming dtype",
         run=lambda folder: ManifoldClustering(**SMALL_MLC, dtype="complex64").fit(CURVES), raises=ValueError,
         match="^dtype must be a real floating dtype"),
]

CASES = FASTRP_CASES + CLUSTERING_CASES
