"""Synthetic data sets with a planted truth, for tests, tutorials and benchmarks.

- :func:`make_criteo_like`: a click log shaped like Criteo (power-law field cardinalities,
  Zipf-distributed category frequencies, missing values) whose labels follow a planted
  factorization machine (:class:`CriteoTruth`), so CTR models and their compression can be tested
  at scale.
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

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from recsys.interactions import Interactions
from tensorkit.base import integers, reals, validate_params

__all__ = ["CriteoTruth", "LowRankTruth", "make_criteo_like", "make_low_rank_interactions"]


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
