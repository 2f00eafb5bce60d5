# make run   — create .venv, install graphctl, run the example graph
# make test  — install the test dependencies and run the whole suite
# make lint  — ruff + mypy (strict) on the packages
# make bench — the benchmark suite; regenerates bench/RESULTS.md

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test,lint,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/graphctl validate graphs/diamond.yaml
	$(VENV)/bin/graphctl graph graphs/diamond.yaml --format mermaid
	$(VENV)/bin/graphctl run graphs/diamond.yaml --input @graphs/diamond.input.json

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check orchestrator runners tests bench graphs
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
