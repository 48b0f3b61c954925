"""FastRP the estimator out of core (memory_budget) and on a PartitionedGraph gives the in-memory embedding."""

import pickle

import numpy as np
import pytest

from graphkit import FastRP, Graph, PartitionedGraph, read_edgelist
from graphkit._disk_csr import process_anonymous_bytes
from tests.multiprocess import run_ranks, values


@pytest.fixture
def edge_file(tmp_path):
    rng = np.random.default_rng(11)
    n = 300
    src, dst = rng.integers(0, n, 2500), rng.integers(0, n, 2500)
    path = tmp_path / "edges.csv"
    lines = ["source,target,weight"] + [f"v{a},v{b},{w}" for a, b, w in zip(src, dst, rng.integers(0, 4, 2500))]
    path.write_text("\n".join(lines) + "\n")
    return path


def beside_this_process(megabytes):
    """A budget for the whole process: what it holds already (pytest, torch) and ``megabytes`` more."""
    return int(process_anonymous_bytes() + megabytes * 10**6)


SETTINGS = dict(n_components=12, iteration_weights=(0.5, 1.0, 2.0), normalization_strength=-0.4, random_state=3,
                verbose=0)


def test_memory_budget_fit_equals_the_in_memory_fit_and_pickles(edge_file, tmp_path):
    expected = FastRP(**SETTINGS).fit(read_edgelist(edge_file))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    model = FastRP(**SETTINGS, memory_budget=beside_this_process(12), temp_dir=scratch).fit(str(edge_file))
    assert isinstance(model.embedding_, np.memmap)
    assert list(model.node_ids_) == list(expected.node_ids_)
    np.testing.assert_allclose(model.embedding_, expected.embedding_, atol=1e-5)
    np.testing.assert_allclose(model.scale_, expected.scale_, rtol=1e-5)
    assert [step["iteration"] for step in model.history_] == [1, 2, 3]
    assert list(scratch.iterdir()) == []   # the temporary files are gone
    reloaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(reloaded.embedding_, model.embedding_)
    with pytest.raises(ValueError, match="fitted graph in memory"):
        model.transform(np.zeros((1, len(model.node_ids_))))
    in_memory_graph = FastRP(**SETTINGS, memory_budget=beside_this_process(20)).fit(read_edgelist(edge_file))
    np.testing.assert_allclose(in_memory_graph.embedding_, expected.embedding_, atol=1e-5)


def test_memory_budget_refusals(edge_file):
    with pytest.raises(ValueError, match="node_features"):
        FastRP(**SETTINGS, memory_budget=beside_this_process(10)).fit(str(edge_file), node_features=np.ones((300, 2)))
    with pytest.raises(ValueError, match="memory_budget"):
        FastRP(**SETTINGS, memory_budget="ten megabytes").fit(str(edge_file))
    with pytest.raises(ValueError, match="at least .* take that much already"):
        FastRP(**SETTINGS, memory_budget=1000).fit(str(edge_file))
    with pytest.raises(ValueError, match="too small for .*, beside the .* this process holds already: it must be at least"):
        FastRP(**SETTINGS, memory_budget=beside_this_process(0.01)).fit(str(edge_file))


def test_partitioned_graph_of_one_process_equals_the_in_memory_fit():
    rng = np.random.default_rng(5)
    graph = Graph.from_edges(rng.integers(0, 80, 300), rng.integers(0, 80, 300), n_nodes=90)  # 10+ isolated
    expected = FastRP(**SETTINGS).fit(graph)
    model = FastRP(**SETTINGS).fit(PartitionedGraph.from_graph(graph))
    np.testing.assert_array_equal(model.node_ids_, expected.node_ids_)
    np.testing.assert_allclose(model.embedding_, expected.embedding_, atol=1e-5)
    with pytest.raises(ValueError, match="memory_budget"):
        FastRP(**SETTINGS, memory_budget="1GB").fit(PartitionedGraph.from_graph(graph))


def _fit_on_ranks(rank, path):
    graph = PartitionedGraph.from_edgelist(path, partition="hash", block_bytes=2000)
    model = FastRP(**SETTINGS)
    rows = model.fit_transform(graph)
    return model.node_ids_, rows, model.mean_, model.history_


def test_two_ranks_each_embed_their_rows_of_the_in_memory_embedding(edge_file):
    outcomes = values(run_ranks(_fit_on_ranks, world_size=2, args=(str(edge_file),)))
    expected = FastRP(**SETTINGS).fit(read_edgelist(edge_file))
    position = {node: row for row, node in enumerate(expected.node_ids_)}
    seen = []
    for ids, rows, mean, history in outcomes:
        assert len(ids) > 0
        np.testing.assert_allclose(rows, expected.embedding_[[position[node] for node in ids]], atol=1e-5)
        np.testing.assert_allclose(mean, expected.mean_, atol=1e-5)
        seen.extend(ids)
    assert sorted(seen) == sorted(expected.node_ids_)
    agreed = [[{key: step[key] for key in ("iteration", "weight", "mean_row_norm", "bytes_exchanged")}
               for step in outcome[3]] for outcome in outcomes]
    assert agreed[0] == agreed[1] and len(agreed[0]) == 3
