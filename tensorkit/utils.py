"""Small helpers shared by the three packages: a progress bar, an atomic file writer, SIGTERM as an
exception for the command-line tools, and package names imported on first use."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import stat
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional

if TYPE_CHECKING:
    from tqdm.auto import tqdm


__all__ = ["Terminated", "lazy_exports", "progress", "replaced_atomically", "sigterm_raises"]


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
    from tqdm.auto import tqdm   # imported on first use: a command that shows no bar starts faster

    return tqdm(iterable, total=total, desc=desc, disable=not verbose, file=sys.stderr,
                leave=False, **kwargs)


@contextlib.contextmanager
def replaced_atomically(path: os.PathLike | str, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it replaces ``path`` when the block ends.

    The temporary gets a fresh, unpredictable name (``.NAME.XXXXXXXX`` and ``suffix``, 32 random
    bits) and is created exclusively, as :func:`tempfile.mkstemp` does, never over an existing file
    or link, in the folder of the file ``path`` names; it is removed if the block raises
    (KeyboardInterrupt included, and a SIGTERM under :func:`sigterm_raises` at any moment after the
    file exists). The result keeps the permission bits of the file it
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
    temporary = None
    try:
        while temporary is None:
            # named before it exists, so that a SIGTERM or Ctrl-C raised at any point after the file is
            # made finds the name here and the ``finally`` removes it
            temporary = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
            try:
                _create_exclusively(temporary)
            except FileExistsError:   # someone else's file: never ours to remove
                temporary = None
        yield temporary
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    finally:
        if temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


def _create_exclusively(path: Path) -> None:
    """Create the empty file ``path`` (mode 0600), failing if anything exists there."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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


def lazy_exports(package: str, exports: dict, submodules: Iterable[str] = ()) -> tuple:
    """``(__getattr__, __dir__)`` for a package ``__init__`` that imports its names on first use.

    ``exports`` maps each public name to the module defining it; ``submodules`` are subpackages
    or modules reachable as attributes. ``import graphkit`` then costs almost nothing, and
    ``graphkit.FastRP`` imports :mod:`graphkit.fastrp` (and torch) when first asked for. A name
    is imported once and kept in the package's namespace.

    Examples
    --------
    >>> import sys, types
    >>> package = sys.modules["demo"] = types.ModuleType("demo")
    >>> package.__getattr__, package.__dir__ = lazy_exports("demo", {"sqrt": "math"})
    >>> "sqrt" in vars(package), package.sqrt(4.0), "sqrt" in vars(package)
    (False, 2.0, True)
    """
    import importlib

    package_namespace = sys.modules[package].__dict__
    submodules = frozenset(submodules)

    def __getattr__(name: str):
        if name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        package_namespace[name] = value
        return value

    def __dir__() -> list:
        return sorted(set(package_namespace) | set(exports) | submodules)

    return __getattr__, __dir__
