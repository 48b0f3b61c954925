"""PartitionedGraph and the partitioned FastRP: every rank's rows equal the in-memory fit's.

The multi-rank checks run in spawned gloo processes (tests.multiprocess.run_ranks), several cases
per spawn; each rank returns its rows and the parent compares them with the in-memory graph and
FastRP fit.
"""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit import FastRP, Graph, read_edgelist
from graphkit._edge_blocks import EdgeBlockReader
from graphkit._fastrp_partitioned import fastrp_partitioned
from graphkit.partitioned import PartitionedGraph
from tests.multiprocess import run_ranks, values

D = 16
WEIGHTS = (0.5, 1.0, 2.0)
FIT = dict(n_components=D, iteration_weights=WEIGHTS, self_influence=0.25, normalization_strength=-0.5)


# -- data -------------------------------------------------------------------------------------------

def graph_with_isolated_nodes(seed=0, n=60):
    """An undirected random graph whose last 4 nodes have no edges."""
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n - 4, 150), rng.integers(0, n - 4, 150)
    keep = src != dst
    adjacency = sp.coo_matrix((np.ones(keep.sum()), (src[keep], dst[keep])), shape=(n, n)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    return Graph(adjacency)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def edge_files(folder, seed=1):
    """Edge-list files for the cases read from disk: {name: (path, directed)}."""
    rng = np.random.default_rng(seed)
    names = [f"user_{i:03d}" for i in range(40)]
    pairs = rng.integers(0, 40, (120, 2))
    strings = write_lines(folder / "strings.txt", [f"{names[a]} {names[b]}" for a, b in pairs])
    weights = rng.choice([0.0, 0.5, 1.0, 3.0], size=120, p=[0.3, 0.2, 0.3, 0.2])
    zero_weights = write_lines(folder / "zero_weights.txt", ["source target weight"] +
                               [f"{a} {b} {w}" for (a, b), w in zip(pairs, weights)] + ["90 91 0", "91 91 0"])
    directed = write_lines(folder / "directed.tsv", [f"{a}\t{b}\t{rng.uniform(0.1, 5):.3f}"
                                                     for a, b in rng.integers(0, 50, (200, 2))])
    mixed = write_mixed(folder / "mixed.txt", [f"{a} {b}" for a, b in pairs], ["x1 7", "x2 x1"])
    return {"strings": (strings, False), "zero_weights": (zero_weights, False), "directed": (directed, True),
            "mixed": (mixed, False)}


def write_mixed(path, integer_lines, string_lines):
    """Integer lines, then string lines placed (by padding) in blocks of 100 bytes that rank 1 reads."""
    for padding in range(40):
        write_lines(path, integer_lines + ["0 1"] * padding + string_lines)
        blocks = list(EdgeBlockReader(str(path), block_bytes=100).blocks(0, 1))
        if all(block.index % 2 == 1 for block in blocks if b"x" in block.data):
            return str(path)
    raise AssertionError("no padding puts the string lines in rank 1's blocks")


def reference_fit(graph, dtype):
    model = FastRP(**FIT, random_state=7, dtype=dtype, device="cpu", verbose=0).fit(graph)
    return model.embedding_, model.mean_, model._seed


# -- what each rank runs ---------------------------------------------------------------------------

def summary(graph):
    return {"owned": graph.owned, "local": graph.local, "node_ids": graph.node_ids, "n_edges": graph.n_edges,
            "owner": graph.owner, "halo": graph.halo, "edge_cut": graph.edge_cut, "weighted": graph.weighted}


def embed(graph, seed, dtype):
    rows, mean, scale, history = fastrp_partitioned(graph, **FIT, seed=seed, dtype=dtype)
    return {"rows": rows.numpy(), "mean": mean.numpy(), "history": history}


def partitioned_cases(rank, in_memory, files, seeds):
    """Every partitioned case of the module on this rank; returns {case: summary and rows}."""
    results = {}
    for partition in ("hash", "range"):
        for dtype in (torch.float32, torch.float64):
            graph = PartitionedGraph.from_graph(in_memory, partition=partition)
            results[("memory", partition, dtype)] = {**summary(graph), **embed(graph, seeds["memory"], dtype)}
    for name, (path, directed) in files.items():
        partition = "range" if name == "directed" else "hash"
        graph = PartitionedGraph.from_edgelist(path, directed=directed, block_bytes=100, partition=partition)
        results[(name, partition, torch.float32)] = {**summary(graph), **embed(graph, seeds[name], torch.float32)}
    ring = PartitionedGraph.from_graph(nx.cycle_graph(100), partition="range")
    marks = torch.from_numpy(ring.owned.astype(np.float64)).unsqueeze(1).repeat(1, 3)
    results["ring"] = {**summary(ring), "bytes": ring.bytes_per_step(D, 4), "received": ring.exchange(marks).numpy(),
                       "repr": repr(ring)}
    return results


def failing_cases(rank, bad_file):
    """A bad line only rank 1 reads, then an exception injected on rank 1 mid-propagation."""
    import graphkit._fastrp_partitioned as module

    outcomes = {}
    try:
        PartitionedGraph.from_edgelist(bad_file, block_bytes=100)
        outcomes["read"] = None
    except Exception as error:
        outcomes["read"] = (type(error).__name__, str(error))
    graph = PartitionedGraph.from_graph(nx.path_graph(30), partition="range")
    if rank == 1:
        original, calls = module.add_normalized_, []

        def failing(*args):
            calls.append(1)
            if len(calls) == 2:
                raise MemoryError("injected failure")
            return original(*args)

        module.add_normalized_ = failing
    try:
        fastrp_partitioned(graph, n_components=8, iteration_weights=(1.0, 1.0, 1.0), seed=0)
        outcomes["fit"] = None
    except Exception as error:
        outcomes["fit"] = (type(error).__name__, str(error))
    return outcomes


# -- checks in the parent --------------------------------------------------------------------------

def assemble(parts, key):
    """The whole matrix from every rank's rows ``parts[r][key]`` (rows ``owned``)."""
    first = parts[0][key]
    n = len(parts[0]["node_ids"])
    if sp.issparse(first):
        whole = sp.lil_matrix((n, first.shape[1]))
        for part in parts:
            whole[part["owned"]] = part[key]
        return whole.tocsr()
    whole = np.full((n, first.shape[1]), np.nan)
    for part in parts:
        whole[part["owned"]] = part[key]
    return whole


def check_case(parts, graph, dtype, seed):
    owned = np.sort(np.concatenate([part["owned"] for part in parts]))
    assert np.array_equal(owned, np.arange(graph.n_nodes))  # every node owned once
    for part in parts:
        assert np.array_equal(part["node_ids"], graph.node_ids)
        assert part["node_ids"].dtype == graph.node_ids.dtype
        assert part["n_edges"] == graph.n_edges
        assert part["weighted"] == graph.weighted
        assert np.array_equal(part["owner"], parts[0]["owner"])
    assert (assemble(parts, "local") != graph.adjacency).nnz == 0
    embedding, mean, fit_seed = reference_fit(graph, dtype)
    assert fit_seed == seed
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(assemble(parts, "rows"), embedding, rtol=0, atol=tolerance)
    np.testing.assert_allclose(parts[0]["mean"], mean, rtol=0, atol=tolerance)
    agreed = [[{key: value for key, value in entry.items() if key != "seconds"} for entry in part["history"]]
              for part in parts]
    assert all(history == agreed[0] for history in agreed)  # the ranks report the same global history
    assert [entry["iteration"] for entry in agreed[0]] == [1, 2, 3]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partitioned")
    in_memory = graph_with_isolated_nodes()
    files = edge_files(folder)
    graphs = {"memory": in_memory, **{name: read_edgelist(path, directed=directed)
                                      for name, (path, directed) in files.items()}}
    seeds = {name: reference_fit(graph, torch.float32)[2] for name, graph in graphs.items()}
    parts = values(run_ranks(partitioned_cases, world_size=2, args=(in_memory, files, seeds)))
    return parts, graphs, seeds, files


@pytest.mark.parametrize("case", [("memory", "hash", torch.float32), ("memory", "range", torch.float32),
                                  ("memory", "hash", torch.float64), ("memory", "range", torch.float64),
                                  ("strings", "hash", torch.float32), ("zero_weights", "hash", torch.float32),
                                  ("directed", "range", torch.float32), ("mixed", "hash", torch.float32)],
                         ids=lambda case: f"{case[0]}-{case[1]}-{str(case[2])[6:]}")
def test_two_ranks_equal_the_in_memory_graph_and_fit(two_ranks, case):
    parts, graphs, seeds, _ = two_ranks
    check_case([part[case] for part in parts], graphs[case[0]], case[2], seeds[case[0]])


def test_partitions_split_the_nodes_as_asked(two_ranks):
    parts, graphs, _, files = two_ranks
    memory = [part[("memory", "range", torch.float32)] for part in parts]
    assert memory[0]["owned"].tolist() == list(range(30)) and memory[1]["owned"].tolist() == list(range(30, 60))
    hashed = [part[("memory", "hash", torch.float32)] for part in parts]
    assert 10 < len(hashed[0]["owned"]) < 50  # a hash spreads the nodes, not a contiguous split
    assert not np.array_equal(hashed[0]["owned"], np.arange(len(hashed[0]["owned"])))
    for part in hashed:  # the halo is exactly the remote columns of the rank's rows
        columns = np.unique(part["local"].indices)
        assert np.array_equal(part["halo"], columns[part["owner"][columns] != part["owner"][part["owned"][0]]])


def test_strings_win_over_integers_across_ranks(two_ranks):
    parts, graphs, _, files = two_ranks
    mixed = [part[("mixed", "hash", torch.float32)] for part in parts]
    assert mixed[0]["node_ids"].dtype == object and "x1" in set(mixed[0]["node_ids"])
    reader = EdgeBlockReader(files["mixed"][0], block_bytes=100)
    rank0_blocks = [block.data for block in reader.blocks(0, 2)]
    assert not any(b"x" in data for data in rank0_blocks)  # rank 0 read integers only


def test_isolated_nodes_and_weight_zero_edges_are_nodes(two_ranks):
    parts, graphs, _, files = two_ranks
    zero = parts[0][("zero_weights", "hash", torch.float32)]
    ids = list(zero["node_ids"])
    assert 90 in ids and 91 in ids
    degree = np.asarray(graphs["zero_weights"].adjacency.sum(axis=1)).ravel()
    assert degree[ids.index(90)] == 0 and degree[ids.index(91)] == 0
    assert (np.asarray(graphs["memory"].adjacency.sum(axis=1)).ravel()[-4:] == 0).all()


def test_the_exchange_moves_only_the_halo_rows(two_ranks):
    parts, _, _, _ = two_ranks
    ring = [part["ring"] for part in parts]
    for part in ring:
        assert part["halo"].size == 2  # a ring split in two ranges: two remote neighbours per rank
        assert np.array_equal(part["received"][:, 0], part["halo"].astype(float))
        all_gather = 2 * 50 * D * 4  # receiving the other rank's 50 rows and sending own 50
        assert 0 < part["bytes"] < all_gather / 10
        assert "halo=2" in part["repr"]
    assert ring[0]["edge_cut"] == pytest.approx(4 / 200)


def test_a_failing_rank_makes_every_rank_raise(tmp_path):
    head = ""
    while len(head) < 100:  # block 0 ends at the first line start at or past byte 100
        head += f"{len(head)} {len(head) + 1}\n"
    bad = tmp_path / "bad.txt"
    bad.write_text(head + "7\n" + "1 2\n" * 50)
    bad_line = head.count("\n") + 1
    blocks = list(EdgeBlockReader(str(bad), block_bytes=100).blocks(0, 1))
    assert blocks[1].data.startswith(b"7\n")  # the bad line opens block 1, which rank 1 reads
    outcomes = run_ranks(failing_cases, world_size=2, args=(str(bad),), env={"TENSORKIT_DIST_TIMEOUT": "20"})
    read = [outcome.value["read"] for outcome in outcomes]
    assert read[1][0] == "EdgeListError" and f"line {bad_line}" in read[1][1] and "bad.txt" in read[1][1]
    assert read[0][0] == "RankFailedError" and "rank 1" in read[0][1] and "reading the edge list" in read[0][1]
    fit = [outcome.value["fit"] for outcome in outcomes]
    assert fit[1] == ("MemoryError", "injected failure")
    assert fit[0][0] == "RankFailedError" and "injected failure" in fit[0][1]


def test_a_world_of_one_equals_the_in_memory_fit(tmp_path):
    graph = graph_with_isolated_nodes(seed=3)
    for dtype, tolerance in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        embedding, mean, seed = reference_fit(graph, dtype)
        parts = PartitionedGraph.from_graph(graph)
        assert parts.owned.tolist() == list(range(graph.n_nodes)) and parts.halo.size == 0
        rows, got_mean, scale, history = fastrp_partitioned(parts, **FIT, seed=seed, dtype=dtype)
        np.testing.assert_allclose(rows.numpy(), embedding, rtol=0, atol=tolerance)
        np.testing.assert_allclose(got_mean.numpy(), mean, rtol=0, atol=tolerance)
        assert [entry["bytes_exchanged"] for entry in history] == [0, 0, 0]
    path = write_lines(tmp_path / "edges.txt", ["a b", "b c", "c a", "d e"])
    parts = PartitionedGraph.from_edgelist(path, block_bytes=4)
    reference = read_edgelist(path)
    assert list(parts.node_ids) == list(reference.node_ids) and parts.n_edges == reference.n_edges
    assert (parts.local != reference.adjacency).nnz == 0 and parts.exchange(torch.ones(5, 2)).shape == (0, 2)
    assert parts.bytes_per_step(D) == 0 and parts.edge_cut == 0.0


def test_self_loops_are_dropped_on_request_as_the_in_memory_reader_does(tmp_path):
    path = write_lines(tmp_path / "edges.txt", ["a a", "a b", "b b", "b c", "d d"])
    for policy in ("keep", "drop"):
        parts = PartitionedGraph.from_edgelist(path, self_loops=policy, block_bytes=4)
        reference = read_edgelist(path, self_loops=policy)
        assert list(parts.node_ids) == list(reference.node_ids) == ["a", "b", "c", "d"]
        assert (parts.local != reference.adjacency).nnz == 0 and parts.n_edges == reference.n_edges
    assert parts.local.diagonal().sum() == 0


def test_bad_arguments_are_named():
    graph = Graph.from_edges(np.array([0, 1]), np.array([1, 2]))
    with pytest.raises(ValueError, match="partition"):
        PartitionedGraph.from_graph(graph, partition="metis")
    with pytest.raises(ValueError, match="values"):
        PartitionedGraph.from_graph(graph).exchange(torch.ones(2, 2))


def four_rank_case(rank, in_memory, seed):
    graph = PartitionedGraph.from_graph(in_memory, partition="hash")
    return {**summary(graph), **embed(graph, seed, torch.float32)}


@pytest.mark.slow
def test_four_ranks_equal_the_in_memory_fit():
    graph = graph_with_isolated_nodes(seed=5)
    seed = reference_fit(graph, torch.float32)[2]
    parts = values(run_ranks(four_rank_case, world_size=4, args=(graph, seed)))
    check_case(parts, graph, torch.float32, seed)
