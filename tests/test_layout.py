"""The layout rules of the library (DESIGN.md): small modules, one-way imports, one device layer,
no hidden seeds, no reaching into another package's private modules."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tensorkit", "graphkit", "recsys")
MAX_MODULE_LINES = 850  # "no library module over about 800 lines"


def library_files():
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def code_lines(path: Path):
    """``(number, line)`` of the lines outside docstrings and comments."""
    tree = ast.parse(path.read_text())
    docstring_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                docstring_lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if number not in docstring_lines and not line.lstrip().startswith("#"):
            yield number, line.split("#")[0]


def imported_modules(path: Path, known: set) -> set:
    """The library modules that ``path`` imports, anywhere in it (function bodies included)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in known:
                    found.add(target)
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def runtime_nodes(tree):
    """The nodes of ``tree`` outside ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


@pytest.mark.parametrize("path", library_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_library_module_is_over_about_800_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_modules_import_each_other_one_way():
    """No import circle between modules (package ``__init__`` re-exports aside)."""
    files = {module_name(path): path for path in library_files()}
    packages = {name for name, path in files.items() if path.name == "__init__.py"}
    graph = {name: imported_modules(path, set(files)) - packages for name, path in files.items()
             if name not in packages}
    cycles = []

    def visit(name, trail):
        if name in trail:
            cycles.append(trail[trail.index(name):] + [name])
            return
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, trail + [name])
        done.add(name)

    done = set()
    for name in sorted(graph):
        visit(name, [])
    assert not cycles, [" -> ".join(cycle) for cycle in cycles]


def test_no_package_imports_another_packages_private_modules():
    offenders = []
    for path in library_files():
        own = module_name(path).split(".")[0]
        for target in imported_modules(path, {module_name(p) for p in library_files()}):
            if target.split(".")[0] != own and any(part.startswith("_") for part in target.split(".")[1:]):
                offenders.append(f"{module_name(path)} imports {target}")
    assert not offenders, offenders


HIDDEN_SEEDS = re.compile(r"RandomState\(\s*\d|manual_seed\(\s*\d|random_state\s*=\s*\d|seed\s*\+\s*\d")


def test_no_hidden_fixed_seeds_in_library_code():
    """Every random stream comes from the estimator's ``random_state`` (spawned sub-seeds), never a constant."""
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in library_files()
                 for number, line in code_lines(path) if HIDDEN_SEEDS.search(line)]
    assert not offenders, offenders


def test_only_the_device_layer_chooses_devices():
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in library_files()
                 if path != ROOT / "tensorkit" / "backend.py"
                 for number, line in code_lines(path)
                 if "torch.cuda.is_available" in line or re.search(r"torch\.device\(", line)]
    assert not offenders, offenders
