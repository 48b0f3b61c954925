"""The generated power-law graphs of the FastRP scaling benchmark, and the owner rules of its design note.

Graphs: text edge lists (``src dst`` per line, integer ids 0..n-1), generated in blocks with NumPy and
cached in a folder (reused when present; a stamp file names the settings). Every node first gets an edge
to a node a geometric offset (mean 20) further on in id order, so all n nodes appear; every other edge
joins a Chung-Lu endpoint (expected degree of the node of rank r proportional to r^(-1/(gamma-1)),
gamma = 2.3, the ranks scattered over the ids by a seeded permutation) to either a second Chung-Lu
endpoint or, for 30% of the lines, a node a geometric offset further on (some locality in id order, as
crawled graphs have). Self loops are dropped; repeated lines stay (the reader merges them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

SEED = 0
EXPONENT = 2.3
LOCAL_SHARE = 0.3
LOCAL_MEAN_OFFSET = 20
BLOCK_LINES = 4_000_000
GENERATOR_VERSION = 1
ITEMSIZE = 4


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
    return {**graph, "path": str(path), "cached": False}


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



def budget_bytes(text: str) -> int:
    """``"4GB"`` -> 4e9 bytes (GB, MB, KB decimal; GiB, MiB, KiB binary; plain bytes)."""
    units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 10**3, "MB": 10**6, "GB": 10**9,
             "TB": 10**12, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * factor)
    return int(float(upper))

