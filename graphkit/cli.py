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


from graphkit.embedding_files import FORMATS as _FORMATS
from graphkit.embedding_files import NON_FINITE_HINT as _NON_FINITE_HINT
from graphkit.embedding_files import write_embedding, write_rows

__all__ = ["main", "write_embedding"]

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
<(zcat edges.gz)) reads standard input whole before anything is detected. EDGES may also be a
Matrix Market adjacency matrix (named .mtx, .mtx.gz or .mtx.bz2, or starting with the
%%MatrixMarket banner) or a MATLAB .mat file holding one (the variable named by --mat-variable,
else the file's only square matrix, else "network", "A", "adjacency", ...): node ids are its rows
0 .. n-1, weights its values. Without EDGES, the
built-in example graph (Zachary's karate club, 34 nodes) is embedded. How the file was read
(delimiter, header, weight column) is said on standard error.
"""

_EMBED_EPILOG = """\
output formats, chosen by the --out extension:
  .csv / .tsv     id, then one column per dimension (dim_0, dim_1, ...)
  .txt / .emb     word2vec text format: a "n_nodes dim" line, then "id v0 v1 ..."
                  (ids must not hold whitespace; use .csv or .npy for such ids)
  .npy            the (n_nodes, dim) float matrix, as np.load returns it; the node ids
                  in NAME.ids.npy beside it (row i is node ids[i])
  .npz            arrays "ids" and "embedding"
  .parquet        needs pyarrow installed
  without --out, CSV goes to standard output.
The output file appears only once it is complete; an existing file keeps its permissions, and a
symbolic link keeps pointing at the (replaced) file it names. The run writes to a temporary
".NAME.XXXXXXXX.EXT" beside it, removed on errors, Ctrl-C and SIGTERM; only a SIGKILL (or a
crash of the machine) can leave that temporary behind.

exit status: 0 on success (also when a reader of standard output, such as head, stops
early), 2 for any error (one line on standard error), 130 on Ctrl-C, 143 on SIGTERM.

examples:
  graphkit embed                                    # built-in example, CSV on stdout
  graphkit embed | head -3                          # the header and the first two nodes
  graphkit embed edges.txt --dim 128 --out emb.npy
  graphkit embed karate.mtx --dim 16 --out emb.csv
  graphkit embed blogcatalog.mat --mat-variable network --out emb.npy
  zcat edges.gz | graphkit embed - --out emb.csv
  graphkit embed sx-stackoverflow.txt --unweighted --out emb.npy   # third column: timestamps
  graphkit embed blogcatalog.edgelist --dim 512 --iteration-weights 0 0 1 6.67 --beta -0.64 --out emb.csv
  graphkit embed edges.txt --beta auto --iteration-weights auto --out emb.npy   # chosen without labels
"""

_ALLOCATION_FAILURE = re.compile(r"can't allocate memory|out of memory|failed to allocate", re.IGNORECASE)
_ALLOCATION_SIZE = re.compile(r"allocate (\d+) bytes")
_OPTION_OF_PARAMETER = (
    ("n_components", "--dim"), ("normalization_strength", "--beta"),
    ("iteration_weights", "--iteration-weights"), ("self_influence", "--self-influence"),
    ("dtype='float64'", "--dtype float64"), ("dtype=float64", "--dtype float64"),
)
class _CommandError(Exception):
    """A problem with the user's input: reported on one line, exit status 2."""



class _OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors on one line like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        raise _CommandError(f"{message} (see '{self.prog} --help')")


def _parse_weights(values: Sequence[str]) -> list[float] | str:
    tokens = [token for value in values for token in value.replace(",", " ").split()]
    if tokens == ["auto"]:
        return "auto"
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise _CommandError(f"--iteration-weights takes numbers or 'auto'; got {' '.join(values)!r}")


def _beta(value: str) -> float | str:
    """``--beta``: a number or ``auto``."""
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a number or 'auto'; got {value!r}") from None


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
    embed.add_argument("--out", "-o", metavar="FILE",
                       help=f"output file, one of {', '.join(_FORMATS)} (default: CSV on stdout); under torchrun, "
                            "a folder for the shards")
    embed.add_argument("--directed", action="store_true", help="treat edges as directed (default: undirected)")
    embed.add_argument("--drop-self-loops", action="store_true",
                       help="leave out edges from a node to itself (the node stays; default: keep them)")
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
                       help="weight of each propagation step, e.g. 0 0 1 6.67, or auto: chosen by link prediction "
                            "on held-out edges (default: 0 1 1)")
    embed.add_argument("--beta", type=_beta, default=0.0,
                       help="degree normalisation strength: vectors scaled by degree**beta, or auto: chosen by link "
                            "prediction on held-out edges, about 16 times the time (default: 0)")
    embed.add_argument("--self-influence", type=float, default=0.0, help="weight of each node's own random vector (default: 0)")
    embed.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="floating-point precision of the computation (default: float32)")
    embed.add_argument("--delimiter", default=None, help="column separator (default: detected)")
    embed.add_argument("--mat-variable", metavar="NAME",
                       help="a .mat input's variable holding the adjacency matrix (default: detected)")
    embed.add_argument("--quiet", "-q", action="store_true", help="no progress or timing on stderr")
    scale = embed.add_argument_group("larger graphs")
    scale.add_argument("--memory-budget", metavar="SIZE",
                       help="embed out of core within this resident memory, e.g. 4GB or 512MiB: the edge list is "
                            "read in blocks into a CSR on disk and the iterates are memory-mapped files")
    scale.add_argument("--temp-dir", metavar="DIR", help="folder of the out-of-core files (default: the system's)")
    scale.add_argument("--partition", choices=("hash", "range"), default="hash",
                       help="under torchrun: nodes go to ranks by a hash of their id or by ranges (default: hash)")
    scale.add_argument("--shard-format", choices=("npy", "parquet"), default="npy",
                       help="under torchrun: format of each rank's shard in the --out folder (default: npy)")
    return parser


def _example_graph():
    import networkx as nx

    return nx.karate_club_graph()


def _check_output_is_not_input(out: Path, edges: Optional[str]) -> None:
    if edges is None or edges == "-" or not out.exists() or not os.path.exists(edges):
        return
    if os.path.samefile(out, edges):
        raise _CommandError(f"--out {out} is the input file {edges}; writing it would destroy "
                            "the edge list")


def _check_output_option(out: Path, edges: Optional[str]) -> None:
    from graphkit.embedding_files import checked_output_path

    try:
        checked_output_path(out)
    except ValueError as exc:
        raise _CommandError(str(exc)) from None
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
        delimiter=args.delimiter, comments="#", header=args.header,
        self_loops="drop" if args.drop_self_loops else "keep",
        duplicates="max", node_type=None, weight_column=weight_column, variable=args.mat_variable,
    )
    return graph, f"read {'standard input' if args.edges == '-' else args.edges}: {how}"


def _embed(args: argparse.Namespace) -> None:
    from graphkit.fastrp import FastRP
    from tensorkit.distributed import current_world
    from tensorkit.validation import check_finite_result

    weights = _parse_weights(args.iteration_weights)
    if args.dim < 1:
        raise _CommandError(f"--dim must be a positive integer; got {args.dim}")
    device = _device(args.device)
    settings = dict(n_components=args.dim, iteration_weights=weights, normalization_strength=args.beta,
                    self_influence=args.self_influence, random_state=args.seed, device=device, dtype=args.dtype)
    world = current_world()
    shards = args.out is not None and (args.out.endswith(("/", os.sep)) or os.path.isdir(args.out))
    if world.size > 1 or shards or args.memory_budget is not None:
        _embed_at_scale(args, world, settings, partitioned=world.size > 1 or shards)
        return
    if args.out is not None:
        _check_output_option(Path(args.out), args.edges)
    started = time.perf_counter()
    graph, how = _read_graph(args)
    _say(args, f"graphkit: {how}")
    loaded = time.perf_counter()
    model = FastRP(**settings, verbose=0 if args.quiet else 1)
    try:
        embedding = model.fit_transform(graph)
    except ValueError as exc:
        raise _CommandError(_in_command_terms(str(exc))) from exc
    check_finite_result(embedding, "the embedding", hint=_NON_FINITE_HINT)
    embedded = time.perf_counter()
    if args.out is None:
        write_rows(sys.stdout, model.node_ids_, embedding, ",", header=True)
    else:
        write_embedding(args.out, model.node_ids_, embedding)
    if model.auto_results_ is not None:
        _say(args, f"graphkit: chose --beta {model.normalization_strength_:g} --iteration-weights "
                   f"{' '.join(f'{weight:g}' for weight in model.iteration_weights_)} (link prediction on held-out edges)")
    _say(args, f"graphkit: {graph.n_nodes} nodes, {graph.n_edges} edges: read in {loaded - started:.2f} s, "
               f"embedded in {embedded - loaded:.2f} s ({graph.n_edges / max(embedded - loaded, 1e-9):,.0f} edges/s; "
               f"dim {args.dim}, device {device})" + (f" -> {args.out}" if args.out else ""))


def _embed_at_scale(args: argparse.Namespace, world, settings: dict, partitioned: bool) -> None:
    """Out of core (``--memory-budget``), or partitioned over the ranks of ``torchrun`` into a folder of shards."""
    from graphkit._embed_at_scale import embed_out_of_core, embed_partitioned

    if not partitioned and args.out is not None:
        _check_output_option(Path(args.out), args.edges)
    _refuse_matrix_market(args)
    try:
        if partitioned:
            embed_partitioned(args, world, settings, _parse_weight_column(args.weight_column), _example_graph,
                              lambda line: _say(args, line))
        else:
            embed_out_of_core(args, settings, _parse_weight_column(args.weight_column), _example_graph,
                              lambda line: _say(args, line))
    except ValueError as exc:
        raise _CommandError(_in_command_terms(str(exc))) from exc


def _refuse_matrix_market(args: argparse.Namespace) -> None:
    """Out of core and under torchrun, EDGES is read in blocks of lines: edge lists only."""
    from graphkit._matlab import is_matlab
    from graphkit._matrix_market import is_matrix_market

    if args.edges in (None, "-") or not os.path.isfile(args.edges):
        return
    kind = ("a Matrix Market file" if is_matrix_market(args.edges, args.edges) else
            "a MATLAB file" if is_matlab(args.edges, args.edges) else None)
    if kind is not None:
        how = "--memory-budget" if args.memory_budget is not None else "torchrun (or an --out folder)"
        raise _CommandError(f"{args.edges}: {kind} is read whole, but {how} reads edge lists in "
                            "blocks; embed it in memory (without those options), or convert it to an edge list")


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(line, file=sys.stderr)


def _device(text: str):
    """``--device`` as a torch device; a bare "cuda" under torchrun is this rank's GPU (``LOCAL_RANK``)."""
    from tensorkit.backend import resolve_device
    from tensorkit.distributed import local_rank_device

    return local_rank_device(resolve_device(text))


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


def _quiet_closed_stdout() -> None:
    """The reader of standard output went away (``graphkit embed | head``): that ends the command
    quietly. Standard output is pointed at the null device so that Python's final flush of it
    does not fail again at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):   # no file descriptor (an in-process stream): nothing to flush
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``graphkit`` command; returns the exit status.

    Every error is one line on standard error, ``graphkit: error: ...``, with exit status 2;
    Ctrl-C gives 130 and SIGTERM 143, after removing any temporary file. A closed standard output
    (``graphkit embed | head``) ends it with status 0 and no message.
    """
    parser = _build_parser()
    from tensorkit.utils import Terminated, sigterm_raises

    try:
        with sigterm_raises():
            args = parser.parse_args(argv)
            if args.command == "embed":
                from tensorkit.distributed import launched_process_group   # torch: after --help and usage errors

                with launched_process_group(_device(args.device)):
                    _embed(args)
                sys.stdout.flush()   # a reader that went away shows here, not at the interpreter's exit
    except BrokenPipeError:
        _quiet_closed_stdout()
        return 0
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
