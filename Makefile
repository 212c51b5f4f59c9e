# refnn: every target installs what it needs into .venv on first use (python3 >= 3.11 only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: check test test-oldest lint typecheck pytest clean bench bench-compare compare asvcheck oracle demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## check: verify every derivative by finite differences; prints the report, exits 1 on failure
check: $(STAMP)
	$(BIN)/python -m refnn.verify --json check-report.json

## test: pytest (hypothesis, warnings as errors), mypy --strict, ruff
test: pytest typecheck lint asvcheck

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

## test-oldest: pytest against the oldest supported numpy (the floor pyproject claims), in .venv-oldest
OLDEST       := .venv-oldest
OLDEST_NUMPY := numpy==1.26.4
$(OLDEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' '$(OLDEST_NUMPY)'
	touch $@

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -c "import numpy; assert numpy.__version__ == '$(OLDEST_NUMPY:numpy==%=%)', numpy.__version__"
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

## bench: run the asv suite in this environment, save results for HEAD, show them
bench: $(STAMP)
	@set -e; head=$$(git rev-parse HEAD); cd benchmarks; \
	$(ASV) machine --yes >/dev/null; \
	$(HERE_ENV) $(NOBLAS) $(ASV) run --python=same --set-commit-hash=$$head $(ASV_ARGS); \
	$(ASV) show $$head

## bench-compare: benchmark HEAD~1 (from a temporary git worktree) and HEAD, then asv compare.
## asv exits 2 when some benchmarks fail: tolerated for the parent only (it may predate them).
bench-compare: $(STAMP)
	@set -e; \
	head=$$(git rev-parse HEAD); parent=$$(git rev-parse HEAD~1); \
	wt=$$(mktemp -d "$${TMPDIR:-/tmp}/refnn-parent.XXXXXX"); \
	trap 'git worktree remove --force "$$wt" 2>/dev/null; rm -rf "$$wt"; git worktree prune' EXIT; \
	git worktree add --detach --quiet "$$wt" "$$parent"; \
	cd benchmarks; \
	$(ASV) machine --yes >/dev/null; \
	echo "== parent $$parent: refnn from $$wt"; \
	ASV_PYTHONPATH="$$wt" REFNN_BENCH_EXPECT_ROOT="$$wt" $(NOBLAS) $(ASV) run --python=same \
		--set-commit-hash=$$parent $(ASV_ARGS) || { rc=$$?; [ $$rc -eq 2 ] || exit $$rc; \
		echo "== note: some benchmarks failed on the parent (code it predates?)"; }; \
	echo "== HEAD $$head: refnn from the working tree $(CURDIR)"; \
	status=0; \
	$(HERE_ENV) $(NOBLAS) $(ASV) run --python=same --set-commit-hash=$$head $(ASV_ARGS) || status=$$?; \
	$(ASV) compare $$parent $$head; \
	exit $$status

## compare: refnn vs its GEMM bound and PyTorch CPU, one process (installs the pinned torch)
compare: $(STAMP)
	$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/python -m pip install --disable-pip-version-check torch==2.13.0 || \
		echo "torch==2.13.0 could not be installed: the PyTorch columns will be empty"
	$(NOBLAS) PYTHONPATH="$(CURDIR)" $(BIN)/python benchmarks/compare.py

## oracle: every layer against PyTorch in float64 (installs the pinned CPU build first)
oracle: $(STAMP)
	$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pytest -q -rs -m torch

## demo: train an MLP, a CNN and an LSTM on scikit-learn's bundled data sets (nothing is
## downloaded); per-epoch progress, PNG plots and saved models in demo-output/
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,demo]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m demo

clean:
	rm -rf $(VENV) $(OLDEST) .hypothesis .mypy_cache .ruff_cache .pytest_cache check-report.json
