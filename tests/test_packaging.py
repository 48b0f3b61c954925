"""The packaging is honest: every dependency has a lower bound, ``make test-min`` installs exactly those
bounds, the three packages report the installed version, and the license and changelog are there."""

import configparser
import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import graphkit
import recsys
import tensorkit

ROOT = Path(__file__).resolve().parents[1]


def setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def requirement_lines(value: str):
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def declared_requirements():
    """``install_requires`` and the ``test`` extra: what ``make test-min`` installs."""
    config = setup_cfg()
    lines = requirement_lines(config["options"]["install_requires"])
    lines += requirement_lines(config["options.extras_require"]["test"])
    return [Requirement(line) for line in lines]


def lower_bound(specifier: SpecifierSet) -> Version:
    bounds = [Version(spec.version) for spec in specifier if spec.operator == ">="]
    if len(bounds) != 1:
        raise ValueError(f"expected one '>=' bound, got {str(specifier)!r}")
    return bounds[0]


def minimum_pins():
    """``requirements-min.txt`` as ``{canonical name: pinned version}``."""
    pins = {}
    for line in requirement_lines((ROOT / "requirements-min.txt").read_text()):
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {line!r}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{requirement.name} is pinned twice"
        pins[name] = Version(specs[0].version)
    return pins


@pytest.mark.parametrize("requirement", declared_requirements(), ids=str)
def test_every_dependency_has_one_lower_bound_and_no_cap(requirement):
    assert [spec.operator for spec in requirement.specifier] == [">="], \
        f"{requirement}: declare the lowest tested version as '>=' (and no upper bound)"


def test_minimum_pins_are_the_declared_lower_bounds():
    declared = {canonicalize_name(req.name): lower_bound(req.specifier) for req in declared_requirements()}
    assert minimum_pins() == declared


def test_lower_bound_parsing_refuses_what_it_cannot_read():
    assert lower_bound(SpecifierSet(">=1.26.0")) == Version("1.26")
    with pytest.raises(ValueError, match="expected one '>=' bound"):
        lower_bound(SpecifierSet("==1.0"))


def test_test_min_uses_the_lowest_python_allowed():
    floor = lower_bound(SpecifierSet(setup_cfg()["options"]["python_requires"]))
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^MIN_PYTHON \?= python(\d+\.\d+)$", makefile, re.M).group(1) == f"{floor.major}.{floor.minor}"
    assert "-c requirements-min.txt" in makefile


def test_the_three_packages_report_the_installed_version():
    installed = importlib.metadata.version("tensorgraph-learn")
    assert Version(installed) == Version(setup_cfg()["metadata"]["version"]), \
        "the installed metadata is stale: reinstall the package (pip install -e .)"
    assert tensorkit.__version__ == graphkit.__version__ == recsys.__version__ == installed
    for package in (tensorkit, graphkit, recsys):
        assert "__version__" in package.__all__


def test_license_file_is_the_declared_mit_license():
    metadata = setup_cfg()["metadata"]
    assert metadata["license"] == "MIT" and metadata["license_files"].strip() == "LICENSE"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the tensorgraph-learn developers" in text


def test_changelog_has_an_unreleased_section_and_one_for_the_version():
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert setup_cfg()["metadata"]["version"] in headings
