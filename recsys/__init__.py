"""recsys: recommendation models built on ``tensorkit`` and ``graphkit``.

- :mod:`recsys.ctr`: CTR models (DNN, DeepFM, DCN, DCN-V2) with :class:`CTRClassifier`, and their
  low-rank compression by Atomic Feature Mimicking (:func:`recsys.ctr.compress`).
- :mod:`recsys.data`: readers and generators (Criteo format, a synthetic Criteo-like log, MovieLens as CTR).
- :mod:`recsys.metrics`: AUC and log loss.

Dynamic sparse learning (DSL) recommenders are added to this package by their own issue; it shares
the device layer :mod:`tensorkit.backend`.
"""

from recsys.ctr import CTRClassifier

__all__: list[str] = ["CTRClassifier"]
