"""Issue 20's own scenario: the OpenTelemetry JavaScript SDK (tools/otel-js, pinned versions installed by
pipelines/ci/install-otel-js.sh) exporting over OTLP/HTTP, protobuf and JSON, to the sidecar's receiver,
a real gRPC sink downstream. Before the receiver it got ECONNREFUSED on 4318."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from otel_contract.otlp import FACTS, OtlpRequest, Signal
from tests.conftest import REPO
from tests.otlp_builders import all_metrics, point_attrs
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import config_for, free_port, running, shop_contract
from tests.system_packages import installed_by

INSTALL_SCRIPT = REPO / "pipelines" / "ci" / "install-otel-js.sh"
EXPORT_SCRIPT = REPO / "tools" / "otel-js" / "export.mjs"
# The JS exporters' one line for a partial_success (otlp-exporter-base, logging-response-handler.js).
_PARTIAL_SUCCESS = "Received Partial Success response: "
# Above the exporters' own 10 s bound per export (metrics and spans export concurrently).
_RUN_TIMEOUT_SECONDS = 60


def _installed() -> list[str] | None:
    where = subprocess.run(["bash", str(INSTALL_SCRIPT), "--path"], capture_output=True, text=True, check=True)
    node = shutil.which("node")
    return [node, str(EXPORT_SCRIPT)] if node and Path(where.stdout.strip()).is_file() else None


@pytest.fixture(scope="session", name="export_js")
def export_js_fixture() -> list[str]:
    """The command that runs tools/otel-js/export.mjs, once its pinned packages are installed."""
    return installed_by(INSTALL_SCRIPT, _installed, "the OpenTelemetry JavaScript SDK (tools/otel-js) is")


def _export(command: list[str], endpoint: str, kind: str, *timeout_ms: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, f"http://{endpoint}", kind, *timeout_ms],
        capture_output=True,
        text=True,
        timeout=_RUN_TIMEOUT_SECONDS,
        check=False,
    )


def _forwarded(sink: OtlpSink, signal: Signal) -> list[OtlpRequest]:
    return [FACTS[signal].request_type.FromString(r.payload) for r in sink.requests if r.signal is signal]


@pytest.mark.parametrize("kind", ["proto", "json"])
def test_the_js_sdk_exporters_send_legacy_metrics_that_arrive_normalized_with_the_partial_success_logged(
    export_js: list[str], otlp_sink: OtlpSink, tmp_path: Path, kind: str
) -> None:
    """exporter-*-otlp-proto (application/x-protobuf) and exporter-*-otlp-http (application/json): the
    legacy ms histogram arrives as http_server_duration_seconds in s with http.status_code an int, the
    user.id point is rejected, and the SDK logs the sidecar's partial_success."""
    with running(config_for(shop_contract(tmp_path / "shop.yaml"), otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        result = _export(export_js, sidecar.http_endpoint, kind)
        assert result.returncode == 0, result.stdout + result.stderr
        assert otlp_sink.wait_for(lambda: {r.signal for r in otlp_sink.requests} == {Signal.METRICS, Signal.TRACES})

    (metrics,) = _forwarded(otlp_sink, Signal.METRICS)
    by_name = {metric.name: metric for metric in all_metrics(metrics)}
    assert set(by_name) == {"http_server_duration_seconds", "orders_total"}
    duration = by_name["http_server_duration_seconds"]
    assert duration.unit == "s"
    (point,) = duration.histogram.data_points  # the point with user.id was rejected
    assert point_attrs(point) == {"http.method": "GET", "http.status_code": 200}
    assert point.sum == pytest.approx(0.25)
    assert list(point.explicit_bounds) == pytest.approx([0.1, 0.5])
    (orders,) = by_name["orders_total"].sum.data_points
    assert point_attrs(orders) == {"http.status_code": 201}

    (traces,) = _forwarded(otlp_sink, Signal.TRACES)
    assert point_attrs(traces.resource_spans[0].scope_spans[0].spans[0]) == {"http.status_code": 404}

    (logged,) = [line for line in result.stderr.splitlines() if line.startswith(_PARTIAL_SUCCESS)]
    partial = json.loads(logged.removeprefix(_PARTIAL_SUCCESS))
    assert int(partial["rejectedDataPoints"]) == 1  # a number from protobuf, an int64 string from JSON
    assert "forbidden attribute 'user.id'" in partial["errorMessage"]
    assert "forbidden-attribute on http_server_duration_seconds" in partial["errorMessage"]
    if kind == "proto":
        assert logged in (REPO / "README.md").read_text("utf-8")  # the line README's "OTLP/HTTP" quotes


def test_the_export_script_fails_when_nothing_listens(export_js: list[str]) -> None:
    """The issue as filed (ECONNREFUSED on 4318): the script's exit status reports what the SDK only
    logs, so the test above's exit 0 means the exports succeeded."""
    result = _export(export_js, f"127.0.0.1:{free_port()}", "proto", "1000")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ECONNREFUSED" in result.stderr
