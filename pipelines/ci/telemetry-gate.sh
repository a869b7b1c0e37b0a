#!/usr/bin/env bash
# Jenkins stage "Telemetry gate" (and .ci/run): start the sidecar in audit mode with a file exporter,
# run the service's smoke traffic through it, stop it (SIGTERM drains the queue), then `validate` the
# capture, so a contract break fails the build before it reaches production.
#
#   CONTRACT   the contract to enforce (default contracts/ecommerce.yaml)
#   SMOKE_CMD  the smoke traffic; it finds the sidecar in OTEL_EXPORTER_OTLP_ENDPOINT / OTLP_ENDPOINT
#              (OTLP/gRPC), or OTLP_HTTP_ENDPOINT (OTLP/HTTP)
#              (default: examples/sdk_app.py, a real OpenTelemetry SDK app, for 3 seconds)
#   BASELINE   findings accepted on this legacy service (default pipelines/ci/telemetry-baseline.json;
#              refresh it with BASELINE_WRITE=1 after a reviewed change)
# Output in out/ci/telemetry/: capture.jsonl, sidecar.log, report.xml (JUnit), report.md, report.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
contract="${CONTRACT:-contracts/ecommerce.yaml}"
baseline="${BASELINE:-pipelines/ci/telemetry-baseline.json}"
out=out/ci/telemetry
rm -rf "$out" && mkdir -p "$out"

read -r otlp_port http_port status_port < <(.venv/bin/python - <<'PY'
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
)
OTLP_ENDPOINT="127.0.0.1:$otlp_port"
OTLP_HTTP_ENDPOINT="127.0.0.1:$http_port"  # for a SMOKE_CMD whose app exports http/protobuf
export OTLP_ENDPOINT OTLP_HTTP_ENDPOINT

# The sidecar must not inherit the app's OTEL_EXPORTER_OTLP_ENDPOINT: it would forward to itself.
env -u OTEL_EXPORTER_OTLP_ENDPOINT .venv/bin/otel-contract serve --contract "$contract" --audit --endpoint "$OTLP_ENDPOINT" \
    --http-endpoint "$OTLP_HTTP_ENDPOINT" --prometheus "127.0.0.1:$status_port" --export-file "$out/capture.jsonl" >"$out/sidecar.log" 2>&1 &
sidecar=$!
stop_sidecar() {
    kill -TERM "$sidecar" 2>/dev/null || return 0
    for _ in $(seq 300); do kill -0 "$sidecar" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$sidecar" 2>/dev/null; then
        echo "telemetry-gate: the sidecar did not drain within 30 s; killing it" >&2
        kill -KILL "$sidecar"
    fi
    wait "$sidecar" || { echo "telemetry-gate: the sidecar exited $?; its log:" >&2; cat "$out/sidecar.log" >&2; return 1; }
}
trap 'kill -KILL "$sidecar" 2>/dev/null || true' EXIT

# Ready when /readyz answers 200; give up after 30 s or as soon as the sidecar died.
.venv/bin/python - "$status_port" "$sidecar" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("telemetry-gate: the sidecar exited before it was ready; see out/ci/telemetry/sidecar.log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("telemetry-gate: the sidecar was not ready within 30 s")
PY
echo "telemetry-gate: sidecar ready on $OTLP_ENDPOINT (OTLP/gRPC) and $OTLP_HTTP_ENDPOINT (OTLP/HTTP) (audit mode, $contract)"

smoke="${SMOKE_CMD:-.venv/bin/python examples/sdk_app.py --endpoint $OTLP_ENDPOINT --seconds 3 --contract $contract}"
echo "telemetry-gate: smoke traffic: $smoke"
OTLP_ENDPOINT="$OTLP_ENDPOINT" OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP_ENDPOINT" OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    bash -c "$smoke"
stop_sidecar
trap - EXIT
echo "telemetry-gate: captured $(wc -l <"$out/capture.jsonl") requests in $out/capture.jsonl"

validate=(.venv/bin/otel-contract validate -c "$contract" "$out/capture.jsonl")
if [ "${BASELINE_WRITE:-}" = 1 ]; then
    exec "${validate[@]}" --write-baseline "$baseline"
fi
[ -f "$baseline" ] && validate+=(--baseline "$baseline")
status=0
"${validate[@]}" --format junit --output "$out/report.xml" || status=$?
"${validate[@]}" --format markdown --output "$out/report.md" 2>/dev/null || true
"${validate[@]}" --color never | tee "$out/report.txt" || true
exit "$status"
