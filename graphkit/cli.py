"""The ``graphkit`` command line: ``graphkit embed EDGES`` turns an edge list into node embeddings."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn, Optional, Sequence

import numpy as np

__all__ = ["main", "write_embedding"]

_FORMATS = (".npy", ".npz", ".csv", ".tsv", ".txt", ".emb", ".parquet")
_WORD2VEC_FORMATS = (".txt", ".emb")
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130
_EXIT_TERMINATED = 128 + signal.SIGTERM

_EMBED_DESCRIPTION = """\
Embed the nodes of a graph with FastRP (Chen et al., CIKM 2019) and write one row per node: its
id as it appears in the edge list, then its vector.

EDGES is a text file with one edge per line: "source target" or "source target weight",
separated by spaces, tabs, commas or semicolons (detected; fields may be "quoted"), with an
optional header and "#" comments; node ids may be numbers (kept exactly, 64-bit included) or
names. gzip, bz2 and xz data are read directly. "-" (or /dev/stdin, or a pipe such as
<(zcat edges.gz)) reads standard input whole before anything is detected. Without EDGES, the
built-in example graph (Zachary's karate club, 34 nodes) is embedded. How the file was read
(delimiter, header, weight column) is said on standard error.
"""

_EMBED_EPILOG = """\
output formats, chosen by the --out extension:
  .csv / .tsv     id, then one column per dimension (dim_0, dim_1, ...)
  .txt / .emb     word2vec text format: a "n_nodes dim" line, then "id v0 v1 ..."
                  (ids must not hold whitespace; use .csv or .npy for such ids)
  .npy            a structured array with fields "id" and "vector"
  .npz            arrays "ids" and "embedding"
  .parquet        needs pyarrow installed
  without --out, CSV goes to standard output.
The output file appears only once it is complete; an existing file keeps its permissions, and a
symbolic link keeps pointing at the (replaced) file it names. The run writes to a temporary
".NAME.XXXXXXXX.EXT" beside it, removed on errors, Ctrl-C and SIGTERM; only a SIGKILL (or a
crash of the machine) can leave that temporary behind.

exit status: 0 on success, 2 for any error (one line on standard error), 130 on Ctrl-C,
143 on SIGTERM.

examples:
  graphkit embed                                    # built-in example, CSV on stdout
  graphkit embed edges.txt --dim 128 --out emb.npy
  zcat edges.gz | graphkit embed - --out emb.csv
  graphkit embed sx-stackoverflow.txt --unweighted --out emb.npy   # third column: timestamps
  graphkit embed blogcatalog.edgelist --dim 512 --iteration-weights 0 0 1 6.67 --beta -0.64 --out emb.csv
"""

_ALLOCATION_FAILURE = re.compile(r"can't allocate memory|out of memory|failed to allocate", re.IGNORECASE)
_ALLOCATION_SIZE = re.compile(r"allocate (\d+) bytes")
_OPTION_OF_PARAMETER = (
    ("n_components", "--dim"), ("normalization_strength", "--beta"),
    ("iteration_weights", "--iteration-weights"), ("self_influence", "--self-influence"),
    ("dtype='float64'", "--dtype float64"), ("dtype=float64", "--dtype float64"),
)
_NON_FINITE_HINT = (
    "the degree normalisation overflowed or underflowed: bring --beta closer to 0, lower the "
    "--iteration-weights, or rescale edge weights that are very large or very small "
    "(--unweighted ignores them)"
)


class _CommandError(Exception):
    """A problem with the user's input: reported on one line, exit status 2."""



class _OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors on one line like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        raise _CommandError(f"{message} (see '{self.prog} --help')")


def _parse_weights(values: Sequence[str]) -> list[float]:
    tokens = [token for value in values for token in value.replace(",", " ").split()]
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise _CommandError(f"--iteration-weights takes numbers; got {' '.join(values)!r}")


def _parse_weight_column(value: Optional[str]) -> int | str | None:
    """``--weight-column``: a 1-based column number (3 or more) or a header name; 0-based out."""
    if value is None or not value.isdigit():
        return value
    if int(value) < 3:
        raise _CommandError(f"--weight-column {value}: columns 1 and 2 are the node ids; the "
                            "weights are in column 3 or later")
    return int(value) - 1


def _build_parser() -> argparse.ArgumentParser:
    parser = _OneLineArgumentParser(
        prog="graphkit", description="Graph learning from the command line.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=_OneLineArgumentParser)
    commands.required = True
    embed = commands.add_parser(
        "embed", help="embed the nodes of an edge list with FastRP",
        description=_EMBED_DESCRIPTION, epilog=_EMBED_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    embed.add_argument("edges", nargs="?", metavar="EDGES",
                       help="edge-list file, or - for standard input (omit for the built-in example)")
    embed.add_argument("--dim", type=int, default=128, help="embedding dimension (default: 128)")
    embed.add_argument("--out", "-o", metavar="FILE", help=f"output file, one of {', '.join(_FORMATS)} (default: CSV on stdout)")
    embed.add_argument("--directed", action="store_true", help="treat edges as directed (default: undirected)")
    weighted = embed.add_mutually_exclusive_group()
    weighted.add_argument("--weighted", dest="weighted", action="store_true", default=None,
                          help="require a weight column (default: weights are read when there is one)")
    weighted.add_argument("--unweighted", dest="weighted", action="store_false", help="ignore any weight column")
    weighted.add_argument("--weight-column", metavar="COLUMN",
                          help="the weight column: its header name or 1-based number (default: a column "
                               "named like a weight, else the third, unless its header names it as "
                               "something else, such as a timestamp)")
    header = embed.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default="infer",
                        help="the first line names the columns (default: detected)")
    header.add_argument("--no-header", dest="header", action="store_false", help="the first line is an edge")
    embed.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    embed.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    embed.add_argument("--iteration-weights", nargs="+", default=["0", "1", "1"], metavar="W",
                       help="weight of each propagation step, e.g. 0 0 1 6.67 (default: 0 1 1)")
    embed.add_argument("--beta", type=float, default=0.0,
                       help="degree normalisation strength: vectors scaled by degree**beta (default: 0)")
    embed.add_argument("--self-influence", type=float, default=0.0, help="weight of each node's own random vector (default: 0)")
    embed.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="floating-point precision of the computation (default: float32)")
    embed.add_argument("--delimiter", default=None, help="column separator (default: detected)")
    embed.add_argument("--quiet", "-q", action="store_true", help="no progress or timing on stderr")
    return parser


def _example_graph():
    import networkx as nx

    return nx.karate_club_graph()


def write_embedding(path: os.PathLike | str, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    """Write embeddings with their node ids; the file appears only once it is complete.

    The rows go to a temporary file beside the target (made with :func:`tempfile.mkstemp`),
    which then replaces it in one step. An existing target keeps its permission bits; a new one
    gets the usual ones (0666 less the umask). A symbolic link keeps pointing at the file it
    names, which is the one replaced. On any error the temporary is removed (SIGTERM included
    when the ``graphkit`` command runs); only a SIGKILL can leave it behind.

    Parameters
    ----------
    path : path-like
        Output file; its extension picks the format (see ``graphkit embed --help``).
    node_ids : ndarray of shape (n_nodes,)
    embedding : ndarray of shape (n_nodes, dim)

    Raises
    ------
    ValueError
        For an unknown extension, a missing folder, a target that is not a regular file,
        non-finite values in ``embedding``, or ids holding whitespace in the word2vec
        formats (.txt, .emb).
    """
    from tensorkit.utils import replaced_atomically
    from tensorkit.validation import check_finite_result

    target = _checked_output_path(Path(path))
    suffix = target.suffix.lower()
    check_finite_result(embedding, "the embedding", hint=_NON_FINITE_HINT)
    if suffix in _WORD2VEC_FORMATS:
        _check_word2vec_ids(node_ids, path)
    with replaced_atomically(target, suffix=suffix) as temporary:
        _write_format(temporary, suffix, node_ids, embedding)


def _checked_output_path(path: Path) -> Path:
    """The file to write for ``path``: the file a symbolic link names, checked writable."""
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise _CommandError(f"cannot write {path}: unknown extension {suffix!r}; use one of {', '.join(_FORMATS)}")
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise _CommandError(f"cannot write {path}: folder {path.parent} does not exist")
    if target.exists() and not target.is_file():
        raise _CommandError(f"cannot write {path}: it exists and is not a regular file")
    return target


def _check_word2vec_ids(node_ids: np.ndarray, path: os.PathLike | str) -> None:
    as_text = np.asarray(node_ids).astype(str)
    spaced = [str(node) for node in as_text if len(node.split()) != 1]
    if spaced:
        raise _CommandError(
            f"cannot write {path}: node id {spaced[0]!r} holds whitespace (or is empty), which the "
            "word2vec text format cannot keep apart from the vector; use .csv, .tsv or .npy"
        )


def _write_format(path: Path, suffix: str, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    if node_ids.dtype == object:  # string ids: fixed-width text, so NumPy files load without pickle
        node_ids = node_ids.astype(str)
    if suffix == ".npy":
        record = np.empty(len(node_ids), dtype=[("id", node_ids.dtype), ("vector", embedding.dtype, embedding.shape[1:])])
        record["id"], record["vector"] = node_ids, embedding
        np.save(path, record)
    elif suffix == ".npz":
        np.savez(path, ids=node_ids, embedding=embedding)
    elif suffix in _WORD2VEC_FORMATS:
        with open(path, "w") as stream:
            stream.write(f"{embedding.shape[0]} {embedding.shape[1]}\n")
            _write_rows(stream, node_ids, embedding, " ")
    elif suffix == ".parquet":
        _embedding_frame(node_ids, embedding).to_parquet(path, index=False)
    else:
        with open(path, "w") as stream:
            _write_rows(stream, node_ids, embedding, "," if suffix == ".csv" else "\t", header=True)


def _embedding_frame(node_ids: np.ndarray, embedding: np.ndarray):
    import pandas as pd

    frame = pd.DataFrame(embedding, columns=[f"dim_{i}" for i in range(embedding.shape[1])])
    frame.insert(0, "id", node_ids)
    return frame


def _write_rows(stream, node_ids: np.ndarray, embedding: np.ndarray, separator: str, header: bool = False) -> None:
    frame = _embedding_frame(node_ids, embedding)
    frame.to_csv(stream, sep=separator, index=False, header=header, float_format="%.7g")


def _check_output_is_not_input(out: Path, edges: Optional[str]) -> None:
    if edges is None or edges == "-" or not out.exists() or not os.path.exists(edges):
        return
    if os.path.samefile(out, edges):
        raise _CommandError(f"--out {out} is the input file {edges}; writing it would destroy "
                            "the edge list")


def _check_output_option(out: Path, edges: Optional[str]) -> None:
    _checked_output_path(out)
    _check_output_is_not_input(out, edges)
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise _CommandError("--out .parquet needs pyarrow (pip install pyarrow); use .csv or .npy instead")


def _read_graph(args: argparse.Namespace):
    """The graph to embed, and a line saying how it was read."""
    from graphkit.io import _read_edgelist, as_graph

    if args.edges is None:
        return as_graph(_example_graph()), ("no EDGES given; embedding the built-in example graph "
                                            "(Zachary's karate club, 34 nodes)")
    source = sys.stdin.buffer if args.edges == "-" else args.edges
    weight_column = _parse_weight_column(args.weight_column)
    graph, how = _read_edgelist(
        source, directed=args.directed, weighted=True if weight_column is not None else args.weighted,
        delimiter=args.delimiter, comments="#", header=args.header, self_loops="keep",
        duplicates="max", node_type=None, weight_column=weight_column,
    )
    return graph, f"read {'standard input' if args.edges == '-' else args.edges}: {how}"


def _embed(args: argparse.Namespace) -> None:
    from graphkit.fastrp import FastRP
    from tensorkit.backend import resolve_device
    from tensorkit.validation import check_finite_result

    weights = _parse_weights(args.iteration_weights)
    if args.dim < 1:
        raise _CommandError(f"--dim must be a positive integer; got {args.dim}")
    if args.out is not None:
        _check_output_option(Path(args.out), args.edges)
    device = resolve_device(args.device)
    started = time.perf_counter()
    graph, how = _read_graph(args)
    if not args.quiet:
        print(f"graphkit: {how}", file=sys.stderr)
    loaded = time.perf_counter()
    model = FastRP(
        n_components=args.dim, iteration_weights=weights, normalization_strength=args.beta,
        self_influence=args.self_influence, random_state=args.seed, device=device, dtype=args.dtype,
        verbose=0 if args.quiet else 1,
    )
    try:
        embedding = model.fit_transform(graph)
    except ValueError as exc:
        raise _CommandError(_in_command_terms(str(exc))) from exc
    check_finite_result(embedding, "the embedding", hint=_NON_FINITE_HINT)
    embedded = time.perf_counter()
    if args.out is None:
        _write_rows(sys.stdout, model.node_ids_, embedding, ",", header=True)
    else:
        write_embedding(args.out, model.node_ids_, embedding)
    if not args.quiet:
        print(
            f"graphkit: {graph.n_nodes} nodes, {graph.n_edges} edges: read in {loaded - started:.2f} s, "
            f"embedded in {embedded - loaded:.2f} s (dim {args.dim}, device {device})"
            + (f" -> {args.out}" if args.out else ""),
            file=sys.stderr,
        )


def _in_command_terms(message: str) -> str:
    """An estimator's message with its parameter names spelled as the command's options."""
    for parameter, option in _OPTION_OF_PARAMETER:
        message = message.replace(parameter, option)
    return message


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _ALLOCATION_FAILURE.search(str(exc))):
        wanted = _ALLOCATION_SIZE.search(str(exc))
        size = f" ({int(wanted.group(1)) / 2**30:.1f} GiB asked for)" if wanted else ""
        return f"out of memory{size}; try a smaller --dim (or, on a GPU, --device cpu)"
    if not lines:
        return type(exc).__name__
    if isinstance(exc, (_CommandError, ValueError, OSError)):
        return lines[0]
    return f"{type(exc).__name__}: {lines[0]}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``graphkit`` command; returns the exit status.

    Every error is one line on standard error, ``graphkit: error: ...``, with exit status 2;
    Ctrl-C gives 130 and SIGTERM 143, after removing any temporary file.
    """
    parser = _build_parser()
    from tensorkit.utils import Terminated, sigterm_raises

    try:
        with sigterm_raises():
            args = parser.parse_args(argv)
            if args.command == "embed":
                _embed(args)
    except KeyboardInterrupt:
        print("graphkit: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except Terminated:
        print("graphkit: terminated", file=sys.stderr)
        return _EXIT_TERMINATED
    except (Exception, MemoryError) as exc:
        print(f"graphkit: error: {_one_line(exc)}", file=sys.stderr)
        return _EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
