"""tensorkit: tensor models on one device layer (:mod:`tensorkit.backend`).

The device, dtype and randomness layer that ``graphkit`` and ``recsys`` share lives in
:mod:`tensorkit.backend`; the tensor models (FunBaT, Kronecker-structured SBL, FLoRA) are added
to this package by their own issues.
"""

from tensorkit import backend
from tensorkit.backend import check_random_state, resolve_device, resolve_dtype

__all__ = ["backend", "check_random_state", "resolve_device", "resolve_dtype"]
