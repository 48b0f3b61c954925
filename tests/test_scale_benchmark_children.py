"""The helpers of the scaling benchmarks: the FastRP graph generator and the owner rules of its design note."""

import numpy as np
import pytest

import graphkit
from benchmarks import _fastrp_scale_graphs as graphs


def test_edge_lines_round_trip_through_the_reader(tmp_path):
    src = np.array([0, 5, 10, 99, 100, 123_456_789, 7])
    dst = np.array([7, 0, 1000, 9, 1, 3, 123_456_789])
    path = tmp_path / "edges.txt"
    path.write_bytes(graphs.edge_lines(src, dst))
    assert path.read_text().splitlines()[:2] == ["0 7", "5 0"]
    graph = graphkit.read_edgelist(path)
    assert graph.node_ids.tolist() == sorted(set(src) | set(dst))
    assert graph.n_edges == 7


def test_generated_graph_has_every_node_and_a_heavy_tail(tmp_path):
    n, m = 5_000, 60_000
    info = graphs.prepare_graph(tmp_path, n, m)
    again = graphs.prepare_graph(tmp_path, n, m)
    assert again["cached"] and again["n_lines"] == info["n_lines"]
    src, dst = (np.concatenate(parts) for parts in zip(*graphs.generated_edges(n, m)))
    assert len(src) == info["n_lines"] and m - 100 < len(src) <= m and not (src == dst).any()
    degree = np.bincount(np.concatenate([src, dst]), minlength=n)
    assert degree.min() >= 1 and degree.max() > 20 * np.median(degree)
    lines = np.loadtxt(info["path"], dtype=np.int64)
    assert np.array_equal(lines[:, 0], src) and np.array_equal(lines[:, 1], dst)


def test_partition_figures_match_brute_force():
    rng = np.random.default_rng()
    n, parts = 300, 4
    u, v = rng.integers(0, n, 2000), rng.integers(0, n, 2000)
    keep = u < v
    u, v = u[keep], v[keep]
    for rule in ("hash", "range"):
        owner = graphs.owners(n, parts, rule)
        assert set(np.unique(owner)) == set(range(parts))
        figures = graphs.partition_figures(u, v, n, parts, rule, dim=8)
        halo = [len({b for a, b in zip(u, v) if owner[a] == r and owner[b] != r}
                    | {a for a, b in zip(u, v) if owner[b] == r and owner[a] != r}) for r in range(parts)]
        assert figures["halo"] == halo
        assert figures["edge_cut"] == int(sum(owner[a] != owner[b] for a, b in zip(u, v)))
        assert figures["owned"] == np.bincount(owner, minlength=parts).tolist()
        assert figures["bytes_per_step_mean"] == pytest.approx(np.mean(halo) * 8 * 4)
    assert np.array_equal(graphs.owners(8, 2, "range"), [0, 0, 0, 0, 1, 1, 1, 1])
    assert graphs.budget_bytes("4GB") == 4 * 10**9 and graphs.budget_bytes("2GiB") == 2 * 2**30
