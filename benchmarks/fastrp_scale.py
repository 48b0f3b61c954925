"""FastRP at scale: partitioned (torchrun) and out-of-core embeddings of generated power-law graphs,
against the in-memory fit, the SpMM floor and the Rust package; the edge cut and halo of the owner
rules, and a model of a billion edges on 16 machines."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from .harness import Benchmark, Column, Dataset, Goal, Method, Table, Unavailable
from .paths import scratch_folder

WORK_DIR = Path("/tmp/fastrp_scale")
TORCHRUN = Path(sys.executable).parent / "torchrun"
SIZES = {"a": (2_000_000, 20_000_000, 128), "b": (5_000_000, 50_000_000, 64)}
QUICK_SIZES = {"a": (20_000, 200_000, 128), "b": (30_000, 300_000, 64)}
MEMORY_BUDGET = "2GB"
RANKS = (1, 2, 4)
INFO_RANKS = (2, 4)
DESIGN_RANKS = (2, 4, 8, 16)
RULES = ("hash", "range")
SPMM_CALLS = 4
CHECK_ROWS = 200_000
TIMEOUT, QUICK_TIMEOUT = 3600, 300
# the goals and the model
EQUAL_TOLERANCE = 1e-4
PRODUCTS = 3                       # FastRP's default iteration weights (0, 1, 1)
TARGET_EDGES = 1_000_000_000
TARGET_MACHINES = 16
TARGET_DIM = 128
NETWORK_BYTES_PER_SECOND = 1.25e9  # 10 Gbit/s per machine (an assumption, not measured)
GRAPH_A, GRAPH_B = "graph (a)", "graph (b)"


def quick_folder() -> Path:
    """A temporary folder for the quick graphs, removed when the process ends."""
    return scratch_folder("fastrp_scale_quick_")


def graph_loader(key: str):
    def load(quick: bool) -> dict:
        from ._fastrp_scale_graphs import prepare_graph

        n, m, dim = (QUICK_SIZES if quick else SIZES)[key]
        work = quick_folder() if quick else WORK_DIR
        graph = prepare_graph(work, n, m)
        return {**graph, "dim": dim, "runs": work / f"runs_{key}_n{n}", "logs": work / "logs", "quick": quick,
                "timeout": QUICK_TIMEOUT if quick else TIMEOUT}
    return load


def datasets(quick: bool) -> list:
    sizes = QUICK_SIZES if quick else SIZES
    return [Dataset(f"graph ({key})", graph_loader(key), params={"n_nodes": n, "edge_lines": m, "dim": dim},
                    description=f"generated power-law graph, {n:,} nodes, {m:,} edge lines, d = {dim}")
            for key, (n, m, dim) in sizes.items()]


# ------------------------------------------------------------------------------------------------
# launching

def fresh(path: Path, folder: bool = False) -> str:
    """``path`` with nothing at it (its parent folder made); a folder's path is given with a trailing slash."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path) + ("/" if folder else "")


def embed_command(data: dict, out: str, seed: int, ranks: int = 0, extra: tuple = ()) -> list:
    """``graphkit embed`` in one process (``ranks`` 0) or under torchrun with ``ranks`` workers."""
    base = ["-m", "graphkit", "embed", data["path"], "--out", out, "--dim", str(data["dim"]), "--seed", str(seed),
            "-q", "--device", "cpu", *extra]
    if ranks:
        return [str(TORCHRUN), "--standalone", "--nproc_per_node", str(ranks), *base]
    return [sys.executable, *base]


def child_command(spec: dict, ranks: int = 0) -> list:
    import json

    base = ["-m", "benchmarks._fastrp_scale_child", json.dumps(spec)]
    if ranks:
        return [str(TORCHRUN), "--standalone", "--nproc_per_node", str(ranks), *base]
    return [sys.executable, *base]


def polled(data: dict, command: list, name: str) -> dict:
    """The command's record (wall time, memory of every process); RuntimeError when it failed."""
    from ._fastrp_scale_poll import run_polled

    result = run_polled(command, name, data["logs"], data["timeout"])
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def peaks(result: dict, launcher: bool) -> dict:
    """The largest VmHWM and RssAnon over the workers (the ranks under torchrun)."""
    from ._fastrp_scale_poll import worker_peaks

    workers = worker_peaks(result, launcher)
    return {"peak_bytes": max((w["hwm_peak"] for w in workers), default=None),
            "rss_anon_peak": max((w["rss_anon_peak"] for w in workers), default=None), "workers": len(workers)}


def reference_path(data: dict, seed: int) -> Path:
    return data["runs"] / f"memory_seed{seed}.npy"


def ensure_reference(data: dict, seed: int) -> Path:
    """The in-memory embedding of ``seed`` (computed, untimed, when an earlier method did not leave it)."""
    path = reference_path(data, seed)
    if not path.exists():
        polled(data, embed_command(data, fresh(path), seed), f"reference_seed{seed}")
    return path


def compared(data: dict, seed: int, candidate: str, rows=None) -> dict:
    """Max abs difference of the candidate embedding from the in-memory one (1.0 when the ids differ)."""
    from ._fastrp_scale_child import compare_embeddings

    spec = {"reference": str(ensure_reference(data, seed)), "candidates": {"run": candidate}, "rows": rows, "seed": seed}
    found = compare_embeddings(spec)
    result = found["candidates"]["run"]
    same = bool(result.get("same_ids"))
    return {"max_abs_diff": result["max_abs_diff"] if same else 1.0, "same_ids": float(same),
            "rows_checked": found["rows_checked"]}


def timed(data: dict, result: dict, launcher: bool) -> dict:
    return {"seconds": result["wall_seconds"], **peaks(result, launcher),
            "edge_lines_per_second": data["n_lines"] / result["wall_seconds"], "edge_lines": data["n_lines"],
            "n_nodes": data["n_nodes"], "dim": data["dim"]}


# ------------------------------------------------------------------------------------------------
# the methods

def in_memory(data, *, split, seed, meter):
    """``python -m graphkit embed EDGES --out x.npy``: the reference of every comparison."""
    result = polled(data, embed_command(data, fresh(reference_path(data, seed)), seed), f"memory_seed{seed}")
    return timed(data, result, launcher=False)


def partitioned(data, *, split, seed, meter, ranks):
    """``torchrun --nproc_per_node P -m graphkit embed EDGES --out DIR/ --partition hash``."""
    shards = data["runs"] / f"ranks{ranks}"
    result = polled(data, embed_command(data, fresh(shards, folder=True), seed, ranks, ("--partition", "hash")),
                    f"ranks{ranks}_seed{seed}")
    return {**timed(data, result, launcher=True), **compared(data, seed, str(shards) + "/")}


def out_of_core(data, *, split, seed, meter, budget):
    """``python -m graphkit embed EDGES --out x.npy --memory-budget B --temp-dir DIR``."""
    from ._fastrp_scale_graphs import budget_bytes

    out, temp = data["runs"] / "outofcore.npy", data["runs"] / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    result = polled(data, embed_command(data, fresh(out), seed, 0, ("--memory-budget", budget, "--temp-dir", str(temp))),
                    f"outofcore_seed{seed}")
    figures = {**timed(data, result, launcher=False), "budget_bytes": budget_bytes(budget), "completed": 1.0}
    figures.update(compared(data, seed, str(out), None if data["quick"] else CHECK_ROWS))
    fresh(out)
    fresh(reference_path(data, seed))   # 1.3 GB each at full size; recomputed if a later call needs it
    return figures


def spmm_floor(data, *, split, seed, meter):
    """4 chained ``torch.sparse.mm`` of the CSR transition with a dense n x d float32 matrix (compute only)."""
    spec = {"kind": "spmm", "edges": data["path"], "dim": data["dim"], "calls": SPMM_CALLS, "seed": seed}
    result = polled(data, child_command(spec), f"spmm_seed{seed}")
    child = result["child"]
    return {"seconds": child["seconds"], **peaks(result, launcher=False), "read_seconds": child["read_seconds"],
            "whole_seconds": child["whole_seconds"], "blocked_seconds": child["blocked_seconds"],
            "edge_lines_per_second": data["n_lines"] / child["seconds"]}


def rust_fastrp(data, *, split, seed, meter):
    """The PyPI ``fastrp`` package (Rust): ``fit_csr`` on the CSR graphkit reads, weights (0, 1, 1)."""
    if importlib.util.find_spec("fastrp") is None:
        raise Unavailable("the PyPI package fastrp is not installed (pip install '.[bench]')")
    spec = {"kind": "rust", "edges": data["path"], "dim": data["dim"], "seed": seed}
    result = polled(data, child_command(spec), f"rust_seed{seed}")
    child = result["child"]
    if not child["finite"]:
        raise RuntimeError("the Rust package's embedding is not finite")
    return {"seconds": child["seconds"], **peaks(result, launcher=False), "read_seconds": child["read_seconds"],
            "fit_seconds": child["fit_seconds"], "edge_lines_per_second": data["n_lines"] / child["seconds"]}


def partition_info(data, *, split, seed, meter, ranks):
    """``PartitionedGraph.from_edgelist`` under torchrun at each of ``ranks``, per rule: edge cut, halo,
    ``bytes_per_step(d, 4)``."""
    figures = {"seconds": 0.0}
    for parts in ranks:
        spec = {"kind": "partition", "edges": data["path"], "dim": data["dim"], "rules": list(RULES)}
        child = polled(data, child_command(spec, parts), f"partition{parts}")["child"]
        figures["seconds"] += max(r["seconds"] for rank in child["ranks"] for r in rank)
        figures.update(partition_figures_of(child, parts, data["dim"]))
    return figures


def partition_figures_of(child: dict, parts: int, dim: int) -> dict:
    import numpy as np

    figures = {}
    for rule in RULES:
        rows = [r for rank in child["ranks"] for r in rank if r["rule"] == rule]
        halo, steps = [r["halo"] for r in rows], [r["bytes_per_step"] for r in rows]
        gather = (parts - 1) / parts * rows[0]["n_nodes"] * dim * 4
        prefix = f"p{parts}_{rule}"
        figures.update({f"{prefix}_edge_cut": rows[0]["edge_cut"], f"{prefix}_halo_mean": float(np.mean(halo)),
                        f"{prefix}_halo_max": max(halo), f"{prefix}_bytes_per_step_mean": float(np.mean(steps)),
                        f"{prefix}_bytes_per_step_max": max(steps), f"{prefix}_owned_total": sum(r["owned"] for r in rows),
                        f"{prefix}_over_all_gather": float(np.mean(steps)) / (2 * gather),
                        f"p{parts}_all_gather_bytes_both_ways": 2 * gather})
    return figures


def owner_rules(data, *, split, seed, meter):
    """Edge cut and halo of hash and range owners for P = 2..16, from the distinct undirected edges."""
    spec = {"kind": "cut", "n": data["n_nodes"], "m": data["m"], "ranks": list(DESIGN_RANKS), "dim": data["dim"]}
    child = polled(data, child_command(spec), "cut")["child"]
    figures = {"seconds": child["seconds"], "n_edges_distinct": child["n_edges_distinct"], "n_nodes": data["n_nodes"],
               "edge_lines": data["n_lines"]}
    for f in child["figures"]:
        prefix = f"p{f['parts']}_{f['rule']}"
        figures.update({f"{prefix}_edge_cut": f["edge_cut_fraction"], f"{prefix}_halo_mean": float(sum(f["halo"]) / len(f["halo"])),
                        f"{prefix}_halo_max": max(f["halo"]), f"{prefix}_received_bytes": f["bytes_per_step_mean"],
                        f"{prefix}_over_all_gather": f["bytes_per_step_mean"] / f["all_gather_bytes"],
                        f"p{f['parts']}_all_gather_bytes": f["all_gather_bytes"]})
    return figures


# ------------------------------------------------------------------------------------------------
# goals and the model

def rank_name(ranks: int) -> str:
    return f"torchrun, {ranks} rank{'s' if ranks > 1 else ''}, hash"


def metric(name: str, method: str, dataset: str):
    return lambda r, seed: r.value(name, method=method, dataset=dataset, seed=seed)


def ratio(name: str, numerator: str, denominator: str, dataset: str, other: str = None):
    return lambda r, seed: (r.value(name, method=numerator, dataset=dataset, seed=seed)
                            / r.value(other or name, method=denominator, dataset=dataset, seed=seed))


def model_seconds(rule: str, part: str = "total"):
    """The 1-billion-edge, 16-machine model: compute at the rate of 1 rank under torchrun on graph (a)
    (d = 128), communication of the halo share measured at P = 16 on graph (b), at 10 Gbit/s."""
    def value(r, seed):
        rate = r.value("edge_lines_per_second", method=rank_name(1), dataset=GRAPH_A, seed=seed)
        rate *= r.value("dim", method=rank_name(1), dataset=GRAPH_A, seed=seed) / TARGET_DIM
        cut = dict(method="owner rules", dataset=GRAPH_B, seed=BENCHMARK.seeds[0])
        n_target = TARGET_EDGES * r.value("n_nodes", **cut) / r.value("edge_lines", **cut)
        compute = TARGET_EDGES / TARGET_MACHINES / rate
        if rule == "all-gather":
            moved = (TARGET_MACHINES - 1) / TARGET_MACHINES * n_target * TARGET_DIM * 4
        else:
            share = r.value(f"p{TARGET_MACHINES}_{rule}_halo_mean", **cut) / r.value("n_nodes", **cut)
            moved = share * n_target * TARGET_DIM * 4
        communication = PRODUCTS * moved / NETWORK_BYTES_PER_SECOND
        return {"total": compute + communication, "communication": communication, "compute": compute}[part]
    return value


def cut_matches_partitioned_graph(r, seed):
    """Largest |edge cut| difference between PartitionedGraph under torchrun and the recomputed owner rules."""
    where = dict(dataset=GRAPH_A, seed=seed)
    measured = r.rows(method="PartitionedGraph under torchrun", **where)[0]["metrics"]
    return max(abs(measured[f"p{ranks}_{rule}_edge_cut"] - r.value(f"p{ranks}_{rule}_edge_cut", method="owner rules", **where))
               for ranks in INFO_RANKS for rule in RULES if f"p{ranks}_{rule}_edge_cut" in measured)


def equal_goal(method: str, dataset: str, text: str) -> Goal:
    return Goal(f"{text} (max abs difference over the rows checked; 1.0 when the ids differ)",
                metric("max_abs_diff", method, dataset), "<=", EQUAL_TOLERANCE, tolerance=EQUAL_TOLERANCE / 2,
                fmt="{:.2e}")


GOALS = [
    *[equal_goal(rank_name(ranks), GRAPH_A, f"(a) {ranks} rank(s) give the in-memory embedding") for ranks in RANKS],
    Goal("(a) per-rank peak memory at 2 ranks vs 1 rank (VmHWM(2) / VmHWM(1))",
         ratio("peak_bytes", rank_name(2), rank_name(1), GRAPH_A), "<=", 0.6, tolerance=0.05, fmt="{:.3f}"),
    Goal("(b) out-of-core fit completes (completed runs per seed)",
         lambda r, seed: float(len(r.rows(method="out of core", dataset=GRAPH_B, seed=seed))), ">=", 1.0,
         tolerance=0.5, fmt="{:g}"),
    Goal(f"(b) out-of-core peak anonymous memory within the budget (RssAnon / {MEMORY_BUDGET})",
         ratio("rss_anon_peak", "out of core", "out of core", GRAPH_B, "budget_bytes"), "<=", 1.0, tolerance=0.05,
         fmt="{:.3f}"),
    equal_goal("out of core", GRAPH_B, "(b) out-of-core embedding equals the in-memory fit on the rows checked"),
    Goal("(b) out-of-core time vs the in-memory fit (time / in-memory time)",
         ratio("seconds", "out of core", "in memory", GRAPH_B), "<=", 2.0, tolerance=0.2, fmt="{:.2f}"),
    Goal("(b) out-of-core time / the SpMM floor's compute time", ratio("seconds", "out of core", "SpMM floor", GRAPH_B),
         "<=", 1.0, tolerance=0.5, fmt="{:.2f}", kind="context"),
    Goal("(b) in-memory time / the Rust package's (read + fit)", ratio("seconds", "in memory", "Rust fastrp", GRAPH_B),
         "<=", 1.0, tolerance=0.5, fmt="{:.2f}", kind="context"),
    Goal("(c) the recomputed owner rules give PartitionedGraph's edge cut at P = 2, 4 (largest |difference|)",
         cut_matches_partitioned_graph, "<=", 1e-9, tolerance=1e-9, fmt="{:.1e}", kind="context"),
    *[Goal(f"(c) model: 1e9 edges on {TARGET_MACHINES} machines, {rule} {'partition' if rule != 'all-gather' else 'of the iterate'}: "
           f"{part} seconds", model_seconds(rule, part), "<=", 3600.0, tolerance=60.0, fmt="{:,.0f}", kind="context")
      for rule in ("hash", "range", "all-gather") for part in ("compute", "communication", "total")
      if not (rule == "all-gather" and part == "compute")],
]


def mib(name: str, header: str) -> Column:
    return Column(name, header, "{:,.0f}", "max", 2**-20)


RUN_COLUMNS = [Column("seconds", "wall s", "{:.1f}"), mib("peak_bytes", "peak VmHWM MiB (per rank)"),
               mib("rss_anon_peak", "peak RssAnon MiB (per rank)"),
               Column("edge_lines_per_second", "M edge lines / s", "{:.2f}", scale=1e-6),
               Column("max_abs_diff", "max abs diff vs in memory", "{:.1e}", "max")]

TABLES = [
    Table("(a) Partitioned against in memory", RUN_COLUMNS, datasets=[GRAPH_A],
          methods=["in memory", *[rank_name(ranks) for ranks in RANKS]],
          note="Wall time of the whole command (start-up, reading the edge list, the fit, writing); memory polled "
               "every 25 ms, the largest over the ranks."),
    Table("(a) PartitionedGraph under torchrun, per rank (mean over the ranks)",
          [Column(f"p{parts}_{rule}_{name}", f"P = {parts}, {rule}: {header}", fmt, "mean", scale)
           for parts in INFO_RANKS for rule in RULES
           for name, header, fmt, scale in (("edge_cut", "edge cut", "{:.1%}", 1.0),
                                            ("halo_mean", "halo nodes", "{:,.0f}", 1.0),
                                            ("bytes_per_step_mean", "sent + received MiB", "{:,.1f}", 2**-20),
                                            ("over_all_gather", "/ all-gather", "{:.2f}", 1.0))]
          + [Column(f"p{parts}_all_gather_bytes_both_ways", f"P = {parts}: all-gather sent + received MiB",
                    "{:,.1f}", "mean", 2**-20) for parts in INFO_RANKS],
          datasets=[GRAPH_A], methods=["PartitionedGraph under torchrun"],
          note="`bytes_per_step(d, 4)` counts the rows a rank sends plus those it receives; an all-gather of the "
               "iterate (ring) sends and receives (P-1)/P x n x d x 4 bytes each per rank."),
    Table(f"(b) Out of core (--memory-budget {MEMORY_BUDGET}) against in memory, the SpMM floor and the Rust package",
          RUN_COLUMNS + [Column("read_seconds", "reading s", "{:.1f}")], datasets=[GRAPH_B],
          methods=["out of core", "in memory", "SpMM floor", "Rust fastrp"],
          note="The SpMM floor's and the Rust package's seconds are their compute (the floor) or read + fit (Rust), "
               "not the command's whole life; the floor is the faster of the whole width and blocks of 32 columns."),
    *[Table(f"(c) Owner rules: {title}",
            [Column(f"p{parts}_{rule}_{name}", f"P = {parts}, {rule}", fmt, "mean", scale)
             for parts in DESIGN_RANKS for rule in RULES],
            rows=("dataset",), datasets=[GRAPH_A, GRAPH_B], methods=["owner rules"])
      for title, name, fmt, scale in (("edge cut (share of distinct edges)", "edge_cut", "{:.1%}", 1.0),
                                      ("halo nodes per rank (mean)", "halo_mean", "{:,.0f}", 1.0),
                                      ("received per step per rank, MiB (mean)", "received_bytes", "{:,.1f}", 2**-20),
                                      ("received per step / all-gather", "over_all_gather", "{:.2f}", 1.0))],
]

DESCRIPTION = f"""
- Graphs (`benchmarks/_fastrp_scale_graphs.py`, generated once and cached in `{WORK_DIR}`; quick mode: small ones in a temporary folder): Chung-Lu endpoints with exponent 2.3, 30% of lines to a node a geometric offset (mean 20) further in id order, every node given one such edge first, generator seed 0; text `src dst` lines. Graph (a): 2M nodes, 20M edge lines, d = 128. Graph (b): 5M nodes, 50M edge lines, d = 64 (the earlier single-measurement script used 10M / 100M with a 4GB budget; both are halved here so that three seeds fit the run, keeping the budget about a third of what the in-memory fit holds).
- (a) `torchrun --standalone --nproc_per_node P -m graphkit embed EDGES --out DIR/ --partition hash` for P = 1, 2, 4 (gloo, 1 thread per rank; at P = 1 the one-process partitioned path) against the in-memory `python -m graphkit embed EDGES --out x.npy`, same `--seed`. Every layout must give the in-memory embedding (all rows compared).
- (b) `python -m graphkit embed EDGES --out x.npy --memory-budget {MEMORY_BUDGET} --temp-dir DIR` against the in-memory fit (compared on {CHECK_ROWS:,} seeded random rows; all rows in quick mode); the SpMM floor ({SPMM_CALLS} chained `torch.sparse.mm` of the CSR transition with a dense n x d float32 matrix after a warm-up, whole width and in blocks of 32 columns, the faster); peer: the PyPI `fastrp` package (Rust, `fit_csr` on the CSR graphkit reads, weights (0, 1, 1), one thread), unavailable when not installed.
- Seeds: the projection's seed (`--seed`); each seed is a repeated measurement on the same graph, so the spread is the timing spread. Nothing is tuned: no validation split.
- Every run is a fresh child process with one thread (`OMP_NUM_THREADS=1`, `RAYON_NUM_THREADS=1`); its wall time is its whole life. Memory: VmHWM and RssAnon of every process polled every 25 ms from the parent (per worker; under torchrun the largest over the ranks); a child is killed (recorded as out of memory) when the machine's MemAvailable falls under 1 GiB.
- (c) Design note. Each propagation step multiplies the rows a rank owns by the transition; it needs the current rows of its halo (the distinct non-owned neighbours of its nodes), so a rank receives |halo| x d x 4 bytes per step and sends the rows others need of it. |halo| <= min(cut edges at the rank, n - n/P): it grows with the edge cut and with P, but never past the all-gather alternative, (P-1)/P x n x d x 4. FastRP's default weights (0, 1, 1) take {PRODUCTS} steps; the standardisation adds an all-reduce of 2 x d numbers. The owner rules are `PartitionedGraph`'s (hash: pandas' `hash_array` of the id modulo P; range: the sorted ids cut into P runs), recomputed from the distinct undirected edges for P up to 16; at P = 2 and 4 they must match the edge cut measured under torchrun. The edge cut, halo and partition figures are deterministic: they are computed once, at seed 0.
- The 1-billion-edge model: {TARGET_MACHINES} machines, d = {TARGET_DIM}, the degree distribution of graph (b), one rank per machine working at the end-to-end rate of 1 rank under torchrun on graph (a), a network of 10 Gbit/s per machine (assumed, not measured). T = (m / P) / rate + {PRODUCTS} x |halo| x d x 4 / bandwidth, |halo| = the halo share measured at P = {TARGET_MACHINES} x n; an all-gather of the whole iterate instead moves (P-1)/P x n x d x 4 per rank per step. With c cores per machine the compute term shrinks about c-fold (SpMM is memory-bound, so less in practice) and the halo exchange then dominates: a partition with a lower edge cut (range on crawled ids, or a graph partitioner) cuts it directly. The exchange runs per block of 32 columns (FastRP's columns are independent), which divides the received buffer by d / 32 at the same bytes per step.
"""

BENCHMARK = Benchmark(
    name="fastrp_scale",
    title="FastRP at scale: partitioned and out-of-core embeddings",
    description=DESCRIPTION,
    datasets=datasets,
    methods=[
        Method("in memory", in_memory, description="python -m graphkit embed, one process: the reference"),
        *[Method(rank_name(ranks), partitioned, settings={"ranks": ranks}, datasets=[GRAPH_A]) for ranks in RANKS],
        Method("out of core", out_of_core, settings={"budget": MEMORY_BUDGET}, datasets=[GRAPH_B]),
        Method("SpMM floor", spmm_floor, kind="floor", datasets=[GRAPH_B]),
        Method("Rust fastrp", rust_fastrp, kind="peer", datasets=[GRAPH_B],
               description="PyPI fastrp, fit_csr, weights (0, 1, 1), one thread"),
        Method("PartitionedGraph under torchrun", partition_info, settings={"ranks": INFO_RANKS},
               quick={"ranks": INFO_RANKS[:1]}, datasets=[GRAPH_A], seeds=(0,),
               description="the design figures at P = 2 and 4 (quick mode: P = 2 only)"),
        Method("owner rules", owner_rules, seeds=(0,), description="the design note's edge cut and halo"),
    ],
    seeds=(0, 1, 2),
    goals=GOALS,
    tables=TABLES,
    code=("graphkit", "tensorkit"),
)
