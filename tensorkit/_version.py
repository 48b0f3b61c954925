"""The one version of the toolkit: the installed distribution's, which setup.cfg's ``version`` sets.

``tensorkit``, ``graphkit`` and ``recsys`` ship in one distribution, ``tensorgraph-learn``, and all
three give this string as their ``__version__``.

Examples
--------
>>> import graphkit, recsys, tensorkit
>>> tensorkit.__version__ == graphkit.__version__ == recsys.__version__
True
"""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "tensorgraph-learn"


def _installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


__version__ = _installed_version()
