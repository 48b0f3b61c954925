"""graphkit's edge-list and command-line cases of the issue-32 corpus.

Each file is generated here. The reader returns exactly the graph the file holds or raises an
:class:`~graphkit.io.EdgeListError` naming the file (and the line); ``graphkit embed`` either
writes one finite row per node or fails with exit status 2 and one line on standard error.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from graphkit import EdgeListError, EdgeListNotFoundError, read_edgelist
from graphkit.cli import main
from tests.fuzz.corpus import Case

CHAIN = "".join(f"{i} {i + 1}\n" for i in range(2000)).encode()


def command(folder: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """``graphkit embed ...`` run in ``folder``: (exit status, stdout, stderr). With ``stdin``,
    a separate process reads that file of the folder on its standard input."""
    if stdin is not None:
        with open(folder / stdin, "rb") as source:
            done = subprocess.run([sys.executable, "-m", "graphkit", "embed", *args], stdin=source,
                                  capture_output=True, text=True, cwd=folder)
        return done.returncode, done.stdout, done.stderr
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["embed", *args])
    finally:
        os.chdir(previous)
    return status, out.getvalue(), err.getvalue()


def one_line_error(pattern: str):
    """A check: exit status 2 and a single ``graphkit: error:`` line matching ``pattern``."""
    def check(result, folder):
        status, _, err = result
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and lines[0].startswith("graphkit: error: "), err
        assert re.search(pattern, lines[0]), lines[0]
    return check


def csv_rows(name: str, ids: list, weighted: bool | None = None):
    """A check: success, and ``name`` holds one finite row per id, ids exactly as written."""
    def check(result, folder):
        status, _, err = result
        assert status == 0, err
        frame = pd.read_csv(folder / name, dtype={"id": str})
        assert frame["id"].tolist() == [str(node) for node in ids]
        assert np.isfinite(frame.iloc[:, 1:].to_numpy()).all()
    return check


def graph_check(n_nodes: int, n_edges: int, node_ids: list | None = None, weighted: bool | None = None):
    def check(graph, folder):
        assert (graph.n_nodes, graph.n_edges) == (n_nodes, n_edges)
        if node_ids is not None:
            assert graph.node_ids.tolist() == node_ids
        if weighted is not None:
            assert graph.weighted == weighted
    return check


def unchanged(name: str, content: bytes, pattern: str):
    def check(result, folder):
        one_line_error(pattern)(result, folder)
        assert (folder / name).read_bytes() == content
    return check


def keeps_mode(result, folder):
    status, _, err = result
    assert status == 0, err
    assert stat.S_IMODE((folder / "emb.csv").stat().st_mode) == 0o640
    assert (folder / "link.csv").is_symlink()
    assert (folder / "real.csv").read_text().startswith("id,")


def prepare_outputs(folder: Path) -> Path:
    (folder / "emb.csv").write_text("old")
    os.chmod(folder / "emb.csv", 0o640)
    (folder / "real.csv").write_text("old")
    (folder / "link.csv").symlink_to(folder / "real.csv")
    for out in ("emb.csv", "link.csv"):
        status, _, err = command(folder, "tri.txt", "--dim", "4", "--out", out, "-q")
        assert status == 0, err
    return folder


READER_CASES = [
    Case("graphkit-io-stream-2000-edges", "an edge list read from a stream is read whole (2001 nodes)",
         run=lambda folder: read_edgelist(io.BytesIO(CHAIN)), check=graph_check(2001, 2000)),
    Case("graphkit-io-gzip-stream", "gzip data in a stream without a name is detected and read whole",
         run=lambda folder: read_edgelist(io.BytesIO(gzip.compress(CHAIN))), check=graph_check(2001, 2000)),
    Case("graphkit-io-uint64-ids", "64-bit hashed ids stay exact (uint64) and distinct",
         files={"hashed.txt": b"18446744073709551615 1\n18446744073709551614 1\n"},
         run=lambda folder: read_edgelist(folder / "hashed.txt"),
         check=graph_check(3, 2, [1, 18446744073709551614, 18446744073709551615])),
    Case("graphkit-io-timestamp-header", "a third column headed 'timestamp' is not read as weights",
         files={"snap.txt": b"source target timestamp\n1 2 1217567877\n2 3 1217573801\n"},
         run=lambda folder: read_edgelist(folder / "snap.txt"), check=graph_check(3, 2, [1, 2, 3], weighted=False)),
    Case("graphkit-io-hub-first-line", "'hub 1' over integer edges is an edge, not a header",
         files={"hub.txt": b"hub 1\n2 3\n3 4\n4 5\n"}, run=lambda folder: read_edgelist(folder / "hub.txt"),
         check=graph_check(6, 4, ["1", "2", "3", "4", "5", "hub"])),
    Case("graphkit-io-quoted-decimal-comma", "a first line 1,2,\"1,5\" is an edge whose weight is not a number",
         files={"quoted.csv": b'1,2,"1,5"\n2,3,2\n'}, run=lambda folder: read_edgelist(folder / "quoted.csv"),
         raises=EdgeListError, match=r"quoted\.csv, line 1: weight '1,5' is not a number"),
    Case("graphkit-io-quoted-ids-with-delimiter", "quoted ids may hold the delimiter",
         files={"cities.csv": b'"New York, NY",Boston\nBoston,"Austin, TX"\n'},
         run=lambda folder: read_edgelist(folder / "cities.csv"),
         check=graph_check(3, 2, ["Austin, TX", "Boston", "New York, NY"])),
    Case("graphkit-io-padded-ids", "ids written 007 and 7 are two nodes, kept as written",
         files={"padded.txt": b"7 007\n007 8\n"}, run=lambda folder: read_edgelist(folder / "padded.txt"),
         check=graph_check(3, 2, ["007", "7", "8"])),
    Case("graphkit-io-nul-bytes", "binary data (NUL bytes) is refused", files={"zero.bin": b"\x00" * 4096},
         run=lambda folder: read_edgelist(folder / "zero.bin"), raises=EdgeListError, match=r"zero\.bin.*NUL"),
    Case("graphkit-io-endless-line", "a line of over a million characters is refused",
         files={"long.txt": b"1" * (2**20 + 5)}, run=lambda folder: read_edgelist(folder / "long.txt"),
         raises=EdgeListError, match=r"long\.txt, line 1: longer than"),
    Case("graphkit-io-only-delimiters", "a file of delimiters has no edges", files={"semi.txt": b";\n;;\n"},
         run=lambda folder: read_edgelist(folder / "semi.txt"), raises=EdgeListError, match=r"semi\.txt.*no edges"),
    Case("graphkit-io-empty", "an empty file has no edges", files={"empty.txt": b""},
         run=lambda folder: read_edgelist(folder / "empty.txt"), raises=EdgeListError, match=r"empty\.txt.*no edges"),
    Case("graphkit-io-missing", "a missing file is named", run=lambda folder: read_edgelist(folder / "nope.txt"),
         raises=EdgeListNotFoundError, match=r"nope\.txt: no such edge-list file"),
    Case("graphkit-io-directory", "a directory is not an edge list", run=lambda folder: read_edgelist(folder),
         raises=EdgeListError, match="is a directory"),
    Case("graphkit-io-truncated-gzip", "gzip data cut short is named",
         files={"cut.gz": gzip.compress(CHAIN)[:40]}, run=lambda folder: read_edgelist(folder / "cut.gz"),
         raises=EdgeListError, match=r"cut\.gz.*gzip"),
    Case("graphkit-io-ragged-late-line", "a line with a third field far down is named",
         files={"ragged.txt": CHAIN + b"5 6 7\n"}, run=lambda folder: read_edgelist(folder / "ragged.txt"),
         raises=EdgeListError, match=r"ragged\.txt, line 2001: has 3 fields, but line 1 has 2"),
    Case("graphkit-io-negative-weight", "a negative weight is named with its line",
         files={"neg.txt": b"1 2 1\n2 3 -1\n"}, run=lambda folder: read_edgelist(folder / "neg.txt"),
         raises=EdgeListError, match=r"neg\.txt, line 2: weight -1 is negative"),
]

COMMAND_CASES = [
    Case("graphkit-cli-stdin-dash", "'graphkit embed -' reads all 2000 edges of standard input",
         files={"chain.txt": CHAIN}, run=lambda folder: command(folder, "-", "--dim", "4", "--out", "p.csv", "-q",
                                                                 stdin="chain.txt"),
         check=csv_rows("p.csv", list(range(2001)))),
    Case("graphkit-cli-dev-stdin", "'graphkit embed /dev/stdin' reads all 2000 edges of standard input",
         files={"chain.txt": CHAIN},
         run=lambda folder: command(folder, "/dev/stdin", "--dim", "4", "--out", "p.csv", "-q", stdin="chain.txt"),
         check=csv_rows("p.csv", list(range(2001)))),
    Case("graphkit-cli-uint64-ids", "64-bit ids are written exactly, not as 1.844674e+19",
         files={"big.txt": b"18446744073709551615 1\n1 2\n"},
         run=lambda folder: command(folder, "big.txt", "--dim", "4", "--out", "e.csv", "-q"),
         check=csv_rows("e.csv", [1, 2, 18446744073709551615])),
    Case("graphkit-cli-beta-500", "--beta 500 is refused naming --beta, not written as NaN",
         files={"path.txt": b"1 2\n2 3\n3 4\n"},
         run=lambda folder: command(folder, "path.txt", "--beta", "500", "--out", "e.csv", "-q"),
         check=one_line_error(r"--beta")),
    Case("graphkit-cli-out-is-input", "--out naming the input is refused and the input kept",
         files={"g.txt": b"1 2\n2 3\n"}, run=lambda folder: command(folder, "g.txt", "--out", "g.txt", "-q"),
         check=unchanged("g.txt", b"1 2\n2 3\n", "is the input file")),
    Case("graphkit-cli-keeps-mode-and-symlink", "an existing output keeps its mode, a symlink its target",
         files={"tri.txt": b"1 2\n2 3\n3 1\n"}, run=lambda folder: (0, "", "") if prepare_outputs(folder) else None,
         check=keeps_mode),
    Case("graphkit-cli-huge-dim", "--dim 1000000000 is one line naming --dim", files={"tri.txt": b"1 2\n2 3\n"},
         run=lambda folder: command(folder, "tri.txt", "--dim", "1000000000", "-q"), check=one_line_error(r"--dim")),
    Case("graphkit-cli-dev-zero", "/dev/zero is refused on one line",
         run=lambda folder: command(folder, "/dev/zero", "-q"), check=one_line_error("NUL bytes")),
    Case("graphkit-cli-word2vec-spaces", "word2vec output refuses ids holding spaces",
         files={"cities.tsv": b"New York\tBoston\nBoston\tAustin\n"},
         run=lambda folder: command(folder, "cities.tsv", "--dim", "4", "--out", "e.txt", "-q"),
         check=one_line_error("holds whitespace")),
    Case("graphkit-cli-usage-error", "a bad option value is one line, not argparse's usage block",
         run=lambda folder: command(folder, "--dim", "x"), check=one_line_error("invalid int value")),
]

CASES = READER_CASES + COMMAND_CASES
