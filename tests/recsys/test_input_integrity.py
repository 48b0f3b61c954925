"""Input integrity of the recommenders (issue 32): readers name the file and line of a bad row, writers
refuse what the readers would reject and never follow a planted link, sparse id spaces are remapped
and mapped back, estimators refuse absurd parameters and never return a non-finite result."""

import os
import stat

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import CTRClassifier, DSLRecommender
from recsys.ctr import DNN, CTRInputs, compress
from recsys.ctr.data import CRITEO_CATEGORICAL, CRITEO_COLUMNS, CRITEO_DENSE, read_criteo, write_criteo
from recsys.datasets import make_criteo_like
from recsys.interactions import Interactions, as_interactions, read_lightgcn, read_lightgcn_split, read_movielens
from recsys.metrics import log_loss, roc_auc, topk_items

# the message of a result that is not finite (tensorkit.validation.NonFiniteResultError, a ValueError)
NOT_FINITE = r"non-finite value.*likely cause"


def criteo_row(label="1", dense="5", category="ab"):
    return [label] + [dense] * len(CRITEO_DENSE) + [category] * len(CRITEO_CATEGORICAL)


def write_rows(path, rows):
    path.write_bytes(b"".join(row if isinstance(row, bytes) else ("\t".join(row) + "\n").encode() for row in rows))
    return path


def small_criteo_frame(n=6, seed=0):
    return make_criteo_like(n_samples=n, max_cardinality=50, random_state=seed)


# ------------------------------------------------------------------------------------------------
# read_criteo: the file and line of a bad row


@pytest.mark.parametrize("bad_row, found", [
    (criteo_row()[:38], "got 38"),                       # too few fields: was padded with NaN
    (criteo_row()[:39], "got 39"),
    (criteo_row() + ["extra"], "got 41"),                # too many: a pandas tokenizer error without the file
    ([], "got 1"),                                       # a blank line inside the data
])
def test_read_criteo_refuses_a_row_without_40_fields(tmp_path, bad_row, found):
    path = write_rows(tmp_path / "day_0.txt", [criteo_row(), bad_row, criteo_row()])
    with pytest.raises(ValueError, match=rf"day_0\.txt, line 2: a Criteo row has 40 tab-separated fields.*{found}"):
        read_criteo(path)


@pytest.mark.parametrize("column, value", [
    ("label", "abc"), ("label", "nan"), ("label", "yes"),
    ("I1", "abc"), ("I1", "inf"), ("I1", "1_0"),
])
def test_read_criteo_names_the_line_of_a_bad_label_or_dense_value(tmp_path, column, value):
    row = criteo_row()
    row[CRITEO_COLUMNS.index(column)] = value
    path = write_rows(tmp_path / "day_0.txt", [criteo_row(), criteo_row(), row])
    with pytest.raises(ValueError, match=rf"day_0\.txt, line 3: {column} must be"):
        read_criteo(path)


def test_read_criteo_names_a_line_that_is_not_utf8(tmp_path):
    path = write_rows(tmp_path / "day_0.txt", [criteo_row(), criteo_row(), b"1\t" + b"\xff" * 3 + b"\t" * 38 + b"\n"])
    with pytest.raises(ValueError, match=r"day_0\.txt, line 3: not UTF-8"):
        read_criteo(path)


@pytest.mark.parametrize("nrows", [-1, True])
def test_read_criteo_refuses_a_bad_nrows(tmp_path, nrows):
    path = write_rows(tmp_path / "day_0.txt", [criteo_row(), criteo_row()])
    with pytest.raises(ValueError, match="The 'nrows' parameter of read_criteo must be"):
        read_criteo(path, nrows=nrows)


def test_read_criteo_takes_quotes_as_ordinary_characters(tmp_path):
    quoted = criteo_row(category='"ab')
    path = write_rows(tmp_path / "day_0.txt", [criteo_row(), quoted, criteo_row()])
    frame = read_criteo(path)
    assert len(frame) == 3 and frame["C1"].tolist() == ["ab", '"ab', "ab"]


# ------------------------------------------------------------------------------------------------
# write_criteo: safe temporaries, the target's mode, frames the reader would refuse


def test_write_criteo_does_not_follow_a_link_at_the_temporary_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "out.txt.tmp").symlink_to(victim)
    frame = small_criteo_frame()
    write_criteo(frame, tmp_path / "out.txt")
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "out.txt").is_symlink()
    np.testing.assert_array_equal(read_criteo(tmp_path / "out.txt")["label"], frame["label"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "out.txt.tmp", "victim.txt"]


def test_write_criteo_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    write_criteo(small_criteo_frame(), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert read_criteo(target).shape == (6, 40)


def test_write_criteo_failing_half_way_leaves_the_target_and_no_temporary(tmp_path, monkeypatch):
    import recsys.ctr.data

    monkeypatch.setattr(recsys.ctr.data, "_WRITE_BLOCK", 2)   # the bad row: in the second block
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    frame = small_criteo_frame()
    frame["C2"] = frame["C2"].astype(object)
    frame.loc[3, "C2"] = "a\tb"
    with pytest.raises(ValueError, match=r"frame\['C2'\] row 3"):
        write_criteo(frame, target)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def _without(frame, column):
    return frame.drop(columns=column)


def _with(frame, column, row, value):
    frame = frame.copy()
    if column in CRITEO_CATEGORICAL:
        frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("change, pattern", [
    (lambda f: _without(f, "C26"), r"missing \['C26'\]"),
    (lambda f: f.assign(I14=1.0), r"unexpected \['I14'\]"),
    (lambda f: _with(f, "label", 2, 2), r"frame\['label'\].*row 2"),
    (lambda f: _with(f, "label", 1, np.nan), r"frame\['label'\].*row 1"),
    (lambda f: _with(f, "I3", 4, np.inf), r"frame\['I3'\] holds infinity at row 4"),
    (lambda f: _with(f, "C5", 0, "two\nlines"), r"frame\['C5'\] row 0"),
    (lambda f: _with(f, "C5", 1, "cr\r"), r"frame\['C5'\] row 1"),
    (lambda f: _with(f, "C6", 2, ""), r"frame\['C6'\] row 2"),
    (lambda f: f.iloc[:0], "no rows"),
])
def test_write_criteo_refuses_frames_the_reader_would_not_read_back(tmp_path, change, pattern):
    with pytest.raises(ValueError, match=pattern):
        write_criteo(change(small_criteo_frame()), tmp_path / "out.txt")
    assert not any(tmp_path.iterdir())


def test_write_criteo_writes_the_columns_in_criteo_order(tmp_path):
    frame = small_criteo_frame()
    shuffled = frame[list(reversed(frame.columns))]
    write_criteo(shuffled, tmp_path / "out.txt")
    back = read_criteo(tmp_path / "out.txt")
    np.testing.assert_array_equal(back["label"], frame["label"])
    for column in CRITEO_DENSE:
        np.testing.assert_array_equal(back[column].to_numpy(), frame[column].to_numpy())


# ------------------------------------------------------------------------------------------------
# LightGCN files: bad ids named by file and line, sparse ids remapped


def write_split(folder, train, test=b"0 1\n"):
    (folder / "train.txt").write_bytes(train)
    (folder / "test.txt").write_bytes(test)
    return folder


@pytest.mark.parametrize("line, pattern", [
    (b"1 99999999999999999999", "above the largest id 9223372036854775807"),
    (b"1 9223372036854775808", "above the largest id"),
    (b"1 5_0", "expected integer ids"),          # int() reads 50
    (b"1 +5", "expected integer ids"),
    (b"1 2\x00", "expected integer ids"),        # NumPy drops the NUL
])
def test_read_lightgcn_split_names_the_line_of_a_bad_id(tmp_path, line, pattern):
    write_split(tmp_path, b"0 1 2\n" + line + b"\n")
    with pytest.raises(ValueError, match=rf"train\.txt, line 2: .*{pattern}"):
        read_lightgcn_split(tmp_path)


def test_read_lightgcn_refuses_a_file_without_ids(tmp_path):
    write_split(tmp_path, b"0 1\n", test=b"\n \n")
    with pytest.raises(ValueError, match=r"test\.txt holds no ids"):
        read_lightgcn_split(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt holds no ids"):
        read_lightgcn(tmp_path / "empty.txt")


def test_read_lightgcn_split_remaps_sparse_ids_and_keeps_dense_ones(tmp_path):
    write_split(tmp_path, b"0 3000000000\n7 12 3000000000\n", test=b"7 5\n")   # id 3e9: 5 GB before
    train, test = read_lightgcn_split(tmp_path)
    assert train.shape == test.shape == (8, 3)              # users dense (0..7), items remapped
    np.testing.assert_array_equal(train.item_ids, [5, 12, 3_000_000_000])
    assert list(zip(train.user_ids[train.users], train.item_ids[train.items])) == [
        (0, 3_000_000_000), (7, 12), (7, 3_000_000_000)]
    assert list(zip(test.user_ids[test.users], test.item_ids[test.items])) == [(7, 5)]
    write_split(tmp_path, b"0 1 2\n2 0\n", test=b"1 2\n")  # dense ids stay the indices (LightGCN's data sets)
    train, test = read_lightgcn_split(tmp_path)
    assert train.shape == (3, 3)
    np.testing.assert_array_equal(train.user_ids, np.arange(3))
    np.testing.assert_array_equal(train.items, [1, 2, 0])


def test_read_lightgcn_remaps_sparse_users(tmp_path):
    path = tmp_path / "hashed.txt"
    path.write_bytes(b"9223372036854775807 1 2\n4000000000\n")
    data = read_lightgcn(path)
    assert data.shape == (2, 3)
    np.testing.assert_array_equal(data.user_ids, [4_000_000_000, 9_223_372_036_854_775_807])
    assert data.user_ids[data.users].tolist() == [9_223_372_036_854_775_807] * 2


# ------------------------------------------------------------------------------------------------
# MovieLens: the file and line of a bad row


@pytest.mark.parametrize("line, pattern", [
    ("1\t2\t3\t4\t5", r"line 3: expected 4 fields .*got 5"),
    ("1\t2\t3", r"line 3: expected 4 fields .*got 3"),          # was read with a NaN timestamp
    ("1", r"line 3: expected 4 fields .*got 1"),
    ("1\t2\tgood\t4", r"line 3: rating must be a finite number; got 'good'"),
    ("1\t2\t3\tlater", r"line 3: timestamp must be a finite number; got 'later'"),
    ("\t2\t3\t4", r"line 3: user_id is empty"),
])
def test_read_movielens_names_the_line_of_a_bad_row(tmp_path, line, pattern):
    path = tmp_path / "u.data"
    path.write_text(f"196\t242\t3\t881250949\n186\t302\t3\t891717742\n{line}\n")
    with pytest.raises(ValueError, match=rf"u\.data, {pattern}"):
        read_movielens(path)


def test_read_movielens_refuses_a_min_rating_that_is_not_a_number(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n")
    with pytest.raises(ValueError, match="The 'min_rating' parameter of read_movielens must be"):
        read_movielens(path, min_rating=float("nan"))


# ------------------------------------------------------------------------------------------------
# Interactions and DSLRecommender: sparse ids remapped and mapped back, complex ids refused


def test_as_interactions_remaps_sparse_ids_without_allocating_by_them():
    data = as_interactions([[0, 10**12], [1, 2]])
    assert data.shape == (2, 2)
    np.testing.assert_array_equal(data.item_ids, [2, 10**12])
    assert list(zip(data.user_ids[data.users], data.item_ids[data.items])) == [(0, 10**12), (1, 2)]
    assert data.to_csr().shape == (2, 2)


def test_interactions_refuse_a_sparse_index_space_without_a_size():
    with pytest.raises(ValueError, match="users holds the index 1000000000000 for only 2 interactions"):
        Interactions([0, 10**12], [1, 2])


def test_pairs_above_int64_are_refused_and_from_ids_keeps_them_exact():
    with pytest.raises(ValueError, match="above the largest index 9223372036854775807"):
        as_interactions(np.array([[0, 2**63]], dtype=np.uint64))
    data = Interactions.from_ids([2**70, 1, 2**70], [1, 2, 3])
    assert data.user_ids.tolist() == [1, 2**70] and data.users.tolist() == [1, 0, 1]


def test_dsl_fits_sparse_ids_and_recommends_them():
    pairs = [[0, 10**12], [1, 2], [1, 10**12], [2, 5], [2, 2]]
    model = DSLRecommender(n_factors=4, n_epochs=2, device="cpu", verbose=0, random_state=0).fit(pairs)
    assert (model.n_users_, model.n_items_) == (3, 3)
    np.testing.assert_array_equal(model.item_ids_, [2, 5, 10**12])
    top = model.recommend([0, 1], k=2)
    assert set(top[0]) == {2, 5}                             # the items user 0 has not seen
    assert top[1][0] == 5                                    # the only one user 1 has not seen
    assert model.recommend(torch.tensor([2]), k=1).tolist() == [[10**12]]
    assert set(model.evaluate([[0, 2], [2, 10**12]], k=(1,))) == {"recall@1", "ndcg@1", "precision@1"}
    with pytest.raises(ValueError, match=r"item id\(s\) are not among"):
        model.evaluate([[0, 7]])


def test_dsl_recommends_by_the_ids_it_was_fitted_on():
    data = Interactions.from_ids(["ann", "bob", "ann", "cy"], ["x", "y", "z", "x"])
    model = DSLRecommender(n_factors=4, n_epochs=2, device="cpu", verbose=0, random_state=0).fit(data)
    top = model.recommend(["bob", "cy"], k=2)
    assert set(top[0]) == {"x", "z"} and set(top[1]) == {"y", "z"}
    assert model.scores(["ann"]).shape == (1, 3)
    with pytest.raises(ValueError, match="not users of the training data"):
        model.recommend(["dan"], k=1)


def test_readers_and_estimators_refuse_complex_input():
    with pytest.raises(TypeError, match="raw_users must hold real numbers"):
        Interactions.from_ids(np.array([1j, 2]), [1, 2])
    with pytest.raises(TypeError, match="y_score must hold real numbers"):
        roc_auc([0, 1], np.array([0.1 + 1j, 0.2]))
    with pytest.raises(TypeError, match="y_prob must hold real numbers"):
        log_loss([0, 1], np.array([0.1 + 0j, 0.2]))
    with pytest.raises(TypeError, match="y_true must hold real numbers"):
        roc_auc(np.array([0, 1 + 0j]), [0.1, 0.2])
    frame = pd.DataFrame({"price": np.array([1 + 1j, 2, 3, 4]), "shop": ["a", "b", "a", "b"]})
    with pytest.raises(TypeError, match=r"X\['price'\] must hold real numbers"):
        CTRClassifier(hidden=(4,), max_epochs=1, device="cpu").fit(frame, [0, 1, 0, 1])
    with pytest.raises(TypeError, match="X must hold real numbers"):
        CTRClassifier(hidden=(4,), max_epochs=1, device="cpu").fit(np.ones((4, 2), dtype=complex), [0, 1, 0, 1])


# ------------------------------------------------------------------------------------------------
# absurd parameters and diverged training


def dsl_pairs():
    return [[0, 1], [1, 0], [2, 2], [0, 2], [1, 3], [2, 0]]


@pytest.mark.parametrize("density", [0.5, 1.0])
def test_dsl_names_the_learning_rate_when_training_diverges(density):
    model = DSLRecommender(lr=1e30, density=density, n_factors=4, n_epochs=3, device="cpu", verbose=0, random_state=0)
    with pytest.raises(ValueError, match=NOT_FINITE + r".*lower lr \(now 1e\+30\)"):
        model.fit(dsl_pairs())


@pytest.mark.parametrize("name, value", [("lr", 1e-3 + 0j), ("init_std", 0.1 + 0j), ("update_ratio", 0.5j),
                                         ("grad_decay", 1j)])
def test_dsl_names_a_complex_parameter(name, value):
    with pytest.raises(ValueError, match=f"^The '{name}' parameter of DSLRecommender must be"):
        DSLRecommender(**{name: value}, n_epochs=1, device="cpu", verbose=0).fit(dsl_pairs())


@pytest.mark.parametrize("name, value", [
    ("learning_rate", np.inf), ("weight_decay", np.inf), ("init_std", np.inf), ("init_std", -1.0),
    ("init_std", np.nan), ("learning_rate", 1e-3 + 0j),
])
def test_ctr_classifier_names_an_absurd_parameter(name, value):
    X, y = np.random.default_rng(0).random((8, 2)), np.array([0, 1] * 4)
    with pytest.raises(ValueError, match=f"^The '{name}' parameter of CTRClassifier must be"):
        CTRClassifier(hidden=(4,), max_epochs=1, device="cpu", **{name: value}).fit(X, y)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.25])
def test_ctr_classifier_names_the_cause_when_training_diverges(validation_fraction):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.random(64), "c1": rng.choice(list("xyz"), 64), "c2": rng.choice(list("uvw"), 64)})
    y = np.array([0, 1] * 32)
    model = CTRClassifier(embed_dim=4, hidden=(4,), max_epochs=2, init_std=1e25,   # FM products overflow
                          validation_fraction=validation_fraction, random_state=0, device="cpu")
    with pytest.raises(ValueError, match=NOT_FINITE + r".*learning rate \(now 0.001\).*\(init_std\)"):
        model.fit(X, y)
    diverging = CTRClassifier(hidden=(4,), max_epochs=3, learning_rate=1e30, validation_fraction=0.25,
                              random_state=0, device="cpu")
    with pytest.raises(ValueError, match=r"validation loss .*" + NOT_FINITE + r".*learning rate \(now 1e\+30\)"):
        diverging.fit(rng.random((200, 2)) * 1e3, np.array([0, 1] * 100))
    with pytest.raises(ValueError, match="learning_rate=1e\\+38 is too large for float32"):
        CTRClassifier(hidden=(4,), max_epochs=1, learning_rate=1e38, device="cpu").fit(X[["a"]], y)


def test_ctr_classifier_never_predicts_a_non_finite_value():
    rng = np.random.default_rng(0)
    X, y = rng.random((32, 2)), np.array([0, 1] * 16)
    model = CTRClassifier(hidden=(4,), max_epochs=1, random_state=0, device="cpu").fit(X, y)
    with torch.no_grad():
        next(model.model_.parameters()).fill_(float("nan"))
    for method in (model.decision_function, model.predict_proba, model.predict):
        with pytest.raises(ValueError, match="CTRClassifier's logits holds .*" + NOT_FINITE):
            method(X)


def test_ctr_classifier_warns_that_the_auc_is_undefined_on_one_class():
    X = np.random.default_rng(0).random((20, 2))
    with pytest.warns(UserWarning, match="training labels are all 1: the AUC is undefined"):
        CTRClassifier(hidden=(4,), max_epochs=1, device="cpu", random_state=0).fit(X, np.ones(20, dtype=int))


def test_compress_refuses_or_reports_a_diverged_fine_tuning():
    model = DNN(n_dense=2, cardinalities=(10, 8), embed_dim=4, hidden=(8,), random_state=0)
    rng = np.random.default_rng(0)
    inputs = CTRInputs(rng.random((64, 2), dtype=np.float32),
                       np.stack([rng.integers(0, 10, 64), rng.integers(0, 8, 64)], 1))
    labels = np.array([0, 1] * 32)
    with pytest.raises(ValueError, match="The 'finetune_learning_rate' parameter of compress must be"):
        compress(model, inputs, ranks=2, y_calibration=labels, finetune_epochs=1, finetune_learning_rate=np.inf)
    with pytest.raises(ValueError, match=NOT_FINITE):
        compress(model, inputs, ranks=2, y_calibration=labels, finetune_epochs=2, finetune_learning_rate=1e30)


def test_topk_items_refuses_complex_embeddings():
    with pytest.raises(TypeError, match="user_embeddings must hold real numbers"):
        topk_items(np.ones((2, 2), dtype=complex), np.ones((3, 2)), k=1)


def test_read_criteo_reads_true_and_false_as_text_not_numbers(tmp_path):
    path = write_rows(tmp_path / "day_0.txt", [criteo_row(dense="0.1", category="true"), criteo_row(dense="7")])
    frame = read_criteo(path)
    assert frame["C1"].tolist() == ["true", "ab"] and frame["I2"].tolist() == [0.1, 7.0]
    assert frame["label"].dtype == np.int64 and frame["I1"].dtype == np.float64
    for column, word in (("I1", "false"), ("label", "True")):
        row = criteo_row()
        row[CRITEO_COLUMNS.index(column)] = word
        write_rows(path, [criteo_row(), row])
        with pytest.raises(ValueError, match=rf"day_0\.txt, line 2: {column} must be .*got '{word}'"):
            read_criteo(path)
