"""The ``recsys`` command: train-ctr, train-dsl and compress, run in-process through ``main``."""

import contextlib
import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsys import CTRClassifier, DSLRecommender, make_low_rank_interactions
from recsys.cli import main
from recsys.ctr import compress
from recsys.ctr.data import read_criteo, write_criteo
from recsys.datasets import make_criteo_like
from recsys.interactions import read_lightgcn, read_movielens
from tests.multiprocess import run_ranks, values

DSL_OPTIONS = ["--density", "0.5", "--factors", "8", "--epochs", "3", "--batch-size", "256", "--seed", "1",
               "--device", "cpu"]


def write_lightgcn(data, path):
    """``data`` in the LightGCN format: one line ``user item item ...`` per user."""
    csr = data.to_csr().tocsr()
    lines = [" ".join(map(str, [u, *csr.indices[csr.indptr[u]:csr.indptr[u + 1]]])) for u in range(data.n_users)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def interaction_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interactions")
    data = make_low_rank_interactions(n_users=60, n_items=50, rank=4, interactions_per_user=10, random_state=0)
    train, test = data.split_by_user(test_size=0.2, random_state=0)
    return write_lightgcn(train, folder / "train.txt"), write_lightgcn(test, folder / "test.txt")


@pytest.fixture(scope="module")
def criteo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("criteo") / "day_0.txt"
    write_criteo(make_criteo_like(n_samples=800, max_cardinality=40, random_state=0), path)
    return path


@pytest.fixture(scope="module")
def ctr_pickle(criteo_file, tmp_path_factory):
    """A small DeepFM fitted in-process on the Criteo file, pickled as 'recsys train-ctr' would."""
    frame = read_criteo(criteo_file)
    classifier = CTRClassifier(embed_dim=8, hidden=(16, 16), max_epochs=1, random_state=0, device="cpu",
                               verbose=0).fit(frame.drop(columns="label"), frame["label"])
    path = tmp_path_factory.mktemp("model") / "deepfm.pkl"
    path.write_bytes(pickle.dumps(classifier))
    return path


def load(path):
    return pickle.loads(Path(path).read_bytes())


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recsys: error:"), err
    return err[0]


# -- train-dsl --------------------------------------------------------------------------------------

def test_train_dsl_is_the_estimator_and_prints_its_test_scores(interaction_files, tmp_path, capsys):
    train_file, test_file = interaction_files
    out = tmp_path / "dsl.pkl"
    assert main(["train-dsl", str(train_file), *DSL_OPTIONS, "--test", str(test_file), "--out", str(out), "-q"]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.strip().splitlines())
    assert set(printed) == {"recall@20", "ndcg@20"}

    expected = DSLRecommender("mf", n_factors=8, density=0.5, n_epochs=3, batch_size=256, random_state=1,
                              device="cpu", verbose=0).fit(read_lightgcn(train_file))
    scores = expected.evaluate(read_lightgcn(test_file), k=(20,))
    assert float(printed["recall@20"]) == pytest.approx(scores["recall@20"], abs=1e-6)
    assert float(printed["ndcg@20"]) == pytest.approx(scores["ndcg@20"], abs=1e-6)
    model = load(out)
    assert isinstance(model, DSLRecommender) and model.n_active_parameters_ == expected.n_active_parameters_
    np.testing.assert_array_equal(model.recommend(k=5), expected.recommend(k=5))


def test_train_dsl_reads_movielens_u_data_by_its_ids(tmp_path, capsys):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 400) + 1000, rng.integers(0, 25, 400) * 7 + 1
    source = tmp_path / "u.data"
    source.write_text("".join(f"{u}\t{i}\t{rng.integers(1, 6)}\t{881250949 + k}\n"
                              for k, (u, i) in enumerate(zip(users, items))))
    out = tmp_path / "ml.pkl"
    assert main(["train-dsl", str(source), *DSL_OPTIONS, "--out", str(out)]) == 0
    assert "trained DSL-mf" in capsys.readouterr().err
    model = load(out)
    np.testing.assert_array_equal(model.user_ids_, read_movielens(source).user_ids)
    np.testing.assert_array_equal(model.item_ids_, np.unique(items))
    assert set(model.recommend(users=[1000], k=3).ravel()) <= set(items.tolist())


def test_a_failed_train_dsl_exits_1_naming_the_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "train.txt"
    bad.write_text("0 1 2\n1 -3\n")
    out = tmp_path / "dsl.pkl"
    assert main(["train-dsl", str(bad), "--density", "0.5", "--out", str(out), "-q"]) == 1
    assert "line 2" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.txt"]


# -- compress ----------------------------------------------------------------------------------------

def test_compress_afm_is_compress_on_the_first_rows(ctr_pickle, criteo_file, tmp_path, capsys):
    out = tmp_path / "small.pkl"
    assert main(["compress", str(ctr_pickle), str(criteo_file), "--method", "afm", "--ratio", "2",
                 "--sample-rows", "300", "--out", str(out)]) == 0
    assert "compressed" in capsys.readouterr().err
    small = load(out)
    frame = read_criteo(criteo_file)
    X = frame.drop(columns="label")
    expected = compress(load(ctr_pickle), X.iloc[:300], method="afm", ratio=2)
    assert isinstance(small, CTRClassifier)
    assert small.compression_["method"] == "afm" and small.compression_["ratio"] >= 2
    assert small.compression_["ranks"] == expected.compression_["ranks"]
    np.testing.assert_allclose(small.predict_proba(X), expected.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_compress_svd_needs_no_data(ctr_pickle, tmp_path, criteo_file):
    out = tmp_path / "svd.pkl"
    assert main(["compress", str(ctr_pickle), "--method", "svd", "--ratio", "2", "--out", str(out), "-q"]) == 0
    X = read_criteo(criteo_file, nrows=50).drop(columns="label")
    expected = compress(load(ctr_pickle), method="svd", ratio=2)
    np.testing.assert_allclose(load(out).predict_proba(X), expected.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_compress_refuses_a_model_that_is_no_ctr_classifier(interaction_files, criteo_file, tmp_path, capsys):
    dsl = tmp_path / "dsl.pkl"
    assert main(["train-dsl", str(interaction_files[0]), *DSL_OPTIONS, "--out", str(dsl), "-q"]) == 0
    not_pickle = tmp_path / "notes.pkl"
    not_pickle.write_text("hello\n")
    for model, message in ((dsl, "DSLRecommender, not a recsys.CTRClassifier"), (not_pickle, "not a pickled model")):
        out = tmp_path / "small.pkl"
        assert main(["compress", str(model), str(criteo_file), "--ratio", "2", "--out", str(out)]) == 1
        line = one_error_line(capsys)
        assert message in line and str(model) in line
        assert not out.exists()


# -- train-ctr ---------------------------------------------------------------------------------------

def test_train_ctr_is_the_estimator_fitted_on_the_paths(criteo_file, tmp_path, capsys):
    out = tmp_path / "deepfm.pkl"
    options = ["--embed-dim", "4", "--hidden", "16", "8", "--epochs", "2", "--batch-size", "256",
               "--chunksize", "100", "--validation-fraction", "0.25", "--seed", "3", "--device", "cpu"]
    assert main(["train-ctr", str(criteo_file), *options, "--out", str(out)]) == 0
    assert "validation AUC" in capsys.readouterr().err
    expected = CTRClassifier(embed_dim=4, hidden=(16, 8), max_epochs=2, batch_size=256, random_state=3,
                             validation_fraction=0.25, device="cpu", verbose=0, data_format="auto",
                             chunksize=100).fit([str(criteo_file)])
    X = read_criteo(criteo_file, nrows=100).drop(columns="label")
    model = load(out)
    assert model.get_params()["hidden"] == (16, 8)
    np.testing.assert_allclose(model.predict_proba(X), expected.predict_proba(X), rtol=1e-5, atol=1e-6)


# -- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (["train-dsl", "t.txt", "--density", "0", "--out", "m.pkl"], "--density"),
    (["train-dsl", "t.txt", "--out", "m.pkl"], "--density"),
    (["train-dsl", "t.txt", "--density", "0.5", "--epochs", "0", "--out", "m.pkl"], "--epochs"),
    (["train-dsl", "t.txt", "--density", "0.5", "--backbone", "gcn", "--out", "m.pkl"], "--backbone"),
    (["train-dsl", "t.txt", "--density", "0.5", "--device", "tpu", "--out", "m.pkl"], "--device"),
    (["train-dsl", "t.txt", "--density", "0.5"], "--out"),
    (["train-dsl", "t.txt", "--density", "0.5", "--out", "no/such/folder/m.pkl"], "--out"),
    (["train-dsl", "t.txt", "--density", "0.5", "--seed", "-1", "--out", "m.pkl"], "--seed"),
    (["train-ctr", "d.txt", "--hidden", "16", "0", "--out", "m.pkl"], "--hidden"),
    (["train-ctr", "d.txt", "--lr", "-1", "--out", "m.pkl"], "--lr"),
    (["train-ctr", "d.txt", "--format", "csv", "--out", "m.pkl"], "--format"),
    (["train-ctr", "d.txt", "--validation-fraction", "1", "--out", "m.pkl"], "--validation-fraction"),
    (["compress", "m.pkl", "d.txt", "--ratio", "0.5", "--out", "s.pkl"], "--ratio"),
    (["compress", "m.pkl", "--method", "afm", "--ratio", "2", "--out", "s.pkl"], "--method afm"),
    (["compress", "m.pkl", "d.txt", "--method", "pca", "--ratio", "2", "--out", "s.pkl"], "--method"),
    (["fit"], "fit"),
])
def test_usage_errors_exit_2_with_one_line_naming_the_option(args, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert option in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["train-dsl", "{missing}", "--density", "0.5"],
    ["train-dsl", "{train}", "--density", "0.5", "--test", "{missing}"],
    ["train-ctr", "{missing}"],
    ["train-ctr", "{folder}/nothing_*.txt"],
    ["compress", "{missing}", "{criteo}", "--ratio", "2"],
    ["compress", "{model}", "{missing}", "--ratio", "2"],
])
def test_a_missing_file_exits_1_naming_it(command, interaction_files, criteo_file, ctr_pickle, tmp_path, capsys):
    names = {"missing": str(tmp_path / "missing.txt"), "train": str(interaction_files[0]), "folder": str(tmp_path),
             "criteo": str(criteo_file), "model": str(ctr_pickle)}
    out = tmp_path / "out.pkl"
    assert main([part.format(**names) for part in command] + ["--out", str(out), "-q"]) == 1
    line = one_error_line(capsys)
    assert ("missing.txt" in line) if "{missing}" in command else ("nothing_*.txt" in line)
    assert not out.exists()


def test_the_output_cannot_be_an_input(interaction_files, capsys):
    train_file = interaction_files[0]
    before = train_file.read_bytes()
    assert main(["train-dsl", str(train_file), "--density", "0.5", "--out", str(train_file)]) == 2
    assert "--out" in one_error_line(capsys)
    assert train_file.read_bytes() == before


# -- ranks and the entry point ---------------------------------------------------------------------

def _train_dsl_on_rank(rank, train_file, test_file, folder):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["train-dsl", train_file, *DSL_OPTIONS, "--test", test_file,
                       "--out", str(Path(folder) / f"rank{rank}.pkl")])
    return status, stdout.getvalue(), stderr.getvalue()


def test_under_two_ranks_only_rank_0_writes_and_prints(interaction_files, tmp_path):
    (status0, out0, err0), (status1, out1, err1) = values(run_ranks(
        _train_dsl_on_rank, world_size=2, args=(*map(str, interaction_files), str(tmp_path))))
    assert status0 == status1 == 0
    assert "recall@20" in out0 and "trained DSL-mf" in err0
    assert out1 == err1 == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0.pkl"]


def test_console_script_and_module_entry_point():
    script = Path(sys.executable).with_name("recsys")
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    assert all(command in helped.stdout for command in ("train-ctr", "train-dsl", "compress"))
