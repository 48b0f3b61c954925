"""FunBaT on real continuous-indexed tensors, against the authors' code and simple baselines.

The model is :class:`tensorkit.FunBaT`, after Fang, Yu, Wang, Li, Kirby, Zhe, "Functional Bayesian
Tucker Decomposition for Continuous-indexed Tensor Data", ICLR 2024 (arXiv 2311.04829). Writes
``benchmarks/results/funbat_real.md``.

- Data: ``../shared/data/tensors/`` (see its MANIFEST.txt): US-TEMP (latitude x longitude x year,
  °F) and Beijing PM2.5, PM10, SO2 (temperature x pressure x day, z-scored), each with 5 fixed
  80/20 splits.
- Methods, on the same folds: FunBaT (Tucker core) and FunBaT-CP at ranks 2, 3 and 5 with the
  estimator's defaults; scikit-learn's distance-weighted kNN regressor on the coordinates (its
  ``n_neighbors`` chosen by 5-fold cross-validation on the training entries); tensorly's masked
  Tucker (ALS with the unobserved cells imputed) on the binned grid at the same ranks; the mean of
  the training entries that share the test entry's last-mode coordinate (year or day); the
  training mean. Mean ± std of test RMSE and MAE over the folds.
- The authors' code (``--reference PATH``: a checkout or bare git mirror of
  github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition, or the environment variable
  ``FUNBAT_REFERENCE``) is run by :mod:`_funbat_reference` on fold 0 with their configurations,
  side by side with ours, one thread each. Without it, the data curator's figures from the
  MANIFEST are printed, labelled as such.
- Memory: peak memory a fit adds, in a fresh process each, at 10k, 50k and 200k synthetic entries.

Run: ``python benchmarks/funbat_real.py [--quick] [--folds N] [--reference PATH] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Optional
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import numpy as np  # noqa: E402
from _common import added_peak_memory, machine_summary, run_in_fresh_process, save_report, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tensors"
RESULTS = ROOT / "benchmarks" / "results" / "funbat_real.md"
RANKS = (2, 3, 5)
KNN_NEIGHBOURS = (3, 5, 10, 20, 40)
MAX_CELLS = 1_000_000       # the masked Tucker-ALS grid: distinct coordinates, or coarser bins past this
MEMORY_ENTRIES = (10_000, 50_000, 200_000)
SPEEDUP_TARGET = 10.0
# name: (file, unit, the authors' dataset name)
DATASETS = {
    "US-TEMP": ("us_temp.npz", "°F", "US_temp"),
    "PM2.5": ("beijing_PM25.npz", "", "beijing_PM25"),
    "PM10": ("beijing_PM10.npz", "", "beijing_PM10"),
    "SO2": ("beijing_SO2.npz", "", "beijing_SO2"),
}
# The authors' configurations on fold 0, with the data curator's measurements (MANIFEST.txt):
# (data set, core, rank, epochs) -> (test RMSE, seconds)
AUTHORS = {
    ("US-TEMP", "tucker", 2, 200): (1.995, 741.0),
    ("US-TEMP", "cp", 3, 150): (1.198, 381.0),
    ("PM2.5", "tucker", 3, 100): (0.350, 332.0),
}
CURATOR_BASELINES = "US-TEMP kNN (k=10) 1.379 °F, masked Tucker-ALS rank 3 1.808 °F; PM2.5 per-day mean 0.335, kNN (k=20) 0.654"


def limit_threads() -> None:
    import threadpoolctl
    import torch

    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1)


# --------------------------------------------------------------------------------------------
# Data


def load_fold(path: Path, fold: int):
    with np.load(path) as data:
        return (data[f"train_coords_fold{fold}"], data[f"train_y_fold{fold}"],
                data[f"test_coords_fold{fold}"], data[f"test_y_fold{fold}"])


def synthetic_folds(n_entries: int, folds: int, seed: int):
    """A generated stand-in with the same layout as the real files (quick mode and memory runs)."""
    from tensorkit.datasets import make_functional_tucker

    data = make_functional_tucker(n_entries=n_entries, rank=2, noise=0.1, random_state=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(folds):
        order = rng.permutation(n_entries)
        cut = int(0.8 * n_entries)
        tr, te = order[:cut], order[cut:]
        out.append((data.X[tr], data.y[tr], data.X[te], data.y[te]))
    return out


def scores(pred, y) -> dict:
    err = np.asarray(pred, dtype=np.float64) - y
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err)))}


# --------------------------------------------------------------------------------------------
# Methods: each takes (X_train, y_train, X_test) and returns test predictions


def funbat(rank: int, core: str, quick: bool):
    def fit_predict(Xtr, ytr, Xte):
        from tensorkit import FunBaT

        extra = {"n_epochs": 15, "n_init": 1} if quick else {}
        model = FunBaT(rank=rank, core=core, random_state=0, device="cpu", verbose=0, **extra).fit(Xtr, ytr)
        fit_predict.n_iter = model.n_iter_
        return model.predict(Xte)
    return fit_predict


def knn(Xtr, ytr, Xte):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsRegressor

    grid = [k for k in KNN_NEIGHBOURS if k <= 0.8 * len(ytr)]
    search = GridSearchCV(KNeighborsRegressor(weights="distance"), {"n_neighbors": grid}, cv=5,
                          scoring="neg_root_mean_squared_error").fit(Xtr, ytr)
    knn.chosen = search.best_params_["n_neighbors"]
    return search.predict(Xte)


def grid_bins(Xtr: np.ndarray, Xte: np.ndarray) -> list:
    """Per mode, (train bins, test bins, number of bins) of the masked Tucker-ALS grid.

    A bin per distinct coordinate while the grid has at most ``MAX_CELLS`` cells; past that, every
    mode gets equal-width bins, fewer by the same factor in every mode.
    """
    values = [np.concatenate([Xtr[:, k], Xte[:, k]]) for k in range(Xtr.shape[1])]
    distinct = [np.unique(v) for v in values]
    cells = float(np.prod([len(d) for d in distinct]))
    shrink = min(1.0, (MAX_CELLS / cells) ** (1 / len(distinct)))
    out = []
    for k, (v, d) in enumerate(zip(values, distinct)):
        if shrink == 1.0:
            out.append((np.searchsorted(d, Xtr[:, k]), np.searchsorted(d, Xte[:, k]), len(d)))
            continue
        n_bins = max(2, int(len(d) * shrink))
        edges = np.linspace(v.min(), v.max(), n_bins + 1)[1:-1]
        out.append((np.digitize(Xtr[:, k], edges), np.digitize(Xte[:, k], edges), n_bins))
    return out


def masked_tucker(rank: int):
    def fit_predict(Xtr, ytr, Xte):
        import tensorly as tl
        import torch
        from tensorly.decomposition import tucker

        from tensorkit.backend import tensorly_backend

        binned = grid_bins(Xtr, Xte)
        shape = tuple(b[2] for b in binned)
        cells_tr = np.ravel_multi_index(tuple(b[0] for b in binned), shape)
        cells_te = np.ravel_multi_index(tuple(b[1] for b in binned), shape)
        center = ytr.mean()
        total = np.bincount(cells_tr, weights=ytr - center, minlength=int(np.prod(shape)))
        count = np.bincount(cells_tr, minlength=int(np.prod(shape)))
        grid = np.where(count > 0, total / np.maximum(count, 1), 0.0).reshape(shape)
        mask = (count > 0).reshape(shape).astype(np.float64)
        ranks = [min(rank, s) for s in shape]
        with tensorly_backend():
            core, factors = tucker(torch.from_numpy(grid), rank=ranks, mask=torch.from_numpy(mask), init="random",
                                   n_iter_max=300, tol=1e-7, random_state=0)
            full = tl.tucker_to_tensor((core, factors)).numpy().reshape(-1)
        return full[cells_te] + center
    return fit_predict


def last_mode_mean(Xtr, ytr, Xte):
    keys, inverse = np.unique(Xtr[:, -1], return_inverse=True)
    means = np.bincount(inverse, weights=ytr) / np.bincount(inverse)
    where = np.searchsorted(keys, Xte[:, -1]).clip(0, len(keys) - 1)
    seen = keys[where] == Xte[:, -1]
    return np.where(seen, means[where], ytr.mean())


def train_mean(Xtr, ytr, Xte):
    return np.full(len(Xte), ytr.mean())


def methods(quick: bool) -> list:
    """(label, family, rank, fit_predict)."""
    ranks = (2,) if quick else RANKS
    table = []
    for core, name in (("tucker", "FunBaT"), ("cp", "FunBaT-CP")):
        table += [(f"{name} R={r}", name, r, funbat(r, core, quick)) for r in ranks]
    table += [(f"masked Tucker-ALS R={r}", "masked Tucker-ALS", r, masked_tucker(r)) for r in ranks]
    table += [("kNN (distance-weighted, k by CV)", "kNN", 0, knn),
              ("mean per last-mode coordinate", "slice mean", 0, last_mode_mean),
              ("training mean", "training mean", 0, train_mean)]
    return table


def run_dataset(name: str, folds: list, quick: bool) -> dict:
    results = {}
    for label, family, rank, fit_predict in methods(quick):
        row = {"family": family, "rank": rank, "rmse": [], "mae": [], "seconds": [], "extra": []}
        for Xtr, ytr, Xte, yte in folds:
            started = time.perf_counter()
            pred = fit_predict(Xtr, ytr, Xte)
            row["seconds"].append(time.perf_counter() - started)
            s = scores(pred, yte)
            row["rmse"].append(s["rmse"])
            row["mae"].append(s["mae"])
            row["extra"].append(getattr(fit_predict, "chosen", getattr(fit_predict, "n_iter", None)))
        results[label] = row
        print(f"{name} {label}: RMSE {statistics.mean(row['rmse']):.4f} MAE {statistics.mean(row['mae']):.4f} "
              f"({statistics.median(row['seconds']):.1f} s per fit)", flush=True)
    return results


def best_funbat(results: dict) -> tuple[str, bool]:
    """The FunBaT row with the lowest mean RMSE, and whether it beats every baseline."""
    ours = min((label for label, r in results.items() if r["family"].startswith("FunBaT")),
               key=lambda label: statistics.mean(results[label]["rmse"]))
    other = min(statistics.mean(r["rmse"]) for r in results.values() if not r["family"].startswith("FunBaT"))
    return ours, statistics.mean(results[ours]["rmse"]) <= other


def diagnose(name: str, folds: list, results: dict, quick: bool) -> Optional[dict]:
    """Where FunBaT is not best: its best row on fold 0 with the defaults, and trained 4x as long
    (no early stop). If the objective and the training fit improve while the test error does not,
    the gap is the model's flexibility (fitting noise), not under-training."""
    from tensorkit import FunBaT

    label, best = best_funbat(results)
    if best:
        return None
    row = results[label]
    core = "cp" if row["family"] == "FunBaT-CP" else "tucker"
    Xtr, ytr, Xte, yte = folds[0]
    out = {"label": label}
    default_epochs = None
    for setting in ("defaults", "4x epochs"):
        extra = {"n_epochs": 15, "n_init": 1} if quick else {}
        if setting != "defaults":
            extra = {**extra, "n_epochs": 4 * default_epochs, "tol": 0.0}
        model = FunBaT(rank=row["rank"], core=core, random_state=0, device="cpu", verbose=0, **extra).fit(Xtr, ytr)
        default_epochs = default_epochs or model.n_iter_
        out[setting] = {"epochs": model.n_iter_, "objective": model.history_[-1]["objective"],
                        "train_rmse": scores(model.predict(Xtr), ytr)["rmse"],
                        "test_rmse": scores(model.predict(Xte), yte)["rmse"]}
    slice_mean = {"train_rmse": scores(last_mode_mean(Xtr, ytr, Xtr), ytr)["rmse"],
                  "test_rmse": scores(last_mode_mean(Xtr, ytr, Xte), yte)["rmse"]}
    out["slice mean"] = slice_mean
    print(f"diagnosis {name}: {out}", flush=True)
    return out


# --------------------------------------------------------------------------------------------
# Side by side with the authors' code on fold 0


def ours_on_fold0(folds: list, core: str, rank: int, epochs: int) -> dict:
    """Our estimator with its defaults, and with the authors' epoch count (no early stop), fold 0."""
    from tensorkit import FunBaT

    Xtr, ytr, Xte, yte = folds[0]
    out = {}
    for label, extra in (("defaults", {}), ("their epochs", {"n_epochs": epochs, "tol": 0.0, "n_init": 1})):
        started = time.perf_counter()
        model = FunBaT(rank=rank, core=core, random_state=0, device="cpu", verbose=0, **extra).fit(Xtr, ytr)
        seconds = time.perf_counter() - started
        out[label] = {**scores(model.predict(Xte), yte), "seconds": seconds, "epochs": model.n_iter_}
    return out


def side_by_side(all_folds: dict, reference, quick: bool) -> list:
    rows = []
    for (name, core, rank, epochs), (curator_rmse, curator_seconds) in AUTHORS.items():
        if name not in all_folds:
            continue
        ours = ours_on_fold0(all_folds[name], core, rank, 5 if quick else epochs)
        theirs = None
        if reference is not None:
            from _funbat_reference import run_reference

            theirs = run_reference(reference, DATA / DATASETS[name][0], DATASETS[name][2],
                                   method="Tucker" if core == "tucker" else "CP", rank=rank,
                                   epochs=3 if quick else epochs, fold=0)
        rows.append({"name": name, "core": core, "rank": rank, "epochs": epochs, "curator_rmse": curator_rmse,
                     "curator_seconds": curator_seconds, "ours": ours, "theirs": theirs})
        print(f"fold 0 {name} {core} R={rank}: ours {ours}, theirs {theirs and {k: theirs[k] for k in ('test_rmse', 'total_seconds')}}",
              flush=True)
    return rows


# --------------------------------------------------------------------------------------------
# Memory against the number of entries (one fit per fresh process)


def memory_child(spec: str) -> None:
    limit_threads()
    from tensorkit import FunBaT

    spec = json.loads(spec)
    (Xtr, ytr, _, _), = synthetic_folds(spec["n"], 1, seed=1)
    with added_peak_memory() as peak:
        started = time.perf_counter()
        model = FunBaT(rank=spec["rank"], n_epochs=spec["epochs"], n_init=1, tol=0.0, random_state=0,
                       device="cpu", verbose=0).fit(Xtr, ytr)
        seconds = time.perf_counter() - started
    print(json.dumps({"entries": len(ytr), "peak_extra_bytes": peak["bytes"], "seconds": seconds,
                      "epochs": model.n_iter_}))


def run_memory(quick: bool) -> list:
    sizes = (2_000, 8_000) if quick else MEMORY_ENTRIES
    rows = []
    for n in sizes:
        spec = json.dumps({"n": int(n / 0.8), "rank": 3, "epochs": 3 if quick else 20})
        measured = run_in_fresh_process(__file__, "--memory-child", spec)
        rows.append(measured)
        print(f"memory at {n} entries: {measured}", flush=True)
    return rows


# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="generated data in place of the real files, 1 rank, few epochs (a smoke test)")
    parser.add_argument("--reference", default=os.environ.get("FUNBAT_REFERENCE"),
                        help="checkout or bare mirror of the authors' repository, to run it side by side")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    limit_threads()
    started = time.perf_counter()
    if args.quick:
        args.folds = 2
        all_folds = {"synthetic": synthetic_folds(1500, args.folds, seed=0)}
    else:
        if not DATA.is_dir():
            parser.error(f"the real tensors are not at {DATA} (see ../shared/data/README.md)")
        all_folds = {name: [load_fold(DATA / spec[0], k) for k in range(args.folds)]
                     for name, spec in DATASETS.items()}
    tables = {name: run_dataset(name, folds, args.quick) for name, folds in all_folds.items()}
    diagnoses = {name: diagnose(name, all_folds[name], tables[name], args.quick) for name in tables}
    reference_folds = all_folds if not args.quick else {"US-TEMP": all_folds["synthetic"]}
    fold0 = side_by_side(reference_folds, None if args.quick else args.reference, args.quick)
    memory = run_memory(args.quick)
    elapsed = time.perf_counter() - started
    write_report(args, tables, fold0, memory, elapsed, diagnoses)
    print(f"wrote {args.out} in {elapsed:.0f} s")
    return 0


# --------------------------------------------------------------------------------------------
# Report


def machine_line() -> str:
    import sklearn
    import tensorly
    import torch

    return (f"{machine_summary()}; one thread (torch {torch.get_num_threads()}); Python {platform.python_version()}, "
            f"torch {torch.__version__}, tensorly {tensorly.__version__}, numpy {np.__version__}, "
            f"scikit-learn {sklearn.__version__}")


def _mean_std(values: list, digits: int = 3) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def dataset_table(results: dict) -> list:
    lines = ["| method | test RMSE (mean ± std) | test MAE (mean ± std) | fit s (median) | note |",
             "|---|---|---|---|---|"]
    best = min(statistics.mean(r["rmse"]) for r in results.values())
    for label, r in results.items():
        note = ""
        if r["family"] == "kNN":
            note = "k = " + ", ".join(str(k) for k in r["extra"])
        elif r["family"].startswith("FunBaT"):
            note = "epochs " + ", ".join(str(k) for k in r["extra"])
        mark = "**" if statistics.mean(r["rmse"]) == best else ""
        lines.append(f"| {label} | {mark}{_mean_std(r['rmse'])}{mark} | {_mean_std(r['mae'])} | "
                     f"{statistics.median(r['seconds']):.2f} | {note} |")
    return lines


def best_lines(tables: dict) -> tuple[list, bool]:
    lines, wins = [], []
    for name, results in tables.items():
        ours = min((label for label, r in results.items() if r["family"].startswith("FunBaT")),
                   key=lambda label: statistics.mean(results[label]["rmse"]))
        other = min((label for label, r in results.items() if not r["family"].startswith("FunBaT")),
                    key=lambda label: statistics.mean(results[label]["rmse"]))
        a, b = statistics.mean(results[ours]["rmse"]), statistics.mean(results[other]["rmse"])
        wins.append(a <= b)
        lines.append(f"  - {name}: best FunBaT ({ours}) RMSE {a:.3f} against the best baseline ({other}) {b:.3f}: "
                     f"{'best' if a <= b else f'not best, {a - b:+.3f}'}.")
    return lines, all(wins)


def fold0_lines(rows: list, have_reference: bool) -> tuple[list, bool, bool]:
    lines, accurate, fast = [], [], []
    for row in rows:
        ours = row["ours"]
        theirs = row["theirs"]
        if theirs is not None and theirs.get("returncode") == 0:
            their_rmse, their_seconds, source = theirs["test_rmse"], theirs["total_seconds"], "measured here"
        else:
            their_rmse, their_seconds, source = row["curator_rmse"], row["curator_seconds"], "the curator's figure"
        speedup = their_seconds / ours["defaults"]["seconds"]
        accurate.append(ours["defaults"]["rmse"] <= row["curator_rmse"] + 1e-9)
        fast.append(speedup >= SPEEDUP_TARGET)
        lines.append(
            f"  - {row['name']}, {'Tucker' if row['core'] == 'tucker' else 'CP'} rank {row['rank']}: ours (defaults) "
            f"RMSE {ours['defaults']['rmse']:.3f} in {ours['defaults']['seconds']:.1f} s ({ours['defaults']['epochs']} "
            f"epochs); ours with their {row['epochs']} epochs {ours['their epochs']['rmse']:.3f} in "
            f"{ours['their epochs']['seconds']:.1f} s; theirs ({source}) {their_rmse:.3f} in {their_seconds:.0f} s; "
            f"curator's figure {row['curator_rmse']:.3f}. Speed-up (their time / ours, defaults) {speedup:.1f}x.")
    return lines, all(accurate) if rows else False, all(fast) if rows else False


PER_ENTRY_CORE_BYTES = 8 * 3 ** 6   # one float64 R^(2K) statistic per entry, R = 3, K = 3
MARGIN_LIMIT = 1024                 # "flat": at most 1 KiB more per added entry


def marginal_bytes(rows: list) -> list:
    """Bytes added per added entry between consecutive sizes."""
    ok = [r for r in rows if "error" not in r]
    return [(b["peak_extra_bytes"] - a["peak_extra_bytes"]) / (b["entries"] - a["entries"]) for a, b in zip(ok, ok[1:])]


def memory_table(rows: list) -> list:
    lines = ["| training entries | epochs | fit s | peak extra memory MiB | bytes per added entry (from the row above) |",
             "|---|---|---|---|---|"]
    margins = [None] + marginal_bytes(rows)
    for row, margin in zip(rows, margins):
        if "error" in row:
            lines.append(f"| failed: {row['error']} | | | | |")
            continue
        lines.append(f"| {row['entries']:,} | {row['epochs']} | {row['seconds']:.1f} | "
                     f"{row['peak_extra_bytes'] / 2**20:.1f} | {'' if margin is None else f'{margin:.0f}'} |")
    return lines


def diagnosis_lines(diagnoses: dict) -> list:
    lines = []
    for name, d in diagnoses.items():
        if d is None:
            continue
        a, b, m = d["defaults"], d["4x epochs"], d["slice mean"]
        lines += [f"### {name} ({d['label']}, fold 0)", "",
                  "| fit | epochs | objective (ELBO / entry) | train RMSE | test RMSE |", "|---|---|---|---|---|",
                  f"| FunBaT, defaults | {a['epochs']} | {a['objective']:.4f} | {a['train_rmse']:.4f} | {a['test_rmse']:.4f} |",
                  f"| FunBaT, 4x the epochs, no early stop | {b['epochs']} | {b['objective']:.4f} | {b['train_rmse']:.4f} | "
                  f"{b['test_rmse']:.4f} |",
                  f"| the baseline: mean per last-mode coordinate | | | {m['train_rmse']:.4f} | {m['test_rmse']:.4f} |", ""]
        better_fit = b["objective"] > a["objective"] and b["train_rmse"] < a["train_rmse"]
        if better_fit and b["test_rmse"] >= a["test_rmse"]:
            lines += ["Training longer raises the objective and lowers the training error but not the test error: "
                      "the gap is not under-training. Most of this target is one level per day, which the per-day "
                      "mean captures with nothing else to fit; FunBaT's extra flexibility over the other modes "
                      "(temperature and pressure here) fits noise that does not carry over to held-out entries.", ""]
        else:
            lines += ["Training longer does not explain the gap the same way (see the figures above).", ""]
    return lines


def write_report(args, tables: dict, fold0: list, memory: list, elapsed: float, diagnoses: Optional[dict] = None) -> None:
    best, all_best = best_lines(tables)
    side, accurate, fast = fold0_lines(fold0, args.reference is not None)
    margins = marginal_bytes(memory)
    flat = bool(margins) and max(margins) <= MARGIN_LIMIT
    lines = [
        "# FunBaT on real continuous-indexed tensors",
        "",
        f"Written by `benchmarks/funbat_real.py` on {datetime.date.today().isoformat()}"
        + (" (quick mode: generated data, 1 rank, few epochs; figures are not meaningful)" if args.quick else "")
        + f"; the whole run took {elapsed:.0f} s.",
        "",
        "- Model: `tensorkit.FunBaT` (Fang et al., *Functional Bayesian Tucker Decomposition for Continuous-indexed "
        "Tensor Data*, ICLR 2024) with its defaults and `random_state=0`; `core=\"cp\"` for FunBaT-CP.",
        f"- Baselines: scikit-learn's `KNeighborsRegressor(weights=\"distance\")` on the coordinates, `n_neighbors` "
        f"in {KNN_NEIGHBOURS} chosen by 5-fold cross-validation on the training entries; tensorly's `tucker(..., "
        f"mask=...)` (ALS from a random start, unobserved cells imputed, at most 300 iterations) on the grid of distinct coordinates "
        f"(US-TEMP: every distinct value; Beijing, whose grid would have 313 M cells: equal-width bins, the same "
        f"fraction in every mode, {MAX_CELLS / 1e6:g} M cells), training values averaged per cell and centred, a "
        "test entry predicted by its cell; the mean of the training entries sharing the test entry's last-mode coordinate "
        "(year for US-TEMP, day for Beijing; the training mean where unseen); the training mean.",
        "- The authors' code: " + (
            f"run from `{args.reference}` by `benchmarks/_funbat_reference.py` on fold 0 with their configurations "
            "(their per-epoch evaluation switched off, training loop timed, one thread)." if args.reference else
            "not run (pass `--reference PATH` or set `FUNBAT_REFERENCE`); the data curator's fold-0 figures from "
            "the MANIFEST stand in for it, labelled as such."),
        f"- {args.folds} folds (the files' fixed 80/20 splits); RMSE and MAE in the data's units (°F for US-TEMP, "
        "z-scores for Beijing). One thread for every method.",
        f"- Machine: {machine_line()}.",
        "",
        "## Goals",
        "",
        f"- At least as accurate as the authors' figures on fold 0: {verdict(accurate)}; at least "
        f"{SPEEDUP_TARGET:g}x faster than their code on the same fold and rank: {verdict(fast)}.",
        *side,
        f"- The best method in the table on every data set (mean test RMSE over the folds): {verdict(all_best)}.",
        *best,
        f"- Memory flat in the number of entries: {verdict(flat)} (at most {MARGIN_LIMIT:,} bytes per added entry: "
        f"the data and per-entry scalars only; an n x R^(2K) statistic would add {PER_ENTRY_CORE_BYTES:,} bytes per "
        f"entry at R = 3); measured " + (", ".join(f"{m:.0f}" for m in margins) or "nothing") + " bytes per added entry.",
        "",
        f"Curator's baselines on fold 0 (printed, not compared): {CURATOR_BASELINES}.",
        "",
    ]
    for name, results in tables.items():
        lines += [f"## {name}", "", *dataset_table(results), ""]
    why = diagnosis_lines(diagnoses or {})
    if why:
        lines += ["## Where FunBaT is not the best method, and why", "", *why]
    lines += ["## Memory against the number of entries", "",
              "Generated data (`make_functional_tucker`, 3 modes), Tucker rank 3, 20 epochs, one fresh process per "
              "size; peak extra memory is Linux VmHWM after the fit minus VmRSS before it (data, messages, "
              "posteriors; the interpreter and libraries are not counted).", "", *memory_table(memory), ""]
    save_report(args.out, lines)


if __name__ == "__main__":
    sys.exit(main())
