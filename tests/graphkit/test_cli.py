import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from graphkit import FastRP, read_edgelist
from graphkit.cli import main


@pytest.fixture
def edge_file(tmp_path):
    rng = np.random.default_rng(0)
    blocks = np.repeat([0, 1], 20)
    rows = []
    for u in range(40):
        for v in range(u + 1, 40):
            if rng.random() < (0.4 if blocks[u] == blocks[v] else 0.02):
                rows.append(f"user{u} user{v}")
    path = tmp_path / "edges.txt"
    path.write_text("# a small two-community graph\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".tsv", ".txt"])
def test_embed_writes_ids_and_the_estimators_vectors(edge_file, tmp_path, suffix):
    out = tmp_path / f"emb{suffix}"
    assert main(["embed", str(edge_file), "--dim", "8", "--seed", "3", "--out", str(out), "-q"]) == 0
    expected_model = FastRP(n_components=8, random_state=3).fit(read_edgelist(edge_file))
    if suffix == ".npy":
        record = np.load(out)
        ids, vectors = record["id"], record["vector"]
    elif suffix == ".npz":
        archive = np.load(out)
        ids, vectors = archive["ids"], archive["embedding"]
    elif suffix == ".txt":
        lines = out.read_text().splitlines()
        assert lines[0] == f"{len(lines) - 1} 8"
        ids = np.array([line.split()[0] for line in lines[1:]])
        vectors = np.array([[float(x) for x in line.split()[1:]] for line in lines[1:]])
    else:
        frame = pd.read_csv(out, sep="," if suffix == ".csv" else "\t")
        assert list(frame.columns) == ["id"] + [f"dim_{i}" for i in range(8)]
        ids, vectors = frame["id"].to_numpy(), frame.iloc[:, 1:].to_numpy()
    np.testing.assert_array_equal(ids.astype(str), expected_model.node_ids_.astype(str))
    np.testing.assert_allclose(vectors, expected_model.embedding_, rtol=1e-5, atol=1e-5)


def test_embed_without_edges_uses_the_builtin_example(capsys):
    assert main(["embed", "--dim", "4"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0] == "id,dim_0,dim_1,dim_2,dim_3"
    assert len(lines) == 35  # Zachary's karate club: 34 members
    assert "karate" in captured.err and "embedded in" in captured.err


@pytest.mark.parametrize("args, message", [
    (["embed", "missing.txt"], "missing.txt"),
    (["embed", "--dim", "0"], "--dim"),
    (["embed", "--out", "x.unknown"], "unknown extension"),
    (["embed", "--out", "no/such/folder/x.csv"], "does not exist"),
    (["embed", "--iteration-weights", "1", "a"], "iteration-weights"),
])
def test_bad_input_one_line_error_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graphkit: error:") and message in err[0]


def test_failed_run_leaves_no_output_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a b 1.0\nb c -2.0\n")
    out = tmp_path / "emb.npy"
    assert main(["embed", str(bad), "--out", str(out), "-q"]) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_console_script_help_and_exit_status(edge_file, tmp_path):
    helped = subprocess.run([sys.executable, "-m", "graphkit", "embed", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "EDGES" in helped.stdout and "--iteration-weights" in helped.stdout
    failed = subprocess.run([sys.executable, "-m", "graphkit", "embed", str(tmp_path / "nope.txt")],
                            capture_output=True, text=True)
    assert failed.returncode == 2 and "nope.txt" in failed.stderr
