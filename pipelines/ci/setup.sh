#!/usr/bin/env bash
# Jenkins stage "Set-up" (and .ci/run): the virtualenv with the pinned dependencies, and promtool,
# which the promtool parity tests compare against.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory install
bash pipelines/ci/install-promtool.sh
bash pipelines/ci/install-ceph-fixtures.sh
mkdir -p out/ci
