# One entry point for people and CI. `make test` creates .venv on first use, installs cfcam with its
# notebook and test extras into it, and runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test test-fast lint test-pythons demo lab bench clean strip evaluate ablation

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	$(BIN)/python -m pip install --quiet --no-deps "quantus==0.6.*"  # test cross-checks; see pyproject's test extra
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# While you work: the suite without the notebooks, the browser and the slow tests (whole evaluations, the
# command line's signal tests), a few minutes on 2 cores. `make test` (what CI runs) is the whole suite.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not notebooks and not browser and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

# The suite in quick mode (no notebooks, browser or slow tests) on the oldest and newest supported Pythons,
# each in its own .venv-X.Y (first use downloads PyTorch for it: slow once). Not part of `make test`.
PYTHONS ?= 3.10 3.13
test-pythons:
	@for v in $(PYTHONS); do .ci/test-python $$v || exit 1; done

demo: $(STAMP)
	$(BIN)/cfcam explain testimgs -o output

# Jupyter refuses to run as root unless told to (containers, CI machines)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/00_index.ipynb

# make bench BENCH_ARGS="--device cuda" runs the end-to-end part on a GPU (see benchmarks/bench_speed.py)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps "grad-cam>=1.5" ttach
	$(BIN)/python benchmarks/bench_speed.py $(BENCH_ARGS)

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
	rm -rf $(VENV) $(VENV)-* output .pytest_cache
