#!/usr/bin/env bash
# Jenkins stage "Set-up" (and .ci/run): the virtualenv with the pinned dependencies, promtool, which
# the promtool parity tests compare against, and the OpenTelemetry Collector the deployment tests run.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory install
bash pipelines/ci/install-promtool.sh
bash pipelines/ci/install-ceph-fixtures.sh
bash pipelines/ci/install-otelcol.sh
mkdir -p out/ci
