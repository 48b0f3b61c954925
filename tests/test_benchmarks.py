"""The benchmark scripts run end to end (quick mode, on a small generated graph)."""

import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.io
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]


def test_fastrp_benchmark_writes_its_report(tmp_path):
    graph = nx.stochastic_block_model([60, 60, 60], [[0.2, 0.01, 0.01], [0.01, 0.2, 0.01], [0.01, 0.01, 0.2]], seed=0)
    adjacency = nx.to_scipy_sparse_array(graph, format="csc", dtype=float)
    labels = sp.csc_matrix(np.eye(3)[np.repeat([0, 1, 2], 60)])
    data = tmp_path / "small.mat"
    scipy.io.savemat(data, {"network": sp.csc_matrix(adjacency), "group": labels})
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fastrp_blogcatalog.py"), "--quick", "--data", str(data),
         "--out", str(out)], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = out.read_text()
    for section in ("## Accuracy", "## Embedding time", "## Memory", "| 50% |", "floor"):
        assert section in report
