"""What a result is stamped with: the commit, a digest of the code, package versions, machine, date.

Rows are reused from an earlier run only when their code digest equals the current one: the digest
covers the tracked Python files of the packages a benchmark names (all three by default), of the
harness, of the benchmark's own module and private helpers, and ``setup.cfg``, read from the working
tree, so an uncommitted change makes it differ too.
"""

from __future__ import annotations

import datetime
import hashlib
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .measure import machine

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = ("tensorkit", "graphkit", "recsys")
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "tensorly", "pyro-ppl", "torch-geometric", "networkx",
            "pandas", "peft", "deepctr-torch", "fastrp", "pyarrow")


def _git(*words: str) -> str:
    try:
        result = subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return result.stdout.strip()


def code_paths(benchmark: str, packages=PACKAGE_ROOTS) -> list:
    """The files whose contents make a benchmark's code digest."""
    roots = [*packages, "benchmarks/harness", "benchmarks/__init__.py", "benchmarks/paths.py", "setup.cfg",
             f"benchmarks/{benchmark}.py"]
    listed = _git("ls-files", "--", *roots, f"benchmarks/_{benchmark}*.py").splitlines()
    if not listed:  # not a git checkout
        listed = [str(p.relative_to(ROOT)) for root in roots for p in
                  ((ROOT / root).rglob("*.py") if (ROOT / root).is_dir() else [ROOT / root])]
    return sorted(path for path in listed if path.endswith((".py", ".cfg")))


@lru_cache(maxsize=None)
def code_digest(benchmark: str, packages=PACKAGE_ROOTS) -> str:
    """sha256 over the paths and working-tree contents of :func:`code_paths`."""
    digest = hashlib.sha256()
    for path in code_paths(benchmark, tuple(packages)):
        file = ROOT / path
        if file.exists():
            digest.update(path.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def versions() -> dict:
    """Installed versions of the packages the benchmarks use (absent ones left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def commit() -> str:
    return _git("rev-parse", "HEAD") or None


def stamp(benchmark: str, packages, threads: int, quick: bool) -> dict:
    """The stamp of one run."""
    paths = code_paths(benchmark, tuple(packages))
    return {
        "commit": commit(),
        "dirty": bool(_git("status", "--porcelain", "--", *paths)),
        "code_digest": code_digest(benchmark, tuple(packages)),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "threads": threads,
        "quick": quick,
    }
