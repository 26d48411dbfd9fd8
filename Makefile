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
DEMO_CASES := $(if $(QUICK),8,16)
LOCSEG := $(BIN)/locseg
PYTEST_ARGS ?=

.PHONY: install test test-slow lint demo fov-experiment bench clean-demo help

help:
	@echo "make demo       synthetic cohort -> preprocess -> train -> infer -> evaluate (CPU-sized)"
	@echo "make demo QUICK=1   the same chain in a few minutes"
	@echo "make test       the test suite (not the slow tests)"
	@echo "make test-slow  the slow tests too"
	@echo "make fov-experiment   varying field of view: volume vs BPR vs true body position (LocBAM)"
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

# The demo chain, a mini-replication of the paper on the synthetic cohort: every stage caches, so a
# second `make demo` reports each stage up to date. Models x patch setups as in the paper's Table 2 /
# Fig. 4; the post-processing comparison on the small-patch baseline; shift robustness; the report.
DEMO_MODELS := baseline coordconv locbam
DEMO_SETUPS := small large
DEMO_SHIFTS := 0,5,25,50,100
EXP := $(if $(QUICK),experiments/quick,experiments/demo)

demo: $(STAMP)
	$(LOCSEG) synth --out $(DEMO)/raw --cases $(DEMO_CASES) --seed 0 --preset $(EXP)
	$(LOCSEG) preprocess --data $(DEMO)/raw --out $(DEMO)/pre --preset $(EXP)
	set -e; for setup in $(DEMO_SETUPS); do for model in $(DEMO_MODELS); do run=$$model-$$setup; \
	  $(LOCSEG) train --pre $(DEMO)/pre --out $(DEMO)/runs/$$run --model $$model --preset $(EXP)-$$setup; \
	  $(LOCSEG) infer --run $(DEMO)/runs/$$run --data $(DEMO)/raw --subset val --preset $(EXP) --out $(DEMO)/pred/$$run; \
	  $(LOCSEG) evaluate --pred $(DEMO)/pred/$$run --ref $(DEMO)/raw --out $(DEMO)/eval/$$run; \
	  if [ $$model != baseline ]; then $(LOCSEG) shift-eval --run $(DEMO)/runs/$$run --pre $(DEMO)/pre \
	    --shifts $(DEMO_SHIFTS) --preset $(EXP) --out $(DEMO)/shift/$$run; fi; \
	done; done
	$(LOCSEG) atlas --pre $(DEMO)/pre --pred $(DEMO)/pred/baseline-small --out $(DEMO)/atlas
	set -e; for method in lcf atlas; do \
	  $(LOCSEG) postprocess --pred $(DEMO)/pred/baseline-small --method $$method --atlas $(DEMO)/atlas \
	    --out $(DEMO)/pred/baseline-small-$$method; \
	  $(LOCSEG) evaluate --pred $(DEMO)/pred/baseline-small-$$method --ref $(DEMO)/raw \
	    --out $(DEMO)/eval/baseline-small-$$method; \
	done
	$(LOCSEG) report --runs $(DEMO)/runs --evals $(DEMO)/eval --shifts $(DEMO)/shift --pres $(DEMO)/pre \
	  --title "locseg demo: synthetic cohort, CPU presets" --out $(DEMO)/report
	@echo "report: $(DEMO)/report/report.md ($(DEMO)/report/report.html)"

# Varying field of view (AMOS22/KiTS23-like): the same LocBAM model with the axial location from volume
# coordinates, from body part regression (trained on a separate synthetic cohort) and from the ground
# truth body position, against the baseline. Issue 3 / issue 7 measurements; results in docs/.
FOV ?= fov-experiment
FOV_CASES := $(if $(QUICK),8,16)

fov-experiment: $(STAMP)
	$(LOCSEG) synth --out $(FOV)/raw --cases $(FOV_CASES) --seed 1 --fov varying
	$(LOCSEG) synth --out $(FOV)/bpr-cohort --cases 12 --seed 2 --fov varying
	$(LOCSEG) bpr train --data $(FOV)/bpr-cohort --out $(FOV)/bpr-model
	$(LOCSEG) bpr score --model $(FOV)/bpr-model --data $(FOV)/raw --out $(FOV)/bpr
	$(LOCSEG) bpr eval --scores $(FOV)/bpr --data $(FOV)/raw --out $(FOV)/bpr-eval
	set -e; for loc in volume truth bpr; do \
	  $(LOCSEG) preprocess --data $(FOV)/raw --out $(FOV)/pre-$$loc --preset $(EXP) --location $$loc \
	    $$( [ $$loc = bpr ] && echo --bpr $(FOV)/bpr ); \
	  for model in $$( [ $$loc = volume ] && echo baseline ) locbam; do run=$$model-$$loc; \
	    $(LOCSEG) train --pre $(FOV)/pre-$$loc --out $(FOV)/runs/$$run --model $$model --preset $(EXP)-small; \
	    $(LOCSEG) infer --run $(FOV)/runs/$$run --data $(FOV)/raw --subset val --preset $(EXP) \
	      $$( [ $$loc = bpr ] && echo --bpr $(FOV)/bpr ) --out $(FOV)/pred/$$run; \
	    $(LOCSEG) evaluate --pred $(FOV)/pred/$$run --ref $(FOV)/raw --out $(FOV)/eval/$$run; \
	  done; \
	done
	$(LOCSEG) report --runs $(FOV)/runs --evals $(FOV)/eval --title "varying field of view: location sources" \
	  --out $(FOV)/report
	@echo "report: $(FOV)/report/report.md"

bench: $(STAMP)
	mkdir -p bench-out
	@for b in benchmarks/bench_*.py; do \
		echo "== $$b"; $(BIN)/python $$b --out bench-out/$$(basename $$b .py | sed 's/^bench_//').json || exit 1; \
	done

clean-demo:
	rm -rf $(DEMO)
