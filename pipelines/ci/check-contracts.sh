#!/usr/bin/env bash
# Jenkins stage "Check contracts": lint every contract, and require an RFC for every version change
# (`--require-rfc`: against origin/$CHANGE_TARGET in a change request, else origin/main, else HEAD).
# A JUnit file for the junit step, and the text report on the console. Exit 1 on any error-level
# finding (missing-rfc included), 2 on an unreadable contract or RFC.
# CONTRACTS overrides which files (default: contracts/*.yaml).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p out/ci
if [ -n "${CHANGE_TARGET:-}" ]; then
    git fetch --no-tags origin "+refs/heads/$CHANGE_TARGET:refs/remotes/origin/$CHANGE_TARGET"
fi
read -r -a contracts <<< "${CONTRACTS:-$(echo contracts/*.yaml)}"
status=0
.venv/bin/otel-contract check "${contracts[@]}" --require-rfc --format junit --output out/ci/check-contracts.xml \
    || status=$?
.venv/bin/otel-contract check "${contracts[@]}" --require-rfc --color never || true  # readable in the log
exit "$status"
