"""Self-telemetry, the HTTP status endpoint and gRPC health, against real servers on loopback.

The main check eats the project's own cooking: the sidecar's /metrics, read back through the
Prometheus input, must pass the engine under contracts/otel-contract-self.yaml without a finding.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from otel_contract import rules
from otel_contract.engine import process_metrics
from otel_contract.findings import Finding
from otel_contract.inputs.prometheus import parse_exposition
from otel_contract.loading import load_contract
from otel_contract.otlp import InputError, Signal
from otel_contract.server.config import OnEngineError
from otel_contract.server.health import OTLP_SERVICES, Health
from otel_contract.server.intake import Refusal, Transport
from otel_contract.server.status import StatusServer
from otel_contract.server.telemetry import CONTENT_TYPE, SelfTelemetry
from tests.conftest import CONTRACTS, TODAY

SELF_CONTRACT = CONTRACTS / "otel-contract-self.yaml"


class _Readiness:
    def __init__(self) -> None:
        self.state = (False, "contract not loaded")

    def __call__(self) -> tuple[bool, str]:
        return self.state


@pytest.fixture
def telemetry() -> Iterator[SelfTelemetry]:
    t = SelfTelemetry(instance_id="test-instance")
    yield t
    t.shutdown()


@pytest.fixture
def readiness() -> _Readiness:
    return _Readiness()


@pytest.fixture
def status(telemetry: SelfTelemetry, readiness: _Readiness) -> Iterator[StatusServer]:
    server = StatusServer("127.0.0.1:0", telemetry, readiness, lambda: {"contract": "otel-contract-self@0.2.0"})
    server.start()
    yield server
    server.stop()


def _get(server: StatusServer, path: str) -> tuple[int, str, bytes]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def _record_everything(telemetry: SelfTelemetry) -> None:
    """Touch every instrument with every label value the contract allows for it."""
    finding = Finding.of(rules.UNKNOWN_METRIC, "x", count=3)
    for signal in Signal:
        for protocol in Transport:
            telemetry.request_processed(
                signal, protocol=protocol, received=10, forwarded=8, rejected=2, findings=[finding], seconds=0.003
            )
            for reason in Refusal:
                telemetry.request_refused(signal, reason, protocol)
        for action in OnEngineError:
            telemetry.engine_failed(signal, action)
        for exporter in ("otlp", "file", "console"):
            for outcome in ("success", "retried", "failed"):
                telemetry.for_exporter(exporter).exported(signal, 8, outcome, 0.02)
            telemetry.for_exporter(exporter).downstream_rejected(signal, 1)
    telemetry.shims_evaluated(points=4, findings=(Finding.of(rules.EXPIRED_SHIM, "x"),))
    for exporter in ("otlp", "file", "console"):
        telemetry.observe_queue(exporter, lambda: 2, lambda: 1000)
    telemetry.contract_reloaded(True)
    telemetry.contract_reloaded(False)
    telemetry.set_contract("otel-contract-self", "0.2.0")


def _run_self_contract(text: str) -> list[Finding]:
    request = parse_exposition(text, "/metrics", service_name="otel-contract")
    return list(process_metrics(request, load_contract(SELF_CONTRACT, today=TODAY)).findings)


def _samples(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


# --- /metrics against the self contract -------------------------------------------------------------


def test_metrics_endpoint_passes_the_self_contract(telemetry: SelfTelemetry, status: StatusServer) -> None:
    _record_everything(telemetry)
    code, content_type, body = _get(status, "/metrics")
    assert code == 200
    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()

    request = parse_exposition(text, "/metrics", service_name="otel-contract")
    exposed = {metric.name for metric in request.resource_metrics[0].scope_metrics[0].metrics}
    contract = load_contract(SELF_CONTRACT, today=TODAY)
    assert exposed == set(contract.metrics), "every contract metric is exposed, and nothing else"

    outcome = process_metrics(request, contract)
    assert [(f.rule.slug, f.metric, f.attribute, f.message) for f in outcome.findings] == []
    assert outcome.rejected == 0 and outcome.items > 0


def test_the_self_contract_check_can_fail(telemetry: SelfTelemetry, status: StatusServer) -> None:
    _record_everything(telemetry)
    text = _get(status, "/metrics")[2].decode()
    text += "# TYPE otel_contract_mystery_total counter\notel_contract_mystery_total 1\n"
    logs = 'otel_contract_received_data_points_total{signal="logs"}'
    assert logs in text
    text = text.replace(logs, 'otel_contract_received_data_points_total{signal="carrier-pigeon"}')
    found = {(f.rule.slug, f.metric) for f in _run_self_contract(text)}
    assert ("unknown-metric", "otel_contract_mystery_total") in found
    assert ("attribute-value", "otel_contract_received_data_points_total") in found
    # And without service.name the resource requirement fires.
    request = parse_exposition(_get(status, "/metrics")[2].decode(), "/metrics")
    slugs = {f.rule.slug for f in process_metrics(request, load_contract(SELF_CONTRACT, today=TODAY)).findings}
    assert slugs == {"missing-resource-attribute"}


def test_recorded_values_come_out_as_recorded(telemetry: SelfTelemetry) -> None:
    flag = Finding.of(rules.UNKNOWN_METRIC, "x", count=3)
    telemetry.request_processed(
        Signal.TRACES, protocol=Transport.HTTP, received=7, forwarded=7, rejected=0, findings=[flag], seconds=0.5
    )
    text = telemetry.exposition().decode()
    assert _samples(text, "otel_contract_received_data_points_total") == [
        'otel_contract_received_data_points_total{signal="traces"} 7.0'
    ]
    assert _samples(text, "otel_contract_flagged_data_points_total") == [
        'otel_contract_flagged_data_points_total{signal="traces"} 3.0'
    ]
    assert _samples(text, "otel_contract_findings_total") == [
        'otel_contract_findings_total{level="warning",rule="unknown-metric",signal="traces"} 3.0'
    ]
    assert 'otel_contract_request_duration_seconds_count{signal="traces"} 1.0' in text


def test_findings_rejected_by_action_are_not_flagged(telemetry: SelfTelemetry) -> None:
    rejected = Finding.of(rules.TYPE_MISMATCH, "x", count=4, action=rules.Action.REJECT)
    flagged = Finding.of(rules.UNKNOWN_METRIC, "y", count=3, action=rules.Action.FLAG)
    telemetry.request_processed(
        Signal.METRICS,
        protocol=Transport.GRPC,
        received=9,
        forwarded=5,
        rejected=4,
        findings=[rejected, flagged],
        seconds=0.001,
    )
    text = telemetry.exposition().decode()
    assert _samples(text, "otel_contract_flagged_data_points_total") == [
        'otel_contract_flagged_data_points_total{signal="metrics"} 3.0'
    ]
    assert 'otel_contract_findings_total{level="error",rule="type-mismatch",signal="metrics"} 4.0' in text


def test_set_contract_moves_the_info_series(telemetry: SelfTelemetry) -> None:
    assert _samples(telemetry.exposition().decode(), "otel_contract_contract_info") == []
    telemetry.set_contract("shop", "1.0.0")
    assert _samples(telemetry.exposition().decode(), "otel_contract_contract_info") == [
        'otel_contract_contract_info{contract="shop",version="1.0.0"} 1.0'
    ]
    telemetry.set_contract("shop", "1.1.0")
    assert _samples(telemetry.exposition().decode(), "otel_contract_contract_info") == [
        'otel_contract_contract_info{contract="shop",version="1.1.0"} 1.0'
    ]


def test_queue_gauges_read_the_callbacks_at_scrape_time(telemetry: SelfTelemetry) -> None:
    size = [0]
    telemetry.observe_queue("otlp", lambda: size[0], lambda: 50)
    size[0] = 17
    text = telemetry.exposition().decode()
    assert _samples(text, "otel_contract_exporter_queue_size") == [
        'otel_contract_exporter_queue_size{exporter="otlp"} 17.0'
    ]
    assert _samples(text, "otel_contract_exporter_queue_capacity") == [
        'otel_contract_exporter_queue_capacity{exporter="otlp"} 50.0'
    ]


def test_instances_are_independent() -> None:
    first, second = SelfTelemetry(instance_id="a"), SelfTelemetry(instance_id="b")
    try:
        first.contract_reloaded(True)
        assert b"otel_contract_contract_reloads_total" in first.exposition()
        assert b"otel_contract_contract_reloads_total" not in second.exposition()
    finally:
        first.shutdown()
        second.shutdown()


# --- /healthz, /readyz, 404 -------------------------------------------------------------------------


def test_readyz_follows_the_callback(status: StatusServer, readiness: _Readiness) -> None:
    assert _get(status, "/readyz")[::2] == (503, b"contract not loaded\n")
    readiness.state = (True, "ok")
    assert _get(status, "/readyz")[::2] == (200, b"ok\n")
    readiness.state = (False, "shutting down")
    assert _get(status, "/readyz")[::2] == (503, b"shutting down\n")


def test_healthz_is_json(status: StatusServer) -> None:
    code, content_type, body = _get(status, "/healthz")
    assert (code, content_type) == (200, "application/json")
    assert json.loads(body) == {"status": "ok", "contract": "otel-contract-self@0.2.0"}


def test_unknown_path_is_404(status: StatusServer) -> None:
    assert _get(status, "/nope")[0] == 404
    assert _get(status, "/metrics?x=1")[0] == 200


def test_stop_frees_the_port(telemetry: SelfTelemetry) -> None:
    server = StatusServer("127.0.0.1:0", telemetry, lambda: (True, "ok"), dict)
    server.start()
    port = server.port
    assert server.address == f"127.0.0.1:{port}"
    server.stop()
    server.stop()
    again = StatusServer(f"127.0.0.1:{port}", telemetry, lambda: (True, "ok"), dict)
    again.start()
    try:
        assert again.port == port and _get(again, "/healthz")[0] == 200
    finally:
        again.stop()


# --- connection bounds ------------------------------------------------------------------------------


@contextmanager
def _idle_connections(server: StatusServer, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections to ``server`` that send nothing (half-open, as far as it can tell)."""
    with ExitStack() as stack:
        yield [stack.enter_context(socket.create_connection(("127.0.0.1", server.port))) for _ in range(count)]


def _closed_by_server(connection: socket.socket, within: float = 10.0) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_connections_pin_no_threads_and_health_still_answers(status: StatusServer) -> None:
    assert _get(status, "/healthz")[0] == 200  # its worker threads exist from now on
    threads = threading.active_count()
    with _idle_connections(status, 200):
        # Connections are accepted in order: once this one is answered, all 200 have been accepted.
        assert _get(status, "/healthz")[0] == 200
        assert threading.active_count() <= threads + 2  # a thread per connection made it 200 more


@contextmanager
def _bounded(telemetry: SelfTelemetry, readiness: _Readiness, **bounds: Any) -> Iterator[StatusServer]:
    server = StatusServer("127.0.0.1:0", telemetry, readiness, dict, **bounds)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_connection_beyond_the_bound_closes_the_oldest_idle_one(
    telemetry: SelfTelemetry, readiness: _Readiness
) -> None:
    with _bounded(telemetry, readiness, max_connections=4) as server, _idle_connections(server, 4) as idle:
        assert _get(server, "/healthz")[0] == 200  # served although all four slots were taken
        assert _closed_by_server(idle[0])


def test_an_idle_or_slow_connection_is_closed_after_the_idle_timeout(
    telemetry: SelfTelemetry, readiness: _Readiness
) -> None:
    with _bounded(telemetry, readiness, idle_timeout=0.2) as server:
        with _idle_connections(server, 2) as (idle, slow):
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            assert _closed_by_server(idle)
            assert _closed_by_server(slow)
        assert _get(server, "/healthz")[0] == 200


def test_only_get_is_served(status: StatusServer) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{status.port}/healthz", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    with refused.value as error:
        assert (error.code, error.headers["Allow"]) == (405, "GET")


# --- gRPC health ------------------------------------------------------------------------------------


def test_grpc_health_serving_and_not_serving() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health = Health()
    health.add_to(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # generated stubs declare no methods for mypy

        def statuses() -> list[Any]:
            return [
                stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
                for name in ("", *OTLP_SERVICES)
            ]

        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        assert statuses() == [not_serving] * 4
        health.set_serving(True)
        assert statuses() == [serving] * 4
        health.set_serving(False)
        assert statuses() == [not_serving] * 4
        with pytest.raises(grpc.RpcError) as error:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        assert error.value.code() is grpc.StatusCode.NOT_FOUND
        health.shutdown()
        health.set_serving(True)
        assert statuses() == [not_serving] * 4
    finally:
        channel.close()
        server.stop(grace=None)


# --- parse_exposition --------------------------------------------------------------------------------

EXPOSITION = """\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",code="200"} 1027 1700000000000
http_requests_total{method="POST",code="500"} 3
# HELP queue_depth Items waiting.
# TYPE queue_depth gauge
queue_depth 4.5
# TYPE latency_seconds histogram
latency_seconds_bucket{route="/a",le="0.1"} 2
latency_seconds_bucket{route="/a",le="0.5"} 5
latency_seconds_bucket{route="/a",le="+Inf"} 6
latency_seconds_sum{route="/a"} 1.75
latency_seconds_count{route="/a"} 6
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds{quantile="0.99"} 0.9
rpc_seconds_sum 12.5
rpc_seconds_count 40
legacy_thing{a="b"} 7
"""


def test_parse_exposition_maps_every_type() -> None:
    request = parse_exposition(EXPOSITION, "x.prom", service_name="shop", time_unix_nano=42)
    (resource_metrics,) = request.resource_metrics
    assert [(kv.key, kv.value.string_value) for kv in resource_metrics.resource.attributes] == [
        ("service.name", "shop")
    ]
    metrics = {m.name: m for m in resource_metrics.scope_metrics[0].metrics}
    assert list(metrics) == ["http_requests_total", "queue_depth", "latency_seconds", "rpc_seconds", "legacy_thing"]

    counter = metrics["http_requests_total"]
    assert counter.WhichOneof("data") == "sum" and counter.description == "Requests."
    assert counter.sum.is_monotonic and counter.sum.aggregation_temporality == 2
    first, second = counter.sum.data_points
    assert {kv.key: kv.value.string_value for kv in first.attributes} == {"method": "GET", "code": "200"}
    assert (first.as_double, first.time_unix_nano) == (1027.0, 1_700_000_000_000_000_000)
    assert (second.as_double, second.time_unix_nano) == (3.0, 42)

    assert metrics["queue_depth"].gauge.data_points[0].as_double == 4.5
    assert metrics["legacy_thing"].WhichOneof("data") == "gauge"

    histogram = metrics["latency_seconds"].histogram
    assert histogram.aggregation_temporality == 2
    (point,) = histogram.data_points
    assert {kv.key: kv.value.string_value for kv in point.attributes} == {"route": "/a"}
    assert list(point.explicit_bounds) == [0.1, 0.5]
    assert list(point.bucket_counts) == [2, 3, 1]
    assert (point.count, point.sum) == (6, 1.75)

    (summary,) = metrics["rpc_seconds"].summary.data_points
    assert [(q.quantile, q.value) for q in summary.quantile_values] == [(0.5, 0.2), (0.99, 0.9)]
    assert (summary.count, summary.sum) == (40, 12.5)
    assert not summary.attributes


def test_parse_exposition_without_service_name_has_a_bare_resource() -> None:
    request = parse_exposition("up 1\n", "x.prom")
    assert not request.resource_metrics[0].resource.attributes
    assert request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0].as_double == 1.0


def test_parse_exposition_keeps_nan_for_the_engine() -> None:
    request = parse_exposition("# TYPE c_total counter\nc_total NaN\n", "x.prom")
    assert math.isnan(request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].as_double)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('broken{a="b" 1\n', "not Prometheus text exposition format"),
        ("# TYPE\n", "not Prometheus text exposition format"),
        ("metric value\n", "not Prometheus text exposition format"),
        ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', 'no le="+Inf" bucket'),
        ('# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\n', "cumulative bucket counts decrease"),
        ('# TYPE h histogram\nh_bucket{le="x"} 1\n', "label le='x' is not a number"),
        ('# TYPE h histogram\nh_bucket{le="+Inf"} 1.5\n', "is not a non-negative integer"),
    ],
)
def test_parse_exposition_errors(text: str, reason: str) -> None:
    with pytest.raises(InputError) as error:
        parse_exposition(text, "bad.prom")
    assert error.value.source == "bad.prom"
    # The parser tells the line of a syntax error; the histogram checks judge a whole family.
    assert error.value.line == (1 if reason.startswith("not Prometheus") else None)
    assert reason in error.value.reason
    assert str(error.value).startswith("bad.prom:")


# --- OTLP push ---------------------------------------------------------------------------------------


def test_otlp_push_passes_the_self_contract_too() -> None:
    received: list[ExportMetricsServiceRequest] = []

    def export(request: ExportMetricsServiceRequest, _context: Any) -> ExportMetricsServiceResponse:
        received.append(request)
        return ExportMetricsServiceResponse()

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                export,
                request_deserializer=ExportMetricsServiceRequest.FromString,
                response_serializer=ExportMetricsServiceResponse.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        # A long interval: the export under test is the final one that shutdown() pushes.
        telemetry = SelfTelemetry(instance_id="push", otlp_endpoint=f"127.0.0.1:{port}", otlp_interval=3600)
        _record_everything(telemetry)
        telemetry.shutdown()
    finally:
        server.stop(grace=None)
    assert received, "shutdown pushed the last collection"
    request = received[-1]
    resource = {kv.key: kv.value.string_value for kv in request.resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "otel-contract" and resource["service.instance.id"] == "push"
    outcome = process_metrics(request, load_contract(SELF_CONTRACT, today=TODAY))
    assert [(f.rule.slug, f.metric, f.attribute, f.message) for f in outcome.findings] == []
    names = {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names == set(load_contract(SELF_CONTRACT, today=TODAY).metrics)
