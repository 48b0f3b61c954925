"""CTRClassifier on files: the streamed fit matches the in-memory fit, holds out chunks for validation,
shuffles through a bounded buffer; partial_fit trains chunk by chunk."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys import CTRClassifier
from recsys.ctr.data import read_criteo, write_criteo
from recsys.ctr.streaming import HeldOut, RowBuffer, share_rows
from recsys.datasets import make_criteo_like

SMALL = dict(model="deepfm", embed_dim=4, hidden=(8,), batch_size=64, device="cpu", verbose=0)


@pytest.fixture(scope="module")
def criteo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr") / "day_0.txt"
    write_criteo(make_criteo_like(n_samples=600, n_dense=13, n_categorical=26, max_cardinality=20,
                                  random_state=3), path)
    return path


def _weights(clf):
    return {k: v.detach().clone() for k, v in clf.model_.state_dict().items()}


def test_streamed_fit_equals_the_in_memory_fit_with_shuffling_off(criteo_file):
    params = dict(SMALL, max_epochs=2, shuffle=False, validation_fraction=0.0, random_state=5, chunksize=100)
    streamed = CTRClassifier(**params).fit(str(criteo_file))
    frame = read_criteo(criteo_file)
    in_memory = CTRClassifier(**params).fit(frame.drop(columns="label"), frame["label"])
    assert streamed.preprocessor_.cardinalities_ == in_memory.preprocessor_.cardinalities_
    for name, value in _weights(in_memory).items():
        torch.testing.assert_close(_weights(streamed)[name], value, rtol=1e-5, atol=1e-6)
    assert [h["train_loss"] for h in streamed.history_] == pytest.approx([h["train_loss"] for h in in_memory.history_],
                                                                        rel=1e-5)
    assert streamed.n_rows_seen_ == 600
    np.testing.assert_allclose(streamed.predict_proba(frame.drop(columns="label")),
                               in_memory.predict_proba(frame.drop(columns="label")), rtol=1e-5, atol=1e-6)


def test_streamed_fit_holds_out_whole_chunks_and_stops_early(criteo_file):
    clf = CTRClassifier(**SMALL, max_epochs=3, validation_fraction=0.25, chunksize=50, random_state=0).fit(
        [criteo_file])
    n_chunks = 600 // 50
    assert 600 - clf.n_rows_seen_ == 50 * (n_chunks // 4)   # every 4th chunk held out
    assert all("val_loss" in h and "val_auc" in h for h in clf.history_)
    assert 1 <= clf.best_epoch_ <= 3


def test_held_out_chunks_are_every_kth_from_a_drawn_offset():
    rule = HeldOut.draw(0.1, np.random.RandomState(0))
    assert rule.every == 10
    held = [i for i in range(100) if rule(i)]
    assert len(held) == 10 and np.all(np.diff(held) == 10)
    assert not any(HeldOut.draw(0.0, np.random.RandomState(0))(i) for i in range(10))


def test_ranks_share_the_training_and_the_held_out_chunks_evenly():
    from tensorkit.distributed import World

    rule = HeldOut(every=4, offset=1)
    held = [o for o in range(20) if rule(o)]
    assert held == [3, 7, 11, 15, 19]
    assert [rule.held_out_before(o) for o in (0, 3, 4, 8, 20)] == [0, 0, 1, 2, 5]
    worlds = [World(rank, 2) for rank in range(2)]
    train = [[o for o in range(20) if rule.owned(w)(o)] for w in worlds]
    val = [[o for o in range(20) if rule.owned(w, validation=True)(o)] for w in worlds]
    assert sorted(train[0] + train[1]) == [o for o in range(20) if o not in held]
    assert (len(train[0]), len(train[1])) == (8, 7) and not set(train[0]) & set(train[1])
    assert val == [[3, 11, 19], [7, 15]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 50), max_size=30), st.integers(1, 5), st.integers(0, 1000))
def test_rank_shares_cover_every_row_once_with_equal_counts(sizes, n_ranks, first_ordinal):
    chunk_rows = [(first_ordinal + 2 * k, n) for k, n in enumerate(sizes)]   # ordinals with gaps (held out)
    shares = share_rows(chunk_rows, n_ranks)
    assert len(shares) == n_ranks
    covered = {(o, row) for share in shares for o, start, stop in share for row in range(start, stop)}
    assert sum(stop - start for share in shares for _, start, stop in share) == len(covered)   # no row twice
    assert covered == {(o, row) for o, n in chunk_rows for row in range(n)}
    counts = [sum(stop - start for _, start, stop in share) for share in shares]
    assert max(counts) - min(counts) <= 1
    for share in shares:
        assert all(0 <= start < stop for _, start, stop in share)
        assert [o for o, _, _ in share] == sorted({o for o, _, _ in share})   # file order, one part a chunk
    partial = {(o, rank) for rank, share in enumerate(shares) for o, start, stop in share
               if (start, stop) != (0, dict(chunk_rows)[o])}
    assert all(sum(r == rank for _, r in partial) <= 2 for rank in range(n_ranks))   # a rank cuts at most two
    assert len(partial) <= 2 * (n_ranks - 1)


def test_rank_shares_deal_whole_chunks_in_turn_and_cut_only_the_last_ones():
    assert share_rows([(0, 10), (1, 10), (2, 10), (3, 10)], 2) == [[(0, 0, 10), (2, 0, 10)], [(1, 0, 10), (3, 0, 10)]]
    assert share_rows([(0, 10), (2, 10), (3, 10), (4, 10), (5, 10)], 2) == [
        [(0, 0, 10), (3, 0, 10), (5, 0, 5)], [(2, 0, 10), (4, 0, 10), (5, 5, 10)]]
    # a short chunk in the last whole round would leave rank 0 above its share: that round is cut too
    assert share_rows([(0, 10), (1, 10), (2, 10), (3, 2)], 2) == [[(0, 0, 10), (2, 0, 6)], [(1, 0, 10), (2, 6, 10), (3, 0, 2)]]
    assert share_rows([(0, 7), (1, 3)], 1) == [[(0, 0, 7), (1, 0, 3)]]
    assert share_rows([], 3) == [[], [], []]


def test_row_buffer_keeps_every_row_once_and_shuffles_within_its_capacity():
    rng = np.random.RandomState(1)
    buffer = RowBuffer(capacity=40, batch_rows=8, rng=rng)
    seen = []
    for start in range(0, 100, 25):
        rows = np.arange(start, start + 25)
        for dense, cats, labels in buffer.add(rows[:, None].astype(float), rows[:, None], rows):
            assert len(labels) == 8
            assert np.array_equal(dense[:, 0], labels) and np.array_equal(cats[:, 0], labels)
            seen.extend(labels.tolist())
        assert buffer._rows <= 40 + 25
    for *_, labels in buffer.drain():
        seen.extend(labels.tolist())
    assert sorted(seen) == list(range(100))
    assert seen != list(range(100))
    in_order = RowBuffer(capacity=0, batch_rows=8, rng=rng)
    out = []
    for start in range(0, 100, 30):
        rows = np.arange(start, min(start + 30, 100))
        out += [b[2] for b in in_order.add(np.zeros((len(rows), 1)), rows[:, None], rows)]
    out += [b[2] for b in in_order.drain()]
    assert np.concatenate(out).tolist() == list(range(100))
    assert [len(b) for b in out[:-1]] == [8] * (len(out) - 1)


def test_partial_fit_trains_chunk_by_chunk_like_one_epoch_of_fit(criteo_file):
    frame = read_criteo(criteo_file)
    X, y = frame.drop(columns="label"), frame["label"]
    params = dict(SMALL, shuffle=False, validation_fraction=0.0, random_state=2, max_epochs=1)
    once = CTRClassifier(**params).partial_fit(X, y)
    fitted = CTRClassifier(**params).fit(X, y)
    for name, value in _weights(fitted).items():
        torch.testing.assert_close(_weights(once)[name], value)
    once.partial_fit(X.iloc[:100], y.iloc[:100])
    assert [h["chunk"] for h in once.history_] == [1, 2] and once.history_[1]["rows"] == 100
    assert not torch.equal(_weights(once)["bias"], _weights(fitted)["bias"])


def test_partial_fit_after_pickling_continues_with_a_new_optimizer(criteo_file):
    import pickle
    frame = read_criteo(criteo_file)
    X, y = frame.drop(columns="label"), frame["label"]
    clf = CTRClassifier(**SMALL, random_state=0).partial_fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert not hasattr(again, "_optimizer")
    again.partial_fit(X, y)
    assert len(again.history_) == 2


def test_labels_come_from_the_files(criteo_file):
    with pytest.raises(ValueError, match="y must be None when X names files"):
        CTRClassifier(**SMALL).fit(str(criteo_file), np.zeros(600))


def test_too_few_chunks_for_validation_warns_and_trains_every_epoch(criteo_file):
    with pytest.warns(UserWarning, match="no chunk was held out"):
        clf = CTRClassifier(**SMALL, max_epochs=2, validation_fraction=0.1, chunksize=1000, random_state=1).fit(
            str(criteo_file))
    assert len(clf.history_) == 2 and clf.best_epoch_ == 2


def test_a_bad_line_names_the_file_and_line(tmp_path, criteo_file):
    lines = criteo_file.read_text().splitlines(keepends=True)
    fields = lines[200].split("\t")
    fields[0] = "7"
    lines[200] = "\t".join(fields)
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"bad.txt, line 201: label must be 0 or 1"):
        CTRClassifier(**SMALL, max_epochs=1, random_state=0, chunksize=100).fit(str(bad))


def test_avazu_files_stream_with_their_own_schema(tmp_path):
    rng = np.random.RandomState(0)
    n = 300
    site = rng.choice(["a1", "b2", "c3", "d4"], n)
    click = (np.isin(site, ["a1", "b2"]) ^ (rng.rand(n) < 0.1)).astype(int)
    frame = pd.DataFrame({"id": [str(10**19 + i) for i in range(n)], "click": click, "hour": "14102100",
                          "C1": "1005", "banner_pos": rng.choice(["0", "1"], n), "site_id": site})
    columns = ["id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
               "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
               "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21"]
    for column in columns:
        if column not in frame:
            frame[column] = "x"
    frame[columns].to_csv(tmp_path / "avazu.csv", index=False)
    clf = CTRClassifier(**SMALL, max_epochs=20, learning_rate=0.01, validation_fraction=0.0, random_state=0,
                        chunksize=128).fit(str(tmp_path / "avazu.csv"))
    assert "site_id" in clf.schema_.categorical and "id" not in clf.schema_.names and not clf.schema_.dense
    X = frame[columns].drop(columns=["id", "click"])
    assert (clf.predict(X) == click).mean() > 0.85


def test_hashed_fields_stream_without_a_vocabulary_and_match_the_in_memory_fit(criteo_file):
    from recsys.ctr import CategoricalField, Schema
    from recsys.ctr.data import CRITEO_CATEGORICAL, CRITEO_DENSE

    schema = Schema(CRITEO_DENSE, [CategoricalField(c, hash_buckets=16) for c in CRITEO_CATEGORICAL])
    params = dict(SMALL, max_epochs=1, shuffle=False, validation_fraction=0.0, random_state=1, chunksize=128,
                  schema=schema)
    streamed = CTRClassifier(**params).fit(str(criteo_file))
    assert streamed.preprocessor_.cardinalities_ == (17,) * 26 and streamed.preprocessor_.vocabularies_ == {}
    frame = read_criteo(criteo_file)
    in_memory = CTRClassifier(**params).fit(frame.drop(columns="label"), frame["label"])
    np.testing.assert_allclose(streamed.decision_function(frame.drop(columns="label")),
                               in_memory.decision_function(frame.drop(columns="label")), rtol=1e-5, atol=1e-6)
