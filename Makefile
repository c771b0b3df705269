# One entry point for people and CI. `make test` creates .venv on first use, installs cfcam with its
# notebook and test extras into it, and runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test demo lab bench clean strip evaluate ablation

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	$(BIN)/python -m pip install --quiet --no-deps "quantus==0.6.*"  # test cross-checks; see pyproject's test extra
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/cfcam explain testimgs -o output

# Jupyter refuses to run as root unless told to (containers, CI machines)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/00_index.ipynb

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps "grad-cam>=1.5" ttach
	$(BIN)/python benchmarks/bench_speed.py

# The comparison table committed under docs/evaluation/ (README: "Is the map right?"); EVAL_ARGS adds options,
# e.g. make evaluate EVAL_ARGS="--n 40 --subset 8" (run.json records what was used)
EVAL_ARGS ?=
evaluate: $(STAMP)
	$(BIN)/cfcam evaluate -o docs/evaluation $(EVAL_ARGS)

# CF-CAM with one component changed at a time, committed under docs/evaluation/ablation/
ablation: $(STAMP)
	$(BIN)/cfcam evaluate --ablation -o docs/evaluation/ablation $(EVAL_ARGS)

strip: $(STAMP)
	$(BIN)/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(VENV) output .pytest_cache
