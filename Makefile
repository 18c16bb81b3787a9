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
EXTRAS := train,device,dev

DEMO   := work/demo
DATA   ?= ../shared/data/all-leukemia
PYTEST_ARGS ?=

.PHONY: help venv test demo demo-data demo-check demo-split reproduce clean-demo

help:
	@echo "make test                 run the tests (creates .venv when missing)"
	@echo "make demo                 synthetic set -> data check -> split, in $(DEMO)/"
	@echo "make reproduce DATA=DIR   data check and both splits of the real dataset into results/"

# --- the virtual environment -------------------------------------------------------------

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	touch $@

venv: $(STAMP)

# --- tests -------------------------------------------------------------------------------

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
test: $(STAMP)
	@rc=0; $(BIN)/pytest -q $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; \
	exit $$rc

# --- the demo: each step a target, so later steps (train, convert, report, classify)
# --- can be appended as demo-train: demo-split, and so on, and `demo` pointed at the last.

demo: demo-split
	@echo "demo done: see $(DEMO)/"

demo-data: $(STAMP)
	rm -rf $(DEMO)/data
	$(BIN)/alledge data synth $(DEMO)/data --per-class 60 --seed 0

demo-check: demo-data
	$(BIN)/alledge data check $(DEMO)/data | tee $(DEMO)/data-check.txt

demo-split: demo-check
	$(BIN)/alledge data split $(DEMO)/data --out $(DEMO)/split.csv

clean-demo:
	rm -rf $(DEMO)

# --- reproducing the committed results on the real dataset ---------------------------------

# `data check` exits 1 on the real set (it has duplicates): only 2 (unusable input) stops here.
reproduce: $(STAMP)
	@test -d "$(DATA)" || { echo "error: DATA=$(DATA) is not a folder (make reproduce DATA=path/to/all-leukemia)"; exit 2; }
	mkdir -p results/splits
	$(BIN)/alledge data check $(DATA) --json > results/data-check.json || [ $$? -eq 1 ]
	$(BIN)/alledge data split $(DATA) --out results/splits/paper.csv
	$(BIN)/alledge data split $(DATA) --out results/splits/grouped.csv --group-duplicates
