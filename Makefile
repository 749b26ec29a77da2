# Two commands set up a machine: `make dev` runs the platform, `make test` checks it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
NODE_STAMP := node_modules/.installed-$(shell cat package-lock.json | sha1sum | cut -c1-12)
PYTEST_WORKERS ?= 2

.PHONY: install browser dev test check lint typecheck contracts openapi-check pytest openapi lock bench bench-sandbox bench-catalog bench-labs bench-dashboards clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Browser libraries (htmx, charts) come from the npm registry, served as static files.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# Browser tests drive Debian's Chromium, scrape tests Debian's Prometheus; installed where
# apt-get may run, else those tests skip and say why.
SYSTEM_PACKAGES := /usr/bin/chromium:chromium /usr/bin/prometheus:prometheus
browser:
	@for entry in $(SYSTEM_PACKAGES); do \
	  binary=$${entry%%:*}; package=$${entry##*:}; \
	  test -x $$binary && continue; \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq --no-install-recommends $$package >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $$package >/dev/null; }; \
	  else echo "note: no $$binary and apt-get unavailable: tests needing it will skip"; fi; \
	done

install: $(STAMP) $(NODE_STAMP) browser

## make dev: migrate, set up the demo organisation, run web + worker + beat
dev: install
	$(PY) -m config.devserver

## make test: lint, types, layer contracts and the test suite (embedded servers if no URLs)
test: install
	$(PY) -m config.localservices run -- $(MAKE) --no-print-directory check

check: lint typecheck contracts openapi-check pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy .

contracts:
	$(VENV)/bin/lint-imports

# The committed API schemas (config/openapi/) match the code; needs no database.
openapi-check:
	$(PY) manage.py openapi_schemas --check

pytest:
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## make openapi: rewrite config/openapi/{public,tenant}.yaml from the API views
openapi: install
	$(PY) manage.py openapi_schemas

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

bench-catalog: install
	$(PY) benchmarks/catalog.py

bench-labs: install
	$(PY) -m config.localservices run -- $(PY) benchmarks/labs.py

bench-dashboards: install
	$(PY) -m config.localservices run -- $(PY) benchmarks/dashboards.py

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache
