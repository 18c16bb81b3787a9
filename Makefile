# alledge: the two commands are `make demo` and `make test`.
# Each creates .venv when missing and installs the project into it (again only when
# pyproject.toml changes). Needs only Python 3.11 (or another python3) and pip.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := train,device,serve,dev

DEMO   := work/demo
RUNS   := runs
DATA   ?= ../shared/data/all-leukemia
PYTEST_ARGS ?=

.PHONY: help venv venv-tflite test test-tflite test-litert1 pi-wheels test-pi default-bundle grouped-recipe stress stress-baseline demo demo-data demo-check demo-split demo-train demo-report demo-classify \
        adopt-default bench-original reproduce reproduce-paper reproduce-grouped cnn-500 cnn-augmented-fixed cnn-augmented cnn-augmented-turned cnn-augmented-ema cnn-augmented-smoothed cnn-augmented-distilled cnn-augmented-cosine cnn-augmented-self-taught stress-cnn stress-previous candidate-no-white-point recipe-bundles matrix table3-cnn bench clean-demo eval-default measure measure-tflite check-claims

help:
	@echo "make test                 run the tests (creates .venv when missing)"
	@echo "make test-tflite          the device tests again on tflite-runtime + numpy<2 (.venv-tflite)"
	@echo "make test-litert1         the device tests again on the oldest LiteRT allowed (.venv-litert1)"
	@echo "make pi-wheels            the device part resolves to aarch64 wheels (Raspberry Pi OS)"
	@echo "make test-pi              the device part on emulated arm64 Debian; results/pi/"
	@echo "make demo                 synthetic set -> check -> split -> train -> convert -> report -> classify, in $(DEMO)/"
	@echo "make reproduce DATA=DIR   the whole study on the real dataset, results into results/ (an hour)"
	@echo "make bench                the default bundle's latency per stage; bench-original: the first default's"
	@echo "make default-bundle       the default's recipe (25 min); adopt-default ships the run"
	@echo "make check-claims         every README figure re-derived from results/"

# --- the virtual environment -------------------------------------------------------------

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	touch $@

venv: $(STAMP)

# The second environment, where the device runs on the interpreter fallback: tflite-runtime
# (the older Pi package; wheels for Python <= 3.11, needs numpy<2) with the core packages and
# pytest, and alledge without its dependencies: no TensorFlow, no ai-edge-litert.
TFLITE_PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
TFLITE_VENV   := .venv-tflite
TFLITE_STAMP  := $(TFLITE_VENV)/.installed
TFLITE_REQS   := 'tflite-runtime==2.14.0' 'numpy>=1.23,<2' 'opencv-python-headless>=4.8,<4.11' \
                 'click>=8.1' 'pytest>=8' 'simplejpeg>=1.7' 'cryptography>=41'
TEST_SET      := work/test-set

$(TFLITE_VENV)/bin/python:
	@test -n "$(TFLITE_PYTHON)" || { echo "error: no python3.11 or python3 on PATH"; exit 2; }
	$(TFLITE_PYTHON) -m venv $(TFLITE_VENV)

$(TFLITE_STAMP): pyproject.toml Makefile | $(TFLITE_VENV)/bin/python
	$(TFLITE_VENV)/bin/python -m pip install $(TFLITE_REQS) || { \
	    echo "error: cannot install tflite-runtime into $(TFLITE_VENV) ($$($(TFLITE_VENV)/bin/python -V), $$(uname -m)): the interpreter fallback cannot be tested"; exit 1; }
	$(TFLITE_VENV)/bin/python -m pip install --no-deps -e .
	touch $@

venv-tflite: $(TFLITE_STAMP)

# --- tests -------------------------------------------------------------------------------

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
test: $(STAMP)
	@rc=0; $(BIN)/pytest -q $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; \
	exit $$rc

# The device tests on tflite-runtime: the main environment (TensorFlow) writes the test
# bundles, images and its own classify outputs into $(TEST_SET); .venv-tflite runs the real
# CLI on them and must agree (tests/test_device_tflite_runtime.py).
test-tflite: $(STAMP) $(TFLITE_STAMP)
	@echo "writing the test set into $(TEST_SET) (log: $(TEST_SET).log)"
	@mkdir -p $(dir $(TEST_SET))
	@$(BIN)/python tests/bundles.py $(TEST_SET) > $(TEST_SET).log 2>&1 || { \
	    tail -n 30 $(TEST_SET).log; echo "error: cannot write the test set"; exit 1; }
	@rc=0; ALLEDGE_TEST_BUNDLES=$(abspath $(TEST_SET)) ALLEDGE_EXPECT_RUNTIME=tflite_runtime \
	    $(TFLITE_VENV)/bin/python -m pytest -q -p no:cacheprovider \
	    tests/test_device_tflite_runtime.py || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; \
	exit $$rc

# --- the Raspberry Pi: its wheels, its oldest runtime, its OS and CPU (emulated) ------------

# The device tests on the oldest LiteRT the `device` extra allows (what a Pi gets is 1.4, the
# newest with aarch64 wheels; x86 gets 2.x): .venv-litert1 holds alledge[device] with that
# LiteRT pinned, and runs the real CLI on the main environment's test set.
LITERT_OLDEST := 1.2.0
LITERT1_VENV  := .venv-litert1
LITERT1_STAMP := $(LITERT1_VENV)/.installed

$(LITERT1_STAMP): pyproject.toml Makefile
	@test -x $(LITERT1_VENV)/bin/python || $(TFLITE_PYTHON) -m venv $(LITERT1_VENV)
	$(LITERT1_VENV)/bin/python -m pip install 'ai-edge-litert==$(LITERT_OLDEST)' -e '.[device]' 'pytest>=8'
	touch $@

# The test set is written again only when older than the code that writes it (CI runs this
# right after test-tflite, which has just written it: minutes of TensorFlow saved).
$(TEST_SET)/reference.json: tests/bundles.py pyproject.toml $(wildcard device/*.py convert/*.py train/*.py) | $(STAMP)
	@echo "writing the test set into $(TEST_SET) (log: $(TEST_SET).log)"
	@mkdir -p $(dir $(TEST_SET))
	@$(BIN)/python tests/bundles.py $(TEST_SET) > $(TEST_SET).log 2>&1 || { \
	    tail -n 30 $(TEST_SET).log; echo "error: cannot write the test set"; exit 1; }

test-litert1: $(STAMP) $(LITERT1_STAMP) $(TEST_SET)/reference.json
	@rc=0; ALLEDGE_TEST_BUNDLES=$(abspath $(TEST_SET)) ALLEDGE_EXPECT_RUNTIME=ai_edge_litert \
	    $(LITERT1_VENV)/bin/python -m pytest -q -p no:cacheprovider \
	    tests/test_device_tflite_runtime.py || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; \
	exit $$rc

# The core + device requirements as aarch64 CPython 3.11/3.12 wheels, interpreter included
# (seconds; CI runs it).
pi-wheels: $(STAMP)
	bash tests/pi/resolve_wheels.sh $(BIN)/python

# A Debian bookworm arm64 userland under qemu-aarch64-static (cached in ~/.cache/alledge;
# apt as root the first time): alledge from HEAD installed from aarch64 wheels, info,
# classify --json on 60 paper-split test images, bench; the probabilities compared with this
# machine's. Writes results/pi/emulated-aarch64.json. Emulated timings are not a Pi's.
PI_ARGS ?=
test-pi: $(STAMP)
	$(BIN)/python tests/pi/emulated_run.py $(PI_ARGS)

# --- the demo: each step a target, so later steps (train, convert, report, classify)
# --- can be appended as demo-train: demo-split, and so on, and `demo` pointed at the last.

demo: demo-classify
	@echo "demo done: see $(DEMO)/ (report: $(DEMO)/report/report.md)"

demo-data: $(STAMP)
	rm -rf $(DEMO)/data
	$(BIN)/alledge data synth $(DEMO)/data --per-class 150 --seed 0

demo-check: demo-data
	$(BIN)/alledge data check $(DEMO)/data | tee $(DEMO)/data-check.txt

demo-split: demo-check
	$(BIN)/alledge data split $(DEMO)/data --out $(DEMO)/split.csv

# A short CNN run (at most 40 epochs) and a Lite0 + SVM on the synthetic set: minutes, not hours.
demo-train: demo-split
	$(BIN)/alledge train table3 --data $(DEMO)/data --split $(DEMO)/split.csv --out $(DEMO)/models \
	    --models efficientnet-lite0,improved-cnn,colour-baseline --cnn-epochs 40 --cnn-patience 12

demo-report: demo-train
	$(BIN)/alledge report --data $(DEMO)/data --split $(DEMO)/split.csv --models $(DEMO)/models \
	    --out $(DEMO)/report --latency-images 20

demo-classify: demo-report
	$(BIN)/alledge classify $(DEMO)/data/Pro/synth-Pro-000.jpg $(DEMO)/data/Benign/synth-Benign-000.jpg \
	    --bundle $(DEMO)/report/bundles/improved-cnn-int8 --db $(DEMO)/results.db
	$(BIN)/alledge history --db $(DEMO)/results.db --limit 2

# Device latency on this machine: the default bundle and the Improved CNN int8 bundle, on a
# real dataset image, at 1 thread and at all threads; JSON into results/bench/, each file named
# for the bundle it timed (the manifest's name), so a new default never overwrites the record
# of an earlier one (default-*.json: the previous default, efficientnet-lite0-svm-int8).
BENCH_IMAGE ?= $(DATA)/Original/Pro/WBC-Malignant-Pro-011.jpg
BENCH_CNN   ?= $(RUNS)/report-paper/bundles/improved-cnn-int8
bench: $(STAMP)
	mkdir -p results/bench
	name=$$($(BIN)/python -c "import json; print(json.load(open('device/bundles/default/manifest.json'))['name'])") && \
	for t in 1 $$(nproc); do \
	  $(BIN)/alledge bench --runs 200 --threads $$t --image $(BENCH_IMAGE) --json > results/bench/$$name-$${t}t.json || exit 1; \
	done && \
	$(BIN)/alledge bench --runs 200 --threads 1 --json > results/bench/$$name-1t-640x480.json && \
	if [ -x .venv-tflite/bin/alledge ]; then for t in 1 $$(nproc); do \
	  .venv-tflite/bin/alledge bench --runs 200 --threads $$t --image $(BENCH_IMAGE) --json > results/bench/$$name-$${t}t-tflite-runtime.json || exit 1; \
	done; else echo "no .venv-tflite (make venv-tflite): the design card's older runtime not timed"; fi
	@# The report's Improved CNN int8 bundle, when `make reproduce-paper` has made it.
	if [ -d $(BENCH_CNN) ]; then for t in 1 $$(nproc); do \
	  $(BIN)/alledge bench --runs 200 --threads $$t --image $(BENCH_IMAGE) --bundle $(BENCH_CNN) --json > results/bench/improved-cnn-int8-$${t}t.json || exit 1; \
	done; else echo "no $(BENCH_CNN) (make reproduce-paper makes it): the Improved CNN not timed"; fi

# The first shipped default (efficientnet-lite0-svm-int8 at $(ORIGINAL)) timed by its own code
# on the same image, beside `make bench`: the machine's speed today against the day the
# 5 ms goal was set (results/bench/original-default-1t.json).
ORIGINAL      := c164cf3
ORIGINAL_TREE := $(RUNS)/original-default
bench-original: $(STAMP)
	rm -rf $(ORIGINAL_TREE) && mkdir -p $(ORIGINAL_TREE)/alledge
	git archive $(ORIGINAL) device train convert | tar -x -C $(ORIGINAL_TREE)/alledge
	touch $(ORIGINAL_TREE)/alledge/__init__.py
	cd $(ORIGINAL_TREE) && PYTHONPATH=$(abspath $(ORIGINAL_TREE)) $(abspath $(BIN))/python -c \
	    "from alledge.device.cli import main; main()" bench --runs 200 --threads 1 \
	    --image $(abspath $(BENCH_IMAGE)) --json > raw-1t.json
	mkdir -p results/bench
	$(BIN)/python -m alledge.convert.stamp $(ORIGINAL_TREE)/raw-1t.json results/bench/original-default-1t.json \
	    $(ORIGINAL) "alledge bench --runs 200 --threads 1 --image $(BENCH_IMAGE) --json (the code of $(ORIGINAL), make bench-original)"

clean-demo:
	rm -rf $(DEMO)

# --- measurements behind the figures and the tests' floors ---------------------------------

# The shipped default bundle on the paper split's test images, through the device code path:
# results/default/paper-test.json (tests/test_default_bundle_real.py holds the bundle to it,
# the README quotes it). Re-run whenever device/bundles/default changes.
eval-default: $(STAMP)
	$(BIN)/alledge evaluate --data $(DATA) --split results/splits/paper.csv --subset test \
	    --out results/default/paper-test.json

# The tests whose floors are measurements re-measure them: results/measurements/<module>.json.
MEASURE_TESTS := tests/test_data_synth.py::test_learnable_but_not_trivial \
    tests/test_train.py::test_colour_baseline_reaches_well_above_chance_on_the_synthetic_set \
    tests/test_convert.py::test_int8_predictions_agree_with_float32 \
    tests/test_convert.py::test_float32_bundle_outputs_equal_keras_within_1e4 \
    tests/test_lite_port.py tests/test_convert_real.py tests/test_scale_real.py \
    tests/test_default_bundle_real.py::test_tensorflow_lite_the_last_fallback_runs_the_shipped_bundle
measure: $(STAMP)
	ALLEDGE_RECORD_MEASUREMENTS=1 ALLEDGE_DATA=$(abspath $(DATA)) $(BIN)/pytest -q $(MEASURE_TESTS)

# The shipped bundle under tflite-runtime vs ai-edge-litert on real images: the measurement
# behind that test's tolerance (results/measurements/test_device_tflite_runtime.json).
measure-tflite: $(STAMP) $(TFLITE_STAMP)
	@mkdir -p $(dir $(TEST_SET))
	ALLEDGE_DATA=$(abspath $(DATA)) $(BIN)/python tests/bundles.py $(TEST_SET) > $(TEST_SET).log 2>&1
	ALLEDGE_RECORD_MEASUREMENTS=1 ALLEDGE_TEST_BUNDLES=$(abspath $(TEST_SET)) \
	    ALLEDGE_EXPECT_RUNTIME=tflite_runtime $(TFLITE_VENV)/bin/python -m pytest -q \
	    -p no:cacheprovider tests/test_device_tflite_runtime.py -k shipped_bundle

# Every README figure that results/ holds, re-derived from the files (tests/test_claims.py).
check-claims: $(STAMP)
	$(BIN)/pytest -q tests/test_claims.py tests/test_provenance.py

# --- reproducing the committed results on the real dataset ---------------------------------
# Hours on a 2-core CPU: the Improved CNN trains twice (both splits), Lite0-2 extract features
# once (the cache serves the second split), then every model is converted at four levels.


# The default bundle's recipe, on its own (about 25 minutes here, not part of `reproduce`):
# EfficientNet-Lite0 fine-tuned 12 epochs on augmented captures, exposures up to x1.8
# (--max-gain 1.8: its quality gate then lets ordinary brightening through), int8 with its
# gate, its training scale; then its figures and robustness. CPU training is not bit-for-bit
# deterministic across machines: compare the figures before copying the bundle into
# device/bundles/default (then `make eval-default stress`).
# $(1): split (its model dir FT_MODEL, its records FT_RECORD_$(1), its outputs FT_OUT_$(1))
define FT_RECIPE
	$(BIN)/alledge train finetune --data $(DATA) --split results/splits/$(1).csv --out $(call FT_MODEL,$(1)) --epochs 12 --max-gain 1.8
	mkdir -p $(FT_RECORD_$(1))
	cp $(call FT_MODEL,$(1))/metrics.json $(call FT_MODEL,$(1))/model.json $(FT_RECORD_$(1))/
	$(call FT_BUNDLES,$(1))
endef
# The recipe's bundle steps on a split's trained model: int8, the white point for overexposed
# fields only (device/preprocess.py: the models learnt from unnormalised fields and read
# ordinary ones best as they are), gates, scale, figures, robustness.
FT_WHITE_POINT := --white-point-overexposed
define FT_BUNDLES
	$(call INT8_BUNDLE,$(1),$(call FT_MODEL,$(1)),$(word 1,$(FT_OUT_$(1))),$(FT_WHITE_POINT),$(word 2,$(FT_OUT_$(1))),$(word 3,$(FT_OUT_$(1))))
endef
# A trained model -> its int8 bundle with its gates and training scale, its figures on the
# test part, its robustness. $(1): split, $(2): model dir, $(3): bundle dir, $(4): convert's
# other flags, $(5): its gated test figures, $(6): its stress folder
define INT8_BUNDLE
	$(BIN)/alledge convert $(2) --out $(3) --quant int8 --data $(DATA) $(4)
	$(BIN)/alledge scale $(3) --data $(DATA) --split results/splits/$(1).csv
	mkdir -p $(dir $(5))
	$(BIN)/alledge evaluate --bundle $(3) --data $(DATA) --split results/splits/$(1).csv --out $(5)
	$(BIN)/alledge stress --bundle $(3) --data $(DATA) --split results/splits/$(1).csv \
	    --bccd $(BCCD) --out $(6)
endef
# A run's records stay beside it ($(FT_RECORD)) until `make adopt-default` ships it: a re-run
# never overwrites the shipped model's record (results/finetune/model/).
FT_BUNDLE := $(RUNS)/paper/bundle-ft12-gain18-int8
FT_RECORD := $(RUNS)/paper/bundle-ft12-gain18-record
FT_MODEL = $(RUNS)/$(1)/efficientnet-lite0-finetuned-12-gain18
# each split's records, and its bundle, gated test figures and stress folder
FT_RECORD_paper := $(FT_RECORD)
FT_OUT_paper := $(FT_BUNDLE) $(RUNS)/paper/bundle-ft12-gain18-int8-test.json $(RUNS)/paper/stress-ft12-gain18
FT_RECORD_grouped := results/grouped/finetune-model
FT_OUT_grouped := $(RUNS)/grouped/bundle-ft12-gain18-int8 results/grouped/finetuned-int8-gated-test.json results/stress/grouped-finetuned
default-bundle: $(STAMP)
	$(call FT_RECIPE,paper)
	@echo "bundle: $(FT_BUNDLE); compare its figures, then: make adopt-default"

# Ship the bundle `make default-bundle` made: it replaces device/bundles/default, its records
# results/finetune/model/; then re-measure what the README quotes of the default.
# A bundle `make recipe-bundles` rebuilt from the model already trained has no run record
# beside it: the model's own directory holds the same files.
ADOPT_RECORD = $(if $(wildcard $(FT_RECORD)/model.json),$(FT_RECORD),$(call FT_MODEL,paper))
adopt-default:
	@test -f $(FT_BUNDLE)/manifest.json && test -f $(ADOPT_RECORD)/model.json || { \
	    echo "error: no $(FT_BUNDLE) with its model's record (make default-bundle first)"; exit 2; }
	rm -rf device/bundles/default && mkdir -p device/bundles/default results/finetune/model
	cp $(FT_BUNDLE)/* device/bundles/default/
	cp $(ADOPT_RECORD)/model.json $(ADOPT_RECORD)/metrics.json results/finetune/model/
	@echo "shipped; now: make eval-default stress bench (and test-pi, captures: README)"

# The same recipe on the grouped split (no test image has a copy in its training part): its
# figures in results/grouped/ and its robustness in results/stress/grouped-finetuned/.
grouped-recipe: $(STAMP)
	$(call FT_RECIPE,grouped)

# The recipe's bundle steps alone, on the models `make default-bundle grouped-recipe` trained
# (about 20 minutes): after a change to them, without training again.
recipe-bundles: $(STAMP)
	$(call FT_BUNDLES,paper)
	$(call FT_BUNDLES,grouped)

# The default's models (both splits, as `make default-bundle grouped-recipe` trained them)
# converted, gated, scaled, evaluated and stressed as the recipe does but without the white
# point (about 25 minutes): results/candidate-no-white-point/ and
# results/stress/candidate-no-white-point{,-grouped}/.
NOWP := results/candidate-no-white-point
# $(1): split, $(2): its stress folder's suffix
define NOWP_BUNDLE
	$(call INT8_BUNDLE,$(1),$(call FT_MODEL,$(1)),$(RUNS)/$(1)/bundle-ft12-gain18-nowp-int8,,$(NOWP)/$(1)-int8-gated-test.json,results/stress/candidate-no-white-point$(2))
endef
candidate-no-white-point: $(STAMP)
	$(call NOWP_BUNDLE,paper,)
	$(call NOWP_BUNDLE,grouped,-grouped)


# The Improved CNN's two long runs (Table 3 rows of their own; not part of `reproduce`):
# each resumes where it was stopped (OUT/backup); `make table3-cnn` then shows them.
cnn-500: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-500 --epochs 500 --no-early-stopping

# The recipe of record for Table 3's `Improved CNN + augmentation` row (chosen before it had
# run, whatever it reads): a fixed schedule, so no epoch is chosen on the 228 images the
# others hold out for validation (their best epoch is often a lucky one), and those images
# train too. 150 epochs, the learning rate along a cosine from 1e-3 to 1e-5, the last epoch
# kept (about 90 minutes here; resumes from OUT/backup).
cnn-augmented-fixed: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-fixed --epochs 150 --no-early-stopping \
	    --augment --white-point --cosine --no-validation

# The first augmented recipe: the learning rate halved on plateaus, the best validation epoch.
cnn-augmented: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented --epochs 200 --patience 40 --augment --white-point

# A candidate for that row: the clean half of each epoch turned or flipped too (about 80
# minutes; resumes from OUT/backup). Its own row of table3-cnn once finished.
cnn-augmented-turned: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-turned --epochs 200 --patience 40 --augment \
	    --white-point --turn-clean

# A candidate too: the weights validated and kept are a moving average of the trained ones
# (about 80 minutes; resumes from OUT/backup).
cnn-augmented-ema: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-ema --epochs 200 --patience 40 --augment \
	    --white-point --ema

# A candidate too: the plain augmented recipe on smoothed labels (0.1), a regulariser that
# asks no teacher (about 80-100 minutes; resumes from OUT/backup).
cnn-augmented-smoothed: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-smoothed --epochs 200 --patience 40 --augment \
	    --white-point --label-smoothing 0.1

# And taught: the same augmented recipe, its targets half the default's fine-tuned Lite0
# (trained on the same training part) on the very same captures; the teacher doubles an
# epoch, so at most 120 epochs, patience 30 (about 100 minutes here).
cnn-augmented-distilled: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-distilled --epochs 120 --patience 30 --augment \
	    --white-point --teacher $(RUNS)/paper/efficientnet-lite0-finetuned-12-gain18

# A candidate without a teacher: the plain augmented recipe for a fixed 150 epochs, the
# learning rate falling along a cosine from 1e-3 to 1e-5 rather than halving on plateaus of a
# noisy validation loss (about 80 minutes; resumes from OUT/backup).
cnn-augmented-cosine: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-cosine --epochs 150 --no-early-stopping \
	    --augment --white-point --cosine

# And taught by itself: the same recipe, the teacher the plain augmented Improved CNN above
# (its best epoch, trained on the same training part) rather than the larger Lite0: whether
# distillation's gain needs a larger teacher (born-again networks, Furlanello et al. 2018).
# The small teacher makes an epoch about a quarter longer: at most about an hour (29 minutes
# here, stopped on its patience at epoch 43); resumes from OUT/backup.
cnn-augmented-self-taught: $(STAMP)
	$(BIN)/alledge train cnn --data $(DATA) --split results/splits/paper.csv \
	    --out $(RUNS)/paper/improved-cnn-augmented-self-taught --epochs 120 --patience 30 \
	    --augment --white-point --teacher $(RUNS)/paper/improved-cnn-augmented

# Their Table 3 rows, beside the main table: results/paper/table3-cnn.* and their model files.
CNN_RUNS := improved-cnn-500 improved-cnn-augmented-fixed improved-cnn-augmented improved-cnn-augmented-turned improved-cnn-augmented-ema \
    improved-cnn-augmented-smoothed improved-cnn-augmented-distilled improved-cnn-augmented-cosine \
    improved-cnn-augmented-self-taught
table3-cnn: $(STAMP)
	$(BIN)/alledge train table3 --data $(DATA) --split results/splits/paper.csv --out $(RUNS)/paper \
	    --models $(shell echo $(CNN_RUNS) | tr ' ' ',')
	for ext in csv md json; do cp $(RUNS)/paper/table3.$$ext results/paper/table3-cnn.$$ext; done
	for m in $(CNN_RUNS); do \
	  if [ -f $(RUNS)/paper/$$m/metrics.json ]; then mkdir -p results/paper/models/$$m; \
	    for f in metrics.json model.json history.csv train.log; do \
	      if [ -f $(RUNS)/paper/$$m/$$f ]; then cp $(RUNS)/paper/$$m/$$f results/paper/models/$$m/; fi; done; fi; done

# Robustness and refusal of the default bundle: every capture change at two severities, BCCD,
# Segmented/, synthetic smears (about 8 minutes here).
BCCD ?= ../shared/data/bccd/JPEGImages
stress: $(STAMP)
	$(BIN)/alledge stress --data $(DATA) --split results/splits/paper.csv --bccd $(BCCD) \
	    --out results/stress/paper

# The previous default (the same recipe with the augmentation's first exposure draw, uniform
# x0.75-1.3), taken from git as it was shipped, on the same device code as the default, the
# single-field zoom retry included; results/stress/previous-finetuned/ is it before.
PREVIOUS_DEFAULT := $(RUNS)/paper/bundle-previous-default
stress-previous: $(STAMP)
	mkdir -p $(PREVIOUS_DEFAULT)
	for f in manifest.json model.tflite ood.npz; do \
	  git show 36a8cd4:device/bundles/default/$$f > $(PREVIOUS_DEFAULT)/$$f || exit 1; done
	$(BIN)/alledge stress --bundle $(PREVIOUS_DEFAULT) --data $(DATA) \
	    --split results/splits/paper.csv --bccd $(BCCD) --out results/stress/previous-finetuned-retry

# The Improved CNN + augmentation (make cnn-augmented) as an int8 bundle with its gates,
# under the same changes: its column of the robustness matrix (a few minutes).
stress-cnn: $(STAMP)
	$(BIN)/alledge convert $(RUNS)/paper/improved-cnn-augmented --out $(RUNS)/paper/bundle-cnn-augmented-int8 \
	    --quant int8 --data $(DATA) --split results/splits/paper.csv
	$(BIN)/alledge scale $(RUNS)/paper/bundle-cnn-augmented-int8 --data $(DATA) --split results/splits/paper.csv
	$(BIN)/alledge stress --bundle $(RUNS)/paper/bundle-cnn-augmented-int8 --data $(DATA) \
	    --split results/splits/paper.csv --bccd $(BCCD) --out results/stress/improved-cnn-augmented

# Every model's column side by side (nothing re-measured): results/stress/matrix/ and, for
# the duplicate-grouped split, results/stress/matrix-grouped/
matrix:
	$(BIN)/alledge matrix results/stress/paper results/stress/previous-finetuned-retry results/stress/previous-default \
	    results/stress/improved-cnn-augmented results/stress/colour-baseline/paper --out results/stress/matrix
	$(BIN)/alledge matrix results/stress/grouped-finetuned results/stress/grouped-previous-finetuned \
	    results/stress/colour-baseline/grouped --out results/stress/matrix-grouped

# The colour baseline under the same changes, on both splits (a minute; it has no bundle).
stress-baseline: $(STAMP)
	for s in paper grouped; do \
	    $(BIN)/alledge train baseline --data $(DATA) --split results/splits/$$s.csv --out $(RUNS)/$$s/colour-baseline && \
	    $(BIN)/alledge stress --baseline $(RUNS)/$$s/colour-baseline --data $(DATA) \
	        --split results/splits/$$s.csv --out results/stress/colour-baseline/$$s || exit 1; \
	done

# `data check` exits 1 on the real set (it has duplicates): only 2 (unusable input) stops here.
# Each step appends "<step> <unix seconds>" to $(STEPS); results/reproduce-time.json gets the
# minutes (REPRODUCE_NOTE: what the run started from, e.g. a cold feature cache).
STEPS          := $(RUNS)/reproduce-steps
REPRODUCE_NOTE ?=
reproduce: $(STAMP)
	@mkdir -p $(RUNS) && echo "start $$(date +%s)" > $(STEPS)
	$(MAKE) reproduce-grouped
	$(BIN)/python -m alledge.convert.walltime $(STEPS) results/reproduce-time.json "$(REPRODUCE_NOTE)"
	@echo "reproduce done: results/"

reproduce-data: $(STAMP)
	@test -d "$(DATA)" || { echo "error: DATA=$(DATA) is not a folder (make reproduce DATA=path/to/all-leukemia)"; exit 2; }
	mkdir -p results/splits
	$(BIN)/alledge data check $(DATA) --json > results/data-check.json || [ $$? -eq 1 ]
	$(BIN)/alledge data split $(DATA) --out results/splits/paper.csv
	$(BIN)/alledge data split $(DATA) --out results/splits/grouped.csv --group-duplicates
	@echo "data $$(date +%s)" >> $(STEPS)

reproduce-paper: reproduce-data
	$(BIN)/alledge train table3 --data $(DATA) --split results/splits/paper.csv --out $(RUNS)/paper
	@echo "paper-table3 $$(date +%s)" >> $(STEPS)
	$(BIN)/alledge report --data $(DATA) --split results/splits/paper.csv --models $(RUNS)/paper \
	    --out $(RUNS)/report-paper
	$(BIN)/python -m alledge.convert.publish $(RUNS)/paper $(RUNS)/report-paper results/paper
	@echo "paper-report $$(date +%s)" >> $(STEPS)

reproduce-grouped: reproduce-paper
	$(BIN)/alledge train table3 --data $(DATA) --split results/splits/grouped.csv --out $(RUNS)/grouped
	@echo "grouped-table3 $$(date +%s)" >> $(STEPS)
	$(BIN)/alledge report --data $(DATA) --split results/splits/grouped.csv --models $(RUNS)/grouped \
	    --out $(RUNS)/report-grouped
	$(BIN)/python -m alledge.convert.publish $(RUNS)/grouped $(RUNS)/report-grouped results/grouped
	@echo "grouped-report $$(date +%s)" >> $(STEPS)
