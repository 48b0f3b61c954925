"""The CTR compression benchmark runs end to end in quick mode and writes every section of its report."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ML100K = ROOT.parent / "shared" / "data" / "recsys" / "ml-100k" / "ml-100k.inter"


def test_ctr_compression_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ctr_compression.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Goals", "## (c) Compressing a DeepFM on synthetic Criteo-like data", "- Machine:",
                    "Issue's reference figures", "quick mode"):
        assert section in report, section
    # synthetic: every method at every ratio, with sizes and latencies measured (no failures)
    for method in ("| AFM | 2× (", "| AFM | 3× (", "| AFM | 5× (", "| SVD | 2× (", "| SVD | 5× ("):
        assert method in report, method
    assert report.count("| uncompressed | 1× |") == (2 if ML100K.exists() else 1)
    assert "→" in report and "Traceback" not in report
    if ML100K.exists():
        assert "## (a) Our models against deepctr-torch on MovieLens-100K as CTR" in report
        assert "| AFM + 1 epoch fine-tuning | 5× (" in report
        assert "| DeepFM | ours |" in report and "| DCN-V2 | ours |" in report
        if importlib.util.find_spec("deepctr_torch") is not None:   # not imported: it phones PyPI on import
            assert "| DeepFM | deepctr-torch |" in report
        else:
            assert "deepctr-torch is not installed" in report
    else:
        assert "Skipped: no data" in report
    assert report.count("- ML-100K, AFM 3×") + report.count("- synthetic, AFM 3×") == (2 if ML100K.exists() else 1)
    assert not list(tmp_path.glob("*.tmp"))
