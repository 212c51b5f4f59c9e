# refnn: every target installs what it needs into .venv on first use (python3 >= 3.11 only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := python -m pip install --quiet --disable-pip-version-check
# Exact versions for the dev environment and CI; pyproject's extras state ranges for users.
DEV_PINS    := hypothesis==6.170.15
OLDEST_PINS := numpy==1.26.4 hypothesis==6.170.0
# make oracle / make compare: PyTorch's CPU build, from PyTorch's CPU wheel index (the +cpu
# local version; on PyPI Linux wheels are the CUDA build); refused if another build is there.
TORCH_PIN   := 2.13.0
TORCH_INDEX := https://download.pytorch.org/whl/cpu
TORCH_CPU    = $(BIN)/python -c "import sys, torch; sys.exit(torch.version.cuda is not None)"
TORCH_GET    = $(BIN)/$(PIP) --extra-index-url $(TORCH_INDEX) 'torch==$(TORCH_PIN)+cpu'

.PHONY: check test test-oldest docs lint typecheck pytest clean bench bench-compare compare asvcheck oracle demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP) -e '.[dev]' $(DEV_PINS)
	touch $(STAMP)

## check: verify every derivative by finite differences; prints the report, exits 1 on failure.
## ONLY=Dense (or ONLY='Conv2D,MaxPool2D') runs only the components whose name contains it.
check: $(STAMP)
	$(BIN)/python -m refnn.verify --json check-report.json $(if $(ONLY),--only '$(ONLY)')

## test: pytest (hypothesis, warnings as errors), mypy --strict, ruff
test: pytest typecheck lint asvcheck

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

## test-oldest: pytest against the oldest supported numpy and hypothesis (the floors pyproject
## claims), in .venv-oldest
OLDEST := .venv-oldest
$(OLDEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/$(PIP) -e '.[dev]' $(OLDEST_PINS)
	touch $@

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -m pip freeze | grep -qx -e "$(word 1,$(OLDEST_PINS))" && \
		$(OLDEST)/bin/python -m pip freeze | grep -qx -e "$(word 2,$(OLDEST_PINS))" || \
		{ echo "$(OLDEST) does not hold $(OLDEST_PINS)"; exit 1; }
	$(OLDEST)/bin/python -m pytest -q

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench / bench-compare / compare: speed (benchmarks/). OpenBLAS's core-type and L2 overrides
## are unset for these commands only: they slow numpy's BLAS. The HEAD runs use the working tree.
NOBLAS := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
ASV    := $(CURDIR)/$(BIN)/asv
ASV_ARGS ?=
# asv drops PYTHONPATH; ASV_PYTHONPATH picks the refnn tree, REFNN_BENCH_EXPECT_ROOT asserts it.
HERE_ENV := ASV_PYTHONPATH="$(CURDIR)" REFNN_BENCH_EXPECT_ROOT="$(CURDIR)"

## asvcheck: the benchmarks import and have valid signatures (part of make test)
asvcheck: $(STAMP)
	cd benchmarks && $(HERE_ENV) $(ASV) check --python=same

# asv_side NAME COMMIT ROOT: the suite on refnn from ROOT, saved as COMMIT's results; prints a
# line per benchmark (asv's tables, whose ± may exceed the figure, go to $(BENCH_LOG)/NAME.log),
# copies the results to $(BENCH_LOG)/NAME.json and returns asv's status (2: some failed). COMMIT's
# earlier results are removed first: asv merges into them, and they are not this run's.
BENCH_LOG = $(CURDIR)/benchmarks/.asv/last
ASV_SIDE = asv_side() { \
	rm -f results/*/$$(echo $$2 | cut -c1-8)-*.json; \
	{ ASV_PYTHONPATH="$$3" REFNN_BENCH_EXPECT_ROOT="$$3" $(NOBLAS) $(ASV) run --python=same \
		--set-commit-hash=$$2 $(ASV_ARGS) 2>&1; echo $$? >"$(BENCH_LOG)/$$1.rc"; } \
	| tee "$(BENCH_LOG)/$$1.log" | grep --line-buffered -E ' (ok|failed|skipped)$$' || true; \
	cp "$$(ls -t results/*/$$(echo $$2 | cut -c1-8)-*.json | head -1)" "$(BENCH_LOG)/$$1.json"; \
	rc=$$(cat "$(BENCH_LOG)/$$1.rc"); [ $$rc -eq 0 ] || echo "== asv exit $$rc: see $(BENCH_LOG)/$$1.log"; \
	return $$rc; }; \
	rm -rf "$(BENCH_LOG)"; mkdir -p "$(BENCH_LOG)"; $(ASV) machine --yes >/dev/null; \
	echo "== before: $$(uptime)"
STRICT_FLAG = $(if $(filter 1 yes true,$(STRICT)),--strict)
ROUNDS ?= 3

## bench: the asv suite on the working tree, saved as HEAD's results; each figure is printed as
## median ± half its interquartile range, or as noise where that spread exceeds it
bench: $(STAMP)
	@set -e; head=$$(git rev-parse HEAD); cd benchmarks; $(ASV_SIDE); \
	status=0; asv_side head $$head "$(CURDIR)" || status=$$?; \
	$(CURDIR)/$(BIN)/python asv_noise.py show "$(BENCH_LOG)/head.json"; exit $$status

## bench-compare: HEAD~1 (from a temporary git worktree) against HEAD (the working tree), in
## ROUNDS rounds (default 3: parent HEAD, HEAD parent, ...); per benchmark the median over rounds
## of HEAD / parent, said to be noise where the rounds disagree by more than the change.
## That is 2 x ROUNDS runs of the suite: narrow it with ASV_ARGS="--bench LSTM". STRICT=1: exit 1
## on a regression. asv's exit 2 (some benchmarks failed) is tolerated for the parent only.
bench-compare: $(STAMP)
	@set -e; \
	head=$$(git rev-parse HEAD); parent=$$(git rev-parse HEAD~1); \
	wt=$$(mktemp -d "$${TMPDIR:-/tmp}/refnn-parent.XXXXXX"); \
	trap 'git worktree remove --force "$$wt" 2>/dev/null; rm -rf "$$wt"; git worktree prune' EXIT; \
	git worktree add --detach --quiet "$$wt" "$$parent"; \
	cd benchmarks; $(ASV_SIDE); status=0; \
	parent_run() { asv_side parent-$$1 $$parent "$$wt" || { rc=$$?; [ $$rc -eq 2 ] || exit $$rc; \
		echo "== some benchmarks failed on the parent (code it predates?)"; }; }; \
	head_run() { asv_side head-$$1 $$head "$(CURDIR)" || status=$$?; }; \
	for r in $$(seq $(ROUNDS)); do \
		echo "== round $$r of $(ROUNDS): parent $$parent (refnn from $$wt), HEAD $$head"; \
		if [ $$((r % 2)) -eq 1 ]; then parent_run $$r; head_run $$r; \
		else head_run $$r; parent_run $$r; fi; \
	done; \
	$(CURDIR)/$(BIN)/python asv_noise.py compare $(STRICT_FLAG) \
		--base "$(BENCH_LOG)"/parent-*.json --head "$(BENCH_LOG)"/head-*.json || status=$$?; \
	exit $$status

## compare: refnn vs its bound and PyTorch CPU, one process (installs the pinned CPU torch); rows
## print as they are measured; STRICT=1: exit 1 when a bar is missed
compare: $(STAMP)
	$(TORCH_CPU) 2>/dev/null || $(TORCH_GET) || \
		echo "torch==$(TORCH_PIN)+cpu could not be installed: the PyTorch columns will be empty"
	$(NOBLAS) PYTHONPATH="$(CURDIR)" $(BIN)/python benchmarks/compare.py $(STRICT_FLAG)

## oracle: every layer against PyTorch in float64 (installs the pinned CPU build first)
oracle: $(STAMP)
	$(TORCH_CPU) 2>/dev/null || $(TORCH_GET)
	$(TORCH_CPU) || { echo "the installed torch is not PyTorch's CPU build"; exit 1; }
	$(BIN)/python -m pytest -q -rs -m torch

## demo: train an MLP, a CNN and an LSTM on scikit-learn's bundled data sets (nothing is
## downloaded); per-epoch progress, PNG plots and saved models in demo-output/
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): $(STAMP) pyproject.toml
	$(BIN)/$(PIP) -e '.[dev,demo]' $(DEV_PINS)
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m demo

## docs: the API reference (Sphinx + numpydoc), warnings as errors, into docs/_build/html
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/$(PIP) -e '.[dev,docs]' $(DEV_PINS)
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(OLDEST) .hypothesis .mypy_cache .ruff_cache .pytest_cache check-report.json
