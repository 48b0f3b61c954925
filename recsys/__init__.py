"""recsys: recommendation models built on ``tensorkit`` and ``graphkit``.

- :class:`DSLRecommender`: top-k recommenders (MF and LightGCN backbones, BPR loss) trained with
  Dynamic Sparse Learning at a fixed parameter budget from the first step to the last (Wang et al.,
  WSDM 2024); :mod:`recsys.sparse` is its reusable engine (:class:`recsys.sparse.DynamicSparsity`
  around any torch model and optimizer, :class:`recsys.sparse.SparseTable` storing only active weights).
- :mod:`recsys.ctr`: CTR models (DNN, DeepFM, DCN, DCN-V2) with :class:`CTRClassifier`, and their
  low-rank compression by Atomic Feature Mimicking (:func:`recsys.ctr.compress`).
- :mod:`recsys.interactions`: implicit-feedback :class:`Interactions` with id maps, readers (LightGCN
  ``train.txt``/``test.txt``, MovieLens ``u.data``, RecBole ``.inter``), splits by user and by time.
- :mod:`recsys.ctr.data`: CTR readers and writers (Criteo format, MovieLens as CTR).
- :mod:`recsys.datasets`: synthetic data with a planted truth (low-rank implicit feedback, a
  Criteo-like click log). :mod:`recsys.data` re-exports all of these under their former common name.
- :mod:`recsys.metrics`: Recall@K, NDCG@K and precision@K with batched full ranking; AUC and log loss.

Everything shares the device layer :mod:`tensorkit.backend`.

Examples
--------
>>> from recsys import DSLRecommender, make_low_rank_interactions
>>> data = make_low_rank_interactions(n_users=80, n_items=60, rank=4, interactions_per_user=10, random_state=0)
>>> train, test = data.split_by_user(test_size=0.2, random_state=0)
>>> model = DSLRecommender(n_factors=16, density=0.5, n_epochs=3, update_interval=2, random_state=0,
...                        device="cpu", verbose=0).fit(train)
>>> model.n_active_parameters_ == (80 + 60) * 16 // 2
True
>>> sorted(model.evaluate(test, k=(10,)))
['ndcg@10', 'precision@10', 'recall@10']
"""

from tensorkit import __version__
from tensorkit.utils import lazy_exports

# Names are imported on first use, so that importing one module of the toolkit does not import all of it.
_EXPORTS = {"CTRClassifier": "recsys.ctr", "DSLRecommender": "recsys.dsl", "Interactions": "recsys.interactions",
            "make_low_rank_interactions": "recsys.datasets"}
_SUBMODULES = ("cli", "ctr", "data", "datasets", "dsl", "interactions", "metrics", "sparse")

__all__: list[str] = ["CTRClassifier", "DSLRecommender", "Interactions", "__version__",
                      "make_low_rank_interactions"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
