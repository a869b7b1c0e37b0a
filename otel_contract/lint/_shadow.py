"""Shallow readings of a metrics request for the linter: each data point's attribute keys, or its attributes, as bytes.

Reading attributes through protobuf's Python wrappers costs about a microsecond per attribute, which
on millions of points would make the lints dearer than the engine. So the linter parses the request a
second time, in C, with wire-compatible "shadow" schemas that declare nothing but the tree down to each
point's attributes, and discards every other field. Then one ``SerializeToString()`` call per point
gives:

* in the *keys* view, the point's attribute keys in order: equal bytes, equal label names, so the
  label lints run once per distinct key signature of a metric;
* in the *values* view, the point's attributes (whole KeyValues, not parsed) in order: equal bytes,
  same series, for duplicates.

Keys are declared ``bytes`` so that nothing is validated here: a key that is not UTF-8 is decoded with
replacement by the linter. The same technique, with a different schema, is the engine's
``otel_contract.engine._shadow``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# Field numbers from opentelemetry/proto/metrics/v1/metrics.proto.
_POINT_ATTRIBUTES = {"NumberPoint": 7, "HistogramPoint": 9, "ExponentialPoint": 1, "SummaryPoint": 7}
DATA_MEMBERS = {  # Metric.data oneof member -> (field number, container message, point message)
    "gauge": (5, "Gauge", "NumberPoint"),
    "sum": (7, "Sum", "NumberPoint"),
    "histogram": (9, "Histogram", "HistogramPoint"),
    "exponential_histogram": (10, "ExponentialHistogram", "ExponentialPoint"),
    "summary": (11, "Summary", "SummaryPoint"),
}

_F = descriptor_pb2.FieldDescriptorProto


def _message(
    file: descriptor_pb2.FileDescriptorProto, package: str, name: str, fields: list[tuple[str, int, str]]
) -> None:
    message = file.message_type.add(name=name)
    for field_name, number, type_name in fields:
        field = message.field.add(name=field_name, number=number, label=_F.LABEL_REPEATED, type=_F.TYPE_MESSAGE)
        field.type_name = f".{package}.{type_name}"


@cache
def _request_type(with_values: bool) -> Any:
    package = "otel_contract.lint.shadow." + ("values" if with_values else "keys")
    file = descriptor_pb2.FileDescriptorProto(
        name=package.replace(".", "/") + ".proto", package=package, syntax="proto3"
    )
    _message(file, package, "Request", [("resource_metrics", 1, "ResourceMetrics")])
    _message(file, package, "ResourceMetrics", [("scope_metrics", 2, "ScopeMetrics")])
    _message(file, package, "ScopeMetrics", [("metrics", 2, "Metric")])
    metric = file.message_type.add(name="Metric")
    for member, (number, container, _) in DATA_MEMBERS.items():
        field = metric.field.add(name=member, number=number, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE)
        field.type_name = f".{package}.{container}"
    for container in dict.fromkeys(container for _, container, _ in DATA_MEMBERS.values()):
        point = next(p for _, c, p in DATA_MEMBERS.values() if c == container)
        _message(file, package, container, [("data_points", 1, point)])
    for point, number in _POINT_ATTRIBUTES.items():
        if with_values:  # whole KeyValues, left as bytes: nothing in them is parsed
            attributes = file.message_type.add(name=point).field.add(name="attributes", number=number)
            attributes.label, attributes.type = _F.LABEL_REPEATED, _F.TYPE_BYTES
        else:
            _message(file, package, point, [("attributes", number, "Key")])
    if not with_values:  # a KeyValue's key; its value is an unknown field, discarded
        key = file.message_type.add(name="Key")
        key.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Request"))


def shadow_request(payload: bytes, *, with_values: bool) -> Any:
    """The request's resource/scope/metric/point tree down to each point's attribute keys (and values).

    Indexes match the real request's: ``resource_metrics[i].scope_metrics[j].metrics[k]``, then the
    ``data_points`` of the member named like the real metric's ``data`` oneof.
    """
    request = _request_type(with_values).FromString(payload)
    request.DiscardUnknownFields()  # what is left of a point serializes to its attributes alone
    return request
