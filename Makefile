# Two commands a newcomer needs: `make run` and `make test`. Both create .venv and install the
# package with its pinned dependencies (requirements.lock) first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The compiled core (core/, Rust): maturin builds it into the package; rebuilt when a source changes.
CORE   := otel_contract/_core.abi3.so
CORE_SOURCES := core/Cargo.toml core/Cargo.lock $(wildcard core/src/*.rs)
# maturin and cargo run from the venv's bin; pyo3 builds against the venv's Python.
WITH_VENV := PATH="$(abspath $(BIN)):$$PATH" PYO3_PYTHON="$(abspath $(BIN))/python"

.PHONY: install run demo test lint docs lock clean

# pip runs --quiet (its full output is hundreds of lines): the echo lines say what is going on.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "otel-contract needs Python >= 3.11, found " + sys.version.split()[0])'
	@echo "creating $(VENV) with $$($(PYTHON) --version 2>&1) ($(PYTHON))"
	@$(PYTHON) -m venv $(VENV)
	@command -v cargo >/dev/null || { echo "otel-contract builds its core from Rust source: install a Rust toolchain (https://rustup.rs), then run make again" >&2; exit 1; }
	@echo "installing pip and the $$(grep -c '==' requirements.lock) pinned dependencies of requirements.lock into $(VENV) (first run: about a minute)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -c requirements.lock $$(grep '^maturin==' requirements.lock)
	@echo "building the compiled core (core/, Rust, release mode) with $$(cargo --version); first run: about a minute"
	@$(WITH_VENV) $(BIN)/python -m pip install --quiet --no-build-isolation -c requirements.lock -e '.[dev]'
	@echo "installed: $(VENV) is ready"
	@touch $(STAMP) $(CORE)

# A change to the core's Rust sources: rebuild it (cargo recompiles only what changed).
$(CORE): $(STAMP) $(CORE_SOURCES)
	@echo "rebuilding the compiled core (core/, release mode)"
	@$(WITH_VENV) $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(CORE)

## install: .venv with the package, its compiled core and its pinned dependencies (what run and test start with)
install: $(STAMP) $(CORE)

## run: the main job on embedded defaults: the sidecar with the example contract, console + file exporters
run: $(STAMP) $(CORE)
	@echo "otel-contract sidecar: OTLP/gRPC on 127.0.0.1:4317, OTLP/HTTP on http://127.0.0.1:4318, metrics/health on http://127.0.0.1:8888"
	@echo "  point an SDK at it:  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
	@echo "                   or  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
	@echo "  or with curl:        see README, \"OTLP/HTTP\""
	@echo "  or, in another shell: make demo   (a real SDK app sending legacy-named telemetry)"
	@echo "  forwarded data: out/forwarded.jsonl; stop with Ctrl-C (drains, exits 0)"
	$(BIN)/otel-contract serve --config pipelines/local.yaml

## demo: a real OpenTelemetry SDK app sending legacy-named telemetry to the sidecar of `make run`, then
## what the contract did to it (exits 1 when no sidecar answers)
demo: $(STAMP) $(CORE)
	@echo "sending 10 s of legacy-named telemetry to the sidecar on 127.0.0.1:4317 (examples/sdk_app.py)"
	@$(BIN)/python examples/sdk_app.py --endpoint 127.0.0.1:4317

## test: every test (pytest, then the core's cargo tests), then the linters (lint)
test: $(STAMP) $(CORE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	cd core && $(WITH_VENV) cargo test --quiet
	$(MAKE) --no-print-directory lint

## lint: ruff, mypy, lint-imports (the layers in pyproject.toml), rustfmt, clippy, and the generated wire schema
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd core && cargo fmt --check
	cd core && $(WITH_VENV) cargo clippy --quiet --all-targets -- -D warnings
	$(BIN)/python tools/gen_wire_schema.py --check

## docs: rewrite the copies of the catalogs (README's rule and change tables, the schema's rule enum) from the code
docs: $(STAMP)
	$(BIN)/python tools/sync_catalog.py

## lock: re-pin requirements.lock to what pyproject.toml's ranges resolve to today
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# Pinned versions for make run / make test (Python 3.11, Linux). Ranges live in pyproject.toml;"; \
	  echo "# refresh with: make lock"; \
	  $(VENV).lock/bin/pip freeze --exclude-editable | grep -v '^otel-contract'; } > requirements.lock
	rm -rf $(VENV).lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache *.egg-info $(CORE)
	cd core && cargo clean
