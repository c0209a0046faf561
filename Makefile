# Every target installs what it needs first; `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MLFLOW_STORE ?= sqlite:///mlruns/mlflow.db
PORT ?= 5000

.DEFAULT_GOAL := help
.PHONY: help install test test-slow train ui clean overhead

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with the pinned dependencies (idempotent)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aevae needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

test: install ## fast test suite (a few minutes)
	$(BIN)/python -m pytest -q

test-slow: install ## real-data and long tests (needs AEVAE_DATA_DIR with MNIST)
	$(BIN)/python -m pytest -q -m slow

train: install ## one example run: VAE, conv, MNIST, 5 epochs
	$(BIN)/aevae train --model vae --arch conv --dataset mnist --epochs 5

overhead: install ## time the end-of-run analysis on MNIST cells, print what it finds (~10 min quiet)
	$(BIN)/python benchmarks/analysis_overhead.py $(ARGS)

ui: install ## MLflow UI on the embedded store (http://127.0.0.1:$(PORT))
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_STORE) --port $(PORT)

clean: ## remove the virtual environment and caches (keeps mlruns/ and studies/)
	rm -rf $(VENV) .pytest_cache
