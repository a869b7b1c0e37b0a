"""Fuzzing the engine's entry points: whatever the bytes, the only exception is a decode error.

Every other outcome of hostile input is a finding (issue 16): an exception that escapes the engine is
a bug, which the sidecar answers with INTERNAL (or forwards, with ``on_engine_error: forward``).
Two generators: real requests from the test builders with their bytes flipped, inserted, truncated
and spliced; and requests built field by field from the values that broke the engine before (int64
and int32 limits, NaN and infinities, enum values outside OTLP's, absurd strings and units, a oneof
split across the wire). Bounded by ``max_examples``; hypothesis prints the seed and the failing
example on a failure.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics

from otel_contract import load_contract
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, check_request, process_signal
from otel_contract.otlp import FACTS, Signal
from otel_contract.pipeline import Pipeline
from otel_contract.server.processor import response_for

from .conftest import CONTRACTS, TODAY
from .hostile_requests import (
    SHOP_EXTRA,
    exponential_point,
    histogram_with_bounds,
    out_of_range_requests,
    request_of_metric_bytes,
)
from .otlp_builders import (
    GOOD_RESOURCE,
    attrs,
    counter,
    done_when_request,
    gauge,
    histogram,
    hpoint,
    logs_request,
    metrics_request,
    traces_request,
)
from .sidecar_harness import shop_contract

_CONTRACTS = [
    load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY),
    load_contract(CONTRACTS / "hpa-app.yaml", today=TODAY),  # smoothed signals in the processor
]


@dataclass(frozen=True)
class _Target:
    """A contract with its engine state and sidecar processor, kept across examples as a sidecar keeps them
    (the attribute memo and series budgets warm up)."""

    contract: CompiledContract
    state: CardinalityState
    processor: Pipeline


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> list[_Target]:
    shop = shop_contract(Path(tmp_path_factory.mktemp("fuzz")) / "shop.yaml", extra=SHOP_EXTRA)
    contracts = [*_CONTRACTS, load_contract(shop, today=TODAY)]
    return [_Target(c, CardinalityState(), Pipeline(c)) for c in contracts]


def _span(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "name": "GET /cart",
        "attributes": attrs(attributes),
        "events": [{"name": "retry", "attributes": attrs({"http_status": "503"})}],
        "links": [{"traceId": "AAAAAAAAAAAAAAAAAAAAAg==", "spanId": "AAAAAAAAAAI=", "attributes": attrs({"a": 1})}],
    }


def _summary() -> dict[str, Any]:
    point = {"count": "2", "sum": 3.0, "quantileValues": [{"quantile": 0.5, "value": 1.0}, {"quantile": 1, "value": 2}]}
    return {"name": "rpc_summary_seconds", "unit": "ms", "summary": {"dataPoints": [point]}}


def _seeds() -> list[tuple[Signal, bytes]]:
    good = {"http.method": "GET", "http.status_code": 200}
    metrics = [
        done_when_request(),
        metrics_request(
            histogram("http.server.duration", [hpoint({**good, "user.id": "u"}, [5.0, 10.0], [1, 2, 3], 40.0)], "ms"),
            counter("http_requests_total", [(good, 3.0), ({"status_code": "200", "http.method": "GET"}, 1.0)]),
            counter("system_disk_io_time_seconds_total", [({"device": "sda"}, 12.5)], unit="s"),
            gauge("hpa_app_queue_length", [({"queue_name": "hpa-app"}, 7.0)], unit="{message}"),
            _summary(),
        ),
        metrics_request(counter("orders_total", [({"seq": "1"}, 1.0)], unit="{order}"), resource={"service.name": "s"}),
    ]
    payloads = [(Signal.METRICS, request.SerializeToString()) for request in metrics]
    payloads += [(Signal.METRICS, case.payload) for case in out_of_range_requests().values()]
    payloads += [(Signal.METRICS, exponential_point(3)), (Signal.METRICS, histogram_with_bounds([0.1, 0.2]))]
    payloads += [
        (Signal.TRACES, traces_request([_span({"status_code": "404", "http.method": "GET"})]).SerializeToString())
    ]
    record = {"body": {"stringValue": "timeout"}, "attributes": attrs({"http_status": 503}), "severityNumber": 17}
    payloads += [(Signal.LOGS, logs_request([record], resource=GOOD_RESOURCE).SerializeToString())]
    return payloads


_SEEDS = _seeds()


# --- byte mutations ------------------------------------------------------------------------------------


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS))[1])
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "insert", "truncate", "splice", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if operation == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "truncate":
            del data[at:]
        elif operation == "splice":  # a slice of another request: its fields land inside this one's
            other = draw(st.sampled_from(_SEEDS))[1]
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 64))]
        else:  # a slice repeated: fields given twice, messages merged
            end = draw(st.integers(at, len(data)))
            data[end:end] = data[at:end]
    return bytes(data)


# --- structured generation -----------------------------------------------------------------------------

_INT64 = st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 2**62, 2**63 - 1, -(2**63)]) | st.integers(-(2**63), 2**63 - 1)
_UINT64 = st.sampled_from([0, 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
_INT32 = st.sampled_from([-(2**31), -11, -10, 0, 20, 21, 2**31 - 1]) | st.integers(-(2**31), 2**31 - 1)
_DOUBLE = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0]) | st.floats()
_TEXT = st.sampled_from(
    ["", "9" * 20, "-9" * 10, "1e999", "nan", "inf", " 42 ", "١٢٣", "true", "x" * 300, "\x00", "\ud7ff", "GET"]
) | st.text(max_size=12)
_NAMES = st.sampled_from(
    [
        "http.server.duration",
        "http_server_duration_seconds",
        "http_requests_total",
        "http.server.request.count",
        "system_disk_io_time_seconds_total",
        "db_connection_pool_wait_time_ms",
        "hpa_app_queue_length",
        "payload.size",
        "payload_size_bytes",
        "queue_depth",
        "orders_total",
        "node_disk_io_time_seconds_total",
        "",
    ]
)
_UNITS = st.sampled_from(
    ["", "s", "ms", "h", "ns", "By", "KiBy", "PiBy", "PBy99.By-98", "1000." * 30 + "s", "x" * 200, "{order}", "%"]
)
_KEYS = st.sampled_from(
    ["http.method", "http.status_code", "status_code", "http_status", "user.id", "device", "queue", "seq", "", "k"]
)


@st.composite
def _value(draw: st.DrawFn) -> AnyValue:
    kind = draw(st.sampled_from(["string", "int", "double", "bool", "bytes", "array", "empty"]))
    value = AnyValue()
    if kind == "string":
        value.string_value = draw(_TEXT)
    elif kind == "int":
        value.int_value = draw(_INT64)
    elif kind == "double":
        value.double_value = draw(_DOUBLE)
    elif kind == "bool":
        value.bool_value = draw(st.booleans())
    elif kind == "bytes":
        value.bytes_value = draw(st.binary(max_size=8))
    elif kind == "array":
        value.array_value.values.add().int_value = draw(_INT64)
    return value


def _attributes(draw: st.DrawFn, target: Any) -> None:
    for _ in range(draw(st.integers(0, 4))):
        target.add(key=draw(_KEYS), value=draw(_value()))


@st.composite
def _metric(draw: st.DrawFn) -> Metric:
    metric = Metric(name=draw(_NAMES), unit=draw(_UNITS))
    kind = draw(st.sampled_from(["gauge", "sum", "histogram", "exponential_histogram", "summary"]))
    data = getattr(metric, kind)
    data.SetInParent()
    if kind != "gauge" and kind != "summary":
        data.aggregation_temporality = draw(_INT32)
    if kind == "sum":
        data.is_monotonic = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3))):
        point = data.data_points.add(time_unix_nano=draw(_UINT64), flags=draw(st.sampled_from([0, 1, 2**32 - 1])))
        _attributes(draw, point.attributes)
        if kind in ("gauge", "sum"):
            if draw(st.booleans()):
                point.as_int = draw(_INT64)
            else:
                point.as_double = draw(_DOUBLE)
        elif kind == "summary":
            point.count, point.sum = draw(_UINT64), draw(_DOUBLE)
            for _ in range(draw(st.integers(0, 3))):
                point.quantile_values.add(quantile=draw(_DOUBLE), value=draw(_DOUBLE))
        else:
            point.count = draw(_UINT64)
            for field in ("sum", "min", "max"):
                if draw(st.booleans()):
                    setattr(point, field, draw(_DOUBLE))
            if kind == "histogram":
                point.explicit_bounds.extend(draw(st.lists(_DOUBLE, max_size=5)))
                point.bucket_counts.extend(draw(st.lists(_UINT64, max_size=6)))
            else:
                point.scale, point.zero_count, point.zero_threshold = draw(_INT32), draw(_UINT64), draw(_DOUBLE)
                for buckets in (point.positive, point.negative):
                    buckets.offset = draw(_INT32)
                    buckets.bucket_counts.extend(draw(st.lists(_UINT64, max_size=3)))
    return metric


@st.composite
def _built_records(draw: st.DrawFn) -> tuple[Signal, bytes]:
    """A traces or logs request whose every attribute list holds generated keys and values."""
    if draw(st.booleans()):
        traces = ExportTraceServiceRequest()
        resource_spans = traces.resource_spans.add()
        _attributes(draw, resource_spans.resource.attributes)
        span = resource_spans.scope_spans.add().spans.add(name=draw(_TEXT), kind=draw(_INT32))
        for attributes in (span.attributes, span.events.add().attributes, span.links.add().attributes):
            _attributes(draw, attributes)
        return Signal.TRACES, traces.SerializeToString()
    logs = ExportLogsServiceRequest()
    resource_logs = logs.resource_logs.add()
    _attributes(draw, resource_logs.resource.attributes)
    record = resource_logs.scope_logs.add().log_records.add(severity_number=draw(_INT32))
    _attributes(draw, record.attributes)
    return Signal.LOGS, logs.SerializeToString()


@st.composite
def _built(draw: st.DrawFn) -> bytes:
    template = ResourceMetrics()
    _attributes(draw, template.resource.attributes)
    if draw(st.booleans()):
        template.resource.attributes.add(key="service.name", value=AnyValue(string_value="checkout"))
    template.scope_metrics.add().scope.name = draw(st.sampled_from(["app", "otel-contract/compat-shims"]))
    metrics = [metric.SerializeToString() for metric in draw(st.lists(_metric(), min_size=1, max_size=3))]
    # A metric split across the wire (another metric's bytes right after its own: one Metric to protobuf,
    # whose data oneof keeps the last member), as the serializer never writes it.
    for _ in range(draw(st.integers(0, 2))):
        metrics[-1] += draw(_metric()).SerializeToString()
    return request_of_metric_bytes(metrics, template)


# Sized for about 25 s in all on a shared 2-core machine; on a failure hypothesis prints the example and
# the `@reproduce_failure` line to replay it.
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
_MUTATED = settings(max_examples=2500, deadline=None, suppress_health_check=_HEALTH, print_blob=True)
_BUILT = settings(max_examples=700, deadline=None, suppress_health_check=_HEALTH, print_blob=True)


def _every_entry_point(payload: bytes, targets: list[_Target], signals: list[Signal]) -> None:
    """Run ``payload`` through every entry point, and what the receiver does with the sidecar's outcome;
    only a DecodeError may escape."""
    for target in targets:
        for signal in signals:
            for options in (EngineOptions(), EngineOptions(audit=True)):
                with contextlib.suppress(DecodeError):
                    process_signal(signal, payload, target.contract, state=target.state, options=options)
            with contextlib.suppress(DecodeError):
                outcome = target.processor.process(signal, payload)
                outcome.to_bytes()
                response_for(signal, outcome, target.processor.label)


@_MUTATED
@given(payload=_mutated())
def test_mutated_requests_raise_nothing_but_decode_errors(targets: list[_Target], payload: bytes) -> None:
    _every_entry_point(payload, targets, list(Signal))


@_BUILT
@given(built=_built().map(lambda payload: (Signal.METRICS, payload)) | _built_records())
def test_built_requests_raise_nothing_but_decode_errors(targets: list[_Target], built: tuple[Signal, bytes]) -> None:
    signal, payload = built
    _every_entry_point(payload, targets, [signal])


def _accepts(parse: Any, payload: bytes) -> bool:
    try:
        parse(payload)
    except DecodeError:
        return False
    return True


@settings(max_examples=1000, deadline=None, suppress_health_check=_HEALTH, print_blob=True)
@given(payload=_mutated())
def test_check_request_accepts_exactly_what_the_python_parser_accepts(payload: bytes) -> None:
    """The capture reader checks binary captures with the core instead of parsing them: the same bytes
    must pass (and fail) as with the Python parser."""
    for signal in Signal:
        parsed = _accepts(FACTS[signal].request_type.FromString, payload)
        checked = _accepts(lambda data, signal=signal: check_request(signal, data), payload)
        assert checked == parsed, f"{signal.value}: {payload.hex()}"
