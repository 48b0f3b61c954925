"""Low-rank compression of CTR models (Atomic Feature Mimicking, Yu et al. KDD 2024) against dense references."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn

from recsys import CTRClassifier
from recsys.ctr import (DCN, DNN, CTRInputs, DCNv2, DeepFM, LowRankEmbedding, LowRankLinear, compress,
                        count_bytes, count_parameters, evaluate_compression)
from recsys.datasets import make_criteo_like
from recsys.metrics import log_loss, roc_auc

CARDS = (30, 20, 12)


def inputs(n=400, seed=0, cards=CARDS, n_dense=2):
    rng = np.random.default_rng(seed)
    # skewed category frequencies, so that frequency weighting matters
    cats = np.stack([np.minimum(rng.zipf(1.5, n) - 1, c - 1) for c in cards], axis=1)
    return CTRInputs(rng.random((n, n_dense), dtype=np.float32), cats)


def model_of(cls, device="cpu", hidden=(24, 16), seed=0):
    kwargs = dict(embed_dim=6, hidden=hidden, random_state=seed)
    if issubclass(cls, DCN):
        kwargs["cross_layers"] = 2
    return cls(2, CARDS, **kwargs).to(device).double()


def outputs_of(model, name, X, device):
    """The outputs of the module ``name`` on ``X`` (hooked), as float64 NumPy."""
    seen = []
    hook = dict(model.named_modules())[name].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    dense, cats = X.to_tensors(device, torch.float64)
    with torch.no_grad():
        model(dense, cats)
    hook.remove()
    return torch.cat(seen).cpu().numpy()


def pca_projection(Y, rank):
    """``U_r U_rᵀ (y - μ) + μ`` as a function, from the population covariance of ``Y`` (NumPy)."""
    mu = Y.mean(axis=0)
    cov = (Y - mu).T @ (Y - mu) / Y.shape[0]
    _, vectors = np.linalg.eigh(cov)
    U = vectors[:, ::-1][:, :rank]
    return lambda y: (y - mu) @ U @ U.T + mu


def logits(model, X, device="cpu"):
    dense, cats = X.to_tensors(device, torch.float64)
    with torch.no_grad():
        return model(dense, cats).cpu().numpy()


# ------------------------------------------------------------------------------------------------
# exactness and the PCA reference


@pytest.mark.parametrize("cls", [DNN, DeepFM, DCN, DCNv2])
def test_full_rank_reproduces_the_model(cls, device):
    model = model_of(cls, device)
    X = inputs()
    full = {"embeddings": 6, "mlp.linear0": 24, "mlp.linear1": 16}
    targets = ("embeddings", "mlp", "cross") if cls is DCNv2 else ("embeddings", "mlp")
    if cls is DCNv2:
        full["cross"] = model.input_width
    small = compress(model, X, ranks=full, targets=targets)
    report = evaluate_compression(model, small)
    assert type(small) is cls
    np.testing.assert_allclose(logits(small, X, device), logits(model, X, device), atol=1e-10)
    assert isinstance(small.mlp.linear1, LowRankLinear)
    assert report["params_after"] > report["params_before"]       # full rank costs more, as it should


@pytest.mark.parametrize("name,rank", [("mlp.linear0", 5), ("mlp.linear1", 3)])
def test_afm_linear_layer_is_the_pca_projection_of_its_outputs(name, rank, device):
    model = model_of(DeepFM, device)
    X, other = inputs(seed=0), inputs(seed=1)
    small = compress(model, X, ranks={name: rank})
    project = pca_projection(outputs_of(model, name, X, device), rank)
    # on new data: the replacement maps the original output y to U_r U_rᵀ(y - μ) + μ, with μ, U_r from X
    replaced = dict(small.named_modules())[name]
    layer_input = []
    hook = dict(model.named_modules())[name].register_forward_hook(lambda m, i, o: layer_input.append(i[0]))
    dense, cats = other.to_tensors(device, torch.float64)
    with torch.no_grad():
        model(dense, cats)
        hook.remove()
        got = replaced(layer_input[0]).cpu().numpy()
        original = dict(model.named_modules())[name](layer_input[0]).cpu().numpy()
    np.testing.assert_allclose(got, project(original), atol=1e-9)
    assert replaced.rank == rank and replaced.first.out_features == rank


def test_afm_embedding_is_the_frequency_weighted_pca_of_looked_up_rows(device):
    model = model_of(DeepFM, device)
    X = inputs()
    small = compress(model, X, ranks={"embeddings.0": 2, "embeddings.2": 4})
    assert small.compression_["ranks"] == {"embeddings.0": 2, "embeddings.2": 4}
    for f, rank in ((0, 2), (2, 4)):
        looked_up = outputs_of(model, f"embeddings.{f}", X, device)   # one row per example: frequency weighted
        project = pca_projection(looked_up, rank)
        table = small.embeddings[f]
        assert isinstance(table, LowRankEmbedding) and tuple(table.weight.shape) == (CARDS[f], rank)
        every_row = torch.arange(CARDS[f], device=device)
        with torch.no_grad():
            restored = table(every_row).cpu().numpy()
        np.testing.assert_allclose(restored, project(model.embeddings[f].weight.detach().cpu().numpy()), atol=1e-10)
    assert isinstance(small.embeddings[1], nn.Embedding)             # not named, kept


def test_folding_into_the_first_layer_gives_identical_logits(device):
    model = model_of(DNN, device)
    X, other = inputs(seed=0), inputs(seed=3)
    ranks = {"embeddings": 3, "mlp.linear0": 10, "mlp.linear1": 8}
    folded = compress(model, X, ranks=ranks, fold=True)
    kept = compress(model, X, ranks=ranks, fold=False)
    report = evaluate_compression(model, folded)
    np.testing.assert_allclose(logits(folded, other, device), logits(kept, other, device), atol=1e-10)
    assert report["folded"]
    assert all(isinstance(t, nn.Embedding) and t.embedding_dim == 3 for t in folded.embeddings)
    assert folded.mlp.linear0.in_features == 3 * 3 + 2
    assert isinstance(kept.embeddings[0], LowRankEmbedding)
    assert count_parameters(folded) < count_parameters(kept)
    # DeepFM: the FM needs the full vectors, so nothing is folded
    deepfm = compress(model_of(DeepFM, device), X, ranks={"embeddings": 3}, fold=True)
    assert not deepfm.compression_["folded"]


def test_svd_is_the_truncated_svd_of_the_weights(device):
    model = model_of(DNN, device)
    X = inputs()
    small = compress(model, None, method="svd", ranks={"mlp.linear1": 4, "embeddings.1": 2}, fold=False)
    W = model.mlp.linear1.weight.detach().cpu().numpy()
    u, s, vt = np.linalg.svd(W)
    layer = small.mlp.linear1
    product = (layer.second.weight @ layer.first.weight).detach().cpu().numpy()
    np.testing.assert_allclose(product, (u[:, :4] * s[:4]) @ vt[:4], atol=1e-10)
    np.testing.assert_allclose(layer.second.bias.detach().cpu().numpy(), model.mlp.linear1.bias.detach().cpu().numpy())
    E = model.embeddings[1].weight.detach().cpu().numpy()
    u, s, vt = np.linalg.svd(E, full_matrices=False)
    with torch.no_grad():
        restored = small.embeddings[1](torch.arange(CARDS[1], device=device)).cpu().numpy()
    np.testing.assert_allclose(restored, (u[:, :2] * s[:2]) @ vt[:2], atol=1e-10)
    assert np.isfinite(logits(small, X, device)).all()


def test_afm_reconstructs_outputs_better_than_weight_svd():
    """AFM's rank-r output is the best rank-r affine reconstruction on the calibration data."""
    model = model_of(DNN)
    X = inputs(n=800)
    Y = outputs_of(model, "mlp.linear0", X, "cpu")
    errors = {}
    for method in ("afm", "svd"):
        small = compress(model, X, method=method, ranks={"mlp.linear0": 4})
        errors[method] = np.mean((outputs_of(small, "mlp.linear0", X, "cpu") - Y) ** 2)
    assert errors["afm"] < errors["svd"]


# ------------------------------------------------------------------------------------------------
# ratio, report, errors


@pytest.mark.parametrize("cls,fold", [(DNN, True), (DNN, False), (DeepFM, True)])
def test_ratio_reaches_the_size_and_the_report_counts_the_module(cls, fold):
    model = model_of(cls, hidden=(64, 64))
    X = inputs()
    for ratio in (2, 3):
        small = compress(model, X, ratio=ratio, fold=fold)
        report = evaluate_compression(model, small)
        assert report == small.compression_          # without held-out data: the record and the sizes
        assert report["params_before"] == count_parameters(model)
        assert report["params_after"] == count_parameters(small)
        assert report["bytes_after"] == count_bytes(small) == 8 * report["params_after"]
        assert report["params_after"] <= report["params_before"] / ratio
        assert report["ratio"] == pytest.approx(report["params_before"] / report["params_after"])
        assert report["ranks"]
    with pytest.raises(ValueError, match="cannot be reached"):
        compress(model, X, ratio=1000)


def test_bad_arguments_give_clear_errors():
    model = model_of(DeepFM)
    X = inputs()
    with pytest.raises(ValueError, match="larger than its width"):
        compress(model, X, ranks={"mlp.linear1": 17})
    with pytest.raises(ValueError, match="larger than its width"):
        compress(model, X, ranks={"embeddings": 7})
    with pytest.raises(ValueError, match="not a targeted layer"):
        compress(model, X, ranks={"mlp.linear9": 2})
    with pytest.raises(ValueError, match="exactly one"):
        compress(model, X, ranks=2, ratio=2)
    with pytest.raises(ValueError, match="method"):
        compress(model, X, method="tucker", ratio=2)
    with pytest.raises(ValueError, match="targets"):
        compress(model, X, ratio=2, targets=("attention",))
    with pytest.raises(ValueError, match="cross"):
        compress(model, X, ratio=2, targets=("cross",))
    with pytest.raises(ValueError, match="X_calibration"):
        compress(model, None, ratio=2)
    with pytest.raises(ValueError, match="0 and 1"):
        compress(model, X, ranks=2, finetune_epochs=1, y_calibration=np.full(len(X), 3))
    with pytest.raises(TypeError, match="encoded inputs"):
        compress(model, np.zeros((3, 5)), ranks=2)


# ------------------------------------------------------------------------------------------------
# the classifier: report, fine-tuning, persistence, planted low rank


@pytest.fixture(scope="module")
def fitted():
    frame = make_criteo_like(n_samples=16000, n_dense=2, n_categorical=5, max_cardinality=60,
                             cardinality_exponent=0.5, rank=2, interaction_scale=2.0, random_state=0)
    X, y = frame.drop(columns="label"), frame["label"].to_numpy()
    clf = CTRClassifier(embed_dim=8, hidden=(32, 32), max_epochs=6, batch_size=256, learning_rate=3e-3,
                        random_state=0, device="cpu").fit(X.iloc[:12000], y[:12000])
    return clf, X, y


def test_compressing_a_classifier_reports_quality_and_latency(fitted):
    clf, X, y = fitted
    train, test = slice(0, 12000), slice(12000, None)
    before = clf.predict_proba(X.iloc[test])
    small = compress(clf, X.iloc[train], ratio=3)
    report = evaluate_compression(clf, small, X.iloc[test], y[test], latency_batches=(1, 256))
    assert isinstance(small, CTRClassifier) and small.get_params() == clf.get_params()
    assert small.compression_.items() <= report.items()
    proba = small.predict_proba(X.iloc[test])[:, 1]
    assert report["auc_after"] == pytest.approx(roc_auc(y[test], proba), abs=1e-9)
    assert report["logloss_after"] == pytest.approx(log_loss(y[test], proba), rel=1e-6)
    assert report["auc_before"] == pytest.approx(roc_auc(y[test], clf.predict_proba(X.iloc[test])[:, 1]), abs=1e-9)
    assert set(report["latency_before"]) == set(report["latency_after"]) == {1, 256}
    assert all(v > 0 for v in report["latency_after"].values())
    assert report["ratio"] >= 3
    # the planted interactions have rank 2: AFM at a third of the size keeps the AUC
    assert report["auc_after"] > report["auc_before"] - 0.01
    restored = pickle.loads(pickle.dumps(small))
    np.testing.assert_array_equal(restored.predict_proba(X.iloc[test]), small.predict_proba(X.iloc[test]))
    # the original is untouched
    np.testing.assert_array_equal(clf.predict_proba(X.iloc[test]), before)


def test_evaluate_compression_refuses_half_the_held_out_data_and_mixed_kinds(fitted):
    clf, X, y = fitted
    small = compress(clf, X.iloc[:2000], ranks={"mlp": 4})
    with pytest.raises(ValueError, match="both X_eval and y_eval"):
        evaluate_compression(clf, small, X.iloc[:10])
    with pytest.raises(ValueError, match="same kind"):
        evaluate_compression(clf, small.model_)
    with pytest.raises(TypeError, match="CTRClassifier or a recsys.ctr CTRModel"):
        evaluate_compression(clf, "small")


def test_finetuning_and_the_activation_variant(fitted):
    clf, X, y = fitted
    calib = X.iloc[:4000]
    with pytest.warns(UserWarning, match="fine-tuning"):
        compress(clf, calib, ranks={"mlp": 4}, activation="relu")
    small = compress(clf, calib, ranks={"mlp": 4, "embeddings": 2}, activation="relu",
                     y_calibration=y[:4000], finetune_epochs=2, finetune_learning_rate=1e-3)
    losses = [h["train_loss"] for h in small.compression_["finetune_history"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert isinstance(small.model_.mlp.linear0.act, nn.ReLU)
    assert 0.5 < roc_auc(y[12000:], small.predict_proba(X.iloc[12000:])[:, 1])


def test_compress_on_the_device(device):
    frame = make_criteo_like(n_samples=3000, n_dense=2, n_categorical=4, max_cardinality=40, random_state=2)
    X, y = frame.drop(columns="label"), frame["label"]
    clf = CTRClassifier(model="dcnv2", embed_dim=4, hidden=(16,), cross_layers=1, max_epochs=2,
                        random_state=0, device=device).fit(X, y)
    small = compress(clf, X, ratio=2, targets=("embeddings", "mlp", "cross"))
    report = evaluate_compression(clf, small)
    assert next(small.model_.parameters()).device.type == torch.device(device).type
    assert report["params_after"] * 2 <= report["params_before"]
    assert small.predict_proba(X).shape == (3000, 2)
