"""Functional Bayesian Tucker decomposition (FunBaT; Fang et al., ICLR 2024).

Shikai Fang, Xin Yu, Zheng Wang, Shibo Li, Mike Kirby, Shandian Zhe, "Functional Bayesian Tucker
Decomposition for Continuous-indexed Tensor Data", ICLR 2024 (arXiv:2311.04829).

- :class:`FunBaT`: the scikit-learn regressor (``fit(X, y)`` with one column of coordinates per
  mode, ``predict(X, return_std=True)``, ``latent_functions(mode, coords)``).
- :func:`make_functional_tucker` (from :mod:`tensorkit.datasets`, re-exported here): synthetic
  continuous-indexed tensors drawn from the model, with the true latent functions and core kept.
- :mod:`tensorkit.funbat._ssm`: Matérn GPs as state-space models (on
  :class:`pyro.ops.ssm_gp.MaternKernel`), batched Kalman filter, RTS smoother, exact conditionals
  between and beyond the smoothed coordinates.
- :mod:`tensorkit.funbat._cep`: the conditional-EP messages to each mode, the core and the noise,
  accumulated per distinct coordinate.

Examples
--------
>>> import numpy as np
>>> from tensorkit.funbat import FunBaT, make_functional_tucker
>>> data = make_functional_tucker(n_entries=800, n_modes=2, rank=2, noise=0.1, random_state=1)
>>> model = FunBaT(rank=2, random_state=0, verbose=0).fit(data.X, data.y)
>>> bool(np.sqrt(np.mean((model.predict(data.X) - data.f) ** 2)) < 0.1)
True
"""

from tensorkit.datasets import FunctionalTensor, make_functional_tucker
from tensorkit.funbat._estimator import FunBaT

__all__ = ["FunBaT", "FunctionalTensor", "make_functional_tucker"]
