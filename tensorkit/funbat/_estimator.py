"""The :class:`FunBaT` estimator (Fang et al., ICLR 2024)."""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from tensorkit import backend
from tensorkit.base import StrOptions, TorchEstimator, integers, reals
from tensorkit.funbat._cep import (
    core_posterior,
    core_statistics,
    entry_means,
    expected_squared_error,
    gamma_kl,
    gaussian_kl,
    make_sum_plan,
    mode_sums,
    predictive_moments,
    site_parameters,
)
from tensorkit.funbat._ssm import (
    KERNELS,
    StateSpaceGP,
    conditional_moments,
    kalman_filter,
    kalman_smoother,
    rts_smoother,
)
from tensorkit.validation import array_shape, check_finite_result, reject_complex

__all__ = ["FunBaT"]

CORES = ("tucker", "cp")
MAX_CORE_SIZE = 1024
"""Largest Tucker core (``Π R_k``) whose full ``(P, P)`` posterior covariance FunBaT keeps."""
NOISE_PRIOR = (1.0, 1.0)
"""Shape and rate of the Gamma prior on the noise precision of the standardised target."""
INIT_FUNCTION_VAR = 0.01
"""Initial posterior variance of the latent function values (standardised units)."""
INIT_CORE_VAR = 0.1
"""Initial posterior variance of the core entries."""
LS_BOUNDS = (1e-4, 10.0)
"""Range of learned lengthscales, in units of each mode's training range."""
LS_SEARCH_FACTOR = 2.0
"""First step factor of the lengthscale search."""
LS_SEARCH_FLOOR = 1.05
"""Smallest step factor of the lengthscale search."""
LS_MAX_PAUSE = 8
"""Most epochs a mode's converged lengthscale search pauses (see ``learn_lengthscale``)."""
INIT_EPOCHS = 10
"""With ``n_init > 1``, epochs each initialisation runs before the best (by objective) is kept."""
FAR_COORDINATES = ("the coordinates lie so far outside the training range of their mode (in units of that range) "
                   "that the state-space conditionals overflow: predict nearer the data")
"""Likely cause of non-finite predictions from a finite fit."""


class _Mode(NamedTuple):
    coords: np.ndarray      # distinct training coordinates, scaled to [0, 1]
    offset: float           # scaled = (raw - offset) / scale
    scale: float
    gp: StateSpaceGP


class FunBaT(RegressorMixin, TorchEstimator):
    """Functional Bayesian Tucker decomposition of continuous-indexed tensor data.

    Fang, Yu, Wang, Li, Kirby and Zhe, "Functional Bayesian Tucker Decomposition for
    Continuous-indexed Tensor Data", ICLR 2024 (arXiv:2311.04829).

    Each row of ``X`` is one observed entry, its columns are the entry's coordinates in the tensor's
    ``K`` modes (any real numbers: positions, times, temperatures; integer indices work too), and
    ``y`` holds the observed values. The model is a Tucker decomposition whose factor matrices are
    replaced by functions,

        ``yₙ = ⟨W, u¹(t¹ₙ) ∘ ⋯ ∘ uᴷ(tᴷₙ)⟩ + b + εₙ``,   ``εₙ ~ N(0, 1/τ)``,

    where ``uᵏ: ℝ → ℝ^{R_k}`` has ``R_k`` independent Matérn Gaussian-process channels, ``W`` is the
    ``R₁ x ⋯ x R_K`` core with prior ``N(0, core_prior I)``, ``b`` an intercept with the same prior
    and ``τ ~ Gamma(1, 1)``. Internally ``y``
    is standardised (training mean and standard deviation) and every mode's coordinates are mapped
    to ``[0, 1]`` (training minimum and maximum), so that the priors and one lengthscale mean the same
    on any data; predictions come back in the units of ``y``.

    Each GP is a linear state-space model over the sorted distinct training coordinates of its mode
    (:class:`pyro.ops.ssm_gp.MaternKernel` supplies the transitions). One epoch visits the modes in
    turn; for mode ``k``:

    1. the conditional-EP messages of all entries (Gaussian in ``uᵏ`` given the other factors'
       current posterior), summed per distinct coordinate (``R_k x R_k`` precision and ``R_k``
       vector) and damped; one Kalman filter + RTS smoother over the mode's ``R_k`` channels jointly
       gives the new posterior of ``uᵏ`` (and, with ``learn_lengthscale``, the new lengthscale);
    2. the Gaussian posterior of the core, 3. the Gamma posterior of ``τ``, from the same sums.

    With ``damping=1`` every step is an exact coordinate-ascent update of the mean-field evidence
    lower bound, which then never decreases. Cost per epoch: ``O(Σ_k (#groups_k Π_{j≠k} R_j² +
    n R²))`` for the message sums, where ``#groups_k ≤ n`` counts the distinct coordinate pairs of
    mode ``k`` and the other mode that pairs with it best (entries are grouped so dense-ish tensors
    pay far less than ``n``); memory ``O(Σ_k U_k Π_{j≠k} R_j² + Π_k R_k²)`` plus a fixed-size chunk,
    never ``n`` per-entry matrices; ``O(Σ_k U_k (R_k d)³)`` for the smoothers (``d`` = 1, 2, 3 for
    Matérn ½, 3/2, 5/2).

    How this implementation differs from the authors' code, and why the lengthscale search pauses:
    docs/funbat.md.

    Parameters
    ----------
    rank : int or sequence of int, default=3
        ``R_k``, one for all modes or one per mode (CP needs one value).
    kernel : {"matern12", "matern32", "matern52"} or sequence of them, default="matern32"
        The Matérn order of each mode's GP (½: rough, 3/2: once differentiable, 5/2: twice).
    lengthscale : float or sequence of float, default=0.1
        Per mode, in units of the mode's training range: each mode's coordinates are mapped
        linearly to ``[0, 1]`` (training minimum to maximum) before anything else, so one value
        means the same in every mode whatever its units. The starting value when
        ``learn_lengthscale=True``.
    variance : float or sequence of float, default=1.0
        Prior variance of each latent function (per mode); the target is standardised.
    learn_lengthscale : bool, default=True
        Adapt each mode's lengthscale every epoch (from the second on) by maximising the evidence
        lower bound (the Kalman filter's log normaliser of prior times messages): ``ℓ / c``, ``ℓ``
        and ``ℓ c`` are compared in one batched pass, within ``[1e-4, 10]``; a settled search pauses
        for up to 8 epochs. With ``False`` the lengthscales stay fixed.
    core : {"tucker", "cp"}, default="tucker"
        ``"cp"`` is FunBaT-CP: a diagonal core ``diag(λ)`` (all modes share the rank ``R``) with
        learned weights ``λ ~ N(0, core_prior I)``.
    core_prior : float, default=1.0
        Prior variance of each core entry (standardised target).
    n_epochs : int, default=200
        Most sweeps over all modes.
    n_init : int, default=3
        Random initialisations: each runs 10 epochs, the one with the highest objective goes on
        (tensor factorisations have local optima, and the objective tells them apart well).
    damping : float in (0, 1], default=1.0
        Step size on the natural parameters of the messages, of the core's and of the noise's
        posterior: ``new = (1 - damping) old + damping computed`` (the first epoch is undamped). With
        1, every update is an exact coordinate-ascent step on the evidence lower bound, which then
        never decreases; smaller values slow convergence and can help on ill-posed data.
    tol : float, default=1e-4
        Stop when the objective (evidence lower bound per entry) changes by less than ``tol`` over
        an epoch; 0 runs all ``n_epochs``.
    random_state : None, int or RandomState, default=None
        Seeds the random initial posterior means (functions and core). On the CPU a seed gives
        bitwise-equal fits; on CUDA the message sums (``index_add_``, atomic there) add in a
        varying order, so fits agree to float64 round-off only.
    device : str or torch.device, default="auto"
        Where the message sums and core updates run (the sequential smoothers always run in
        NumPy float64 on the CPU: their matrices are ``R_k d x R_k d``).
    dtype : str or torch.dtype, default="float64"
    verbose : int, default=1
        Progress bar over the epochs.

    Attributes
    ----------
    core_mean_ : ndarray of shape (R_1, ..., R_K) (``(R,)`` for CP)
        Posterior mean of the core in the units of ``y``: the predictive mean is
        ``intercept_ + ⟨core_mean_, E[u¹(t¹)] ∘ ⋯ ∘ E[uᴷ(tᴷ)]⟩`` (for CP, the diagonal weights).
    core_cov_ : ndarray of shape (P, P)
        Posterior covariance of ``core_mean_.ravel()`` (C order), units of ``y`` squared.
    intercept_ : float
        Posterior mean of the intercept in the units of ``y``. The model carries a learned intercept
        ``b`` (prior ``N(0, core_prior)`` on the centred, standardised target) jointly Gaussian with
        the core: centring ``y`` alone would take a tensor with a non-zero mean out of the
        low-rank model class.
    noise_precision_ : float
        ``E[τ]`` in the units of ``y`` (``1 / noise_precision_`` is the noise variance).
    ranks_ : tuple of int
    lengthscales_ : tuple of float
        The final lengthscale of each mode (in units of its training range).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_rmse`` (units of ``y``), ``noise_std`` (units of ``y``),
        ``objective`` (the evidence lower bound of the standardised target, per entry) and
        ``lengthscale`` (one per mode).
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        ``K``, the number of modes.

    References
    ----------
    S. Fang, X. Yu, Z. Wang, S. Li, M. Kirby, S. Zhe, "Functional Bayesian Tucker Decomposition for
    Continuous-indexed Tensor Data", ICLR 2024.
    J. Hartikainen and S. Särkkä, "Kalman filtering and smoothing solutions to temporal Gaussian
    process regression models", MLSP 2010.

    Examples
    --------
    >>> from tensorkit import FunBaT
    >>> from tensorkit.datasets import make_functional_tucker
    >>> data = make_functional_tucker(n_entries=1500, rank=2, noise=0.1, random_state=0)
    >>> model = FunBaT(rank=2, n_epochs=30, random_state=0, verbose=0).fit(data.X[:1200], data.y[:1200])
    >>> mean, std = model.predict(data.X[1200:], return_std=True)
    >>> bool(np.sqrt(np.mean((mean - data.y[1200:]) ** 2)) < 0.15)
    True
    >>> model.latent_functions(0, [0.25, 0.5, 2.0]).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "rank": [integers(1), "array-like"],
        "kernel": [StrOptions(set(KERNELS)), "array-like"],
        "lengthscale": [reals(0, None, closed="neither"), "array-like"],
        "variance": [reals(0, None, closed="neither"), "array-like"],
        "learn_lengthscale": ["boolean"],
        "core": [StrOptions(set(CORES))],
        "core_prior": [reals(0, None, closed="neither")],
        "n_epochs": [integers(1)],
        "n_init": [integers(1)],
        "damping": [reals(0, 1, closed="right")],
        "tol": [reals(0)],
    }

    def __init__(self, rank: Any = 3, *, kernel: Any = "matern32", lengthscale: Any = 0.1, variance: Any = 1.0,
                 learn_lengthscale: bool = True, core: str = "tucker", core_prior: float = 1.0, n_epochs: int = 200,
                 n_init: int = 3, damping: float = 1.0, tol: float = 1e-4, random_state: Any = None,
                 device: Any = "auto", dtype: Any = "float64", verbose: int = 1):
        self.rank = rank
        self.kernel = kernel
        self.lengthscale = lengthscale
        self.variance = variance
        self.learn_lengthscale = learn_lengthscale
        self.core = core
        self.core_prior = core_prior
        self.n_epochs = n_epochs
        self.n_init = n_init
        self.damping = damping
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> "FunBaT":
        """Fit the posterior to observed entries.

        Parameters
        ----------
        X : array-like of shape (n_entries, n_modes)
            The coordinates of each observed entry, one column per mode.
        y : array-like of shape (n_entries,)
            The observed values.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If ``X`` or ``y`` holds complex numbers.
        ValueError
            If ``X`` or ``y`` hold NaN or infinity, their shapes disagree, a mode has fewer than two
            distinct coordinates or a range beyond float64, or the fitted posterior is not finite (a
            :class:`~tensorkit.validation.NonFiniteResultError` naming the likely cause).
        """
        setup = self._fit_setup(default_dtype=torch.float64)
        device, dtype = setup.device, setup.dtype
        if y is None:
            raise ValueError("FunBaT requires y to be passed, but the target y is None.")
        X, y = self._check_X(X, y, reset=True)
        K = X.shape[1]
        ranks = [int(r) for r in self._per_mode(self.rank, K, "rank")]
        kernels = self._per_mode(self.kernel, K, "kernel")
        lengthscales = self._per_mode(self.lengthscale, K, "lengthscale")
        variances = self._per_mode(self.variance, K, "variance")
        self._check_core_size(ranks)
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a real floating dtype; got {self.dtype!r}")
        n = X.shape[0]

        modes, index, inverses = [], [], []
        for k in range(K):
            values, inverse = np.unique(X[:, k], return_inverse=True)
            if values.shape[0] < 2:
                raise ValueError(
                    f"mode {k} (column {k} of X) has {values.shape[0]} distinct coordinate; FunBaT needs at least "
                    f"two per mode (got n_samples = {n})")
            offset, scale = float(values[0]), float(values[-1] - values[0])
            if not math.isfinite(scale):
                raise ValueError(f"column {k} of X spans {values[0]:g} to {values[-1]:g}, a range beyond float64; "
                                 f"rescale that mode's coordinates")
            modes.append(_Mode((values - offset) / scale, offset, scale,
                               StateSpaceGP(kernels[k], float(lengthscales[k]), float(variances[k]), ranks[k])))
            inverses.append(inverse.reshape(-1))
            index.append(torch.as_tensor(inverses[-1], dtype=torch.int64, device=device))
        y_mean, y_scale = float(y.mean()), float(y.std())
        if not y_scale > 0:
            y_scale = 1.0
        target = (y - y_mean) / y_scale
        sizes = [mode.coords.shape[0] for mode in modes]
        problem = _Problem(
            index=index, plans=[make_sum_plan(inverses, sizes, k, device=device) for k in range(K)],
            target=torch.as_tensor(target, dtype=dtype, device=device),
            y_sums=(float(n), float(target.sum()), float(np.dot(target, target))), ranks=ranks,
            cp=self.core == "cp", order=self._sweep_order(modes, ranks, target, X), core_prior=float(self.core_prior),
            damping=float(self.damping), learn_lengthscale=bool(self.learn_lengthscale), device=device, dtype=dtype)

        runs = [_Run(problem, modes, setup.random.numpy) for _ in range(self.n_init)]
        bar = self._progress(total=self.n_epochs + (self.n_init - 1) * min(INIT_EPOCHS, self.n_epochs),
                             desc="FunBaT")
        if len(runs) > 1:
            for run in runs:
                for _ in range(min(INIT_EPOCHS, self.n_epochs)):
                    run.epoch()
                    bar.update(1)
            run = max(runs, key=lambda r: r.history[-1]["objective"])
        else:
            run = runs[0]
        while len(run.history) < self.n_epochs:
            run.epoch()
            bar.update(1)
            bar.set_postfix(rmse=f"{run.history[-1]['train_rmse'] * y_scale:.4g}")
            if self.tol > 0 and len(run.history) > 1 and \
                    abs(run.history[-1]["objective"] - run.history[-2]["objective"]) <= self.tol:
                break
        bar.close()

        P = run.core_mean.shape[0] - 1
        tau = run.tau_a / run.tau_b
        core_mean_std = run.core_mean.detach().cpu().to(torch.float64)
        intercept = y_mean + y_scale * float(core_mean_std[P])
        core_mean = core_mean_std[:P].numpy().reshape((ranks[0],) if problem.cp else tuple(ranks)) * y_scale
        core_cov = run.core_cov[:P, :P].detach().cpu().to(torch.float64).numpy() * y_scale ** 2
        check_finite_result(np.concatenate([[intercept, tau], core_mean.ravel(), core_cov.ravel()]),
                            "FunBaT's fitted posterior (intercept, noise, core mean and covariance)",
                            hint="y is too large or too spread out to standardise in float64 (its mean or standard "
                                 "deviation overflows): rescale y")
        self._modes = run.modes
        self._states = run.states
        self._cp = problem.cp
        self._core_mean_std = run.core_mean.detach()
        self._core_second_std = run.core_second.detach()
        self._tau_std = tau
        self._y_mean, self._y_scale = y_mean, y_scale
        self.ranks_ = tuple(ranks)
        self.lengthscales_ = tuple(mode.gp.lengthscale for mode in run.modes)
        self.intercept_ = intercept
        self.core_mean_ = core_mean
        self.core_cov_ = core_cov
        self.noise_precision_ = tau / y_scale ** 2
        self.history_ = [{**h, "train_rmse": h["train_rmse"] * y_scale, "noise_std": h["noise_std"] * y_scale}
                         for h in run.history]
        self.n_iter_ = len(run.history)
        return self

    # -------------------------------------------------------------- predict
    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Posterior predictive mean (and standard deviation) at the given coordinates.

        Parameters
        ----------
        X : array-like of shape (n_entries, n_modes)
            Coordinates anywhere, inside or outside the training ranges.
        return_std : bool, default=False
            Also return the predictive standard deviation: latent uncertainty (functions and core)
            plus the noise.

        Returns
        -------
        mean : ndarray of shape (n_entries,)
        std : ndarray of shape (n_entries,), only with ``return_std=True``

        Raises
        ------
        TypeError
            If ``X`` holds complex numbers.
        ValueError
            If ``X`` holds NaN or infinity or has another number of columns than in ``fit``, or the
            prediction is not finite (a :class:`~tensorkit.validation.NonFiniteResultError`).
        """
        check_is_fitted(self, "core_mean_")
        like = X
        X = self._check_X(X, None, reset=False)
        device = backend.resolve_device(self.device)
        dtype = backend.resolve_dtype(self.dtype, default=torch.float64)
        means, seconds = [], []
        for k, mode in enumerate(self._modes):
            values, inverse = np.unique(X[:, k], return_inverse=True)
            m, c = conditional_moments(mode.gp, self._states[k], (values - mode.offset) / mode.scale)
            inverse = inverse.reshape(-1)
            means.append(torch.as_tensor(m[inverse], dtype=dtype, device=device))
            seconds.append(torch.as_tensor((c + m[:, :, None] * m[:, None, :])[inverse], dtype=dtype, device=device))
        core_mean = self._core_mean_std.to(device=device, dtype=dtype)
        core_second = self._core_second_std.to(device=device, dtype=dtype)
        mean, var = predictive_moments(means, seconds, core_mean, core_second, self._cp)
        mean = mean.double().cpu().numpy() * self._y_scale + self._y_mean
        check_finite_result(mean, "FunBaT's predictive mean", hint=FAR_COORDINATES)
        if not return_std:
            return backend.to_output(mean, like) if backend.is_torch(like) else mean
        std = np.sqrt(var.double().cpu().numpy() + 1.0 / self._tau_std) * self._y_scale
        check_finite_result(std, "FunBaT's predictive standard deviation", hint=FAR_COORDINATES)
        if backend.is_torch(like):
            return backend.to_output(mean, like), backend.to_output(std, like)
        return mean, std

    def latent_functions(self, mode: int, coords: Any, return_std: bool = False) -> Any:
        """Posterior mean (and standard deviation) of mode ``mode``'s latent functions.

        Exact Gaussian conditionals of the state-space posterior: at a training coordinate its
        smoothed marginal, between two its bridge given both neighbours, outside the range the
        forward prediction or the stationary backward conditional (the standard deviation grows
        with the distance to the data). As in any Tucker model, the functions are determined only
        up to an invertible linear map that the core undoes (for CP, up to scaling and order);
        ``predict`` is what is identified.

        Parameters
        ----------
        mode : int
        coords : array-like of shape (m,)
            Coordinates in the units of ``X[:, mode]``, inside or outside the training range.
        return_std : bool, default=False

        Returns
        -------
        mean : ndarray of shape (m, R_mode)
        std : ndarray of shape (m, R_mode), only with ``return_std=True``

        Raises
        ------
        TypeError
            If ``coords`` holds complex numbers.
        ValueError
            If ``mode`` is out of range, ``coords`` holds NaN or infinity, or the functions are not
            finite there (a :class:`~tensorkit.validation.NonFiniteResultError`).
        """
        check_is_fitted(self, "core_mean_")
        K = len(self._modes)
        if not integers(-K, K, closed="left").is_satisfied_by(mode):
            raise ValueError(f"mode must be an int in [-{K}, {K}); got {mode!r}")
        reject_complex(coords, "coords")
        values = np.asarray(backend.to_numpy(coords), dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(values)):
            raise ValueError("coords contains NaN or infinity")
        info = self._modes[mode]
        m, c = conditional_moments(info.gp, self._states[mode], (values - info.offset) / info.scale)
        check_finite_result(m, f"FunBaT's latent functions of mode {mode}", hint=FAR_COORDINATES)
        if not return_std:
            return m
        return m, np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0.0, None))

    # ------------------------------------------------------------ checks
    def _check_X(self, X: Any, y: Any, reset: bool) -> Any:
        """Coordinates as a dense float64 array (torch tensors and SciPy sparse matrices are accepted;
        a sparse matrix's missing entries are coordinate 0), and the target as a float64 vector;
        complex ones are refused before anything converts them."""
        reject_complex(X, "X")
        if y is not None:
            reject_complex(y, "y")
        if backend.is_torch(X):
            X = backend.to_numpy(X)
        _check_shapes(X, y)
        if y is None:
            X = validate_data(self, X, reset=reset, dtype=np.float64, accept_sparse="csr")
            return X.toarray() if sp.issparse(X) else X
        if backend.is_torch(y):
            y = backend.to_numpy(y)
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, y_numeric=True, accept_sparse="csr")
        return (X.toarray() if sp.issparse(X) else X), np.asarray(y, dtype=np.float64)

    def _check_param_combinations(self) -> None:
        """Each per-mode value of a sequence ``rank``, ``kernel``, ``lengthscale`` or ``variance``; CP's one rank."""
        checks = (("rank", "a positive int", lambda r: integers(1).is_satisfied_by(r)),
                  ("kernel", f"one of {tuple(KERNELS)}", lambda k: isinstance(k, str) and k in KERNELS),
                  ("lengthscale", "a positive number", _is_positive_number),
                  ("variance", "a positive number", _is_positive_number))
        for name, what, valid in checks:
            value = getattr(self, name)
            if _is_sequence(value) and not all(valid(v) for v in value):
                raise ValueError(f"{name} must be {what} or one per mode; got {value!r}")
        if self.core == "cp" and _is_sequence(self.rank) and len(set(int(r) for r in self.rank)) > 1:
            raise ValueError(f"core='cp' needs the same rank in every mode; got rank={self.rank!r}")

    @staticmethod
    def _per_mode(value: Any, K: int, name: str) -> list:
        if isinstance(value, (str, numbers.Number, np.number)) or np.ndim(value) == 0:
            return [value] * K
        values = list(value)
        if len(values) != K:
            raise ValueError(f"{name} must be one value or one per mode ({K} modes, the columns of X); got {value!r}")
        return values

    def _check_core_size(self, ranks: list) -> None:
        size = math.prod(ranks)
        if self.core == "tucker" and size > MAX_CORE_SIZE:
            raise ValueError(
                f"a Tucker core of ranks {tuple(ranks)} has {size} entries; FunBaT keeps its full "
                f"posterior covariance and allows at most {MAX_CORE_SIZE} (lower the rank, or use "
                f"core='cp')")

    @staticmethod
    def _sweep_order(modes: Sequence[_Mode], ranks: Sequence[int], target: np.ndarray, X: np.ndarray) -> list:
        """Modes in an order fixed by their content, so that the column order of ``X`` does not matter."""
        keys = []
        for k, mode in enumerate(modes):
            scaled = (X[:, k] - mode.offset) / mode.scale
            fingerprint = float(np.dot(target, np.cos(1.0 + 3.0 * scaled)))
            keys.append((mode.coords.shape[0], int(ranks[k]), mode.gp.kernel, mode.gp.lengthscale, mode.gp.variance,
                         round(fingerprint, 8), k))
        return [key[-1] for key in sorted(keys)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        return tags


class _Problem(NamedTuple):
    """What every initialisation of one fit shares."""

    index: list          # (n,) int64 tensors: each entry's distinct coordinate per mode
    plans: list          # SumPlan per mode
    target: torch.Tensor  # standardised y
    y_sums: tuple        # (n, Σ y, Σ y²)
    ranks: list
    cp: bool
    order: list          # the sweep order over the modes
    core_prior: float
    damping: float
    learn_lengthscale: bool
    device: torch.device
    dtype: torch.dtype


class _Run:
    """One initialisation of the posterior and its conditional-EP epochs (standardised units).

    Initial posterior: function means uniform on ``[0.5, 1.5]`` (positive like the authors' uniform
    ``[0, 1]``, but centred on 1 so that products over many modes do not start near zero, from where
    the updates collapse to the all-zero solution) with covariance ``INIT_FUNCTION_VAR I``; core
    ``w = [vec(W); b]`` (C order, then the intercept) with mean uniform on ``[0, 1]`` (``b``: 0) and
    covariance ``INIT_CORE_VAR I``; noise variance 1.
    """

    def __init__(self, problem: _Problem, modes: Sequence[_Mode], rng: np.random.RandomState):
        self.problem = pb = problem
        self.modes = list(modes)
        K = len(self.modes)
        opts = dict(dtype=pb.dtype, device=pb.device)
        self.means: list = [None] * K
        self.seconds: list = [None] * K
        for k in pb.order:
            m = torch.as_tensor(rng.uniform(0.5, 1.5, size=(self.modes[k].coords.shape[0], pb.ranks[k])), **opts)
            self.means[k] = m
            self.seconds[k] = m[:, :, None] * m[:, None, :] + INIT_FUNCTION_VAR * torch.eye(pb.ranks[k], **opts)
        if pb.cp:
            core = rng.uniform(0.0, 1.0, size=pb.ranks[0])
        else:  # drawn with its axes in sweep order, so that the column order of X does not matter
            core = np.transpose(rng.uniform(0.0, 1.0, size=[pb.ranks[k] for k in pb.order]), np.argsort(pb.order))
        P = core.size
        self.core_mean = torch.as_tensor(np.append(core.reshape(-1), 0.0), **opts)
        self.core_cov = INIT_CORE_VAR * torch.eye(P + 1, **opts)
        self.core_second = self.core_cov + self.core_mean[:, None] * self.core_mean[None, :]
        self.core_natural = None
        n = pb.y_sums[0]
        self.tau_a, self.tau_b = NOISE_PRIOR[0] + 0.5 * n, NOISE_PRIOR[1] + 0.5 * n
        self.sites: list = [None] * K
        self.states: list = [None] * K
        self.search = [LS_SEARCH_FACTOR] * K
        self.pause = [0] * K       # epochs each mode's converged search still skips
        self.backoff = [0] * K     # length of its last pause
        self.history: list = []
        self._sse = float("nan")

    def epoch(self) -> None:
        """Visit every mode once: its messages and smoother, then the core and the noise."""
        pb = self.problem
        first = not self.history
        step = 1.0 if first else pb.damping
        n = pb.y_sums[0]
        for k in pb.order:
            # 1. messages to mode k, summed per distinct coordinate, damped; Kalman/RTS pass
            tau = self.tau_a / self.tau_b
            G, g, h = mode_sums(self.means, self.seconds, pb.index, pb.target, pb.plans[k], pb.cp)
            precision, shift = site_parameters(G, g, h, self.core_mean, self.core_second, pb.ranks, k, pb.cp, tau)
            precision = precision.detach().cpu().to(torch.float64).numpy()
            shift = shift.detach().cpu().to(torch.float64).numpy()
            if self.sites[k] is not None and step < 1.0:
                precision = (1 - step) * self.sites[k][0] + step * precision
                shift = (1 - step) * self.sites[k][1] + step * shift
            self.sites[k] = (precision, shift)
            if pb.learn_lengthscale and not first and self.pause[k] == 0:
                before = self.modes[k]
                self.states[k], self.modes[k], self.search[k] = _lengthscale_step(self.modes[k], precision, shift,
                                                                                   self.search[k])
                settled = self.modes[k] is before and self.search[k] <= LS_SEARCH_FLOOR
                self.backoff[k] = min(max(2 * self.backoff[k], 1), LS_MAX_PAUSE) if settled else 0
                self.pause[k] = self.backoff[k]
            else:
                self.pause[k] = max(self.pause[k] - 1, 0)
                self.states[k] = kalman_smoother(self.modes[k].gp, self.modes[k].coords, precision, shift)
            m_np, c_np = self.states[k].function_moments()
            self.means[k] = torch.as_tensor(m_np, dtype=pb.dtype, device=pb.device)
            self.seconds[k] = torch.as_tensor(c_np + m_np[:, :, None] * m_np[:, None, :], dtype=pb.dtype,
                                              device=pb.device)

            # 2. the core, from mode k's sums and its new moments; 3. the noise
            stats = core_statistics(G, g, h, self.means[k], self.seconds[k], pb.ranks, k, pb.cp, pb.y_sums)
            natural = core_posterior(stats, tau, pb.core_prior)
            if self.core_natural is not None and step < 1.0:
                natural = tuple((1 - step) * old + step * new for old, new in zip(self.core_natural, natural))
            self.core_natural = natural
            cov = _spd_inverse(natural[0])
            self.core_cov = 0.5 * (cov + cov.T)
            self.core_mean = self.core_cov @ natural[1]
            self.core_second = self.core_cov + self.core_mean[:, None] * self.core_mean[None, :]
            self._sse = expected_squared_error(stats, self.core_mean, self.core_second)
            self.tau_a = (1 - step) * self.tau_a + step * (NOISE_PRIOR[0] + 0.5 * n)
            self.tau_b = (1 - step) * self.tau_b + step * (NOISE_PRIOR[1] + 0.5 * self._sse)

        fitted = entry_means(self.means, pb.index, self.core_mean, pb.cp)
        self.history.append({
            "epoch": len(self.history) + 1,
            "train_rmse": float(torch.sqrt(torch.mean((fitted - pb.target) ** 2))),
            "noise_std": math.sqrt(self.tau_b / self.tau_a),
            "objective": self.elbo() / n,
            "lengthscale": [mode.gp.lengthscale for mode in self.modes],
        })

    def elbo(self) -> float:
        """The mean-field evidence lower bound of the standardised target."""
        pb = self.problem
        n = pb.y_sums[0]
        a, b = self.tau_a, self.tau_b
        e_log_tau = float(torch.special.digamma(torch.tensor(a, dtype=torch.float64))) - math.log(b)
        value = 0.5 * n * (e_log_tau - math.log(2 * math.pi)) - 0.5 * (a / b) * self._sse
        value -= gaussian_kl(self.core_mean.double().cpu(), self.core_cov.double().cpu(), pb.core_prior)
        value -= gamma_kl(a, b, *NOISE_PRIOR)
        for (precision, shift), state in zip(self.sites, self.states):
            m_np, c_np = state.function_moments()
            second = c_np + m_np[:, :, None] * m_np[:, None, :]
            expected_log_site = float(np.sum(shift * m_np) - 0.5 * np.einsum("iab,iab->", precision, second))
            value -= expected_log_site - state.log_normalizer  # KL(q(uᵏ) || prior)
        return value


def _lengthscale_step(mode: _Mode, precision: np.ndarray, shift: np.ndarray, factor: float):
    """One step of the lengthscale search: the best of ``ℓ / c``, ``ℓ``, ``ℓ c`` by ``log Z``.

    With the other factors fixed, the evidence lower bound maximised over ``q(uᵏ)`` is ``log Z(ℓ)``
    (plus terms free of ``ℓ``), the normaliser of prior times sites that the Kalman filter returns;
    the three filters run side by side. The factor ``c`` grows while the search moves and shrinks
    when it stays.
    """
    gp = mode.gp
    candidates = sorted({float(np.clip(gp.lengthscale * f, *LS_BOUNDS)) for f in (1.0 / factor, 1.0, factor)})
    gps = [gp if c == gp.lengthscale else StateSpaceGP(gp.kernel, c, gp.variance, gp.n_channels) for c in candidates]
    filtered = kalman_filter(gps, mode.coords, precision, shift)
    best = int(np.argmax([f.log_normalizer for f in filtered]))
    if gps[best] is gp:
        factor = max(math.sqrt(factor), LS_SEARCH_FLOOR)
    else:
        factor = min(factor * factor, 8.0)
        mode = mode._replace(gp=gps[best])
    return rts_smoother(gps[best], filtered[best]), mode, factor


def _check_shapes(X: Any, y: Any) -> None:
    """A ValueError naming X (and y) unless X is 2-D with one row per entry of y (scikit-learn's
    validation then checks the rest)."""
    shape = array_shape(X)
    if len(shape) != 2:
        raise ValueError(f"X must be a 2-D array of coordinates (n_entries, n_modes), one column per mode; got shape "
                         f"{shape}. Reshape your data: X.reshape(-1, 1) if it holds the coordinates of one mode")
    target_shape = array_shape(y) if y is not None else ()
    if target_shape and target_shape[0] != shape[0]:
        raise ValueError(f"X and y have inconsistent numbers of samples: X has {shape[0]} rows (entries), y has "
                         f"{target_shape[0]} values")


def _spd_inverse(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive-definite matrix (Cholesky; plain inverse if that fails)."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) == 0:
        return torch.cholesky_inverse(factor)
    return torch.linalg.inv(matrix)


def _is_positive_number(value: Any) -> bool:
    return reals(0, None, closed="neither").is_satisfied_by(value)


def _is_sequence(value: Any) -> bool:
    return not isinstance(value, str) and np.ndim(value) > 0
