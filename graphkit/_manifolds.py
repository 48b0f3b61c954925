"""Synthetic unions of low-dimensional manifolds, for tests, tutorials and benchmarks of MLC.

- :func:`make_union_of_manifolds`: points on a union of linear subspaces, or of curved
  one-dimensional manifolds (circles and spirals), each embedded in a high-dimensional ambient
  space by its own random isometry, with the manifold of each point as its label.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tensorkit.backend import check_random_state

__all__ = ["ManifoldData", "make_union_of_manifolds"]

KINDS = ("subspaces", "curves")


class ManifoldData(NamedTuple):
    """Points on a union of manifolds and the manifold each one lies on.

    Attributes
    ----------
    X : numpy.ndarray of shape (n_samples, n_features), float64
    labels : numpy.ndarray of shape (n_samples,), int64
    bases : numpy.ndarray of shape (n_manifolds, n_features, intrinsic), float64
        The orthonormal basis of the low-dimensional space each manifold is drawn in
        (``intrinsic = dim`` for subspaces, 3 for curves).
    """

    X: np.ndarray
    labels: np.ndarray
    bases: np.ndarray


def _curve(kind: int, t: np.ndarray) -> np.ndarray:
    """A closed or open curve in R^3 for ``t`` in [0, 1): even kinds circles, odd kinds spirals."""
    if kind % 2 == 0:
        angle = 2 * np.pi * t
        return np.stack([np.cos(angle), np.sin(angle), np.zeros_like(t)], axis=1)
    angle = 3 * np.pi * t + 0.5
    radius = 0.3 + 0.7 * t
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), t - 0.5], axis=1)


def make_union_of_manifolds(n_samples: int = 600, n_manifolds: int = 3, n_features: int = 50,
                            kind: str = "subspaces", dim: int = 3, noise: float = 0.0,
                            random_state: Any = None) -> ManifoldData:
    """Points on a union of ``n_manifolds`` low-dimensional manifolds in ``R^n_features``.

    - ``kind="subspaces"``: each manifold is a random ``dim``-dimensional linear subspace; the
      points are standard Gaussian coordinates in its orthonormal basis (the model of subspace
      clustering).
    - ``kind="curves"``: each manifold is a curve in a random 3-dimensional subspace: circles
      (manifolds 0, 2, ...) and spirals (1, 3, ...), with uniform positions along the curve. Each
      curve is scaled to unit radius; curves are nonlinear, so a linear method sees each
      cluster as 2-3 dimensional, while a linearizing map can make each one a line.

    Gaussian noise of standard deviation ``noise / sqrt(n_features)`` per coordinate is added.
    The samples are split as evenly as possible and shuffled.

    Parameters
    ----------
    n_samples : int, default=600
    n_manifolds : int, default=3
    n_features : int, default=50
        Ambient dimension.
    kind : {"subspaces", "curves"}, default="subspaces"
    dim : int, default=3
        Subspace dimension (``kind="subspaces"`` only).
    noise : float, default=0.0
    random_state : None, int or numpy.random.RandomState

    Returns
    -------
    ManifoldData

    Examples
    --------
    >>> from graphkit import make_union_of_manifolds
    >>> data = make_union_of_manifolds(n_samples=90, n_manifolds=3, n_features=20, dim=2, random_state=0)
    >>> data.X.shape, sorted(set(data.labels.tolist()))
    ((90, 20), [0, 1, 2])
    >>> int(np.linalg.matrix_rank(data.X[data.labels == 0]))
    2
    """
    for name, value, low in (("n_samples", n_samples, 1), ("n_manifolds", n_manifolds, 1),
                             ("n_features", n_features, 1), ("dim", dim, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if n_samples < n_manifolds:
        raise ValueError(f"n_samples={n_samples} must be at least n_manifolds={n_manifolds}")
    intrinsic = dim if kind == "subspaces" else 3
    if intrinsic > n_features:
        raise ValueError(f"the manifolds' {'dim' if kind == 'subspaces' else 'curves (3)'}={intrinsic} "
                         f"must not exceed n_features={n_features}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.number)) or not np.isfinite(noise) \
            or noise < 0:
        raise ValueError(f"noise must be a non-negative finite number; got {noise!r}")
    rng = check_random_state(random_state).numpy
    bases = np.stack([np.linalg.qr(rng.standard_normal((n_features, intrinsic)))[0] for _ in range(n_manifolds)])
    labels = np.repeat(np.arange(n_manifolds), np.diff(np.linspace(0, n_samples, n_manifolds + 1).round().astype(int)))
    rng.shuffle(labels)
    X = np.empty((n_samples, n_features))
    for k in range(n_manifolds):
        rows = np.flatnonzero(labels == k)
        if kind == "subspaces":
            coords = rng.standard_normal((len(rows), intrinsic))
        else:
            coords = _curve(k, rng.uniform(0.0, 1.0, len(rows)))
        X[rows] = coords @ bases[k].T
    if noise > 0:
        X += rng.standard_normal(X.shape) * (noise / np.sqrt(n_features))
    return ManifoldData(X, labels.astype(np.int64), bases)
