"""Property-based tests of graphkit's edge-list reader and graph constructors (issue 32).

Well-formed edge lists round-trip exactly (node set, edges, weights to the last bit) for every
delimiter, header, compression, id kind, and through a stream; any bytes at all give a graph or
an :class:`EdgeListError` naming the file, never another exception.
"""

import bz2
import gzip
import io
import lzma

import numpy as np
import scipy.io
import scipy.sparse as sp
from hypothesis import given, strategies as st

from graphkit import EdgeListError, Graph, read_edgelist
from graphkit._edgelist_format import COLUMN_NAMES

INT64, UINT64 = np.iinfo(np.int64), np.iinfo(np.uint64)
COMPRESSORS = {"none": lambda data: data, "gzip": gzip.compress, "bz2": bz2.compress,
               "xz": lzma.compress}
DELIMITERS = {" ": " ", "spaces": "   ", "\t": "\t", ",": ",", ";": ";"}

integer_ids = st.one_of(
    st.integers(-1000, 1000),
    st.integers(INT64.min, INT64.max),
    st.integers(0, int(UINT64.max)),
)
# Names: a letter somewhere (so never read as an integer), none of the characters that delimit,
# quote or comment, and never a common column name (a first edge "u v" reads as a header).
name_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
                           exclude_characters='#",;\t\ufeff\x85'),
    min_size=1, max_size=8,
).filter(lambda s: any(c.isalpha() for c in s) and s.lower() not in COLUMN_NAMES and s == s.strip())
weights = st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False, allow_infinity=False)


@st.composite
def edge_lists(draw):
    id_strategy = draw(st.sampled_from([integer_ids, name_ids]))
    nodes = draw(st.lists(id_strategy, min_size=2, max_size=30, unique=True))
    pairs = draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)),
                          min_size=1, max_size=60, unique=True))
    weighted = draw(st.booleans())
    edge_weights = [draw(weights) for _ in pairs] if weighted else None
    delimiter = draw(st.sampled_from(sorted(DELIMITERS)))
    header = draw(st.booleans())
    return nodes, pairs, edge_weights, delimiter, header


def render(pairs, edge_weights, delimiter, header, comment):
    separator = DELIMITERS[delimiter]
    lines = ["# written by the fuzz test"] if comment else []
    if header:
        lines.append(separator.join(["source", "target"] + (["weight"] if edge_weights else [])))
    for position, (u, v) in enumerate(pairs):
        fields = [str(u), str(v)] + ([repr(edge_weights[position])] if edge_weights else [])
        lines.append(separator.join(fields))
        if comment and position == 0:
            lines.append("")
    return ("\n".join(lines) + "\n").encode("utf-8")


def assert_same_graph(graph, pairs, edge_weights):
    """Same node set, same edges, same weights; ids compared as written (integers beyond both
    int64 and uint64 come back as Python integers or as strings, both exact)."""
    ids = {node for pair in pairs for node in pair}
    read = [str(node) for node in graph.node_ids.tolist()]
    assert sorted(read) == sorted(str(node) for node in ids)
    integers = all(isinstance(node, int) for node in ids)
    if integers and (INT64.min <= min(ids) and max(ids) <= INT64.max or min(ids) >= 0):
        assert graph.node_ids.dtype.kind in "iu"  # int64, or uint64 beyond it
    position = {node: index for index, node in enumerate(read)}
    assert graph.adjacency.nnz == len(pairs)
    for index, (u, v) in enumerate(pairs):
        value = graph.adjacency[position[str(u)], position[str(v)]]
        assert value == (edge_weights[index] if edge_weights else 1.0)


@given(edge_lists(), st.sampled_from(sorted(COMPRESSORS)), st.booleans(), st.booleans())
def test_well_formed_edge_lists_round_trip_exactly(tmp_path_factory, edge_list, compression, comment,
                                                   through_stream):
    nodes, pairs, edge_weights, delimiter, header = edge_list
    data = COMPRESSORS[compression](render(pairs, edge_weights, delimiter, header, comment))
    if through_stream:
        graph = read_edgelist(io.BytesIO(data), directed=True)
    else:
        path = tmp_path_factory.mktemp("edges") / "edges.txt"
        path.write_bytes(data)
        graph = read_edgelist(path, directed=True)
    assert graph.weighted == bool(edge_weights)
    assert_same_graph(graph, pairs, edge_weights)


@given(st.binary(max_size=400))
def test_any_bytes_give_a_graph_or_an_edge_list_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "any.txt"
    path.write_bytes(data)
    try:
        graph = read_edgelist(path)
    except EdgeListError as error:
        assert "any.txt" in str(error)
    else:
        assert isinstance(graph, Graph) and graph.n_nodes >= 1


def matlab_file(compressed: bool) -> bytes:
    """A MAT-file of several variables, the adjacency among them."""
    adjacency = sp.csc_matrix(np.roll(np.eye(6), 1, axis=1) + np.roll(np.eye(6), -1, axis=1))
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"network": adjacency, "labels": np.eye(6) > 0, "name": "ring",
                              "parts": np.array([[np.eye(2), "x"]], dtype=object)},
                     do_compression=compressed)
    return buffer.getvalue()


MATLAB_FILES = (matlab_file(False), matlab_file(True))


@st.composite
def damaged_matlab_files(draw):
    """A MAT-file cut short or with bytes after its header overwritten: sizes, types, flags."""
    data = bytearray(MATLAB_FILES[draw(st.integers(0, 1))])
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(128, len(data) - 1))
        patch = draw(st.binary(min_size=1, max_size=4))
        data[start:start + len(patch)] = patch
    return bytes(data[:len(MATLAB_FILES[0]) * 2])


@given(damaged_matlab_files())
def test_damaged_matlab_files_give_a_graph_or_an_edge_list_error(tmp_path_factory, data):
    """SciPy's compiled MAT reader can crash the process on such bytes; the layout check runs first."""
    path = tmp_path_factory.mktemp("mat") / "damaged.mat"
    path.write_bytes(data)
    try:
        graph = read_edgelist(path, variable="network")
    except EdgeListError as error:
        assert "damaged.mat" in str(error)
    else:
        assert isinstance(graph, Graph) and graph.n_nodes == 6


@st.composite
def damaged_edge_lists(draw):
    """A weighted edge list with one line broken in a way the reader must name."""
    n_lines = draw(st.integers(2, 40))
    lines = [f"{i} {i + 1} 1.5" for i in range(n_lines)]
    broken = draw(st.integers(1, n_lines - 1))  # not the first line, which could read as a header
    damage = draw(st.sampled_from(["extra field", "missing field", "bad weight", "negative weight",
                                   "infinite weight", "nan weight"]))
    lines[broken] = {
        "extra field": f"{broken} {broken + 1} 1.5 7",
        "missing field": f"{broken} {broken + 1}",
        "bad weight": f"{broken} {broken + 1} heavy",
        "negative weight": f"{broken} {broken + 1} -2",
        "infinite weight": f"{broken} {broken + 1} inf",
        "nan weight": f"{broken} {broken + 1} nan",
    }[damage]
    return "\n".join(lines) + "\n", broken + 1


@given(damaged_edge_lists())
def test_a_damaged_line_is_named(tmp_path_factory, damaged):
    text, line = damaged
    path = tmp_path_factory.mktemp("damaged") / "damaged.txt"
    path.write_text(text)
    try:
        read_edgelist(path)
    except EdgeListError as error:
        assert f"damaged.txt, line {line}:" in str(error)
    else:
        raise AssertionError("a damaged edge list was read without an error")


id_arrays = st.one_of(
    st.lists(st.integers(INT64.min, INT64.max), min_size=1, max_size=20).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.integers(0, int(UINT64.max)), min_size=1, max_size=20).map(lambda v: np.array(v, dtype=np.uint64)),
)


@given(id_arrays, id_arrays)
def test_integer_id_arrays_of_any_kinds_keep_every_id(sources, targets):
    n = min(len(sources), len(targets))
    graph = Graph.from_edges(sources[:n], targets[:n], directed=True)
    expected = {int(node) for node in sources[:n]} | {int(node) for node in targets[:n]}
    assert {int(node) for node in graph.node_ids.tolist()} == expected
    assert graph.n_nodes == len(expected)
