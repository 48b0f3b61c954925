"""Goal values for ``benchmarks/dsl_gowalla.py``: a row's metric on either split, on validation the row of
the candidate the runner chose (the best mean ``recall@20`` over seeds)."""

from __future__ import annotations

import json
import statistics

SELECT = "recall@20"


def chosen_settings(results, method: str, density: float):
    """The settings with the best mean ``SELECT`` over seeds among a method's validation rows."""
    groups = {}
    for row in results.rows(method=method, density=density):
        value = row.get("metrics", {}).get(SELECT)
        if value is not None:
            groups.setdefault(json.dumps(row["settings"], sort_keys=True), []).append(value)
    if not groups:
        raise KeyError(f"no validation rows of {method} at density {density}")
    return json.loads(max(groups, key=lambda key: statistics.fmean(groups[key])))


def metric(results, name: str, method: str, density: float, seed: int) -> float:
    """``name`` of the method's row for ``seed``: the chosen candidate's on the validation split."""
    if results.split == "validation":
        rows = [row for row in results.rows(method=method, density=density, seed=seed)
                if row["settings"] == chosen_settings(results, method, density)]
        if len(rows) != 1 or name not in rows[0].get("metrics", {}):
            raise KeyError(f"no chosen validation row of {method} at density {density}, seed {seed}")
        return rows[0]["metrics"][name]
    return results.value(name, method=method, density=density, seed=seed)


def gap(dsl: str, dense: str, density: float):
    """1 - DSL's Recall@20 at ``density`` / the dense model's, per seed (positive: DSL is lower)."""
    return lambda r, seed: 1.0 - metric(r, SELECT, dsl, density, seed) / metric(r, SELECT, dense, 1.0, seed)


def beats(dsl: str, static: str, densities):
    """The smallest relative margin of DSL over static sparse, Recall@20 and NDCG@20, over the densities."""
    def value(r, seed):
        return min(metric(r, name, dsl, d, seed) / metric(r, name, static, d, seed) - 1.0
                   for d in densities for name in ("recall@20", "ndcg@20"))
    return value


def falls(dense: str, dsl: str, densities):
    """The largest ratio of a peak to the peak at the next higher density (below 1: it falls)."""
    def value(r, seed):
        peaks = [r.value("memory_peak_bytes", method=dense, density=1.0, seed=seed)]
        peaks += [r.value("memory_peak_bytes", method=dsl, density=d, seed=seed) for d in densities]
        return max(low / high for high, low in zip(peaks, peaks[1:]))
    return value


def slowest_epoch(methods):
    """The largest median epoch seconds over the given methods' rows."""
    def value(r, seed):
        times = [row["metrics"]["epoch_seconds"] for row in r.rows(seed=seed)
                 if row["method"] in methods and "epoch_seconds" in row["metrics"]]
        if not times:
            raise KeyError("no epoch times")
        return max(times)
    return value
