"""Declared checks of sequence arguments, whose entries the constraint language cannot reach.

:func:`check_each` holds every entry of a sequence to one constraint of :mod:`tensorkit.base`;
:func:`check_cutoffs` reads a ranking cut-off argument (one int or a non-empty sequence of ints).
Both raise :class:`tensorkit.base.InvalidParameterError` worded like the declared checks.

Examples
--------
>>> from recsys._checks import check_cutoffs, check_each
>>> from tensorkit.base import integers
>>> check_each(integers(1), (8, 4), "hidden", "DNN"), check_cutoffs(10, "ks", "ranking_scores")
((8, 4), (10,))
>>> check_cutoffs((5, 0), "ks", "ranking_scores")
Traceback (most recent call last):
...
sklearn.utils._param_validation.InvalidParameterError: The 'ks' parameter of ranking_scores must be a sequence whose every entry is an int in the range [1, inf). Got (5, 0) instead.
"""

from __future__ import annotations

from typing import Any

from tensorkit.base import InvalidParameterError, integers

__all__ = ["check_cutoffs", "check_each"]


def check_each(constraint: Any, values: Any, name: str, caller: str) -> tuple:
    """``values`` as a tuple, or an error naming ``name`` and ``caller`` if an entry breaks ``constraint``."""
    entries = tuple(values)
    if not all(constraint.is_satisfied_by(value) for value in entries):
        raise InvalidParameterError(f"The {name!r} parameter of {caller} must be a sequence whose every entry "
                                    f"is {constraint}. Got {values!r} instead.")
    return entries


def check_cutoffs(k: Any, name: str, caller: str) -> tuple:
    """The cut-offs ``k`` (an int >= 1 or a non-empty sequence of them) as a tuple of ints."""
    if integers(1).is_satisfied_by(k):
        return (int(k),)
    try:
        entries = tuple(k)
    except TypeError:
        entries = ()
    if not entries:
        raise InvalidParameterError(f"The {name!r} parameter of {caller} must be an int in the range [1, inf) "
                                    f"or a non-empty sequence of them. Got {k!r} instead.")
    return tuple(int(v) for v in check_each(integers(1), entries, name, caller))
