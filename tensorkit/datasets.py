"""Synthetic data drawn from tensorkit's models, with the truth kept to score a fit against.

- :func:`make_kronecker_problem`: a planted Kronecker-sparse recovery problem for
  :class:`~tensorkit.KroneckerSBL` (:class:`KroneckerProblem`).
- :func:`make_functional_tucker`: a continuous-indexed tensor from the functional Tucker (or CP)
  model of :class:`~tensorkit.FunBaT` (:class:`FunctionalTensor`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np
from sklearn.utils import check_random_state as _sklearn_check_random_state

from tensorkit import backend
from tensorkit.base import StrOptions, integers, reals, validate_params

__all__ = ["FunctionalTensor", "KroneckerProblem", "make_functional_tucker", "make_kronecker_problem"]


# ----------------------------------------------------------------------------- Kronecker-sparse recovery
class KroneckerProblem(NamedTuple):
    """A planted problem ``y = (A_1 ⊗ ... ⊗ A_K) x + noise``.

    Attributes
    ----------
    factors : list of ndarray
        ``A_k`` of shape ``(m_k, n_k)``.
    y : ndarray of shape (m_1 ⋯ m_K,)
    coef : ndarray of shape (n_1 ⋯ n_K,)
        The true ``x``, ordered as the columns of ``np.kron(A_1, ..., A_K)``.
    supports : list of ndarray
        The non-zero positions of each factor; the support of ``x`` is their Kronecker product.
    noise_var : float
        The variance of the noise that was added (per real and imaginary part together).
    """

    factors: list
    y: np.ndarray
    coef: np.ndarray
    supports: list
    noise_var: float


@validate_params({
    "snr_db": [reals(None, math.inf)],
    "values": [StrOptions({"iid", "kron"})],
})
def make_kronecker_problem(
    shapes: Sequence[tuple[int, int]] = ((16, 32), (16, 32)),
    support_sizes: Sequence[int] | int = 4,
    snr_db: float = 20.0,
    values: str = "iid",
    complex_valued: bool = False,
    random_state: Any = None,
) -> KroneckerProblem:
    """Draw a Kronecker-structured sparse recovery problem.

    Each factor ``A_k`` has i.i.d. standard Gaussian entries (complex Gaussian when
    ``complex_valued``) with unit-norm columns. The support of ``x`` is the Kronecker product of one
    random support per factor. Gaussian noise is added at ``snr_db`` (signal power ``||A x||² / m``).

    Parameters
    ----------
    shapes : sequence of (int, int), default=((16, 32), (16, 32))
        ``(m_k, n_k)`` of each factor ``A_k``.
    support_sizes : int or sequence of int, default=4
        Non-zero entries per factor (one value for all factors, or one per factor).
    snr_db : float, default=20.0
        Signal-to-noise ratio in decibels; ``inf`` adds no noise.
    values : {"iid", "kron"}, default="iid"
        ``"iid"``: i.i.d. Gaussian values on the support; ``"kron"``: ``x = x_1 ⊗ ... ⊗ x_K`` with
        Gaussian ``x_k`` on each factor's support (the model of He and Joseph).
    complex_valued : bool, default=False
        Complex Gaussian factors, values and noise.
    random_state : None, int or RandomState, default=None

    Returns
    -------
    KroneckerProblem

    Raises
    ------
    ValueError
        If ``values`` is unknown, ``support_sizes`` does not give one size per factor, or
        ``snr_db`` is NaN, minus infinity or not a real number.

    Examples
    --------
    >>> from tensorkit.datasets import make_kronecker_problem
    >>> problem = make_kronecker_problem(random_state=0)
    >>> [a.shape for a in problem.factors], problem.y.shape, int((problem.coef != 0).sum())
    ([(16, 32), (16, 32)], (256,), 16)
    """
    rng = _sklearn_check_random_state(random_state)
    sizes = [support_sizes] * len(shapes) if np.isscalar(support_sizes) else list(support_sizes)
    if len(sizes) != len(shapes):
        raise ValueError("support_sizes needs one entry per factor")

    def gaussian(*shape):
        draw = rng.standard_normal(shape)
        if complex_valued:
            draw = (draw + 1j * rng.standard_normal(shape)) / np.sqrt(2)
        return draw

    factors = []
    for m, n in shapes:
        factor = gaussian(m, n)
        factors.append(factor / np.linalg.norm(factor, axis=0, keepdims=True))
    supports = [np.sort(rng.choice(n, size=s, replace=False)) for (_, n), s in zip(shapes, sizes)]
    dtype = complex if complex_valued else float
    if values == "kron":
        parts = []
        for (_, n), support in zip(shapes, supports):
            part = np.zeros(n, dtype=dtype)
            part[support] = gaussian(len(support))
            parts.append(part)
        coef = _kron_all(parts)
    else:
        mask = _kron_all([_indicator(n, support) for (_, n), support in zip(shapes, supports)]) != 0
        coef = np.zeros(mask.size, dtype=dtype)
        coef[mask] = gaussian(int(mask.sum()))
    clean = _kron_apply(factors, coef)
    noise_var = float(np.mean(np.abs(clean) ** 2)) / 10 ** (snr_db / 10)
    y = clean + np.sqrt(noise_var) * gaussian(clean.size)
    return KroneckerProblem(factors, y, coef, supports, noise_var)


def _indicator(size: int, support: np.ndarray) -> np.ndarray:
    indicator = np.zeros(size)
    indicator[support] = 1.0
    return indicator


def _kron_apply(factors: Sequence[np.ndarray], coef: np.ndarray) -> np.ndarray:
    """``np.kron(A_1, ..., A_K) @ coef`` by mode products, without forming the Kronecker matrix."""
    tensor = coef.reshape([factor.shape[1] for factor in factors])
    for mode, factor in enumerate(factors):
        tensor = np.moveaxis(np.tensordot(factor, tensor, axes=(1, mode)), 0, mode)
    return tensor.reshape(-1)


def _kron_all(arrays: Sequence[np.ndarray]) -> np.ndarray:
    result = arrays[0]
    for array in arrays[1:]:
        result = np.kron(result, array)
    return result


# ----------------------------------------------------------------------------- functional Tucker
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


@validate_params({
    "n_entries": [integers(1)],
    "n_modes": [integers(1)],
    "rank": [integers(1)],
    "core": [StrOptions({"tucker", "cp"})],
    "n_coords": [integers(2)],
    "noise": [reals(0)],
    "n_waves": [integers(1)],
    "max_frequency": [reals(0, None, closed="neither")],
})
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
    >>> import numpy as np
    >>> from tensorkit.datasets import make_functional_tucker
    >>> data = make_functional_tucker(n_entries=500, rank=2, random_state=0)
    >>> data.X.shape, data.core.shape
    ((500, 3), (2, 2, 2))
    >>> bool(abs(np.std(data.f) - 1) < 1e-12)
    True
    """
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
    y = f / scale + noise * rng.standard_normal(n_entries)
    return data._replace(y=y, f=f / scale, core=weights / scale)

