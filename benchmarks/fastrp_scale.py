"""FastRP at scale: partitioned (torchrun) and out-of-core embeddings of generated power-law graphs.

Writes ``benchmarks/results/fastrp_scale.md`` and the JSON beside it (``--out`` moves both).

Graphs: text edge lists (``src dst`` per line, integer ids 0..n-1), generated in blocks with NumPy and
cached in ``--work-dir`` (reused when present; a stamp file names the settings). Every node first gets an
edge to a node a geometric offset (mean 20) further on in id order, so all n nodes appear; every other
edge joins a Chung-Lu endpoint (expected degree of the node of rank r proportional to r^(-1/(gamma-1)),
gamma = 2.3, the ranks scattered over the ids by a seeded permutation) to either a second Chung-Lu endpoint
or, for 30% of the lines, a node a geometric offset further on (some locality in id order, as crawled
graphs have). Self loops are dropped; repeated lines stay (the reader merges them).

- (a) 2M nodes / 20M edge lines, d = 128. ``torchrun --standalone --nproc_per_node P -m graphkit embed
  EDGES --out DIR/ --partition hash`` for P = 1, 2, 4 (gloo, 1 thread per rank; at P = 1 the command
  takes its one-process path and writes ``DIR/embedding.npy``) against the in-memory
  ``python -m graphkit embed EDGES --out x.npy``. Goals: every P gives the in-memory embedding (max
  abs difference over all rows <= 1e-4, same ids); the per-rank peak resident memory (VmHWM) at 2 ranks
  at most 0.6x the one at 1 rank. Reported: bytes each rank exchanges per step
  (``PartitionedGraph.bytes_per_step(d, 4)``, built under torchrun at P = 2, 4, hash and range), next to
  the all-gather alternative (P-1)/P x n x d x 4 per rank.
- (b) 10M nodes / 100M edge lines, d = 64, ``python -m graphkit embed EDGES --out x.npy --memory-budget
  4GB --temp-dir DIR``. Goals: it completes; its peak resident anonymous memory (RssAnon, polled every
  25 ms from the parent; VmHWM beside it) is within the budget (4GB = 4e9 bytes); its embedding equals
  the in-memory fit's on the rows checked (200,000 seeded random rows; all rows in quick mode; max abs
  difference <= 1e-4); its wall time at most 2x the in-memory fit's. The in-memory fit runs "where that
  fits": the parent kills it when the machine's MemAvailable falls under 1 GiB (recorded as out of
  memory), and ``--skip-in-memory-large`` skips it. Throughput (edge lines per second of wall time) next
  to the SpMM floor (the CSR transition of the same graph times a dense n x d float32 matrix, 4 chained
  ``torch.sparse.mm`` calls after one warm-up, whole width and in blocks of 32 columns as FastRP runs
  them; the faster of the two) and the PyPI ``fastrp`` package (Rust; ``fit_csr`` on the same CSR, seed
  0, weights (0, 1, 1), one thread), skipped when it is not installed.
- (c) A design note: communication per step against ranks and edge cut; the edge cut of hash and range
  partitioning of these graphs for P = 2, 4, 8, 16 (computed from the distinct edges with
  ``PartitionedGraph``'s owner rules); the expected time of a 1-billion-edge graph on 16 machines from these measurements (model in
  the report).

Every run is a child process (``OMP_NUM_THREADS=1``, ``RAYON_NUM_THREADS=1``); wall times are the child's
whole life (start-up, reading the edge list, the fit, writing), medians over ``--repeats``. The parent polls
/proc/<pid>/status of the child and all its descendants (torchrun's workers are the ranks) for RssAnon and
VmHWM.

Run: ``python benchmarks/fastrp_scale.py [--quick] [--parts a,b,c] [--repeats N] [--skip-in-memory-large]
[--memory-budget 4GB] [--work-dir DIR] [--out PATH]``. ``--quick``: 20k nodes / 200k lines for (a), 50k /
500k for (b) (a smoke test of the harness, not a measurement).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_variable] = "1"

import numpy as np  # noqa: E402

from _common import SUPPORTED, git_stamp, machine_summary, memory_total_bytes, save_results, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fastrp_scale.md"
TORCHRUN = Path(sys.executable).parent / "torchrun"
SEED = 0
SIZES = {"a": (2_000_000, 20_000_000, 128), "b": (10_000_000, 100_000_000, 64)}
QUICK_SIZES = {"a": (20_000, 200_000, 128), "b": (50_000, 500_000, 64)}
EXPONENT = 2.3
LOCAL_SHARE = 0.3
LOCAL_MEAN_OFFSET = 20
BLOCK_LINES = 4_000_000
GENERATOR_VERSION = 1
RANKS = (1, 2, 4)
INFO_RANKS = (2, 4)
DESIGN_RANKS = (2, 4, 8, 16)
RULES = ("hash", "range")
ITEMSIZE = 4
PRODUCTS = 3                 # FastRP's default iteration weights (0, 1, 1)
SPMM_CALLS = 4
SPMM_BLOCK = 32
CHECK_ROWS = 200_000
POLL_SECONDS = 0.025
SCAN_SECONDS = 0.25
MEMORY_FLOOR = 2**30        # kill a child when MemAvailable falls below this
# the goals
EQUAL_TOLERANCE = 1e-4
RANK_MEMORY_RATIO = 0.6
TIME_RATIO = 2.0
# the 1-billion-edge model
TARGET_EDGES = 1_000_000_000
TARGET_MACHINES = 16
TARGET_DIM = 128
NETWORK_BYTES_PER_SECOND = 1.25e9   # 10 Gbit/s per machine (an assumption, not measured)


# ------------------------------------------------------------------------------------------------
# the graphs

def chung_lu_ranks(rng, count: int, n: int, exponent: float) -> np.ndarray:
    """``count`` node ranks drawn with probability ~ (rank + 1)^(-1/(exponent-1)) (inverse CDF, continuous)."""
    a = 1.0 / (exponent - 1.0)
    top = (n + 1.0) ** (1.0 - a) - 1.0
    x = (1.0 + rng.random(count) * top) ** (1.0 / (1.0 - a))
    return np.minimum(x.astype(np.int64) - 1, n - 1)


def edge_block(n: int, m: int, block: int, exponent: float, scatter: np.ndarray) -> tuple:
    """Sources and targets of lines ``block * BLOCK_LINES`` onwards (seeded per block); self loops dropped."""
    start, stop = block * BLOCK_LINES, min(m, (block + 1) * BLOCK_LINES)
    rng = np.random.default_rng([SEED, block])
    line = np.arange(start, stop)
    count = stop - start
    src = np.where(line < n, line, scatter[chung_lu_ranks(rng, count, n, exponent)])
    local = (line < n) | (rng.random(count) < LOCAL_SHARE)
    near = (src + rng.geometric(1.0 / LOCAL_MEAN_OFFSET, count)) % n
    dst = np.where(local, near, scatter[chung_lu_ranks(rng, count, n, exponent)])
    keep = src != dst
    return src[keep], dst[keep]


def scatter_of(n: int) -> np.ndarray:
    """Which node id has each Chung-Lu rank (hubs spread over the ids)."""
    return np.random.default_rng([SEED, 2**31]).permutation(n)


def generated_edges(n: int, m: int, exponent: float = EXPONENT):
    """Every block of (src, dst) of the graph, in file order."""
    scatter = scatter_of(n)
    for block in range(-(-m // BLOCK_LINES)):
        yield edge_block(n, m, block, exponent, scatter)


def _write_numbers(buffer: np.ndarray, positions: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> None:
    rest = values.copy()
    for k in range(int(lengths.max())):
        present = lengths > k
        buffer[positions[present] + lengths[present] - 1 - k] = 48 + rest[present] % 10
        rest //= 10


def _digits(values: np.ndarray) -> np.ndarray:
    return np.searchsorted(10 ** np.arange(1, 19, dtype=np.int64), values, side="right") + 1


def edge_lines(src: np.ndarray, dst: np.ndarray) -> bytes:
    """``"src dst\\n"`` for every pair, formatted by NumPy (no padding)."""
    ls, ld = _digits(src), _digits(dst)
    ends = np.cumsum(ls + ld + 2)
    starts = ends - (ls + ld + 2)
    buffer = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    _write_numbers(buffer, starts, src, ls)
    buffer[starts + ls] = ord(" ")
    _write_numbers(buffer, starts + ls + 1, dst, ld)
    buffer[ends - 1] = ord("\n")
    return buffer.tobytes()


def prepare_graph(work_dir: Path, n: int, m: int) -> dict:
    """The edge list of the (n, m) graph, generated once per settings; its path, lines and timing."""
    settings = {"n": n, "m": m, "exponent": EXPONENT, "local_share": LOCAL_SHARE,
                "local_mean_offset": LOCAL_MEAN_OFFSET, "seed": SEED, "version": GENERATOR_VERSION}
    folder = work_dir / f"powerlaw_n{n}_m{m}_seed{SEED}"
    folder.mkdir(parents=True, exist_ok=True)
    path, stamp = folder / "edges.txt", folder / "settings.json"
    if stamp.exists() and path.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("settings") == settings:
            return {**saved["graph"], "path": str(path), "cached": True}
    started = time.perf_counter()
    lines = 0
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as out:
        for src, dst in generated_edges(n, m):
            out.write(edge_lines(src, dst))
            lines += len(src)
    partial.replace(path)
    graph = {"n_nodes": n, "m": m, "n_lines": lines, "generate_seconds": time.perf_counter() - started,
             "file_bytes": path.stat().st_size}
    stamp.write_text(json.dumps({"settings": settings, "graph": graph}))
    print(f"generated {path} ({lines:,} lines) in {graph['generate_seconds']:.1f} s", flush=True)
    return {**graph, "path": str(path), "cached": False}


# ------------------------------------------------------------------------------------------------
# edge cut and halo of the owner rules (the design note)

def owners(n: int, parts: int, rule: str) -> np.ndarray:
    """Owning rank of nodes 0..n-1, by :class:`graphkit.PartitionedGraph`'s rules: "hash" is pandas'
    ``hash_array`` of the (int64) id modulo P; "range" cuts the sorted ids into P runs, the first
    ``n mod P`` one node longer."""
    import pandas as pd

    if rule == "hash":
        return (pd.util.hash_array(np.arange(n, dtype=np.int64)) % np.uint64(parts)).astype(np.int16)
    base, extra = divmod(n, parts)
    return np.repeat(np.arange(parts, dtype=np.int16), [base + (rank < extra) for rank in range(parts)])


def distinct_edges(n: int, m: int) -> tuple:
    """The distinct undirected edges (u < v) of the generated graph, as int32 or int64 arrays."""
    keys = np.concatenate([np.minimum(s, d) * n + np.maximum(s, d) for s, d in generated_edges(n, m)])
    keys = np.unique(keys)
    dtype = np.int32 if n < 2**31 else np.int64
    return (keys // n).astype(dtype), (keys % n).astype(dtype)


def partition_figures(u: np.ndarray, v: np.ndarray, n: int, parts: int, rule: str, dim: int) -> dict:
    """Edge cut, per-rank owned and halo nodes (distinct remote neighbours) and bytes per step."""
    owner = owners(n, parts, rule)
    ou, ov = owner[u], owner[v]
    cut = ou != ov
    needed = np.zeros(parts * n, dtype=bool)
    needed[ou[cut].astype(np.int64) * n + v[cut]] = True      # the owner of u needs v's row, and
    needed[ov[cut].astype(np.int64) * n + u[cut]] = True      # the owner of v needs u's
    halo = needed.reshape(parts, n).sum(axis=1)
    owned = np.bincount(owner, minlength=parts)
    return {"parts": parts, "rule": rule, "edge_cut": int(cut.sum()), "edge_cut_fraction": float(cut.mean()),
            "owned": owned.tolist(), "halo": halo.tolist(),
            "bytes_per_step_mean": float(halo.mean() * dim * ITEMSIZE),
            "bytes_per_step_max": float(halo.max() * dim * ITEMSIZE),
            "all_gather_bytes": (parts - 1) / parts * n * dim * ITEMSIZE}


def run_cut_child(spec: dict) -> None:
    started = time.perf_counter()
    u, v = distinct_edges(spec["n"], spec["m"])
    figures = [partition_figures(u, v, spec["n"], parts, rule, spec["dim"])
               for parts in spec["ranks"] for rule in RULES]
    print(json.dumps({"n_nodes": spec["n"], "n_edges_distinct": int(len(u)), "figures": figures,
                      "seconds": time.perf_counter() - started}), flush=True)


# ------------------------------------------------------------------------------------------------
# the other children: comparison, partition figures under torchrun, SpMM floor, the Rust package

def run_compare_child(spec: dict) -> None:
    """Max abs difference of each candidate against the reference (all rows, or ``rows`` seeded ones)."""
    from graphkit import read_embedding

    ref_ids, reference = read_embedding(spec["reference"])
    rows = None
    if spec.get("rows") and spec["rows"] < len(ref_ids):
        rows = np.sort(np.random.default_rng(SEED).choice(len(ref_ids), spec["rows"], replace=False))
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
    print(json.dumps(out), flush=True)


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
    dense = torch.randn(transition.shape[0], spec["dim"], generator=torch.Generator().manual_seed(SEED))
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
                               dim=spec["dim"], weights=[0.0, 1.0, 1.0], seed=SEED, undirected=False)
    fit_seconds = time.perf_counter() - started
    print(json.dumps({"read_seconds": read_seconds, "fit_seconds": fit_seconds,
                      "seconds": read_seconds + fit_seconds, "shape": list(np.shape(embedding)),
                      "finite": bool(np.isfinite(embedding).all())}), flush=True)


CHILDREN = {"cut": run_cut_child, "compare": run_compare_child, "partition": run_partition_child,
            "spmm": run_spmm_child, "rust": run_rust_child}


# ------------------------------------------------------------------------------------------------
# the parent: launching with memory polled from /proc

def _status(pid: int) -> dict:
    """RssAnon and VmHWM of ``pid`` in bytes ({} once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("RssAnon:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return out


def _descendants(root: int) -> dict:
    """``{pid: parent pid}`` of every process below ``root`` (from /proc/*/stat)."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, queue = {}, [root]
    while queue:
        pid = queue.pop()
        for child in children.get(pid, ()):
            found[child] = pid
            queue.append(child)
    return found


def _memory_available() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


def error_line(stderr: list) -> str:
    """The line of a child's standard error that says what failed (the first, under torchrun)."""
    pattern = re.compile(r"^\s*(graphkit: error:|[\w.]*(Error|Exception|Killed)\b)")
    found = [line.strip() for line in stderr if pattern.match(line) and "ChildFailedError" not in line]
    return (found or [line for line in stderr if line.strip()] or ["failed"])[0]


def run_polled(command: list, name: str, log_dir: Path, timeout: float) -> dict:
    """Run ``command``; its wall time, exit status and the memory peaks of it and its descendants.

    ``processes``: pid -> {"parent", "rss_anon_peak", "hwm_peak"}; ``tree_rss_anon_peak``: the peak of
    the summed RssAnon. Killed (with its process group) past ``timeout`` or when MemAvailable falls
    under ``MEMORY_FLOOR``; then ``error`` says why (``out_of_memory`` True for the latter).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(log_dir / f"{name}.out", "w") as out, open(log_dir / f"{name}.err", "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT, start_new_session=True)
        tracked, tree_peak, next_scan, killed = {proc.pid: 0}, 0, 0.0, None
        peaks: dict = {}
        while proc.poll() is None:
            now = time.perf_counter()
            if now >= next_scan:
                tracked.update(_descendants(proc.pid))
                next_scan = now + SCAN_SECONDS
            total = 0
            for pid in tracked:
                status = _status(pid)
                if status:
                    record = peaks.setdefault(pid, {"parent": tracked[pid], "rss_anon_peak": 0, "hwm_peak": 0})
                    record["rss_anon_peak"] = max(record["rss_anon_peak"], status.get("RssAnon", 0))
                    record["hwm_peak"] = max(record["hwm_peak"], status.get("VmHWM", 0))
                    total += status.get("RssAnon", 0)
            tree_peak = max(tree_peak, total)
            if now - started > timeout:
                killed = f"timed out after {timeout:.0f} s"
            elif _memory_available() < MEMORY_FLOOR:
                killed = f"out of memory: killed by the benchmark at {total / 2**30:.1f} GiB anonymous memory"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
    result = {"command": " ".join(str(c) for c in command), "wall_seconds": wall, "returncode": proc.returncode,
              "processes": {str(k): v for k, v in peaks.items()}, "tree_rss_anon_peak": tree_peak}
    stderr = (log_dir / f"{name}.err").read_text(errors="replace").strip().splitlines()
    if killed:
        result.update(error=killed, out_of_memory=killed.startswith("out of memory"))
    elif proc.returncode != 0:
        line = error_line(stderr)
        oom = proc.returncode in (-9, 137) or "memory" in line.lower()
        result.update(error=f"exit {proc.returncode}: {line[:400]}", out_of_memory=oom)
    result["stderr_tail"] = stderr[-5:]
    stdout = (log_dir / f"{name}.out").read_text(errors="replace").strip().splitlines()
    parsed = [line for line in stdout if line.startswith("{")]
    if parsed and "error" not in result:
        result["child"] = json.loads(parsed[-1])
    return result


def worker_peaks(result: dict, launcher: bool) -> list:
    """Peaks of each worker: torchrun's children (``launcher``), else the process itself."""
    processes = result.get("processes", {})
    roots = [int(k) for k, v in processes.items() if v["parent"] == 0]
    if not launcher:
        return [processes[str(pid)] for pid in roots]
    return [v for v in processes.values() if roots and v["parent"] == roots[0]]


def embed_command(edges: str, out: str, dim: int, ranks: int = 0, extra: tuple = ()) -> list:
    """``graphkit embed`` in one process (``ranks`` 0) or under torchrun with ``ranks`` workers."""
    base = ["-m", "graphkit", "embed", edges, "--out", out, "--dim", str(dim), "--seed", str(SEED), "-q",
            "--device", "cpu", *extra]
    if ranks:
        return [str(TORCHRUN), "--standalone", "--nproc_per_node", str(ranks), *base]
    return [sys.executable, *base]


def child_command(spec: dict, ranks: int = 0) -> list:
    command = [__file__, "--child", json.dumps(spec)]
    if ranks:
        return [str(TORCHRUN), "--standalone", "--nproc_per_node", str(ranks), *command]
    return [sys.executable, *command]


def fresh(path: Path, folder: bool = False) -> str:
    """``path`` with nothing at it (its parent folder made); a folder's path is given with its trailing slash."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path) + ("/" if folder else "")


def repeated(make_command, name: str, logs: Path, repeats: int, timeout: float) -> dict:
    """``repeats`` runs: the first good run's record with the median wall time."""
    runs = []
    for i in range(repeats):
        runs.append(run_polled(make_command(), f"{name}.{i}", logs, timeout))
        if "error" in runs[-1]:
            break
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    first = dict(good[0])
    first["wall_seconds_runs"] = [r["wall_seconds"] for r in good]
    first["wall_seconds"] = statistics.median(first["wall_seconds_runs"])
    return first


def summary(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    if "skipped" in result:
        return result["skipped"]
    return f"{result.get('wall_seconds', 0):.1f} s"


def sizes(args) -> dict:
    return QUICK_SIZES if args.quick else SIZES


def compare(reference: dict, ref_path: Path, candidates: dict, rows, logs: Path, name: str, timeout: float) -> dict:
    """The comparison child on the candidates that completed (``{"skipped": ...}`` without a reference)."""
    if "error" in reference or "skipped" in reference:
        return {"skipped": "no in-memory reference"}
    present = {k: str(p) for k, (run, p) in candidates.items() if "error" not in run and "skipped" not in run}
    if not present:
        return {"skipped": "no candidate completed"}
    spec = {"kind": "compare", "reference": str(ref_path), "candidates": present, "rows": rows}
    result = run_polled(child_command(spec), name, logs, timeout)
    return result.get("child") or {"error": result.get("error", "no output")}


def measure_a(args, graph: dict, logs: Path, timeout: float) -> dict:
    """(a): in-memory reference, then torchrun at 1, 2, 4 ranks; equality; partition figures."""
    _, _, dim = sizes(args)["a"]
    folder = args.work_dir / "runs_a"
    folder.mkdir(parents=True, exist_ok=True)
    ref = folder / "memory.npy"
    out = {"dim": dim}
    out["memory"] = repeated(lambda: embed_command(graph["path"], fresh(ref), dim), "a_memory", logs,
                             args.repeats, timeout)
    out["memory"]["workers"] = worker_peaks(out["memory"], launcher=False)
    print(f"(a) in memory: {summary(out['memory'])}", flush=True)
    candidates = {}
    for ranks in RANKS:
        # every rank count, one included, runs the partitioned path (an --out folder of shards)
        shards = folder / f"ranks{ranks}"
        run = repeated(lambda: embed_command(graph["path"], fresh(shards, folder=True), dim, ranks,
                                             ("--partition", "hash")), f"a_ranks{ranks}", logs, args.repeats, timeout)
        run["workers"] = worker_peaks(run, launcher=True)
        out[f"ranks{ranks}"] = run
        candidates[f"ranks{ranks}"] = (run, shards)
        print(f"(a) {ranks} rank(s): {summary(run)}", flush=True)
    out["compare"] = compare(out["memory"], ref, candidates, None, logs, "a_compare", timeout)
    out["partition"] = {}
    for ranks in INFO_RANKS:
        spec = {"kind": "partition", "edges": graph["path"], "dim": dim, "rules": list(RULES)}
        result = run_polled(child_command(spec, ranks), f"a_partition{ranks}", logs, timeout)
        out["partition"][str(ranks)] = result.get("child") or {"error": result.get("error", "no output")}
        print(f"(a) PartitionedGraph at {ranks} ranks: {summary(result)}", flush=True)
    return out


def measure_b(args, graph: dict, logs: Path, timeout: float) -> dict:
    """(b): out-of-core under the budget, the in-memory fit where it fits, SpMM floor, the Rust package."""
    import importlib.util

    _, _, dim = sizes(args)["b"]
    folder = args.work_dir / "runs_b"
    temp = folder / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    ooc, ref = folder / "outofcore.npy", folder / "memory.npy"
    out = {"dim": dim, "memory_budget": args.memory_budget, "budget_bytes": budget_bytes(args.memory_budget)}
    out["outofcore"] = repeated(
        lambda: embed_command(graph["path"], fresh(ooc), dim, 0,
                              ("--memory-budget", args.memory_budget, "--temp-dir", str(temp))),
        "b_outofcore", logs, args.repeats, timeout)
    out["outofcore"]["workers"] = worker_peaks(out["outofcore"], launcher=False)
    print(f"(b) out of core: {summary(out['outofcore'])}", flush=True)
    if args.skip_in_memory_large:
        out["memory"] = {"skipped": "skipped (--skip-in-memory-large)"}
    else:
        fresh(ref)
        out["memory"] = repeated(lambda: embed_command(graph["path"], fresh(ref), dim), "b_memory", logs,
                                 args.repeats, timeout)
        out["memory"]["workers"] = worker_peaks(out["memory"], launcher=False)
    print(f"(b) in memory: {summary(out['memory'])}", flush=True)
    out["compare"] = compare(out["memory"], ref, {"outofcore": (out["outofcore"], ooc)},
                             None if args.quick else CHECK_ROWS, logs, "b_compare", timeout)
    fresh(ref)
    spec = {"kind": "spmm", "edges": graph["path"], "dim": dim, "calls": SPMM_CALLS}
    out["spmm"] = run_polled(child_command(spec), "b_spmm", logs, timeout)
    print(f"(b) SpMM floor: {summary(out['spmm'])}", flush=True)
    if importlib.util.find_spec("fastrp") is None:
        out["rust"] = {"skipped": "not installed (pip install fastrp)"}
    else:
        out["rust"] = run_polled(child_command({**spec, "kind": "rust"}), "b_rust", logs, timeout)
    print(f"(b) fastrp (Rust): {summary(out['rust'])}", flush=True)
    return out


def measure_c(graphs: dict, logs: Path, timeout: float, dims: dict) -> dict:
    out = {}
    for key, graph in graphs.items():
        spec = {"kind": "cut", "n": graph["n_nodes"], "m": graph["m"], "ranks": list(DESIGN_RANKS), "dim": dims[key]}
        result = run_polled(child_command(spec), f"c_cut_{key}", logs, timeout)
        out[key] = result.get("child") or {"error": result.get("error", "no output")}
        print(f"(c) edge cut of graph {key}: {summary(result)}", flush=True)
    return out


def budget_bytes(text: str) -> int:
    """``"4GB"`` -> 4e9 bytes (GB, MB, KB decimal; GiB, MiB, KiB binary; plain bytes)."""
    units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 10**3, "MB": 10**6, "GB": 10**9,
             "TB": 10**12, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * factor)
    return int(float(upper))


# ------------------------------------------------------------------------------------------------
# goals, the design model, the report

def _failure(*results) -> str:
    for r in results:
        r = r or {}
        if "error" in r:
            return f"failed: {r['error']}"
        if "skipped" in r:
            return r["skipped"]
    return "not run"


def _ok(*results) -> bool:
    return all(r and "error" not in r and "skipped" not in r for r in results)


def _peak(run: dict, field: str = "hwm_peak") -> int:
    return max((w[field] for w in run.get("workers", [])), default=0)


def judge(m: dict) -> list:
    """Each goal: ``{"goal", "threshold", "measured", "met"}`` (met None when it could not be measured)."""
    goals = []

    def add(goal, threshold, measured, met):
        goals.append({"goal": goal, "threshold": threshold, "measured": measured, "met": met})

    a, b = m.get("a") or {}, m.get("b") or {}
    equal = f"max abs difference ≤ {EQUAL_TOLERANCE:g}, same ids"
    for ranks in RANKS:
        name = f"(a) {ranks} rank(s) give the in-memory embedding"
        found = ((a.get("compare") or {}).get("candidates") or {}).get(f"ranks{ranks}")
        if found and "max_abs_diff" in found:
            add(name, equal, f"{found['max_abs_diff']:.2e}" + ("" if found["same_ids"] else ", ids differ"),
                found["max_abs_diff"] <= EQUAL_TOLERANCE and found["same_ids"])
        else:
            add(name, equal, _failure(a.get(f"ranks{ranks}"), a.get("memory"), a.get("compare")), None)
    name, threshold = "(a) per-rank peak memory at 2 ranks vs 1 rank", f"VmHWM(2) / VmHWM(1) ≤ {RANK_MEMORY_RATIO}"
    if _ok(a.get("ranks1"), a.get("ranks2")) and _peak(a["ranks1"]) and _peak(a["ranks2"]):
        ratio = _peak(a["ranks2"]) / _peak(a["ranks1"])
        add(name, threshold, f"{mib(_peak(a['ranks2']))} / {mib(_peak(a['ranks1']))} MiB = {ratio:.2f}",
            ratio <= RANK_MEMORY_RATIO)
    else:
        add(name, threshold, _failure(a.get("ranks1"), a.get("ranks2")), None)
    ooc = b.get("outofcore")
    budget = b.get("budget_bytes", 0)
    if ooc is None:
        add("(b) out-of-core fit completes", "exit 0", "not run", None)
    else:
        add("(b) out-of-core fit completes", "exit 0", summary(ooc), "error" not in ooc)
    name, threshold = "(b) out-of-core peak anonymous memory within the budget", f"RssAnon ≤ {b.get('memory_budget')}"
    if _ok(ooc) and _peak(ooc, "rss_anon_peak"):
        peak = _peak(ooc, "rss_anon_peak")
        add(name, threshold, f"{mib(peak)} MiB of {mib(budget)} MiB", peak <= budget)
    else:
        add(name, threshold, _failure(ooc), None)
    name = "(b) out-of-core embedding equals the in-memory fit on the rows checked"
    found = ((b.get("compare") or {}).get("candidates") or {}).get("outofcore")
    if found and "max_abs_diff" in found:
        add(name, equal, f"{found['max_abs_diff']:.2e} on {b['compare']['rows_checked']:,} rows",
            found["max_abs_diff"] <= EQUAL_TOLERANCE and found["same_ids"])
    else:
        add(name, equal, _failure(ooc, b.get("memory"), b.get("compare")), None)
    name, threshold = "(b) out-of-core time vs the in-memory fit", f"time / in-memory time ≤ {TIME_RATIO:g}"
    if _ok(ooc, b.get("memory")):
        ratio = ooc["wall_seconds"] / b["memory"]["wall_seconds"]
        add(name, threshold, f"{ooc['wall_seconds']:.1f} / {b['memory']['wall_seconds']:.1f} s = {ratio:.2f}",
            ratio <= TIME_RATIO)
    else:
        add(name, threshold, _failure(ooc, b.get("memory")), None)
    return goals


def mib(n) -> str:
    return f"{n / 2**20:,.0f}"


def _figure(cuts: dict, key: str, parts: int, rule: str):
    figures = (cuts.get(key) or {}).get("figures") or []
    return next((f for f in figures if f["parts"] == parts and f["rule"] == rule), None)


def rank_memory(n_nodes: float, halo_bytes: float) -> float:
    """A rank's main arrays in the model: its CSR rows (int64 column + float32 value per stored entry, both
    directions), three n/P x d float32 blocks (iterate, next iterate, running sum) and the received halo rows
    of one block of columns (the exchange runs ``SPMM_BLOCK`` columns at a time)."""
    stored = 2 * TARGET_EDGES / TARGET_MACHINES
    return stored * 12 + 3 * n_nodes / TARGET_MACHINES * TARGET_DIM * ITEMSIZE + halo_bytes * SPMM_BLOCK / TARGET_DIM


def design(m: dict, graphs: dict) -> dict:
    """The 1-billion-edge, 16-machine model from the measured rate and the measured halo share."""
    cuts = m.get("c") or {}
    key = next((k for k in ("b", "a") if _figure(cuts, k, TARGET_MACHINES, "hash")), None)
    a, b = m.get("a") or {}, m.get("b") or {}
    rate_run = next(((name, r) for name, r in (("(a) 1 rank, torchrun", a.get("ranks1")),
                                                ("(b) out of core", b.get("outofcore")),
                                                ("(a) in memory", a.get("memory"))) if _ok(r)), None)
    if key is None or rate_run is None:
        return {}
    graph = graphs[key]
    part = rate_run[0][1]
    measured_dim = m[part]["dim"]
    # the products' work grows about linearly with d: a rate measured at d = 64 halves at d = 128
    rate = graphs[part]["n_lines"] / rate_run[1]["wall_seconds"] * measured_dim / TARGET_DIM
    n_target = TARGET_EDGES * graph["n_nodes"] / graph["n_lines"]
    out = {"graph": key, "rate_from": rate_run[0], "rate_dim": measured_dim, "edge_lines_per_second": rate,
           "n_nodes": n_target,
           "compute_seconds": TARGET_EDGES / TARGET_MACHINES / rate, "rules": {}}
    for rule in RULES:
        f = _figure(cuts, key, TARGET_MACHINES, rule)
        share = float(np.mean(f["halo"])) / graph["n_nodes"]
        step_bytes = share * n_target * TARGET_DIM * ITEMSIZE
        out["rules"][rule] = {"halo_share": share, "edge_cut_fraction": f["edge_cut_fraction"],
                              "bytes_per_step": step_bytes, "memory_bytes": rank_memory(n_target, step_bytes),
                              "communication_seconds": PRODUCTS * step_bytes / NETWORK_BYTES_PER_SECOND}
    gather = (TARGET_MACHINES - 1) / TARGET_MACHINES * n_target * TARGET_DIM * ITEMSIZE
    out["all_gather_bytes"] = gather
    out["all_gather_seconds"] = PRODUCTS * gather / NETWORK_BYTES_PER_SECOND
    return out


def _rate(graph: dict, run: dict, seconds_key: str = "wall_seconds") -> str:
    seconds = (run or {}).get(seconds_key) or ((run or {}).get("child") or {}).get(seconds_key)
    return f"{graph['n_lines'] / seconds / 1e6:.2f} M" if seconds else "–"


def _run_row(name: str, run: dict, graph: dict, diff: str) -> str:
    if not run or "error" in run or "skipped" in run:
        return f"| {name} | {_failure(run)} | | | | |"
    hwm, anon = _peak(run), _peak(run, "rss_anon_peak")
    return (f"| {name} | {run['wall_seconds']:.1f} | {mib(hwm)} | {mib(anon)} | {_rate(graph, run)} | {diff} |")


def _diff(compare: dict, key: str) -> str:
    found = ((compare or {}).get("candidates") or {}).get(key)
    return f"{found['max_abs_diff']:.1e}" if found and "max_abs_diff" in found else "–"


def build_report(record: dict) -> list:
    args, m, graphs = record["settings"], record["measurements"], record["graphs"]
    stamp = record["stamp"]
    lines = ["# FastRP at scale: partitioned and out-of-core embeddings", "",
             f"Written by `benchmarks/fastrp_scale.py` on {record['date']} (commit {stamp['commit']}"
             + (", with uncommitted changes" if stamp["dirty"] else "") + f"); this run took {record['seconds']:.0f} s"
             + (" (**quick mode**: tiny graphs, a smoke test of the harness, not a measurement)." if args["quick"] else "."),
             "", f"- Machine: {record['machine']}; " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()) + ".",
             f"- Graphs (cached in `{args['work_dir']}`): Chung-Lu endpoints with exponent {EXPONENT}, {LOCAL_SHARE:.0%} "
             f"of lines to a node a geometric offset (mean {LOCAL_MEAN_OFFSET}) further in id order, every node given "
             f"one such edge first, seed {SEED}; text `src dst` lines.",
             "- Every run is a child process with one thread; wall times cover its whole life (start-up, reading the "
             f"edge list, the fit, writing), medians over {args['repeats']} run(s). Memory: VmHWM and RssAnon of each "
             f"worker polled every {POLL_SECONDS * 1000:.0f} ms from the parent (the peak per worker; under torchrun the "
             "largest over the ranks).", "", "| graph | nodes | edge lines | distinct edges | file MiB | generated in s |",
             "|---|---|---|---|---|---|"]
    for key, g in graphs.items():
        distinct = ((m.get("c") or {}).get(key) or {}).get("n_edges_distinct")
        lines.append(f"| ({key}) | {g['n_nodes']:,} | {g['n_lines']:,} | {'–' if distinct is None else f'{distinct:,}'} "
                     f"| {mib(g['file_bytes'])} | {g['generate_seconds']:.1f}{' (cached)' if g['cached'] else ''} |")
    lines += ["", "## Goals", "", "| goal | threshold | measured | met |", "|---|---|---|---|"]
    for g in record["goals"]:
        lines.append(f"| {g['goal']} | {g['threshold']} | {g['measured']} | "
                     f"{'not measured' if g['met'] is None else verdict(g['met'])} |")
    header = ["| run | wall s | peak VmHWM MiB | peak RssAnon MiB | edge lines / s | max abs diff vs in memory |",
              "|---|---|---|---|---|---|"]
    if "a" in m:
        a, g = m["a"], graphs["a"]
        lines += ["", f"## (a) Partitioned, d = {a['dim']}", ""] + header
        lines.append(_run_row("in memory, 1 process", a["memory"], g, "reference"))
        for ranks in RANKS:
            lines.append(_run_row(f"torchrun, {ranks} rank(s), hash", a[f"ranks{ranks}"], g, _diff(a["compare"], f"ranks{ranks}")))
        lines += ["", "`PartitionedGraph.from_edgelist` under torchrun, per rank (mean / largest): `bytes_per_step(d, 4)` "
                  "counts the rows a rank sends plus those it receives; an all-gather of the iterate (ring) sends and "
                  "receives (P−1)/P × n × d × 4 bytes each per rank:", "",
                  "| ranks | rule | edge_cut | halo nodes | received (halo × d × 4) | sent + received | all-gather "
                  "received | all-gather sent + received | ratio |", "|---|---|---|---|---|---|---|---|---|"]
        for ranks, info in a["partition"].items():
            if "error" in info:
                lines.append(f"| {ranks} | | failed: {info['error']} | | | | | | |")
                continue
            for rule in RULES:
                rows = [r for rank in info["ranks"] for r in rank if r["rule"] == rule]
                steps, halo = [r["bytes_per_step"] for r in rows], [r["halo"] for r in rows]
                gather = (int(ranks) - 1) / int(ranks) * rows[0]["n_nodes"] * a["dim"] * ITEMSIZE
                lines.append(f"| {ranks} | {rule} | {rows[0]['edge_cut']:.1%} | {np.mean(halo):,.0f} / {max(halo):,} | "
                             f"{np.mean(halo) * a['dim'] * ITEMSIZE / 2**20:,.1f} MiB | {np.mean(steps) / 2**20:,.1f} / "
                             f"{max(steps) / 2**20:,.1f} MiB | {gather / 2**20:,.1f} MiB | {2 * gather / 2**20:,.1f} MiB | "
                             f"{np.mean(steps) / (2 * gather):.2f} |")
    if "b" in m:
        b, g = m["b"], graphs["b"]
        lines += ["", f"## (b) Out of core, d = {b['dim']}, --memory-budget {b['memory_budget']}", ""] + header
        lines.append(_run_row("out of core", b["outofcore"], g, _diff(b["compare"], "outofcore")))
        lines.append(_run_row("in memory", b["memory"], g, "reference"))
        spmm, rust = b["spmm"].get("child"), (b["rust"] or {}).get("child")
        lines += ["", f"SpMM floor ({SPMM_CALLS} chained `torch.sparse.mm` of the transition with a dense n × "
                  f"{b['dim']} float32 matrix; compute only): "
                  + (f"{spmm['seconds']:.1f} s (whole width {spmm['whole_seconds']:.1f} s, blocks of {SPMM_BLOCK} "
                     f"columns {spmm['blocked_seconds']:.1f} s; reading {spmm['read_seconds']:.1f} s), "
                     f"{_rate(g, spmm, 'seconds')} edge lines / s." if spmm else _failure(b["spmm"])),
                  "", "PyPI `fastrp` (Rust, `fit_csr`, one thread): "
                  + (f"{rust['seconds']:.1f} s (reading with graphkit {rust['read_seconds']:.1f} s, fit "
                     f"{rust['fit_seconds']:.1f} s), {_rate(g, rust, 'seconds')} edge lines / s, peak RssAnon "
                     f"{mib(b['rust']['tree_rss_anon_peak'])} MiB." if rust else _failure(b["rust"]))]
    lines += [""] + design_section(m.get("c") or {}, graphs, record.get("design") or {})
    return lines


def design_section(cuts: dict, graphs: dict, model: dict) -> list:
    lines = ["## (c) Design note: communication per step, edge cut, and a billion edges", "",
             "Each propagation step multiplies the rows a rank owns by the transition; it needs the current rows of "
             "its halo (the distinct non-owned neighbours of its nodes), so a rank receives |halo| × d × 4 bytes per "
             "step (float32) and sends the rows others need of it. |halo| ≤ min(cut edges at the rank, n − n/P): it "
             "grows with the edge cut and with P, but never past the all-gather alternative, (P−1)/P × n × d × 4. "
             f"FastRP's default weights (0, 1, 1) take {PRODUCTS} steps; the standardisation adds an all-reduce of "
             "2 × d numbers.", "",
             "The owners follow `PartitionedGraph`'s rules (hash: pandas' `hash_array` of the id modulo P; range: "
             "the sorted ids cut into P runs), recomputed here from the distinct undirected edges of the generated "
             "graphs for P up to 16 (at P = 2 and 4 they should match the `edge_cut` measured under torchrun in "
             "(a)). Edge cut: share of the edges whose ends have different owners. Bytes: received per step "
             "(|halo| × d × 4) against what an all-gather receives:", "",
             "| graph | P | rule | edge cut | halo per rank (mean / max) | received per step per rank (mean) | "
             "all-gather | ratio |", "|---|---|---|---|---|---|---|---|"]
    for key, cut in cuts.items():
        if "error" in cut:
            lines.append(f"| ({key}) | | | failed: {cut['error']} | | | | |")
            continue
        for f in cut["figures"]:
            lines.append(f"| ({key}) | {f['parts']} | {f['rule']} | {f['edge_cut_fraction']:.1%} | "
                         f"{np.mean(f['halo']):,.0f} / {max(f['halo']):,} | {f['bytes_per_step_mean'] / 2**20:,.1f} MiB | "
                         f"{f['all_gather_bytes'] / 2**20:,.1f} MiB | {f['bytes_per_step_mean'] / f['all_gather_bytes']:.2f} |")
    if model:
        g = graphs[model["graph"]]
        lines += ["", f"**A 1-billion-edge graph on {TARGET_MACHINES} machines** (model). Assume the degree "
                  f"distribution of graph ({model['graph']}) (mean {g['n_lines'] / g['n_nodes']:.0f} lines per node, "
                  f"so {model['n_nodes'] / 1e6:,.0f}M nodes), d = {TARGET_DIM}, one rank per machine working at the "
                  f"rate measured in {model['rate_from']} at d = {model['rate_dim']} (scaled to d = {TARGET_DIM}: "
                  f"{model['edge_lines_per_second'] / 1e6:.2f}M edge lines / s end to end, one thread), and a network of "
                  f"{NETWORK_BYTES_PER_SECOND * 8 / 1e9:.0f} Gbit/s per machine (assumed). Then T ≈ (m / P) / rate + "
                  f"{PRODUCTS} × |halo| × d × 4 / bandwidth, |halo| = the measured halo share at P = {TARGET_MACHINES} "
                  "× n. Memory per rank: its CSR rows (int64 column + float32 value per stored entry, both directions), "
                  "three n/P × d float32 blocks and the received halo rows.", "", "| rule | halo share | received per step per rank | memory per rank | compute s | "
                  "communication s | total s |", "|---|---|---|---|---|---|---|"]
        for rule, r in model["rules"].items():
            lines.append(f"| {rule} | {r['halo_share']:.1%} | {r['bytes_per_step'] / 2**30:,.1f} GiB | "
                         f"{r['memory_bytes'] / 2**30:,.0f} GiB | "
                         f"{model['compute_seconds']:,.0f} | {r['communication_seconds']:,.0f} | "
                         f"{model['compute_seconds'] + r['communication_seconds']:,.0f} |")
        lines += ["", f"An all-gather of the whole iterate instead would move {model['all_gather_bytes'] / 2**30:,.1f} "
                  f"GiB per rank per step ({model['all_gather_seconds']:,.0f} s of communication). With c cores per "
                  "machine the compute term shrinks about c-fold (SpMM is memory-bound, so less in practice), and the "
                  "halo exchange then dominates: a partition with a lower edge cut (range on crawled ids, or a "
                  "graph partitioner) cuts it directly. The received halo rows would be the largest array of a "
                  "rank at full width; the exchange runs per block of 32 columns (FastRP's columns are "
                  "independent), which divides that buffer by d / 32 at the same bytes per step (the memory "
                  "column above counts one block)."]
    return lines


def versions() -> dict:
    import importlib.metadata

    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    try:
        out["fastrp (PyPI)"] = importlib.metadata.version("fastrp")
    except importlib.metadata.PackageNotFoundError:
        pass
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a,b,c", help="which parts to run, e.g. a,c")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each timed command (median wall time)")
    parser.add_argument("--memory-budget", default="4GB", help="the out-of-core run's --memory-budget")
    parser.add_argument("--skip-in-memory-large", action="store_true", help="no in-memory fit in (b)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/fastrp_scale"))
    parser.add_argument("--quick", action="store_true", help="tiny graphs: a smoke test of the harness")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        CHILDREN[spec["kind"]](spec)
        return
    if not SUPPORTED:
        raise SystemExit("needs Linux /proc")
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"a", "b", "c"}:
        raise SystemExit(f"--parts takes a, b and c; got {args.parts!r}")
    if args.quick:
        args.work_dir = args.work_dir / "quick"
    started = time.perf_counter()
    timeout = 300 if args.quick else 6 * 3600
    logs = args.work_dir / "logs"
    keys = sorted({"a", "b"} if "c" in parts else parts & {"a", "b"})
    graphs = {key: prepare_graph(args.work_dir, *sizes(args)[key][:2]) for key in keys}
    measurements = {}
    if "a" in parts:
        measurements["a"] = measure_a(args, graphs["a"], logs, timeout)
    if "b" in parts:
        measurements["b"] = measure_b(args, graphs["b"], logs, timeout)
    if "c" in parts:
        measurements["c"] = measure_c(graphs, logs, timeout, {k: sizes(args)[k][2] for k in graphs})
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"}
    record = {"stamp": git_stamp(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": machine_summary(), "memory_total_bytes": memory_total_bytes(), "versions": versions(),
              "settings": settings, "graphs": graphs, "measurements": measurements, "goals": judge(measurements),
              "design": design(measurements, graphs), "seconds": time.perf_counter() - started}
    save_results(args.out, record, build_report(record))


if __name__ == "__main__":
    main()
