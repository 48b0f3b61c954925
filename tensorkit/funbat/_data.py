"""Synthetic continuous-indexed tensors drawn from the FunBaT model, with the truth kept."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from tensorkit import backend

__all__ = ["FunctionalTensor", "make_functional_tucker"]


class FunctionalTensor(NamedTuple):
    """What :func:`make_functional_tucker` returns.

    Attributes
    ----------
    X : ndarray of shape (n_entries, n_modes)
        Coordinates of the observed entries (one column per mode).
    y : ndarray of shape (n_entries,)
        Observed values ``f + noise``.
    f : ndarray of shape (n_entries,)
        Noise-free values ``⟨core, u¹(t¹) ∘ ⋯ ∘ uᴷ(tᴷ)⟩``.
    core : ndarray of shape (R, ..., R), or (R,) for CP
        The core (its diagonal for CP).
    noise : float
        Standard deviation of the Gaussian noise.
    amplitudes, frequencies, phases : ndarray of shape (n_modes, R, n_waves)
        The latent functions: ``uᵏ_r(t) = Σ_j a_{krj} sin(2π ν_{krj} t + φ_{krj})``.
    """

    X: np.ndarray
    y: np.ndarray
    f: np.ndarray
    core: np.ndarray
    noise: float
    amplitudes: np.ndarray
    frequencies: np.ndarray
    phases: np.ndarray

    def latent(self, mode: int, coords: Any) -> np.ndarray:
        """The true latent functions of ``mode`` at ``coords``: shape ``(len(coords), R)``."""
        t = np.asarray(coords, dtype=np.float64).reshape(-1, 1, 1)
        waves = self.amplitudes[mode] * np.sin(2 * np.pi * self.frequencies[mode] * t + self.phases[mode])
        return waves.sum(axis=-1)

    def values(self, X: Any) -> np.ndarray:
        """Noise-free values at any coordinates ``X`` (``(m, n_modes)``)."""
        X = np.asarray(X, dtype=np.float64)
        factors = [self.latent(k, X[:, k]) for k in range(X.shape[1])]
        if self.core.ndim == 1 and len(factors) > 1:
            return np.prod(factors, axis=0) @ self.core
        phi = factors[0]
        for u in factors[1:]:
            phi = (phi[:, :, None] * u[:, None, :]).reshape(phi.shape[0], -1)
        return phi @ self.core.reshape(-1)


def make_functional_tucker(n_entries: int = 2000, n_modes: int = 3, rank: int = 2, core: str = "tucker",
                           n_coords: int = 40, noise: float = 0.1, n_waves: int = 3, max_frequency: float = 1.5,
                           random_state: Any = None) -> FunctionalTensor:
    """Draw a continuous-indexed tensor from the functional Tucker (or CP) model.

    Each mode has ``n_coords`` distinct coordinates drawn uniformly in ``[0, 1]``; each observed
    entry picks one of them per mode at random. The latent functions are smooth sums of
    ``n_waves`` random sines (frequencies up to ``max_frequency`` cycles per unit), defined on the
    whole line, so predictions outside ``[0, 1]`` can be scored too. The core has standard normal
    entries (for CP, ``R`` diagonal weights), rescaled so that the noise-free values have unit
    standard deviation over the drawn entries; ``noise`` is then the noise-to-signal ratio.

    Parameters
    ----------
    n_entries : int, default=2000
    n_modes : int, default=3
    rank : int, default=2
    core : {"tucker", "cp"}, default="tucker"
    n_coords : int, default=40
        Distinct coordinates per mode.
    noise : float, default=0.1
        Standard deviation of the additive Gaussian noise.
    n_waves : int, default=3
    max_frequency : float, default=1.5
    random_state : None, int or RandomState

    Returns
    -------
    FunctionalTensor

    Raises
    ------
    ValueError
        If ``core`` is unknown, a count is not a positive int (``n_coords`` below 2), ``noise`` is
        negative or not finite, or ``max_frequency`` is not a positive finite number.

    Examples
    --------
    >>> data = make_functional_tucker(n_entries=500, rank=2, random_state=0)
    >>> data.X.shape, data.core.shape
    ((500, 3), (2, 2, 2))
    >>> bool(abs(np.std(data.f) - 1) < 1e-12)
    True
    """
    if core not in ("tucker", "cp"):
        raise ValueError(f"core must be 'tucker' or 'cp'; got {core!r}")
    for name, value in (("n_entries", n_entries), ("n_modes", n_modes), ("rank", rank), ("n_coords", n_coords),
                        ("n_waves", n_waves)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if n_coords < 2:
        raise ValueError(f"n_coords must be at least 2; got {n_coords}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a non-negative number; got {noise!r}")
    if not (np.isfinite(max_frequency) and max_frequency > 0):
        raise ValueError(f"max_frequency must be a positive number; got {max_frequency!r}")
    rng = backend.check_random_state(random_state).numpy
    shape = (n_modes, rank, n_waves)
    amplitudes = rng.standard_normal(shape) / math.sqrt(n_waves)
    frequencies = rng.uniform(0.2, max_frequency, size=shape)
    phases = rng.uniform(0.0, 2 * np.pi, size=shape)
    grids = [np.sort(rng.uniform(0.0, 1.0, size=n_coords)) for _ in range(n_modes)]
    picks = rng.randint(0, n_coords, size=(n_entries, n_modes))
    X = np.column_stack([grids[k][picks[:, k]] for k in range(n_modes)])
    weights = rng.standard_normal(rank if core == "cp" else (rank,) * n_modes)
    data = FunctionalTensor(X, np.empty(0), np.empty(0), weights, float(noise), amplitudes, frequencies, phases)
    f = data.values(X)
    scale = float(np.std(f))
    weights = weights / scale
    f = f / scale
    y = f + noise * rng.standard_normal(n_entries)
    return data._replace(y=y, f=f, core=weights)
