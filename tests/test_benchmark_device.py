"""The device check runs its checks, and its report flags disagreements and errors."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import device_check  # noqa: E402


def test_device_check_runs_and_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--quick", "--checks", "FastRP",
         "DSLRecommender (MF)", "--out", str(out)], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert set(record["checks"]) == {"FastRP", "DSLRecommender (MF)"}
    for by_device in record["checks"].values():
        assert "error" not in by_device["cpu"] and by_device["cpu"]["seconds"] > 0
    report = out.read_text()
    assert "| FastRP | sum of 5 rows |" in report and "| DSLRecommender (MF) | Recall@20 |" in report
    assert "## Errors" not in report


def test_report_flags_disagreement_and_errors():
    record = {"machine": "m", "torch": "t", "gpu": "G", "devices": ["cpu", "cuda"], "real_device": "cuda",
              "checks": {"PamC": {"cpu": {"score": 0.9, "seconds": 1.0, "peak_bytes": None},
                                  "cuda": {"score": 0.7, "seconds": 0.5, "peak_bytes": 2**20}},
                         "FastRP": {"cpu": {"score": 1.0, "seconds": 1.0, "peak_bytes": None},
                                    "cuda": {"score": 1.0 + 1e-5, "seconds": 0.1, "peak_bytes": 2**21}},
                         "FunBaT": {"cpu": {"score": 0.1, "seconds": 1.0, "peak_bytes": None},
                                    "cuda": {"error": "Traceback: boom\n"}}},
              "real": [{"name": "DSL x", "score": "Recall@20 0.1", "seconds": 2.0, "epoch_seconds": 0.25,
                        "peak_bytes": 3 * 2**20}, {"name": "pamc", "error": "Traceback: bad\n"}]}
    report = "\n".join(device_check.build_report(record))
    lines = {line.split(" |")[0]: line for line in report.splitlines() if line.startswith("| ")}
    assert lines["| PamC"].endswith("**no** (|Δ| 0.2 ≤ 0.05) |")
    assert "| yes (|Δ| 1e-05 ≤ 0.001) |" in lines["| FastRP"]
    assert "**error**" in lines["| FunBaT"] and lines["| FunBaT"].endswith("**no** (error) |")
    assert "| DSL x | Recall@20 0.1 | 2.0 | 250.0 | 3 |" in report
    assert "## Errors" in report and "boom" in report and "bad" in report
