"""Every benchmark spec runs end to end at its quick settings: JSON stamped with the code that made
it, every row complete, every goal judged by the renderer, every declared table and goal in the report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import NAMES
from benchmarks.harness import load_benchmark, read_json

ROOT = Path(__file__).resolve().parents[1]
VERDICTS = {"yes", "no", "undecided", "not measured"}


@pytest.mark.parametrize("name", NAMES)
def test_quick_run_writes_stamped_json_and_its_report(name, tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks", name, "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_json(tmp_path / f"{name}.json")
    stamp = record["stamp"]
    assert stamp["quick"] is True and stamp["code_digest"] and stamp["machine"]["cores"] >= 1
    assert "torch" in stamp["versions"]
    rows = record["rows"]
    assert rows, "no rows"
    assert {row["status"] for row in rows} <= {"ok", "unavailable"}, [row.get("error") for row in rows]
    assert any(row["status"] == "ok" for row in rows) or record["unavailable"] or all(
        row["status"] == "unavailable" for row in rows)
    for row in rows:
        assert row["code_digest"] == stamp["code_digest"] and row["commit"] == stamp["commit"]
        assert row["split"] in ("validation", "test") and row["seed"] in record["seeds"]
    for choice in record["choices"]:  # only the chosen settings reached the test split
        tested = {json.dumps(row["settings"], sort_keys=True) for row in rows
                  if row["method"] == choice["method"] and row["dataset"] == choice["dataset"] and row["split"] == "test"}
        assert len(tested) <= 1
    benchmark = load_benchmark(name)
    assert len(record["goals"]) == len(benchmark.goals)
    for goal in record["goals"]:
        assert goal["verdict"] in VERDICTS or (goal["kind"] == "context" and goal["verdict"] is None)
    report = (tmp_path / f"{name}.md").read_text()
    assert report.startswith(f"# {benchmark.title}") and "Quick mode" in report
    for goal in benchmark.goals:
        assert goal.text in report
    for table in benchmark.tables:
        assert f"## {table.title}" in report
    assert not list(tmp_path.glob("*.tmp"))
