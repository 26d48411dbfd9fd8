# The paper's tables and figures on real data, each a chain of cached locseg stages (included by the
# Makefile; docs/paper-targets.md says what each target runs, how long it takes and what it writes).
#
#   make table1 DATA_BTCV=... DATA_AMOS=... DATA_KITS=... BPR_MODEL=...   (or BPREG_AMOS=/BPREG_KITS=)
#   make table2 | fig2 | fig3 | fig4 | postprocess-table DATA_BTCV=...
#   make paper  ... all of the above, then `locseg report`      make paper-help: the variables
#
# Every stage writes $(PAPER_OUT)/<stage>/<setup>/<name>/ and says "up to date" when its inputs and
# resolved config are unchanged, so make always calls it and lets it decide (`paper-force`). A setup is
# <dataset>-<spacing>-<patch>; its options are the preset presets/experiments/paper-<setup>.yaml (the
# preprocessed dataset's: paper-<dataset>-<spacing>.yaml), never flags written here.

PAPER_OUT ?= paper/
FOLDS ?= 0 1 2 3 4
NPROC ?= 1
DEVICE ?=
EXTRA_PRESET ?=
BPR_MODEL ?=
BPREG_AMOS ?=
BPREG_KITS ?=

# What each target trains (setups as <dataset>-<spacing>-<patch>, one preset each).
TABLE1_SETUPS ?= btcv-isotropic-large amos22-isotropic-large kits23-isotropic-large
TABLE2_SETUPS ?= btcv-lowres-small btcv-lowres-large btcv-isotropic-small btcv-isotropic-large \
                 btcv-median-small btcv-median-large
FIG_SETUPS ?= btcv-lowres-small btcv-lowres-large
POSTPROCESS_SETUP ?= btcv-lowres-small
PAPER_MODELS := baseline coordconv locbam
POSTPROCESS_METHODS := lcf atlas
# Datasets whose axial location is a Body Part Regression score (their presets say `location: bpr`).
PAPER_BPR_DATASETS := amos22 kits23

PAPER_DIR := $(patsubst %/,%,$(PAPER_OUT))
PAPER_GOALS := table1 table2 fig2 fig3 fig4 postprocess-table paper paper-pre
PAPER_DEVICE := $(if $(strip $(DEVICE)),--device $(strip $(DEVICE)))
# One process, or torchrun with NPROC processes on this node (rank 0 writes; the batch is split).
PAPER_TRAIN := $(if $(filter 1,$(NPROC)),$(LOCSEG),$(BIN)/torchrun --standalone --nproc_per_node $(NPROC) -m locseg_cli)

paper_datavar_btcv := DATA_BTCV
paper_datavar_amos22 := DATA_AMOS
paper_datavar_kits23 := DATA_KITS
paper_datahelp_btcv := the BTCV folder holding RawData/Training/img and label
paper_datahelp_amos22 := the AMOS22 folder holding dataset.json, imagesTr/ and labelsTr/
paper_datahelp_kits23 := the KiTS23 folder holding dataset/case_XXXXX/
paper_bpregvar_amos22 := BPREG_AMOS
paper_bpregvar_kits23 := BPREG_KITS

# $1 = a setup (btcv-lowres-small) or a preprocessed dataset's name (btcv-lowres)
paper_ds = $(word 1,$(subst -, ,$1))
paper_pre = $(PAPER_DIR)/pre/$(word 1,$(subst -, ,$1))-$(word 2,$(subst -, ,$1))
paper_data = $(strip $($(paper_datavar_$(call paper_ds,$1))))
paper_bpr = $(if $(filter $(call paper_ds,$1),$(PAPER_BPR_DATASETS)),$(PAPER_DIR)/bpr/$(call paper_ds,$1))
paper_bpr_opt = $(if $(call paper_bpr,$1),--bpr $(call paper_bpr,$1))
paper_bpr_dep = $(if $(call paper_bpr,$1),$(call paper_bpr,$1)/manifest.json)
paper_isdir = $(if $(strip $1),$(wildcard $(strip $1)/.))

# EXTRA_PRESET (a preset name or YAML file) is merged over every paper preset through a generated
# wrapper preset, e.g. experiments/paper-smoke for a minutes-long check of the whole chain.
ifeq ($(strip $(EXTRA_PRESET)),)
paper_preset = experiments/paper-$1
paper_preset_dep =
else
paper_extra := $(if $(wildcard $(EXTRA_PRESET)),$(abspath $(EXTRA_PRESET)),$(strip $(EXTRA_PRESET)))
paper_preset = $(PAPER_DIR)/presets/paper-$1.yaml
paper_preset_dep = $(PAPER_DIR)/presets/paper-$1.yaml

$(PAPER_DIR)/presets/paper-%.yaml: $(wildcard $(EXTRA_PRESET)) paper-force
	@mkdir -p $(@D)
	printf 'include: [experiments/paper-%s, %s]\n' '$*' '$(paper_extra)' > $@
endif

# The chain, written once. Each template's targets are the stages' manifest.json files.
# $(call paper_pre_rules,DATASET-SPACING)
define paper_pre_rules
PAPER_MANIFESTS += $(PAPER_DIR)/pre/$1/manifest.json
$(PAPER_DIR)/pre/$1/manifest.json: $(call paper_bpr_dep,$1) $(call paper_preset_dep,$1) paper-force | $(STAMP)
	$(LOCSEG) preprocess --data $(call paper_data,$1) $(call paper_bpr_opt,$1) --preset $(call paper_preset,$1) --out $$(@D)
endef

# $(call paper_bpr_rules,DATASET): bpreg's JSON files when BPREG_<DATASET> is given, else BPR_MODEL's scores
define paper_bpr_rules
PAPER_MANIFESTS += $(PAPER_DIR)/bpr/$1/manifest.json
$(PAPER_DIR)/bpr/$1/manifest.json: paper-force | $(STAMP)
	$(if $(strip $($(paper_bpregvar_$1))),$(LOCSEG) bpr import --bpreg-dir $(strip $($(paper_bpregvar_$1))) --data $(call paper_data,$1),$(LOCSEG) bpr score --model $(BPR_MODEL) --data $(call paper_data,$1) $(PAPER_DEVICE)) --out $$(@D)
endef

# $(call paper_eval_rules,SETUP,NAME,PREDICTIONS)
define paper_eval_rules
PAPER_MANIFESTS += $(PAPER_DIR)/eval/$1/$2/manifest.json
$(PAPER_DIR)/eval/$1/$2/manifest.json: $3/manifest.json $(call paper_preset_dep,$1) paper-force | $(STAMP)
	$(LOCSEG) evaluate --pred $3 --ref $(call paper_data,$1) --preset $(call paper_preset,$1) --out $$(@D)
endef

# $(call paper_model_rules,SETUP,MODEL,FOLD): train -> infer on the fold's validation cases -> evaluate;
# shift-eval of the same run
define paper_model_rules
PAPER_MANIFESTS += $(foreach s,runs pred shift,$(PAPER_DIR)/$s/$1/$2-fold$3/manifest.json)
$(PAPER_DIR)/runs/$1/$2-fold$3/manifest.json: $(call paper_pre,$1)/manifest.json $(call paper_preset_dep,$1) paper-force | $(STAMP)
	$(PAPER_TRAIN) train --pre $(call paper_pre,$1) --model $2 --fold $3 --preset $(call paper_preset,$1) $(PAPER_DEVICE) --out $$(@D)
$(PAPER_DIR)/pred/$1/$2-fold$3/manifest.json: $(PAPER_DIR)/runs/$1/$2-fold$3/manifest.json $(call paper_bpr_dep,$1) paper-force | $(STAMP)
	$(LOCSEG) infer --run $(PAPER_DIR)/runs/$1/$2-fold$3 --data $(call paper_data,$1) $(call paper_bpr_opt,$1) --subset val --preset $(call paper_preset,$1) $(PAPER_DEVICE) --out $$(@D)
$(call paper_eval_rules,$1,$2-fold$3,$(PAPER_DIR)/pred/$1/$2-fold$3)
$(PAPER_DIR)/shift/$1/$2-fold$3/manifest.json: $(PAPER_DIR)/runs/$1/$2-fold$3/manifest.json $(call paper_pre,$1)/manifest.json paper-force | $(STAMP)
	$(LOCSEG) shift-eval --run $(PAPER_DIR)/runs/$1/$2-fold$3 --pre $(call paper_pre,$1) --preset $(call paper_preset,$1) $(PAPER_DEVICE) --out $$(@D)
endef

# $(call paper_atlas_rules,SETUP,FOLD): the fold's atlas, its dilations chosen on the baseline's predictions
define paper_atlas_rules
PAPER_MANIFESTS += $(PAPER_DIR)/atlas/$1/fold$2/manifest.json
$(PAPER_DIR)/atlas/$1/fold$2/manifest.json: $(call paper_pre,$1)/manifest.json $(PAPER_DIR)/pred/$1/baseline-fold$2/manifest.json $(call paper_preset_dep,$1) paper-force | $(STAMP)
	$(LOCSEG) atlas --pre $(call paper_pre,$1) --pred $(PAPER_DIR)/pred/$1/baseline-fold$2 --fold $2 --preset $(call paper_preset,$1) --out $$(@D)
endef

# $(call paper_post_rules,SETUP,FOLD,METHOD): the baseline's predictions post-processed, then evaluated
define paper_post_rules
PAPER_MANIFESTS += $(PAPER_DIR)/post/$1/baseline-fold$2-$3/manifest.json
$(PAPER_DIR)/post/$1/baseline-fold$2-$3/manifest.json: $(PAPER_DIR)/pred/$1/baseline-fold$2/manifest.json $(if $(filter atlas,$3),$(PAPER_DIR)/atlas/$1/fold$2/manifest.json) $(call paper_preset_dep,$1) paper-force | $(STAMP)
	$(LOCSEG) postprocess --pred $(PAPER_DIR)/pred/$1/baseline-fold$2 --method $3 $(if $(filter atlas,$3),--atlas $(PAPER_DIR)/atlas/$1/fold$2) --preset $(call paper_preset,$1) --out $$(@D)
$(call paper_eval_rules,$1,baseline-fold$2-$3,$(PAPER_DIR)/post/$1/baseline-fold$2-$3)
endef

PAPER_SETUPS := $(sort $(TABLE1_SETUPS) $(TABLE2_SETUPS) $(FIG_SETUPS) $(POSTPROCESS_SETUP))
PAPER_DATASETS := $(sort $(foreach s,$(PAPER_SETUPS),$(call paper_ds,$s)))
PAPER_PRES := $(sort $(foreach s,$(PAPER_SETUPS),$(notdir $(call paper_pre,$s))))
PAPER_MANIFESTS :=
$(foreach d,$(filter $(PAPER_BPR_DATASETS),$(PAPER_DATASETS)),$(eval $(call paper_bpr_rules,$d)))
$(foreach p,$(PAPER_PRES),$(eval $(call paper_pre_rules,$p)))
$(foreach s,$(PAPER_SETUPS),$(foreach m,$(PAPER_MODELS),$(foreach k,$(FOLDS),$(eval $(call paper_model_rules,$s,$m,$k)))))
$(foreach k,$(FOLDS),$(eval $(call paper_atlas_rules,$(POSTPROCESS_SETUP),$k)))
$(foreach k,$(FOLDS),$(foreach m,$(POSTPROCESS_METHODS),$(eval $(call paper_post_rules,$(POSTPROCESS_SETUP),$k,$m))))

# An interrupted training keeps its folder (its manifest says where to resume): never delete it.
.PRECIOUS: $(PAPER_MANIFESTS)

# $(call paper_outputs,SETUPS,NAMES,STAGE[,SUFFIX]): the manifests of STAGE/<setup>/<name>-fold<k><suffix>, every fold
paper_outputs = $(foreach s,$1,$(foreach n,$2,$(foreach k,$(FOLDS),$(PAPER_DIR)/$3/$s/$n-fold$k$4/manifest.json)))
paper_data_given = $(strip $(foreach d,$1,$(if $(call paper_data,$d),$d)))

.PHONY: $(PAPER_GOALS) paper-report paper-help paper-force
paper-force: ;

table1: $(call paper_outputs,$(TABLE1_SETUPS),$(PAPER_MODELS),eval)
	@echo "table1: evaluations under $(PAPER_DIR)/eval/; make paper-report writes the tables"
table2: $(call paper_outputs,$(TABLE2_SETUPS),baseline locbam,eval)
	@echo "table2: evaluations under $(PAPER_DIR)/eval/; make paper-report writes the tables"
fig2: $(call paper_outputs,$(FIG_SETUPS),$(PAPER_MODELS),runs)
	@echo "fig2: validation curves in $(PAPER_DIR)/runs/*/*/metrics.jsonl; make paper-report draws them"
postprocess-table: $(call paper_outputs,$(POSTPROCESS_SETUP),$(PAPER_MODELS),eval) \
                   $(foreach m,$(POSTPROCESS_METHODS),$(call paper_outputs,$(POSTPROCESS_SETUP),baseline,eval,-$m))
	@echo "postprocess-table: evaluations under $(PAPER_DIR)/eval/$(POSTPROCESS_SETUP)/; make paper-report writes the table"
fig3: postprocess-table
fig4: $(call paper_outputs,$(FIG_SETUPS),coordconv locbam,shift)
	@echo "fig4: Dice per shift in $(PAPER_DIR)/shift/*/*/; make paper-report draws them"
paper-pre: $(foreach s,$(PAPER_SETUPS),$(if $(call paper_data,$(call paper_ds,$s)),$(call paper_pre,$s)/manifest.json))

paper_report = $(LOCSEG) report --runs $(PAPER_DIR)/runs --evals $(PAPER_DIR)/eval $1 --pres $(PAPER_DIR)/pre \
	--preset $(call paper_preset,common) --out $(PAPER_DIR)/report
paper: table1 table2 fig2 fig3 fig4 postprocess-table $(call paper_preset_dep,common) | $(STAMP)
	$(call paper_report,--shifts $(PAPER_DIR)/shift)
	@echo "report: $(PAPER_DIR)/report/report.md ($(PAPER_DIR)/report/report.html)"
paper-report: $(call paper_preset_dep,common) | $(STAMP)
	$(call paper_report,$(if $(wildcard $(PAPER_DIR)/shift),--shifts $(PAPER_DIR)/shift))
	@echo "report: $(PAPER_DIR)/report/report.md ($(PAPER_DIR)/report/report.html)"

paper-help:
	@echo "make table1 DATA_BTCV=DIR DATA_AMOS=DIR DATA_KITS=DIR BPR_MODEL=DIR   Table 1: baseline/CoordConv/LocBAM, 3 datasets"
	@echo "     (BPREG_AMOS=DIR / BPREG_KITS=DIR: bpreg's JSON files instead of BPR_MODEL's scores)"
	@echo "make table2 DATA_BTCV=DIR   Table 2: BTCV spacing x patch setups, baseline vs LocBAM, PtVC"
	@echo "make fig2 | fig3 | fig4 | postprocess-table DATA_BTCV=DIR   training curves, class-wise gains, shifts, LCF/atlas"
	@echo "make paper ...   everything above, then locseg report -> $(PAPER_DIR)/report"
	@echo "make paper-pre ...   only the preprocessing (before several makes share a machine)"
	@echo "variables: PAPER_OUT=$(PAPER_OUT) FOLDS='$(FOLDS)' NPROC=$(NPROC) (GPUs per training, torchrun)"
	@echo "           DEVICE=cuda:N EXTRA_PRESET=NAME_OR_YAML (merged over every preset; experiments/paper-smoke)"
	@echo "docs/paper-targets.md has the details"

# Checked before anything runs: the data and BPR source every requested target needs, as one line.
paper_goals := $(filter $(PAPER_GOALS),$(MAKECMDGOALS))
paper_needs_table1 = $(TABLE1_SETUPS)
paper_needs_table2 = $(TABLE2_SETUPS)
paper_needs_fig2 = $(FIG_SETUPS)
paper_needs_fig4 = $(FIG_SETUPS)
paper_needs_fig3 = $(POSTPROCESS_SETUP)
paper_needs_postprocess-table = $(POSTPROCESS_SETUP)
paper_needs_paper = $(PAPER_SETUPS)
paper_needs_paper-pre = $(call paper_data_given,$(PAPER_DATASETS))
paper_needed := $(sort $(foreach g,$(paper_goals),$(foreach s,$(paper_needs_$g),$(call paper_ds,$s))))
paper_check_data = $(if $(call paper_data,$1),$(if $(call paper_isdir,$(call paper_data,$1)),,$(error \
	$(paper_goals): $(paper_datavar_$1)=$(call paper_data,$1) is not a folder; give $(paper_datavar_$1)=<$(paper_datahelp_$1)>)),$(error \
	$(paper_goals): $(paper_datavar_$1) is not set; give $(paper_datavar_$1)=<$(paper_datahelp_$1)>))
paper_check_bpr = $(if $(call paper_isdir,$($(paper_bpregvar_$1)))$(call paper_isdir,$(BPR_MODEL)),,$(error \
	$(paper_goals): $1's axial location is its Body Part Regression score; give BPR_MODEL=<a locseg bpr train output> \
	or $(paper_bpregvar_$1)=<a folder of bpreg's JSON files> (not found: '$(strip $(BPR_MODEL)$($(paper_bpregvar_$1)))')))
ifneq ($(paper_goals),)
$(if $(filter paper-pre,$(paper_goals)),$(if $(paper_needs_paper-pre),,$(error paper-pre: give at least one of DATA_BTCV, DATA_AMOS, DATA_KITS)))
$(if $(filter-out 0,$(shell expr '$(NPROC)' : '[1-9][0-9]*$$')),,$(error NPROC must be a positive number of processes, got '$(NPROC)'))
$(foreach d,$(paper_needed),$(call paper_check_data,$d))
$(foreach d,$(filter $(PAPER_BPR_DATASETS),$(paper_needed)),$(call paper_check_bpr,$d))
endif
