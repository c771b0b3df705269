# One entry point for people and CI. `make test` creates .venv on first use, installs cfcam with its
# notebook and test extras into it, and runs the whole suite. `make lab` installs only what the course needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# the learner's install: cfcam with the notebooks extra only (no test tools), its own stamp
LAB_STAMP := $(VENV)/.lab-stamp

# The quick suite: what test-fast, test-pythons and test-lowest run
QUICK  := not notebooks and not browser and not slow

.PHONY: venv test test-fast lint test-pythons test-lowest demo lab bench clean strip evaluate ablation dist-check
.PHONY: assignments mark book explorer

# .ci/install is the one install recipe (make, test-pythons and test-lowest share it)
$(STAMP): pyproject.toml .ci/install
	.ci/install $(VENV) $(PYTHON)

venv: $(STAMP)

$(LAB_STAMP): pyproject.toml .ci/install
	CFCAM_EXTRAS=notebooks CFCAM_STAMP=.lab-stamp .ci/install $(VENV) $(PYTHON)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# While you work: the suite without the notebooks, the browser and the slow tests (whole evaluations, the
# command line's signal tests), a few minutes on 2 cores. `make test` (what CI runs) is the whole suite.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "$(QUICK)"

lint: $(STAMP)
	$(BIN)/ruff check .

# The suite in quick mode (no notebooks, browser or slow tests) on the oldest and newest supported Pythons,
# each in its own .venv-X.Y (first use downloads PyTorch for it: slow once). Not part of `make test`.
PYTHONS ?= 3.10 3.13
test-pythons:
	@for v in $(PYTHONS); do .ci/test-python $$v || exit 1; done

# The quick suite with every direct dependency at exactly its floor (pyproject.toml's `>=`), in .venv-lowest:
# proves the floors are ones that work. Run it when a floor changes and before a release (first use downloads
# the old releases, PyTorch's CUDA build among them: a few GB, once). Not part of `make test`.
# torch and torchvision must come from the same index (PyPI's torchvision links PyPI's CUDA torch and fails to
# load its operators with a +cpu torch): LOWEST_PIP_ARGS passes pip more options, e.g. a constraints file
# with `torch!=2.13.0+cpu` where a local +cpu wheel would otherwise be preferred.
LOWEST := $(VENV)-lowest
LOWEST_PIP_ARGS ?=
# (installs every time: with everything in place pip only checks, and a changed floor or option always counts)
test-lowest:
	@mkdir -p $(LOWEST)
	$(PYTHON) .ci/lowest-constraints > $(LOWEST)/constraints.txt
	.ci/install $(LOWEST) $(PYTHON) -c $(LOWEST)/constraints.txt $(LOWEST_PIP_ARGS)
	$(LOWEST)/bin/python -m pip list --format=freeze | grep -iE "^(torch|torchvision|numpy|scipy|grad-cam)=="
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider -m "$(QUICK)"

# The sdist and wheel build, and PyPI would render their metadata: twine check --strict (tools in .venv-dist)
dist-check:
	.ci/dist-check

demo: $(STAMP)
	$(BIN)/cfcam explain testimgs -o output

# Jupyter refuses to run as root unless told to (containers, CI machines)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

# The learner's path: cfcam with the notebooks extra (JupyterLab, ipywidgets), not the test tools
lab: $(LAB_STAMP)
	$(BIN)/python -m jupyter lab $(ALLOW_ROOT) notebooks/00_index.ipynb

# The course as a static website, offline: build/book/index.html. Executes the notebooks (two at a time, only
# those changed since the last build; explorers as stills), then renders them, the README and docs/ with Sphinx.
book: $(STAMP)
	$(BIN)/python book/build.py

# The classroom explorer: the CF-CAM dashboard with a model picker and an image upload, as a page without code
# (Voila), served to this machine only; it prints the URL to open. EXPLORER_PORT picks another port.
EXPLORER_PORT ?= 8866
explorer: $(STAMP)
	$(BIN)/python explorer/serve.py --port $(EXPLORER_PORT)

# make bench BENCH_ARGS="--device cuda" runs the end-to-end part on a GPU (see benchmarks/bench_speed.py)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_speed.py $(BENCH_ARGS)

# The comparison table committed under docs/evaluation/ (docs/evaluating.md); EVAL_ARGS adds options,
# e.g. make evaluate EVAL_ARGS="--n 40 --subset 8" (run.json records what was used)
EVAL_ARGS ?=
evaluate: $(STAMP)
	$(BIN)/cfcam evaluate -o docs/evaluation $(EVAL_ARGS)

# CF-CAM with one component changed at a time, committed under docs/evaluation/ablation/
ablation: $(STAMP)
	$(BIN)/cfcam evaluate --ablation -o docs/evaluation/ablation $(EVAL_ARGS)

# The student edition (nbgrader): build/student/, then both editions autograded (the instructor edition must
# score full marks, the unanswered student edition 0); scores in build/nbgrader/scores.json. docs/teaching.md.
# ASSIGNMENTS_ARGS="--no-grade" only writes the edition; "--only 02_channel_clustering" picks notebooks.
ASSIGNMENTS_ARGS ?=
assignments: $(STAMP)
	$(BIN)/python -m cfcam.teaching.assignments build $(ASSIGNMENTS_ARGS)

# After editing an exercise: rewrite the notebooks' nbgrader marks from the exercise registry (idempotent)
mark: $(STAMP)
	$(BIN)/python -m cfcam.teaching.assignments mark

strip: $(STAMP)
	$(BIN)/nbstripout notebooks/*.ipynb explorer/*.ipynb

clean:
	rm -rf $(VENV) $(VENV)-* output .pytest_cache dist build/book build/book-work
