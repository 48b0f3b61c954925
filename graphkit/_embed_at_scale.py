"""``graphkit embed`` past one process's memory: out of core (``--memory-budget``) and under ``torchrun``.

Both flows are called by :mod:`graphkit.cli` with the parsed arguments and the FastRP settings; they
raise ``ValueError`` for what the user can fix, which the command prints as one line.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphkit.embedding_files import (
    FORMATS,
    INDEX_NAME,
    shard_name,
    write_embedding,
    write_index,
    write_rows,
)


def reader_options(args: argparse.Namespace, weight_column: Any) -> dict:
    """The edge-list options of the command, as :class:`graphkit._edge_blocks.EdgeBlockReader` takes them."""
    return dict(weighted=True if weight_column is not None else args.weighted, delimiter=args.delimiter,
                comments="#", header=args.header, weight_column=weight_column,
                self_loops="drop" if args.drop_self_loops else "keep")


def _refuse_standard_input(args: argparse.Namespace, why: str) -> None:
    if args.edges == "-":
        raise ValueError(f"{why} reads EDGES in blocks from a file, which standard input is not; write it to a "
                         "file first")


def _rate(n_edges: int, seconds: float) -> str:
    return f"{n_edges / max(seconds, 1e-9):,.0f} edges/s"


def embed_out_of_core(args: argparse.Namespace, settings: dict, weight_column: Any, example: Callable,
                      say: Callable[[str], None]) -> None:
    """``graphkit embed EDGES --memory-budget SIZE``: a CSR on disk, memory-mapped iterates, output in place."""
    from graphkit._disk_csr import (budget_beside_process, disk_graph_from_edges, disk_graph_from_graph, edge_block_bytes,
                                    parse_memory_budget)
    from graphkit._edge_blocks import EdgeBlockReader
    from graphkit.fastrp import FastRP
    from graphkit.io import as_graph

    _refuse_standard_input(args, "--memory-budget")
    budget = parse_memory_budget(args.memory_budget)
    verbose = 0 if args.quiet else 1
    started = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="graphkit-embed-", dir=args.temp_dir)
    try:
        if args.edges is None:
            graph = disk_graph_from_graph(as_graph(example()), folder)
            say("graphkit: no EDGES given; embedding the built-in example graph (Zachary's karate club, 34 nodes)")
        else:
            with budget_beside_process(budget) as data_budget:
                reader = EdgeBlockReader(args.edges, block_bytes=edge_block_bytes(data_budget),
                                         **reader_options(args, weight_column))
                say(f"graphkit: read {args.edges}: {reader.describe()}")
                graph = disk_graph_from_edges(reader, folder, directed=args.directed, memory_budget=data_budget,
                                              verbose=verbose)
        loaded = time.perf_counter()
        model = FastRP(**settings, memory_budget=budget, temp_dir=folder, verbose=verbose)
        _fit_and_write(model, graph, args.out)
        embedded = time.perf_counter()
        n_edges = graph.n_edges   # undirected: counts the self loops on disk, so before the files go
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    say(f"graphkit: {graph.n_nodes} nodes, {n_edges} edges: read in {loaded - started:.2f} s, embedded in "
        f"{embedded - loaded:.2f} s ({_rate(n_edges, embedded - loaded)}; dim {args.dim}, out of core within "
        f"{args.memory_budget})" + (f" -> {args.out}" if args.out else ""))


def _fit_and_write(model: Any, graph: Any, out: Any) -> None:
    """Fit; a ``.npy`` output is the memory-mapped array the fit writes into, others are written after."""
    from tensorkit.utils import replaced_atomically

    if out is None or Path(out).suffix.lower() != ".npy":
        model.fit(graph)
        if out is None:
            import sys

            write_rows(sys.stdout, model.node_ids_, model.embedding_, ",", header=True)
        else:
            write_embedding(out, model.node_ids_, model.embedding_)
        return
    from graphkit.embedding_files import checked_output_path, write_node_ids

    matrices, ids = [], []

    def output(node_ids: np.ndarray, n_components: int) -> np.ndarray:
        matrix = np.lib.format.open_memmap(temporary, mode="w+", shape=(len(node_ids), n_components),
                                           dtype=np.dtype(model.dtype))
        matrices.append(matrix)
        ids.append(node_ids)
        return matrix

    with replaced_atomically(checked_output_path(Path(out)), suffix=".npy") as temporary:
        model.fit(graph, output=output)
        for matrix in matrices:
            matrix.flush()
        del matrices[:]
        write_node_ids(out, ids[0])


def embed_partitioned(args: argparse.Namespace, world: Any, settings: dict, weight_column: Any, example: Callable,
                      say: Callable[[str], None]) -> None:
    """``torchrun ... -m graphkit embed EDGES --out DIR/``: each rank embeds its rows and writes its shard."""
    from graphkit.fastrp import FastRP
    from graphkit.partitioned import PartitionedGraph
    from tensorkit.distributed import all_gather_objects, stage

    _refuse_standard_input(args, "A partitioned run")
    if args.memory_budget is not None:
        raise ValueError("--memory-budget writes one file (--out FILE); a folder of shards comes from a partitioned "
                         "run, where each rank holds only its own rows")
    folder = _shard_folder(args.out)
    suffix = f".{args.shard_format}"
    with stage(world, "preparing the output folder"):
        folder.mkdir(exist_ok=True)
        if world.is_main:
            (folder / INDEX_NAME).unlink(missing_ok=True)   # no index until every shard is complete
    started = time.perf_counter()
    if args.edges is None:
        graph = PartitionedGraph.from_graph(example(), partition=args.partition, world=world)
    else:
        graph = PartitionedGraph.from_edgelist(args.edges, directed=args.directed, partition=args.partition,
                                               world=world, verbose=0 if args.quiet else 1, **{key: value for key, value in
                                                               reader_options(args, weight_column).items()
                                                               if key != "comments"})
    loaded = time.perf_counter()
    verbose = 0 if args.quiet or not world.is_main else 1
    model = FastRP(**settings, verbose=verbose)
    rows = model.fit_transform(graph)
    embedded = time.perf_counter()
    with stage(world, "writing the shards"):
        write_embedding(folder / shard_name(world.rank, suffix), model.node_ids_, rows)
    counts = all_gather_objects(world, len(rows))
    exchanged = sum(all_gather_objects(world, graph.bytes_per_step(args.dim, np.dtype(args.dtype).itemsize)))
    if world.is_main:
        write_index(folder, counts, args.dim, suffix, extra={"partition": args.partition, "world_size": world.size})
        say(f"graphkit: {graph.n_nodes} nodes, {graph.n_edges} edges on {world.size} ranks ({args.partition} "
            f"partition, edge cut {graph.edge_cut:.1%}, {exchanged / 2**20:.1f} MiB exchanged per step): read in "
            f"{loaded - started:.2f} s, embedded in {embedded - loaded:.2f} s ({_rate(graph.n_edges, embedded - loaded)}; "
            f"dim {args.dim}) -> {folder}/")


def _shard_folder(out: Any) -> Path:
    if out is None:
        raise ValueError("under torchrun, --out DIR/ is needed: each rank writes its shard of the embedding there")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"under torchrun, --out names a folder for the shards; {out} is a file")
    if not folder.exists() and folder.suffix.lower() in FORMATS and not str(out).endswith("/"):
        raise ValueError(f"under torchrun, --out names a folder for the shards (e.g. {folder.with_suffix('')}/), "
                         f"not a {folder.suffix} file; read them back with graphkit.read_embedding")
    if not folder.parent.is_dir():
        raise ValueError(f"cannot write {out}: folder {folder.parent} does not exist")
    return folder
