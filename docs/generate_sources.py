"""The sources that docs/conf.py generates before Sphinx reads anything (into docs/_generated/).

- :func:`write_api_pages`: one page per public module (each package, and each module without a
  leading underscore that declares ``__all__``) and one page per public object. Each object is
  documented once, under the shortest public module that exports it (``graphkit.FastRP``, not
  ``graphkit.fastrp.FastRP``); the other modules that list it link there.
- :func:`write_tutorials`: copies of ``tutorials/*.ipynb`` for myst-nb to execute and render.
- :func:`write_benchmark_pages`: one page per report in ``benchmarks/results/*.md``, including it.
- :func:`execution_cache`: the folder of executed notebooks, keyed on a digest of the library's code.
"""

import hashlib
import importlib
import inspect
import os
import pkgutil
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tensorkit", "graphkit", "recsys")


def _write_if_changed(path, text):
    """Write ``text`` unless ``path`` already holds it, so that Sphinx re-reads only what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _public_modules():
    """Each package, then its public submodules that declare ``__all__``, in a stable order."""
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        found = []
        for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            module = importlib.import_module(info.name)
            if hasattr(module, "__all__"):
                found.append(module)
        modules.extend(sorted(found, key=lambda m: m.__name__))
    return modules


def _homes(modules):
    """Map each exported object (by identity and name) to the shortest module exporting it."""
    homes = {}
    for module in sorted(modules, key=lambda m: (m.__name__.count("."), m.__name__)):
        for name in module.__all__:
            homes.setdefault((id(getattr(module, name)), name), module.__name__)
    return homes


def _title(text, underline="="):
    return f"{text}\n{underline * len(text)}\n"


def _object_page(full_name, obj):
    if inspect.isclass(obj):
        body = f".. autoclass:: {full_name}\n   :members:\n   :show-inheritance:\n"
    elif callable(obj):
        body = f".. autofunction:: {full_name}\n"
    else:
        hide_value = len(repr(obj)) > 200
        body = f".. autodata:: {full_name}\n" + ("   :no-value:\n" if hide_value else "")
    return _title(full_name) + "\n" + body


def _summary(obj):
    """The first paragraph of a docstring on one line (numpydoc's short summary); a constant's value."""
    if not (inspect.isclass(obj) or callable(obj)):
        value = repr(obj)
        return f"``{value}``" if len(value) <= 80 and "`" not in value else f"A ``{type(obj).__name__}``."
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _summary_table(entries):
    """A two-column table of links to documented objects and their short summaries."""
    lines = [".. list-table::", "   :widths: 30 70", ""]
    for full_name, obj in entries:
        lines += [f"   * - :py:obj:`~{full_name}`", f"     - {_summary(obj)}"]
    return lines + [""]


def _module_page(module, homes, documented, object_names):
    name = module.__name__
    # recsys.ctr.compress is a module and the function recsys.ctr.compress: index only the function
    no_index = "   :no-index:\n" if name in object_names else ""
    lines = [_title(name), f".. automodule:: {name}\n{no_index}"]
    own, elsewhere, submodules = [], [], []
    for entry in sorted(module.__all__, key=str.lower):
        obj = getattr(module, entry)
        if inspect.ismodule(obj):
            submodules.append(obj.__name__)
        elif homes[(id(obj), entry)] == name:
            own.append((f"{name}.{entry}", obj))
        else:
            elsewhere.append((f"{homes[(id(obj), entry)]}.{entry}", obj))
    if own:
        lines += [_title("Contents", "-")] + _summary_table(own)
        lines += [".. toctree::", "   :hidden:", ""]
        lines += [f"   generated/{full_name}" for full_name, _ in own]
        lines.append("")
    if elsewhere:
        lines += [_title("Also exported here", "-"), "Documented under the shortest module they can be imported from.", ""]
        lines += _summary_table(elsewhere)
    if submodules:
        lines += [_title("Modules", "-")]
        lines += [f"- :mod:`{sub}`" if sub in documented else f"- ``{sub}``" for sub in submodules]
        lines.append("")
    return "\n".join(lines)


def write_api_pages(target):
    """Write the API reference: an index, a page per public module and one per object it owns."""
    modules = _public_modules()
    homes = _homes(modules)
    documented = {m.__name__ for m in modules}
    object_names = {f"{m.__name__}.{entry}" for m in modules for entry in m.__all__
                    if not inspect.ismodule(getattr(m, entry))}
    index = [_title("API reference"),
             "Every name in the ``__all__`` of each package and of its public modules, documented once "
             "under the shortest module it can be imported from.", ""]
    for package_name in PACKAGES:
        index += [_title(package_name, "-"), ".. toctree::", "   :maxdepth: 1", ""]
        index += [f"   {m.__name__}" for m in modules if m.__name__.split(".")[0] == package_name]
        index.append("")
    _write_if_changed(target / "index.rst", "\n".join(index))
    wanted = {"index.rst"}
    for module in modules:
        _write_if_changed(target / f"{module.__name__}.rst", _module_page(module, homes, documented, object_names))
        wanted.add(f"{module.__name__}.rst")
        for entry in module.__all__:
            obj = getattr(module, entry)
            if not inspect.ismodule(obj) and homes[(id(obj), entry)] == module.__name__:
                path = f"generated/{module.__name__}.{entry}.rst"
                _write_if_changed(target / path, _object_page(f"{module.__name__}.{entry}", obj))
                wanted.add(path)
    _remove_stale(target, wanted)


def write_tutorials(target):
    """Copy the committed notebooks (without outputs) where myst-nb executes and renders them."""
    wanted = set()
    for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
        _write_if_changed(target / notebook.name, notebook.read_text())
        wanted.add(notebook.name)
    _remove_stale(target, wanted)


def write_benchmark_pages(target):
    """One page per benchmark report, including the report from benchmarks/results/."""
    wanted = set()
    for report in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        relative = os.path.relpath(report, target)
        _write_if_changed(target / report.name, f"```{{include}} {relative}\n```\n")
        wanted.add(report.name)
    _remove_stale(target, wanted)


def library_digest():
    """A digest of the three packages' Python sources, to re-execute the tutorials when they change."""
    digest = hashlib.sha256()
    for package_name in PACKAGES:
        for path in sorted((ROOT / package_name).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def execution_cache(root):
    """The cache folder of this version of the library; those of other versions are removed."""
    current = root / library_digest()
    if root.is_dir():
        for other in root.iterdir():
            if other != current:
                shutil.rmtree(other, ignore_errors=True)
    return str(current)


def _remove_stale(target, wanted):
    """Delete generated files whose source is gone (a renamed notebook, a removed function)."""
    for path in target.rglob("*"):
        if path.is_file() and str(path.relative_to(target)) not in wanted:
            path.unlink()
