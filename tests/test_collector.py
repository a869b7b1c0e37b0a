"""The real OpenTelemetry Collector around the sidecar (issue 19): built from pinned upstream modules
(tools/otelcol), an agent in front of ``otel-contract serve`` and a gateway behind it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_contract.inputs.otlp import read_captures
from otel_contract.otlp import FACTS, Signal
from tests.conftest import CONTRACTS, run_cli
from tests.hostile_requests import legacy_durations
from tests.otelcol import Collector, otelcol_fixture  # noqa: F401 - the fixture
from tests.otlp_builders import GOOD_RESOURCE, attrs, logs_request, metrics_request, traces_request
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
            "service": {
                "pipelines": {signal.value: {"receivers": ["otlp"], "exporters": ["file"]} for signal in Signal}
            },
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
                "service": {
                    "pipelines": {
                        signal.value: {"receivers": ["otlp"], "exporters": ["otlp_grpc"]} for signal in Signal
                    }
                },
            },
        ).start()
        yield agent, sidecar, received
    finally:
        if agent is not None:
            agent.stop()
        sidecar.stop()
        gateway.stop()


def _gateway_requests(received: Path, signal: Signal = Signal.METRICS) -> list[Any]:
    """The requests of ``signal`` in the gateway's file (the file exporter writes every signal to it)."""
    if not received.exists() or not received.read_bytes().endswith(b"\n"):
        return []
    return [capture.request for capture in read_captures(received) if capture.signal is signal]


def _without_empty_messages(message: Any) -> Any:
    """``message`` with every empty singular submessage unset, recursively, in place.

    The Collector's pdata writes an empty scope or span status as present (``"scope": {}``); protobuf's
    equality tells presence apart, OTLP's meaning does not.
    """
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            for item in value:
                _without_empty_messages(item)
        elif value.ByteSize() == 0:
            message.ClearField(field.name)
        else:
            _without_empty_messages(value)
    return message


def _normalized(signal: Signal, request: Any, directory: Path) -> Any:
    """What ``otel-contract normalize`` writes for ``request``."""
    capture = directory / f"input.{signal.value}.pb"
    capture.write_bytes(request.SerializeToString())
    output = directory / f"normalized.{signal.value}.pb"
    result = run_cli("normalize", "-c", str(_CONTRACT), str(capture), "-o", str(output))
    assert result.returncode in (0, 1), result.stderr
    return FACTS[signal].request_type.FromString(output.read_bytes())


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
    forwarded = _gateway_requests(received)
    assert len(forwarded) == 1
    assert forwarded[0] == _normalized(Signal.METRICS, request, tmp_path)
    metric = forwarded[0].resource_metrics[0].scope_metrics[0].metrics[0]
    assert (metric.name, metric.unit) == ("http_server_duration_seconds", "s")
    assert list(metric.histogram.data_points[0].explicit_bounds) == [0.1, 0.5]
    assert len(metric.histogram.data_points) == 1  # the point with user.id was rejected
    # The agent's otlp exporter logs the partial_success the sidecar answered.
    assert wait_until(lambda: "Partial success response" in agent.output(), timeout=15), agent.output()
    logged = next(line for line in agent.output().splitlines() if "Partial success response" in line)
    assert '"dropped_data_points": 1' in logged
    assert "forbidden-attribute on http_server_duration_seconds" in logged


def _attributes(attributes: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in attributes}


def test_spans_and_log_records_reach_the_gateway_with_their_attributes_renamed(
    chain: tuple[Collector, SidecarProcess, Path], tmp_path: Path
) -> None:
    agent, sidecar, received = chain
    span = {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "name": "GET /cart",
        "attributes": attrs({"status_code": "404", "http.method": "GET"}),
        "events": [{"name": "retry", "attributes": attrs({"http_status": "503"})}],
    }
    record = {"body": {"stringValue": "timeout"}, "attributes": attrs({"http_status": "503"}), "severityNumber": 17}
    requests = {
        Signal.TRACES: traces_request([span], resource=GOOD_RESOURCE),
        Signal.LOGS: logs_request([record], resource=GOOD_RESOURCE),
    }
    client = RawClient(agent.endpoint)
    for signal, request in requests.items():
        client.export(signal, request.SerializeToString())
    for signal, request in requests.items():
        assert wait_until(lambda signal=signal: bool(_gateway_requests(received, signal)), timeout=30), (
            f"no {signal.value} reached the gateway\n--- agent\n{agent.output()}\n--- sidecar\n{sidecar.output()}"
        )
        forwarded = [_without_empty_messages(each) for each in _gateway_requests(received, signal)]
        assert forwarded == [_without_empty_messages(_normalized(signal, request, tmp_path))]
    spans = _gateway_requests(received, Signal.TRACES)[0].resource_spans[0].scope_spans[0].spans
    assert _attributes(spans[0].attributes) == {"http.status_code": 404, "http.method": "GET"}
    assert _attributes(spans[0].events[0].attributes) == {"http.status_code": 503}
    logs = _gateway_requests(received, Signal.LOGS)[0].resource_logs[0].scope_logs[0].log_records
    assert _attributes(logs[0].attributes) == {"http.status_code": 503}
