#!/usr/bin/env bash
# Installs the OpenTelemetry JavaScript SDK that tests/test_js_sdk.py exports with: tools/otel-js, the
# exact versions of its package-lock.json, by `npm ci` from the npm registry into
# tools/otel-js/node_modules (ignored by git), marked done by node_modules/.installed-<hash of the lock>.
#
# Idempotent: when that marker exists it only prints the SDK's version. Prints the marker's absolute
# path as its last line.  --path prints that path without installing (what the test fixture asks first).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROJECT=tools/otel-js
key=$(cat "$PROJECT/package.json" "$PROJECT/package-lock.json" | sha256sum | cut -c1-16)
marker="$PWD/$PROJECT/node_modules/.installed-$key"

if [ "${1:-}" = "--path" ]; then
    echo "$marker"
    exit 0
fi

sdk_version() {
    local packages="$PROJECT/node_modules/@opentelemetry"
    node -p "require('./$packages/sdk-metrics/package.json').version + ' (OTLP exporters ' + require('./$packages/exporter-metrics-otlp-proto/package.json').version + ')'"
}

if [ -f "$marker" ] && command -v node >/dev/null 2>&1; then
    echo "install-otel-js.sh: the OpenTelemetry JS SDK $(sdk_version) is installed in $PROJECT/node_modules" >&2
    echo "$marker"
    exit 0
fi

# The SDK's 2.x line (the last one for Node 20; 3.x wants Node 22) declares ^18.19.0 || >=20.6.0.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 \
    || ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 6) || (a === 18 && b >= 19) ? 0 : 1)'; then
    echo "install-otel-js.sh: the JavaScript SDK test needs Node.js ^18.19 or >= 20.6 with npm (found: $(node --version 2>/dev/null || echo 'no node')): install it from https://nodejs.org, then run this again" >&2
    exit 1
fi
echo "install-otel-js.sh: installing the OpenTelemetry JS SDK from $PROJECT/package-lock.json with npm $(npm --version) on Node $(node --version); first run: a few seconds" >&2
started=$SECONDS
# npm ci installs exactly the lock (and removes node_modules first, the marker of an older lock with it);
# the packages have no install scripts to run.
(cd "$PROJECT" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
touch "$marker"
echo "install-otel-js.sh: the OpenTelemetry JS SDK $(sdk_version) installed in $((SECONDS - started)) s" >&2
echo "$marker"
