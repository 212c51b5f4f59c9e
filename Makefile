# refnn: every target installs what it needs into .venv on first use (python3 >= 3.11 only).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: check test lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## check: verify every derivative by finite differences; prints the report, exits 1 on failure
check: $(STAMP)
	$(BIN)/python -m refnn.verify --json check-report.json

## test: pytest (hypothesis, warnings as errors), mypy --strict, ruff
test: pytest typecheck lint

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .hypothesis .mypy_cache .ruff_cache .pytest_cache check-report.json
