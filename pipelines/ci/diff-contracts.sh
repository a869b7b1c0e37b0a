#!/usr/bin/env bash
# Jenkins stage "Contract diff" (change requests only): the schema diff of every contract changed
# against the target branch, archived as out/ci/contract-diff/<contract>.md for the RFC review.
# The stage fails (exit 1) when a contract's semver gate fails: a breaking change without a major
# version step, or a change without a version step (see "Contract changes" in the README).
# The target is origin/$CHANGE_TARGET (Jenkins sets it on change requests; fetched here), else
# $TARGET, else origin/main. Outside a change request there is nothing to compare and it says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${CHANGE_TARGET:-}" ]; then
    git fetch --no-tags origin "+refs/heads/$CHANGE_TARGET:refs/remotes/origin/$CHANGE_TARGET"
fi
target="${TARGET:-origin/${CHANGE_TARGET:-main}}"
if ! git rev-parse --verify --quiet "$target^{commit}" >/dev/null; then
    echo "diff-contracts: skipped: $target is not a commit here (not a change request, or not fetched)"
    exit 0
fi
# The changed contract files, and every top-level contract when any changed: an edit of an included
# file (contracts/base/) changes the contracts that include it.
changed_contracts() {
    local changed
    changed="$(git diff --name-only "$target"...HEAD -- 'contracts/*.yaml')"
    [ -n "$changed" ] || return 0
    { echo "$changed"; git ls-files 'contracts/*.yaml' | grep -v '/.*/' || true; } | sort -u
}

mkdir -p out/ci/contract-diff
status=0
compared=0
while IFS= read -r path; do
    if [ ! -f "$path" ]; then
        echo "diff-contracts: $path was deleted; its consumers are the review's business"
        continue
    fi
    if ! git cat-file -e "$target:$path" 2>/dev/null; then
        echo "diff-contracts: $path is new on this branch: nothing to compare it with"
        continue
    fi
    name="$(echo "${path#contracts/}" | sed 's/\.yaml$//; s#/#-#g')"
    compared=$((compared + 1))
    result=0
    .venv/bin/otel-contract diff "git:$target:$path" "$path" --format markdown \
        --output "out/ci/contract-diff/$name.md" || result=$?
    [ "$result" -gt "$status" ] && status=$result
done < <(changed_contracts)
echo "diff-contracts: $compared contract(s) compared with $target; exit $status"
exit "$status"
