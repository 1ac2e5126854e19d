# bridging: every target creates and uses the local virtual environment .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the CPU build of torch that lies on this machine's disk; install it first so that pip
# never pulls a multi-GB CUDA build to satisfy the range in pyproject.toml
TORCH_SPEC ?= torch==2.13.0
export WANDB_SILENT ?= true

.DEFAULT_GOAL := help
.PHONY: help install test test-all lint format smoke train eval reproduce report sweep data-summary bench gpu-check clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev,speech]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install bridging with its dev tools

# two pytest workers of one thread each (the 2-core CI machine); a test file stays on one worker
TEST_WORKERS ?= 2
test: $(STAMP) ## run the test suite (CPU, offline; TEST_WORKERS=2 processes)
	WANDB_MODE=offline OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test-all: test ## alias of test (no test is skipped by default)

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP) ## ruff autofix + format
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

smoke: $(STAMP) ## seconds-long teacher training on tiny synthetic data
	WANDB_MODE=offline $(BIN)/bridging-train debug=tiny logger=none $(ARGS)

# PRECISION=auto (or bf16-mixed, 32-true) sets trainer.precision for train and reproduce
PRECISION_ARG = $(if $(PRECISION),trainer.precision=$(PRECISION))

train: $(STAMP) ## train the av teacher on the default (synthetic) data; ARGS=... for overrides; PRECISION=auto
	$(BIN)/bridging-train $(PRECISION_ARG) $(ARGS)

eval: $(STAMP) ## evaluate a checkpoint: make eval CKPT=path [ARGS='eval.modalities=[a]']
	@test -n "$(CKPT)" || { echo "usage: make eval CKPT=path/to/best.ckpt [ARGS=...]"; exit 2; }
	$(BIN)/bridging-eval ckpt_path=$(CKPT) $(ARGS)

reproduce: $(STAMP) ## the paper's comparison + report (QUICK=1: tiny data; DATA=file: real data; PROTOCOL=paper: the paper's split; PRECISION=auto)
	$(BIN)/bridging-reproduce $(if $(QUICK),--quick) $(if $(DATA),--data $(DATA)) $(if $(PROTOCOL),--protocol $(PROTOCOL)) $(ARGS) $(PRECISION_ARG)

report: $(STAMP) ## table + plots over runs: make report DIRS="outputs/..." (default outputs/)
	$(BIN)/bridging-report $(if $(DIRS),$(DIRS),outputs) --out report.md --csv report.csv --plots report_plots

sweep: $(STAMP) ## a multirun sweep, e.g. make sweep ARGS="experiment=student_kd sweep=kd_grid"
	$(BIN)/bridging-train -m $(ARGS)

data-summary: $(STAMP) ## JSON summary of the default synthetic data (or DATA=path)
	$(BIN)/bridging-data inspect $(if $(DATA),$(DATA),--synthetic)

bench: $(STAMP) ## run the benchmarks (figures go to BENCHMARKS.md by hand)
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_graph.py
	$(PY) benchmarks/bench_epoch.py

gpu-check: $(STAMP) ## on a CUDA machine: QUICK job + 55-epoch teacher with precision=auto vs CPU
	$(PY) benchmarks/gpu_check.py $(ARGS)

clean: ## remove the venv, outputs and caches
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
