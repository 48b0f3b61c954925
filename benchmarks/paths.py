"""Where the benchmarks find the shared real data (``../shared/data`` beside the checkout)."""

from __future__ import annotations

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
