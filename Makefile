# Two commands set up a machine: `make dev` runs the platform, `make test` checks it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
PYTEST_WORKERS ?= 2

.PHONY: install dev test check lint typecheck contracts pytest lock bench bench-sandbox clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## make dev: migrate, set up the demo organisation, run web + worker + beat
dev: install
	$(PY) -m config.devserver

## make test: lint, types, layer contracts and the test suite (embedded servers if no URLs)
test: install
	$(PY) -m config.localservices run -- $(MAKE) --no-print-directory check

check: lint typecheck contracts pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy .

contracts:
	$(VENV)/bin/lint-imports

pytest:
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## make lock: re-resolve the pinned dependency set from pyproject.toml
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet --upgrade pip
	.lockenv/bin/pip install --quiet '.[dev]'
	.lockenv/bin/pip freeze --exclude systems-design-lab | sort > requirements.lock
	rm -rf .lockenv build *.egg-info

bench: install
	$(PY) -m config.localservices run -- $(PY) benchmarks/tenants.py

bench-sandbox: install
	$(PY) benchmarks/sandbox.py

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache
