"""No code or documentation of the project unpickles with ``torch.load`` (issue 32, item 14).

``torch.load`` without ``weights_only=True`` runs whatever code a file holds; adapters are saved
as safetensors, and the few checkpoints read with ``torch.load`` are read as weights only. The
minimum torch (setup.cfg) is one whose ``weights_only=True`` loader is safe.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALL = re.compile(r"torch\.load\((?P<arguments>[^)]*)\)")


def project_texts():
    for pattern in ("README.md", "tensorkit/**/*.py", "graphkit/**/*.py", "recsys/**/*.py",
                    "benchmarks/**/*.py", "tutorials/*.ipynb", "tests/**/*.py"):
        for path in ROOT.glob(pattern):
            if path != Path(__file__).resolve():
                yield path, path.read_text()


def test_every_torch_load_reads_weights_only():
    unsafe = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path, text in project_texts()
              for match in CALL.finditer(text) if "weights_only=True" not in match.group("arguments")]
    assert not unsafe, unsafe


def test_the_minimum_torch_has_a_safe_weights_only_loader():
    requirement = re.search(r"^\s*torch>=(\d+)\.(\d+)", (ROOT / "setup.cfg").read_text(), re.MULTILINE)
    assert requirement and (int(requirement[1]), int(requirement[2])) >= (2, 6)  # CVE-2025-32434
