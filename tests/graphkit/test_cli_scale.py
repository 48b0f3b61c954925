"""graphkit embed past one process's memory: --memory-budget (out of core) and under torchrun (shards)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphkit import FastRP, read_edgelist
from graphkit._disk_csr import process_anonymous_bytes
from graphkit.cli import main
from graphkit.embedding_files import read_embedding

ROOT = Path(__file__).resolve().parents[2]


def _write_graph(path, n_nodes, n_edges, seed, weighted=False, names=False):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges)
    ids = (lambda v: f"node{v}") if names else str
    with open(path, "w") as handle:
        handle.write("# generated\n")
        for a, b in zip(src, dst):
            handle.write(f"{ids(a)}\t{ids(b)}" + (f"\t{rng.integers(1, 5)}" if weighted else "") + "\n")
    return path


def beside_this_process(megabytes):
    """--memory-budget for the whole process: what it holds already (pytest, torch) and ``megabytes`` more."""
    return str(process_anonymous_bytes() + megabytes * 10**6)


def _in_memory(path, dim, seed, **kwargs):
    model = FastRP(n_components=dim, random_state=seed, verbose=0, **kwargs).fit(read_edgelist(path))
    return model.node_ids_, model.embedding_


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_memory_budget_gives_the_in_memory_embedding(tmp_path, suffix):
    edges = _write_graph(tmp_path / "edges.tsv", 400, 3000, seed=1, weighted=True, names=True)
    out = tmp_path / f"emb{suffix}"
    assert main(["embed", str(edges), "--dim", "16", "--seed", "5", "--memory-budget", beside_this_process(20),
                 "--temp-dir", str(tmp_path), "--out", str(out), "-q"]) == 0
    ids, vectors = read_embedding(out)
    expected_ids, expected = _in_memory(edges, 16, 5)
    assert list(ids) == list(expected_ids)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)
    written = [out.name] + (["emb.ids.npy"] if suffix == ".npy" else [])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["edges.tsv", *written])  # nothing left behind


def test_memory_budget_drops_self_loops_as_the_in_memory_reader_does(tmp_path):
    edges = tmp_path / "edges.txt"
    edges.write_text("a a\na b\nb c\nc c\nd d\nc a\n")
    out = tmp_path / "emb.npy"
    assert main(["embed", str(edges), "--dim", "8", "--iteration-weights", "1", "--memory-budget",
                 beside_this_process(20), "--temp-dir", str(tmp_path), "--out", str(out), "-q",
                 "--drop-self-loops"]) == 0
    ids, vectors = read_embedding(out)
    expected = FastRP(n_components=8, iteration_weights=[1], random_state=0, verbose=0).fit(
        read_edgelist(edges, self_loops="drop"))
    assert list(ids) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(vectors, expected.embedding_, atol=1e-5)


def test_memory_budget_reports_edges_per_second_and_refuses_bad_input(tmp_path, capsys):
    edges = _write_graph(tmp_path / "edges.txt", 100, 500, seed=2)
    assert main(["embed", str(edges), "--dim", "4", "--memory-budget", beside_this_process(20),
                 "--out", str(tmp_path / "e.npy")]) == 0
    err = capsys.readouterr().err
    assert "edges/s" in err and "out of core" in err
    assert main(["embed", "-", "--memory-budget", "20MB"]) == 2
    assert "standard input" in capsys.readouterr().err
    assert main(["embed", str(edges), "--memory-budget", "lots"]) == 2
    err = capsys.readouterr().err
    assert "memory_budget" in err or "memory-budget" in err


def _torchrun(args, env_extra=None, timeout=180):
    env = dict(os.environ, OMP_NUM_THREADS="1", TENSORKIT_DIST_TIMEOUT="30", **(env_extra or {}))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "graphkit", "embed", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_torchrun_writes_shards_equal_to_one_process(tmp_path):
    edges = _write_graph(tmp_path / "edges.txt", 300, 2000, seed=3, names=True)
    out = tmp_path / "emb"
    done = _torchrun([str(edges), "--dim", "8", "--seed", "4", "--out", f"{out}/", "--partition", "range"])
    assert done.returncode == 0, done.stderr
    index = json.loads((out / "index.json").read_text())
    assert [shard["file"] for shard in index["shards"]] == ["part-00000.npy", "part-00001.npy"]
    assert "edge cut" in done.stderr and "edges/s" in done.stderr
    ids, vectors = read_embedding(out)
    expected_ids, expected = _in_memory(edges, 8, 4)
    assert list(ids) == list(expected_ids)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)

    bad = tmp_path / "bad.txt"
    lines = edges.read_text().splitlines()
    lines[-3] = "node1"   # one field: only the rank reading the file's end sees it
    bad.write_text("\n".join(lines) + "\n")
    failed = _torchrun([str(bad), "--dim", "4", "--out", f"{tmp_path / 'never'}/"])
    assert failed.returncode != 0
    assert f"line {len(lines) - 2}" in failed.stderr and "bad.txt" in failed.stderr
    assert not (tmp_path / "never" / "index.json").exists()
