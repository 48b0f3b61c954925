"""CTR models and their low-rank compression by output-feature mimicking.

- :mod:`recsys.ctr.schema`: the field schema (:class:`Schema`, :func:`infer_schema`) and the
  transforms learned on training data (:class:`CTRPreprocessor`).
- :mod:`recsys.ctr.models`: :class:`DNN`, :class:`DeepFM`, :class:`DCN`, :class:`DCNv2` as torch modules.
- :class:`CTRClassifier` (also importable from :mod:`recsys`): the scikit-learn classifier.
- :func:`compress`: Atomic Feature Mimicking (Yu, Fu, Ding, Zhou, Wu, "Unified Low-rank Compression
  Framework for Click-through Rate Prediction", KDD 2024, arXiv:2405.18146) and the weight-SVD baseline,
  for embedding tables and MLP layers, with folding, fine-tuning and a size/quality/latency report.
"""

from recsys.ctr.classifier import CTRClassifier, check_click_labels, predict_logits, train_ctr_model
from recsys.ctr.compress import (
    LowRankEmbedding,
    LowRankLinear,
    compress,
    count_bytes,
    count_parameters,
    measure_latency,
    output_statistics,
)
from recsys.ctr.models import DCN, DNN, MODELS, CrossNetwork, CTRModel, DCNv2, DeepFM, build_model
from recsys.ctr.schema import CategoricalField, CTRInputs, CTRPreprocessor, DenseField, Schema, infer_schema

__all__ = [
    "CTRClassifier",
    "CTRInputs",
    "CTRModel",
    "CTRPreprocessor",
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
    "build_model",
    "check_click_labels",
    "compress",
    "count_bytes",
    "count_parameters",
    "infer_schema",
    "measure_latency",
    "output_statistics",
    "predict_logits",
    "train_ctr_model",
]
