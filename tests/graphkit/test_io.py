"""Tests of graphkit.io.read_edgelist."""

import bz2
import gzip

import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.graph import Graph
from graphkit.io import EdgeListError, EdgeListNotFoundError, read_edgelist


def write(path, text):
    path.write_text(text)
    return path


def dense_by_hand(src, dst, weights, n_nodes, duplicates="max"):
    """Undirected adjacency, one entry at a time."""
    dense = np.zeros((n_nodes, n_nodes))
    for u, v, w in zip(src, dst, weights):
        for a, b in {(u, v), (v, u)}:
            dense[a, b] = dense[a, b] + w if duplicates == "sum" else max(dense[a, b], w)
    return dense


def assert_error_at(path, line, match, **options):
    with pytest.raises(EdgeListError) as caught:
        read_edgelist(path, **options)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert match in message


# -- round trips and formats ----------------------------------------------------------------------

@pytest.mark.parametrize("duplicates", ["max", "sum"])
def test_round_trip_of_a_random_weighted_graph(tmp_path, duplicates):
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    weights = rng.integers(1, 9, 300) / 4
    path = tmp_path / "random.tsv"
    np.savetxt(path, np.c_[src, dst, weights], fmt=["%d", "%d", "%.2f"], delimiter="\t")
    graph = read_edgelist(path, duplicates=duplicates)
    ids = np.unique(np.r_[src, dst])
    positions = {node: position for position, node in enumerate(ids)}
    expected = dense_by_hand([positions[u] for u in src], [positions[v] for v in dst], weights,
                             len(ids), duplicates)
    assert graph.node_ids.tolist() == ids.tolist()
    np.testing.assert_allclose(graph.adjacency.toarray(), expected)
    assert graph.weighted and not graph.directed


@pytest.mark.parametrize("delimiter, text", [
    ("whitespace", "1 2 0.5\n2   3\t1.5\n  3 1 2.5\n"),
    ("comma", "1,2,0.5\n2, 3, 1.5\n3,1,2.5\n"),
    ("tab", "1\t2\t0.5\n2\t3\t1.5\n3\t1\t2.5\n"),
    ("semicolon", "1;2;0.5\n2;3;1.5\n3;1;2.5\n"),
])
def test_delimiters_are_detected(tmp_path, delimiter, text):
    graph = read_edgelist(write(tmp_path / f"{delimiter}.txt", text), directed=True)
    expected = Graph.from_edges([1, 2, 3], [2, 3, 1], [0.5, 1.5, 2.5], directed=True)
    np.testing.assert_array_equal(graph.adjacency.toarray(), expected.adjacency.toarray())
    assert graph.node_ids.tolist() == [1, 2, 3]


def test_explicit_delimiter_keeps_spaces_inside_ids(tmp_path):
    path = write(tmp_path / "cities.tsv", "New York\tBoston\nBoston\tLos Angeles\n")
    graph = read_edgelist(path, delimiter="\t")
    assert graph.node_ids.tolist() == ["Boston", "Los Angeles", "New York"]
    assert read_edgelist(path).node_ids.tolist() == graph.node_ids.tolist()  # detected too


def test_comments_blank_lines_and_trailing_comments_are_skipped(tmp_path):
    text = "# a graph\n\n1 2  # first edge\n   \n% not a comment here\n"
    path = write(tmp_path / "commented.txt", text.replace("% not a comment here\n", "2 3\n"))
    graph = read_edgelist(path)
    assert graph.n_edges == 2 and graph.node_ids.tolist() == [1, 2, 3]
    percent = write(tmp_path / "percent.txt", "% header comment\n1 2\n")
    assert read_edgelist(percent, comments="%").n_edges == 1


@pytest.mark.parametrize("text, node_ids", [
    ("source,target,weight\n1,2,0.5\n2,3,1\n", [1, 2, 3]),
    ("# comment\nsrc dst\n1 2\n2 3\n", [1, 2, 3]),
    ("from,to,cost\n1,2,3\n2,3,4\n", [1, 2, 3]),  # 'cost' is unknown; the columns are numeric
    ("source target\nalice bob\nbob carol\n", ["alice", "bob", "carol"]),
    ("a b weight\nx y 1.0\ny z 2.0\n", ["x", "y", "z"]),
    ("1 2\n2 3\n", [1, 2, 3]),
    ("alice bob\nbob carol\n", ["alice", "bob", "carol"]),
])
def test_header_inference(tmp_path, text, node_ids):
    graph = read_edgelist(write(tmp_path / "edges.txt", text))
    assert graph.node_ids.tolist() == node_ids
    assert graph.n_edges == 2


def test_header_can_be_forced(tmp_path):
    path = write(tmp_path / "edges.txt", "1 2\n2 3\n3 4\n")
    assert read_edgelist(path, header=True).n_edges == 2
    assert read_edgelist(path, header=False).n_edges == 3
    named = write(tmp_path / "named.txt", "u v\n1 2\n")
    assert read_edgelist(named, header=False).node_ids.tolist() == ["1", "2", "u", "v"]


def test_integer_and_string_ids(tmp_path):
    ints = read_edgelist(write(tmp_path / "ints.txt", "10 -3\n-3 7\n"))
    assert ints.node_ids.dtype.kind == "i" and ints.node_ids.tolist() == [-3, 7, 10]
    padded = read_edgelist(write(tmp_path / "padded.txt", "10 -3\n-3 007\n"))
    assert padded.node_ids.tolist() == ["-3", "007", "10"]  # written as 007, kept as written
    strings = read_edgelist(write(tmp_path / "strings.txt", "10 -3\n-3 007\n"), node_type=str)
    assert strings.node_ids.tolist() == ["-3", "007", "10"]
    names = read_edgelist(write(tmp_path / "names.txt", "alice bob\nNA null\n"))
    assert names.node_ids.tolist() == ["NA", "alice", "bob", "null"]


def test_a_non_integer_id_after_the_sampled_lines_makes_all_ids_strings(tmp_path):
    lines = [f"{i} {i + 1}" for i in range(200)] + ["200 x", "007 5"]
    graph = read_edgelist(write(tmp_path / "late.txt", "\n".join(lines) + "\n"))
    assert graph.node_ids.dtype == object
    assert {"0", "x", "007", "200"} <= set(graph.node_ids.tolist())
    assert graph.n_edges == 202


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open)])
def test_compressed_files(tmp_path, suffix, opener):
    path = tmp_path / f"edges.txt{suffix}"
    with opener(path, "wt") as handle:
        handle.write("# compressed\nsource target weight\n1 2 3.0\n2 3 4.0\n")
    graph = read_edgelist(path)
    assert graph.n_edges == 2 and graph.adjacency[1, 2] == 4.0


# -- options --------------------------------------------------------------------------------------

def test_both_directions_under_max_sum_and_error(tmp_path):
    path = write(tmp_path / "twice.txt", "# both ways\n1 2 2.0\n3 1 1.0\n2 1 3.0\n")
    assert read_edgelist(path).adjacency[0, 1] == 3.0
    summed = read_edgelist(path, duplicates="sum")
    assert summed.adjacency[0, 1] == summed.adjacency[1, 0] == 5.0
    assert_error_at(path, 4, "repeats the edge on line 2", duplicates="error")
    directed = read_edgelist(path, directed=True, duplicates="error")
    assert directed.adjacency[0, 1] == 2.0 and directed.adjacency[1, 0] == 3.0


def test_unweighted_repeats_collapse_or_count(tmp_path):
    path = write(tmp_path / "repeats.txt", "a b\nb a\na b\n")
    assert read_edgelist(path).adjacency.toarray().tolist() == [[0, 1], [1, 0]]
    assert read_edgelist(path, duplicates="sum").adjacency[0, 1] == 3.0


def test_self_loops_keep_and_drop(tmp_path):
    path = write(tmp_path / "loops.txt", "1 1\n1 2\n3 3\n")
    kept = read_edgelist(path)
    assert kept.n_edges == 3 and kept.adjacency.diagonal().tolist() == [1, 0, 1]
    dropped = read_edgelist(path, self_loops="drop")
    assert dropped.n_edges == 1 and dropped.n_nodes == 3


def test_weighted_option(tmp_path):
    three = write(tmp_path / "three.txt", "1 2 5\n2 3 label\n")
    unweighted = read_edgelist(three, weighted=False)
    assert not unweighted.weighted and set(unweighted.adjacency.data) == {1.0}
    ragged = write(tmp_path / "ragged.txt", "1 2 5 x\n2 3\n3 4 1\n")
    assert read_edgelist(ragged, weighted=False).n_edges == 3  # only two fields are read
    four = write(tmp_path / "four.txt", "1 2 1 2020\n2 3 1 2021\n")
    assert read_edgelist(four).weighted  # a weight column is there, even if all ones
    two = write(tmp_path / "two.txt", "# only ids\n1 2\n")
    assert not read_edgelist(two).weighted
    assert_error_at(two, 2, "weighted=True", weighted=True)


def test_zero_weights_are_dropped(tmp_path):
    graph = read_edgelist(write(tmp_path / "zero.txt", "1 2 0\n2 3 1\n"))
    assert graph.n_nodes == 3 and graph.n_edges == 1


def test_directed_file(tmp_path):
    graph = read_edgelist(write(tmp_path / "arcs.txt", "1 2\n2 3\n"), directed=True)
    assert graph.directed
    assert graph.adjacency[0, 1] == 1 and graph.adjacency[1, 0] == 0


# -- errors ---------------------------------------------------------------------------------------

def test_missing_file_is_an_edge_list_error_and_file_not_found(tmp_path):
    path = tmp_path / "nowhere.txt"
    with pytest.raises(EdgeListNotFoundError, match="nowhere.txt") as caught:
        read_edgelist(path)
    assert isinstance(caught.value, EdgeListError)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, FileNotFoundError)


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n"])
def test_empty_files(tmp_path, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(EdgeListError, match="empty.txt.*no edges"):
        read_edgelist(path)


def test_header_without_edges(tmp_path):
    path = write(tmp_path / "header_only.txt", "source,target\n")
    with pytest.raises(EdgeListError, match="header_only.txt.*no edges"):
        read_edgelist(path)


def test_more_fields_than_the_first_line(tmp_path):
    text = "# comment\n1 2\n\n2 3\n3 4 5\n"
    assert_error_at(write(tmp_path / "ragged.txt", text), 5, "has 3 fields, but line 2 has 2")


def test_fewer_fields_than_the_first_line(tmp_path):
    text = "1,2,1.0\n# comment\n2,3,1.0\n3,4\n4,5,1.0\n"
    assert_error_at(write(tmp_path / "short.csv", text), 4, "has 2 fields, but line 1 has 3")


def test_single_field_line(tmp_path):
    text = "1 2\n2 3\n# c\n\n7\n3 4\n"
    assert_error_at(write(tmp_path / "single.txt", text), 5, "has 1 field")
    assert_error_at(write(tmp_path / "first.txt", "# c\n7\n1 2\n"), 2, "single field")


def test_ragged_line_far_beyond_the_sample(tmp_path):
    lines = [f"{i} {i + 1} 1.0" for i in range(300)]
    lines[250] = "250 251"
    path = write(tmp_path / "late.txt", "# header comment\n" + "\n".join(lines) + "\n")
    assert_error_at(path, 252, "has 2 fields")


def test_empty_field(tmp_path):
    assert_error_at(write(tmp_path / "gap.csv", "1,2,1\n2,,1\n"), 2, "field 2 is empty")


@pytest.mark.parametrize("token, problem", [
    ("heavy", "is not a number"),
    ("-1.5", "is negative"),
    ("nan", "is not finite"),
    ("inf", "is not finite"),
])
def test_bad_weights(tmp_path, token, problem):
    text = f"# weighted\n1 2 1.0\n2 3 2.0\n\n3 4 {token}\n4 5 1.0\n"
    assert_error_at(write(tmp_path / "weights.txt", text), 5, problem)


def test_non_integer_id_with_node_type_int(tmp_path):
    path = write(tmp_path / "ids.txt", "1 2\n2 3\n# c\n3 four\n")
    assert_error_at(path, 4, "'four' is not an integer", node_type=int)
    assert read_edgelist(path).node_ids.tolist() == ["1", "2", "3", "four"]


def test_bad_gzip_file(tmp_path):
    path = tmp_path / "broken.txt.gz"
    path.write_bytes(gzip.compress(b"1 2\n" * 1000)[:30])  # gzip data cut short
    with pytest.raises(EdgeListError, match="broken.txt.gz.*gzip"):
        read_edgelist(path)


def test_compression_is_read_from_the_data_not_the_name(tmp_path):
    plain = write(tmp_path / "plain.txt.gz", "1 2\n2 3\n")
    assert read_edgelist(plain).n_edges == 2
    unnamed = tmp_path / "edges"
    unnamed.write_bytes(bz2.compress(b"1 2\n2 3\n3 4\n"))
    assert read_edgelist(unnamed).n_edges == 3


def test_bad_options():
    with pytest.raises(ValueError, match="header"):
        read_edgelist("x.txt", header="yes")
    with pytest.raises(ValueError, match="node_type"):
        read_edgelist("x.txt", node_type=float)
    with pytest.raises(ValueError, match="comments"):
        read_edgelist("x.txt", comments="//")
    with pytest.raises(ValueError, match="duplicates"):
        read_edgelist("x.txt", duplicates="first")


# -- size -----------------------------------------------------------------------------------------

def test_a_million_edge_file_loads(tmp_path):
    rng = np.random.default_rng(7)
    src, dst = rng.integers(0, 200_000, 1_000_000), rng.integers(0, 200_000, 1_000_000)
    path = tmp_path / "million.txt"
    np.savetxt(path, np.c_[src, dst], fmt="%d")
    graph = read_edgelist(path)
    expected = sp.coo_matrix((np.ones(2_000_000), (np.r_[src, dst], np.r_[dst, src])))
    expected = expected.tocsr()
    expected.data[:] = 1.0
    present = np.unique(np.r_[src, dst])
    expected = expected[present][:, present]
    assert graph.node_ids.tolist() == present.tolist()
    assert graph.n_edges == len(np.unique(np.minimum(src, dst) * 200_000 + np.maximum(src, dst)))
    assert abs(graph.adjacency - expected).max() == 0


# -- input integrity (issue 32) -------------------------------------------------------------------

def chain(n_edges):
    return "".join(f"{i} {i + 1}\n" for i in range(n_edges))


def test_a_binary_stream_is_read_whole(tmp_path):
    import io

    graph = read_edgelist(io.BytesIO(chain(2000).encode()))
    assert graph.n_nodes == 2001 and graph.n_edges == 2000


def test_a_named_pipe_is_read_whole(tmp_path):
    import os
    import threading

    fifo = tmp_path / "edges.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(chain(2000)))
    writer.start()
    graph = read_edgelist(fifo)
    writer.join()
    assert graph.n_nodes == 2001 and graph.node_ids.tolist() == list(range(2001))


def test_gzip_data_in_a_pipe_is_detected_without_a_name(tmp_path):
    import io

    graph = read_edgelist(io.BytesIO(gzip.compress(chain(500).encode())))
    assert graph.n_edges == 500


@pytest.mark.parametrize("ids, kind", [
    ([18446744073709551615, 18446744073709551614, 1], "u"),  # uint64: beyond int64
    ([9223372036854775807, -9223372036854775808, 0], "i"),  # the ends of int64
    ([2**53 + 1, 2**53, 2**53 - 1], "i"),  # beyond what float64 holds exactly
])
def test_64_bit_integer_ids_stay_exact(tmp_path, ids, kind):
    path = write(tmp_path / "hashed.txt", f"{ids[0]} {ids[1]}\n{ids[1]} {ids[2]}\n{ids[2]} {ids[0]}\n")
    graph = read_edgelist(path)
    assert graph.node_ids.dtype.kind == kind
    assert graph.node_ids.tolist() == sorted(ids) and graph.n_edges == 3


def test_a_uint64_id_beside_small_ids_does_not_merge_nodes(tmp_path):
    # The second column alone fits int64: NumPy would promote the two columns to float64.
    path = write(tmp_path / "hashed.txt", "18446744073709551615 1\n18446744073709551614 2\n3 4\n")
    graph = read_edgelist(path)
    assert graph.node_ids.tolist() == [1, 2, 3, 4, 18446744073709551614, 18446744073709551615]
    assert graph.n_nodes == 6 and graph.n_edges == 3


def test_ids_beyond_int64_and_negative_ones_stay_exact_strings(tmp_path):
    path = write(tmp_path / "mixed.txt", "18446744073709551615 -1\n-1 2\n")
    graph = read_edgelist(path)
    assert sorted(graph.node_ids.tolist()) == ["-1", "18446744073709551615", "2"]


def test_padded_integer_ids_beyond_the_sample_keep_their_spelling(tmp_path):
    path = write(tmp_path / "late.txt", chain(100) + "7 007\n")
    graph = read_edgelist(path)
    assert "007" in graph.node_ids.tolist() and "7" in graph.node_ids.tolist()
    assert graph.n_nodes == 102


@pytest.mark.parametrize("name", ["timestamp", "time", "date", "ts", "unix_time", "label", "edge_id"])
def test_a_third_column_named_as_no_weight_is_not_read_as_weights(tmp_path, name):
    path = write(tmp_path / "snap.txt", f"source target {name}\n1 2 1600000000\n2 3 1600000100\n")
    graph = read_edgelist(path)
    assert not graph.weighted and set(graph.adjacency.data) == {1.0}
    weighted = read_edgelist(path, weight_column=name)
    assert weighted.weighted and weighted.adjacency.max() == 1600000100


def test_the_column_named_weight_is_found_after_other_columns(tmp_path):
    path = write(tmp_path / "temporal.csv", "src,dst,time,weight\n1,2,99,0.5\n2,3,98,1.5\n")
    graph = read_edgelist(path)
    np.testing.assert_array_equal(sorted(graph.adjacency.data), [0.5, 0.5, 1.5, 1.5])
    by_position = read_edgelist(path, weight_column=2)
    assert by_position.adjacency.max() == 99


def test_weight_column_errors(tmp_path):
    path = write(tmp_path / "e.txt", "source target time\n1 2 3\n")
    with pytest.raises(EdgeListError, match="e.txt: weight_column 'weight' is not a column"):
        read_edgelist(path, weight_column="weight")
    with pytest.raises(EdgeListError, match="weight_column=5"):
        read_edgelist(path, weight_column=5)
    with pytest.raises(ValueError, match=r"The 'weight_column' parameter .* range \[2, inf\)"):
        read_edgelist(path, weight_column=1)
    with pytest.raises(ValueError, match="contradict"):
        read_edgelist(path, weight_column=2, weighted=False)


@pytest.mark.parametrize("text, n_edges, node_ids", [
    ("hub 1\n2 3\n3 4\n4 5\n", 4, ["1", "2", "3", "4", "5", "hub"]),  # a named node, not a header
    ("1 target\n2 3\n", 2, ["1", "2", "3", "target"]),
    ("Person1 Person2\n1 2\n2 3\n", 2, [1, 2, 3]),  # nothing in it fits the columns: a header
])
def test_a_first_line_is_a_header_only_if_it_cannot_be_an_edge(tmp_path, text, n_edges, node_ids):
    graph = read_edgelist(write(tmp_path / "edges.txt", text))
    assert graph.n_edges == n_edges and graph.node_ids.tolist() == node_ids


def test_a_quoted_weight_holding_the_delimiter_is_an_error_on_line_1(tmp_path):
    path = write(tmp_path / "quoted.csv", '1,2,"1,5"\n2,3,2\n')
    assert_error_at(path, 1, "weight '1,5' is not a number")


def test_quoted_ids_may_hold_the_delimiter(tmp_path):
    path = write(tmp_path / "cities.csv", '"New York, NY",Boston\nBoston,"Austin, TX"\n')
    graph = read_edgelist(path)
    assert graph.node_ids.tolist() == ["Austin, TX", "Boston", "New York, NY"]


@pytest.mark.parametrize("content, problem", [
    (b"\x00" * 5000, "NUL bytes"),
    (b"1 2\n" + b"7" * (2**20 + 10) + b" 8\n", "longer than"),
])
def test_binary_data_and_endless_lines_are_refused(tmp_path, content, problem):
    path = tmp_path / "odd.bin"
    path.write_bytes(content)
    with pytest.raises(EdgeListError, match=f"odd.bin.*{problem}"):
        read_edgelist(path)


def test_weights_are_read_to_the_last_bit(tmp_path):
    rng = np.random.default_rng(3)
    weights = rng.random(2000) * 10.0 ** rng.integers(-300, 300, 2000)
    lines = "".join(f"{i} {i + 1} {float(w)!r}\n" for i, w in enumerate(weights))
    graph = read_edgelist(write(tmp_path / "w.txt", lines), directed=True)
    np.testing.assert_array_equal(graph.adjacency.data, weights)
