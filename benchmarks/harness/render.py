"""The one renderer: a results JSON and its spec become the Markdown report, goals judged by code."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from .results import Results, judge, matches, metric_of
from .spec import Benchmark, Column, Table

VERDICT = {"yes": "yes", "no": "**no**", "undecided": "**undecided**", "not measured": "**not measured**"}
KIND_LABEL = {"ours": "", "peer": " (peer)", "floor": " (floor)", "oracle": " (oracle)"}


def format_value(fmt: str, value) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return fmt.format(value)


def describe_settings(settings: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items()) or "defaults"


def aggregate(values: list, column: Column) -> str:
    values = [value * column.scale for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]
    if not values:
        return "–"
    how = column.aggregate
    if how == "mean±std":
        mean = statistics.fmean(values)
        if len(values) == 1:
            return column.fmt.format(mean)
        return f"{column.fmt.format(mean)} ± {column.fmt.format(statistics.stdev(values))}"
    function = {"mean": statistics.fmean, "median": statistics.median, "max": max, "min": min}[how]
    return column.fmt.format(function(values))


def as_column(column) -> Column:
    if isinstance(column, Column):
        return column
    if column == "seconds":
        return Column("seconds", "seconds (median)", "{:.3g}", "median")
    if column == "peak_bytes":
        return Column("peak_bytes", "peak MiB (max)", "{:.1f}", "max", 2**-20)
    return Column(column)


def key_of(row: dict, name: str):
    if name in ("method", "dataset", "split"):
        return row[name]
    if name == "settings":
        return describe_settings(row.get("settings", {}))
    return row.get("dataset_params", {}).get(name)


def ordered(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def method_order(benchmark: Benchmark) -> dict:
    return {method.name: index for index, method in enumerate(benchmark.methods)}


def table_lines(table: Table, rows: list, benchmark: Benchmark) -> list:
    where = {"split": table.split}
    if table.datasets is not None:
        where["dataset"] = list(table.datasets)
    if table.methods is not None:
        where["method"] = list(table.methods)
    rows = [row for row in rows if matches(row, where)]
    if not rows:
        return [f"## {table.title}", "", "No rows measured.", ""]
    order = method_order(benchmark)
    rows = sorted(rows, key=lambda row: order.get(row["method"], len(order)))
    columns = [as_column(column) for column in table.columns]
    keys = ordered(tuple(key_of(row, name) for name in table.rows) for row in rows)
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    headers = [name.replace("_", " ") for name in table.rows]
    if table.pivot:
        pivots = ordered(key_of(row, table.pivot) for row in rows)
        lines.append(f"Each cell: {' / '.join(column.label for column in columns)}.")
        lines.append("")
        header = headers + [f"{table.pivot} = {value}" for value in pivots]
    else:
        header = headers + [column.label for column in columns]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        group = [row for row in rows if tuple(key_of(row, name) for name in table.rows) == key]
        label = [str(part) + (KIND_LABEL.get(group[0]["kind"], "") if name == "method" else "")
                 for name, part in zip(table.rows, key)]
        if table.pivot:
            cells = []
            for value in pivots:
                cell_rows = [row for row in group if key_of(row, table.pivot) == value]
                cells.append(" / ".join(aggregate([metric_of(row, c.metric) for row in cell_rows], c)
                                        for c in columns) if cell_rows else "")
        else:
            cells = [aggregate([metric_of(row, column.metric) for row in group], column) for column in columns]
        lines.append("| " + " | ".join(label + cells) + " |")
    return lines + [""]


def default_tables(benchmark: Benchmark, rows: list) -> list:
    metrics = ordered(name for row in rows for name in row.get("metrics", {})
                      if isinstance(row["metrics"][name], (int, float)))
    return [Table(f"{dataset}", columns=[*metrics, "seconds", "peak_bytes"], datasets=[dataset])
            for dataset in ordered(row["dataset"] for row in rows if row["split"] == "test")]


def missing_text(missing: dict, unavailable: dict) -> str:
    """Why a goal has no value: the data sets it reads that could not be loaded, or else each distinct
    reason (once for all seeds)."""
    reasons = sorted({re.sub(r"'seed': -?\d+", "'seed': ...", reason) for reason in missing.values()})
    absent = [f"{name} was not run ({why})" for name, why in unavailable.items()
              if any(f"'dataset': {name!r}" in reason for reason in reasons)]
    return "; ".join(absent or reasons)


def goal_line(judged: dict, goal, unavailable: dict = None) -> str:
    fmt = goal.fmt
    if judged["mean"] is None:
        measured = "not measured: " + missing_text(judged["missing"], unavailable or {})
    elif judged["sd"] is None:
        measured = "; ".join(f"{format_value(fmt, value)} (seed {seed} only)" for seed, value in judged["values"].items())
    else:
        per_seed = ", ".join(format_value(fmt, value) for value in judged["values"].values())
        measured = (f"mean {format_value(fmt, judged['mean'])}, standard error "
                    f"{format_value(fmt, judged['standard_error'])}, sd {format_value(fmt, judged['sd'])} over "
                    f"{len(judged['values'])} seeds (per seed: {per_seed})")
    target = f"target {goal.compare} {format_value(fmt, goal.threshold)}, tolerance {format_value(fmt, goal.tolerance)}"
    if judged["kind"] == "context":
        return f"- {goal.text} (not a goal): {measured}."
    why = f"; {judged['why']}" if judged.get("why") else ""
    split = "" if goal.split == "test" else f" [{goal.split} split]"
    return f"- {goal.text}{split}: {VERDICT[judged['verdict']]} ({measured}; {target}{why})."


def header_lines(benchmark: Benchmark, record: dict) -> list:
    stamp = record["stamp"]
    commits = ordered(row.get("commit") for row in record["rows"])
    commit_text = ", ".join(f"`{(commit or 'unknown')[:10]}`" for commit in commits) or "none"
    machine = stamp["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in stamp["versions"].items())
    mode = " **Quick mode** (smoke-test settings: its figures are not evidence)." if stamp["quick"] else ""
    reused = f"; {record['reused_rows']} rows reused from an earlier run of the same code" if record["reused_rows"] else ""
    dirty = " with uncommitted changes" if stamp["dirty"] else ""
    lines = [
        f"# {benchmark.title}",
        "",
        f"Generated by `python -m benchmarks {benchmark.name}` from `{benchmark.name}.json`, rows measured at "
        f"commit {commit_text}{dirty} (code digest `{stamp['code_digest']}`), run of {stamp['date']} "
        f"taking {record['seconds']:.0f} s{reused}.{mode}",
        "",
        benchmark.description.strip(),
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB RAM; "
        f"{stamp['threads']} thread(s) for torch and BLAS; Python {machine['python']}; {versions}.",
        f"- Seeds: {', '.join(map(str, record['seeds']))}. Tables give the mean ± standard deviation over "
        "seeds unless a column says otherwise; time is wall-clock seconds of the measured work, peak "
        "memory the resident memory it added (Linux VmHWM).",
    ]
    lines += load_lines(record["rows"], stamp["machine"]["cores"])
    for name, reason in record["unavailable"].items():
        lines.append(f"- Not run on {name}: {reason}.")
    return lines + [""]


def load_lines(rows: list, cores: int) -> list:
    """The machine's 1-minute load average as each row finished, so that a run beside other work shows."""
    loads = [row["load_average"] for row in rows if row.get("load_average") is not None]
    if not loads:
        return []
    busy = sum(load > cores for load in loads)
    return [f"- Machine load (1-minute load average as each row finished, {cores} cores): median "
            f"{statistics.median(loads):.2f}, max {max(loads):.2f}; {busy} of {len(loads)} rows finished with "
            f"more runnable processes than cores."]


def choice_lines(record: dict) -> list:
    if not record["choices"]:
        return []
    lines = ["## Settings chosen on the validation split", "",
             "Every candidate ran on the validation split (held out of training) for every seed; the best "
             "mean was then run once on the test split.", "",
             "| method | data set | chosen | by (validation mean) | candidates: score |", "|---|---|---|---|---|"]
    for choice in record["choices"]:
        scores = "; ".join(f"{describe_settings(candidate)}: {format_value('{:.4g}', score)}"
                           for candidate, score in zip(choice["candidates"], choice["scores"]))
        best = "highest" if choice["maximize"] else "lowest"
        chosen = describe_settings(choice["chosen"]) if choice["chosen"] is not None else "none ran"
        lines.append(f"| {choice['method']} | {choice['dataset']} | {chosen} | {choice['select']} ({best}) | {scores} |")
    return lines + [""]


def reference_lines(benchmark: Benchmark) -> list:
    if not benchmark.references:
        return []
    lines = ["## Figures from elsewhere (not measured here)", "", "| method | data set | figures | source |",
             "|---|---|---|---|"]
    for reference in benchmark.references:
        figures = ", ".join(f"{name} {value:g}" for name, value in reference.metrics.items())
        lines.append(f"| {reference.method} | {reference.dataset} | {figures} | {reference.source} |")
    return lines + [""]


def failure_lines(record: dict) -> list:
    failed = [row for row in record["rows"] if row.get("status") not in ("ok",)]
    if not failed:
        return []
    lines = ["## Runs that did not complete", ""]
    for row in failed:
        lines.append(f"- {row['method']} on {row['dataset']}, {row['split']} split, seed {row['seed']} "
                     f"({row['status']}): {row.get('error', '')}")
    return lines + [""]


def render(benchmark: Benchmark, json_path: Path) -> Path:
    """Write the Markdown report beside ``json_path`` and store the judged goals in the JSON."""
    from .runner import read_json, write_json

    record = read_json(json_path)
    results = Results(record["rows"])
    judged = [judge(goal, results, record["seeds"]) for goal in benchmark.goals]
    lines = header_lines(benchmark, record)
    if benchmark.goals:
        lines += ["## Goals", "",
                  "Declared in the spec before the run and judged here by code: the verdict is the mean over "
                  "seeds against the target, and undecided when fewer than 3 seeds ran or when the standard "
                  "error of that mean (sd / √seeds) is not below the goal's tolerance while the target lies "
                  "within two standard errors of the mean.", ""]
        lines += [goal_line(result, goal, record["unavailable"]) for result, goal in zip(judged, benchmark.goals)]
        lines += [""]
    lines += choice_lines(record)
    tables = benchmark.tables or default_tables(benchmark, results.all_rows)
    for table in tables:
        lines += table_lines(table, results.all_rows, benchmark)
    lines += reference_lines(benchmark)
    lines += failure_lines(record)
    record["goals"] = judged
    write_json(Path(json_path), record)
    report = Path(json_path).with_suffix(".md")
    partial = report.with_name(report.name + ".tmp")
    partial.write_text("\n".join(lines).rstrip() + "\n")
    partial.replace(report)
    return report
