# locseg: every target installs what it needs first, so `make demo` and `make test` work on a fresh clone.
# TORCH picks the torch build: the default is the CPU wheel this machine has on disk; e.g.
# `make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"` for CUDA.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.locseg-installed
QUICK ?=
LOCSEG := $(BIN)/locseg
PYTEST_ARGS ?=

.PHONY: install test test-slow lint demo location-experiment fov-experiment bench clean-demo help

help:
	@echo "make demo       synthetic cohort -> preprocess -> train -> infer -> evaluate (CPU-sized)"
	@echo "make demo QUICK=1   the same chain in a few minutes"
	@echo "make test       the test suite (not the slow tests)"
	@echo "make test-slow  the slow tests too"
	@echo "make location-experiment   the demo chain at 2.5 mm slices, 1500 iterations a model (location matters)"
	@echo "make fov-experiment   varying field of view: volume vs BPR vs true body position (LocBAM)"
	@echo "make bench      benchmarks, JSON in bench-out/ (QUICK=1: each one's smoke run)"
	@echo "make lint       ruff"

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev,export,dicom]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check locseg_cli tests benchmarks

# The demo chain: the paper's headline on a synthetic cohort (presets/experiments/demo.yaml says how it
# deviates from the paper). Baseline, CoordConv and LocBAM at small patches, baseline and LocBAM at large
# ones, trained on one cohort (SEED) and evaluated on an external test cohort synthesised with another seed
# (TEST_SEED) that no model trained on or was selected on; the axial shift curves (Fig. 4) of the location
# models on that cohort; the report with the paired per-scan comparison. Every stage caches, so a second
# `make demo` reports each stage up to date. Each stage is a phony target whose prerequisites are the
# stages it reads, so independent chains run side by side: DEMO_JOBS chains at once, DEMO_THREADS torch
# threads each (2 x 1 uses two cores better than 1 x 2: much of a chain is single-threaded Python).
# `make demo SEED=1` runs the whole chain with other cohort and training seeds, in demo-seed1/.
SEED ?= 0
TEST_SEED ?= $(shell echo $$((100 + $(SEED))))
DEMO ?= demo$(if $(filter-out 0,$(SEED)),-seed$(SEED))
DEMO_CASES := $(if $(QUICK),6,16)
DEMO_TEST_CASES := $(if $(QUICK),4,12)
# large runs first: the longest jobs start first when two run side by side
DEMO_RUNS := baseline-large locbam-large baseline-small coordconv-small locbam-small
DEMO_SHIFT_RUNS := coordconv-small locbam-small
DEMO_JOBS ?= 2
DEMO_THREADS ?= 1
EXP := $(if $(QUICK),experiments/quick,experiments/demo)
DEMO_TITLE := locseg demo: synthetic cohort seed $(SEED), external test cohort seed $(TEST_SEED) ($(EXP))
run_model = $(word 1,$(subst -, ,$(1)))
run_setup = $(word 2,$(subst -, ,$(1)))

# $(call run_chain,NAME,FINAL-TARGET,REPORT): make FINAL-TARGET with DEMO_JOBS chains side by side and
# DEMO_THREADS torch threads each, then say how long NAME took and where its report is.
run_chain = @start=$$(date +%s); \
	OMP_NUM_THREADS=$(DEMO_THREADS) LOCSEG_PROGRESS=$(if $(filter 1,$(DEMO_JOBS)),,lines) \
	  $(MAKE) --no-print-directory -j$(DEMO_JOBS) $(2) || exit 1; \
	echo "make $(1): $$(( $$(date +%s) - start )) s; report: $(3)"

demo: $(STAMP)
	+$(call run_chain,demo,demo-report,$(DEMO)/report/report.md ($(DEMO)/report/report.html))

.PHONY: demo-synth demo-synth-test demo-pre demo-report $(addprefix demo-train-,$(DEMO_RUNS)) \
	$(addprefix demo-infer-,$(DEMO_RUNS)) $(addprefix demo-shift-,$(DEMO_SHIFT_RUNS))

demo-synth:
	$(LOCSEG) synth --out $(DEMO)/raw --cases $(DEMO_CASES) --seed $(SEED) --preset $(EXP)

demo-synth-test:
	$(LOCSEG) synth --out $(DEMO)/test-raw --cases $(DEMO_TEST_CASES) --seed $(TEST_SEED) --prefix test \
	  --montage-cases 0 --preset $(EXP)

demo-pre: demo-synth
	$(LOCSEG) preprocess --data $(DEMO)/raw --out $(DEMO)/pre --preset $(EXP)

$(addprefix demo-train-,$(DEMO_RUNS)): demo-train-%: demo-pre
	$(LOCSEG) train --pre $(DEMO)/pre --out $(DEMO)/runs/$* --model $(call run_model,$*) --seed $(SEED) \
	  --preset $(EXP)-$(call run_setup,$*)

$(addprefix demo-infer-,$(DEMO_RUNS)): demo-infer-%: demo-train-% demo-synth-test
	$(LOCSEG) infer --run $(DEMO)/runs/$* --data $(DEMO)/test-raw --preset $(EXP) --out $(DEMO)/pred/$*
	$(LOCSEG) evaluate --pred $(DEMO)/pred/$* --ref $(DEMO)/test-raw --preset $(EXP) --out $(DEMO)/eval/$*

# The baseline ignores the location, so shifting it changes nothing: shift-eval only the others.
$(addprefix demo-shift-,$(DEMO_SHIFT_RUNS)): demo-shift-%: demo-train-% demo-synth-test
	$(LOCSEG) shift-eval --run $(DEMO)/runs/$* --data $(DEMO)/test-raw --preset $(EXP) --out $(DEMO)/shift/$*

demo-report: $(addprefix demo-infer-,$(DEMO_RUNS)) $(addprefix demo-shift-,$(DEMO_SHIFT_RUNS))
	$(LOCSEG) report --runs $(DEMO)/runs --evals $(DEMO)/eval --shifts $(DEMO)/shift --pres $(DEMO)/pre \
	  --title "$(DEMO_TITLE)" --out $(DEMO)/report

# Location context where it matters (issue 3): the demo chain with 2.5 mm slices and 1500 iterations
# per model (presets/experiments/location.yaml); ~2 h on 2 CPU cores, minutes on a GPU.
LOC ?= location-experiment

location-experiment: $(STAMP)
	$(MAKE) --no-print-directory demo DEMO=$(LOC) EXP=experiments/location

# Varying field of view (AMOS22/KiTS23-like; issues 3 and 7): the baseline, and LocBAM with its axial
# location from volume coordinates, from body part regression (trained on a separate cohort, the
# docs/bpr.md recipe) and from the true body position, at the location experiment's setting
# (presets/experiments/fov.yaml); a chain of cached stages like the demo's, DEMO_JOBS side by side.
FOV ?= fov-experiment
FOV_EXP := $(if $(QUICK),experiments/quick,experiments/fov)
FOV_CASES := $(if $(QUICK),8,16)
FOV_BPR_CASES := $(if $(QUICK),4,24)
FOV_RUNS := baseline-volume locbam-volume locbam-truth locbam-bpr
FOV_LOCATIONS := volume truth bpr
fov_bpr_opt = $(if $(filter bpr,$(1)),--bpr $(FOV)/bpr)
.PHONY: fov-synth fov-bpr fov-report $(addprefix fov-pre-,$(FOV_LOCATIONS)) $(addprefix fov-train-,$(FOV_RUNS)) \
	$(addprefix fov-infer-,$(FOV_RUNS))

fov-experiment: $(STAMP)
	+$(call run_chain,fov-experiment,fov-report,$(FOV)/report/report.md)

fov-synth:
	$(LOCSEG) synth --out $(FOV)/raw --cases $(FOV_CASES) --seed 3 --fov varying --preset $(FOV_EXP)

fov-bpr: fov-synth
	$(LOCSEG) synth --out $(FOV)/bpr-cohort --cases $(FOV_BPR_CASES) --seed 1 --fov varying --prefix tr \
	  --montage-cases 0
	$(LOCSEG) bpr train --data $(FOV)/bpr-cohort --out $(FOV)/bpr-model --preset $(FOV_EXP)
	$(LOCSEG) bpr score --model $(FOV)/bpr-model --data $(FOV)/raw --out $(FOV)/bpr
	$(LOCSEG) bpr eval --scores $(FOV)/bpr --data $(FOV)/raw --out $(FOV)/bpr-eval/fov

fov-pre-volume fov-pre-truth: fov-synth
fov-pre-bpr: fov-bpr
$(addprefix fov-pre-,$(FOV_LOCATIONS)): fov-pre-%:
	$(LOCSEG) preprocess --data $(FOV)/raw --out $(FOV)/pre/$* --preset $(FOV_EXP) --location $* $(call fov_bpr_opt,$*)

$(foreach r,$(FOV_RUNS),$(eval fov-train-$(r): fov-pre-$(call run_setup,$(r))))
$(addprefix fov-train-,$(FOV_RUNS)): fov-train-%:
	$(LOCSEG) train --pre $(FOV)/pre/$(call run_setup,$*) --out $(FOV)/runs/$* --model $(call run_model,$*) \
	  --preset $(FOV_EXP)-small

$(addprefix fov-infer-,$(FOV_RUNS)): fov-infer-%: fov-train-%
	$(LOCSEG) infer --run $(FOV)/runs/$* --data $(FOV)/raw --subset val --preset $(FOV_EXP) \
	  $(call fov_bpr_opt,$(call run_setup,$*)) --out $(FOV)/pred/$*
	$(LOCSEG) evaluate --pred $(FOV)/pred/$* --ref $(FOV)/raw --preset $(FOV_EXP) --out $(FOV)/eval/$*

fov-report: $(addprefix fov-infer-,$(FOV_RUNS))
	$(LOCSEG) report --runs $(FOV)/runs --evals $(FOV)/eval --pres $(FOV)/pre --bpr-evals $(FOV)/bpr-eval \
	  --title "varying field of view: location sources ($(FOV_EXP))" --out $(FOV)/report

bench: $(STAMP)
	mkdir -p bench-out
	@for b in benchmarks/bench_*.py; do \
		echo "== $$b"; $(BIN)/python $$b --out bench-out/$$(basename $$b .py | sed 's/^bench_//').json \
		  $(if $(QUICK),--quick) || exit 1; \
	done

clean-demo:
	rm -rf $(DEMO)

include make/paper.mk
