"""CTRClassifier on two gloo processes: one data-parallel step equals the single-process step on the
concatenated batch, every rank ends with the same model and schema, failures reach every rank, and a
group of one is a plain fit."""

import pytest
import torch

from recsys import CTRClassifier
from recsys.ctr.data import read_criteo, write_criteo
from recsys.datasets import make_criteo_like
from tensorkit.distributed import RankFailedError
from tests.multiprocess import run_ranks, values

SMALL = dict(model="deepfm", embed_dim=4, hidden=(8,), device="cpu", verbose=0, shuffle=False)


@pytest.fixture(scope="module")
def criteo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ctr") / "day_0.txt"
    write_criteo(make_criteo_like(n_samples=400, n_dense=13, n_categorical=26, max_cardinality=20,
                                  random_state=4), path)
    return path


def _state(clf):
    return {k: v.detach().clone() for k, v in clf.model_.state_dict().items()}


def _fit_file(rank, path, params):
    clf = CTRClassifier(**params).fit(path)
    return _state(clf), clf.preprocessor_.cardinalities_, clf.history_, clf.n_rows_seen_


def _fit_frame(rank, path, params):
    frame = read_criteo(path)
    clf = CTRClassifier(**params).fit(frame.drop(columns="label"), frame["label"])
    return _state(clf), clf.history_


def test_one_streamed_step_on_two_ranks_equals_the_step_on_the_concatenated_batch(criteo_file):
    # one global batch holds every row: rank 0 reads chunks 0 and 2, rank 1 chunks 1 and 3
    params = dict(SMALL, batch_size=400, max_epochs=1, validation_fraction=0.0, chunksize=100, random_state=7)
    ranks = values(run_ranks(_fit_file, args=(str(criteo_file), params)))
    single = CTRClassifier(**params).fit(str(criteo_file))
    for state, cardinalities, history, n_rows in ranks:
        assert cardinalities == single.preprocessor_.cardinalities_
        assert n_rows == 400
        for name, value in _state(single).items():
            torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-6)
        assert history[0]["train_loss"] == pytest.approx(single.history_[0]["train_loss"], rel=1e-5)


def test_an_odd_number_of_chunks_is_shared_by_rows_so_the_step_still_equals_the_single_process_step(criteo_file):
    # 5 chunks of 80 rows: dealt whole, rank 0 would read 240 rows and rank 1 160, and the 400-row global
    # batch would split into a step of 360 rows and one of 40; shared by rows, each rank reads 200
    params = dict(SMALL, batch_size=400, max_epochs=1, validation_fraction=0.0, chunksize=80, random_state=7)
    ranks = values(run_ranks(_fit_file, args=(str(criteo_file), params)))
    single = CTRClassifier(**params).fit(str(criteo_file))
    for state, _, history, n_rows in ranks:
        assert n_rows == 400
        for name, value in _state(single).items():
            torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-6)
        assert history[0]["train_loss"] == pytest.approx(single.history_[0]["train_loss"], rel=1e-5)


def test_one_in_memory_step_on_two_ranks_equals_the_single_process_step(criteo_file):
    params = dict(SMALL, batch_size=512, max_epochs=1, validation_fraction=0.0, random_state=3)
    ranks = values(run_ranks(_fit_frame, args=(str(criteo_file), params)))
    frame = read_criteo(criteo_file)
    single = CTRClassifier(**params).fit(frame.drop(columns="label"), frame["label"])
    for state, _ in ranks:
        for name, value in _state(single).items():
            torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-6)


def test_a_longer_streamed_fit_ends_with_the_same_model_on_every_rank(criteo_file):
    params = dict(SMALL, batch_size=32, max_epochs=3, validation_fraction=0.25, chunksize=25, random_state=None,
                  shuffle=True, shuffle_buffer=60)
    (state0, card0, hist0, n0), (state1, card1, hist1, n1) = values(run_ranks(_fit_file, args=(str(criteo_file), params)))
    assert card0 == card1 and n0 == n1 == 300
    for name in state0:
        assert torch.equal(state0[name], state1[name]), name
    assert [h["val_loss"] for h in hist0] == [h["val_loss"] for h in hist1]


def _fit_own_file(rank, paths, params):
    return _fit_file(rank, paths[rank], params)


def test_files_that_differ_across_ranks_are_refused_before_training(criteo_file, tmp_path):
    other = tmp_path / "other.txt"
    other.write_bytes(criteo_file.read_bytes())
    params = dict(SMALL, max_epochs=1, random_state=0)
    outcomes = run_ranks(_fit_own_file, args=([str(criteo_file), str(other)], params))
    for outcome in outcomes:
        assert isinstance(outcome.error, RuntimeError)
        assert "the data files and their schema differs across ranks" in str(outcome.error)


def test_a_bad_chunk_on_one_rank_stops_both_with_its_file_and_line(criteo_file, tmp_path):
    lines = criteo_file.read_text().splitlines(keepends=True)
    fields = lines[150].split("\t")   # line 151: chunk 1 of 100-row chunks, read by rank 1
    fields[3] = "not-a-number"
    lines[150] = "\t".join(fields)
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(lines))
    outcomes = run_ranks(_fit_file, args=(str(bad), dict(SMALL, max_epochs=1, chunksize=100, random_state=0)))
    assert isinstance(outcomes[1].error, ValueError)
    assert "bad.txt, line 151: I3 must be a finite number" in str(outcomes[1].error)
    assert isinstance(outcomes[0].error, RankFailedError) and outcomes[0].error.rank == 1
    assert "line 151" in str(outcomes[0].error)


def _fail_while_training(rank, path, params):
    from recsys.ctr.schema import CTRPreprocessor

    if rank == 1:
        def transform(self, X):
            raise MemoryError("out of memory encoding a chunk")
        CTRPreprocessor.transform = transform
    return _fit_file(rank, path, params)


def test_a_rank_failing_in_the_middle_of_training_stops_every_rank(criteo_file):
    outcomes = run_ranks(_fail_while_training, args=(str(criteo_file), dict(SMALL, max_epochs=2, chunksize=100,
                                                                              random_state=0)))
    assert isinstance(outcomes[1].error, MemoryError)
    assert isinstance(outcomes[0].error, RankFailedError)
    assert "rank 1 failed while training epoch 1: MemoryError: out of memory" in str(outcomes[0].error)


def test_a_group_of_one_is_a_plain_fit(criteo_file):
    params = dict(SMALL, batch_size=64, max_epochs=2, validation_fraction=0.25, chunksize=50, random_state=1,
                  shuffle=True, shuffle_buffer=120)
    (state, cardinalities, history, _), = values(run_ranks(_fit_file, world_size=1, args=(str(criteo_file), params)))
    plain = CTRClassifier(**params).fit(str(criteo_file))
    for name, value in _state(plain).items():
        assert torch.equal(state[name], value), name
    assert [h["val_loss"] for h in history] == [h["val_loss"] for h in plain.history_]
