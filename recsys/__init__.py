"""recsys: recommendation models built on ``tensorkit`` and ``graphkit``.

Dynamic sparse learning (DSL) recommenders and low-rank compression of CTR models are added to
this package by their own issues; it shares the device layer :mod:`tensorkit.backend`.
"""

__all__: list[str] = []
