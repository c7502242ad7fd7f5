# The two commands that matter: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test lint typecheck pytest stress bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Runtime install only (what `make demo` needs).
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install --quiet -e .
	touch $@

# Runtime + test + dev tools.
$(VENV)/.test-installed: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(PY) examples/orders.py

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check eventlog

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

pytest: $(VENV)/.test-installed
	$(PY) -m pytest -q

test: lint typecheck pytest

# Long-running crash/stress tests (not part of `make test`).
stress: $(VENV)/.test-installed
	EVENTLOG_STRESS=1 $(PY) -m pytest -q -m stress

# Benchmarks: `make bench` (full, about 13 minutes) or `make bench QUICK=1` (about a minute and a half).
bench: $(VENV)/.test-installed
	$(PY) benchmarks/bench.py $(if $(QUICK),--quick,)
	$(PY) benchmarks/clients.py $(if $(QUICK),--quick,)
	$(PY) benchmarks/compaction.py $(if $(QUICK),--quick,)
	$(PY) benchmarks/testing_fixture.py $(if $(QUICK),--quick,)
	$(PY) benchmarks/eventsourcing.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info demo-data
