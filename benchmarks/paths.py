"""Where the benchmarks find the shared real data (``../shared/data`` beside the checkout)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from .harness import Unavailable

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """The path of a shared data file or folder; :class:`Unavailable` when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        raise Unavailable(f"{path} not found (the shared real data sets are read from ../shared/data)")
    return path


_SCRATCH: dict = {}


def scratch_folder(prefix: str) -> Path:
    """A temporary folder (one per prefix and process) for generated quick-mode inputs, removed at exit."""
    if prefix not in _SCRATCH:
        folder = tempfile.mkdtemp(prefix=prefix)
        atexit.register(shutil.rmtree, folder, True)
        _SCRATCH[prefix] = Path(folder)
    return _SCRATCH[prefix]
