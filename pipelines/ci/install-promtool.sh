#!/usr/bin/env bash
# Makes promtool available for the promtool parity tests (tests/test_prometheus_lints.py), which check
# that `otel-contract validate` reports everything `promtool check metrics` does.
#
# Idempotent: when promtool is already on PATH it prints its version and changes nothing. Otherwise it
# installs Debian's `prometheus` package (promtool 2.42 on bookworm) with apt-install.sh.
set -euo pipefail
source "$(dirname "$0")/apt-install.sh"

if ! command -v promtool >/dev/null 2>&1; then
    apt_install install-promtool.sh "install promtool (Prometheus 2.x) by hand" prometheus
    command -v promtool >/dev/null 2>&1 \
        || { echo "install-promtool.sh: the prometheus package is installed but promtool is not on PATH ($PATH)" >&2; exit 1; }
fi
promtool --version 2>&1 | head -n 1
