"""The scaling benchmark runs end to end in quick mode: every measurement in its JSON, the Goals table in its report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_recsys_scale_quick_writes_every_measurement(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recsys_scale.py"), "--quick", "--work-dir", str(tmp_path / "work"),
         "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    stamp = record["stamp"]
    assert len(stamp["commit"]) == 40 and isinstance(stamp["dirty"], bool)
    assert {"torch", "numpy", "pandas", "scikit-learn", "python"} <= set(record["versions"])
    m = record["measurements"]
    for key in ("stream", "memory", "stream_small", "dp1", "dp2"):
        assert "error" not in m[key], (key, m[key])
        assert 0.0 < m[key]["test_auc"] < 1.0 and m[key]["wall_seconds"] > 0 and m[key]["added_peak_bytes"] > 0
    assert m["dp2"]["world_size"] == 2 and m["dp1"]["world_size"] == 1
    # the streamed fits train on the training chunks only, all ranks together
    assert m["stream"]["n_rows_seen"] == m["dp2"]["n_rows_seen"] < 20_000
    assert 0 < m["stream_small"]["n_rows_seen"] <= 2_000
    # DSL under torchrun: either measured (two ranks, one mask digest each) or a clear failure row
    for key in ("dsl1", "dsl2"):
        assert "error" in m[key] or 0.0 <= m[key]["recall@20"] <= 1.0
    if "error" not in m["dsl2"]:
        assert len(m["dsl2"]["mask_digests"]) == 2
    goals = record["goals"]
    assert len(goals) == 7 and all(g["met"] in (True, False, None) for g in goals)
    assert sum(g["met"] is not None for g in goals) >= 4
    design = record["design"]["by_world_size"]
    assert set(design) == {"2", "4", "8"}
    # a rank receives (W - 1) x its touched rows: the row-sparse traffic grows with the ranks
    assert design["2"]["row_sparse_received_bytes"] < design["8"]["row_sparse_received_bytes"]
    report = out.read_text()
    assert "## Goals" in report and "| goal | threshold | measured | met |" in report
    assert "## Design note" in report and "EmbeddingBagCollection" in report and "quick mode" in report
    assert "Traceback" not in report and "Traceback" not in result.stdout
    assert not list(tmp_path.glob("*.tmp"))
