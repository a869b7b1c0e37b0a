"""A second, shallow reading of a metrics request: each data point's attributes as raw bytes.

Reading an attribute's key and value through protobuf's Python wrappers costs microseconds per point,
most of the engine's time on compliant traffic. But a series' attributes arrive as the same bytes
request after request, so the outcome of checking them can be remembered per metric, keyed by those
bytes. This module parses the request a second time, in C, with a "shadow" schema that is
wire-compatible with OTLP's but declares every data point's ``attributes`` as ``repeated bytes``:
the serialized KeyValues come out as ``bytes`` objects without being decoded. Every field the engine
does not need here (resources, scopes, values, timestamps) is left out, so the parser skips it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "otel_contract.shadow.v1"

# Field numbers from opentelemetry/proto/metrics/v1/metrics.proto.
_POINT_ATTRIBUTES = {"NumberPoint": 7, "HistogramPoint": 9, "ExponentialPoint": 1, "SummaryPoint": 7}
_METRIC_DATA = {  # Metric.data oneof member -> (field number, container message, point message)
    "gauge": (5, "Gauge", "NumberPoint"),
    "sum": (7, "Sum", "NumberPoint"),
    "histogram": (9, "Histogram", "HistogramPoint"),
    "exponential_histogram": (10, "ExponentialHistogram", "ExponentialPoint"),
    "summary": (11, "Summary", "SummaryPoint"),
}

_F = descriptor_pb2.FieldDescriptorProto


def _message(file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, str | None]]) -> None:
    message = file.message_type.add(name=name)
    for field_name, number, type_name in fields:
        field = message.field.add(name=field_name, number=number, label=_F.LABEL_REPEATED)
        if type_name is None:
            field.type = _F.TYPE_BYTES
        else:
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{_PACKAGE}.{type_name}"


@cache
def _request_type() -> Any:
    file = descriptor_pb2.FileDescriptorProto(name="otel_contract/shadow.proto", package=_PACKAGE, syntax="proto3")
    _message(file, "Request", [("resource_metrics", 1, "ResourceMetrics")])
    _message(file, "ResourceMetrics", [("scope_metrics", 2, "ScopeMetrics")])
    _message(file, "ScopeMetrics", [("metrics", 2, "Metric")])
    metric = file.message_type.add(name="Metric")
    for member, (number, container, _) in _METRIC_DATA.items():
        field = metric.field.add(name=member, number=number, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE)
        field.type_name = f".{_PACKAGE}.{container}"
    for _member, (_, container, point) in _METRIC_DATA.items():
        if not any(m.name == container for m in file.message_type):
            _message(file, container, [("data_points", 1, point)])
    for point, number in _POINT_ATTRIBUTES.items():
        _message(file, point, [("attributes", number, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Request"))


def shadow_request(payload: bytes) -> Any:
    """The request's resource/scope/metric/point tree with each point's attributes as raw bytes.

    Indexes match the real request's: ``resource_metrics[i].scope_metrics[j].metrics[k]``, then the
    ``data_points`` of the member named like the real metric's ``data`` oneof.
    """
    return _request_type().FromString(payload)
