"""The real OpenTelemetry Collector around the sidecar (issue 19): built from pinned upstream modules
(tools/otelcol), an agent in front of ``otel-contract serve`` and a gateway behind it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract.inputs.otlp import read_captures
from otel_contract.otlp import Signal
from tests.conftest import CONTRACTS, run_cli
from tests.hostile_requests import legacy_durations
from tests.otelcol import Collector, otelcol_fixture  # noqa: F401 - the fixture
from tests.otlp_builders import GOOD_RESOURCE, metrics_request
from tests.sidecar_harness import RawClient, SidecarProcess, wait_until

_CONTRACT = CONTRACTS / "ecommerce.yaml"


def test_the_collector_is_the_pinned_release_with_the_components_the_tests_use(otelcol: str) -> None:
    listed = subprocess.run([otelcol, "components"], capture_output=True, text=True, timeout=60, check=True).stdout
    components = yaml.safe_load(listed)
    assert components["buildinfo"]["version"] == "0.161.0"
    names = {kind: {entry["name"] for entry in components[kind]} for kind in ("receivers", "processors", "exporters")}
    assert names["receivers"] == {"otlp"}
    assert names["processors"] == {"batch", "memory_limiter", "transform", "filter", "resource", "attributes"}
    # At this release the otlp exporters are otlp_grpc and otlp_http (otlp and otlphttp are their old names).
    assert names["exporters"] == {"otlp_grpc", "otlp_http", "debug", "file"}


@pytest.fixture
def chain(otelcol: str, tmp_path: Path) -> Iterator[tuple[Collector, SidecarProcess, Path]]:
    """Agent (otlp receiver -> otlp_grpc exporter) -> otel-contract serve -> gateway (otlp receiver -> file)."""
    received = tmp_path / "gateway.jsonl"
    gateway = Collector(
        otelcol,
        tmp_path,
        "gateway",
        {
            "exporters": {"file": {"path": str(received), "flush_interval": "100ms"}},
            "service": {"pipelines": {"metrics": {"receivers": ["otlp"], "exporters": ["file"]}}},
        },
    )
    sidecar = SidecarProcess("--contract", str(_CONTRACT), "--exporter-endpoint", gateway.endpoint)
    agent: Collector | None = None
    try:
        gateway.start()
        sidecar.start()
        agent = Collector(
            otelcol,
            tmp_path,
            "agent",
            {
                "exporters": {"otlp_grpc": {"endpoint": sidecar.endpoint, "tls": {"insecure": True}}},
                "service": {"pipelines": {"metrics": {"receivers": ["otlp"], "exporters": ["otlp_grpc"]}}},
            },
        ).start()
        yield agent, sidecar, received
    finally:
        if agent is not None:
            agent.stop()
        sidecar.stop()
        gateway.stop()


def _gateway_requests(received: Path) -> list[ExportMetricsServiceRequest]:
    if not received.exists() or not received.read_bytes().endswith(b"\n"):
        return []
    return [capture.request for capture in read_captures(received)]  # type: ignore[misc]


def test_the_gateway_receives_what_normalize_writes_and_the_agent_logs_the_rejection(
    chain: tuple[Collector, SidecarProcess, Path], tmp_path: Path
) -> None:
    agent, sidecar, received = chain
    # A legacy histogram in ms with a legacy attribute key, one of its points carrying the forbidden user.id.
    request = metrics_request(legacy_durations(), resource=GOOD_RESOURCE)
    RawClient(agent.endpoint).export(Signal.METRICS, request.SerializeToString())

    assert wait_until(lambda: bool(_gateway_requests(received)), timeout=30), (
        f"nothing reached the gateway\n--- agent\n{agent.output()}\n--- sidecar\n{sidecar.output()}"
    )
    capture = tmp_path / "input.metrics.pb"
    capture.write_bytes(request.SerializeToString())
    normalized = tmp_path / "normalized.pb"
    result = run_cli("normalize", "-c", str(_CONTRACT), str(capture), "-o", str(normalized))
    assert result.returncode in (0, 1), result.stderr
    expected = ExportMetricsServiceRequest.FromString(normalized.read_bytes())
    forwarded = _gateway_requests(received)
    assert len(forwarded) == 1
    assert forwarded[0] == expected
    metric = forwarded[0].resource_metrics[0].scope_metrics[0].metrics[0]
    assert (metric.name, metric.unit) == ("http_server_duration_seconds", "s")
    assert list(metric.histogram.data_points[0].explicit_bounds) == [0.1, 0.5]
    assert len(metric.histogram.data_points) == 1  # the point with user.id was rejected
    # The agent's otlp exporter logs the partial_success the sidecar answered.
    assert wait_until(lambda: "Partial success response" in agent.output(), timeout=15), agent.output()
    logged = next(line for line in agent.output().splitlines() if "Partial success response" in line)
    assert '"dropped_data_points": 1' in logged
    assert "forbidden-attribute on http_server_duration_seconds" in logged
