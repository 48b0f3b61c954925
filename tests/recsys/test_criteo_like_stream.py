"""write_criteo_like: Criteo files of any length from one planted model, written block by block."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from recsys.ctr.data import CRITEO_COLUMNS, read_criteo
from recsys.datasets import write_criteo_like

SMALL = dict(max_cardinality=200, random_state=7)


def _features(frame, encoder=None):
    """One-hot categories and log counts: a model family that contains the planted first-order terms."""
    cats = frame[[f"C{f}" for f in range(1, 27)]].fillna("missing").astype(str)
    encoder = encoder or OneHotEncoder(handle_unknown="ignore").fit(cats)
    dense = np.log1p(frame[[f"I{j}" for j in range(1, 14)]].fillna(0.0).to_numpy())
    from scipy.sparse import hstack
    return hstack([encoder.transform(cats), dense]).tocsr(), encoder


def test_file_content_does_not_depend_on_block_rows_and_is_a_prefix(tmp_path):
    n = 9_500   # crosses the 4,096-row random streams at unaligned places
    write_criteo_like(tmp_path / "big.txt", n, block_rows=1_000, **SMALL)
    write_criteo_like(tmp_path / "one.txt", n, block_rows=500_000, **SMALL)
    write_criteo_like(tmp_path / "odd.txt", n, block_rows=4_097, **SMALL)
    big = (tmp_path / "big.txt").read_bytes()
    assert big == (tmp_path / "one.txt").read_bytes() == (tmp_path / "odd.txt").read_bytes()
    write_criteo_like(tmp_path / "head.txt", 5_000, block_rows=3_000, **SMALL)
    lines = big.splitlines(keepends=True)
    assert len(lines) == n
    assert b"".join(lines[:5_000]) == (tmp_path / "head.txt").read_bytes()
    other = write_criteo_like(tmp_path / "other.txt", 5_000, max_cardinality=200, random_state=8)
    assert (tmp_path / "other.txt").read_bytes() != (tmp_path / "head.txt").read_bytes()
    assert other.cardinalities[0] == 200


def test_round_trip_through_read_criteo_plain_and_gzip(tmp_path):
    model = write_criteo_like([tmp_path / "a.txt", tmp_path / "a.txt.gz"], [3_000, 3_000], block_rows=700, **SMALL)
    plain, packed = read_criteo(tmp_path / "a.txt"), read_criteo(tmp_path / "a.txt.gz")
    assert (tmp_path / "a.txt.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert list(plain.columns) == list(CRITEO_COLUMNS) and len(plain) == len(packed) == 3_000
    assert set(plain["label"].unique()) == {0, 1}
    # categories are codes below their field's cardinality; dense values whole non-negative counts
    for f, card in enumerate(model.cardinalities):
        codes = plain[f"C{f + 1}"].dropna().astype(int)
        assert codes.between(0, card - 1).all()
    dense = plain[[f"I{j}" for j in range(1, 14)]].to_numpy()
    assert np.all(np.nan_to_num(dense) == np.floor(np.nan_to_num(dense))) and np.nanmin(dense) >= 0
    missing = plain[[f"C{f}" for f in range(1, 27)]].isna().to_numpy().mean()
    assert abs(missing - 0.1) < 0.01
    # the two files are different rows (their own streams) of the same model
    assert not plain["label"].equals(packed["label"])


def test_one_planted_model_for_every_block_and_file(tmp_path):
    """A model learned on the first block predicts a late block and the test file as well as its own rows;
    the returned planted model's log-odds are calibrated on every part and beat the learned model."""
    model = write_criteo_like([tmp_path / "train.txt", tmp_path / "test.txt"], [24_000, 6_000], block_rows=6_000,
                              click_rate=0.3, **SMALL)
    train, test = read_criteo(tmp_path / "train.txt"), read_criteo(tmp_path / "test.txt")
    first, own, late = train.iloc[:4_500], train.iloc[4_500:6_000], train.iloc[18_000:]
    X, encoder = _features(first)
    fitted = LogisticRegression(C=0.3, max_iter=500).fit(X, first["label"])
    auc = {name: roc_auc_score(part["label"], fitted.decision_function(_features(part, encoder)[0]))
           for name, part in (("own", own), ("late", late), ("test", test))}
    assert auc["own"] > 0.68, auc
    assert abs(auc["late"] - auc["own"]) < 0.03 and abs(auc["test"] - auc["own"]) < 0.03, auc
    for part in (first, late, test):
        truth = model.logits(part)
        probability = 1.0 / (1.0 + np.exp(-truth))
        assert abs(probability.mean() - part["label"].mean()) < 0.02
        assert abs(part["label"].mean() - 0.3) < 0.025
    assert roc_auc_score(test["label"], model.logits(test)) > auc["test"]


def test_sizes_must_match_paths(tmp_path):
    with pytest.raises(ValueError, match="one size per path"):
        write_criteo_like([tmp_path / "a.txt", tmp_path / "b.txt"], [10], **SMALL)
    with pytest.raises(ValueError, match="n_samples"):
        write_criteo_like([tmp_path / "a.txt"], [0], **SMALL)
    assert not list(tmp_path.iterdir())
