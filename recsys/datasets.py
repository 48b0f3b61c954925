"""Synthetic data sets with a planted truth, for tests, tutorials and benchmarks.

- :func:`make_criteo_like`: a click log shaped like Criteo (power-law field cardinalities,
  Zipf-distributed category frequencies, missing values) whose labels follow a planted
  factorization machine (:class:`CriteoTruth`), so CTR models and their compression can be tested
  at scale.
- :func:`write_criteo_like`: the same kind of log written to Criteo files block by block, from one
  planted model (:class:`CriteoModel`, returned), so that a file of any length takes a block's memory.
- :func:`make_low_rank_interactions`: implicit feedback drawn from planted low-rank preferences
  (:class:`LowRankTruth`, kept in the result's ``truth`` attribute).

Examples
--------
>>> from recsys.datasets import make_criteo_like, make_low_rank_interactions
>>> make_criteo_like(n_samples=10, n_dense=1, n_categorical=2, random_state=0).shape
(10, 4)
>>> make_low_rank_interactions(n_users=5, n_items=8, interactions_per_user=2, random_state=0)
Interactions(n_users=5, n_items=8, n_interactions=10)
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from recsys.interactions import Interactions
from tensorkit.base import integers, reals, validate_params
from tensorkit.utils import replaced_atomically

__all__ = ["CriteoModel", "CriteoTruth", "LowRankTruth", "make_criteo_like", "make_low_rank_interactions",
           "write_criteo_like"]


class CriteoTruth(NamedTuple):
    """The planted model behind :func:`make_criteo_like` (with ``return_truth=True``).

    Attributes
    ----------
    logits : ndarray of shape (n_samples,)
        The true log-odds of each row (``label ~ Bernoulli(sigmoid(logits))``).
    factors : list of ndarray
        Per categorical field, the ``(cardinality, rank)`` latent vectors of its categories.
    cardinalities : tuple of int

    Examples
    --------
    >>> frame, truth = make_criteo_like(n_samples=50, n_dense=1, n_categorical=2, max_cardinality=10,
    ...                                 return_truth=True, random_state=0)
    >>> truth.logits.shape, truth.cardinalities, truth.factors[0].shape
    ((50,), (10, 3), (10, 4))
    """

    logits: np.ndarray
    factors: list
    cardinalities: tuple


@validate_params({"n_samples": [integers(1)], "n_dense": [integers(0)], "n_categorical": [integers(0)],
                  "max_cardinality": [integers(1)], "rank": [integers(1)],
                  "click_rate": [reals(0, 1, closed="neither")], "missing_rate": [reals(0, 1, closed="left")]})
def make_criteo_like(n_samples: int = 100_000, n_dense: int = 13, n_categorical: int = 26,
                     max_cardinality: int = 100_000, cardinality_exponent: float = 1.6, zipf_exponent: float = 1.1,
                     rank: int = 4, interaction_scale: float = 1.0, click_rate: float = 0.25,
                     missing_rate: float = 0.1, return_truth: bool = False, random_state: Any = None):
    """A synthetic click log shaped like Criteo, with a planted low-rank interaction structure.

    Field ``f`` (1-based) has ``max(2, round(max_cardinality * f ** -cardinality_exponent))`` categories
    (a power law: a few huge fields, many small ones), drawn with Zipf frequencies
    ``p(v) ∝ (v + 1) ** -zipf_exponent``. Each category has a first-order weight and a latent vector
    in ``R^rank``; the log-odds of a row are

        ``b + Σ_f w_f[v_f] + Σ_{f<g} <z_f[v_f], z_g[v_g]> + Σ_j β_j log(1 + I_j)``,

    a factorization machine of rank ``rank`` (the structure DeepFM models and low-rank embeddings can
    keep), with the intercept ``b`` set so that the mean click rate is ``click_rate``. Dense fields are
    log-normal counts; ``missing_rate`` of the dense and categorical values are missing (NaN).

    Parameters
    ----------
    n_samples : int, default=100_000
    n_dense, n_categorical : int, default=13, 26
    max_cardinality : int, default=100_000
    cardinality_exponent : float, default=1.6
    zipf_exponent : float, default=1.1
    rank : int, default=4
    interaction_scale : float, default=1.0
        Standard deviation of the pairwise term over rows, relative to about one logit.
    click_rate : float, default=0.25
    missing_rate : float, default=0.1
    return_truth : bool, default=False
        Also return a :class:`CriteoTruth`.
    random_state : None, int or RandomState

    Returns
    -------
    frame : DataFrame
        ``label``, ``I1``... (float64) and ``C1``... (pandas categoricals with integer categories).
    truth : CriteoTruth
        Only with ``return_truth=True``.

    Examples
    --------
    >>> from recsys.datasets import make_criteo_like
    >>> frame = make_criteo_like(n_samples=1000, n_dense=2, n_categorical=3, random_state=0)
    >>> list(frame.columns)
    ['label', 'I1', 'I2', 'C1', 'C2', 'C3']
    >>> str(frame["C1"].dtype), bool(frame["label"].isin([0, 1]).all())
    ('category', True)
    """
    if n_dense + n_categorical == 0:
        raise ValueError("n_dense + n_categorical must be at least 1")
    rng = check_random_state(random_state)
    n = int(n_samples)
    cardinalities = tuple(max(2, int(round(max_cardinality * (f + 1) ** -cardinality_exponent)))
                          for f in range(n_categorical))
    n_pairs = n_categorical * (n_categorical - 1) / 2
    # per-pair interaction variance sigma^4 * rank; the pairwise sum has std interaction_scale
    sigma2 = interaction_scale / np.sqrt(max(n_pairs, 1) * rank)
    logits = np.zeros(n)
    frame = {}
    factors, total, squares = [], np.zeros((n, rank)), np.zeros(n)
    for f, card in enumerate(cardinalities):
        weights = (np.arange(card) + 1.0) ** -zipf_exponent
        cumulative = np.cumsum(weights / weights.sum())
        codes = np.minimum(np.searchsorted(cumulative, rng.random_sample(n)), card - 1)
        first_order = rng.normal(0.0, 0.3, size=card)
        latent = rng.normal(0.0, np.sqrt(sigma2), size=(card, rank))
        factors.append(latent)
        missing = rng.random_sample(n) < missing_rate
        z = latent[codes]
        z[missing] = 0.0
        logits += np.where(missing, 0.0, first_order[codes])
        total += z
        squares += np.einsum("ij,ij->i", z, z)
        frame[f"C{f + 1}"] = pd.Categorical.from_codes(np.where(missing, -1, codes), categories=np.arange(card))
    logits += 0.5 * (np.einsum("ij,ij->i", total, total) - squares)
    dense = {}
    for j in range(n_dense):
        counts = np.floor(rng.lognormal(mean=rng.uniform(0, 3), sigma=1.0, size=n))
        logits += rng.normal(0.0, 0.3) * np.log1p(counts)
        values = counts.astype(np.float64)
        values[rng.random_sample(n) < missing_rate] = np.nan
        dense[f"I{j + 1}"] = values
    logits += _intercept_for_rate(logits, click_rate)
    labels = (rng.random_sample(n) < 1.0 / (1.0 + np.exp(-logits))).astype(np.int64)
    result = pd.DataFrame({"label": labels, **dense, **frame})
    if return_truth:
        return result, CriteoTruth(logits, factors, cardinalities)
    return result


def _intercept_for_rate(logits: np.ndarray, rate: float) -> float:
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ------------------------------------------------------------------------------------------------
# Criteo-like files of any length

_UNIT_ROWS = 4096            # rows drawn from one random stream: the file's content never depends on block_rows
_CALIBRATION_ROWS = 65_536   # rows the intercept is calibrated on (their own stream, not written)
_CRITEO_DENSE, _CRITEO_CATEGORICAL = 13, 26


class CriteoModel(NamedTuple):
    """The planted model behind :func:`write_criteo_like`: one for every row of every file it writes.

    A row's log-odds are ``intercept + Σ_f first_order[f][v_f] + Σ_{f<g} <factors[f][v_f], factors[g][v_g]>
    + Σ_j dense_weights[j] * log(1 + I_j)``, over the fields present in the row (a missing value adds
    nothing), and its label is ``Bernoulli(sigmoid(log-odds))``; :meth:`logits` computes them from the
    rows as read back, so a file's Bayes-optimal AUC can be measured.

    Attributes
    ----------
    cardinalities : tuple of int
        Categories of C1-C26 (written as their codes ``0 .. cardinality - 1``).
    first_order, factors : list of ndarray
        Per categorical field, ``(cardinality,)`` weights and ``(cardinality, rank)`` latent vectors.
    dense_means, dense_weights : ndarray of shape (13,)
        ``I_j = floor(LogNormal(dense_means[j], 1))`` and its coefficient on ``log(1 + I_j)``.
    intercept : float
        Set so that the mean click probability is ``click_rate`` (on rows drawn for it alone).
    zipf_exponent, missing_rate : float
    seed : tuple of int
        Entropy of the rows' random streams.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.ctr.data import read_criteo
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "day.txt"
    >>> model = write_criteo_like(path, 100, max_cardinality=50, random_state=0)
    >>> model.logits(read_criteo(path)).shape
    (100,)
    """

    cardinalities: tuple
    first_order: list
    factors: list
    dense_means: np.ndarray
    dense_weights: np.ndarray
    intercept: float
    zipf_exponent: float
    missing_rate: float
    seed: tuple

    def logits(self, frame: pd.DataFrame) -> np.ndarray:
        """The true log-odds of the rows of ``frame`` (as :func:`recsys.ctr.data.read_criteo` gives them)."""
        codes = np.stack([pd.to_numeric(pd.Series(frame[f"C{f + 1}"].astype(object)), errors="raise")
                          .to_numpy(np.float64, na_value=np.nan) for f in range(len(self.cardinalities))], axis=1)
        dense = np.stack([frame[f"I{j + 1}"].to_numpy(np.float64, na_value=np.nan)
                          for j in range(len(self.dense_weights))], axis=1)
        return self._logits(codes, dense)

    def _logits(self, codes: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Log-odds from ``(n, 26)`` float codes and ``(n, 13)`` dense values, NaN where missing."""
        present = ~np.isnan(codes)
        index = np.where(present, codes, 0).astype(np.int64)
        logits = np.full(codes.shape[0], float(self.intercept))
        total = np.zeros((codes.shape[0], self.factors[0].shape[1]))
        squares = np.zeros(codes.shape[0])
        for f, (weights, latent) in enumerate(zip(self.first_order, self.factors)):
            z = latent[index[:, f]] * present[:, f, None]
            logits += np.where(present[:, f], weights[index[:, f]], 0.0)
            total += z
            squares += np.einsum("ij,ij->i", z, z)
        logits += 0.5 * (np.einsum("ij,ij->i", total, total) - squares)
        logits += np.nan_to_num(np.log1p(dense), nan=0.0) @ self.dense_weights
        return logits


def _draw_planted_model(rng: np.random.RandomState, max_cardinality: int, cardinality_exponent: float,
                        zipf_exponent: float, rank: int, interaction_scale: float,
                        missing_rate: float) -> CriteoModel:
    """The planted model with its intercept at 0 (calibrated afterwards)."""
    cardinalities = tuple(max(2, int(round(max_cardinality * (f + 1) ** -cardinality_exponent)))
                          for f in range(_CRITEO_CATEGORICAL))
    n_pairs = _CRITEO_CATEGORICAL * (_CRITEO_CATEGORICAL - 1) / 2
    sigma2 = interaction_scale / np.sqrt(n_pairs * rank)   # the pairwise sum has std interaction_scale
    first_order, factors = [], []
    for card in cardinalities:
        first_order.append(rng.normal(0.0, 0.3, size=card))
        factors.append(rng.normal(0.0, np.sqrt(sigma2), size=(card, rank)))
    dense_means = rng.uniform(0, 3, size=_CRITEO_DENSE)
    dense_weights = rng.normal(0.0, 0.3, size=_CRITEO_DENSE)
    seed = tuple(int(x) for x in rng.randint(0, 2 ** 31 - 1, size=4))
    return CriteoModel(cardinalities, first_order, factors, dense_means, dense_weights, 0.0,
                       float(zipf_exponent), float(missing_rate), seed)


class _RowDrawer:
    """Rows of the planted model: row ``i`` of stream ``s`` comes from unit ``i // _UNIT_ROWS``'s generator."""

    def __init__(self, model: CriteoModel):
        self.model = model
        self.cumulative = []
        for card in model.cardinalities:
            weights = (np.arange(card) + 1.0) ** -model.zipf_exponent
            self.cumulative.append(np.cumsum(weights / weights.sum()))

    def _unit(self, stream: int, unit: int) -> tuple:
        """``(codes, dense, labels)`` of a unit's rows (codes and dense NaN where missing); always whole, so
        that a row does not depend on where a block ends."""
        n = _UNIT_ROWS
        rng = np.random.default_rng(np.random.SeedSequence(list(self.model.seed), spawn_key=(stream, unit)))
        m = self.model
        codes = np.empty((n, len(m.cardinalities)))
        for f, cumulative in enumerate(self.cumulative):
            codes[:, f] = np.minimum(np.searchsorted(cumulative, rng.random(n)), len(cumulative) - 1)
        codes[rng.random(codes.shape) < m.missing_rate] = np.nan
        dense = np.floor(np.exp(m.dense_means + rng.standard_normal((n, len(m.dense_means)))))
        dense[rng.random(dense.shape) < m.missing_rate] = np.nan
        labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-m._logits(codes, dense)))).astype(np.int64)
        return codes, dense, labels

    def rows(self, stream: int, start: int, stop: int) -> tuple:
        """``(codes, dense, labels)`` of rows ``start`` to ``stop`` of ``stream``."""
        first, last = start // _UNIT_ROWS, (stop - 1) // _UNIT_ROWS
        parts = [self._unit(stream, u) for u in range(first, last + 1)]
        skip = start - first * _UNIT_ROWS
        return tuple(np.concatenate(part)[skip:skip + stop - start] for part in zip(*parts))

    def frame(self, stream: int, start: int, stop: int) -> pd.DataFrame:
        """Rows ``start`` to ``stop`` as a Criteo frame (categories as integer codes)."""
        codes, dense, labels = self.rows(stream, start, stop)
        columns = {"label": labels}
        columns.update({f"I{j + 1}": dense[:, j] for j in range(dense.shape[1])})
        for f, card in enumerate(self.model.cardinalities):
            present = ~np.isnan(codes[:, f])
            columns[f"C{f + 1}"] = pd.Categorical.from_codes(np.where(present, codes[:, f], -1).astype(np.int64),
                                                             categories=np.arange(card))
        return pd.DataFrame(columns)


def _append_block(frame: pd.DataFrame, out: Any, folder: Path) -> None:
    """Append ``frame`` as Criteo lines to the open binary ``out`` (formatted by write_criteo)."""
    from recsys.ctr.data import write_criteo

    handle, name = tempfile.mkstemp(dir=folder, prefix=".criteo-block.", suffix=".txt")
    os.close(handle)
    try:
        write_criteo(frame, name)
        with open(name, "rb") as block:
            shutil.copyfileobj(block, out, 1 << 20)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


@validate_params({"n_samples": [integers(1), list, tuple], "block_rows": [integers(1)],
                  "max_cardinality": [integers(1)], "rank": [integers(1)],
                  "click_rate": [reals(0, 1, closed="neither")], "missing_rate": [reals(0, 1, closed="left")]})
def write_criteo_like(path: Any, n_samples: Any, *, block_rows: int = 500_000, max_cardinality: int = 100_000,
                      cardinality_exponent: float = 1.6, zipf_exponent: float = 1.1, rank: int = 4,
                      interaction_scale: float = 1.0, click_rate: float = 0.25, missing_rate: float = 0.1,
                      random_state: Any = None) -> CriteoModel:
    """Write Criteo-format files of synthetic clicks from one planted model, a block at a time.

    The log of :func:`make_criteo_like` (13 log-normal count fields, 26 categorical fields with
    power-law cardinalities and Zipf frequencies, a planted rank-``rank`` factorization machine), but
    written to raw Criteo files (:func:`recsys.ctr.data.write_criteo`'s format; gzip-compressed when a
    path ends in ``.gz``) ``block_rows`` rows at a time, so memory stays that of a block whatever
    ``n_samples``. Not the same draws as :func:`make_criteo_like` for a seed. The planted model
    (:class:`CriteoModel`, returned) is drawn once and holds for every row of every file: pass several
    paths and sizes (``[train, test]``, ``[5_000_000, 200_000]``) for a training and a test file of
    the same problem. A missing dense value adds nothing to a row's log-odds (the model depends on
    the file's content only), and the intercept is calibrated on 65,536 rows drawn for it alone.

    The rows come from random streams of 4,096 rows each (one per file and position), so a file's
    content does not depend on ``block_rows``, and for a seed the first ``m`` rows of a file of
    ``n >= m`` rows are the file of ``m`` rows.

    Parameters
    ----------
    path : str or Path, or a list of them
        The files to write (replaced only once complete).
    n_samples : int, or a list of int
        Rows of each file (one per path).
    block_rows : int, default=500_000
        Rows drawn, formatted and written at a time.
    max_cardinality, cardinality_exponent, zipf_exponent, rank, interaction_scale, click_rate, missing_rate
        As in :func:`make_criteo_like` (the numbers of fields are Criteo's: 13 dense, 26 categorical).
    random_state : None, int or RandomState

    Returns
    -------
    CriteoModel
        The planted model; ``model.logits(read_criteo(path))`` gives the rows' true log-odds.

    Raises
    ------
    ValueError
        As many sizes as paths are needed, each at least 1.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.ctr.data import read_criteo
    >>> from recsys.datasets import write_criteo_like
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model = write_criteo_like([folder / "train.txt", folder / "test.txt.gz"], [2000, 500],
    ...                           block_rows=1000, max_cardinality=1000, random_state=0)
    >>> read_criteo(folder / "train.txt").shape, read_criteo(folder / "test.txt.gz").shape
    ((2000, 40), (500, 40))
    >>> model.cardinalities[:3]
    (1000, 330, 172)
    """
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]
    sizes = list(n_samples) if isinstance(n_samples, (list, tuple)) else [n_samples]
    if len(sizes) != len(paths):
        raise ValueError(f"n_samples must give one size per path: {len(paths)} path(s), {len(sizes)} size(s)")
    for size in sizes:
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ValueError(f"n_samples must hold ints of at least 1; got {size!r}")
    rng = check_random_state(random_state)
    model = _draw_planted_model(rng, max_cardinality, cardinality_exponent, zipf_exponent, rank,
                                interaction_scale, missing_rate)
    uncalibrated = _RowDrawer(model)
    codes, dense, _ = uncalibrated.rows(0, 0, _CALIBRATION_ROWS)
    model = model._replace(intercept=_intercept_for_rate(model._logits(codes, dense), click_rate))
    drawer = _RowDrawer(model)
    for stream, (target, n) in enumerate(zip(paths, sizes), start=1):
        _write_stream(drawer, stream, target, int(n), int(block_rows))
    return model


def _write_stream(drawer: _RowDrawer, stream: int, target: Path, n: int, block_rows: int) -> None:
    opener = gzip.open if target.name.endswith(".gz") else open
    with replaced_atomically(target) as temporary, opener(temporary, "wb") as out:
        for start in range(0, n, block_rows):
            _append_block(drawer.frame(stream, start, min(n, start + block_rows)), out, temporary.parent)


class LowRankTruth(NamedTuple):
    """The planted preferences behind :func:`make_low_rank_interactions`.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, rank)
    item_factors : ndarray of shape (n_items, rank)
        The sampling logits are exactly ``user_factors @ item_factors.T`` (temperature folded in;
        the first factor also carries the item popularity): each user drew its items from
        ``softmax`` of its row without replacement. ``U, V = truth`` unpacks them.

    Examples
    --------
    >>> data = make_low_rank_interactions(n_users=6, n_items=5, rank=2, interactions_per_user=2, random_state=0)
    >>> U, V = data.truth
    >>> U.shape, V.shape, data.truth.scores([0, 1]).shape
    ((6, 2), (5, 2), (2, 5))
    """

    user_factors: np.ndarray
    item_factors: np.ndarray

    def scores(self, users: Any = None) -> np.ndarray:
        """The true logits ``U[users] @ V.T`` (all users by default)."""
        u = self.user_factors if users is None else self.user_factors[np.asarray(users)]
        return u @ self.item_factors.T


@validate_params({"n_users": [integers(1)], "n_items": [integers(1)], "rank": [integers(1)],
                  "interactions_per_user": [integers(1)], "temperature": [reals(0, closed="neither")],
                  "popularity": [reals(0)]})
def make_low_rank_interactions(n_users: int = 500, n_items: int = 400, rank: int = 8, interactions_per_user: int = 20,
                               temperature: float = 0.25, popularity: float = 0.5,
                               random_state: Any = None) -> Interactions:
    """Synthetic implicit feedback with planted low-rank preferences.

    User and item factors ``U`` (``n_users x rank``) and ``V`` (``n_items x rank``) are standard
    Gaussian, except that the users' first factor has mean ``popularity``. The affinity is
    ``A = U V^T / sqrt(rank)`` (unit variance per pair; the shifted first factor adds the item bias
    ``popularity * V[:, 0] / sqrt(rank)``, a mild popularity effect shared by all users) and each user
    draws ``interactions_per_user`` distinct items with probabilities ``softmax(A[u] / temperature)``
    without replacement (the Gumbel-top-k trick). The defaults make the structure strongly learnable: on a per-user 80/20
    split, a rank-8 truncated SVD of the train matrix reaches a held-out Recall@20 of about 0.5, about
    three times that of recommending the most popular items (about 0.17); the true logits reach about 0.85.

    Parameters
    ----------
    n_users, n_items : int, default=500, 400
    rank : int, default=8
    interactions_per_user : int, default=20
        At most ``n_items``.
    temperature : float, default=0.25
        Smaller is more concentrated (more learnable).
    popularity : float, default=0.5
        Mean of the users' first factor (0: no popularity effect).
    random_state : None, int or RandomState

    Returns
    -------
    Interactions
        Sorted by user then item, with uniform random timestamps in ``[0, 1e6)`` (carrying no signal;
        they let time splits be exercised) and the attribute ``truth``, a :class:`LowRankTruth`
        ``(U, V)`` scaled so that the sampling logits are exactly ``U @ V.T``.

    Examples
    --------
    >>> from recsys.datasets import make_low_rank_interactions
    >>> data = make_low_rank_interactions(n_users=50, n_items=40, rank=4, interactions_per_user=5, random_state=0)
    >>> data, data.truth.user_factors.shape, data.truth.item_factors.shape
    (Interactions(n_users=50, n_items=40, n_interactions=250), (50, 4), (40, 4))
    """
    if interactions_per_user > n_items:
        raise ValueError(f"interactions_per_user={interactions_per_user} is larger than n_items={n_items}")
    rng = check_random_state(random_state)
    user_factors = rng.standard_normal((n_users, rank))
    user_factors[:, 0] += popularity
    item_factors = rng.standard_normal((n_items, rank))
    scale = 1.0 / np.sqrt(np.sqrt(rank) * temperature)
    user_factors *= scale
    item_factors *= scale
    k = int(interactions_per_user)
    chosen = np.empty((n_users, k), dtype=np.int64)
    batch = max(1, 2_000_000 // n_items)
    for start in range(0, n_users, batch):
        logits = user_factors[start:start + batch] @ item_factors.T
        keys = logits + rng.gumbel(size=logits.shape)
        if k < n_items:
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(n_items), (len(keys), 1))
        chosen[start:start + batch] = np.sort(top, axis=1)
    users = np.repeat(np.arange(n_users, dtype=np.int64), k)
    result = Interactions(users, chosen.reshape(-1), n_users=n_users, n_items=n_items,
                          timestamps=rng.uniform(0.0, 1e6, size=n_users * k))
    result.truth = LowRankTruth(user_factors, item_factors)
    return result
