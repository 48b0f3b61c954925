# The two set-up commands of the README: `make demo` and `make test`. Both create .venv with
# python3, install torch (a CPU build on these machines) and this package, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast fuzz bench clean

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

bench: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/fastrp_blogcatalog.py
	$(BIN)/python benchmarks/kronecker_sbl.py
	$(BIN)/python benchmarks/flora_transfer.py
	$(BIN)/python benchmarks/funbat_real.py   # FUNBAT_REFERENCE=<authors' checkout> runs their code beside ours
	$(BIN)/python benchmarks/ctr_compression.py
	$(BIN)/python benchmarks/mlc_clustering.py
	$(BIN)/python benchmarks/pamc_clustering.py   # PAMC_REFERENCE=<authors' checkout> runs their code beside ours
	$(BIN)/python benchmarks/dsl_gowalla.py
	$(BIN)/python benchmarks/recsys_scale.py   # writes a 0.8 GB Criteo-like file to /tmp/recsys_scale once
	$(BIN)/python benchmarks/fastrp_scale.py   # writes 2M/20M and 10M/100M-edge graphs (~1.6 GB) to /tmp/fastrp_scale once

clean:
	rm -rf $(VENV) demo-output .pytest_cache *.egg-info
