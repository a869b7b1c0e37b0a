#!/usr/bin/env bash
# Jenkins stage "Contract diff" (change requests only): the schema diff of every contract changed
# against the target branch, archived as out/ci/contract-diff/*.md for the RFC review.
# The target is origin/$CHANGE_TARGET (Jenkins sets it on change requests; fetched here), else
# $TARGET, else origin/main.
# `--available` only answers whether this otel-contract has a diff command (exit 0) or not (1): the
# Jenkinsfile's `when` uses it to skip the stage until the command exists. Run without it and without
# the command, the script says so and exits 0 rather than pretend.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! .venv/bin/otel-contract diff --help >/dev/null 2>&1; then
    [ "${1:-}" = --available ] && exit 1
    echo "diff-contracts: skipped: this otel-contract has no diff command yet"
    exit 0
fi
[ "${1:-}" = --available ] && exit 0
if [ -n "${CHANGE_TARGET:-}" ]; then
    git fetch --no-tags origin "+refs/heads/$CHANGE_TARGET:refs/remotes/origin/$CHANGE_TARGET"
fi
target="${TARGET:-origin/${CHANGE_TARGET:-main}}"
if ! git rev-parse --verify --quiet "$target^{commit}" >/dev/null; then
    echo "diff-contracts: skipped: $target is not a commit here (not a change request, or not fetched)"
    exit 0
fi
mkdir -p out/ci/contract-diff
status=0
while IFS= read -r path; do
    [ -f "$path" ] || continue  # deleted contracts: the diff command reports removals from the old side
    name="$(basename "$path" .yaml)"
    .venv/bin/otel-contract diff "git:$target:$path" "$path" --format markdown \
        --output "out/ci/contract-diff/$name.md" || status=$?
done < <(git diff --name-only "$target"...HEAD -- 'contracts/*.yaml')
exit "$status"
