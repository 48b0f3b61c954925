"""Matérn Gaussian processes as linear state-space models, smoothed with Kalman/RTS.

A Matérn GP of order ``ν = p + ½`` on a line is the first component of a linear time-invariant
SDE with a ``d = p + 1`` dimensional state (the function and its first ``p`` derivatives).
Between two coordinates ``Δ`` apart the state moves by ``x' = A(Δ) x + q`` with
``A(Δ) = expm(F Δ)`` and ``q ~ N(0, P∞ - A P∞ Aᵀ)``, ``P∞`` the stationary covariance
(Hartikainen and Särkkä, 2010). :class:`pyro.ops.ssm_gp.MaternKernel` supplies ``A``, ``P∞``
and the process noise for ``ν = ½, 3/2, 5/2``; this module uses it (with module-local
parameters, so nothing lands in Pyro's global parameter store) and adds:

- :class:`StateSpaceGP`: ``R`` independent channels of one Matérn kernel, a joint state of
  ``D = R d`` numbers ordered channel by channel, so the transition is block diagonal;
- :func:`kalman_filter` / :func:`rts_smoother` (together :func:`kalman_smoother`): the posterior
  of the state at sorted coordinates given Gaussian *sites* in information form on the function
  values, ``exp(ηᵢᵀ uᵢ - ½ uᵢᵀ Λᵢ uᵢ)`` with a full ``R x R`` ``Λᵢ`` coupling the channels
  (the conditional-EP messages of FunBaT). It returns
  the marginal means and covariances, the lag-one cross covariances and ``log Z``; the filter
  also runs several hyperparameter settings side by side in one loop (for the lengthscale search);
- :func:`conditional_moments`: the exact posterior of the function values anywhere: between two
  smoothed coordinates from their joint posterior and the prior bridge, after the last one by
  forward prediction, before the first one by the stationary backward conditional.

The sequential loops run in NumPy float64 on the CPU with ``D x D`` matrices (``D`` is the rank
times 1, 2 or 3); everything else is batched.

Examples
--------
>>> import numpy as np
>>> from tensorkit.funbat._ssm import StateSpaceGP, kalman_smoother, conditional_moments
>>> gp = StateSpaceGP("matern32", lengthscale=0.3, variance=1.0, n_channels=1)
>>> t = np.linspace(0, 1, 5)
>>> states = kalman_smoother(gp, t, precision=np.full((5, 1, 1), 100.0), shift=100.0 * np.sin(t)[:, None])
>>> mean, cov = conditional_moments(gp, states, np.array([0.5, 0.6, 2.0]))
>>> bool(abs(mean[0, 0] - np.sin(0.5)) < 0.05 and cov[2, 0, 0] > cov[1, 0, 0])
True
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import pyro
import torch
from pyro.ops.ssm_gp import MaternKernel

try:  # NumPy's batched solve without its Python wrapper (about 3x less overhead on tiny systems)
    from numpy.linalg import _umath_linalg as _gufuncs

    def _small_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _gufuncs.solve(a, b, signature="dd->d")
except (ImportError, AttributeError):  # pragma: no cover - other NumPy layouts
    _small_solve = np.linalg.solve

def _batched_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a⁻¹ b`` for stacks of small float64 systems (torch's batched LU: about 3x NumPy's per-matrix LAPACK calls)."""
    return torch.linalg.solve(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))).numpy()


def _batched_logdet(a: np.ndarray) -> np.ndarray:
    """``log |det a|`` for a stack of small float64 matrices."""
    return torch.linalg.slogdet(torch.from_numpy(np.ascontiguousarray(a)))[1].numpy()


__all__ = ["KERNELS", "FilteredStates", "SmoothedStates", "StateSpaceGP", "conditional_moments", "kalman_filter",
           "kalman_smoother", "matern_kernel", "rts_smoother"]

KERNELS = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}
"""Kernel names and their Matérn order ``ν``."""

_JITTER = 1e-12  # relative to the stationary variances, only where a covariance is inverted
_SYMMETRIZE_EVERY = 4  # filter steps between re-symmetrisations of the covariance
_TRANSITION_CACHE_SIZE = 64  # joint transitions kept for the filters' fixed gaps (a few per mode and lengthscale)
_transition_cache: "OrderedDict[tuple, tuple[np.ndarray, np.ndarray]]" = OrderedDict()


def matern_kernel(kernel: str, distance: np.ndarray, lengthscale: float, variance: float) -> np.ndarray:
    """The Matérn covariance ``k(|t - t'|)`` written out (for dense references and tests)."""
    r = np.abs(np.asarray(distance, dtype=float)) / lengthscale
    if kernel == "matern12":
        return variance * np.exp(-r)
    if kernel == "matern32":
        s = math.sqrt(3.0) * r
        return variance * (1.0 + s) * np.exp(-s)
    if kernel == "matern52":
        s = math.sqrt(5.0) * r
        return variance * (1.0 + s + s * s / 3.0) * np.exp(-s)
    raise ValueError(f"kernel must be one of {tuple(KERNELS)}; got {kernel!r}")


class StateSpaceGP:
    """``n_channels`` independent GPs with one Matérn kernel, as one linear state-space model.

    Parameters
    ----------
    kernel : {"matern12", "matern32", "matern52"}
    lengthscale, variance : float
    n_channels : int
        ``R``: the joint state has ``D = R d`` components, channel ``r`` at ``r d ... r d + d - 1``
        (its function value first), so transitions are block diagonal.
    """

    def __init__(self, kernel: str, lengthscale: float, variance: float, n_channels: int = 1):
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {tuple(KERNELS)}; got {kernel!r}")
        self.kernel = kernel
        self.lengthscale = float(lengthscale)
        self.variance = float(variance)
        self.n_channels = int(n_channels)
        self.state_dim = {"matern12": 1, "matern32": 2, "matern52": 3}[kernel]
        self.dim = self.n_channels * self.state_dim
        self.observed = np.arange(self.n_channels) * self.state_dim
        self._stationary = _pyro_stationary(self.kernel, self.lengthscale, self.variance)

    def _pyro(self, method: str, *args):
        return _pyro_call(self.kernel, self.lengthscale, self.variance, method, *args)

    def channel_transition(self, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transition ``A(Δ)`` and process covariance ``Q(Δ)`` of one channel for every gap.

        Parameters
        ----------
        dt : ndarray of shape (m,), non-negative

        Returns
        -------
        A, Q : ndarray of shape (m, d, d)
            Column convention: ``x(t + Δ) = A x(t) + q``, ``q ~ N(0, Q)``. ``Δ = 0`` gives
            ``A = I``, ``Q = 0``.
        """
        dt = np.asarray(dt, dtype=np.float64).reshape(-1)
        zero = dt <= 0
        safe = np.where(zero, 1.0, dt)
        rows = self._pyro("transition_matrix", torch.from_numpy(safe).reshape(-1, 1, 1, 1))[:, 0]
        A = np.swapaxes(rows, -1, -2).copy()  # pyro multiplies row vectors from the right
        P = self._stationary
        Q = P - A @ P @ np.swapaxes(A, -1, -2)
        Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
        if zero.any():
            A[zero] = np.eye(self.state_dim)
            Q[zero] = 0.0
        return A, Q

    def stationary_covariance(self) -> np.ndarray:
        """``P∞`` of the joint state, ``(D, D)``."""
        if getattr(self, "_joint_stationary", None) is None:
            self._joint_stationary = np.kron(np.eye(self.n_channels), self._stationary)
            self._joint_stationary.flags.writeable = False
        return self._joint_stationary

    def transition(self, dt: np.ndarray, cache: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``A(Δ)`` and ``Q(Δ)`` of the joint state, ``(m, D, D)`` each (block diagonal).

        With ``cache=True`` the result is kept (read-only) in a small LRU keyed by the kernel,
        its hyperparameters and the gaps: the filters of a fit see the same gaps every epoch and,
        once the lengthscale search settles, the same few lengthscales.
        """
        if not cache:
            A, Q = self.channel_transition(dt)
            return _block_diagonal(A, self.n_channels), _block_diagonal(Q, self.n_channels)
        dt = np.ascontiguousarray(dt, dtype=np.float64)
        key = (self.kernel, self.lengthscale, self.variance, self.n_channels, dt.tobytes())
        hit = _transition_cache.get(key)
        if hit is not None:
            _transition_cache.move_to_end(key)
            return hit
        A, Q = self.transition(dt)
        A.flags.writeable = False
        Q.flags.writeable = False
        _transition_cache[key] = (A, Q)
        if len(_transition_cache) > _TRANSITION_CACHE_SIZE:
            _transition_cache.popitem(last=False)
        return A, Q


def _pyro_call(kernel: str, lengthscale: float, variance: float, method: str, *args) -> np.ndarray:
    with pyro.settings.context(module_local_params=True), torch.no_grad():
        module = MaternKernel(nu=KERNELS[kernel], num_gps=1,
                              length_scale_init=torch.tensor([lengthscale], dtype=torch.float64),
                              kernel_scale_init=torch.tensor([math.sqrt(variance)], dtype=torch.float64))
        return getattr(module, method)(*args).numpy()


@functools.lru_cache(maxsize=256)
def _pyro_stationary(kernel: str, lengthscale: float, variance: float) -> np.ndarray:
    out = _pyro_call(kernel, lengthscale, variance, "stationary_covariance")[0]
    out.flags.writeable = False
    return out


def _block_diagonal(blocks: np.ndarray, copies: int) -> np.ndarray:
    m, d, _ = blocks.shape
    out = np.zeros((m, copies, d, copies, d))
    for r in range(copies):
        out[:, r, :, r, :] = blocks
    return out.reshape(m, copies * d, copies * d)


class SmoothedStates(NamedTuple):
    """What :func:`kalman_smoother` returns.

    Attributes
    ----------
    coords : ndarray of shape (U,)
        The sorted, distinct coordinates.
    mean : ndarray of shape (U, D)
        Posterior means of the joint state.
    cov : ndarray of shape (U, D, D)
        Posterior marginal covariances.
    cross : ndarray of shape (U - 1, D, D)
        ``Cov(x_i, x_{i+1})``, needed for exact interpolation.
    log_normalizer : float
        ``log ∫ p(u) Πᵢ exp(ηᵢᵀ uᵢ - ½ uᵢᵀ Λᵢ uᵢ) du``; with the sites' expectation under the
        posterior it gives ``KL(q || prior)``.
    observed : ndarray of int
        The state components that are function values.
    """

    coords: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    cross: np.ndarray
    log_normalizer: float
    observed: np.ndarray

    def function_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Means ``(U, R)`` and covariances ``(U, R, R)`` of the function values."""
        h = self.observed
        return self.mean[:, h], self.cov[:, h][:, :, h]


class FilteredStates(NamedTuple):
    """What :func:`kalman_filter` returns (the input of :func:`rts_smoother`)."""

    coords: np.ndarray
    transition: np.ndarray
    pred_mean: np.ndarray
    pred_cov: np.ndarray
    filt_mean: np.ndarray
    filt_cov: np.ndarray
    log_normalizer: float
    observed: np.ndarray


def kalman_filter(gp, coords: np.ndarray, precision: np.ndarray, shift: np.ndarray):
    """Forward pass of :func:`kalman_smoother`: filtered states and ``log Z``.

    ``gp`` may also be a list of :class:`StateSpaceGP` with the same kernel and number of channels
    (e.g. several lengthscales): the filters then run side by side in one loop, for about the cost
    of one, and a list of :class:`FilteredStates` comes back. ``log Z`` is what a hyperparameter
    search compares; :func:`rts_smoother` then only needs to run for the chosen one.
    """
    batch = isinstance(gp, (list, tuple))
    gps = list(gp) if batch else [gp]
    coords = np.asarray(coords, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    first = gps[0]
    U, R, D, h = coords.shape[0], first.n_channels, first.dim, first.observed
    if any(g.dim != D or g.n_channels != R for g in gps):
        raise ValueError("batched filters need the same kernel and number of channels")
    if precision.shape != (U, R, R) or shift.shape != (U, R):
        raise ValueError(f"precision must be ({U}, {R}, {R}) and shift ({U}, {R}); "
                         f"got {precision.shape}, {shift.shape}")
    if U > 1 and not np.all(np.diff(coords) > 0):
        raise ValueError("coords must be strictly increasing")
    nb = len(gps)
    transitions = [g.transition(np.diff(coords), cache=True) for g in gps]
    A = np.stack([a for a, _ in transitions], axis=1)  # (U - 1, nb, D, D)
    Q = np.stack([q for _, q in transitions], axis=1)
    At = np.swapaxes(A, -1, -2)
    eye = np.eye(R)
    fv = slice(0, D, first.state_dim)  # the function values: a view, cheaper than indexing with h
    # The loop carries the augmented state X = [[P, m], [0, -1]] ((D + 1) x (D + 1)), so that one
    # product updates the covariance and the mean together and the site's shift rides along: the
    # per-step cost is Python overhead per NumPy call, and this form needs half the calls of
    # updating m and P apart. With the rows [H; e_D] of X (a strided view) and [Λ | η]:
    #   T = [Λ | η] [H X; (0, -1)] = [Λ H P | Λ H m - η],
    #   X⁺ = X - P Hᵀ (I + Λ H P Hᵀ)⁻¹ T,
    # i.e. P⁺ = P - P Hᵀ (I + Λ S)⁻¹ Λ H P and m⁺ = m + P Hᵀ (I + Λ S)⁻¹ (η - Λ H m): Λ (possibly
    # singular) and P are never inverted. The prediction is X' = diag(A, 1) X⁺ diag(Aᵀ, 1) + diag(Q, 0).
    rows = slice(0, D + 1, first.state_dim)  # the function values and the constant row (D is a multiple of d)
    site = np.concatenate([precision, shift[:, :, None]], axis=2)  # [Λᵢ | ηᵢ], (U, R, R + 1)
    filt = np.empty((U, nb, D + 1, D + 1))
    X = np.zeros((nb, D + 1, D + 1))
    X[:, :D, :D] = np.stack([g.stationary_covariance() for g in gps])
    X[:, D, D] = -1.0
    if U > 1:
        A_aug = np.zeros((U - 1, nb, D + 1, D + 1))
        A_aug[:, :, :D, :D] = A
        A_aug[:, :, D, D] = 1.0
        A_aug_t = np.swapaxes(A_aug, -1, -2).copy()
        Q_aug = np.zeros((U - 1, nb, D + 1, D + 1))
        Q_aug[:, :, :D, :D] = Q
    correction = np.empty((nb, D + 1, D + 1))
    moved = np.empty((nb, D + 1, D + 1))
    solve = _small_solve  # float64 operands, checked above
    for i in range(U):
        T = site[i] @ X[:, rows, :]
        Z = solve(eye + T[:, :, fv], T)
        Xf = filt[i]
        np.matmul(X[:, :, fv], Z, out=correction)
        np.subtract(X, correction, out=Xf)
        if i % _SYMMETRIZE_EVERY == 0:  # rounding asymmetry would otherwise accumulate and drift
            Pf = Xf[:, :D, :D]
            np.multiply(Pf + Pf.mT, 0.5, out=Pf)
        if i + 1 < U:
            np.matmul(A_aug[i], Xf, out=moved)
            np.matmul(moved, A_aug_t[i], out=X)
            X += Q_aug[i]
    filt_mean = filt[:, :, :D, D]
    filt_cov = filt[:, :, :D, :D]
    filt_cov = 0.5 * (filt_cov + np.swapaxes(filt_cov, -1, -2))
    # the one-step predictions, recomputed for all steps at once (the loop used them as it went)
    pred_mean = np.empty((U, nb, D))
    pred_cov = np.empty((U, nb, D, D))
    pred_mean[0] = 0.0
    pred_cov[0] = np.stack([g.stationary_covariance() for g in gps])
    if U > 1:
        pred_mean[1:] = (A @ filt_mean[:-1, :, :, None])[..., 0]
        pred_cov[1:] = A @ filt_cov[:-1] @ At + Q
    pred_cov = 0.5 * (pred_cov + np.swapaxes(pred_cov, -1, -2))

    # log Z = Σᵢ log ∫ N(u; μᵢ, Sᵢ) exp(ηᵀu - ½ uᵀΛu) du over the one-step predictions
    #       = Σᵢ ηᵀμ - ½ μᵀΛμ - ½ log det(I + Λ S) + ½ gᵀ S (I + Λ S)⁻¹ g,  g = η - Λμ
    mu = pred_mean[:, :, h]
    S = pred_cov[:, :, h][:, :, :, h]
    g = shift[:, None, :] - np.einsum("iab,ijb->ija", precision, mu)
    innovation = eye + precision[:, None] @ S
    gains = _batched_solve(innovation, g[..., None])[..., 0]  # (I + Λ S)⁻¹ (η - Λ μ)
    logdet = _batched_logdet(innovation)
    terms = (np.einsum("ia,ija->ij", shift, mu) - 0.5 * np.einsum("ija,iab,ijb->ij", mu, precision, mu)
             - 0.5 * logdet + 0.5 * np.einsum("ija,ijab,ijb->ij", g, S, gains))
    log_normalizers = terms.sum(axis=0)
    out = [FilteredStates(coords, A[:, j], pred_mean[:, j], pred_cov[:, j], filt_mean[:, j], filt_cov[:, j],
                          float(log_normalizers[j]), h) for j in range(nb)]
    return out if batch else out[0]


def rts_smoother(gp: StateSpaceGP, filtered: FilteredStates) -> SmoothedStates:
    """Backward (Rauch-Tung-Striebel) pass of :func:`kalman_smoother`."""
    f = filtered
    U = f.coords.shape[0]
    D = gp.dim
    if U <= 1:
        return SmoothedStates(f.coords, f.filt_mean.copy(), f.filt_cov.copy(), np.empty((0, D, D)),
                              f.log_normalizer, f.observed)
    # RTS gains Gᵢ = P_f,i Aᵢᵀ P_p,i+1⁻¹, batched: Gᵢᵀ = P_p,i+1⁻¹ Aᵢ P_f,i
    jitter = _JITTER * np.diag(np.diag(gp.stationary_covariance()))
    G = np.swapaxes(_batched_solve(f.pred_cov[1:] + jitter, f.transition @ f.filt_cov[:-1]), -1, -2)
    Gt = G.mT
    # the backward pass is affine: xᵢ = Gᵢ xᵢ₊₁ + cᵢ, Pᵢ = Gᵢ Pᵢ₊₁ Gᵢᵀ + Lᵢ with the offsets
    # cᵢ = m_f,i - Gᵢ m_p,i+1 and Lᵢ = P_f,i - Gᵢ P_p,i+1 Gᵢᵀ computed for all i at once
    offset = f.filt_mean[:-1] - (G @ f.pred_mean[1:, :, None])[..., 0]
    base = f.filt_cov[:-1] - G @ f.pred_cov[1:] @ Gt
    # augmented Y = [P | x] as in the filter: Yᵢ = Gᵢ Yᵢ₊₁ diag(Gᵢᵀ, 1) + [Lᵢ | cᵢ], three calls a step
    G_aug_t = np.zeros((U - 1, D + 1, D + 1))
    G_aug_t[:, :D, :D] = Gt
    G_aug_t[:, D, D] = 1.0
    base_aug = np.concatenate([base, offset[:, :, None]], axis=2)
    Y = np.empty((U, D, D + 1))
    Y[-1, :, :D] = f.filt_cov[-1]
    Y[-1, :, D] = f.filt_mean[-1]
    moved = np.empty((D, D + 1))
    for i in range(U - 2, -1, -1):
        np.matmul(G[i], Y[i + 1], out=moved)
        np.matmul(moved, G_aug_t[i], out=Y[i])
        Y[i] += base_aug[i]
    mean = Y[:, :, D].copy()
    cov = Y[:, :, :D]
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    cross = G @ cov[1:]
    return SmoothedStates(f.coords, mean, cov, cross, f.log_normalizer, f.observed)


def kalman_smoother(gp: StateSpaceGP, coords: np.ndarray, precision: np.ndarray, shift: np.ndarray) -> SmoothedStates:
    """Posterior of the state sequence given information-form Gaussian sites on the functions.

    The prior is the stationary state-space GP at the sorted ``coords``; site ``i`` multiplies it
    by ``exp(ηᵢᵀ uᵢ - ½ uᵢᵀ Λᵢ uᵢ)`` with ``uᵢ`` the ``R`` function values at ``coords[i]``.
    ``Λᵢ`` may be singular (zero: no information). The filter update uses
    ``P⁺ = P - P Hᵀ (I + Λ H P Hᵀ)⁻¹ Λ H P``, which never inverts ``Λ`` or ``P``.

    Parameters
    ----------
    gp : StateSpaceGP
    coords : ndarray of shape (U,)
        Strictly increasing.
    precision : ndarray of shape (U, R, R)
        ``Λᵢ``, symmetric positive semi-definite.
    shift : ndarray of shape (U, R)
        ``ηᵢ``.

    Returns
    -------
    SmoothedStates
    """
    return rts_smoother(gp, kalman_filter(gp, coords, precision, shift))


def conditional_moments(gp: StateSpaceGP, states: SmoothedStates, query: np.ndarray,
                        full_state: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior moments of the functions at any coordinates, given the smoothed states.

    Between two smoothed coordinates ``tᵢ < t < tᵢ₊₁`` the state at ``t`` depends on the data only
    through ``(xᵢ, xᵢ₊₁)`` (Markov property), and given them it is the prior bridge
    ``x = L₁ xᵢ + L₂ xᵢ₊₁ + N(0, Σ_b)``; its moments follow from the *joint* smoothed posterior of
    the two neighbours (cross covariance included). After the last coordinate the state is
    predicted forward; before the first one it follows the stationary backward conditional
    ``x | x₀ ~ N(P∞ Aᵀ P∞⁻¹ x₀, P∞ - P∞ Aᵀ P∞⁻¹ A P∞)``. At a smoothed coordinate it is that
    coordinate's marginal.

    Parameters
    ----------
    gp : StateSpaceGP
        The model the states were smoothed with.
    states : SmoothedStates
    query : ndarray of shape (m,)
    full_state : bool, default=False
        Return moments of the whole ``D``-dimensional state instead of the ``R`` function values.

    Returns
    -------
    mean : ndarray of shape (m, R)
    cov : ndarray of shape (m, R, R)
    """
    query = np.asarray(query, dtype=np.float64).reshape(-1)
    t = states.coords
    U, D = t.shape[0], gp.dim
    mean = np.empty((query.shape[0], D))
    cov = np.empty((query.shape[0], D, D))
    pos = np.searchsorted(t, query)
    exact = (pos < U) & (t[np.minimum(pos, U - 1)] == query)
    mean[exact] = states.mean[pos[exact]]
    cov[exact] = states.cov[pos[exact]]

    after = ~exact & (pos == U)
    if after.any():
        A, Q = gp.transition(query[after] - t[-1])
        mean[after] = A @ states.mean[-1]
        cov[after] = A @ states.cov[-1] @ np.swapaxes(A, -1, -2) + Q

    before = ~exact & (pos == 0)
    if before.any():
        P_inf = gp.stationary_covariance()
        A, _ = gp.transition(t[0] - query[before])
        L = np.swapaxes(np.linalg.solve(P_inf, A @ P_inf), -1, -2)  # P∞ Aᵀ P∞⁻¹
        bridge = P_inf - L @ A @ P_inf
        mean[before] = L @ states.mean[0]
        cov[before] = bridge + L @ states.cov[0] @ np.swapaxes(L, -1, -2)

    inside = ~exact & (pos > 0) & (pos < U)
    if inside.any():
        right = pos[inside]
        left = right - 1
        A1, Q1 = gp.transition(query[inside] - t[left])
        A2, Q2 = gp.transition(t[right] - query[inside])
        A2t = np.swapaxes(A2, -1, -2)
        total_A = A2 @ A1
        total_Q = A2 @ Q1 @ A2t + Q2
        jitter = _JITTER * np.diag(np.diag(gp.stationary_covariance()))
        L2 = np.swapaxes(np.linalg.solve(total_Q + jitter, A2 @ Q1), -1, -2)  # Q₁ A₂ᵀ Q_tot⁻¹
        L1 = A1 - L2 @ total_A
        bridge = Q1 - L2 @ A2 @ Q1
        L1t, L2t = np.swapaxes(L1, -1, -2), np.swapaxes(L2, -1, -2)
        C = states.cross[left]
        mean[inside] = np.einsum("mab,mb->ma", L1, states.mean[left]) + np.einsum("mab,mb->ma", L2, states.mean[right])
        cov[inside] = (bridge + L1 @ states.cov[left] @ L1t + L2 @ states.cov[right] @ L2t
                       + L1 @ C @ L2t + L2 @ np.swapaxes(C, -1, -2) @ L1t)
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    if full_state:
        return mean, cov
    h = states.observed
    return mean[:, h], cov[:, h][:, :, h]
