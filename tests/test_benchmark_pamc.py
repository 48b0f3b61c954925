"""The PamC benchmark runs end to end in quick mode and writes every section of its report."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pamc_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pamc_clustering.py"), "--quick", "--data-root",
         str(tmp_path / "no-data"), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Goals", "## Attributed SBM (generated)", "## Scaling on generated graphs", "- Machine:",
                    "quick mode", "Not found under", "label-selected best epoch", "## Notes"):
        assert section in report, section
    for method in ("| PamC, final epoch |", "| all-pairs loss (SCGC*), final epoch |", "| k-means on features |",
                   "| k-means on SGC features (K=2) |", "| SpectralClustering on the graph |"):
        assert report.count(method) == 1, method
    assert report.count("Time ratio all-pairs / PamC of the loss growing with n") == 1
    assert "failed" not in report and "±" in report
    assert not list(tmp_path.glob("*.tmp"))
