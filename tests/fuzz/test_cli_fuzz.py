"""Property-based tests of the ``graphkit embed`` command (issue 32).

Whatever the options and the edge list, the command either succeeds with one finite row per node
or fails with exit status 2 and a single line on standard error; it never leaves a traceback, a
partial output or a temporary file behind.
"""

import numpy as np
import pandas as pd
from hypothesis import event, given, strategies as st

from graphkit.cli import main

option_values = {
    "--dim": st.sampled_from(["1", "4", "0", "-3", "x", "1e3", "99999999999"]),
    "--beta": st.sampled_from(["0", "-0.5", "1", "400", "-400", "nan", "inf", "zero"]),
    "--iteration-weights": st.sampled_from(["0 1 1", "1", "0 0 1 6.67", "nan 1", "-1 2", "1e308 1e308", "a"]),
    "--self-influence": st.sampled_from(["0", "0.5", "-1", "nan"]),
    "--delimiter": st.sampled_from([",", " ", "\t", ";", "ab", '"']),
    "--weight-column": st.sampled_from(["3", "1", "weight", "time", "0"]),
    "--seed": st.sampled_from(["0", "-1", "2**40", "x"]),
    "--dtype": st.sampled_from(["float32", "float64", "complex64"]),
}
flags = st.sampled_from(["--directed", "--unweighted", "--weighted", "--header", "--no-header"])
edge_texts = st.sampled_from([
    "1 2\n2 3\n3 1\n",
    "source,target,weight\n1,2,0.5\n2,3,2\n",
    "source target time\n1 2 1600000000\n2 3 1600000001\n",
    "a b 1e-300\nb c 1e300\n",
    "a b\nb\n",
    "1 2 -1\n",
    "",
    "\x00\x00",
    "x y\n",
])


@st.composite
def command_lines(draw):
    arguments = []
    for option in draw(st.lists(st.sampled_from(sorted(option_values)), unique=True, max_size=4)):
        arguments += [option, *draw(option_values[option]).split(" ")]
    arguments += draw(st.lists(flags, unique=True, max_size=2))
    return arguments


@given(edge_texts, command_lines(), st.sampled_from([".csv", ".npy", ".txt"]))
def test_embed_succeeds_with_finite_rows_or_fails_on_one_line(tmp_path_factory, capsys, text, arguments, suffix):
    folder = tmp_path_factory.mktemp("cli")
    edges = folder / "edges.txt"
    edges.write_text(text)
    out = folder / f"emb{suffix}"
    status = main(["embed", str(edges), "--out", str(out), "-q", *arguments])
    event(f"exit status {status}")
    err = capsys.readouterr().err
    written = [out.name] + (["emb.ids.npy"] if suffix == ".npy" else [])
    assert sorted(path.name for path in folder.iterdir()) == sorted(["edges.txt"] + (written if status == 0 else []))
    if status == 0:
        assert err == ""
        vectors = (np.load(out) if suffix == ".npy" else
                   pd.read_csv(out).iloc[:, 1:].to_numpy() if suffix == ".csv" else
                   np.loadtxt(out, skiprows=1, usecols=range(1, 1 + int(out.read_text().split()[1])), ndmin=2))
        assert np.isfinite(vectors).all() and len(vectors) >= 1
    else:
        assert status == 2
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("graphkit: error: "), err
