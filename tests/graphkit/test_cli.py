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
    if suffix == ".npy":   # the plain matrix np.load users expect, the ids beside it
        vectors, ids = np.load(out), np.load(tmp_path / "emb.ids.npy")
        assert vectors.dtype == np.float32 and vectors.shape == (len(ids), 8) and ids.dtype.kind == "U"
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


def test_a_reader_that_stops_early_ends_the_command_quietly_with_status_0():
    # the reader closes the pipe before anything is written, so the first write fails (EPIPE)
    process = subprocess.Popen([sys.executable, "-m", "graphkit", "embed", "--dim", "64", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=120) == 0 and err == b""


def test_the_packages_and_the_help_import_nothing_heavy():
    code = ("import sys, graphkit, tensorkit, recsys\nfrom graphkit.cli import main\n"
            "try:\n    main(['embed', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(name for name in ('torch', 'sklearn', 'pandas', 'scipy') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_self_loops_are_dropped_on_request_and_their_nodes_kept(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("a a\na b\nb c\nc c\nd d\n")
    kept, dropped = tmp_path / "kept.npz", tmp_path / "dropped.npz"
    assert main(["embed", str(path), "--dim", "8", "--out", str(kept), "-q", "--iteration-weights", "1"]) == 0
    assert main(["embed", str(path), "--dim", "8", "--out", str(dropped), "-q", "--iteration-weights", "1",
                 "--drop-self-loops"]) == 0
    expected = FastRP(n_components=8, iteration_weights=[1], random_state=0).fit(
        read_edgelist(path, self_loops="drop"))
    with np.load(dropped) as archive:
        assert archive["ids"].tolist() == ["a", "b", "c", "d"]   # d has only a self loop, and stays
        np.testing.assert_allclose(archive["embedding"], expected.embedding_, atol=1e-6)
        assert not np.allclose(archive["embedding"], np.load(kept)["embedding"])


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


# -- input integrity (issue 32) -------------------------------------------------------------------

def run_graphkit(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "graphkit", *map(str, args)], stdin=stdin,
                          capture_output=True, text=True, cwd=cwd)


def chain_file(tmp_path, n_edges=2000):
    path = tmp_path / "chain.txt"
    path.write_text("".join(f"{i} {i + 1}\n" for i in range(n_edges)))
    return path


@pytest.mark.parametrize("source", ["-", "/dev/stdin"])
def test_standard_input_is_read_whole(tmp_path, source):
    out = tmp_path / "p.csv"
    with open(chain_file(tmp_path)) as stdin:
        result = run_graphkit("embed", source, "--dim", 8, "--out", out, "-q", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(out)["id"].tolist() == list(range(2001))


def test_64_bit_ids_are_written_exactly(tmp_path, capsys):
    path = tmp_path / "hashed.txt"
    path.write_text("18446744073709551615 1\n1 2\n2 3\n")
    assert main(["embed", str(path), "--dim", "4", "-q"]) == 0
    ids = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert ids == ["1", "2", "3", "18446744073709551615"]


def test_a_timestamp_column_is_no_weight_and_the_progress_line_says_so(tmp_path, capsys):
    path = tmp_path / "snap.txt"
    path.write_text("source target timestamp\n1 2 1600000000\n2 3 1600000100\n3 1 1700000000\n")
    out = tmp_path / "a.npy"
    assert main(["embed", str(path), "--dim", "4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "unweighted (column 3 'timestamp' is not a weight" in err
    unweighted = np.load(out)
    assert main(["embed", str(path), "--dim", "4", "--out", str(out), "--weight-column", "timestamp"]) == 0
    assert "weights from column 3 'timestamp'" in capsys.readouterr().err
    assert main(["embed", str(path), "--dim", "4", "--out", str(tmp_path / "b.npy"), "--weight-column", "3", "-q"]) == 0
    np.testing.assert_array_equal(np.load(out), np.load(tmp_path / "b.npy"))
    assert not np.array_equal(np.load(out), unweighted)


def test_a_first_edge_like_hub_1_is_kept(tmp_path, capsys):
    path = tmp_path / "hub.txt"
    path.write_text("hub 1\n2 3\n3 4\n4 5\n")
    assert main(["embed", str(path), "--dim", "4", "-q"]) == 0
    ids = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(ids) == ["1", "2", "3", "4", "5", "hub"]


def test_the_output_cannot_be_the_input(tmp_path, capsys):
    path = chain_file(tmp_path, 10)
    before = path.read_bytes()
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    for out in (path, link, tmp_path / "." / "chain.txt"):
        assert main(["embed", str(path), "--out", str(out), "-q"]) == 2
        assert "is the input file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_an_existing_output_keeps_its_mode_and_a_symlink_its_target(tmp_path):
    import os
    import stat

    edges = chain_file(tmp_path, 10)
    out = tmp_path / "emb.csv"
    out.write_text("old")
    os.chmod(out, 0o640)
    assert main(["embed", str(edges), "--dim", "4", "--out", str(out), "-q"]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and out.read_text().startswith("id,")
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert main(["embed", str(edges), "--dim", "4", "--out", str(link), "-q"]) == 0
    assert link.is_symlink() and real.read_text().startswith("id,")


def test_a_new_output_gets_the_usual_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        out = tmp_path / "emb.npy"
        assert main(["embed", str(chain_file(tmp_path, 10)), "--dim", "4", "--out", str(out), "-q"]) == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_sigterm_leaves_no_temporary_file(tmp_path):
    import signal
    import time

    edges = tmp_path / "big.txt"
    rng = np.random.default_rng(0)
    np.savetxt(edges, rng.integers(0, 200_000, size=(1_500_000, 2)), fmt="%d")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "graphkit", "embed", str(edges), "--dim", "64",
                                "--out", str(out_dir / "emb.txt"), "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out_dir.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # wait until the temporary output exists, then stop the run
    assert list(out_dir.iterdir()), "the run ended before it wrote its output"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    assert "terminated" in process.stderr.read()
    assert list(out_dir.iterdir()) == []


def test_word2vec_output_refuses_ids_with_spaces(tmp_path, capsys):
    edges = tmp_path / "cities.tsv"
    edges.write_text("New York\tBoston\nBoston\tAustin\n")
    out = tmp_path / "emb.txt"
    assert main(["embed", str(edges), "--dim", "4", "--out", str(out), "-q"]) == 2
    assert "'New York' holds whitespace" in capsys.readouterr().err and not out.exists()
    assert main(["embed", str(edges), "--dim", "4", "--out", str(tmp_path / "emb.csv"), "-q"]) == 0
    assert "New York" in pd.read_csv(tmp_path / "emb.csv")["id"].tolist()


@pytest.mark.parametrize("args, message", [
    (["--beta", "500"], "--beta=500"),
    (["--dim", "1000000000"], "--dim=1000000000 is too large"),
    (["--dtype", "complex64"], "argument --dtype: invalid choice"),
    (["--dim", "x"], "argument --dim: invalid int value"),
    (["--unknown-flag"], "unrecognized arguments"),
    (["--weight-column", "2"], "columns 1 and 2 are the node ids"),
    (["--weight-column", "weight"], "weight_column 'weight' is not a column"),
])
def test_every_error_is_one_line_with_status_2(tmp_path, capsys, args, message):
    edges = chain_file(tmp_path, 50)
    assert main(["embed", str(edges), "-q", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graphkit: error:") and message in err[0], err


def test_dev_zero_is_refused_quickly():
    result = run_graphkit("embed", "/dev/zero")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "graphkit: error: /dev/zero: holds NUL bytes; this is binary data, not a text edge list"]
