"""CTR models and their low-rank compression by output-feature mimicking.

- :mod:`recsys.ctr.schema`: the field schema (:class:`Schema`, :func:`infer_schema`) and the
  transforms learned on training data (:class:`CTRPreprocessor`).
- :mod:`recsys.ctr.models`: :class:`DNN`, :class:`DeepFM`, :class:`DCN`, :class:`DCNv2` as torch modules.
- :class:`CTRClassifier` (also importable from :mod:`recsys`): the scikit-learn classifier.
- :func:`compress`: Atomic Feature Mimicking (Yu, Fu, Ding, Zhou, Wu, "Unified Low-rank Compression
  Framework for Click-through Rate Prediction", KDD 2024, arXiv:2405.18146) and the weight-SVD baseline,
  for embedding tables and MLP layers, with folding and fine-tuning.
- :func:`evaluate_compression` (:mod:`recsys.ctr.evaluation`): the size/quality/latency report of a
  compressed model next to the original.
- :mod:`recsys.ctr.data`: the Criteo and Avazu readers, the Criteo writer and MovieLens as CTR data;
  :mod:`recsys.ctr.sources`: files (paths, lists, globs; Criteo, Avazu, parquet, gz) as numbered chunks.
- :mod:`recsys.ctr.streaming` and :mod:`recsys.ctr.training`: ``CTRClassifier.fit`` on files streamed
  in chunks (schema pass, shuffle buffer, held-out chunks), and the training loop, data-parallel
  under an initialised ``torch.distributed`` process group.

Examples
--------
>>> from recsys.ctr import CTRClassifier, compress, evaluate_compression
>>> from recsys.datasets import make_criteo_like
>>> frame = make_criteo_like(n_samples=2000, n_dense=2, n_categorical=3, max_cardinality=30, random_state=0)
>>> X, y = frame.drop(columns="label"), frame["label"]
>>> clf = CTRClassifier(embed_dim=8, hidden=(16,), max_epochs=1, random_state=0, device="cpu").fit(X[:1500], y[:1500])
>>> small = compress(clf, X[:1500], method="afm", ratio=2)
>>> report = evaluate_compression(clf, small, X[1500:], y[1500:], latency_batches=(1,))
>>> report["ratio"] >= 2, 0.0 < report["auc_after"] < 1.0
(True, True)
"""

from recsys.ctr.classifier import CTRClassifier, check_click_labels
from recsys.ctr.compress import LowRankEmbedding, LowRankLinear, compress, output_statistics
from recsys.ctr.evaluation import count_bytes, count_parameters, evaluate_compression, measure_latency
from recsys.ctr.models import DCN, DNN, MODELS, CrossNetwork, CTRModel, DCNv2, DeepFM, build_model
from recsys.ctr.schema import CategoricalField, CTRInputs, CTRPreprocessor, DenseField, Schema, as_inputs, infer_schema
from recsys.ctr.sources import ChunkSource
from recsys.ctr.training import predict_logits, train_ctr_model

__all__ = [
    "CTRClassifier",
    "CTRInputs",
    "CTRModel",
    "CTRPreprocessor",
    "ChunkSource",
    "CategoricalField",
    "CrossNetwork",
    "DCN",
    "DCNv2",
    "DNN",
    "DeepFM",
    "DenseField",
    "LowRankEmbedding",
    "LowRankLinear",
    "MODELS",
    "Schema",
    "as_inputs",
    "build_model",
    "check_click_labels",
    "compress",
    "count_bytes",
    "count_parameters",
    "evaluate_compression",
    "infer_schema",
    "measure_latency",
    "output_statistics",
    "predict_logits",
    "train_ctr_model",
]
