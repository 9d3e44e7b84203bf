# initprune: `make demo` runs the paper's methods on offline data; `make test` checks everything.
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup test lint clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install the package with its extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -e '.[notebooks,dev]'
	touch $@

test: setup  ## the whole test suite (ruff, pytest)
	$(VENV)/bin/ruff check initprune tests
	$(PY) -m pytest

lint: setup  ## ruff over the library and tests
	$(VENV)/bin/ruff check initprune tests

clean:  ## remove the environment and caches (keeps mlruns/ and data/)
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache initprune.egg-info
