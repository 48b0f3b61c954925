"""The ``graphkit`` command line: ``graphkit embed EDGES`` turns an edge list into node embeddings."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = ["main", "write_embedding"]

_FORMATS = (".npy", ".npz", ".csv", ".tsv", ".txt", ".emb", ".parquet")

_EMBED_DESCRIPTION = """\
Embed the nodes of a graph with FastRP (Chen et al., CIKM 2019) and write one row per node: its
id as it appears in the edge list, then its vector.

EDGES is a text file with one edge per line: "source target" or "source target weight",
separated by spaces, tabs, commas or semicolons (detected), with optional header and "#" comments;
node ids may be numbers or names; .gz files are read directly. Without EDGES, the built-in example
graph (Zachary's karate club, 34 nodes) is embedded.
"""

_EMBED_EPILOG = """\
output formats, chosen by the --out extension:
  .csv / .tsv     id, then one column per dimension (dim_0, dim_1, ...)
  .txt / .emb     word2vec text format: a "n_nodes dim" line, then "id v0 v1 ..."
  .npy            a structured array with fields "id" and "vector"
  .npz            arrays "ids" and "embedding"
  .parquet        needs pyarrow installed
  without --out, CSV goes to standard output.

examples:
  graphkit embed                                    # built-in example, CSV on stdout
  graphkit embed edges.txt --dim 128 --out emb.npy
  graphkit embed blogcatalog.edgelist --dim 512 --iteration-weights 0 0 1 6.67 --beta -0.64 --out emb.csv
"""


class _CommandError(Exception):
    """A problem with the user's input: reported on one line, exit status 2."""


def _parse_weights(values: Sequence[str]) -> list[float]:
    tokens = [token for value in values for token in value.replace(",", " ").split()]
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--iteration-weights takes numbers; got {' '.join(values)!r}")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphkit", description="Graph learning from the command line.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    embed = commands.add_parser(
        "embed", help="embed the nodes of an edge list with FastRP",
        description=_EMBED_DESCRIPTION, epilog=_EMBED_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    embed.add_argument("edges", nargs="?", metavar="EDGES", help="edge-list file (omit for the built-in example)")
    embed.add_argument("--dim", type=int, default=128, help="embedding dimension (default: 128)")
    embed.add_argument("--out", "-o", metavar="FILE", help=f"output file, one of {', '.join(_FORMATS)} (default: CSV on stdout)")
    embed.add_argument("--directed", action="store_true", help="treat edges as directed (default: undirected)")
    weighted = embed.add_mutually_exclusive_group()
    weighted.add_argument("--weighted", dest="weighted", action="store_true", default=None,
                          help="use the third column as edge weights (default: when there is one)")
    weighted.add_argument("--unweighted", dest="weighted", action="store_false", help="ignore any weight column")
    embed.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    embed.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    embed.add_argument("--iteration-weights", nargs="+", default=["0", "1", "1"], metavar="W",
                       help="weight of each propagation step, e.g. 0 0 1 6.67 (default: 0 1 1)")
    embed.add_argument("--beta", type=float, default=0.0,
                       help="degree normalisation strength: vectors scaled by degree**beta (default: 0)")
    embed.add_argument("--self-influence", type=float, default=0.0, help="weight of each node's own random vector (default: 0)")
    embed.add_argument("--delimiter", default=None, help="column separator (default: detected)")
    embed.add_argument("--quiet", "-q", action="store_true", help="no progress or timing on stderr")
    return parser


def _example_graph():
    import networkx as nx

    return nx.karate_club_graph()


def write_embedding(path: os.PathLike | str, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    """Write embeddings with their node ids; the file appears only once it is complete.

    Parameters
    ----------
    path : path-like
        Output file; its extension picks the format (see ``graphkit embed --help``).
    node_ids : ndarray of shape (n_nodes,)
    embedding : ndarray of shape (n_nodes, dim)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise _CommandError(f"cannot write {path}: unknown extension {suffix!r}; use one of {', '.join(_FORMATS)}")
    if not path.parent.exists():
        raise _CommandError(f"cannot write {path}: folder {path.parent} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        _write_format(Path(temporary), suffix, node_ids, embedding)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write_format(path: Path, suffix: str, node_ids: np.ndarray, embedding: np.ndarray) -> None:
    if node_ids.dtype == object:  # string ids: fixed-width text, so NumPy files load without pickle
        node_ids = node_ids.astype(str)
    if suffix == ".npy":
        record = np.empty(len(node_ids), dtype=[("id", node_ids.dtype), ("vector", embedding.dtype, embedding.shape[1:])])
        record["id"], record["vector"] = node_ids, embedding
        np.save(path, record)
    elif suffix == ".npz":
        np.savez(path, ids=node_ids, embedding=embedding)
    elif suffix in (".txt", ".emb"):
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


def _embed(args: argparse.Namespace) -> None:
    from graphkit.fastrp import FastRP
    from graphkit.graph import as_graph
    from graphkit.io import read_edgelist
    from tensorkit.backend import resolve_device

    weights = _parse_weights(args.iteration_weights)
    if args.dim < 1:
        raise _CommandError(f"--dim must be a positive integer; got {args.dim}")
    if args.out is not None:
        out = Path(args.out)
        if out.suffix.lower() not in _FORMATS:
            raise _CommandError(f"--out {out}: unknown extension {out.suffix!r}; use one of {', '.join(_FORMATS)}")
        if not out.parent.exists():
            raise _CommandError(f"--out {out}: folder {out.parent} does not exist")
        if out.suffix.lower() == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise _CommandError("--out .parquet needs pyarrow (pip install pyarrow); use .csv or .npy instead")
    device = resolve_device(args.device)
    started = time.perf_counter()
    if args.edges is None:
        if not args.quiet:
            print("graphkit: no EDGES given; embedding the built-in example graph "
                  "(Zachary's karate club, 34 nodes)", file=sys.stderr)
        graph = as_graph(_example_graph())
    else:
        graph = read_edgelist(args.edges, directed=args.directed, weighted=args.weighted, delimiter=args.delimiter)
    loaded = time.perf_counter()
    model = FastRP(
        n_components=args.dim, iteration_weights=weights, normalization_strength=args.beta,
        self_influence=args.self_influence, random_state=args.seed, device=device,
        verbose=0 if args.quiet else 1,
    )
    embedding = model.fit_transform(graph)
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``graphkit`` command; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "embed":
            _embed(args)
    except (_CommandError, ValueError, OSError, argparse.ArgumentTypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"graphkit: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphkit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
