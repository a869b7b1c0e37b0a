#!/usr/bin/env bash
# Jenkins stage "Set-up" (and .ci/run): the virtualenv with the pinned dependencies, promtool, which
# the promtool parity tests compare against, the OpenTelemetry Collector the deployment tests run and
# the OpenTelemetry JavaScript SDK that tests/test_js_sdk.py exports with.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory install
bash pipelines/ci/install-promtool.sh
bash pipelines/ci/install-ceph-fixtures.sh
bash pipelines/ci/install-otelcol.sh
bash pipelines/ci/install-otel-js.sh
mkdir -p out/ci
