"""Checks of what goes into and comes out of the toolkit's estimators, shared by all three packages.

- :func:`reject_complex` raises before any cast could drop an imaginary part.
- :func:`check_finite_result` raises :class:`NonFiniteResultError` when an estimator is about to
  return (or write) NaN or infinity, naming the likely cause instead of handing the user a
  silently broken result.

Examples
--------
>>> import numpy as np
>>> check_finite_result(np.ones(3), "FastRP embedding")
>>> try:
...     check_finite_result(np.array([1.0, np.inf]), "FastRP embedding", hint="lower --beta")
... except NonFiniteResultError as error:
...     print(error)
FastRP embedding holds 1 non-finite value (NaN or infinity) of 2; likely cause: lower --beta
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["NonFiniteResultError", "array_shape", "check_finite_result", "real_dtype", "reject_complex"]


class NonFiniteResultError(ValueError):
    """A computed result holds NaN or infinity; the message names the result and a likely cause."""


def reject_complex(value: Any, name: str) -> None:
    """Raise a TypeError when ``value`` holds complex numbers, before anything casts it to real.

    NumPy and torch cast complex to real with only a ``ComplexWarning``, dropping the imaginary
    part; the toolkit never does that silently.

    Parameters
    ----------
    value : array-like, scipy.sparse matrix or torch.Tensor
    name : str
        The argument's name, used in the message.

    Raises
    ------
    TypeError
        If ``value`` has a complex dtype, or is a sequence holding Python complex numbers.

    Examples
    --------
    >>> reject_complex([1.0, 2.0], "X")
    >>> reject_complex(np.array([1 + 2j]), "X")
    Traceback (most recent call last):
    ...
    TypeError: X must hold real numbers; got complex values (dtype complex128)
    """
    dtype = _dtype_of(value)
    if dtype is not None and _is_complex_dtype(dtype):
        raise TypeError(f"{name} must hold real numbers; got complex values (dtype {_dtype_name(dtype)})")


def array_shape(data: Any) -> tuple:
    """The shape of an array, tensor or nested sequence, without converting what has a ``shape``.

    Examples
    --------
    >>> array_shape([[1, 2, 3]]), array_shape(np.zeros((2, 0)))
    ((1, 3), (2, 0))
    """
    return tuple(data.shape) if hasattr(data, "shape") else np.asarray(data).shape


def real_dtype(dtype: Any, name: str = "dtype") -> torch.dtype:
    """:func:`tensorkit.backend.resolve_dtype`, refusing complex dtypes for estimators that are
    real-valued.

    Raises
    ------
    ValueError
        If ``dtype`` is complex; the message names ``name``.

    Examples
    --------
    >>> real_dtype("float64")
    torch.float64
    >>> real_dtype("complex64")
    Traceback (most recent call last):
    ...
    ValueError: dtype must be a real floating dtype such as 'float32' or 'float64'; got 'complex64'
    """
    from tensorkit.backend import resolve_dtype

    resolved = resolve_dtype(dtype)
    if resolved.is_complex:
        raise ValueError(f"{name} must be a real floating dtype such as 'float32' or 'float64'; got {dtype!r}")
    return resolved


def check_finite_result(result: Any, what: str, hint: str | None = None) -> None:
    """Raise :class:`NonFiniteResultError` when ``result`` holds NaN or infinity.

    Parameters
    ----------
    result : ndarray, torch.Tensor or scipy.sparse matrix
    what : str
        What the result is (e.g. ``"FastRP embedding"``), used in the message.
    hint : str, optional
        The likely cause and what to change, appended to the message.

    Raises
    ------
    NonFiniteResultError
        A :class:`ValueError` naming ``what``, how many values are not finite, and ``hint``.
    """
    if sp.issparse(result):
        result = result.data
    if isinstance(result, torch.Tensor):
        if not (result.is_floating_point() or result.is_complex()):
            return
        n_bad, n_all = _count_non_finite(result.reshape(-1), torch.isfinite), result.numel()
    else:
        array = np.asarray(result)
        if array.dtype.kind not in "fc":
            return
        n_bad, n_all = _count_non_finite(array.reshape(-1), np.isfinite), array.size
    if n_bad:
        plural = "" if n_bad == 1 else "s"
        message = f"{what} holds {n_bad} non-finite value{plural} (NaN or infinity) of {n_all}"
        raise NonFiniteResultError(message + (f"; likely cause: {hint}" if hint else ""))


def _count_non_finite(flat: Any, isfinite: Any, chunk: int = 2**20) -> int:
    """Non-finite entries of a flat array or tensor, counted over chunks: the temporaries of
    ``isfinite`` on a whole embedding would be several times its size."""
    return sum(int((~isfinite(flat[start:start + chunk])).sum()) for start in range(0, len(flat), chunk))


def _dtype_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor) or isinstance(value, np.ndarray) or sp.issparse(value):
        return value.dtype
    if hasattr(value, "dtype") and not isinstance(value, (str, bytes)):
        return getattr(value, "dtype")
    if isinstance(value, complex):
        return np.dtype(complex)
    if isinstance(value, (list, tuple)):
        if any(isinstance(item, complex) for item in _flat_items(value)):
            return np.dtype(complex)
    return None


def _flat_items(value: Any, depth: int = 0):
    for item in value:
        if isinstance(item, (list, tuple)) and depth < 4:
            yield from _flat_items(item, depth + 1)
        elif isinstance(item, (np.ndarray, torch.Tensor)):
            if _is_complex_dtype(item.dtype):
                yield complex(0)
        else:
            yield item


def _is_complex_dtype(dtype: Any) -> bool:
    if isinstance(dtype, torch.dtype):
        return dtype.is_complex
    try:
        return np.dtype(dtype).kind == "c"
    except TypeError:
        return False


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")
