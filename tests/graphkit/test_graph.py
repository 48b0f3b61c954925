"""Tests of graphkit.graph (the Graph type and its constructors) and graphkit.io.as_graph."""

import pickle
import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.graph import Graph
from graphkit.io import as_graph


# -- references -----------------------------------------------------------------------------------

def dense_reference(rows, cols, weights, n_nodes, directed, duplicates):
    """The adjacency built entry by entry, the obvious slow way."""
    dense = np.zeros((n_nodes, n_nodes))
    weights = np.ones(len(rows)) if weights is None else weights
    for row, col, weight in zip(rows, cols, weights):
        if weight == 0:
            continue
        if not directed and row > col:
            row, col = col, row
        if duplicates == "sum":
            dense[row, col] += weight
        else:
            dense[row, col] = max(dense[row, col], weight)
    if not directed:
        dense = np.triu(dense) + np.triu(dense, k=1).T
    return dense


def random_edges(rng, n_nodes, n_edges, weighted=True):
    rows = rng.integers(0, n_nodes, n_edges)
    cols = rng.integers(0, n_nodes, n_edges)
    weights = rng.integers(1, 5, n_edges).astype(float) if weighted else None
    return rows, cols, weights


def assert_same_graph(left, right):
    """Same nodes, same directedness and the same weighted edges, whatever the node order."""
    assert left.directed == right.directed
    assert sorted(left.node_ids.tolist(), key=repr) == sorted(right.node_ids.tolist(), key=repr)
    order = right.index_of(left.node_ids)
    np.testing.assert_array_equal(
        left.adjacency.toarray(), right.adjacency.toarray()[np.ix_(order, order)]
    )


def assert_canonical(graph):
    adjacency = graph.adjacency
    assert isinstance(adjacency, sp.csr_matrix)
    assert adjacency.dtype == np.float64
    assert adjacency.has_sorted_indices
    assert np.all(adjacency.data != 0)
    assert adjacency.nnz == sp.csr_matrix(adjacency.toarray()).nnz  # no repeated entries


# -- from_edges -----------------------------------------------------------------------------------

@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("duplicates", ["max", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_from_edges_matches_dense_reference(directed, duplicates, weighted):
    rng = np.random.default_rng(0)
    rows, cols, weights = random_edges(rng, 12, 80, weighted)  # many repeats and self loops
    graph = Graph.from_edges(rows, cols, weights, directed=directed, n_nodes=12,
                             duplicates=duplicates)
    expected = dense_reference(rows, cols, weights, 12, directed, duplicates)
    np.testing.assert_array_equal(graph.adjacency.toarray(), expected)
    assert_canonical(graph)
    assert graph.directed is directed


def test_from_edges_sum_agrees_with_scipy_on_a_larger_graph():
    rng = np.random.default_rng(1)
    rows, cols, weights = random_edges(rng, 2_000, 50_000)
    graph = Graph.from_edges(rows, cols, weights, directed=True, n_nodes=2_000, duplicates="sum")
    expected = sp.coo_matrix((weights, (rows, cols)), shape=(2_000, 2_000)).tocsr()
    assert abs(graph.adjacency - expected).max() == 0


def test_undirected_adjacency_is_symmetric_and_counts_edges_once():
    rng = np.random.default_rng(2)
    rows, cols, weights = random_edges(rng, 30, 200)
    graph = Graph.from_edges(rows, cols, weights, n_nodes=30)
    dense = graph.adjacency.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    assert graph.n_edges == np.count_nonzero(np.triu(dense))


def test_both_directions_of_an_undirected_edge_max_keeps_sum_adds():
    src, dst, weight = [0, 1], [1, 0], [2.0, 3.0]
    by_max = Graph.from_edges(src, dst, weight)
    by_sum = Graph.from_edges(src, dst, weight, duplicates="sum")
    assert by_max.adjacency[0, 1] == by_max.adjacency[1, 0] == 3.0
    assert by_sum.adjacency[0, 1] == by_sum.adjacency[1, 0] == 5.0
    assert by_max.n_edges == by_sum.n_edges == 1
    unweighted = Graph.from_edges(src, dst)
    assert unweighted.adjacency[0, 1] == 1.0 and not unweighted.weighted
    counted = Graph.from_edges(src, dst, duplicates="sum")
    assert counted.adjacency[0, 1] == 2.0 and counted.weighted
    directed = Graph.from_edges(src, dst, weight, directed=True)
    assert directed.adjacency[0, 1] == 2.0 and directed.adjacency[1, 0] == 3.0


def test_duplicates_error_names_the_repeated_edge():
    with pytest.raises(ValueError, match=r"edge 1 \('b', 'a'\) repeats edge 0 \('a', 'b'\)"):
        Graph.from_edges(["a", "b", "c"], ["b", "a", "a"], duplicates="error")
    # The same two lines are different edges of a directed graph.
    graph = Graph.from_edges(["a", "b"], ["b", "a"], directed=True, duplicates="error")
    assert graph.n_edges == 2


def test_self_loops_keep_and_drop():
    src, dst = [0, 1, 2, 2], [0, 2, 2, 1]
    kept = Graph.from_edges(src, dst)
    assert kept.adjacency[0, 0] == 1 and kept.adjacency[2, 2] == 1
    assert kept.n_edges == 3  # loops 0-0 and 2-2 once each, edge 1-2 once
    assert kept.degrees().tolist() == [1.0, 1.0, 2.0]
    dropped = Graph.from_edges(src, dst, self_loops="drop")
    assert dropped.adjacency.diagonal().sum() == 0
    assert dropped.n_edges == 1
    assert dropped.n_nodes == 3  # node 0 is only in a dropped self loop, but stays a node


def test_node_ids_are_sorted_distinct_endpoints():
    graph = Graph.from_edges(["carol", "alice"], ["bob", "carol"])
    assert graph.node_ids.tolist() == ["alice", "bob", "carol"]
    assert graph.adjacency[graph.index_of("carol"), graph.index_of("bob")] == 1
    sparse_ids = Graph.from_edges([10, 500], [500, 7])
    assert sparse_ids.node_ids.tolist() == [7, 10, 500]
    huge_ids = Graph.from_edges([10**12, 3], [3, 5])
    assert huge_ids.node_ids.tolist() == [3, 5, 10**12]


def test_n_nodes_makes_integer_ids_positions():
    graph = Graph.from_edges([0, 3], [3, 1], n_nodes=6)
    assert graph.node_ids.tolist() == list(range(6))
    assert graph.degrees().tolist() == [1, 1, 0, 2, 0, 0]
    with pytest.raises(ValueError, match="7.*n_nodes=6"):
        Graph.from_edges([0, 7], [1, 2], n_nodes=6)
    with pytest.raises(ValueError, match="n_nodes=5"):
        Graph.from_edges(["a"], ["b"], n_nodes=5)


def test_given_node_ids_are_looked_up():
    graph = Graph.from_edges(["y", "x"], ["z", "y"], node_ids=["z", "y", "x", "lonely"])
    assert graph.node_ids.tolist() == ["z", "y", "x", "lonely"]
    assert graph.adjacency[1, 0] == 1 and graph.adjacency[2, 1] == 1
    assert graph.degrees()[3] == 0
    with pytest.raises(ValueError, match="'w'"):
        Graph.from_edges(["y", "w"], ["z", "y"], node_ids=["z", "y", "x"])


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_invalid_weights_raise(bad):
    with pytest.raises(ValueError, match="finite and non-negative"):
        Graph.from_edges([0, 1], [1, 2], [1.0, bad])


def test_zero_weight_edges_are_dropped_but_nodes_kept():
    graph = Graph.from_edges([0, 1], [1, 2], [0.0, 2.0])
    assert graph.n_nodes == 3 and graph.n_edges == 1
    assert graph.adjacency[0, 1] == 0


def test_from_edges_rejects_mismatched_lengths_and_bad_options():
    with pytest.raises(ValueError, match="same length"):
        Graph.from_edges([0, 1], [1])
    with pytest.raises(ValueError, match="one value per edge"):
        Graph.from_edges([0, 1], [1, 2], [1.0])
    with pytest.raises(ValueError, match="duplicates"):
        Graph.from_edges([0], [1], duplicates="min")
    with pytest.raises(ValueError, match="self_loops"):
        Graph.from_edges([0], [1], self_loops="remove")
    with pytest.raises(ValueError, match="integers or strings"):
        Graph.from_edges([0.5], [1.0])


def test_integral_float_and_mixed_ids():
    graph = Graph.from_edges(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert graph.node_ids.dtype.kind == "i"
    mixed = Graph.from_edges([1, "a"], ["a", 2])
    assert set(mixed.node_ids.tolist()) == {1, 2, "a"}  # 1 is not turned into "1"


# -- the constructor ------------------------------------------------------------------------------

def test_constructor_rejects_asymmetric_undirected_adjacency():
    asymmetric = sp.csr_matrix(np.array([[0, 1], [0, 0]]))
    with pytest.raises(ValueError, match="symmetric"):
        Graph(asymmetric)
    with pytest.raises(ValueError, match="symmetric"):
        Graph(sp.csr_matrix(np.array([[0, 1], [2, 0]])), directed=False)
    assert Graph(asymmetric, directed=True).n_edges == 1


def test_constructor_canonicalises_any_sparse_format():
    # Repeated COO entries are summed; explicit zeros go; indices come out sorted.
    coo = sp.coo_matrix(([1.0, 1.0, 0.0, 2.0, 2.0], ([0, 0, 1, 1, 2], [2, 2, 1, 2, 1])),
                        shape=(3, 3))
    graph = Graph(coo, node_ids=["a", "b", "c"], directed=True)
    assert_canonical(graph)
    np.testing.assert_array_equal(graph.adjacency.toarray(),
                                  [[0, 0, 2], [0, 0, 2], [0, 2, 0]])
    assert graph.n_edges == 3
    assert graph.weighted
    assert graph.adjacency is not coo


def test_constructor_checks_its_input():
    with pytest.raises(TypeError, match="scipy.sparse"):
        Graph(np.eye(2))
    with pytest.raises(ValueError, match="square"):
        Graph(sp.csr_matrix((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        Graph(sp.csr_matrix(np.array([[0, -1], [-1, 0]])))
    with pytest.raises(ValueError, match="unique.*'a'"):
        Graph(sp.identity(3, format="csr"), node_ids=["a", "b", "a"])
    with pytest.raises(ValueError, match="one id per node"):
        Graph(sp.identity(3, format="csr"), node_ids=["a", "b"])


def test_weighted_flag_default_and_override():
    unit = sp.csr_matrix(np.array([[0, 1], [1, 0]]))
    assert not Graph(unit).weighted
    assert Graph(unit, weighted=True).weighted
    assert Graph(2.5 * unit).weighted


# -- queries --------------------------------------------------------------------------------------

@pytest.mark.parametrize("directed", [False, True])
def test_degrees_equal_dense_row_and_column_sums(directed):
    rng = np.random.default_rng(3)
    rows, cols, weights = random_edges(rng, 15, 60)
    graph = Graph.from_edges(rows, cols, weights, directed=directed, n_nodes=15)
    dense = graph.adjacency.toarray()
    np.testing.assert_allclose(graph.degrees(), dense.sum(axis=1))
    np.testing.assert_allclose(graph.degrees(direction="in"), dense.sum(axis=0))
    np.testing.assert_array_equal(graph.degrees(weighted=False), (dense != 0).sum(axis=1))
    np.testing.assert_array_equal(graph.degrees(weighted=False, direction="in"),
                                  (dense != 0).sum(axis=0))
    assert graph.degrees().dtype == np.float64
    with pytest.raises(ValueError, match="direction"):
        graph.degrees(direction="both")


def test_index_of_is_vectorised_and_rejects_unknown_ids():
    ids = np.array([f"n{i}" for i in range(1000)], dtype=object)
    graph = Graph(sp.identity(1000, format="csr"), node_ids=ids)
    query = ids[::-7]
    np.testing.assert_array_equal(graph.index_of(query), np.arange(1000)[::-7])
    assert int(graph.index_of("n5")) == 5
    with pytest.raises(ValueError, match="'nope'"):
        graph.index_of(["n1", "nope", "n2"])
    int_graph = Graph.from_edges([3, 5], [5, 9])
    np.testing.assert_array_equal(int_graph.index_of([9, 3]), [2, 0])
    with pytest.raises(ValueError, match="4"):
        int_graph.index_of([4])
    with pytest.raises(ValueError, match="'3'"):
        int_graph.index_of(["3"])  # a string is not the integer id 3


def test_repr():
    graph = Graph.from_edges([0, 1], [1, 2], directed=True)
    assert repr(graph) == "Graph(n_nodes=3, n_edges=2, directed=True, weighted=False)"


def test_pickle_round_trip():
    graph = Graph.from_edges(["a", "b", "c"], ["b", "c", "a"], [1.0, 2.0, 3.0], directed=True)
    graph.index_of(["a"])  # builds the lookup cache, which must not break pickling
    restored = pickle.loads(pickle.dumps(graph))
    assert (restored.adjacency != graph.adjacency).nnz == 0
    assert restored.node_ids.tolist() == graph.node_ids.tolist()
    assert (restored.directed, restored.weighted) == (True, True)
    np.testing.assert_array_equal(restored.index_of(["c", "a"]), [2, 0])


# -- conversions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [torch.sparse_csr, torch.sparse_coo])
def test_to_torch_equals_dense_adjacency(layout):
    rng = np.random.default_rng(4)
    graph = Graph.from_edges(*random_edges(rng, 10, 30), n_nodes=10)
    tensor = graph.to_torch(device="cpu", dtype=torch.float64, layout=layout)
    assert tensor.layout == layout
    np.testing.assert_array_equal(tensor.to_dense().numpy(), graph.adjacency.toarray())
    assert graph.to_torch().dtype == torch.float32


def test_to_scipy_returns_an_independent_copy():
    graph = Graph.from_edges([0], [1])
    copy = graph.to_scipy()
    copy.data[:] = 9
    assert graph.adjacency[0, 1] == 1


def test_networkx_round_trip_keeps_ids_weights_loops_and_isolated_nodes():
    graph = Graph.from_edges(["a", "b", "c"], ["b", "c", "c"], [2.0, 3.0, 4.0],
                             node_ids=["c", "a", "b", "d"])
    nx_graph = graph.to_networkx()
    assert list(nx_graph.nodes) == ["c", "a", "b", "d"]
    assert nx_graph["c"]["c"]["weight"] == 4.0 and nx_graph["a"]["b"]["weight"] == 2.0
    assert nx_graph.number_of_edges() == graph.n_edges
    restored = Graph.from_networkx(nx_graph)
    assert restored.node_ids.tolist() == ["c", "a", "b", "d"]
    np.testing.assert_array_equal(restored.adjacency.toarray(), graph.adjacency.toarray())
    directed = Graph.from_edges([0, 1], [1, 0], [1.0, 5.0], directed=True).to_networkx()
    assert isinstance(directed, nx.DiGraph) and directed[1][0]["weight"] == 5.0


@pytest.mark.parametrize("directed", [False, True])
def test_from_networkx_equals_from_edges(directed):
    rng = np.random.default_rng(5)
    names = np.array([f"v{i}" for i in range(12)])
    rows, cols, weights = random_edges(rng, 12, 30)
    nx_graph = nx.DiGraph() if directed else nx.Graph()
    for u, v, w in zip(names[rows], names[cols], weights):
        if nx_graph.has_edge(u, v):
            w = max(w, nx_graph[u][v]["weight"])
        nx_graph.add_edge(u, v, weight=w)
    expected = Graph.from_edges(names[rows], names[cols], weights, directed=directed)
    assert_same_graph(Graph.from_networkx(nx_graph), expected)
    unweighted = Graph.from_networkx(nx_graph, weight=None)
    assert not unweighted.weighted


def test_from_networkx_keeps_tuple_ids():
    graph = Graph.from_networkx(nx.grid_2d_graph(2, 3))
    assert graph.n_nodes == 6 and graph.n_edges == 7
    assert graph.node_ids[0] == (0, 0)
    assert int(graph.index_of([(1, 2)])[0]) == list(nx.grid_2d_graph(2, 3)).index((1, 2))


def test_from_scipy_infers_direction():
    symmetric = sp.coo_matrix(np.array([[0, 2.0], [2.0, 0]]))
    assert not Graph.from_scipy(symmetric).directed
    assert Graph.from_scipy(sp.csc_matrix(np.array([[0, 1.0], [0, 0]]))).directed
    assert Graph.from_scipy(symmetric, directed=True).directed
    with pytest.raises(ValueError, match="symmetric"):
        Graph.from_scipy(sp.csr_matrix(np.array([[0, 1.0], [0, 0]])), directed=False)
    named = Graph.from_scipy(symmetric, node_ids=["p", "q"])
    assert named.node_ids.tolist() == ["p", "q"]


def test_from_pyg_edge_index_and_data():
    from torch_geometric.data import Data

    both_ways = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    graph = Graph.from_pyg(both_ways)
    assert not graph.directed
    assert_same_graph(graph, Graph.from_edges([0, 1], [1, 2]))
    one_way = torch.tensor([[0, 1], [1, 2]])
    assert Graph.from_pyg(one_way).directed
    assert_same_graph(Graph.from_pyg(one_way, directed=False), Graph.from_edges([0, 1], [1, 2]))

    weights = torch.tensor([1.0, 1.0, 3.0, 3.0])
    data = Data(edge_index=both_ways, edge_weight=weights, num_nodes=5)
    from_data = Graph.from_pyg(data)
    expected = Graph.from_edges([0, 1], [1, 2], [1.0, 3.0], n_nodes=5)
    np.testing.assert_array_equal(from_data.adjacency.toarray(), expected.adjacency.toarray())
    with_attr = Graph.from_pyg(Data(edge_index=both_ways, edge_attr=weights))
    assert with_attr.weighted and with_attr.n_nodes == 3
    with pytest.raises(ValueError, match="shape"):
        Graph.from_pyg(torch.tensor([[0, 1, 2]]))


# -- as_graph -------------------------------------------------------------------------------------

AS_GRAPH_SRC, AS_GRAPH_DST = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
AS_GRAPH_WEIGHT = np.array([1.0, 2.0, 3.0, 4.0])


def as_graph_input(kind, tmp_path):
    """The weighted 4-cycle 0-1-2-3-0 in the form ``kind``."""
    from torch_geometric.data import Data

    src, dst, weight = AS_GRAPH_SRC, AS_GRAPH_DST, AS_GRAPH_WEIGHT
    if kind == "tuple":
        return src, dst, weight
    if kind == "list":
        return [src.tolist(), dst.tolist(), weight.tolist()]
    if kind == "array":
        return np.c_[src, dst, weight]
    if kind == "scipy":
        return sp.coo_matrix((np.r_[weight, weight], (np.r_[src, dst], np.r_[dst, src])))
    if kind == "networkx":
        nx_graph = nx.Graph()
        nx_graph.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), weight.tolist()))
        return nx_graph
    if kind == "pyg":
        edge_index = torch.tensor(np.r_[np.c_[src, dst], np.c_[dst, src]].T)
        return Data(edge_index=edge_index, edge_weight=torch.tensor(np.r_[weight, weight]))
    path = tmp_path / "edges.txt"
    np.savetxt(path, np.c_[src, dst, weight], fmt=["%d", "%d", "%g"])
    return path if kind == "path" else str(path)


@pytest.mark.parametrize(
    "kind", ["tuple", "list", "array", "scipy", "networkx", "pyg", "path", "str path"]
)
def test_as_graph_gives_the_same_adjacency_for_every_input_kind(kind, tmp_path):
    expected = Graph.from_edges(AS_GRAPH_SRC, AS_GRAPH_DST, AS_GRAPH_WEIGHT)
    graph = as_graph(as_graph_input(kind, tmp_path))
    assert_same_graph(graph, expected)
    assert graph.weighted


def test_as_graph_unweighted_inputs_and_graphs():
    expected = Graph.from_edges(AS_GRAPH_SRC, AS_GRAPH_DST, AS_GRAPH_WEIGHT)
    assert as_graph(expected) is expected
    unweighted = as_graph(np.c_[AS_GRAPH_SRC, AS_GRAPH_DST])
    np.testing.assert_array_equal(unweighted.adjacency.toarray(),
                                  (expected.adjacency.toarray() > 0).astype(float))
    edge_index = torch.tensor(np.c_[AS_GRAPH_SRC, AS_GRAPH_DST].T)
    assert_same_graph(as_graph(edge_index),
                      Graph.from_edges(AS_GRAPH_SRC, AS_GRAPH_DST, directed=True))


def test_as_graph_directed_and_weighted_options():
    directed = as_graph(([0, 1], [1, 0], [1.0, 2.0]), directed=True)
    assert directed.directed and directed.adjacency[1, 0] == 2.0
    unit = as_graph(directed, weighted=False)
    assert not unit.weighted and set(unit.adjacency.data) == {1.0}
    assert directed.adjacency[1, 0] == 2.0  # the input is left alone
    with pytest.raises(ValueError, match="directed"):
        as_graph(directed, directed=False)
    with pytest.raises(ValueError, match="directed"):
        as_graph(nx.Graph([(0, 1)]), directed=True)


def test_as_graph_reads_square_arrays_as_adjacency():
    dense = np.array([[0, 1, 0], [1, 0, 2], [0, 2, 0]], dtype=float)
    graph = as_graph(dense)
    np.testing.assert_array_equal(graph.adjacency.toarray(), dense)
    assert not graph.directed and graph.weighted
    np.testing.assert_array_equal(as_graph(torch.tensor(dense)).adjacency.toarray(), dense)
    edges = as_graph(np.array([[0, 1], [1, 2], [2, 3]]))  # not square: an edge list
    assert edges.n_nodes == 4 and edges.n_edges == 3


def test_as_graph_rejects_unknown_and_empty_input():
    with pytest.raises(TypeError, match="networkx graph"):
        as_graph({"edges": [(0, 1)]})
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        as_graph(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="graph has no nodes"):
        as_graph(sp.csr_matrix((0, 0)))
    with pytest.raises(ValueError, match="graph has no nodes"):
        as_graph(([], []))
    with pytest.raises(ValueError, match="graph has no nodes"):
        as_graph(nx.Graph())


# -- input integrity (issue 32) -------------------------------------------------------------------

def test_uint64_and_int64_id_arrays_do_not_merge_through_float64():
    big = np.array([18446744073709551615, 18446744073709551614], dtype=np.uint64)
    graph = Graph.from_edges(big, np.array([1, 1], dtype=np.int64))
    assert graph.node_ids.dtype == np.uint64
    assert graph.node_ids.tolist() == [1, 18446744073709551614, 18446744073709551615]
    mixed = Graph.from_edges(np.array([2**63 + 5], dtype=np.uint64), np.array([-1]))
    assert mixed.node_ids.tolist() == [-1, 2**63 + 5]


def test_floating_point_ids_beyond_exact_integers_are_refused():
    with pytest.raises(ValueError, match=r"src holds floating-point ids beyond 2\*\*53"):
        Graph.from_edges(np.array([2.0**60, 1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"beyond 2\*\*24"):
        Graph.from_edges(np.array([0, 1], dtype=np.float32), np.array([2**25, 1], dtype=np.float32))


@pytest.mark.parametrize("make", [
    lambda: Graph(sp.csr_matrix(np.array([[0, 1 + 1j], [1 + 1j, 0]]))),
    lambda: Graph.from_scipy(sp.csr_matrix(np.array([[0, 2j], [2j, 0]]))),
    lambda: as_graph(np.array([[0, 1j], [1j, 0]])),
    lambda: as_graph(torch.tensor([[0, 1j], [1j, 0]])),
    lambda: as_graph(([0, 1], [1, 2], np.array([1 + 2j, 1]))),
    lambda: Graph.from_edges([0, 1], [1, 2], [1 + 2j, 1]),
])
def test_complex_input_is_refused_before_any_cast(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning would mean a cast happened first
        with pytest.raises(TypeError, match="must hold real numbers; got complex"):
            make()


def test_a_sparse_edge_index_allocates_by_its_edges_not_its_largest_index():
    import tracemalloc

    tracemalloc.start()
    graph = as_graph(torch.tensor([[0, 30_000_000], [1, 2]]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert graph.n_nodes == 4 and graph.node_ids.tolist() == [0, 1, 2, 30_000_000]
    assert peak < 10_000_000  # bytes; PyG's largest-index-plus-one would take hundreds of MB
    dense = as_graph(torch.tensor([[0, 5], [1, 2]]))
    assert dense.node_ids.tolist() == list(range(6))  # small indices: isolated nodes kept


def test_graph_module_imports_no_reader():
    # graphkit.io builds Graphs, so graph.py (and the helpers it uses) must not import it back.
    import ast
    import importlib
    import inspect

    for name in ("graphkit.graph", "graphkit._edges"):
        tree = ast.parse(inspect.getsource(importlib.import_module(name)))
        imported = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        assert "graphkit.io" not in imported and "graphkit" not in imported, name
