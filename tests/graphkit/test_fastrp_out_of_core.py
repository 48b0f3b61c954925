"""Out-of-core FastRP: the CSR on disk equals read_edgelist's graph, the blocked fit equals the in-memory one."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

import graphkit
from graphkit import _disk_csr, _fastrp_out_of_core
from graphkit._disk_csr import (
    check_disk_space,
    disk_graph_from_edges,
    disk_graph_from_graph,
    format_bytes,
    parse_memory_budget,
)
from graphkit._edge_blocks import EdgeBlockReader
from graphkit._fastrp_out_of_core import fastrp_out_of_core, smallest_budget


# -- helpers ------------------------------------------------------------------------------------------

def _write_edges(path, src, dst, weight=None):
    with open(path, "w") as handle:
        for position in range(len(src)):
            fields = [str(src[position]), str(dst[position])]
            if weight is not None:
                fields.append(repr(float(weight[position])))
            handle.write(" ".join(fields) + "\n")
    return path


def _random_edges(seed, n_nodes=60, n_edges=240):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges)


def _disk_graph(path, folder, directed=False, budget=40_000):
    reader = EdgeBlockReader(path, block_bytes=200)
    return disk_graph_from_edges(reader, folder, directed=directed, memory_budget=budget)


def _assert_same_graph(disk, graph):
    assert disk.n_nodes == graph.n_nodes
    np.testing.assert_array_equal(disk.node_ids, graph.node_ids)
    assert disk.node_ids.dtype == graph.node_ids.dtype
    assert disk.directed == graph.directed and disk.weighted == graph.weighted
    adjacency = disk.to_scipy()
    assert adjacency.nnz == graph.adjacency.nnz == disk.n_entries
    np.testing.assert_array_equal(adjacency.indptr, graph.adjacency.indptr)
    np.testing.assert_array_equal(adjacency.indices, graph.adjacency.indices)
    np.testing.assert_array_equal(adjacency.data, graph.adjacency.data)


@pytest.fixture
def edge_file(tmp_path):
    src, dst = _random_edges(0)
    return _write_edges(tmp_path / "edges.txt", src, dst)


# -- parse_memory_budget -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (1000, 1000), ("4GB", 4 * 10**9), ("4 GiB", 4 * 2**30), ("512MB", 512 * 10**6), ("1.5G", int(1.5 * 2**30)),
    ("800M", 800 * 2**20), ("2kb", 2000), ("3 KiB", 3072), ("1TB", 10**12), ("1T", 2**40), ("123", 123),
    ("64 B", 64), (np.int64(5), 5),
])
def test_parse_memory_budget(value, expected):
    assert parse_memory_budget(value) == expected


@pytest.mark.parametrize("value", ["", "GB", "4 XB", "-1GB", "4 G B", "four", 0, -5, "0MB", 1.5, None, True, [4]])
def test_parse_memory_budget_refuses(value):
    with pytest.raises(ValueError, match="memory_budget"):
        parse_memory_budget(value)


def test_format_bytes_rounds_up():
    assert format_bytes(1_150_000_000) == "1.2 GB"
    assert format_bytes(12_345_678) == "13 MB"
    assert format_bytes(999) == "999 bytes"


# -- the CSR on disk -------------------------------------------------------------------------------------

@pytest.mark.parametrize("directed", [False, True])
def test_disk_graph_equals_read_edgelist(tmp_path, edge_file, directed):
    disk = _disk_graph(edge_file, tmp_path / "csr", directed)
    _assert_same_graph(disk, graphkit.read_edgelist(edge_file, directed=directed))
    assert sorted(os.listdir(tmp_path / "csr")) == ["data.bin", "indices.bin", "indptr.bin"]  # spool removed
    assert repr(disk).startswith(f"DiskGraph({disk.n_nodes} nodes, {disk.n_entries} entries")


def test_disk_graph_uses_several_buckets(tmp_path, edge_file, monkeypatch):
    """A budget just above the smallest gives buckets of a few rows; the result is unchanged."""
    counts = []
    original = _disk_csr.max_merged_csr

    def counting(rows, cols, values, shape):
        counts.append(shape[0])
        return original(rows, cols, values, shape)

    monkeypatch.setattr(_disk_csr, "max_merged_csr", counting)
    disk = _disk_graph(edge_file, tmp_path / "csr", budget=12_000)
    assert len(counts) > 3 and sum(counts) == disk.n_nodes
    _assert_same_graph(disk, graphkit.read_edgelist(edge_file))


@pytest.mark.parametrize("directed", [False, True])
def test_disk_graph_weighted_repeats_zero_weights_and_self_loops(tmp_path, directed):
    src, dst = _random_edges(1, n_nodes=40, n_edges=200)
    rng = np.random.default_rng(2)
    weight = rng.integers(0, 5, len(src)).astype(float) * 0.75  # zeros, and repeats of different weight
    src = np.concatenate([src, [3, 3, 7, 90, 91]])  # self loops; nodes 90, 91 only on a weight-0 edge
    dst = np.concatenate([dst, [3, 3, 7, 91, 90]])
    weight = np.concatenate([weight, [2.0, 5.0, 1.0, 0.0, 0.0]])
    path = _write_edges(tmp_path / "weighted.txt", src, dst, weight)
    disk = _disk_graph(path, tmp_path / "csr", directed)
    graph = graphkit.read_edgelist(path, directed=directed)
    _assert_same_graph(disk, graph)
    assert {90, 91} <= set(disk.node_ids.tolist())
    assert disk.to_scipy()[graph.index_of([3])[0], graph.index_of([3])[0]] == 5.0


def test_disk_graph_string_ids(tmp_path):
    src, dst = _random_edges(3, n_nodes=50)
    names = np.array([f"node-{value}" for value in range(50)], dtype=object)
    path = _write_edges(tmp_path / "names.txt", names[src], names[dst])
    disk = _disk_graph(path, tmp_path / "csr")
    _assert_same_graph(disk, graphkit.read_edgelist(path))
    assert disk.node_ids.dtype == object


def test_disk_graph_mixed_integer_and_string_blocks(tmp_path):
    """Integer ids in early blocks and strings later: all ids become strings, as read_edgelist does."""
    src, dst = _random_edges(4, n_nodes=30, n_edges=100)
    path = _write_edges(tmp_path / "mixed.txt", np.concatenate([src, ["x", "y"]]).astype(object),
                        np.concatenate([dst, ["y", "1"]]).astype(object))
    disk = _disk_graph(path, tmp_path / "csr")
    _assert_same_graph(disk, graphkit.read_edgelist(path))


def test_disk_graph_from_graph_and_row_blocks(tmp_path):
    graph = graphkit.read_edgelist(_write_edges(tmp_path / "e.txt", *_random_edges(5)))
    disk = disk_graph_from_graph(graph, tmp_path / "csr")
    _assert_same_graph(disk, graph)
    block = disk.row_block(10, 25)
    assert block.shape == (15, graph.n_nodes)
    assert (block != graph.adjacency[10:25]).nnz == 0
    blocks = list(disk.row_blocks(max_entries=20))
    assert blocks[0][0] == 0 and blocks[-1][1] == graph.n_nodes
    assert all(stop - start == 1 or disk.indptr[stop] - disk.indptr[start] <= 20 for start, stop in blocks)
    from graphkit._fastrp_rows import log2_row_sums
    np.testing.assert_array_equal(disk.degrees_log2(block_entries=30), log2_row_sums(graph.adjacency, graph.weighted))


def test_disk_graph_budget_too_small_names_the_smallest(tmp_path, edge_file):
    with pytest.raises(ValueError, match=r"memory_budget=.*at least \d"):
        _disk_graph(edge_file, tmp_path / "csr", budget=1500)
    assert os.listdir(tmp_path / "csr") == []  # the spool is removed on error too


# -- FastRP out of core equals FastRP in memory ---------------------------------------------------------------

CASES = {
    "defaults": {},
    "beta": {"normalization_strength": -0.64},
    "many_weights": {"iteration_weights": (1.0, -2.0, 0.5, 3.0, -0.25)},
    "self_influence": {"self_influence": 0.7},
    "no_normalize": {"normalize": False},
    "no_standardize": {"standardize": False},
}


def _in_memory(graph, n_components, dtype, **options):
    model = graphkit.FastRP(n_components=n_components, random_state=7, dtype=dtype, device="cpu", verbose=0,
                            **options).fit(graph)
    return model


def _out_of_core(disk, model, folder, budget=None, **options):
    options.setdefault("iteration_weights", (0.0, 1.0, 1.0))
    dtype = getattr(torch, model.dtype)
    if budget is None:  # just above the smallest: blocks of one or two rows
        budget = smallest_budget(disk, model.n_components, dtype) + 300
    return fastrp_out_of_core(disk, n_components=model.n_components, seed=model._seed, memory_budget=budget,
                              folder=folder, dtype=dtype, **options)


@pytest.fixture
def graphs(tmp_path, edge_file):
    return graphkit.read_edgelist(edge_file), _disk_graph(edge_file, tmp_path / "csr")


@pytest.mark.parametrize("case", sorted(CASES))
def test_out_of_core_equals_in_memory_float32(tmp_path, graphs, case, monkeypatch):
    graph, disk = graphs
    calls = []
    original = disk.row_block
    monkeypatch.setattr(disk, "row_block", lambda start, stop: calls.append(stop - start) or original(start, stop))
    model = _in_memory(graph, 16, "float32", **CASES[case])
    result = _out_of_core(disk, model, tmp_path / "work", **CASES[case])
    assert len(calls) > 10 * (len(result.history))  # many blocks per product
    assert result.embedding.shape == (graph.n_nodes, 16) and result.embedding.dtype == np.float32
    np.testing.assert_allclose(np.asarray(result.embedding), model.embedding_, rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.mean, model.mean_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.scale, model.scale_, rtol=1e-5)
    assert [entry["iteration"] for entry in result.history] == [entry["iteration"] for entry in model.history_]
    np.testing.assert_allclose([entry["mean_row_norm"] for entry in result.history],
                               [entry["mean_row_norm"] for entry in model.history_], rtol=1e-5)
    assert all(entry["seconds"] >= 0 for entry in result.history)


@pytest.mark.parametrize("case", sorted(CASES))
def test_out_of_core_equals_in_memory_float64(tmp_path, graphs, case):
    graph, disk = graphs
    model = _in_memory(graph, 12, "float64", **CASES[case])
    result = _out_of_core(disk, model, tmp_path / "work", **CASES[case])
    np.testing.assert_allclose(np.asarray(result.embedding), model.embedding_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.scale, model.scale_, rtol=1e-10)


def test_out_of_core_directed_weighted_sklearn_sampler(tmp_path):
    src, dst = _random_edges(8, n_nodes=50, n_edges=200)
    weight = np.random.default_rng(9).uniform(0.1, 4.0, len(src))
    path = _write_edges(tmp_path / "w.txt", src, dst, weight)
    graph = graphkit.read_edgelist(path, directed=True)
    disk = _disk_graph(path, tmp_path / "csr", directed=True)
    options = {"normalization_strength": 0.5, "sampler": "sklearn", "iteration_weights": (0.5, 1.0, 2.0)}
    model = _in_memory(graph, 8, "float64", **options)
    result = _out_of_core(disk, model, tmp_path / "work", **options)
    np.testing.assert_allclose(np.asarray(result.embedding), model.embedding_, rtol=0, atol=1e-10)


def test_out_of_core_writes_into_a_structured_memmap(tmp_path, graphs):
    graph, disk = graphs
    model = _in_memory(graph, 8, "float32")
    record = np.dtype([("id", "<i8"), ("vector", "<f4", (8,))])
    table = np.lib.format.open_memmap(tmp_path / "table.npy", mode="w+", dtype=record, shape=(graph.n_nodes,))
    result = _out_of_core(disk, model, tmp_path / "work", out=table["vector"])
    assert result.embedding is not None
    np.testing.assert_allclose(table["vector"], model.embedding_, atol=1e-5)
    assert not os.path.exists(tmp_path / "work" / "embedding.npy")
    with pytest.raises(ValueError, match="out must have shape"):
        _out_of_core(disk, model, tmp_path / "work", out=np.zeros((3, 8), np.float32))


def test_a_large_budget_gives_one_block_and_the_same_result(tmp_path, graphs):
    graph, disk = graphs
    model = _in_memory(graph, 16, "float32")
    result = _out_of_core(disk, model, tmp_path / "work", budget="1GB")
    np.testing.assert_allclose(np.asarray(result.embedding), model.embedding_, atol=1e-5)
    loaded = np.load(tmp_path / "work" / "embedding.npy")
    np.testing.assert_array_equal(loaded, np.asarray(result.embedding))


# -- budgets, disk space and temporary files -----------------------------------------------------------------

def test_budget_too_small_names_the_smallest_and_that_one_works(tmp_path, graphs):
    graph, disk = graphs
    model = _in_memory(graph, 16, "float32")
    smallest = smallest_budget(disk, 16, torch.float32)
    with pytest.raises(ValueError, match=rf"memory_budget=.*at least {format_bytes(smallest)} \({smallest} bytes\)"):
        _out_of_core(disk, model, tmp_path / "work", budget=smallest - 1)
    result = _out_of_core(disk, model, tmp_path / "work", budget=smallest)
    np.testing.assert_allclose(np.asarray(result.embedding), model.embedding_, atol=1e-5)


def test_smallest_budget_grows_with_the_width(graphs):
    _, disk = graphs
    assert smallest_budget(disk, 64, torch.float32) > smallest_budget(disk, 16, torch.float32)
    assert smallest_budget(disk, 16, torch.float64) > smallest_budget(disk, 16, torch.float32)


def test_disk_space_is_checked_before_any_large_file(tmp_path, graphs, monkeypatch):
    graph, disk = graphs
    model = _in_memory(graph, 16, "float32")
    free = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(_disk_csr.shutil, "disk_usage", lambda path: free)
    with pytest.raises(OSError, match="disk space.*needs.*free"):
        _out_of_core(disk, model, tmp_path / "work")
    assert not os.path.exists(tmp_path / "work") or os.listdir(tmp_path / "work") == []


def test_disk_space_is_checked_before_the_csr_files(tmp_path, edge_file, monkeypatch):
    free = shutil.disk_usage(tmp_path)._replace(free=100)
    monkeypatch.setattr(_disk_csr.shutil, "disk_usage", lambda path: free)
    with pytest.raises(OSError, match="disk space"):
        _disk_graph(edge_file, tmp_path / "csr")
    assert os.listdir(tmp_path / "csr") == []
    with pytest.raises(OSError, match="100 bytes"):
        check_disk_space(tmp_path, 101, "something")
    check_disk_space(tmp_path, 100, "something")


def test_temporary_files_are_removed_after_success_and_error(tmp_path, graphs, monkeypatch):
    graph, disk = graphs
    model = _in_memory(graph, 16, "float32")
    work = tmp_path / "work"
    _out_of_core(disk, model, work)
    assert os.listdir(work) == ["embedding.npy"]

    def failing(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(_fastrp_out_of_core, "add_normalized_", failing)
    with pytest.raises(RuntimeError, match="planted failure"):
        _out_of_core(disk, model, work)
    assert os.listdir(work) == ["embedding.npy"]


def test_non_finite_embedding_raises(tmp_path, graphs):
    graph, disk = graphs
    model = _in_memory(graph, 8, "float32")
    with pytest.raises(ValueError, match="lower them"):
        _out_of_core(disk, model, tmp_path / "work", iteration_weights=(0.0, 3e38, 3e38, 3e38), hint="lower them")


def test_gathered_product_equals_the_whole_product(graphs):
    """The path for a device other than the CPU moves only the rows a block uses; checked on the CPU."""
    from graphkit._fastrp_rows import sparse_dense_product

    _, disk = graphs
    previous = np.random.default_rng(11).standard_normal((disk.n_nodes, 6))
    spec = _fastrp_out_of_core._Spec(disk, [], [], True, torch.device("cpu"), torch.float64,
                                     torch.empty((disk.n_nodes, 6), dtype=torch.float64), 0)
    transition = _fastrp_out_of_core.transition_rows(disk.row_block(5, 30), torch.device("cpu"), torch.float64)
    gathered = _fastrp_out_of_core._gathered_product(transition, previous, spec, sparse_dense_product)
    np.testing.assert_allclose(gathered.numpy(), (transition @ torch.from_numpy(previous)).numpy(), atol=1e-14)


def test_transition_rows_are_the_rows_of_the_transition_matrix(tmp_path):
    from graphkit.fastrp import transition_tensor

    src, dst = _random_edges(12, n_nodes=30, n_edges=90)
    weight = np.random.default_rng(13).uniform(0.5, 2.0, len(src)) * 1e307  # degrees beyond the largest float
    graph = graphkit.Graph.from_edges(src, dst, weight, directed=True)
    disk = disk_graph_from_graph(graph, tmp_path / "csr")
    whole = transition_tensor(graph.adjacency, device="cpu", dtype=torch.float64).to_dense()
    rows = _fastrp_out_of_core.transition_rows(disk.row_block(4, 19), torch.device("cpu"), torch.float64)
    assert torch.equal(rows.to_dense(), whole[4:19])
    assert torch.isfinite(whole).all()


def test_disk_graph_from_compressed_file(tmp_path):
    import gzip

    src, dst = _random_edges(14, n_nodes=40, n_edges=150)
    plain = _write_edges(tmp_path / "e.txt", src, dst)
    with open(plain, "rb") as source, gzip.open(tmp_path / "e.txt.gz", "wb") as target:
        target.write(source.read())
    disk = _disk_graph(tmp_path / "e.txt.gz", tmp_path / "csr", directed=True)
    _assert_same_graph(disk, graphkit.read_edgelist(plain, directed=True))


def test_edge_block_bytes_fits_the_budget():
    assert _disk_csr.edge_block_bytes(4 * 10**9) == 64 << 20
    assert _disk_csr.edge_block_bytes(10**6) == 1 << 16
    small = _disk_csr.edge_block_bytes(100 * 10**6)
    assert small * _disk_csr._PARSE_BYTES_PER_TEXT_BYTE <= 100 * 10**6 // 4
