"""Prometheus text 0.0.4 and OpenMetrics read into OTLP: real captures from prometheus_client and the
OpenTelemetry SDK's Prometheus exporter, a hand-written OpenMetrics file, streaming, and errors."""

from __future__ import annotations

import io
import math
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from otel_contract import rules
from otel_contract.inputs.otlp import Capture, read_captures
from otel_contract.inputs.prometheus import (
    SCOPE,
    is_openmetrics,
    parse_exposition,
    read_exposition,
    scan_targets,
)
from otel_contract.otlp import InputError

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"
CUMULATIVE = 2
NOW = 1_700_000_000_123_000_000


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _read(text: str, *, openmetrics: bool, max_points: int | None = None, source: str = "x") -> list[Capture]:
    data = io.BytesIO(text.encode("utf-8"))
    targets = scan_targets(data, source, openmetrics=openmetrics)
    data.seek(0)
    return list(
        read_exposition(
            data, source, openmetrics=openmetrics, targets=targets, time_unix_nano=NOW, max_points=max_points
        )
    )


def _request(text: str, *, openmetrics: bool) -> ExportMetricsServiceRequest:
    (capture,) = _read(text, openmetrics=openmetrics)
    assert isinstance(capture.request, ExportMetricsServiceRequest)
    return capture.request


def _metrics(request: ExportMetricsServiceRequest) -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                assert metric.name not in found, f"{metric.name} twice"
                found[metric.name] = metric
    return found


def _attrs(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def _resource(request: ExportMetricsServiceRequest, index: int = 0) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in request.resource_metrics[index].resource.attributes}


def _prom_type(metric: Metric) -> str:
    (entry,) = [kv for kv in metric.metadata if kv.key == "prometheus.type"]
    return entry.value.string_value


def _points(metric: Metric) -> Any:
    kind = metric.WhichOneof("data")
    assert kind is not None
    return getattr(metric, kind).data_points


# ---------------------------------------------------------------------------
# prometheus_client: every metric type, in both formats
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRegistry:
    registry: CollectorRegistry
    created_from: int  # the metrics were created between these two times (Unix nanoseconds)
    created_to: int


@pytest.fixture(scope="module")
def client() -> ClientRegistry:
    created_from = time.time_ns()
    registry = CollectorRegistry()
    orders = Counter("shop_orders", "Orders placed", ["method"], registry=registry)
    orders.labels("GET").inc(3)
    orders.labels("POST").inc()
    Gauge("shop_queue_bytes", "Bytes queued", registry=registry, unit="bytes").set(512)
    latency = Histogram("shop_latency_seconds", "Latency", ["route"], registry=registry, buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 2.0):
        latency.labels("/cart").observe(seconds)
    Summary("shop_rpc_seconds", "RPC time", registry=registry).observe(0.25)
    Info("shop_build", "Build", registry=registry).info({"version": "1.2.0"})
    Enum("shop_state", "State", states=["up", "down"], registry=registry).state("up")
    return ClientRegistry(registry, created_from, time.time_ns())


def test_prometheus_client_text_0_0_4(client: ClientRegistry) -> None:
    request = _request(generate_latest(client.registry).decode(), openmetrics=False)
    (resource_metrics,) = request.resource_metrics
    assert not resource_metrics.HasField("resource")
    assert (resource_metrics.scope_metrics[0].scope.name, len(resource_metrics.scope_metrics)) == (SCOPE, 1)
    metrics = _metrics(request)
    # 0.0.4 has no _created, info or stateset: prometheus_client writes gauges, and so Prometheus stores them.
    assert list(metrics) == [
        "shop_orders_total",
        "shop_orders_created",
        "shop_queue_bytes",
        "shop_latency_seconds",
        "shop_latency_seconds_created",
        "shop_rpc_seconds",
        "shop_rpc_seconds_created",
        "shop_build_info",
        "shop_state",
    ]
    orders = metrics["shop_orders_total"]
    assert orders.description == "Orders placed" and orders.unit == ""
    assert (orders.sum.is_monotonic, orders.sum.aggregation_temporality) == (True, CUMULATIVE)
    assert _prom_type(orders) == "counter"
    assert [(_attrs(p), p.as_double, p.time_unix_nano, p.start_time_unix_nano) for p in orders.sum.data_points] == [
        ({"method": "GET"}, 3.0, NOW, 0),
        ({"method": "POST"}, 1.0, NOW, 0),
    ]
    assert metrics["shop_orders_created"].WhichOneof("data") == "gauge"
    assert metrics["shop_queue_bytes"].gauge.data_points[0].as_double == 512.0
    assert metrics["shop_queue_bytes"].unit == ""  # 0.0.4 carries no units

    (latency,) = metrics["shop_latency_seconds"].histogram.data_points
    assert metrics["shop_latency_seconds"].histogram.aggregation_temporality == CUMULATIVE
    assert _attrs(latency) == {"route": "/cart"}
    assert (list(latency.explicit_bounds), list(latency.bucket_counts)) == ([0.1, 1.0], [1, 1, 1])
    assert (latency.count, latency.sum) == (3, 2.55)

    (rpc,) = metrics["shop_rpc_seconds"].summary.data_points
    assert (rpc.count, rpc.sum, list(rpc.quantile_values)) == (1, 0.25, [])
    assert [(_attrs(p), p.as_double) for p in metrics["shop_state"].gauge.data_points] == [
        ({"shop_state": "up"}, 1.0),
        ({"shop_state": "down"}, 0.0),
    ]
    assert _attrs(metrics["shop_build_info"].gauge.data_points[0]) == {"version": "1.2.0"}


def test_prometheus_client_openmetrics(client: ClientRegistry) -> None:
    text = generate_openmetrics(client.registry).decode()
    assert is_openmetrics(io.BytesIO(text.encode()))
    request = _request(text, openmetrics=True)
    metrics = _metrics(request)
    assert list(metrics) == [
        "shop_orders_total",
        "shop_queue_bytes",
        "shop_latency_seconds",
        "shop_rpc_seconds",
        "shop_build_info",
        "shop_state",
    ]
    orders = metrics["shop_orders_total"]
    assert orders.sum.is_monotonic and _prom_type(orders) == "counter"
    # _created (float seconds, hence the millisecond of slack) is the start time.
    created_window = range(client.created_from - 10**6, client.created_to + 10**6)
    starts = [p.start_time_unix_nano for p in orders.sum.data_points]
    starts += [metrics[name].histogram.data_points[0].start_time_unix_nano for name in ["shop_latency_seconds"]]
    starts += [metrics["shop_rpc_seconds"].summary.data_points[0].start_time_unix_nano]
    assert len(starts) == 4 and all(start in created_window for start in starts)
    assert [p.time_unix_nano for p in orders.sum.data_points] == [NOW, NOW]
    assert metrics["shop_queue_bytes"].unit == "By"  # UNIT bytes, in OpenTelemetry's spelling
    assert list(metrics["shop_latency_seconds"].histogram.data_points[0].bucket_counts) == [1, 1, 1]

    build = metrics["shop_build_info"]  # Info: a non-monotonic Sum named after its sample
    assert (build.WhichOneof("data"), build.sum.is_monotonic, _prom_type(build)) == ("sum", False, "info")
    assert build.sum.aggregation_temporality == CUMULATIVE
    state = metrics["shop_state"]  # StateSet: a non-monotonic Sum
    assert (state.WhichOneof("data"), state.sum.is_monotonic, _prom_type(state)) == ("sum", False, "stateset")
    assert [p.as_double for p in state.sum.data_points] == [1.0, 0.0]


# ---------------------------------------------------------------------------
# The OpenTelemetry SDK's Prometheus exporter: target_info and otel_scope_* labels
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_registry() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    resource = Resource.create({"service.name": "checkout", "k8s.pod.name": "checkout-7d9f"})
    provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    meter = provider.get_meter("checkout.http", "1.4.0")
    meter.create_counter("http.server.requests", description="Requests").add(5, {"http.route": "/cart"})
    duration = meter.create_histogram("http.server.duration", unit="s", description="Latency")
    duration.record(0.2, {"http.route": "/cart"})
    yield registry
    provider.shutdown()


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_sdk_prometheus_exporter(sdk_registry: CollectorRegistry, openmetrics: bool) -> None:
    text = (generate_openmetrics if openmetrics else generate_latest)(sdk_registry).decode()
    assert "target_info" in text and 'otel_scope_name="checkout.http"' in text
    request = _request(text, openmetrics=openmetrics)
    (resource_metrics,) = request.resource_metrics
    resource = _resource(request)
    # target_info labels become the resource unaltered, sanitized keys and all (spec: Resource Attributes).
    assert resource["service_name"] == "checkout" and resource["k8s_pod_name"] == "checkout-7d9f"
    assert resource["telemetry_sdk_language"] == "python"
    (scope_metrics,) = resource_metrics.scope_metrics
    assert (scope_metrics.scope.name, scope_metrics.scope.version) == ("checkout.http", "1.4.0")
    metrics = _metrics(request)
    assert set(metrics) == {"http_server_requests_total", "http_server_duration_seconds"}  # no target_info
    (requests,) = metrics["http_server_requests_total"].sum.data_points
    assert (_attrs(requests), requests.as_double) == ({"http_route": "/cart"}, 5.0)  # no otel_scope_* left
    duration = metrics["http_server_duration_seconds"]
    assert duration.unit == ("s" if openmetrics else "")
    (point,) = duration.histogram.data_points
    assert (point.count, point.sum, sum(point.bucket_counts)) == (1, 0.2, 1)
    assert list(point.explicit_bounds)[:3] == [0.0, 5.0, 10.0]  # the SDK's default bounds
    assert len(point.bucket_counts) == len(point.explicit_bounds) + 1


# ---------------------------------------------------------------------------
# A hand-written OpenMetrics file: units, _created, exemplars, timestamps, targets, scopes
# ---------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"

HAND_WRITTEN = f"""\
# TYPE otel_scope info
otel_scope_info{{otel_scope_name="cart",otel_scope_version="2.0",team="checkout"}} 1
# TYPE http_requests counter
# HELP http_requests Requests served.
http_requests_total{{job="shop",instance="10.0.0.7:8080",code="200"}} 1027 1700000000.5 # {{trace_id="{TRACE_ID}",span_id="{SPAN_ID}",user="u1"}} 1 1699999999.25
http_requests_created{{job="shop",instance="10.0.0.7:8080",code="200"}} 1699990000.5 1700000000.5
# TYPE http_request_duration_seconds histogram
# UNIT http_request_duration_seconds seconds
http_request_duration_seconds_bucket{{otel_scope_name="cart",otel_scope_version="2.0",le="0.25"}} 4 # {{trace_id="{TRACE_ID}"}} 0.2
http_request_duration_seconds_bucket{{otel_scope_name="cart",otel_scope_version="2.0",le="1.0"}} 6
http_request_duration_seconds_bucket{{otel_scope_name="cart",otel_scope_version="2.0",le="+Inf"}} 7
http_request_duration_seconds_count{{otel_scope_name="cart",otel_scope_version="2.0"}} 7
http_request_duration_seconds_sum{{otel_scope_name="cart",otel_scope_version="2.0"}} 3.5
http_request_duration_seconds_created{{otel_scope_name="cart",otel_scope_version="2.0"}} 1699990000
# TYPE payload_bytes histogram
# UNIT payload_bytes bytes
payload_bytes_bucket{{le="1024.0"}} 1
payload_bytes_bucket{{le="+Inf"}} 2
# TYPE queue_waiting gaugehistogram
queue_waiting_bucket{{le="1.0"}} 2
queue_waiting_bucket{{le="+Inf"}} 3
queue_waiting_gcount 3
queue_waiting_gsum 2.5
# TYPE disk_ratio gauge
# UNIT disk_ratio ratio
disk_ratio{{device="sda"}} 0.25
# TYPE throughput_bytes_per_second gauge
# UNIT throughput_bytes_per_second bytes_per_second
throughput_bytes_per_second 1e6
# TYPE rpc_seconds summary
rpc_seconds{{quantile="0.5"}} 0.2
rpc_seconds{{quantile="0.99"}} 0.9
rpc_seconds_count 40
rpc_seconds_created 1699990000
# TYPE mystery unknown
mystery{{a="b"}} 7
# TYPE target info
target_info{{job="shop",instance="10.0.0.7:8080",k8s_pod_name="shop-1",k8s_namespace_name="prod"}} 1
# EOF
"""  # noqa: E501 - exposition lines are as long as they are


@pytest.fixture(scope="module")
def hand_written() -> Capture:
    (capture,) = _read(HAND_WRITTEN, openmetrics=True, source="hand.om")
    return capture


def test_hand_written_resources_follow_job_instance_and_target_info(hand_written: Capture) -> None:
    request = hand_written.request
    assert isinstance(request, ExportMetricsServiceRequest)
    resources = [_resource(request, i) for i in range(len(request.resource_metrics))]
    # The counter's series name a target: job/instance become service.name/service.instance.id, and the
    # target_info with the same job and instance (last in the file) adds its labels, unaltered.
    assert resources == [
        {
            "service.name": "shop",
            "service.instance.id": "10.0.0.7:8080",
            "k8s_pod_name": "shop-1",
            "k8s_namespace_name": "prod",
        },
        {},
    ]
    (counter,) = request.resource_metrics[0].scope_metrics[0].metrics
    assert request.resource_metrics[0].scope_metrics[0].scope.name == SCOPE
    (point,) = counter.sum.data_points
    assert _attrs(point) == {"code": "200"}  # job and instance are the resource now
    assert counter.description == "Requests served."
    assert point.time_unix_nano == 1_700_000_000_500_000_000
    assert point.start_time_unix_nano == 1_699_990_000_500_000_000
    (exemplar,) = point.exemplars
    assert (exemplar.trace_id.hex(), exemplar.span_id.hex()) == (TRACE_ID, SPAN_ID)
    assert {kv.key: kv.value.string_value for kv in exemplar.filtered_attributes} == {"user": "u1"}
    assert (exemplar.as_double, exemplar.time_unix_nano) == (1.0, 1_699_999_999_250_000_000)


def test_hand_written_scopes_units_and_types(hand_written: Capture) -> None:
    request = hand_written.request
    assert isinstance(request, ExportMetricsServiceRequest)
    scopes = {sm.scope.name: sm for sm in request.resource_metrics[1].scope_metrics}
    cart = scopes["cart"]
    assert cart.scope.version == "2.0"
    assert {kv.key: kv.value.string_value for kv in cart.scope.attributes} == {"team": "checkout"}  # otel_scope_info
    (duration,) = cart.metrics
    assert (duration.name, duration.unit) == ("http_request_duration_seconds", "s")
    (point,) = duration.histogram.data_points
    assert not point.attributes  # otel_scope_* labels are the scope, not attributes
    assert (list(point.explicit_bounds), list(point.bucket_counts), point.count, point.sum) == (
        [0.25, 1.0],
        [4, 2, 1],
        7,
        3.5,
    )
    assert point.start_time_unix_nano == 1_699_990_000 * 10**9
    assert [(e.trace_id.hex(), e.as_double) for e in point.exemplars] == [(TRACE_ID, 0.2)]

    metrics = {m.name: m for m in scopes[SCOPE].metrics}
    # payload_bytes has no _count (dropped, spec: Histograms); queue_waiting is a gaugehistogram (dropped).
    assert set(metrics) == {"disk_ratio", "throughput_bytes_per_second", "rpc_seconds", "mystery"}
    assert metrics["disk_ratio"].unit == "1" and metrics["throughput_bytes_per_second"].unit == "By/s"
    (rpc,) = metrics["rpc_seconds"].summary.data_points
    assert (rpc.count, rpc.sum, [(q.quantile, q.value) for q in rpc.quantile_values]) == (
        40,
        0.0,  # no _sum: zero, as the spec says
        [(0.5, 0.2), (0.99, 0.9)],
    )
    assert rpc.start_time_unix_nano == 1_699_990_000 * 10**9
    mystery = metrics["mystery"]
    assert (mystery.WhichOneof("data"), _prom_type(mystery)) == ("gauge", "unknown")


def test_hand_written_drops_are_findings(hand_written: Capture) -> None:
    findings = {f.metric: f for f in hand_written.findings}
    assert set(findings) == {"payload_bytes", "queue_waiting"}
    payload = findings["payload_bytes"]
    assert (payload.rule, payload.count, payload.source) == (rules.INVALID_DATA_POINT, 1, "hand.om")
    assert "no payload_bytes_count sample" in payload.message
    assert "gauge histogram" in findings["queue_waiting"].message
    assert findings["queue_waiting"].level is rules.Level.WARNING


# ---------------------------------------------------------------------------
# Text 0.0.4 specifics
# ---------------------------------------------------------------------------


def test_counter_is_named_after_its_sample() -> None:
    text = (
        "# TYPE legacy counter\nlegacy 3\n"  # a 0.0.4 counter without _total stays as exposed
        "# TYPE modern_total counter\nmodern_total 4\n"
        "# TYPE again counter\nagain 1\n# TYPE again_total counter\nagain_total 2\n"
    )
    metrics = _metrics(_request(text, openmetrics=False))
    assert {name: (m.sum.is_monotonic, m.sum.data_points[0].as_double) for name, m in metrics.items()} == {
        "legacy": (True, 3.0),
        "modern_total": (True, 4.0),
        "again": (True, 1.0),
        "again_total": (True, 2.0),
    }


def test_untyped_and_timestamps_in_text_format() -> None:
    text = '# HELP thing A thing.\nthing{a="b"} 7 1700000000123\nbare 1\n'
    metrics = _metrics(_request(text, openmetrics=False))
    thing = metrics["thing"]
    assert (thing.WhichOneof("data"), _prom_type(thing), thing.description) == ("gauge", "unknown", "A thing.")
    assert thing.gauge.data_points[0].time_unix_nano == 1_700_000_000_123_000_000  # milliseconds, exactly
    assert metrics["bare"].gauge.data_points[0].time_unix_nano == NOW


def test_histogram_without_count_is_dropped_with_a_finding() -> None:
    text = '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\n'
    (capture,) = _read(text, openmetrics=False, source="h.prom")
    assert isinstance(capture.request, ExportMetricsServiceRequest)
    assert _metrics(capture.request) == {}
    (finding,) = capture.findings
    assert (finding.rule, finding.metric, finding.count) == (rules.INVALID_DATA_POINT, "h", 1)


def test_nan_and_a_family_in_pieces_stay_for_the_engine() -> None:
    text = "# TYPE c_total counter\nc_total NaN\nother 1\n# TYPE c_total counter\nc_total 2\n"
    metrics = _metrics(_request(text, openmetrics=False))
    assert math.isnan(metrics["c_total"].sum.data_points[0].as_double)
    assert len(metrics["c_total"].sum.data_points) == 2  # the two pieces join into one metric


# ---------------------------------------------------------------------------
# Streaming: bounded requests, each with the resource of the whole exposition
# ---------------------------------------------------------------------------


def test_large_exposition_streams_in_bounded_requests() -> None:
    # Go's client sorts families by name, so target_info can come after the metrics it describes.
    lines = ["# TYPE a_total counter"] + [f'a_total{{n="{i}"}} {i}' for i in range(7)]
    lines += ["# TYPE target_info gauge", 'target_info{k8s_pod_name="p",k8s_namespace_name="ns"} 1', "z 1"]
    captures = _read("\n".join(lines) + "\n", openmetrics=False, max_points=3)
    sizes = [sum(len(_points(m)) for m in _metrics(c.request).values()) for c in captures]  # type: ignore[arg-type]
    assert sizes == [3, 3, 2]
    for capture in captures:
        assert isinstance(capture.request, ExportMetricsServiceRequest)
        assert _resource(capture.request) == {"k8s_pod_name": "p", "k8s_namespace_name": "ns"}
    values = [p.as_double for c in captures for m in _metrics(c.request).values() for p in _points(m)]  # type: ignore[arg-type]
    assert values == [0, 1, 2, 3, 4, 5, 6, 1]


def test_empty_exposition_is_one_empty_request() -> None:
    # No resource either: an exposition without samples is no data, so the engine has nothing to judge.
    for text in ("", "# HELP up Up.\n# TYPE up gauge\n"):
        (capture,) = _read(text, openmetrics=False)
        assert capture.request == ExportMetricsServiceRequest()


def test_parse_exposition_keeps_its_interface() -> None:
    request = parse_exposition("up 1\n", "x.prom", service_name="shop", time_unix_nano=42)
    assert _resource(request) == {"service.name": "shop"}
    (point,) = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points
    assert (point.as_double, point.time_unix_nano) == (1.0, 42)
    om = parse_exposition("# TYPE c counter\nc_total 1\n# EOF\n", "x.om")  # sniffed by its # EOF
    assert _metrics(om)["c_total"].sum.is_monotonic


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a 1\n# EOF\n", True), ("a 1\n# EOF", True), ("a 1\n# EOF\n\n", True), ("a 1\n", False), ("# EOF x\n", False)],
)
def test_is_openmetrics(text: str, expected: bool) -> None:
    stream = io.BytesIO(text.encode())
    stream.seek(1)
    assert is_openmetrics(stream) is expected
    assert stream.tell() == 1


# ---------------------------------------------------------------------------
# Errors name the source and, when the parser tells, the line
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "openmetrics", "line", "reason"),
    [
        ('ok 1\nbroken{a="b" 1\n', False, 2, "not Prometheus text exposition format: could not convert string"),
        ("ok 1\n\n# TYPE\n", False, 3, "not Prometheus text exposition format"),
        ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', False, None, "histogram 'h' has no le=\"+Inf\" bucket"),
        ('# TYPE h histogram\nh_bucket{le="x"} 1\nh_count 1\n', False, None, "label le='x' is not a number"),
        ("a 1\n", True, None, "not OpenMetrics text: Missing # EOF at end"),
        ("a 1\n\n# EOF\n", True, 2, "not OpenMetrics text: Received blank line"),
        (
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\nh_sum 1\nb 1\n# EOF\n',
            True,
            None,
            "+Inf bucket missing: h",
        ),
        ("# TYPE c counter\nc_total -1\n# EOF\n", True, 2, "Counter-like samples cannot be negative"),
    ],
)
def test_errors(text: str, openmetrics: bool, line: int | None, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        _read(text, openmetrics=openmetrics, source="bad.prom")
    error = caught.value
    assert (error.source, error.line) == ("bad.prom", line)
    assert reason in error.reason
    assert "\n" not in str(error)


def test_not_utf8_names_the_line() -> None:
    with pytest.raises(InputError) as caught:
        list(read_exposition(io.BytesIO(b'a 1\nb{x="\xe9"} 2\n'), "bad.prom", openmetrics=False))
    assert str(caught.value) == "bad.prom:2: not UTF-8 text (byte 0xe9)"


def test_errors_in_target_info_are_found_by_the_scan() -> None:
    with pytest.raises(InputError) as caught:
        scan_targets(io.BytesIO(b'a 1\ntarget_info{x="a"} one\n'), "t.prom", openmetrics=False)
    assert (caught.value.line, caught.value.reason.startswith("not Prometheus text exposition format")) == (2, True)


# ---------------------------------------------------------------------------
# The shop captures: one data set, four formats
# ---------------------------------------------------------------------------


def _shop_points(captures: list[Capture]) -> dict[tuple[Any, ...], Any]:
    points: dict[tuple[Any, ...], Any] = {}
    for capture in captures:
        assert isinstance(capture.request, ExportMetricsServiceRequest)
        for resource_metrics in capture.request.resource_metrics:
            assert not resource_metrics.resource.attributes
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in _points(metric):
                        key = (scope_metrics.scope.name, scope_metrics.scope.version, metric.name, kind)
                        key += (metric.unit, metric.sum.is_monotonic, tuple(sorted(_attrs(point).items())))
                        if kind == "histogram":
                            value: Any = (
                                point.count,
                                point.sum,
                                list(point.bucket_counts),
                                list(point.explicit_bounds),
                            )
                        else:
                            value = point.as_double if point.HasField("as_double") else float(point.as_int)
                        points[key] = value
    return points


def test_shop_captures_hold_the_same_points() -> None:
    otlp = _shop_points(list(read_captures(CAPTURES / "shop.jsonl")))
    assert otlp == _shop_points(list(read_captures(CAPTURES / "shop.pb")))
    assert len(otlp) == 5
    for name in ("shop.prom", "shop.om"):
        path = CAPTURES / name
        with path.open("rb") as stream:
            openmetrics = is_openmetrics(stream)
            targets = scan_targets(stream, str(path), openmetrics=openmetrics)
            stream.seek(0)
            read = _shop_points(list(read_exposition(stream, str(path), openmetrics=openmetrics, targets=targets)))
        assert openmetrics is (name == "shop.om")
        if not openmetrics:  # text 0.0.4 carries no units
            otlp_without_units = {(*key[:4], "", *key[5:]): value for key, value in otlp.items()}
            assert read == otlp_without_units
        else:
            assert read == otlp


def test_target_info_without_job_and_instance_describes_every_target() -> None:
    text = (
        '# TYPE up gauge\nup{job="a",instance="h:1"} 1\nup{job="b",instance="h:2"} 1\n'
        '# TYPE target info\ntarget_info{k8s_cluster_name="eu-1"} 1\ntarget_info{job="b",instance="h:2",team="x"} 1\n'
        "# EOF\n"
    )
    request = _request(text, openmetrics=True)
    assert [_resource(request, i) for i in range(2)] == [
        {"service.name": "a", "service.instance.id": "h:1", "k8s_cluster_name": "eu-1"},
        {"service.name": "b", "service.instance.id": "h:2", "k8s_cluster_name": "eu-1", "team": "x"},
    ]


def test_exemplar_ids_that_are_not_hex_stay_attributes() -> None:
    text = '# TYPE c counter\nc_total 1 # {trace_id="not-a-trace-id",span_id="00f067aa0ba902b7"} 1\n# EOF\n'
    (exemplar,) = _metrics(_request(text, openmetrics=True))["c_total"].sum.data_points[0].exemplars
    assert (exemplar.trace_id, exemplar.span_id.hex()) == (b"", "00f067aa0ba902b7")
    assert [(kv.key, kv.value.string_value) for kv in exemplar.filtered_attributes] == [("trace_id", "not-a-trace-id")]
    assert exemplar.time_unix_nano == 0  # no timestamp on the exemplar


def test_a_drop_after_the_last_full_request_still_reports() -> None:
    text = 'a 1\nb 2\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\n'  # h has no _count: dropped
    captures = _read(text, openmetrics=False, max_points=2)
    assert [len(c.findings) for c in captures] == [0, 1]
    assert _metrics(captures[1].request) == {}  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# A family larger than five requests is parsed in parts, with the same result
# ---------------------------------------------------------------------------


def _one_family(series: int, *, histogram: bool = False, openmetrics: bool = False) -> str:
    """One family of ``series`` series (a histogram without _count on every tenth series), then a gauge."""
    if not histogram:
        family = "requests" if openmetrics else "requests_total"  # OpenMetrics names the family without _total
        lines = [f"# HELP {family} Requests.", f"# TYPE {family} counter"]
        lines += [f'requests_total{{job="shop",route="/r/{i}"}} {i}' for i in range(series)]
    else:
        lines = ["# HELP latency_seconds Latency.", "# TYPE latency_seconds histogram"]
        for i in range(series):
            labels = f'route="/r/{i}"'
            lines += [f'latency_seconds_bucket{{{labels},le="{le}"}} {n}' for n, le in enumerate(("0.1", "1", "+Inf"))]
            if i % 10:  # OpenMetrics wants _sum and _count together, or neither
                lines += [f"latency_seconds_sum{{{labels}}} 1.5", f"latency_seconds_count{{{labels}}} 2"]
    lines += ["# TYPE up gauge", "up 1"] + (["# EOF"] if openmetrics else [])
    return "\n".join(lines) + "\n"


def _points_by_metric(captures: list[Capture]) -> dict[str, list[bytes]]:
    points: dict[str, list[bytes]] = {}
    for capture in captures:
        assert isinstance(capture.request, ExportMetricsServiceRequest)
        for name, metric in _metrics(capture.request).items():
            points.setdefault(name, []).extend(point.SerializeToString() for point in _points(metric))
    return points


@pytest.mark.parametrize(
    ("histogram", "openmetrics"), [(False, False), (True, False), (False, True), (True, True)], ids=str
)
def test_a_family_parsed_in_parts_reads_as_a_whole(histogram: bool, openmetrics: bool) -> None:
    text = _one_family(700, histogram=histogram, openmetrics=openmetrics)
    # max_points=20 parses in parts of 100 samples; None reads the whole family in one parse.
    parts = _read(text, openmetrics=openmetrics, max_points=20)
    (whole,) = _read(text, openmetrics=openmetrics)
    assert _points_by_metric(parts) == _points_by_metric([whole])
    dropped = [f for capture in parts for f in capture.findings]
    assert [(f.rule, f.count, f.message) for f in dropped] == [(f.rule, f.count, f.message) for f in whole.findings]
    if histogram:  # one finding for the family, not one per part
        (finding,) = dropped
        assert finding.count == 70 and finding.message.startswith("latency_seconds: 70 series dropped")


def test_a_large_family_is_not_held_whole() -> None:
    text = _one_family(8_000)

    def peak(max_points: int | None) -> int:
        tracemalloc.start()
        try:
            for _ in _read(text, openmetrics=False, max_points=max_points):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The parser holds a family's samples until its end: 8,000 at once when read whole, at most a
    # part of 100 (five requests of 20 points) in parts.
    assert peak(20) < peak(None) / 5
