"""The sources that docs/conf.py generates for the documentation site, and the render check's verdicts.

The site itself is built (warnings are errors) by ``make docs`` in CI; these tests pin what the
generator must produce: a page for every public name, each object documented once, no stale pages.
"""

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import check_rendered  # noqa: E402
import generate_sources  # noqa: E402

DIRECTIVE = re.compile(r"^\.\. auto(class|function|data):: (\S+)$", re.M)


def exported_objects():
    """``(module name, name, object)`` for every non-module name in a public ``__all__``."""
    found = []
    for package_name in ("tensorkit", "graphkit", "recsys"):
        package = importlib.import_module(package_name)
        modules = [package] + [importlib.import_module(info.name) for info in
                               pkgutil.walk_packages(package.__path__, prefix=package_name + ".")
                               if not any(part.startswith("_") for part in info.name.split("."))]
        for module in modules:
            for name in getattr(module, "__all__", ()):
                obj = getattr(module, name)
                if not inspect.ismodule(obj):
                    found.append((module.__name__, name, obj))
    return found


def resolve(full_name):
    """The object a directive names, imported by its dotted path."""
    module_name, name = full_name.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), name)


@pytest.fixture(scope="module")
def api_pages(tmp_path_factory):
    target = tmp_path_factory.mktemp("api")
    generate_sources.write_api_pages(target)
    return target


def test_every_public_name_is_documented_exactly_once(api_pages):
    documented = {}
    for page in (api_pages / "generated").glob("*.rst"):
        directives = DIRECTIVE.findall(page.read_text())
        assert len(directives) == 1, page.name
        full_name = directives[0][1]
        assert page.name == f"{full_name}.rst"
        key = (id(resolve(full_name)), full_name.rsplit(".", 1)[1])
        assert key not in documented, f"{full_name} and {documented.get(key)} document the same object"
        documented[key] = full_name
    exported = exported_objects()
    missing = [f"{module}.{name}" for module, name, obj in exported if (id(obj), name) not in documented]
    assert not missing
    assert len(documented) == len({(id(obj), name) for _, name, obj in exported})


def test_objects_live_under_the_shortest_module_and_others_link_there(api_pages):
    assert (api_pages / "generated" / "graphkit.FastRP.rst").is_file()
    assert not (api_pages / "generated" / "graphkit.fastrp.FastRP.rst").exists()
    fastrp_module = (api_pages / "graphkit.fastrp.rst").read_text()
    assert ":py:obj:`~graphkit.FastRP`" in fastrp_module
    assert "generated/graphkit.fastrp.fastrp_embed" in fastrp_module  # owned here: in its toctree
    assert "autoclass" in (api_pages / "generated" / "graphkit.FastRP.rst").read_text()
    assert "autofunction" in (api_pages / "generated" / "graphkit.read_edgelist.rst").read_text()


def test_a_module_named_like_an_exported_function_is_not_indexed_twice(api_pages):
    # recsys.ctr exports the function compress, and recsys/ctr/compress.py is a public module
    assert callable(resolve("recsys.ctr.compress"))
    assert ":no-index:" in (api_pages / "recsys.ctr.compress.rst").read_text()
    assert ":no-index:" not in (api_pages / "recsys.ctr.rst").read_text()


def test_index_lists_every_public_module(api_pages):
    index = (api_pages / "index.rst").read_text()
    for module in ("tensorkit", "tensorkit.flora", "graphkit.io", "recsys.ctr", "recsys.sparse.engine"):
        assert f"\n   {module}\n" in index
        assert (api_pages / f"{module}.rst").is_file()
    assert "tensorkit.funbat._ssm" not in index


def test_regenerating_removes_pages_whose_source_is_gone(tmp_path):
    stale = tmp_path / "generated" / "graphkit.removed_function.rst"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    generate_sources.write_api_pages(tmp_path)
    assert not stale.exists()
    assert (tmp_path / "generated" / "graphkit.FastRP.rst").is_file()


def test_tutorial_copies_are_the_committed_notebooks(tmp_path):
    (tmp_path / "renamed.ipynb").write_text("{}")
    generate_sources.write_tutorials(tmp_path)
    sources = sorted((ROOT / "tutorials").glob("*.ipynb"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [path.name for path in sources]
    for source in sources:
        assert (tmp_path / source.name).read_text() == source.read_text()


def test_benchmark_pages_include_each_report(tmp_path):
    generate_sources.write_benchmark_pages(tmp_path)
    reports = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [report.name for report in reports]
    for report in reports:
        included = re.match(r"```\{include\} (\S+)\n```\n$", (tmp_path / report.name).read_text()).group(1)
        assert (tmp_path / included).resolve() == report.resolve()


def test_execution_cache_is_keyed_on_the_library_code_and_drops_other_versions(tmp_path):
    (tmp_path / "0123456789abcdef").mkdir()
    folder = Path(generate_sources.execution_cache(tmp_path))
    assert folder.parent == tmp_path and re.fullmatch(r"[0-9a-f]{16}", folder.name)
    assert folder.name == generate_sources.library_digest()
    assert not (tmp_path / "0123456789abcdef").exists()


def image(width, height, complete=True):
    return {"src": "../../_images/a.png", "complete": complete, "width": width, "height": height, "lazy": False}


@pytest.mark.parametrize("record, expected", [
    ({"images": [image(400, 300)], "outputs": [image(400, 300)]}, []),
    ({"images": [image(16, 16)], "outputs": []}, ["no <img> in its cell outputs"]),
    ({"images": [image(400, 300), image(0, 0)], "outputs": [image(400, 300), image(0, 0)]},
     ["image ../../_images/a.png not rendered (0x0)"]),
    ({"images": [image(400, 300, complete=False)], "outputs": [image(400, 300, complete=False)]},
     ["image ../../_images/a.png not rendered (400x300)"]),
])
def test_render_check_fails_a_page_without_figures_or_with_a_broken_image(record, expected):
    assert check_rendered.problems(record) == expected

