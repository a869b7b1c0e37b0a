#!/usr/bin/env bash
# Makes promtool available for the promtool parity tests (tests/test_prometheus_lints.py), which check
# that `otel-contract validate` reports everything `promtool check metrics` does.
#
# Idempotent: when promtool is already on PATH it prints its version and changes nothing. Otherwise it
# installs Debian's `prometheus` package (promtool 2.42 on bookworm), as root or through passwordless
# sudo; it never prompts, so it runs the same from Jenkins, the tests and a terminal.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    promtool --version 2>&1 | head -n 1
    exit 0
fi

fail() {
    echo "install-promtool.sh: $*" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 \
    || fail "promtool is not on PATH and apt-get is missing; install promtool (Prometheus 2.x) by hand"

if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
    # -n: fail instead of asking for a password, since there may be no terminal to ask on.
    as_root() { sudo -n "$@"; }
else
    fail "promtool is not on PATH and installing it needs root: run as root, or install sudo, or run" \
        "'apt-get install --no-install-recommends prometheus' as root"
fi

echo "install-promtool.sh: installing Debian's prometheus package for promtool" >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get update \
    || fail "apt-get update failed (as $(id -un)); passwordless sudo or root is needed"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    || fail "apt-get install prometheus failed"

command -v promtool >/dev/null 2>&1 || fail "the prometheus package is installed but promtool is not on PATH ($PATH)"
promtool --version 2>&1 | head -n 1
