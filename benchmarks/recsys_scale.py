"""Scaling the recommenders: streamed CTR training from files, and data-parallel CTR and DSL training
(one process against two under torchrun), each fit in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .harness import Benchmark, Column, Dataset, Goal, Method, Table, Unavailable
from .paths import scratch_folder, shared_data

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).parent / "torchrun"
WORK_DIR = Path("/tmp/recsys_scale")
DATA_SEED = 0
# the generated files: a source of SOURCE_ROWS training rows (the earlier benchmark's, cached) whose
# first ROWS, ROWS // 10 and DP_ROWS lines are the training files, and TEST_ROWS test rows
SOURCE_ROWS, ROWS, DP_ROWS, TEST_ROWS = 5_000_000, 5_000_000, 500_000, 200_000
QUICK_ROWS, QUICK_DP_ROWS, QUICK_TEST_ROWS = 20_000, 20_000, 5_000
VOCABULARY = {"max_cardinality": 100_000}      # write_criteo_like's defaults otherwise (13 + 26 fields)
CTR = {"epochs": 1}
QUICK_CTR = {"epochs": 1, "ctr": {"chunksize": 1_000, "shuffle_buffer": 4_000, "batch_size": 256}}
DSL = {"backbone": "mf", "density": 0.5, "n_factors": 64, "batch_size": 2048, "lr": 1e-3}
DSL_EPOCHS, QUICK_DSL_EPOCHS = 3, 1
WORLD_SIZES = (2, 4, 8)
TIMEOUT, QUICK_TIMEOUT = 3600, 300


# ------------------------------------------------------------------------------------------------
# data

def quick_folder() -> Path:
    """A temporary folder for the quick files, removed when the process ends."""
    return scratch_folder("recsys_scale_quick_")


def copy_head(source: Path, target: Path, n: int) -> None:
    """The first ``n`` lines of ``source`` as ``target`` (written beside it, then renamed)."""
    partial = target.with_name(target.name + ".part")
    with open(source, "rb") as inp, open(partial, "wb") as out:
        for i, line in enumerate(inp):
            if i == n:
                break
            out.write(line)
    partial.replace(target)


def generated(folder: Path, rows: int, test_rows: int) -> dict:
    """``rows`` training and ``test_rows`` test rows of one planted model, generated once per settings."""
    from recsys.datasets import write_criteo_like

    folder = folder / f"criteo_like_{rows}_{test_rows}_seed{DATA_SEED}"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"source": folder / "train.txt", "test": folder / "test.txt"}
    stamp = folder / "settings.json"
    settings = {"rows": rows, "test_rows": test_rows, "seed": DATA_SEED, **VOCABULARY}
    if not (stamp.exists() and json.loads(stamp.read_text()) == settings and files["source"].exists()
            and files["test"].exists()):
        write_criteo_like([files["source"], files["test"]], [rows, test_rows], random_state=DATA_SEED, **VOCABULARY)
        stamp.write_text(json.dumps(settings))
    return files


def load_criteo_like(quick: bool) -> dict:
    """The training files (the first N, N/10 and data-parallel rows of the source) and the test file."""
    if quick:
        work, (source, rows, dp, test) = quick_folder(), (QUICK_ROWS, QUICK_ROWS, QUICK_DP_ROWS, QUICK_TEST_ROWS)
    else:
        work, (source, rows, dp, test) = WORK_DIR, (SOURCE_ROWS, ROWS, DP_ROWS, TEST_ROWS)
    files = generated(work, source, test)
    folder = files["source"].parent
    for key, n in (("train", rows), ("small", rows // 10), ("dp", dp)):
        files[key] = folder / f"train_first_{n}.txt"
        if not files[key].exists():
            copy_head(files["source"], files[key], n)
    return {**{key: str(path) for key, path in files.items()}, "quick": quick,
            "timeout": QUICK_TIMEOUT if quick else TIMEOUT}


def load_gowalla(quick: bool) -> dict:
    """The LightGCN split of Gowalla; quick mode: the child generates low-rank interactions instead."""
    if quick:
        return {"quick": True, "data_root": "", "timeout": QUICK_TIMEOUT}
    root = shared_data("recsys", "gowalla")
    if not (root / "train.txt").exists():
        raise Unavailable(f"{root / 'train.txt'} not found")
    return {"quick": False, "data_root": str(root), "timeout": TIMEOUT}


# ------------------------------------------------------------------------------------------------
# launching the children

def launch(spec: dict, processes: int, timeout: float) -> dict:
    """Run a child (``processes`` > 1: under torchrun) and return the JSON rank 0 prints."""
    command = [sys.executable, "-m", "benchmarks._recsys_scale_child", json.dumps(spec)]
    if processes > 1:
        command = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(processes), *command[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    lines = [line for line in result.stdout.strip().splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{command[0]} exited with {result.returncode}: " + _failure(result.stderr))
    return json.loads(lines[-1])


def _failure(stderr: str) -> str:
    """The lines of a failed child's stderr that say why: the first error or abort of any rank and the last."""
    markers = ("Error", "error", "terminate called", "Signal", "exitcode")
    lines = [line.strip() for line in stderr.splitlines() if any(m in line for m in markers)]
    picked = list(dict.fromkeys(lines[:1] + lines[-2:])) or stderr.strip().splitlines()[-3:] or ["no output"]
    return " | ".join(line[:300] for line in picked)


def design_figures(child: dict) -> dict:
    """Bytes a rank exchanges per step for the benchmark's model and batch, per world size."""
    dense, tables = child["parameters"]["dense"], child["parameters"]["tables"]
    per_row = sum(8 + 4 * width for width in sorted({w for _, w in tables}))  # int64 index + float32 values
    table_values = sum(rows * width for rows, width in tables)
    out = {"dense_parameters": dense, "table_parameters": table_values, "bytes_per_touched_row": per_row,
           "batch_size": child["batch_size"]}
    for size in WORLD_SIZES:
        touched = child["touched_rows"][str(size)]
        out.update({f"touched_rows_{size}": touched,
                    f"dense_allreduce_bytes_{size}": 2 * (size - 1) / size * 4 * dense,
                    f"row_sparse_received_bytes_{size}": (size - 1) * touched * per_row,
                    f"dense_tables_allreduce_bytes_{size}": 2 * (size - 1) / size * 4 * table_values})
    return out


def ctr_fit(data, *, split, seed, meter, file, mode="stream", processes=1, design=False, epochs=1, ctr=None,
            hash_buckets=None):
    """One DeepFM fit in a fresh process: test AUC, the fit's wall time and the peak memory it added; with
    ``hash_buckets`` every categorical field is hashed into that many buckets (no vocabulary)."""
    ctr = {**(ctr or {}), **({"hash_buckets": hash_buckets} if hash_buckets else {})}
    spec = {"kind": "ctr", "mode": mode, "train": data[file], "test": data["test"], "threads": 1, "epochs": epochs,
            "ctr": ctr, "design": design, "seed": seed}
    child = launch(spec, processes, data["timeout"])
    figures = {"seconds": child["wall_seconds"], "peak_bytes": child["added_peak_bytes"],
               "process_peak_bytes": child["process_peak_bytes"], "test_auc": child["test_auc"],
               "rows_seen": child["n_rows_seen"], "processes": child["world_size"],
               "table_parameters": child["table_values"]}
    if design:
        figures.update(design_figures(child))
    return figures


def dsl_fit(data, *, split, seed, meter, processes=1, epochs=DSL_EPOCHS):
    """One DSLRecommender fit (MF, density 0.5): Recall@20, seconds per epoch, the ranks' mask digests."""
    spec = {"kind": "dsl", "quick": data["quick"], "data_root": data["data_root"], "threads": 1, "epochs": epochs,
            "dsl": DSL, "seed": seed}
    child = launch(spec, processes, data["timeout"])
    return {"seconds": child["wall_seconds"], "peak_bytes": None, "recall_at_20": child["recall@20"],
            "ndcg_at_20": child["ndcg@20"], "epoch_seconds": child["epoch_seconds"], "processes": child["world_size"],
            "distinct_mask_digests": len(set(child["mask_digests"])), "mask_digests": len(child["mask_digests"]),
            "n_active": child["n_active"]}


# ------------------------------------------------------------------------------------------------
# the spec

STREAM, MEMORY, SMALL = "(a) streamed, N rows", "(a) in memory, N rows", "(a) streamed, N/10 rows"
HASHED, HASHED_SMALL = "(a) streamed, hashed fields, N rows", "(a) streamed, hashed fields, N/10 rows"
HASH_BUCKETS = 16_384
DP1, DP2 = "(b) streamed, 1 process", "(b) streamed, torchrun 2 processes"
DSL1, DSL2 = "(c) DSL, 1 process", "(c) DSL, torchrun 2 processes"
CRITEO, GOWALLA = "criteo-like", "gowalla"


def ctr_method(name: str, description: str, **settings) -> Method:
    return Method(name, ctr_fit, settings={**CTR, **settings}, quick=QUICK_CTR, datasets=[CRITEO],
                  description=description)


def dsl_method(name: str, processes: int) -> Method:
    return Method(name, dsl_fit, settings={"processes": processes}, quick={"epochs": QUICK_DSL_EPOCHS},
                  datasets=[GOWALLA])


def value(name: str, method: str):
    return lambda r, seed: r.value(name, method=method, seed=seed)


def gap(name: str, one: str, other: str):
    return lambda r, seed: abs(r.value(name, method=one, seed=seed) - r.value(name, method=other, seed=seed))


def ratio(name: str, numerator: str, denominator: str):
    return lambda r, seed: r.value(name, method=numerator, seed=seed) / r.value(name, method=denominator, seed=seed)


GOALS = [
    Goal("(a) streamed fit's test AUC matches the in-memory fit's (|AUC gap|)", gap("test_auc", STREAM, MEMORY),
         "<=", 0.002, tolerance=0.001, fmt="{:.4f}"),
    Goal("(a) streamed fit's peak memory does not grow with the file (added peak at N / at N/10)",
         ratio("peak_bytes", STREAM, SMALL), "<=", 1.2, tolerance=0.05, fmt="{:.3f}"),
    Goal(f"(a) the same with every field hashed into {HASH_BUCKETS:,} buckets (no vocabulary counted; added peak at "
         "N / at N/10)", ratio("peak_bytes", HASHED, HASHED_SMALL), "<=", 1.2, tolerance=0.05, fmt="{:.3f}",
         kind="context"),
    Goal("(a) in-memory fit's added peak / the streamed fit's", ratio("peak_bytes", MEMORY, STREAM), ">=", 1.0,
         tolerance=1.0, fmt="{:.1f}", kind="context"),
    Goal("(b) 2-process CTR fit's test AUC matches 1 process (|AUC gap|)", gap("test_auc", DP2, DP1), "<=", 0.003,
         tolerance=0.0015, fmt="{:.4f}"),
    Goal("(b) 2-process CTR fit is faster (fit time(2) / time(1))", ratio("seconds", DP2, DP1), "<=", 0.6,
         tolerance=0.05, fmt="{:.3f}"),
    Goal("(c) 2-process DSL Recall@20 matches 1 process (|1 - recall(2) / recall(1)|)",
         lambda r, seed: abs(1 - ratio("recall_at_20", DSL2, DSL1)(r, seed)), "<=", 0.02, tolerance=0.01,
         fmt="{:.4f}"),
    Goal("(c) 2-process DSL epoch is faster (s/epoch(2) / s/epoch(1))", ratio("epoch_seconds", DSL2, DSL1), "<=", 0.65,
         tolerance=0.05, fmt="{:.3f}"),
    Goal("(c) DSL masks identical on both ranks (distinct mask digests over the 2 ranks)",
         value("distinct_mask_digests", DSL2), "<=", 1.0, tolerance=0.5, fmt="{:g}"),
]

MIB = 2**-20

TABLES = [
    Table("Measurements: CTR (DeepFM)", [
        Column("processes", "processes", "{:.0f}", "max"), Column("rows_seen", "rows seen", "{:,.0f}", "max"),
        Column("test_auc", "test AUC"), Column("seconds", "fit wall s", "{:.1f}"),
        Column("table_parameters", "embedding values", "{:,.0f}", "max"),
        Column("peak_bytes", "added peak MiB", "{:,.0f}", "max", MIB),
        Column("process_peak_bytes", "process peak MiB", "{:,.0f}", "max", MIB)], datasets=[CRITEO],
        note="Wall time of `fit` in the child (process and torchrun start-up excluded); added peak: the resident "
             "memory the fit adds (VmHWM reset before it, after a warm-up fit on 2,000 rows); process peak: its VmHWM."),
    Table("Measurements: DSL (MF, density 0.5)", [
        Column("processes", "processes", "{:.0f}", "max"), Column("recall_at_20", "Recall@20"),
        Column("ndcg_at_20", "NDCG@20"), Column("epoch_seconds", "s / epoch (median over epochs)", "{:.2f}"),
        Column("seconds", "fit wall s", "{:.1f}"), Column("distinct_mask_digests", "distinct mask digests", "{:.0f}",
                                                          "max")], datasets=[GOWALLA]),
    Table("Design note: what a data-parallel step exchanges per rank", [
        Column("dense_parameters", "dense parameters", "{:,.0f}", "max"),
        Column("table_parameters", "embedding values in the tables", "{:,.0f}", "max"),
        Column("bytes_per_touched_row", "bytes per touched row", "{:.0f}", "max"),
        *[column for size in WORLD_SIZES for column in (
            Column(f"touched_rows_{size}", f"W = {size}: touched rows per rank", "{:,.0f}", "mean"),
            Column(f"dense_allreduce_bytes_{size}", f"W = {size}: dense all-reduce KiB (ring)", "{:,.0f}", "max", 2**-10),
            Column(f"row_sparse_received_bytes_{size}", f"W = {size}: row-sparse all-gather received MiB", "{:,.2f}",
                   "mean", MIB),
            Column(f"dense_tables_allreduce_bytes_{size}", f"W = {size}: tables all-reduced densely MiB", "{:,.1f}",
                   "max", MIB))]], methods=[DP1],
        note="From the 1-process fit of (b): its parameters, a global batch of the fit's size, float32; touched rows: "
             "distinct categories a rank's share of a batch holds, summed over the 26 fields (random batches of the "
             "test file)."),
]

DESCRIPTION = f"""
- Data: `recsys.datasets.write_criteo_like` (13 dense, 26 categorical fields, max cardinality {VOCABULARY['max_cardinality']:,}, generator seed {DATA_SEED}): a source of {SOURCE_ROWS:,} training rows, generated once and cached in `{WORK_DIR}`, whose first N = {ROWS:,} rows, first N/10 = {ROWS // 10:,} rows and first {DP_ROWS:,} rows (for (b)) are the training files; {TEST_ROWS:,} test rows from the same planted model. (N is the whole source, so that the N/10 file holds more than the shuffle buffer, a chunk and its held-out chunks, and the memory ratio compares two fits that both fill the buffer. The run at 48588c0 took N = 2,000,000, whose N/10 equalled the buffer, which a fit of that file never fills: its ratio of 1.49 measured the buffer filling, not growth with the file. (b) uses {DP_ROWS:,} rows, the earlier single-measurement script {2 * DP_ROWS:,}.) Quick mode: {QUICK_ROWS:,} rows and {QUICK_TEST_ROWS:,} test rows in a temporary folder, chunks of 1,000 rows, shuffle buffer 4,000, batch 256.
- CTR model (`recsys.CTRClassifier`): DeepFM, embed_dim 8, hidden (64, 64), batch 4096 (the global batch under torchrun), Adam 1e-3, 1 epoch, validation_fraction 0.05 (streamed: every 20th chunk of 100,000 rows; in memory: random rows), shuffle buffer 200,000 rows, 1 torch thread per process; `random_state` = the seed. (a) The same fit streamed from the file and in memory (`read_criteo` then `fit`), and streamed on the first N/10 rows; the two streamed fits again with every categorical field hashed into {HASH_BUCKETS:,} buckets (`CategoricalField(hash_buckets=...)`), which counts no vocabulary, to separate what the vocabulary adds (the categories seen grow with the file, up to the fields' cardinality) from what streaming holds. (b) One process against `torchrun --standalone --nproc_per_node 2` (gloo), the same streamed fit.
- DSL (`recsys.DSLRecommender`): MF, d = 64, density 0.5, batch 2048 (global), Adam 1e-3, {DSL_EPOCHS} epochs, `random_state` = the seed, on the LightGCN split of Gowalla (`../shared/data/recsys/gowalla`; quick mode: generated low-rank interactions, 400 users, 300 items, 1 epoch). One process against two under torchrun; masks compared by `tensorkit.distributed.digest`, gathered on rank 0.
- Seeds: the models' `random_state`, on the same files; each seed is a repeated measurement. The settings are the earlier benchmark's, fixed in advance: nothing is tuned, so no validation split.
- Every fit runs in a fresh process (torchrun for two processes, rank 0 prints the figures), one torch thread, glibc's default allocator.
- Design note. Dense parameters (MLP, dense-field map, bias) are summed by one flat all-reduce a step (`tensorkit.distributed.reduce_gradients`): a ring sends and receives 2(W-1)/W times their bytes per rank, nearly constant in the number of ranks W. Embedding tables travel row-sparse: every rank all-gathers the others' touched row indices (int64) and gradient rows (padded to the longest): per touched row of a field, an index and 8 values for the embedding, an index and 1 value for the first-order weight. Each rank receives (W-1) x touched rows, so the traffic per rank grows about linearly with W (touched rows per rank fall more slowly than the B/W rows, because a Zipf field's frequent categories appear in every rank's share), and every rank still applies every touched row of the whole batch. Past one machine, all-gather traffic growing with W over a network, and every rank holding every full table (memory and Adam state per rank = the whole model), limit scaling; a dense all-reduce of the tables (DDP's default) would cost the full table size every step and is worse still. The remedy is to shard the tables row-wise: each rank owns a slice of every large table, looks up and updates only its rows, and ranks exchange the looked-up embeddings and their gradients (all-to-all, bytes ~ batch x fields x dim, independent of the vocabulary), with only the small dense part data-parallel. TorchRec would plug in behind `CTRModel.embed()` (`recsys/ctr/models.py`, the `embeddings` and `first_order` ModuleLists): an `EmbeddingBagCollection` with one table per field, sharded by `DistributedModelParallel` with a row-wise plan (a `KeyedJaggedTensor` built from the categorical codes), while `reduce_gradients` keeps all-reducing the dense parameters and no longer sees the tables.
"""

BENCHMARK = Benchmark(
    name="recsys_scale",
    title="Scaling the recommenders: streamed and data-parallel training",
    description=DESCRIPTION,
    datasets=[Dataset(CRITEO, load_criteo_like, description="generated Criteo-like files"),
              Dataset(GOWALLA, load_gowalla, description="the LightGCN split of Gowalla")],
    methods=[
        ctr_method(STREAM, "streamed from the file of N rows", file="train"),
        ctr_method(MEMORY, "read_criteo, then fit in memory, N rows", file="train", mode="memory"),
        ctr_method(SMALL, "streamed from the file of N/10 rows", file="small"),
        ctr_method(HASHED, f"streamed from the file of N rows, every field hashed into {HASH_BUCKETS:,} buckets",
                   file="train", hash_buckets=HASH_BUCKETS),
        ctr_method(HASHED_SMALL, f"streamed from the file of N/10 rows, every field hashed into {HASH_BUCKETS:,} "
                   "buckets", file="small", hash_buckets=HASH_BUCKETS),
        ctr_method(DP1, "streamed, the data-parallel file, 1 process", file="dp", design=True),
        ctr_method(DP2, "streamed, the data-parallel file, torchrun 2 processes", file="dp", processes=2),
        dsl_method(DSL1, 1),
        dsl_method(DSL2, 2),
    ],
    seeds=(0, 1, 2),
    goals=GOALS,
    tables=TABLES,
    code=("recsys", "tensorkit"),
)
