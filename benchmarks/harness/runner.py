"""Run a :class:`~benchmarks.harness.Benchmark`: every method on every data set and seed, settings
chosen on the validation split, JSON rows stamped with the code that produced them."""

from __future__ import annotations

import fnmatch
import importlib
import itertools
import json
import math
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .measure import Meter, limit_threads, limit_threads_in_environment
from .spec import Benchmark, Method, Unavailable
from .stamp import ROOT, code_digest, commit, stamp

RESULTS = ROOT / "benchmarks" / "results"
QUICK_RESULTS = RESULTS / "quick"


def load_benchmark(name: str) -> Benchmark:
    """The ``BENCHMARK`` declared by ``benchmarks/<name>.py``."""
    return importlib.import_module(f"benchmarks.{name}").BENCHMARK


def results_path(name: str, out_dir: Path) -> Path:
    return Path(out_dir) / f"{name}.json"


def settings_key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def row_key(row: dict) -> tuple:
    return (row["dataset"], row["method"], row["split"], row["seed"], settings_key(row["settings"]))


def plain(value):
    """A metric as JSON holds it: numbers as float/int (NaN and infinities as None), others as given."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    raise TypeError(f"metric value {value!r} of type {type(value).__name__} is not a number or text")


def measure_call(method: Method, data, split: str, seed: int, settings: dict) -> dict:
    """Call ``method.run`` once; its metrics, seconds and peak memory, or why it could not run."""
    meter, outer = Meter(), Meter(collect=False)  # the inner meter collects garbage before its block
    try:
        with outer:
            metrics = dict(method.run(data, split=split, seed=seed, meter=meter, **settings))
    except Unavailable as reason:
        return {"status": "unavailable", "error": str(reason)}
    except Exception as error:  # recorded in the report; the run goes on
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        return {"status": "failed", "error": f"{type(error).__name__}: {error}",
                "traceback": "".join(lines[-6:])}
    used = meter if meter.used else outer
    seconds = metrics.pop("seconds", used.seconds)
    peak = metrics.pop("peak_bytes", used.peak_bytes)
    return {"status": "ok", "metrics": plain(metrics), "seconds": plain(seconds), "peak_bytes": plain(peak)}


def measure_isolated(benchmark: Benchmark, method: Method, dataset_name: str, split: str, seed: int,
                     settings: dict, quick: bool) -> dict:
    """``measure_call`` in a fresh process (``python -m benchmarks.harness.worker``)."""
    request = json.dumps({"benchmark": benchmark.name, "method": method.name, "dataset": dataset_name,
                          "split": split, "seed": seed, "settings": settings, "quick": quick}, default=str)
    result = subprocess.run([sys.executable, "-m", "benchmarks.harness.worker", request], cwd=ROOT,
                            capture_output=True, text=True, env=dict(os.environ))
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["the worker printed nothing"])[-1]
        return {"status": "failed", "error": f"fresh process exited with {result.returncode}: {tail}"}
    return json.loads(lines[-1])


def grid_points(grid: dict) -> list:
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]


def effective(method: Method, quick: bool) -> tuple:
    """The fixed settings and the grid, as quick mode changes them."""
    settings = dict(method.settings)
    grid = {name: list(values) for name, values in method.grid.items()}
    if quick:
        for name, value in method.quick.items():
            if name in grid:
                grid[name] = [value] if not isinstance(value, (list, tuple)) else list(value)
            else:
                settings[name] = value
    return settings, grid


def choose(rows: list, method: Method, candidates: list) -> tuple:
    """The candidate with the best mean ``select`` over seeds on the validation rows, and every score."""
    scores = []
    for candidate in candidates:
        values = [row["metrics"].get(method.select) for row in rows
                  if row["status"] == "ok" and all(row["settings"].get(k) == plain(v) for k, v in candidate.items())]
        values = [value for value in values if value is not None]
        scores.append(sum(values) / len(values) if values else None)
    measured = [(score, index) for index, score in enumerate(scores) if score is not None]
    if not measured:
        return None, scores
    best = (max if method.maximize else min)(measured)[1]
    return candidates[best], scores


class Runner:
    """Runs one benchmark; see :func:`run`."""

    def __init__(self, benchmark: Benchmark, quick: bool, cached: dict, progress: bool):
        self.benchmark, self.quick, self.cached, self.progress = benchmark, quick, cached, progress
        self.commit = commit()
        self.digest = code_digest(benchmark.name, tuple(benchmark.code))
        self.seeds = list(benchmark.quick_seeds if quick else benchmark.seeds)
        self.rows: list = []
        self.choices: list = []
        self.unavailable: dict = {}
        self.reused = 0
        self.partial = None

    def say(self, text: str) -> None:
        if self.progress:
            print(f"[{self.benchmark.name}] {text}", file=sys.stderr, flush=True)

    def execute(self, method: Method, dataset, data, split: str, seed: int, settings: dict) -> dict:
        row = self.base_row(method, dataset, split, seed, settings)
        hit = self.cached.get(row_key(row))
        if hit is not None:
            self.reused += 1
            self.keep(hit, persist=False)
            return hit
        started = time.perf_counter()
        if method.isolate:
            outcome = measure_isolated(self.benchmark, method, dataset.name, split, seed, settings, self.quick)
        else:
            outcome = measure_call(method, data, split, seed, settings)
        self.record(row, outcome, started)
        return row

    def keep(self, row: dict, persist: bool = True) -> None:
        """Add a row to the run, and (``persist``) to the partial file an interrupted run is resumed
        from; a reused row is on disk already (in the results file or the partial file)."""
        self.rows.append(row)
        if persist and self.partial is not None:
            with open(self.partial, "a") as handle:
                handle.write(json.dumps(row) + "\n")

    def record(self, row: dict, outcome: dict, started: float) -> None:
        row.update(outcome, commit=self.commit, code_digest=self.digest, quick=self.quick,
                   load_average=round(os.getloadavg()[0], 2))
        self.keep(row)
        method, dataset, split, seed = row["method"], row["dataset"], row["split"], row["seed"]
        if outcome["status"] == "ok":
            self.say(f"{method} on {dataset}, {split}, seed {seed}: {outcome['seconds']:.3g} s "
                     f"(call {time.perf_counter() - started:.1f} s)")
        else:
            self.say(f"{method} on {dataset}, {split}, seed {seed}: {outcome['status']}: {outcome['error']}")

    def base_row(self, method: Method, dataset, split: str, seed: int, settings: dict) -> dict:
        return {"dataset": dataset.name, "dataset_params": plain(dict(dataset.params)), "method": method.name,
                "kind": method.kind, "split": split, "seed": seed, "settings": plain(settings)}

    def execute_checkpoints(self, method: Method, dataset, data, seed: int, settings: dict, values: list) -> list:
        """One validation call scored at every checkpoint value; a row per value."""
        name = method.checkpoint
        rows = [self.base_row(method, dataset, "validation", seed, {**settings, name: value}) for value in values]
        hits = [self.cached.get(row_key(row)) for row in rows]
        if all(hit is not None for hit in hits):
            self.reused += len(hits)
            for hit in hits:
                self.keep(hit, persist=False)
            return hits
        started = time.perf_counter()
        call = {**settings, name: max(values), "checkpoints": list(values)}
        if method.isolate:
            outcome = measure_isolated(self.benchmark, method, dataset.name, "validation", seed, call, self.quick)
        else:
            outcome = measure_call(method, data, "validation", seed, call)
        for row, value in zip(rows, values):
            if outcome["status"] != "ok":
                self.record(row, dict(outcome), started)
                continue
            scored = outcome["metrics"].get("checkpoints", {})
            metrics = scored.get(str(value), scored.get(value))
            if metrics is None:
                self.record(row, {"status": "failed", "error": f"no checkpoint {name}={value} in the result"}, started)
            else:
                self.record(row, {"status": "ok", "metrics": metrics, "seconds": outcome["seconds"],
                                  "peak_bytes": outcome["peak_bytes"], "checkpoint_of": plain(call)}, started)
        return rows

    def seeds_of(self, method: Method) -> list:
        if method.seeds is None:
            return self.seeds
        shared = [seed for seed in self.seeds if seed in method.seeds]
        return shared or ([self.seeds[0]] if self.quick else [])

    def run_method(self, method: Method, dataset, data) -> None:
        settings, grid = effective(method, self.quick)
        seeds = self.seeds_of(method)
        splits = [split for split in ("validation", "test") if split in self.benchmark.splits or split == "test"]
        if grid:
            candidates = grid_points(grid)
            if method.checkpoint is None:
                validation = [self.execute(method, dataset, data, "validation", seed, {**settings, **candidate})
                              for candidate in candidates for seed in seeds]
            else:
                values = sorted(grid[method.checkpoint])
                others = grid_points({k: v for k, v in grid.items() if k != method.checkpoint})
                validation = [row for other in others for seed in seeds
                              for row in self.execute_checkpoints(method, dataset, data, seed, {**settings, **other},
                                                                  values)]
            chosen, scores = choose(validation, method, candidates)
            self.choices.append({"dataset": dataset.name, "method": method.name, "select": method.select,
                                 "maximize": method.maximize, "candidates": plain(candidates),
                                 "scores": plain(scores), "chosen": plain(chosen)})
            if chosen is None:
                self.say(f"{method.name} on {dataset.name}: no candidate ran on validation; test not run")
                return
            settings = {**settings, **chosen}
            splits = ["test"]
        for split in splits:
            for seed in seeds:
                self.execute(method, dataset, data, split, seed, settings)

    def run(self, methods: list) -> None:
        for dataset in self.benchmark.dataset_list(self.quick):
            try:
                data = dataset.load(self.quick)
            except Unavailable as reason:
                self.unavailable[dataset.name] = str(reason)
                self.say(f"{dataset.name} unavailable: {reason}")
                continue
            for method in methods:
                if method.datasets is None or dataset.name in method.datasets:
                    self.run_method(method, dataset, data)
            del data


def partial_path(path: Path) -> Path:
    """The rows of a run in progress, one JSON line each."""
    return path.with_name(path.stem + ".partial.jsonl")


def partial_rows(path: Path) -> list:
    """The complete lines of a partial file (a run killed mid-write leaves at most one broken line)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def cached_rows(benchmark: Benchmark, path: Path, quick: bool) -> dict:
    """Rows of an earlier run, finished or interrupted, that the current code would reproduce: same
    code digest, same mode."""
    digest = code_digest(benchmark.name, tuple(benchmark.code))
    rows = read_json(path)["rows"] if path.exists() else []
    if partial_path(path).exists():
        rows += partial_rows(partial_path(path))
    return {row_key(row): row for row in rows
            if row.get("code_digest") == digest and row.get("quick") == quick and row.get("status") == "ok"}


SHARED_ROW_FIELDS = ("commit", "code_digest", "quick")


def write_json(path: Path, record: dict) -> None:
    """Written whole or not at all, one row a line. What every row shares (the commit, code digest
    and mode of a run; a data set's parameters) is written once, in ``row_defaults`` and
    ``dataset_params``; :func:`read_json` puts it back in every row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = record.get("rows", [])
    defaults = {key: rows[0][key] for key in SHARED_ROW_FIELDS
                if rows and all(key in row and row[key] == rows[0][key] for row in rows)}
    params = {}
    for row in rows:
        params.setdefault(row["dataset"], row.get("dataset_params"))
    if any(row.get("dataset_params") != params[row["dataset"]] for row in rows):
        params = {}   # a data set measured with two sets of parameters: keep them per row
    packed = [{key: value for key, value in row.items()
               if key not in defaults and not (key == "dataset_params" and params)} for row in rows]
    head = {key: value for key, value in record.items() if key != "rows"}
    head.update(row_defaults=defaults, dataset_params=params)
    text = json.dumps(head, indent=1)[:-2] + ',\n "rows": [\n'
    text += ",\n".join("  " + json.dumps(row, separators=(",", ":")) for row in packed) + "\n ]\n}\n"
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    partial.replace(path)


def read_json(path: Path) -> dict:
    """A results file as :func:`write_json` wrote it, with every row whole again."""
    record = json.loads(Path(path).read_text())
    defaults, params = record.pop("row_defaults", {}), record.pop("dataset_params", {})
    record["rows"] = [{**defaults, **({"dataset_params": params[row["dataset"]]} if row.get("dataset") in params
                                      else {}), **row} for row in record.get("rows", [])]
    return record


def selected_methods(benchmark: Benchmark, patterns) -> list:
    """The methods whose names match one of the shell-style ``patterns`` (all when None)."""
    if not patterns:
        return list(benchmark.methods)
    chosen = [method for method in benchmark.methods if any(fnmatch.fnmatchcase(method.name, p) for p in patterns)]
    if not chosen:
        raise ValueError(f"{benchmark.name}: no method matches {list(patterns)}; its methods: "
                         f"{', '.join(method.name for method in benchmark.methods)}")
    return chosen


def carried_over(benchmark: Benchmark, path: Path, quick: bool, methods: list) -> tuple:
    """Rows and choices of the other methods in the file already there, measured by the same code."""
    if not path.exists():
        return [], []
    names = {method.name for method in methods}
    digest = code_digest(benchmark.name, tuple(benchmark.code))
    record = read_json(path)
    rows = [row for row in record.get("rows", []) if row["method"] not in names
            and row.get("code_digest") == digest and row.get("quick") == quick]
    kept = {row["method"] for row in rows}
    return rows, [choice for choice in record.get("choices", []) if choice["method"] in kept]


def run(benchmark: Benchmark, *, quick: bool = False, out_dir=None, resume: bool = False,
        methods=None, progress: bool = True) -> Path:
    """Run ``benchmark`` and write ``<out_dir>/<name>.json``; gives its path.

    ``resume`` reuses rows of the file already there, or of the ``<name>.partial.jsonl`` an
    interrupted run left (a line appended after every row), whose code digest matches the current code
    (and whose mode, quick or full, is the same); the rest run again. ``methods``: shell-style
    patterns of the method names to run (a long benchmark spread over several runs); the rows of
    the other methods that the same code measured are kept from the file already there.
    """
    out_dir = Path(out_dir) if out_dir is not None else (QUICK_RESULTS if quick else RESULTS)
    path = results_path(benchmark.name, out_dir)
    limit_threads_in_environment(benchmark.threads)
    limit_threads(benchmark.threads)
    started = time.perf_counter()
    chosen = selected_methods(benchmark, methods)
    runner = Runner(benchmark, quick, cached_rows(benchmark, path, quick) if resume else {}, progress)
    runner.partial = partial_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if resume and runner.partial.exists():
        # The partial file keeps its rows until the results file is written, so a run interrupted
        # again loses none of them, even those it had not reached; a line cut short is dropped.
        kept = "".join(json.dumps(row) + "\n" for row in partial_rows(runner.partial))
        rewritten = runner.partial.with_name(runner.partial.name + ".tmp")
        rewritten.write_text(kept)
        rewritten.replace(runner.partial)
    else:
        runner.partial.unlink(missing_ok=True)
    runner.run(chosen)
    if methods:
        rows, choices = carried_over(benchmark, path, quick, chosen)
        runner.rows += rows
        runner.choices += choices
    record = {
        "benchmark": benchmark.name,
        "stamp": stamp(benchmark.name, benchmark.code, benchmark.threads, quick),
        "seconds": time.perf_counter() - started,
        "seeds": runner.seeds,
        "reused_rows": runner.reused,
        "unavailable": runner.unavailable,
        "choices": runner.choices,
        "rows": runner.rows,
    }
    write_json(path, record)
    runner.partial.unlink(missing_ok=True)
    return path
