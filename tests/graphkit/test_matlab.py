"""MATLAB .mat files as graphs: the adjacency variable found or named, the same graph as the edge
list of the same matrix, clear errors for what cannot be read; `graphkit embed x.mat`."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from graphkit import read_edgelist
from graphkit._matlab_layout import check_layout
from graphkit.cli import main
from graphkit.io import EdgeListError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "graphs"


@pytest.fixture
def karate(tmp_path):
    adjacency = nx.to_scipy_sparse_array(nx.karate_club_graph(), weight="weight", format="csc").astype(np.float64)
    labels = sp.csc_matrix(np.eye(34)[:, :4])
    path = tmp_path / "karate.mat"
    scipy.io.savemat(path, {"network": sp.csc_matrix(adjacency), "group": labels})
    edges = tmp_path / "karate.txt"
    rows, cols = sp.triu(adjacency).nonzero()
    edges.write_text("".join(f"{u} {v} {adjacency[u, v]:g}\n" for u, v in zip(rows, cols)))
    return path, edges, adjacency


def test_the_adjacency_variable_gives_the_graph_of_the_same_edge_list(karate):
    path, edges, adjacency = karate
    graph, reference = read_edgelist(path), read_edgelist(edges)
    assert graph.node_ids.tolist() == list(range(34)) and graph.weighted
    assert (graph.adjacency != reference.adjacency).nnz == 0 and graph.n_edges == 78
    unweighted = read_edgelist(path, weighted=False)
    assert not unweighted.weighted and set(unweighted.adjacency.data) == {1.0}
    directed = read_edgelist(path, directed=True)
    assert directed.n_edges == 156   # both stored entries of every undirected edge


def test_the_variable_is_found_or_named_and_bad_choices_say_what_the_file_holds(tmp_path):
    ring = sp.csc_matrix(nx.to_scipy_sparse_array(nx.cycle_graph(5)).astype(float))
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"first": ring, "second": np.eye(3), "features": np.ones((5, 2))})
    with pytest.raises(EdgeListError, match=r"several square matrices \(first, second\).*--mat-variable"):
        read_edgelist(path)
    assert read_edgelist(path, variable="first").n_edges == 5
    assert read_edgelist(path, variable="second").n_nodes == 3   # dense: only self loops
    with pytest.raises(EdgeListError, match=r"no numeric matrix named 'missing'.*features \(5 x 2\)"):
        read_edgelist(path, variable="missing")
    with pytest.raises(EdgeListError, match="'features' is 5 x 2; an adjacency matrix must be square"):
        read_edgelist(path, variable="features")
    named = tmp_path / "named.mat"
    scipy.io.savemat(named, {"A": ring, "other": np.eye(2)})   # HARP's name for the adjacency
    assert read_edgelist(named).n_edges == 5
    edges = tmp_path / "edges.txt"
    edges.write_text("1 2\n")
    with pytest.raises(EdgeListError, match="MATLAB"):
        read_edgelist(edges, variable="A")


@pytest.mark.parametrize("matrix, message", [
    (np.array([[0, 1j], [1j, 0]]), "complex"),
    (np.array([[0.0, -1.0], [-1.0, 0.0]]), "non-negative"),
    (np.array([[0.0, np.inf], [np.inf, 0.0]]), "finite"),
    (np.ones((2, 3)), "no square numeric matrix"),
])
def test_values_that_are_no_weights_are_refused_with_the_file_named(tmp_path, matrix, message):
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, {"M": matrix})
    with pytest.raises(EdgeListError, match=message) as caught:
        read_edgelist(path)
    assert "bad.mat" in str(caught.value)


def test_a_version_7_3_file_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "new.mat"
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 2026 HDF5 schema 1.00 .".ljust(116)
    path.write_bytes(header + b"\0" * 8 + b"\x00\x02IM" + b"\0" * 512)
    with pytest.raises(EdgeListError, match="7.3 file \\(HDF5\\).*-v7"):
        read_edgelist(path)
    renamed = tmp_path / "no_suffix"
    renamed.write_bytes(path.read_bytes())   # recognised by its header, whatever the name
    with pytest.raises(EdgeListError, match="7.3"):
        read_edgelist(renamed)


def test_embed_reads_a_mat_file_as_it_reads_the_same_edge_list(karate, tmp_path, capsys):
    path, edges, _ = karate
    outputs = []
    for source in (path, edges):
        out = tmp_path / f"{source.stem}_{source.suffix[1:]}.npz"
        assert main(["embed", str(source), "--dim", "8", "--seed", "2", "--out", str(out)]) == 0
        with np.load(out) as archive:
            outputs.append((archive["ids"], archive["embedding"]))
    assert "MATLAB file, variable 'network' (34 x 34, sparse)" in capsys.readouterr().err
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])
    assert main(["embed", str(path), "--mat-variable", "group"]) == 2
    assert "'group' is 34 x 4" in capsys.readouterr().err
    assert main(["embed", str(path), "--memory-budget", "1GB", "--out", str(tmp_path / "e.npy")]) == 2
    assert "a MATLAB file is read whole" in capsys.readouterr().err


@pytest.mark.slow
def test_blogcatalog_from_its_mat_file_equals_its_edge_list():
    mat, edges = DATA / "blogcatalog" / "blogcatalog.mat", DATA / "blogcatalog" / "blogcatalog.edgelist"
    if not (mat.exists() and edges.exists()):
        pytest.skip(f"BlogCatalog not found in {DATA}")
    graph, reference = read_edgelist(mat), read_edgelist(edges)
    assert graph.n_nodes == 10_312 and graph.n_edges == 333_983
    order = np.argsort(reference.node_ids)   # the edge list numbers nodes as the matrix rows, from 0 or 1
    offset = int(reference.node_ids.min())
    assert np.array_equal(reference.node_ids[order] - offset, np.arange(graph.n_nodes))
    assert (graph.adjacency.astype(bool) != reference.adjacency.astype(bool)).nnz == 0


def every_kind_of_variable():
    """One variable of each array class SciPy writes: the layout check must pass all of them."""
    ring = sp.csc_matrix(nx.to_scipy_sparse_array(nx.cycle_graph(5)).astype(float))
    return {"network": ring, "dense": np.eye(4), "ints": np.arange(6, dtype=np.int16).reshape(2, 3),
            "complex": np.ones((2, 2)) * 1j, "logical": np.eye(3) > 0, "text": "hello",
            "cells": np.array([[np.eye(2), "x"]], dtype=object),
            "record": {"a": np.eye(3), "b": sp.eye(3, format="csc")},
            "sparse_logical": sp.csc_matrix(np.eye(4) > 0), "sparse_complex": ring * 1j,
            "empty": np.zeros((0, 3))}


@pytest.mark.parametrize("compressed", [False, True])
def test_every_kind_of_variable_passes_the_layout_check(tmp_path, compressed):
    path = tmp_path / "kinds.mat"
    scipy.io.savemat(path, every_kind_of_variable(), do_compression=compressed)
    check_layout(path.read_bytes())
    assert read_edgelist(path, variable="network").n_edges == 5


def damaged(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def test_damaged_files_that_crash_scipys_reader_are_refused_before_it(tmp_path):
    """Damages found by fuzzing (SciPy 1.17): the first two end the process with a segmentation
    fault inside scipy.io.loadmat, the third loads as a sparse matrix with a row index out of
    bounds (which later operations read past; SciPy issue 8778), the rest SciPy refuses with an
    OSError. The layout check names each, with the file."""
    ring = sp.csc_matrix(nx.to_scipy_sparse_array(nx.cycle_graph(5)).astype(float))
    path = tmp_path / "ring.mat"
    scipy.io.savemat(path, {"network": ring}, do_compression=False)
    data = path.read_bytes()
    # The layout SciPy writes: the variable's tag at 128, then flags (136), dimensions (152),
    # name (168), row indices (184), column pointers, values.
    assert np.frombuffer(data, "<u4", count=2, offset=184).tolist() == [5, 40]
    scipy.io.savemat(path, {"M": np.eye(3) > 0, "s": "hello"}, do_compression=False)
    logical_then_text = path.read_bytes()
    complex_flag = bytes([logical_then_text[145] | 0x08])
    cases = {
        "unknown element type": (damaged(data, 184, b"\x5f"), "has type 95, which the format does not define"),
        "complex flag, no imaginary part": (damaged(logical_then_text, 145, complex_flag), "lacks its imaginary part"),
        "row index out of range": (damaged(data, 192, np.int32(9).tobytes()), "out of range for a 5 x 5"),
        "element past its container": (damaged(data, 188, np.uint32(4000).tobytes()), "declares 4000 bytes"),
        "truncated": (data[:300], "truncated or damaged"),
        "header only": (data[:100], "shorter than the 128-byte header"),
    }
    for name, (content, message) in cases.items():
        path.write_bytes(content)
        with pytest.raises(EdgeListError, match=message) as caught:
            read_edgelist(path)
        assert "ring.mat" in str(caught.value), name
