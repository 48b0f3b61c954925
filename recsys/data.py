"""The recommenders' data readers and generators under their former common name.

Every name here lives in the module that does its job, and is re-exported so that code written
against ``recsys.data`` keeps working:

- :mod:`recsys.interactions`: :class:`~recsys.interactions.Interactions`,
  :func:`~recsys.interactions.as_interactions` and the implicit-feedback readers
  :func:`~recsys.interactions.read_lightgcn`, :func:`~recsys.interactions.read_lightgcn_split`,
  :func:`~recsys.interactions.read_movielens`;
- :mod:`recsys.ctr.data`: the CTR readers and writers :func:`~recsys.ctr.data.iter_criteo`,
  :func:`~recsys.ctr.data.read_criteo`, :func:`~recsys.ctr.data.write_criteo`,
  :func:`~recsys.ctr.data.load_movielens_ctr` and the column names ``CRITEO_COLUMNS``,
  ``CRITEO_DENSE``, ``CRITEO_CATEGORICAL``;
- :mod:`recsys.datasets`: the synthetic generators :func:`~recsys.datasets.make_criteo_like`,
  :func:`~recsys.datasets.make_low_rank_interactions` and their truths
  :class:`~recsys.datasets.CriteoTruth`, :class:`~recsys.datasets.LowRankTruth`.

Examples
--------
>>> from recsys.data import make_criteo_like
>>> from recsys.datasets import make_criteo_like as at_home
>>> make_criteo_like is at_home
True
"""

from recsys.ctr.data import (
    CRITEO_CATEGORICAL,
    CRITEO_COLUMNS,
    CRITEO_DENSE,
    iter_criteo,
    load_movielens_ctr,
    read_criteo,
    write_criteo,
)
from recsys.datasets import CriteoTruth, LowRankTruth, make_criteo_like, make_low_rank_interactions
from recsys.interactions import Interactions, as_interactions, read_lightgcn, read_lightgcn_split, read_movielens

__all__ = [
    "CRITEO_CATEGORICAL",
    "CRITEO_COLUMNS",
    "CRITEO_DENSE",
    "CriteoTruth",
    "Interactions",
    "LowRankTruth",
    "as_interactions",
    "iter_criteo",
    "load_movielens_ctr",
    "make_criteo_like",
    "make_low_rank_interactions",
    "read_criteo",
    "read_lightgcn",
    "read_lightgcn_split",
    "read_movielens",
    "write_criteo",
]
