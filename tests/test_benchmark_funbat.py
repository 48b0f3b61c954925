"""The FunBaT benchmark runs end to end in quick mode (generated data) and writes every section of its report."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_funbat_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "funbat_real.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Goals", "## synthetic", "## Memory against the number of entries", "- Machine:",
                    "quick mode", "Curator's baselines"):
        assert section in report, section
    for method in ("| FunBaT R=2 |", "| FunBaT-CP R=2 |", "| masked Tucker-ALS R=2 |",
                   "| kNN (distance-weighted, k by CV) |", "| mean per last-mode coordinate |", "| training mean |"):
        assert report.count(method) == 1, method
    # each goal is judged once; the side-by-side lines name both sides
    assert report.count("At least as accurate as the authors' figures on fold 0: ") == 1
    assert report.count("The best method in the table on every data set") == 1
    assert report.count("Memory flat in the number of entries: ") == 1
    assert report.count("Speed-up (their time / ours, defaults)") == 2
    assert "±" in report and "failed:" not in report
    assert not list(tmp_path.glob("*.tmp"))
