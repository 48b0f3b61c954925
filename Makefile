# The two set-up commands of the README: `make demo` and `make test`. Both create .venv with
# python3, install torch (a CPU build on these machines) and this package, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast test-min fuzz bench bench-quick clean

$(INSTALLED): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	mkdir -p demo-output
	$(BIN)/graphkit embed --dim 16 --seed 0 --out demo-output/karate_fastrp.csv
	@echo "first rows of demo-output/karate_fastrp.csv (node id, then its 16-dimensional vector):"
	@head -n 4 demo-output/karate_fastrp.csv | cut -c 1-110

# The whole suite, slow tests and tutorials included.
test: $(INSTALLED)
	$(BIN)/python -m pytest -m "slow or not slow" $(PYTEST_ARGS)

# Without the tests marked slow.
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tests against the lowest versions setup.cfg allows, in a venv of their own: Python 3.11 (the
# floor of python_requires), torch 2.13.0, and every other dependency of install_requires and of the
# test extra pinned to its lower bound by requirements-min.txt (tests/test_packaging.py checks that the
# pins and the bounds are the same numbers). Wheels only: nothing is compiled.
MIN_PYTHON ?= python3.11
MIN_VENV ?= .venv-min
MIN_INSTALLED := $(MIN_VENV)/.installed

$(MIN_INSTALLED): setup.cfg pyproject.toml requirements-min.txt
	test -x $(MIN_VENV)/bin/python || $(MIN_PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(MIN_VENV)/bin/python -m pip install --quiet --only-binary=:all: -c requirements-min.txt -e '.[test]'
	$(MIN_VENV)/bin/python -m pip check
	touch $(MIN_INSTALLED)

test-min: $(MIN_INSTALLED)
	$(MIN_VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The property-based tests of tests/fuzz/ with many more examples than the default run.
fuzz: $(INSTALLED)
	TENSORGRAPH_FUZZ_PROFILE=slow $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

# Every benchmark through the harness (benchmarks/README.md); results in benchmarks/results/. The
# scale benchmarks write their generated inputs (~2.5 GB) to /tmp once. Run on an idle machine.
bench: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks --all

# Every benchmark at its quick settings (a few minutes), into benchmarks/results/quick/.
bench-quick: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks --all --quick

DOCS_INSTALLED := $(VENV)/.installed-docs

$(DOCS_INSTALLED): $(INSTALLED) setup.cfg
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_INSTALLED)

.PHONY: docs docs-check

# The documentation site (docs/README.md) into docs/_build/html: API reference, the README's guide,
# the tutorials executed in quick mode with their figures, benchmark reports, evidence notes. Any
# Sphinx warning fails it. A tutorial runs again only when it or the library changed (cache in docs/_build).
docs: $(DOCS_INSTALLED)
	$(BIN)/python -m sphinx -b html -W --keep-going docs docs/_build/html -d docs/_build/doctrees

# By hand, not in CI (needs Debian's chromium): every tutorial page shows its figures in headless
# Chromium; a screenshot is saved as docs/_build/render-check.png.
docs-check: docs
	$(BIN)/python docs/check_rendered.py

clean:
	rm -rf $(VENV) $(MIN_VENV) demo-output .pytest_cache *.egg-info
