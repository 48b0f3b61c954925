"""The Kronecker-SBL benchmark runs end to end in quick mode and writes every section of its report."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_kronecker_sbl_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kronecker_sbl.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Targets", "## At 20 dB", "## Against SNR", "## Against the number of measurements",
                    "## Scale", "- Machine:", "issue's reference"):
        assert section in report, section
    for method in ("| AM |", "| SVD |", "| classic (dense EM-SBL) |", "block AM", "| AM, true σ² given |",
                   "| ARDRegression |", "| OMP (true sparsity) |", "| oracle LS (true support) |"):
        assert method in report, method
    for values in ('`values="iid"`', '`values="kron"`'):
        assert report.count(values) >= 3, values
    # both targets are judged, for AM and SVD and both value models
    assert report.count("of the oracle LS floor at 20 dB: ") == 4
    assert report.count("faster than ARDRegression at equal or better NMSE: ") == 4
    # the scale series measured its peak memory in a subprocess (no failed rows) and sized the dense SBL
    assert "failed:" not in report
    assert "dense SBL would hold the dictionary" in report
    assert not list(tmp_path.glob("*.tmp"))
