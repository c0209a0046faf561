# Every target installs what it needs first; `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MLFLOW_STORE ?= sqlite:///mlruns/mlflow.db
PORT ?= 5000
STUDY ?= quick
STUDY_STORAGE ?= studies/optuna.log
DASHBOARD_PORT ?= 8080
GRID ?= lab
LABEL ?=
BENCH_ARGS ?=
WORKERS ?= auto
A ?=
B ?=
COMPARE_ARGS ?=
SERVICES_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-slow train bench smoke compare ui tune tune-pruners dashboard ttq overhead services services-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with the pinned dependencies (idempotent)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aevae needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,cluster]'
	touch $@

test: install ## fast test suite (a few minutes); its header names the machine and what each auto setting is here
	$(BIN)/python -m pytest

test-slow: install ## real-data and long tests (needs AEVAE_DATA_DIR with MNIST)
	$(BIN)/python -m pytest -m slow

train: install ## one example run: VAE, conv, MNIST, 5 epochs
	$(BIN)/aevae train --model vae --arch conv --dataset mnist --epochs 5

bench: install ## run the grid GRID (default lab) as version LABEL (default: the git commit) in WORKERS processes (default auto), then its report; options in BENCH_ARGS
	status=0; $(BIN)/aevae bench $(GRID) $(if $(WORKERS),--workers $(WORKERS)) $(if $(LABEL),--label $(LABEL)) $(BENCH_ARGS) || status=$$?; \
	$(BIN)/aevae report $(GRID) $(if $(LABEL),--label $(LABEL)) && exit $$status

compare: install ## version A against version B (GRID@LABEL; default: GRID's last two versions); options in COMPARE_ARGS
	$(BIN)/aevae compare $(or $(A),$(GRID)) $(B) $(COMPARE_ARGS)

smoke: install ## the smoke grid: the 12 cells on a few hundred images, seconds each
	$(BIN)/aevae bench smoke $(if $(LABEL),--label $(LABEL)) $(BENCH_ARGS)

.PHONY: report
report: install ## RESULTS.md and figures of grid GRID (default lab), version LABEL (default: the newest), from MLflow
	$(BIN)/aevae report $(GRID) $(if $(LABEL),--label $(LABEL))

ttq: install ## time to quality: seconds until each MNIST lab cell reaches its fp32 target, fp32 vs faster variants (ARGS; ~18 min a seed on 2 cores)
	$(BIN)/python benchmarks/time_to_quality.py $(ARGS)

overhead: install ## time the end-of-run analysis on MNIST cells, print what it finds (~10 min quiet)
	$(BIN)/python benchmarks/analysis_overhead.py $(ARGS)

ui: install ## MLflow UI on the embedded store (http://127.0.0.1:$(PORT); click Model training, or open the link aevae bench prints)
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_STORE) --port $(PORT)

tune: install ## run or resume the Optuna study STUDY (default quick: a few minutes on a CPU)
	$(BIN)/aevae tune $(STUDY) --storage $(STUDY_STORAGE)

tune-pruners: install ## STUDY under median, Hyperband and no pruning (separate studies, same seed)
	for pruner in median hyperband none; do $(BIN)/aevae tune $(STUDY) --storage $(STUDY_STORAGE) --pruner $$pruner || exit; done

dashboard: install ## optuna-dashboard on the study storage (http://127.0.0.1:$(DASHBOARD_PORT))
	@test -f $(STUDY_STORAGE) || { echo "no studies in $(STUDY_STORAGE) yet: run make tune first"; exit 2; }
	$(BIN)/optuna-dashboard $(STUDY_STORAGE) --port $(DASHBOARD_PORT)

services: install ## PostgreSQL, an MLflow server on it and a Ray head, under .services/ (SERVICES_ARGS: --host H, --auth); prints the env lines (idempotent)
	$(BIN)/python deploy/services.py up $(SERVICES_ARGS)

services-down: install ## stop what make services started; their data stays in .services/
	$(BIN)/python deploy/services.py down $(SERVICES_ARGS)

clean: ## remove the virtual environment and caches (keeps mlruns/ and studies/)
	rm -rf $(VENV) .pytest_cache
