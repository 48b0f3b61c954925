"""Matrix Market (.mtx) files read as adjacency matrices by read_edgelist, as_graph and graphkit embed."""

import bz2
import gzip
import io

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from graphkit import EdgeListError, FastRP, as_graph, read_edgelist
from graphkit.cli import main

# a_12 = 2, a_21 = 5, a_23 = 1.5, a_44 = 4 (1-based); node 5 (id 4) has no entries
GENERAL = """%%MatrixMarket matrix coordinate real general
% a comment
5 5 4
1 2 2.0
2 1 5
2 3 1.5
4 4 4
"""


def write(tmp_path, name, text, opener=open):
    path = tmp_path / name
    with opener(path, "wt") as handle:
        handle.write(text)
    return path


def dense(graph):
    return graph.adjacency.toarray()


def karate_mtx(tmp_path, name="karate.mtx"):
    adjacency = nx.to_scipy_sparse_array(nx.karate_club_graph(), weight=None)
    path = tmp_path / name
    scipy.io.mmwrite(path, sp.tril(adjacency), field="pattern", symmetry="symmetric")
    return path, adjacency.toarray()


def test_a_directed_read_is_the_matrix_itself_with_every_row_a_node(tmp_path):
    graph = read_edgelist(write(tmp_path, "g.mtx", GENERAL), directed=True)
    expected = np.zeros((5, 5))
    expected[0, 1], expected[1, 0], expected[1, 2], expected[3, 3] = 2.0, 5.0, 1.5, 4.0
    np.testing.assert_array_equal(dense(graph), expected)
    np.testing.assert_array_equal(graph.node_ids, np.arange(5))
    assert graph.directed and graph.weighted


@pytest.mark.parametrize("duplicates, merged", [("max", 5.0), ("sum", 7.0)])
def test_an_undirected_read_merges_aij_and_aji_as_edge_lists_do(tmp_path, duplicates, merged):
    path = write(tmp_path, "g.mtx", GENERAL)
    graph = read_edgelist(path, duplicates=duplicates)
    edge_list = write(tmp_path, "g.txt", "0 1 2.0\n1 0 5\n1 2 1.5\n3 3 4\n")
    reference = read_edgelist(edge_list, duplicates=duplicates)
    assert not graph.directed
    assert dense(graph)[0, 1] == dense(graph)[1, 0] == merged
    np.testing.assert_array_equal(dense(graph)[:4, :4], dense(reference))
    assert graph.n_nodes == 5 and dense(graph)[4].sum() == 0  # the node without entries is kept
    with pytest.raises(EdgeListError, match=r"g\.mtx: entry \(2, 1\) repeats entry \(1, 2\), and "
                                            r"duplicates='error' \(a_ij and a_ji are the same edge"):
        read_edgelist(path, duplicates="error")


def test_symmetric_pattern_karate_is_the_karate_graph_in_every_wrapping(tmp_path):
    path, expected = karate_mtx(tmp_path)
    text = path.read_text()
    wrapped = [path, write(tmp_path, "k.mtx.gz", text, gzip.open), write(tmp_path, "k.mtx.bz2", text, bz2.open),
               write(tmp_path, "karate", text), write(tmp_path, "karate.dat", text, gzip.open)]
    for source in wrapped + [io.BytesIO(text.encode())]:
        graph = read_edgelist(source, duplicates="error")  # each stored entry is one edge
        np.testing.assert_array_equal(dense(graph), expected)
        assert (graph.n_edges, graph.directed, graph.weighted) == (78, False, False)
    directed = read_edgelist(path, directed=True)
    np.testing.assert_array_equal(dense(directed), expected)
    assert directed.n_edges == 156
    np.testing.assert_array_equal(dense(as_graph(str(tmp_path / "karate"))), expected)


def test_array_format_and_integer_values(tmp_path):
    general = write(tmp_path, "a.mtx", "%%MatrixMarket matrix array integer general\n2 2\n0\n3\n7\n0\n")
    np.testing.assert_array_equal(dense(read_edgelist(general, directed=True)), [[0, 7], [3, 0]])
    symmetric = write(tmp_path, "s.mtx", "%%MatrixMarket matrix array real symmetric\n3 3\n1\n2\n0\n0\n0\n5\n")
    graph = read_edgelist(symmetric)  # column-major lower triangle: a11 a21 a31 a22 a32 a33
    np.testing.assert_array_equal(dense(graph), [[1, 2, 0], [2, 0, 0], [0, 0, 5]])
    assert graph.weighted


def test_weighted_false_and_self_loops_drop(tmp_path):
    text = "%%MatrixMarket matrix coordinate real general\n3 3 3\n1 2 0.25\n2 3 0\n3 3 9\n"
    path = write(tmp_path, "g.mtx", text)
    graph = read_edgelist(path, directed=True, weighted=False)
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[2, 2] = 1.0  # the stored zero a_23 is no edge
    np.testing.assert_array_equal(dense(graph), expected)
    assert not graph.weighted
    dropped = read_edgelist(path, directed=True, self_loops="drop")
    assert dropped.n_nodes == 3 and dense(dropped)[2, 2] == 0 and dense(dropped)[0, 1] == 0.25


def test_skew_symmetric_values_are_negative_weights_but_their_pattern_reads(tmp_path):
    path = write(tmp_path, "k.mtx", "%%MatrixMarket matrix coordinate real skew-symmetric\n3 3 1\n3 1 2.5\n")
    with pytest.raises(EdgeListError, match=r"k\.mtx: entry \(1, 3\) is -2\.5; a skew-symmetric matrix mirrors"):
        read_edgelist(path)
    graph = read_edgelist(path, weighted=False)
    np.testing.assert_array_equal(dense(graph), [[0, 0, 1], [0, 0, 0], [1, 0, 0]])


@pytest.mark.parametrize("text, message", [
    ("%%MatrixMarket matrix coordinate real general\n2 3 1\n1 3 1\n",
     r"holds a 2 x 3 coordinate real general matrix; an adjacency matrix must be square"),
    ("%%MatrixMarket matrix coordinate complex hermitian\n2 2 1\n2 1 1 2\n",
     r"holds a complex matrix \(coordinate complex hermitian\); edge weights must be real"),
    ("%%MatrixMarket vector coordinate real general\n3 1\n1 1\n", "holds a vector, not a matrix"),
    ("%%MatrixMarket matrix coordinate real general\n2 2 2\n1 2 1\n", "is not a valid Matrix Market file"),
    ("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 2 nan\n",
     r"entry \(1, 2\) is nan; edge weights must be finite"),
    ("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 2 -1\n",
     r"entry \(1, 2\) is -1; edge weights must be non-negative \(weighted=False reads the non-zero pattern"),
    ("%%MatrixMarket matrix coordinate real general\n0 0 0\n", "holds a 0 x 0 matrix; a graph needs at least one node"),
    ("0 1\n1 2\n", "is not a Matrix Market file: line 1 must be a banner"),
])
def test_bad_files_are_edge_list_errors_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, "bad.mtx", text)
    with pytest.raises(EdgeListError, match=r"bad\.mtx: " + message):
        read_edgelist(path)


def test_options_that_do_not_apply_are_refused(tmp_path):
    pattern = write(tmp_path, "p.mtx", "%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 2\n")
    with pytest.raises(EdgeListError, match=r"p\.mtx: weighted=True, but it is a pattern matrix"):
        read_edgelist(pattern, weighted=True)
    with pytest.raises(EdgeListError, match=r"p\.mtx: node_type=str does not apply to a Matrix Market file"):
        read_edgelist(pattern, node_type=str)
    with pytest.raises(EdgeListError, match=r"p\.mtx: weight_column=2 does not apply"):
        read_edgelist(pattern, weight_column=2)


def test_fastrp_and_graphkit_embed_read_mtx_as_the_same_graph_as_an_edge_list(tmp_path, capsys):
    path, expected = karate_mtx(tmp_path)
    edges = tmp_path / "karate.txt"
    rows, cols = np.nonzero(np.triu(expected))
    edges.write_text("".join(f"{u} {v}\n" for u, v in zip(rows, cols)))
    np.testing.assert_array_equal(FastRP(n_components=8, random_state=0, verbose=0, device="cpu").fit_transform(path),
                                  FastRP(n_components=8, random_state=0, verbose=0, device="cpu").fit_transform(edges))
    outputs = []
    for source in (path, edges):
        out = tmp_path / f"{source.stem}_{source.suffix[1:]}.csv"
        assert main(["embed", str(source), "--dim", "8", "--seed", "1", "--device", "cpu", "--out", str(out)]) == 0
        outputs.append(pd.read_csv(out))
    assert "Matrix Market coordinate pattern symmetric, 34 x 34" in capsys.readouterr().err
    np.testing.assert_array_equal(outputs[0]["id"], np.arange(34))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])


def test_graphkit_embed_refuses_mtx_out_of_core(tmp_path, capsys):
    path, _ = karate_mtx(tmp_path)
    assert main(["embed", str(path), "--memory-budget", "2GB", "--out", str(tmp_path / "e.npy"), "-q"]) == 2
    error = capsys.readouterr().err
    assert "a Matrix Market file is read whole, but --memory-budget reads edge lists in blocks" in error
