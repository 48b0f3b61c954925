"""The FastRP scaling benchmark: its graph generator and owner rules, and a quick run end to end."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphkit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import fastrp_scale
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return fastrp_scale


def test_edge_lines_round_trip_through_the_reader(bench, tmp_path):
    src = np.array([0, 5, 10, 99, 100, 123_456_789, 7])
    dst = np.array([7, 0, 1000, 9, 1, 3, 123_456_789])
    path = tmp_path / "edges.txt"
    path.write_bytes(bench.edge_lines(src, dst))
    assert path.read_text().splitlines()[:2] == ["0 7", "5 0"]
    graph = graphkit.read_edgelist(path)
    assert graph.node_ids.tolist() == sorted(set(src) | set(dst))
    assert graph.n_edges == 7


def test_generated_graph_has_every_node_and_a_heavy_tail(bench, tmp_path):
    n, m = 5_000, 60_000
    info = bench.prepare_graph(tmp_path, n, m)
    again = bench.prepare_graph(tmp_path, n, m)
    assert again["cached"] and again["n_lines"] == info["n_lines"]
    src, dst = (np.concatenate(parts) for parts in zip(*bench.generated_edges(n, m)))
    assert len(src) == info["n_lines"] and m - 100 < len(src) <= m and not (src == dst).any()
    degree = np.bincount(np.concatenate([src, dst]), minlength=n)
    assert degree.min() >= 1 and degree.max() > 20 * np.median(degree)
    lines = np.loadtxt(info["path"], dtype=np.int64)
    assert np.array_equal(lines[:, 0], src) and np.array_equal(lines[:, 1], dst)


def test_partition_figures_match_brute_force(bench):
    rng = np.random.default_rng(0)
    n, parts = 300, 4
    u, v = rng.integers(0, n, 2000), rng.integers(0, n, 2000)
    keep = u < v
    u, v = u[keep], v[keep]
    for rule in ("hash", "range"):
        owner = bench.owners(n, parts, rule)
        assert set(np.unique(owner)) == set(range(parts))
        figures = bench.partition_figures(u, v, n, parts, rule, dim=8)
        halo = [len({b for a, b in zip(u, v) if owner[a] == r and owner[b] != r}
                    | {a for a, b in zip(u, v) if owner[b] == r and owner[a] != r}) for r in range(parts)]
        assert figures["halo"] == halo
        assert figures["edge_cut"] == int(sum(owner[a] != owner[b] for a, b in zip(u, v)))
        assert figures["owned"] == np.bincount(owner, minlength=parts).tolist()
        assert figures["bytes_per_step_mean"] == pytest.approx(np.mean(halo) * 8 * 4)
    assert np.array_equal(bench.owners(8, 2, "range"), [0, 0, 0, 0, 1, 1, 1, 1])
    assert bench.budget_bytes("4GB") == 4 * 10**9 and bench.budget_bytes("2GiB") == 2 * 2**30


@pytest.mark.slow
def test_fastrp_scale_quick_writes_every_measurement(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fastrp_scale.py"), "--quick", "--work-dir", str(tmp_path / "work"),
         "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert len(record["stamp"]["commit"]) == 40 and isinstance(record["stamp"]["dirty"], bool)
    assert record["graphs"]["a"]["n_nodes"] == 20_000 and record["graphs"]["b"]["n_nodes"] == 50_000
    a, b, c = (record["measurements"][k] for k in "abc")
    for key in ("memory", "ranks1", "ranks2", "ranks4"):
        assert "error" not in a[key], (key, a[key].get("error"))
        assert a[key]["wall_seconds"] > 0 and a[key]["workers"]
    assert [len(a[f"ranks{p}"]["workers"]) for p in (1, 2, 4)] == [1, 2, 4]
    assert all(w["hwm_peak"] > 0 and w["rss_anon_peak"] > 0 for w in a["ranks2"]["workers"])
    for ranks in ("2", "4"):
        info = a["partition"][ranks]
        assert "error" not in info, info
        assert info["world_size"] == int(ranks) and len(info["ranks"]) == int(ranks)
        for rule in ("hash", "range"):
            rows = [r for rank in info["ranks"] for r in rank if r["rule"] == rule]
            assert sum(r["owned"] for r in rows) == rows[0]["n_nodes"] == 20_000
            assert all(r["bytes_per_step"] > 0 for r in rows)
    for key in ("outofcore", "memory", "spmm"):
        assert "error" not in b[key], (key, b[key].get("error"))
    assert b["spmm"]["child"]["seconds"] > 0
    assert "skipped" in b["rust"] or b["rust"]["child"]["finite"]
    assert b["compare"]["rows_checked"] == 50_000
    goals = {g["goal"]: g for g in record["goals"]}
    assert len(goals) == 8 and all(g["met"] in (True, False, None) for g in goals.values())
    # the same seed gives the same embedding in every layout; a tiny graph fits any budget
    for name, goal in goals.items():
        if "give the in-memory embedding" in name or "equals the in-memory fit" in name or "within the budget" in name:
            assert goal["met"] is True, goal
    assert goals["(b) out-of-core fit completes"]["met"] is True
    for key in ("a", "b"):
        figures = {(f["parts"], f["rule"]): f for f in c[key]["figures"]}
        assert set(figures) == {(p, r) for p in (2, 4, 8, 16) for r in ("hash", "range")}
        for parts in (2, 4, 8, 16):
            # hash scatters the ids: a random edge is cut with probability (P - 1) / P; the planted
            # locality in id order makes range cut fewer
            assert figures[parts, "hash"]["edge_cut_fraction"] == pytest.approx((parts - 1) / parts, abs=0.03)
            assert figures[parts, "range"]["edge_cut_fraction"] < figures[parts, "hash"]["edge_cut_fraction"]
            assert max(figures[parts, "hash"]["halo"]) <= record["graphs"][key]["n_nodes"]
    # the design note's owner rules are PartitionedGraph's: the same cut and halo at 2 and 4 ranks
    figures = {(f["parts"], f["rule"]): f for f in c["a"]["figures"]}
    for ranks in ("2", "4"):
        for rule in ("hash", "range"):
            rows = sorted((r for rank in a["partition"][ranks]["ranks"] for r in rank if r["rule"] == rule),
                          key=lambda r: r["rank"])
            figure = figures[int(ranks), rule]
            assert rows[0]["edge_cut"] == pytest.approx(figure["edge_cut_fraction"])
            assert [r["halo"] for r in rows] == figure["halo"] and [r["owned"] for r in rows] == figure["owned"]
    assert record["design"]["rules"]["hash"]["communication_seconds"] > 0
    report = out.read_text()
    for heading in ("## Goals", "| goal | threshold | measured | met |", "## (a) Partitioned", "## (b) Out of core",
                    "## (c) Design note", "1-billion-edge graph", "quick mode"):
        assert heading in report
    assert "Traceback" not in report and not list(tmp_path.glob("*.tmp"))
