#!/usr/bin/env bash
# Builds the OpenTelemetry Collector that the deployment tests and bench/collector.py run beside the
# sidecar: tools/otelcol, upstream components at one pinned release (go.mod, go.sum), built with Go
# from the Go module proxy into .cache/otelcol/<hash of the module's files>/otelcol (ignored by git).
#
# Idempotent: when that binary exists it only checks that it runs. Prints the binary's absolute path
# as its last line.  --path prints that path without building (what the test fixture asks first).
set -euo pipefail
cd "$(dirname "$0")/../.."

MODULE=tools/otelcol
key=$(cat "$MODULE/go.mod" "$MODULE/go.sum" "$MODULE"/*.go | sha256sum | cut -c1-16)
binary="$PWD/.cache/otelcol/$key/otelcol"

if [ "${1:-}" = "--path" ]; then
    echo "$binary"
    exit 0
fi

if [ -x "$binary" ] && "$binary" --version >/dev/null 2>&1; then
    "$binary" --version
    echo "$binary"
    exit 0
fi

command -v go >/dev/null 2>&1 || {
    echo "install-otelcol.sh: building the Collector needs Go ($(grep '^go ' "$MODULE/go.mod")): install it from https://go.dev/dl, then run this again" >&2
    exit 1
}
release=$(sed -n 's/^const version = "\(.*\)"$/\1/p' "$MODULE/main.go")
echo "install-otelcol.sh: building the OpenTelemetry Collector $release from upstream Go modules ($MODULE) with $(go version | cut -d' ' -f3); first run: about 5 minutes (module downloads, then compiling)" >&2
mkdir -p "$(dirname "$binary")"
started=$SECONDS
# -mod=readonly: the build takes exactly what go.sum pins, and never rewrites go.mod.
(cd "$MODULE" && GOFLAGS=-mod=readonly go build -trimpath -o "$binary.tmp" .)
mv "$binary.tmp" "$binary"
echo "install-otelcol.sh: built in $((SECONDS - started)) s" >&2
"$binary" --version
echo "$binary"
