# locseg: every target installs what it needs first, so `make demo` and `make test` work on a fresh clone.
# TORCH picks the torch build: the default is the CPU wheel this machine has on disk; e.g.
# `make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"` for CUDA.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.locseg-installed
DEMO ?= demo
QUICK ?=
DEMO_PRESET := $(if $(QUICK),experiments/quick,experiments/demo)
DEMO_CASES := $(if $(QUICK),6,16)
LOCSEG := $(BIN)/locseg
PYTEST_ARGS ?=

.PHONY: install test test-slow lint demo bench clean-demo help

help:
	@echo "make demo       synthetic cohort -> preprocess -> train -> infer -> evaluate (CPU-sized)"
	@echo "make demo QUICK=1   the same chain in a few minutes"
	@echo "make test       the test suite (not the slow tests)"
	@echo "make test-slow  the slow tests too"
	@echo "make bench      benchmarks, JSON in bench-out/"
	@echo "make lint       ruff"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check locseg_cli tests benchmarks

# The demo chain: each stage caches (a second `make demo` reports every stage up to date).
demo: $(STAMP)
	$(LOCSEG) synth --out $(DEMO)/raw --cases $(DEMO_CASES) --seed 0
	$(LOCSEG) preprocess --data $(DEMO)/raw --out $(DEMO)/pre --preset $(DEMO_PRESET)
	$(LOCSEG) train --pre $(DEMO)/pre --out $(DEMO)/runs/baseline --model baseline --preset $(DEMO_PRESET)
	$(LOCSEG) infer --run $(DEMO)/runs/baseline --data $(DEMO)/raw --subset val --out $(DEMO)/pred/baseline
	$(LOCSEG) evaluate --pred $(DEMO)/pred/baseline --ref $(DEMO)/raw --out $(DEMO)/eval/baseline

bench: $(STAMP)
	mkdir -p bench-out
	@for b in benchmarks/bench_*.py; do \
		echo "== $$b"; $(BIN)/python $$b --out bench-out/$$(basename $$b .py | sed 's/^bench_//').json || exit 1; \
	done

clean-demo:
	rm -rf $(DEMO)
