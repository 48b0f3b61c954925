"""The measuring children of the FastRP scaling benchmark: ``python -m benchmarks._fastrp_scale_child SPEC``
(under ``torchrun ... -m benchmarks._fastrp_scale_child SPEC`` for the partition figures).

SPEC is JSON with a ``kind`` (cut, partition, spmm, rust); the child prints its figures as
one JSON line (rank 0 under torchrun). The parent polls its memory from /proc
(:mod:`benchmarks._fastrp_scale_poll`).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from benchmarks._fastrp_scale_graphs import ITEMSIZE, distinct_edges, partition_figures

RULES = ("hash", "range")
SPMM_BLOCK = 32


def run_cut_child(spec: dict) -> None:
    started = time.perf_counter()
    u, v = distinct_edges(spec["n"], spec["m"])
    figures = [partition_figures(u, v, spec["n"], parts, rule, spec["dim"])
               for parts in spec["ranks"] for rule in RULES]
    print(json.dumps({"n_nodes": spec["n"], "n_edges_distinct": int(len(u)), "figures": figures,
                      "seconds": time.perf_counter() - started}), flush=True)


def compare_embeddings(spec: dict) -> dict:
    """Max abs difference of each candidate against the reference (all rows, or ``rows`` seeded ones).

    Called in the benchmark's own process: nothing of it is timed or measured.
    """
    from graphkit import read_embedding

    ref_ids, reference = read_embedding(spec["reference"])
    rows = None
    if spec.get("rows") and spec["rows"] < len(ref_ids):
        rows = np.sort(np.random.default_rng(spec["seed"]).choice(len(ref_ids), spec["rows"], replace=False))
    out = {"n_rows": int(len(ref_ids)), "rows_checked": int(len(ref_ids) if rows is None else len(rows)),
           "candidates": {}}
    for name, path in spec["candidates"].items():
        ids, embedding = read_embedding(path)
        if len(ids) != len(ref_ids) or embedding.shape != reference.shape:
            out["candidates"][name] = {"same_ids": False, "shape": list(embedding.shape)}
            continue
        if rows is not None:
            ids, embedding, ref_part = np.asarray(ids)[rows], embedding[rows], reference[rows]
        else:
            ref_part = reference
        diff = 0.0
        for start in range(0, len(embedding), 1 << 18):
            a = np.asarray(embedding[start:start + (1 << 18)], dtype=np.float64)
            b = np.asarray(ref_part[start:start + (1 << 18)], dtype=np.float64)
            diff = max(diff, float(np.abs(a - b).max()) if a.size else 0.0)
        ref_ids_part = np.asarray(ref_ids) if rows is None else np.asarray(ref_ids)[rows]
        out["candidates"][name] = {"same_ids": bool(np.array_equal(np.asarray(ids), ref_ids_part)), "max_abs_diff": diff}
        del embedding, ref_part
    return out


def _count(value) -> int:
    return int(value) if np.ndim(value) == 0 else int(len(value))


def run_partition_child(spec: dict) -> None:
    """Under torchrun: ``PartitionedGraph.from_edgelist`` per rule; rank 0 prints every rank's figures."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    group = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    if group:
        dist.init_process_group("gloo")
    try:
        _partition_figures_of_ranks(spec)
    finally:
        if group:
            dist.barrier()
            dist.destroy_process_group()


def _partition_figures_of_ranks(spec: dict) -> None:
    from graphkit import PartitionedGraph
    from tensorkit import distributed

    world = distributed.current_world()
    mine = []
    for rule in spec["rules"]:
        started = time.perf_counter()
        graph = PartitionedGraph.from_edgelist(spec["edges"], partition=rule)
        mine.append({"rule": rule, "rank": world.rank, "n_nodes": int(graph.n_nodes), "owned": _count(graph.owned),
                     "halo": _count(graph.halo), "edge_cut": float(graph.edge_cut),
                     "bytes_per_step": int(graph.bytes_per_step(spec["dim"], ITEMSIZE)),
                     "seconds": time.perf_counter() - started})
        del graph
    gathered = distributed.all_gather_objects(world, mine)
    if world.is_main:
        print(json.dumps({"world_size": world.size, "ranks": gathered}), flush=True)


def _sparse_products(transition, dense, calls: int, block: int = 0) -> float:
    import torch

    started = time.perf_counter()
    pieces = [dense] if not block else list(dense.split(block, dim=1))
    for piece in pieces:
        current = piece.contiguous()
        for _ in range(calls):
            current = torch.sparse.mm(transition, current)
    return time.perf_counter() - started


def run_spmm_child(spec: dict) -> None:
    """The SpMM floor: ``calls`` chained products of the CSR transition with a dense n x d float32 matrix."""
    import torch

    from graphkit import read_edgelist
    from graphkit.fastrp import transition_tensor

    torch.set_num_threads(1)
    started = time.perf_counter()
    graph = read_edgelist(spec["edges"])
    read_seconds = time.perf_counter() - started
    transition = transition_tensor(graph.adjacency, device="cpu", dtype=torch.float32)
    nnz = int(graph.adjacency.nnz)
    del graph
    dense = torch.randn(transition.shape[0], spec["dim"], generator=torch.Generator().manual_seed(spec["seed"]))
    torch.sparse.mm(transition, dense)                      # warm-up
    whole = _sparse_products(transition, dense, spec["calls"])
    blocked = _sparse_products(transition, dense, spec["calls"], SPMM_BLOCK)
    print(json.dumps({"read_seconds": read_seconds, "whole_seconds": whole, "blocked_seconds": blocked,
                      "seconds": min(whole, blocked), "calls": spec["calls"], "nnz": nnz}), flush=True)


def run_rust_child(spec: dict) -> None:
    """The PyPI ``fastrp`` package (Rust) on the same CSR: read time and fit time."""
    import fastrp

    from graphkit import read_edgelist

    started = time.perf_counter()
    adjacency = read_edgelist(spec["edges"]).adjacency
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    embedding = fastrp.fit_csr(adjacency.indptr, adjacency.indices, adjacency.data, adjacency.shape[0],
                               dim=spec["dim"], weights=[0.0, 1.0, 1.0], seed=spec["seed"], undirected=False)
    fit_seconds = time.perf_counter() - started
    print(json.dumps({"read_seconds": read_seconds, "fit_seconds": fit_seconds,
                      "seconds": read_seconds + fit_seconds, "shape": list(np.shape(embedding)),
                      "finite": bool(np.isfinite(embedding).all())}), flush=True)


CHILDREN = {"cut": run_cut_child, "partition": run_partition_child,
            "spmm": run_spmm_child, "rust": run_rust_child}


def main(argv=None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    CHILDREN[spec["kind"]](spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
