"""Small helpers shared by the three packages: a progress bar, an atomic file writer, and SIGTERM as an
exception for the command-line tools."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Iterator, Optional

from tqdm.auto import tqdm

__all__ = ["Terminated", "progress", "replaced_atomically", "sigterm_raises"]


def progress(iterable: Optional[Iterable] = None, verbose: int = 1, total: Optional[int] = None,
             desc: Optional[str] = None, **kwargs) -> tqdm:
    """A tqdm progress bar on stderr that ``verbose=0`` turns off.

    With ``verbose=1`` (every estimator's default) the bar appears only once the loop has run for
    two seconds, so quick fits stay silent and long ones show their progress.

    Parameters
    ----------
    iterable : iterable, optional
    verbose : int, default=1
        0 shows nothing; 1 shows the bar after two seconds; 2 or more shows it at once.
    total : int, optional
    desc : str, optional
        Text in front of the bar.
    """
    kwargs.setdefault("delay", 0.0 if verbose and verbose >= 2 else 2.0)
    return tqdm(iterable, total=total, desc=desc, disable=not verbose, file=sys.stderr,
                leave=False, **kwargs)


@contextlib.contextmanager
def replaced_atomically(path: os.PathLike | str, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it replaces ``path`` when the block ends.

    The temporary is made by :func:`tempfile.mkstemp` (a fresh, unpredictable name, never an
    existing file or link) in the folder of the file ``path`` names, and removed if the block
    raises (KeyboardInterrupt included). The result keeps the permission bits of the file it
    replaces; a new file gets ``0o666`` less the umask. When ``path`` is a symbolic link, the file
    it points to is replaced and the link stays. Only a SIGKILL can leave the temporary behind.

    Parameters
    ----------
    path : path-like
    suffix : str, default=".tmp"
        Ending of the temporary's name (writers such as :func:`numpy.save` add their extension
        to a name without it).
    """
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else _new_file_mode()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _new_file_mode() -> int:
    """The mode a newly created file gets: ``0o666`` less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM inside :func:`sigterm_raises`, so every ``finally`` runs."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """In the main thread, SIGTERM raises :class:`Terminated` inside the block (so temporaries are
    removed); the previous handler comes back after it. Elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
