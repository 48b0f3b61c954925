"""Synthetic Kronecker-sparse recovery problems and the scores used to judge a recovery."""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple, Sequence

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["KroneckerProblem", "make_kronecker_problem", "nmse_db", "support_recovery_rate"]


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
    random support per factor; its values are i.i.d. Gaussian on that support (``values="iid"``) or
    ``x = x_1 ⊗ ... ⊗ x_K`` with Gaussian ``x_k`` on each factor's support (``values="kron"``, the
    model of He and Joseph). Gaussian noise is added at ``snr_db`` (signal power ``||A x||² / m``).

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
    >>> problem = make_kronecker_problem(random_state=0)
    >>> [a.shape for a in problem.factors], problem.y.shape, int((problem.coef != 0).sum())
    ([(16, 32), (16, 32)], (256,), 16)
    """
    rng = check_random_state(random_state)
    if isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real) or not snr_db > -math.inf:
        raise ValueError(f"snr_db must be a real number (inf for no noise); got {snr_db!r}")
    if values not in ("iid", "kron"):
        raise ValueError(f"values must be 'iid' or 'kron'; got {values!r}")
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
    indicators = []
    for (_, n), support in zip(shapes, supports):
        indicator = np.zeros(n)
        indicator[support] = 1.0
        indicators.append(indicator)
    mask = _kron_all(indicators) != 0
    if values == "kron":
        parts = []
        for (_, n), support in zip(shapes, supports):
            part = np.zeros(n, dtype=complex if complex_valued else float)
            part[support] = gaussian(len(support))
            parts.append(part)
        coef = _kron_all(parts)
    else:
        coef = np.zeros(mask.size, dtype=complex if complex_valued else float)
        coef[mask] = gaussian(int(mask.sum()))
    clean = _kron_apply(factors, coef)
    signal_power = float(np.mean(np.abs(clean) ** 2))
    noise_var = signal_power / 10 ** (snr_db / 10)
    y = clean + np.sqrt(noise_var) * gaussian(clean.size)
    return KroneckerProblem(factors, y, coef, supports, noise_var)


def _kron_apply(factors, coef):
    """``np.kron(A_1, ..., A_K) @ coef`` by mode products, without forming the Kronecker matrix."""
    tensor = coef.reshape([factor.shape[1] for factor in factors])
    for mode, factor in enumerate(factors):
        tensor = np.moveaxis(np.tensordot(factor, tensor, axes=(1, mode)), 0, mode)
    return tensor.reshape(-1)


def _kron_all(arrays):
    result = arrays[0]
    for array in arrays[1:]:
        result = np.kron(result, array)
    return result


def nmse_db(estimate: Any, truth: Any) -> float:
    """Normalised mean squared error ``||estimate - truth||² / ||truth||²`` in decibels."""
    estimate, truth = np.asarray(estimate), np.asarray(truth)
    return float(10 * np.log10(np.linalg.norm(estimate - truth) ** 2 / np.linalg.norm(truth) ** 2))


def support_recovery_rate(estimate: Any, truth: Any, relative_threshold: float = 1e-3) -> float:
    """|estimated support ∩ true support| / |estimated support ∪ true support|.

    The estimated support holds the entries above ``relative_threshold`` times the largest
    magnitude, as in the protocol of He and Joseph (and of Fang et al. before them).
    """
    estimate, truth = np.abs(np.asarray(estimate)), np.abs(np.asarray(truth))
    found = estimate > relative_threshold * estimate.max() if estimate.max() > 0 else np.zeros(estimate.shape, bool)
    true = truth > 0
    union = np.logical_or(found, true).sum()
    return float(np.logical_and(found, true).sum() / union) if union else 1.0
