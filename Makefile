# hacs: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
STAMP  := $(VENV)/.installed

.PHONY: help install constraints demo test test-fast bench bench-views bench-smoke bench-scale docs lint format migrate stop clean

help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install hacs with its dev tools, at the versions of constraints.txt.

constraints: $(STAMP) ## Rewrite constraints.txt from the versions installed in .venv.
	$(PY) .ci/constraints.py > constraints.txt.new && mv constraints.txt.new constraints.txt

demo: $(STAMP) ## Migrate the database (embedded by default) and run the user guide's flow.
	$(PY) -m hacs_persistence.ops.demo

test: $(STAMP) ## Run the whole test suite against real PostgreSQL (embedded, or HACS_TEST_DATABASE_URL).
	$(PY) -m pytest

test-fast: $(STAMP) ## Only the tests that need no PostgreSQL (not marked db): under a minute, no server.
	$(PY) -m pytest -m "not db"

bench: $(STAMP) ## Benchmarks vs raw asyncpg (a few minutes); writes bench/results/latest.json.
	$(PY) -m bench

bench-views: $(STAMP) ## Only the SQL on FHIR view target (200k observations, limit 1.5x typed SQL).
	$(PY) -m bench --only views

bench-smoke: $(STAMP) ## The benchmarks at a tiny size, to keep the harness working (CI).
	$(PY) -m bench --smoke

SIZE ?= 1000000
ARGS ?=
bench-scale: $(STAMP) ## Stages of 0.1M, 1M, SIZE resources: growth of latency and size (ARGS=--resume).
	$(PY) -m bench.scale --size $(SIZE) $(ARGS)

docs: $(STAMP) ## Build the documentation site (MkDocs Material, strict) into site/.
	$(VENV)/bin/mkdocs build --strict

lint: $(STAMP) ## Ruff check, ruff format --check, mypy --strict (hacs, tests, alembic, bench).
	$(VENV)/bin/ruff check hacs tests alembic bench
	$(VENV)/bin/ruff format --check hacs tests alembic bench
	$(VENV)/bin/mypy

format: $(STAMP) ## Format and autofix with ruff.
	$(VENV)/bin/ruff format hacs tests alembic bench
	$(VENV)/bin/ruff check --fix hacs tests alembic bench

migrate: $(STAMP) ## Migrate the configured database to head (hacs db upgrade); says what it did.
	$(VENV)/bin/hacs db upgrade

stop: ## Stop the embedded PostgreSQL servers of `make demo` and `make test` (data is kept).
	@if [ -x $(VENV)/bin/hacs ]; then \
	  $(VENV)/bin/hacs embedded stop; \
	  $(VENV)/bin/hacs embedded stop --data-dir "$$($(PY) -c 'from hacs_persistence.db.embedded import suite_data_dir; print(suite_data_dir())')"; \
	else echo "No $(VENV): nothing started by this checkout."; fi

clean: ## Stop the embedded servers, then remove the virtualenv and caches.
	@# First: the servers run the virtualenv's programs, which are about to be deleted.
	$(MAKE) --no-print-directory stop
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
