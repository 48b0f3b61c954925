"""The MLC clustering benchmark runs end to end in quick mode and writes every section of its report."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mlc_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mlc_clustering.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Goal", "## Results", "### digits", "### union of 3 curves", "## Scaling with n",
                    "- Machine:", "Issue's reference figures", "quick mode"):
        assert section in report, section
    for method in ("| MLC (ours) |", "| MLC (ours, no views) |", "| KMeans |", "| SpectralClustering (10-NN) |",
                   "| GaussianMixture |", "| PamC (deep clustering, graphkit) |"):
        assert report.count(method) == 2, method
    assert report.count("- Best ACC and NMI of the table on every data set: ") == 1
    assert "failed:" not in report
    assert not list(tmp_path.glob("*.tmp"))
