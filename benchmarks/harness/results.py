"""Reading rows back: the accessor goals use, and judging a goal by code."""

from __future__ import annotations

import math
import statistics

from .spec import Goal

ROW_KEYS = ("dataset", "method", "split", "seed", "kind")
TOP_METRICS = ("seconds", "peak_bytes")


def metric_of(row: dict, metric: str):
    if metric in TOP_METRICS:
        return row.get(metric)
    return row.get("metrics", {}).get(metric)


def matches(row: dict, where: dict) -> bool:
    for key, wanted in where.items():
        if key in ROW_KEYS:
            found = row.get(key)
        elif key in row.get("dataset_params", {}):
            found = row["dataset_params"][key]
        else:
            found = row.get("settings", {}).get(key)
        if isinstance(wanted, (list, tuple, set)) and not isinstance(found, (list, tuple)):
            if found not in wanted:
                return False
        elif found != wanted:
            return False
    return True


class Results:
    """The measured rows of one run, filtered by data set, method, split, seed, data set parameters
    or settings (``results.value("recall", method="DSL", dataset="gowalla", seed=0)``)."""

    def __init__(self, rows: list, split: str = None):
        self.all_rows = [row for row in rows if row.get("status") == "ok"]
        self.split = split

    def with_split(self, split: str) -> "Results":
        results = Results([], split)
        results.all_rows = self.all_rows
        return results

    def rows(self, **where) -> list:
        if self.split is not None and "split" not in where:
            where = {**where, "split": self.split}
        return [row for row in self.all_rows if matches(row, where)]

    def values(self, metric: str, **where) -> list:
        values = [metric_of(row, metric) for row in self.rows(**where)]
        return [value for value in values if value is not None]

    def value(self, metric: str, **where) -> float:
        """The metric of the one row that matches; KeyError when none or several do."""
        rows = self.rows(**where)
        if len(rows) != 1:
            raise KeyError(f"{len(rows)} rows match {where} (need exactly one)")
        value = metric_of(rows[0], metric)
        if value is None:
            raise KeyError(f"no {metric!r} in the row matching {where}")
        return value

    def mean(self, metric: str, **where) -> float:
        values = self.values(metric, **where)
        if not values:
            raise KeyError(f"no {metric!r} in rows matching {where}")
        return statistics.fmean(values)

    def median(self, metric: str, **where) -> float:
        values = self.values(metric, **where)
        if not values:
            raise KeyError(f"no {metric!r} in rows matching {where}")
        return statistics.median(values)


COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
MIN_SEEDS = 3


def judge(goal: Goal, results: Results, seeds: list) -> dict:
    """The goal's value per seed, their mean and spread, and the verdict.

    The verdict is "yes" or "no" from the mean over seeds, or "undecided" when fewer than three
    seeds were measured, or when the standard error of the mean (the seeds' standard deviation over
    the square root of their number: it shrinks as seeds are added) is not below the goal's
    tolerance while the threshold lies within two standard errors of the mean (a mean clear of
    the threshold by two standard errors is judged whatever the tolerance); "not measured" when no
    seed gave a value.
    """
    scoped = results.with_split(goal.split)
    values, missing = {}, {}
    if goal.seeds is not None:
        seeds = [seed for seed in seeds if seed in goal.seeds]
    for seed in seeds:
        try:
            value = float(goal.value(scoped, seed))
        except (LookupError, ZeroDivisionError, ValueError) as reason:  # a row the seed lacks
            missing[seed] = str(reason)
            continue
        if math.isfinite(value):
            values[seed] = value
        else:
            missing[seed] = "not finite"
    judged = {"text": goal.text, "kind": goal.kind, "split": goal.split, "compare": goal.compare,
              "threshold": goal.threshold, "tolerance": goal.tolerance, "values": values, "missing": missing}
    if not values:
        return {**judged, "mean": None, "sd": None, "verdict": None if goal.kind == "context" else "not measured"}
    mean = statistics.fmean(values.values())
    sd = statistics.stdev(values.values()) if len(values) > 1 else None
    error = sd / math.sqrt(len(values)) if sd is not None else None
    judged.update(mean=mean, sd=sd, standard_error=error, met=COMPARE[goal.compare](mean, goal.threshold))
    if goal.kind == "context":
        judged["verdict"] = None
    elif len(values) < MIN_SEEDS or missing:
        judged["verdict"] = "undecided"
        judged["why"] = f"{len(values)} of {len(seeds)} seeds measured; at least {MIN_SEEDS} needed, all of them"
    elif error >= goal.tolerance and abs(mean - goal.threshold) < 2 * error:
        judged["verdict"] = "undecided"
        judged["why"] = (f"standard error {goal.fmt.format(error)} is not below the tolerance "
                         f"{goal.fmt.format(goal.tolerance)} and the threshold is within two of the mean: "
                         "more seeds needed")
    else:
        judged["verdict"] = "yes" if judged["met"] else "no"
    return judged
