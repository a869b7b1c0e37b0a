#!/usr/bin/env bash
# Jenkins stage "Check contracts": lint every contract; a JUnit file for the junit step, and the text
# report on the console. Exit 1 on any error-level finding, 2 on an unreadable contract.
# CONTRACTS overrides which files (default: contracts/*.yaml).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p out/ci
read -r -a contracts <<< "${CONTRACTS:-$(echo contracts/*.yaml)}"
status=0
.venv/bin/otel-contract check "${contracts[@]}" --format junit --output out/ci/check-contracts.xml || status=$?
.venv/bin/otel-contract check "${contracts[@]}" --color never || true  # the same findings, readable in the log
exit "$status"
