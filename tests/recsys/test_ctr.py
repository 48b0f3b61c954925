"""CTR schema, transforms, readers, models and the classifier."""

import pickle
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from recsys import CTRClassifier
from recsys.ctr import (DCN, DNN, CategoricalField, CTRInputs, CTRPreprocessor, DCNv2, DeepFM, DenseField, Schema,
                        build_model, infer_schema)
from recsys.ctr.data import CRITEO_COLUMNS, iter_criteo, load_movielens_ctr, read_criteo, write_criteo
from recsys.datasets import make_criteo_like
from recsys.metrics import log_loss, roc_auc

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "recsys"


# ------------------------------------------------------------------------------------------------
# metrics


def test_auc_and_logloss_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500), 2)          # many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    p = rng.random(500)
    p[:3] = [0.0, 1.0, 1e-20]                       # clipped like scikit-learn
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-10)
    assert roc_auc(torch.as_tensor(y), torch.as_tensor(scores)) == pytest.approx(roc_auc_score(y, scores))
    two_columns = np.stack([1 - p, p], axis=1)
    assert log_loss(y, two_columns) == pytest.approx(sk_log_loss(y, two_columns), rel=1e-10)


def test_metrics_refuse_bad_labels():
    with pytest.raises(ValueError, match="0 and 1"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="probabilities"):
        log_loss([0, 1], [0.5, 1.5])


# ------------------------------------------------------------------------------------------------
# schema and transforms


def test_infer_schema_reads_dtypes():
    frame = pd.DataFrame({"price": [1.0, 2.0], "count": [1, 2], "shop": ["a", "b"], "flag": [True, False],
                          "kind": pd.Categorical(["x", "y"])})
    schema = infer_schema(frame)
    assert schema.dense == ("price", "count")
    assert schema.categorical == ("shop", "flag", "kind")
    assert infer_schema(np.zeros((3, 2))).dense == ("0", "1")


def test_schema_errors():
    with pytest.raises(ValueError, match="more than once"):
        Schema(dense=["a"], categorical=["a"])
    with pytest.raises(ValueError, match="transform"):
        DenseField("a", transform="sqrt")
    with pytest.raises(ValueError, match="min_frequency"):
        CategoricalField("a", min_frequency=0)


def test_preprocessor_vocabulary_threshold_and_unseen_values():
    train = pd.DataFrame({"shop": ["a", "a", "a", "b", "b", "c", None], "x": [1.0] * 7})
    pre = CTRPreprocessor(schema={"categorical": ["shop"]}, min_frequency=2).fit(train)
    assert pre.cardinalities_ == (3,)                      # bucket 0 + {a, b}; c is rare
    codes = pre.transform(pd.DataFrame({"shop": ["a", "b", "c", None, "never"]})).categorical[:, 0]
    assert codes.tolist() == [1, 2, 0, 0, 0]                # most frequent first; rare/missing/unseen -> 0


def test_preprocessor_dense_transforms_fit_on_training_range():
    train = pd.DataFrame({"a": [0.0, 9.0, np.nan, 99.0], "b": [-2.0, 0.0, 2.0, 4.0]})
    schema = Schema(dense=[DenseField("a", "log"), DenseField("b", "minmax")])
    pre = CTRPreprocessor(schema).fit(train)
    out = pre.transform(pd.DataFrame({"a": [9.0, np.nan, 1e6], "b": [1.0, 10.0, -5.0]})).dense
    assert out[0, 0] == pytest.approx(np.log1p(9.0) / np.log1p(99.0), rel=1e-6)
    assert out[1, 0] == 0.0 and out[2, 0] == 1.0             # missing -> 0, above the range -> clipped
    assert out[:, 1].tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_hashing_is_stable_and_partial_fit_matches_fit():
    frame = make_criteo_like(n_samples=3000, n_dense=2, n_categorical=3, max_cardinality=200, random_state=1)
    X = frame.drop(columns="label")
    schema = Schema(dense=["I1", "I2"], categorical=["C1", CategoricalField("C2", hash_buckets=50), "C3"])
    whole = CTRPreprocessor(schema).fit(X)
    chunked = CTRPreprocessor(schema)
    for start in range(0, len(X), 700):
        chunked.partial_fit(X.iloc[start:start + 700])
    chunked.finalize()
    a, b = whole.transform(X), chunked.transform(X)
    np.testing.assert_array_equal(a.categorical, b.categorical)
    np.testing.assert_allclose(a.dense, b.dense)
    value = X["C2"].dropna().iloc[0]
    assert a.categorical[X["C2"].notna().to_numpy().nonzero()[0][0], 1] == 1 + zlib.crc32(str(value).encode()) % 50


def test_preprocessor_errors_name_the_field():
    pre = CTRPreprocessor(schema={"dense": ["a"], "categorical": ["nope"]})
    with pytest.raises(ValueError, match="nope"):
        pre.fit(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(ValueError, match="infinity"):
        CTRPreprocessor().fit(pd.DataFrame({"a": [1.0, np.inf]}))
    with pytest.raises(TypeError, match="must hold numbers"):
        CTRPreprocessor(schema={"dense": ["s"]}).fit(pd.DataFrame({"s": ["x"]}))


# ------------------------------------------------------------------------------------------------
# readers and the generator


def test_criteo_round_trip_in_chunks(tmp_path):
    frame = make_criteo_like(n_samples=1234, random_state=0)
    path = tmp_path / "day_0.txt"
    write_criteo(frame, path)
    chunks = list(iter_criteo(path, chunksize=500))
    assert [len(c) for c in chunks] == [500, 500, 234]
    back = read_criteo(path)
    assert list(back.columns) == list(CRITEO_COLUMNS)
    np.testing.assert_array_equal(back["label"], frame["label"])
    np.testing.assert_array_equal(back["I3"].to_numpy(), frame["I3"].to_numpy())          # NaN where missing
    original = frame["C5"].astype("object").map(lambda v: v if pd.isna(v) else str(v))
    assert back["C5"].isna().equals(original.isna())
    assert (back["C5"].dropna() == original.dropna()).all()
    assert len(read_criteo(path, nrows=10)) == 10


def test_criteo_reader_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\t3\n")
    with pytest.raises(ValueError, match="40"):
        next(iter_criteo(bad))
    row = "\t".join(["2"] + ["1"] * 13 + ["ab"] * 26)
    bad.write_text(row + "\n")
    with pytest.raises(ValueError, match="line 1.*0 or 1"):
        next(iter_criteo(bad))


def test_criteo_sample_with_header():
    path = DATA / "criteo_sample" / "criteo_sample.txt"
    if not path.exists():
        pytest.skip("criteo_sample not in ../shared/data")
    frame = read_criteo(path)
    assert frame.shape == (200, 40)
    assert set(frame["label"].unique()) <= {0, 1}
    assert frame["I1"].isna().any() and frame["C26"].isna().any()


def test_synthetic_log_has_power_law_fields_and_planted_signal():
    frame, truth = make_criteo_like(n_samples=20000, max_cardinality=10000, return_truth=True, random_state=0)
    cards = truth.cardinalities
    assert cards[0] == 10000 and all(a >= b for a, b in zip(cards, cards[1:])) and cards[-1] < 100
    assert abs(frame["label"].mean() - 0.25) < 0.02
    assert roc_auc_score(frame["label"], truth.logits) > 0.75     # the labels follow the planted model
    top = frame["C1"].value_counts()
    assert top.iloc[0] > 20 * top.iloc[100]                        # Zipf frequencies
    assert 0.07 < frame["I1"].isna().mean() < 0.13


def test_movielens_ctr_reader(tmp_path):
    (tmp_path / "tiny.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                         "1\t10\t5\t100\n2\t10\t3\t101\n1\t11\t4\t102\n")
    (tmp_path / "tiny.user").write_text("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                                        "1\t24\tM\ttech\t85711\n2\t53\tF\tother\t94043\n")
    (tmp_path / "tiny.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                        "10\tToy Story\t1995\tAnimation Comedy\n11\tHeat\t1995\tAction\n")
    frame = load_movielens_ctr(tmp_path)
    assert frame["label"].tolist() == [1, 0, 1]
    assert frame["genre"].tolist() == ["Animation", "Animation", "Action"]
    assert infer_schema(frame.drop(columns=["label", "timestamp"])).categorical == (
        "user_id", "item_id", "age", "gender", "occupation", "zip_code", "release_year", "genre")


@pytest.mark.slow
def test_movielens_100k_as_ctr():
    path = DATA / "ml-100k"
    if not (path / "ml-100k.inter").exists():
        pytest.skip("ml-100k not in ../shared/data")
    frame = load_movielens_ctr(path)
    assert len(frame) == 100_000 and frame["user_id"].nunique() == 943
    assert 0.5 < frame["label"].mean() < 0.6


# ------------------------------------------------------------------------------------------------
# models


def toy_inputs(n=64, cards=(7, 5, 9), n_dense=3, seed=0):
    rng = np.random.default_rng(seed)
    return CTRInputs(rng.random((n, n_dense), dtype=np.float32),
                     np.stack([rng.integers(0, c, n) for c in cards], axis=1))


def test_deepfm_is_first_order_plus_pairwise_dots_plus_mlp(device):
    X = toy_inputs()
    model = DeepFM(3, (7, 5, 9), embed_dim=4, hidden=(8,), random_state=0).to(device).double()
    dense, cats = X.to_tensors(device, torch.float64)
    e = [model.embeddings[f](cats[:, f]) for f in range(3)]
    pairwise = sum((e[f] * e[g]).sum(1) for f in range(3) for g in range(f + 1, 3))
    first = model.bias + model.dense_linear(dense).squeeze(1) + sum(model.first_order[f](cats[:, f]).squeeze(1) for f in range(3))
    x0 = torch.cat(e + [dense], dim=1)
    deep = model.head(torch.relu(model.mlp.linear0(x0))).squeeze(1)
    torch.testing.assert_close(model(dense, cats), first + pairwise + deep)


@pytest.mark.parametrize("cls", [DCN, DCNv2])
def test_cross_networks_follow_their_recursions(cls, device):
    X = toy_inputs()
    model = cls(3, (7, 5, 9), embed_dim=4, hidden=(8,), cross_layers=2, random_state=0).to(device).double()
    dense, cats = X.to_tensors(device, torch.float64)
    x0 = torch.cat([model.embeddings[f](cats[:, f]) for f in range(3)] + [dense], dim=1)
    x = x0
    for layer in range(2):
        if cls is DCN:
            w, b = model.cross.kernels[layer], model.cross.biases[layer]
            x = x0 * (x @ w)[:, None] + b + x            # x0 x_l^T w + b + x_l
        else:
            W, b = model.cross.layers[layer].weight, model.cross.layers[layer].bias
            x = x0 * (x @ W.T + b) + x                   # x0 ⊙ (W x_l + b) + x_l
    deep = torch.relu(model.mlp.linear0(x0))
    torch.testing.assert_close(model(dense, cats), model.head(torch.cat([x, deep], 1)).squeeze(1))


def test_models_initialise_from_random_state_and_handle_missing_kinds():
    a = build_model("dcnv2", 3, (7, 5, 9), embed_dim=4, hidden=(8,), random_state=3)
    b = build_model("dcnv2", 3, (7, 5, 9), embed_dim=4, hidden=(8,), random_state=3)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    dense_only = DNN(3, (), embed_dim=4, hidden=(8,), random_state=0)
    assert dense_only(torch.rand(5, 3), torch.zeros(5, 0, dtype=torch.long)).shape == (5,)
    cats_only = DeepFM(0, (4, 4), embed_dim=4, hidden=(), random_state=0)
    assert cats_only(torch.zeros(5, 0), torch.zeros(5, 2, dtype=torch.long)).shape == (5,)
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("wide", 1, (2,))


# ------------------------------------------------------------------------------------------------
# the classifier


@pytest.fixture(scope="module")
def planted():
    frame, truth = make_criteo_like(n_samples=20000, n_dense=3, n_categorical=6, max_cardinality=40,
                                    cardinality_exponent=0.5, interaction_scale=2.0, return_truth=True, random_state=0)
    return frame.drop(columns="label"), frame["label"].to_numpy(), truth


def test_classifier_learns_the_planted_interactions(planted, device):
    """Well above a one-hot logistic regression (no interactions), not far below the planted model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    X, y, truth = planted
    train, test = slice(0, 15000), slice(15000, None)
    clf = CTRClassifier(embed_dim=8, hidden=(32,), max_epochs=10, batch_size=256, learning_rate=3e-3,
                        random_state=0, device=device).fit(X.iloc[train], y[train])
    proba = clf.predict_proba(X.iloc[test])[:, 1]
    bayes = roc_auc_score(y[test], truth.logits[test])
    cats = [c for c in X.columns if c.startswith("C")]
    onehot = OneHotEncoder(handle_unknown="ignore").fit(X.iloc[train][cats].astype(str))
    linear = LogisticRegression(max_iter=1000).fit(onehot.transform(X.iloc[train][cats].astype(str)), y[train])
    linear_auc = roc_auc_score(y[test], linear.predict_proba(onehot.transform(X.iloc[test][cats].astype(str)))[:, 1])
    auc = roc_auc_score(y[test], proba)
    assert auc > linear_auc + 0.08 and auc > bayes - 0.08
    assert 1 <= clf.best_epoch_ <= len(clf.history_)
    losses = [h["val_loss"] for h in clf.history_]
    assert losses[clf.best_epoch_ - 1] == min(losses)          # early stopping kept the best epoch
    np.testing.assert_allclose(clf.decision_function(X.iloc[test]), np.log(proba / (1 - proba)), rtol=1e-4, atol=1e-4)
    assert set(np.unique(clf.predict(X.iloc[test]))) <= {0, 1}


def test_classifier_round_trips_and_gives_torch_for_torch(planted):
    X, y, _ = planted
    clf = CTRClassifier(model="dcnv2", embed_dim=4, hidden=(8,), cross_layers=1, max_epochs=1,
                        random_state=0, device="cpu").fit(X.iloc[:2000], y[:2000])
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X.iloc[:300]), clf.predict_proba(X.iloc[:300]))
    assert clone(clf).get_params() == clf.get_params()
    numeric = np.nan_to_num(X[["I1", "I2", "I3"]].to_numpy())
    on_arrays = CTRClassifier(embed_dim=4, hidden=(8,), max_epochs=1, random_state=0, device="cpu").fit(numeric, y)
    out = on_arrays.predict_proba(torch.as_tensor(numeric[:5]))
    assert isinstance(out, torch.Tensor) and out.shape == (5, 2)


def test_classifier_is_deterministic_for_a_seed(planted):
    X, y, _ = planted
    kwargs = dict(embed_dim=4, hidden=(8,), max_epochs=2, random_state=7, device="cpu")
    a = CTRClassifier(**kwargs).fit(X.iloc[:2000], y[:2000]).decision_function(X.iloc[:100])
    b = CTRClassifier(**kwargs).fit(X.iloc[:2000], y[:2000]).decision_function(X.iloc[:100])
    np.testing.assert_array_equal(a, b)


def test_classifier_refuses_bad_labels_and_fields(planted):
    X, y, _ = planted
    small = CTRClassifier(embed_dim=4, hidden=(8,), max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match="0 and 1"):
        small.fit(X.iloc[:100], np.where(y[:100] == 1, 2, 1))
    with pytest.raises(ValueError, match="Only binary"):
        small.fit(X.iloc[:100], np.arange(100) % 3)
    with pytest.raises(ValueError, match="unknown field.*nope"):
        CTRClassifier(schema={"categorical": ["nope"]}, max_epochs=1, device="cpu").fit(X.iloc[:100], y[:100])
    with pytest.raises(ValueError, match="rows"):
        small.fit(X.iloc[:100], y[:99])
    with pytest.raises(ValueError, match="'model' parameter of CTRClassifier must be a str among"):
        CTRClassifier(model="xdeepfm").fit(X.iloc[:100], y[:100])
