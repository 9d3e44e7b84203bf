# initprune: `make demo` runs the paper's methods on offline data; `make test` checks everything.
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PROFILE ?= paper
JOBS ?= 2
# PORT is MLflow's (ui, server), LAB_PORT JupyterLab's
PORT ?= 5000
LAB_PORT ?= 8888
HOST ?= 127.0.0.1

.PHONY: help setup data demo reproduce figures bench bench-executors test lint lab lab-check ui server clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install the package with its extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "make setup: installing torch, MLflow, Ray, Dask and JupyterLab into $(VENV) (several GB, minutes)"
	$(PY) -m pip install -e '.[notebooks,ray,dask,dev]'
	touch $@

FASHION_DEB := /usr/share/datasets/fashion-mnist
FASHION_HOW := Fashion-MNIST is not here: install Debian's copy (apt-get install dataset-fashion-mnist, as root), or run make setup data once with internet

# never fails: what cannot be had is one line saying how to get it
data:  ## Fashion-MNIST offline: Debian's dataset-fashion-mnist via apt-get (as root), else a torchvision download into data/
	@if [ ! -f $(FASHION_DEB)/t10k-labels-idx1-ubyte.gz ] && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] \
	    && command -v apt-get >/dev/null; then \
	  echo "make data: apt-get install -y dataset-fashion-mnist"; \
	  apt-cache show dataset-fashion-mnist >/dev/null 2>&1 || apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null || true; \
	fi; \
	if [ -x $(PY) ]; then \
	  $(PY) -c 'from initprune.data import fetch; print(fetch("fashion_mnist"))' || echo "$(FASHION_HOW)"; \
	elif [ -f $(FASHION_DEB)/t10k-labels-idx1-ubyte.gz ]; then \
	  echo "make data: Debian's Fashion-MNIST is installed; the first load unpacks it into data/"; \
	else \
	  echo "$(FASHION_HOW)"; \
	fi

demo: setup data  ## every method on offline digits and MNIST-1D and a digits autoencoder, 3 seeds: sweep, MLflow, figures/ (a second run skips what is done)
	$(PY) -m initprune sweep --profile demo --jobs $(JOBS)
	$(PY) -m initprune figures

reproduce: setup data  ## the full grid of docs/method.md (PROFILE=... picks another); resumable
	$(PY) -m initprune sweep --profile $(PROFILE) --jobs $(JOBS)
	$(PY) -m initprune figures

figures: setup  ## the paper's figures and claims.md from every run in MLflow
	$(PY) -m initprune figures

bench: setup  ## speed benchmarks: prints the table, writes benchmarks/latest.json (not part of make test)
	$(PY) benchmarks/bench.py

bench-executors: setup  ## the smoke sweep's wall time locally, on a 2-node Ray and a Dask cluster (127.0.0.1)
	$(PY) benchmarks/executors.py

# Jupyter refuses to start as root, the usual user inside a container, unless told it may
AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup  ## JupyterLab over notebooks/ on 127.0.0.1 (LAB_PORT=8888), no browser opened
	$(if $(AS_ROOT),@echo "make lab: running as root (as in a container): JupyterLab starts with --allow-root")
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(LAB_PORT) --no-browser $(AS_ROOT)

lab-check: setup  ## open notebooks/explore.ipynb in headless Chromium (Selenium), run every cell; fails where an output is hidden
	$(PY) benchmarks/lab_browser.py

ui: setup  ## the MLflow UI over mlruns/ on 127.0.0.1 (PORT=5000); prints where its login (credentials file) is
	$(PY) -m initprune ui --port $(PORT)

server: setup  ## a shared MLflow tracking server over mlruns/ for cluster sweeps (HOST=127.0.0.1 PORT=5000), with a login
	$(PY) -m initprune server --host $(HOST) --port $(PORT)

test: setup  ## the whole test suite (ruff, pytest, nbval)
	$(VENV)/bin/ruff check initprune tests benchmarks
	$(PY) -m pytest

lint: setup  ## ruff over the library and tests
	$(VENV)/bin/ruff check initprune tests benchmarks

clean:  ## remove the environment and caches (keeps mlruns/ and data/)
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache initprune.egg-info
