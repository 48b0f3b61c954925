"""The estimator core that every estimator of the three packages shares.

:class:`TorchEstimator` is a scikit-learn ``BaseEstimator`` that adds what a torch estimator
repeats otherwise:

- parameters declared once per class in ``_parameter_constraints`` (scikit-learn's own
  constraint language: :func:`integers`, :func:`reals`, :class:`StrOptions`, types, ``None``),
  checked at the start of every ``fit`` with an error that names the parameter, plus a
  :meth:`~TorchEstimator._check_param_combinations` hook for rules that tie parameters together;
- one set-up, :meth:`~TorchEstimator._fit_setup`, that returns the resolved device, dtype and the
  one random source of the fit (:class:`tensorkit.backend.RandomSource`), from which every
  sub-generator is spawned in a fixed order (:meth:`~tensorkit.backend.RandomSource.spawn_seed`);
  there are no other seeds;
- one progress bar, :meth:`~TorchEstimator._progress`, that ``verbose=0`` turns off;
- one rule for where fitted state lives: fitted tensors and modules stay on the device the fit
  ran on, and a pickle always holds CPU copies, so a model fitted on a GPU loads on a machine
  without one (predictions move the state back to the estimator's device when they need to).

Examples
--------
>>> from numbers import Integral
>>> from tensorkit.base import TorchEstimator, integers
>>> class Mean(TorchEstimator):
...     _parameter_constraints = {**TorchEstimator._parameter_constraints, "n_draws": [integers(1)]}
...     def __init__(self, n_draws=3, *, random_state=None, device="auto", dtype="float64", verbose=0):
...         self.n_draws, self.random_state, self.device, self.dtype, self.verbose = (
...             n_draws, random_state, device, dtype, verbose)
...     def fit(self, X, y=None):
...         setup = self._fit_setup()
...         self.draws_ = torch.rand(self.n_draws, generator=setup.random.spawn_generator(), dtype=setup.dtype)
...         return self
>>> Mean(n_draws=0).fit(None)
Traceback (most recent call last):
...
sklearn.utils._param_validation.InvalidParameterError: The 'n_draws' parameter of Mean must be an int in the range [1, inf). Got 0 instead.
>>> bool(torch.equal(Mean(random_state=0).fit(None).draws_, Mean(random_state=0).fit(None).draws_))
True
"""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import Any, Callable, Iterable, NamedTuple, Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils._param_validation import validate_params as _sklearn_validate_params

from tensorkit import backend
from tensorkit.utils import progress

__all__ = [
    "FitSetup",
    "HasMethods",
    "Hidden",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "TorchEstimator",
    "check_parameters",
    "integers",
    "reals",
    "to_cpu",
    "validate_params",
]


class _Numbers(Interval):
    """An interval that, unlike scikit-learn's, does not count ``True`` as 1."""

    def is_satisfied_by(self, val: Any) -> bool:
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def integers(low: Optional[int] = None, high: Optional[int] = None, closed: str = "both") -> Interval:
    """The constraint "an int in ``[low, high]``" (bools excluded); None leaves a side open.

    Examples
    --------
    >>> integers(1).is_satisfied_by(3), integers(1).is_satisfied_by(True), integers(1).is_satisfied_by(0)
    (True, False, False)
    """
    return _Numbers(Integral, low, high, closed=_open_where_unbounded(low, high, closed))


def reals(low: Optional[float] = None, high: Optional[float] = None, closed: str = "both") -> Interval:
    """The constraint "a real number in ``[low, high]``"; bools, NaN and (for an open side) infinities excluded.

    Parameters
    ----------
    low, high : float or None
        The bounds; None leaves that side open (and excludes the infinity on it).
    closed : {"both", "left", "right", "neither"}, default="both"
        Which of the given bounds belong to the interval.

    Examples
    --------
    >>> reals(0, 1, closed="right").is_satisfied_by(0.0), reals().is_satisfied_by(float("inf"))
    (False, False)
    >>> reals(0, 1).is_satisfied_by(True)
    False
    """
    return _Numbers(Real, low, high, closed=_open_where_unbounded(low, high, closed))


def _open_where_unbounded(low: Any, high: Any, closed: str) -> str:
    """``closed`` without the sides that have no bound (scikit-learn wants those open)."""
    if low is None:
        closed = {"both": "right", "left": "neither"}.get(closed, closed)
    if high is None:
        closed = {"both": "left", "right": "neither"}.get(closed, closed)
    return closed


def validate_params(parameter_constraints: dict) -> Callable:
    """Decorator: a public function checks its arguments against declared constraints first.

    The constraints are written as in ``_parameter_constraints`` (arguments left out are not
    checked); a bad argument raises :class:`InvalidParameterError` (a ``ValueError`` and a
    ``TypeError``) naming the argument and the function.

    Examples
    --------
    >>> @validate_params({"n_rows": [integers(1)]})
    ... def ones(n_rows):
    ...     return [1] * n_rows
    >>> ones(n_rows=0)
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'n_rows' parameter of ones must be an int in the range [1, inf). Got 0 instead.
    """
    return _sklearn_validate_params(parameter_constraints, prefer_skip_nested_validation=False)


def check_parameters(parameter_constraints: dict, values: dict, caller: str) -> None:
    """Check ``values`` (name to value) against declared constraints, for classes that are not
    estimators (a torch module's or an engine's constructor arguments).

    Raises
    ------
    InvalidParameterError
        Naming the first parameter that breaks its constraint, and ``caller``.

    Examples
    --------
    >>> check_parameters({"density": [reals(0, 1, closed="right")]}, {"density": 1.5}, "SparseTable")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'density' parameter of SparseTable must be a float in the range (0.0, 1.0]. Got 1.5 instead.
    """
    validate_parameter_constraints(parameter_constraints, values, caller_name=caller)


class FitSetup(NamedTuple):
    """What :meth:`TorchEstimator._fit_setup` resolves once per fit.

    Attributes
    ----------
    device : torch.device
    dtype : torch.dtype
    random : tensorkit.backend.RandomSource
        The one random source of the fit; sub-generators come from its ``spawn_*`` methods.
    """

    device: torch.device
    dtype: torch.dtype
    random: backend.RandomSource


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor and module in it (inside dicts, lists and tuples too) on the CPU.

    Modules are deep-copied before they move, so the original stays where it was; CPU tensors and
    everything else are returned as they are.
    """
    if isinstance(value, torch.nn.Module):
        if any(t.device.type != "cpu" for t in _module_tensors(value)):
            return copy.deepcopy(value).to("cpu")
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu() if value.device.type != "cpu" else value
    if isinstance(value, dict):
        return type(value)((key, to_cpu(item)) for key, item in value.items()) if type(value) is dict else value
    if isinstance(value, list) and type(value) is list:
        return [to_cpu(item) for item in value]
    if type(value) is tuple:
        return tuple(to_cpu(item) for item in value)
    return value


def _module_tensors(module: torch.nn.Module) -> Iterable[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


class TorchEstimator(BaseEstimator):
    """Base class of the toolkit's estimators (scikit-learn contract plus the torch set-up).

    Subclasses declare ``_parameter_constraints`` (starting from this class's, which covers
    ``random_state``, ``device``, ``dtype`` and ``verbose``), take their parameters keyword-only
    after at most one leading parameter, call :meth:`_fit_setup` first thing in ``fit``, draw all
    randomness from the source it returns, and show long loops with :meth:`_progress`.
    """

    _parameter_constraints: dict = {
        "random_state": ["random_state", np.random.Generator],
        "device": [str, torch.device, None],
        "dtype": [str, torch.dtype, type, None],
        "verbose": ["verbose"],
    }

    def _check_param_combinations(self) -> None:
        """Rules that tie parameters together (a ``ValueError`` naming them); none by default."""

    def _check_params(self) -> None:
        """Check every declared constraint, then the combinations; an error names the parameter."""
        self._validate_params()
        self._check_param_combinations()

    def _fit_setup(self, default_dtype: torch.dtype = backend.DEFAULT_DTYPE) -> FitSetup:
        """Check the parameters; resolve the device, the dtype and the fit's random source."""
        self._check_params()
        device = backend.resolve_device(getattr(self, "device", "auto"))
        dtype = backend.resolve_dtype(getattr(self, "dtype", None), default=default_dtype)
        return FitSetup(device, dtype, backend.check_random_state(getattr(self, "random_state", None)))

    def _progress(self, iterable: Optional[Iterable] = None, *, total: Optional[int] = None,
                  desc: Optional[str] = None, **kwargs: Any):
        """A progress bar over ``iterable`` that ``verbose=0`` turns off (see :func:`tensorkit.utils.progress`)."""
        return progress(iterable, verbose=getattr(self, "verbose", 0), total=total,
                        desc=desc or type(self).__name__, **kwargs)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {key: to_cpu(value) for key, value in state.items()}
