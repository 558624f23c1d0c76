# Two commands for a new user: `make reproduce` (set up + run the default pipeline) and
# `make test` (set up + run the tests). Both create .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# A named grid instead of the default one, e.g. `make reproduce CONFIG=config/smax_cpu.yaml`.
CONFIG ?=
GRID := $(if $(CONFIG),--configfile $(CONFIG))
STAMP := $(VENV)/.installed

.PHONY: install reproduce figures test test-slow test-slurm lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# A CPU build of torch from local disk; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --profile profiles/local --cores $(CORES) $(GRID)

figures: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --profile profiles/figures --cores $(CORES) $(GRID)

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -m slow

test-slurm: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -m slurm

lint: $(STAMP)
	$(BIN)/ruff check maven baselines tests benchmarks workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint --snakefile workflow/Figures.smk

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_population.py
	$(BIN)/python benchmarks/population_vs_single.py
	$(BIN)/python benchmarks/bench_allocator.py
	$(BIN)/python benchmarks/bench_zpolicy.py
	$(BIN)/python benchmarks/bench_learner.py
	$(BIN)/python benchmarks/bench_smax.py
	$(BIN)/python benchmarks/bench_train.py
