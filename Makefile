# The two set-up commands of the README: `make demo` and `make test`. Both create .venv with
# python3, install torch (a CPU build on these machines) and this package, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast fuzz bench bench-quick clean

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

clean:
	rm -rf $(VENV) demo-output .pytest_cache *.egg-info
