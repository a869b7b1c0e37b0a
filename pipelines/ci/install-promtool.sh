#!/usr/bin/env bash
# Makes promtool and the Prometheus server available to the tests: promtool for the promtool parity
# tests (tests/test_prometheus_lints.py), which check that `otel-contract validate` reports everything
# `promtool check metrics` does; prometheus for the autoscaling tests (tests/prometheus_server.py),
# which run a real server on 127.0.0.1 scraping examples/hpa-app/app.py.
#
# Idempotent: when both are already on PATH it prints their versions and changes nothing. Otherwise it
# installs Debian's `prometheus` package (Prometheus and promtool 2.42 on bookworm) with apt-install.sh.
set -euo pipefail
source "$(dirname "$0")/apt-install.sh"

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    apt_install install-promtool.sh "install Prometheus 2.x (prometheus and promtool) by hand" prometheus
    for binary in promtool prometheus; do
        command -v "$binary" >/dev/null 2>&1 \
            || { echo "install-promtool.sh: the prometheus package is installed but $binary is not on PATH ($PATH)" >&2; exit 1; }
    done
fi
promtool --version 2>&1 | head -n 1
prometheus --version 2>&1 | head -n 1
