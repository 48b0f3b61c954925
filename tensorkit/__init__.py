"""tensorkit: tensor models on one device layer (:mod:`tensorkit.backend`).

- :mod:`tensorkit.backend`: the device, dtype and randomness layer that ``graphkit`` and
  ``recsys`` share.
- :mod:`tensorkit.kron`: Kronecker-structured linear algebra that never forms the product.
- :class:`KroneckerSBL`: sparse Bayesian learning for Kronecker-structured dictionaries
  (He and Joseph, IEEE TSP 2024), with :func:`make_kronecker_problem`, :func:`nmse_db` and
  :func:`support_recovery_rate` to plant and score recoveries.
"""

from tensorkit import backend, kron
from tensorkit.backend import check_random_state, resolve_device, resolve_dtype
from tensorkit.sbl import KroneckerSBL, kronecker_sbl, make_kronecker_problem, nmse_db, support_recovery_rate

__all__ = [
    "KroneckerSBL",
    "backend",
    "check_random_state",
    "kron",
    "kronecker_sbl",
    "make_kronecker_problem",
    "nmse_db",
    "resolve_device",
    "resolve_dtype",
    "support_recovery_rate",
]
