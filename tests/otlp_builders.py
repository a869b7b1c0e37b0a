"""Small builders for OTLP requests in tests, written as OTLP/JSON-shaped dicts."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CUMULATIVE = 2
DELTA = 1

GOOD_RESOURCE = {
    "service.name": "checkout",
    "service.namespace": "ecommerce-prod",
    "k8s.pod.name": "checkout-7d9f",
    "k8s.namespace.name": "shop",
    "telemetry.sdk.language": "java",
}


def _number(value: float) -> float | str:
    """OTLP/JSON spells NaN and infinities as strings."""
    return value if math.isfinite(value) else str(value).replace("nan", "NaN").replace("inf", "Infinity")


def attrs(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in mapping.items():
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        elif isinstance(value, float):
            out.append({"key": key, "value": {"doubleValue": _number(value)}})
        else:
            out.append({"key": key, "value": {"stringValue": value}})
    return out


def histogram(
    name: str, points: list[dict[str, Any]], unit: str = "s", temporality: int = CUMULATIVE
) -> dict[str, Any]:
    return {"name": name, "unit": unit, "histogram": {"aggregationTemporality": temporality, "dataPoints": points}}


def hpoint(
    attributes: dict[str, Any], bounds: list[float], counts: list[int], total: float, **extra: Any
) -> dict[str, Any]:
    return {
        "attributes": attrs(attributes),
        "count": str(sum(counts)),
        "sum": _number(total),
        "bucketCounts": [str(c) for c in counts],
        "explicitBounds": bounds,
        "timeUnixNano": "1700000000000000000",
        **extra,
    }


def counter(
    name: str, points: list[tuple[dict[str, Any], float]], unit: str = "{request}", monotonic: bool = True
) -> dict[str, Any]:
    return {
        "name": name,
        "unit": unit,
        "sum": {
            "aggregationTemporality": CUMULATIVE,
            "isMonotonic": monotonic,
            "dataPoints": [
                {"attributes": attrs(a), "asDouble": _number(v), "timeUnixNano": "1700000000000000000"}
                for a, v in points
            ],
        },
    }


def gauge(name: str, points: list[tuple[dict[str, Any], float]], unit: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "unit": unit,
        "gauge": {"dataPoints": [{"attributes": attrs(a), "asDouble": _number(v)} for a, v in points]},
    }


def metrics_request(*metrics: dict[str, Any], resource: dict[str, Any] | None = None) -> ExportMetricsServiceRequest:
    document = {
        "resourceMetrics": [
            {
                "resource": {"attributes": attrs(GOOD_RESOURCE if resource is None else resource)},
                "scopeMetrics": [{"scope": {"name": "test"}, "metrics": list(metrics)}],
            }
        ]
    }
    return json_format.ParseDict(document, ExportMetricsServiceRequest())


def traces_request(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": attrs(GOOD_RESOURCE if resource is None else resource)},
                "scopeSpans": [{"spans": spans}],
            }
        ]
    }
    return json_format.ParseDict(document, ExportTraceServiceRequest())


def logs_request(records: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> ExportLogsServiceRequest:
    document = {
        "resourceLogs": [
            {
                "resource": {"attributes": attrs(GOOD_RESOURCE if resource is None else resource)},
                "scopeLogs": [{"logRecords": records}],
            }
        ]
    }
    return json_format.ParseDict(document, ExportLogsServiceRequest())


def point_attrs(point: Any) -> dict[str, Any]:
    out = {}
    for kv in point.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def resource_attrs(resource: Any) -> dict[str, Any]:
    return point_attrs(resource)


def all_metrics(request: Any) -> list[Any]:
    return [m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


def summary_of(findings: Any) -> set[tuple[str, str | None, str | None, int]]:
    return {(f.rule.slug, f.metric, f.attribute, f.count) for f in findings}


def done_when_request() -> ExportMetricsServiceRequest:
    """Issue 3's scenario: an alias in ms with legacy keys, a point without http.method, an unknown
    metric, and a resource without service.namespace."""
    resource = {k: v for k, v in GOOD_RESOURCE.items() if k != "service.namespace"}
    resource["telemetry.sdk.language"] = "go"
    return metrics_request(
        histogram(
            "http.server.duration",
            [
                hpoint({"http.method": "GET", "http_status": "503"}, [100.0, 500.0], [1, 1, 0], 350.0),
                hpoint({"status_code": "200"}, [100.0, 500.0], [1, 0, 0], 50.0),
            ],
            unit="ms",
        ),
        gauge("checkout_cart_items", [({}, 3.0)]),
        resource=resource,
    )


def as_collector_compares(message: Any, *, sort_attributes: bool = False) -> Any:
    """``message`` with every empty singular submessage unset, recursively, in place; with
    ``sort_attributes``, every attribute list sorted by key too.

    The Collector's pdata writes an empty scope or span status as present (``"scope": {}``), and its
    processors append the attributes they add; protobuf's equality tells presence and order apart,
    OTLP's meaning does not.
    """
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            for item in value:
                as_collector_compares(item, sort_attributes=sort_attributes)
            if sort_attributes and field.name == "attributes":
                ordered = sorted(value, key=lambda pair: pair.key)
                del value[:]
                value.extend(ordered)
        elif value.ByteSize() == 0:
            message.ClearField(field.name)
        else:
            as_collector_compares(value, sort_attributes=sort_attributes)
    return message
