"""Small helpers shared by the estimators of all three packages."""

from __future__ import annotations

import sys
from typing import Iterable, Optional

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable: Optional[Iterable] = None, verbose: int = 1, total: Optional[int] = None,
             desc: Optional[str] = None, **kwargs) -> tqdm:
    """A tqdm progress bar on stderr that ``verbose=0`` turns off.

    Parameters
    ----------
    iterable : iterable, optional
    verbose : int, default=1
        0 shows nothing; any positive value shows the bar.
    total : int, optional
    desc : str, optional
        Text in front of the bar.
    """
    return tqdm(iterable, total=total, desc=desc, disable=not verbose, file=sys.stderr,
                leave=False, **kwargs)
