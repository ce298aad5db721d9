# hacs: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
STAMP  := $(VENV)/.installed

.PHONY: help install demo test bench bench-smoke docs lint format migrate clean

help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install hacs with its dev tools.

demo: $(STAMP) ## Migrate the database (embedded by default) and run the user guide's flow.
	$(PY) -m hacs_persistence.ops.demo

test: $(STAMP) ## Run the whole test suite against real PostgreSQL (embedded, or HACS_TEST_DATABASE_URL).
	$(PY) -m pytest

bench: $(STAMP) ## Benchmarks vs raw asyncpg (a few minutes); writes bench/results/latest.json.
	$(PY) -m bench

bench-smoke: $(STAMP) ## The benchmarks at a tiny size, to keep the harness working (CI).
	$(PY) -m bench --smoke

docs: $(STAMP) ## Build the documentation site (MkDocs Material, strict) into site/.
	$(VENV)/bin/mkdocs build --strict

lint: $(STAMP) ## Ruff and mypy --strict.
	$(VENV)/bin/ruff check hacs tests alembic bench
	$(VENV)/bin/ruff format --check hacs tests alembic bench
	$(VENV)/bin/mypy

format: $(STAMP) ## Format and autofix with ruff.
	$(VENV)/bin/ruff format hacs tests alembic bench
	$(VENV)/bin/ruff check --fix hacs tests alembic bench

migrate: $(STAMP) ## Migrate the configured database to head (hacs db upgrade); says what it did.
	$(VENV)/bin/hacs db upgrade

clean: ## Remove the virtualenv and caches.
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
