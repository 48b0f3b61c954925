"""Sphinx configuration of the tensorgraph-learn documentation.

Build with ``make docs`` (see docs/README.md). Before Sphinx reads anything, this file writes the
API pages, copies of the tutorials and the benchmark report pages into ``docs/_generated/`` (ignored
by git; see generate_sources.py). myst-nb executes the tutorial copies with ``TUTORIAL_QUICK=1``; the
committed notebooks keep no outputs.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))
from generate_sources import (execution_cache, write_api_pages, write_benchmark_pages,  # noqa: E402
                              write_tutorials)

# The notebook kernels inherit these: short training runs, and figures returned as cell outputs
# (the tests run the notebooks with MPLBACKEND=Agg, which draws nothing into the notebook).
os.environ.setdefault("TUTORIAL_QUICK", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

project = "tensorgraph-learn"
author = "tensorgraph-learn developers"
copyright = "the tensorgraph-learn developers"
from tensorkit import __version__ as release  # noqa: E402  (the one source: setup.cfg via the metadata)

version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints"]

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False  # autodoc's :members: documents the methods
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("NB_EXECUTION_MODE", "cache")
# jupyter-cache keys an executed notebook on its code only; keying the cache folder on the library's
# code too re-runs the tutorials after a change of the library (a changed config re-reads every page).
nb_execution_cache_path = ""  # set below, once the digest is known
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_in_temp = True
nb_merge_streams = True

html_theme = "pydata_sphinx_theme"
html_title = "tensorgraph-learn"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
}
html_show_sourcelink = False


# ---------------------------------------------------------------- generated sources

write_api_pages(GENERATED / "api")
write_tutorials(GENERATED / "tutorials")
write_benchmark_pages(GENERATED / "benchmarks")
nb_execution_cache_path = execution_cache(DOCS / "_build" / "jupyter_cache")


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing boilerplate)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
