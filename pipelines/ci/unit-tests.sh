#!/usr/bin/env bash
# Jenkins stage "Unit tests" (and .ci/run): `make test`, the README's test command (pytest, then
# ruff and mypy), with pytest's JUnit file in out/ci/ for the junit step.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p out/ci
make --no-print-directory test PYTEST_ARGS="--junitxml=out/ci/unit-tests.xml"
