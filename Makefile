# Two commands a newcomer needs: `make run` and `make test`. Both create .venv and install the
# package with its pinned dependencies (requirements.lock) first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint check-contracts lock clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "otel-contract needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

## run: the main job on embedded defaults: lint every example contract
run: $(STAMP)
	$(BIN)/otel-contract check contracts/*.yaml

## test: every test, then ruff and mypy
test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## lock: re-pin requirements.lock to what pyproject.toml's ranges resolve to today
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# Pinned versions for make run / make test (Python 3.11, Linux). Ranges live in pyproject.toml;"; \
	  echo "# refresh with: make lock"; \
	  $(VENV).lock/bin/pip freeze --exclude-editable | grep -v '^otel-contract'; } > requirements.lock
	rm -rf $(VENV).lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
