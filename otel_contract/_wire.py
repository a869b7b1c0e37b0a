"""Protobuf wire-level helpers shared by the engine, the Prometheus linter and the compiled contract.

**Shadow parses.** Reading an attribute through protobuf's Python wrappers costs about a
microsecond, which on millions of points would dominate the Prometheus linter. But a series'
attributes arrive as the same bytes request after request. So it parses a metrics request a second
time, in C, with "shadow" schemas that are wire-compatible with OTLP's and declare nothing but the
tree down to each data point's attributes; every other field is skipped by the parser. Two views:

* ``ATTRIBUTES``: each point's ``attributes`` as ``repeated bytes``, the serialized KeyValues
  undecoded. Equal bytes mean the same attribute set: the linter finds duplicate series.
* ``KEYS``: each point's attribute keys only (a KeyValue's value is an unknown field, discarded), so
  one ``SerializeToString()`` per point gives its label names in order: the linter runs its label
  lints once per distinct key signature of a metric. Keys are ``bytes`` so nothing is validated here.

Indexes match the real request's: ``resource_metrics[i].scope_metrics[j].metrics[k]``, then the
``data_points`` of the member named like the real metric's ``data`` oneof. They match because the
shadow declares the same field numbers and wire types along that path *and the same oneof*: the
parser (the same upb for both) then builds the same tree. That matters for hostile bytes such as
``gauge{A} sum{} gauge{B}`` in one Metric: a later oneof member clears an earlier one, so protobuf
keeps the gauge [B]; were the shadow's members plain fields, it would merge the gauges into [A, B]
and point 0 of the shadow would be A, not B. Repeated fields (resources, scopes, metrics, points,
attributes) append one element per occurrence in both, and an occurrence of the wrong wire type is
an unknown field in both. Callers that trust the indexes still compare each metric's member and
point count before using its shadow.

**Framing.** ``frame`` gives bytes as protobuf encodes them in field 1 of a message (tag, varint
length, bytes), e.g. ``Metric.name`` or ``KeyValue.key``: a substring search for the whole encoding
tells whether a payload holds a name without matching it inside a longer one.
"""

from __future__ import annotations

import enum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2

# The instrumentation scope of the compat shims' series: the engine passes a scope of these through as the
# contract's own output (a sidecar upstream appended it), the shims write it.
SHIM_SCOPE = "otel-contract/compat"


class ShadowView(enum.Enum):
    ATTRIBUTES = "attributes"
    KEYS = "keys"


# Field numbers from opentelemetry/proto/metrics/v1/metrics.proto.
_POINT_ATTRIBUTES = {"NumberPoint": 7, "HistogramPoint": 9, "ExponentialPoint": 1, "SummaryPoint": 7}
DATA_MEMBERS = {  # Metric.data oneof member -> (field number, container message, point message)
    "gauge": (5, "Gauge", "NumberPoint"),
    "sum": (7, "Sum", "NumberPoint"),
    "histogram": (9, "Histogram", "HistogramPoint"),
    "exponential_histogram": (10, "ExponentialHistogram", "ExponentialPoint"),
    "summary": (11, "Summary", "SummaryPoint"),
}


def _message(
    file: descriptor_pb2.FileDescriptorProto, package: str, name: str, fields: list[tuple[str, int, str | None]]
) -> None:
    """A message of repeated fields: of the named message type, or bytes where the type is None."""
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as _F

    message = file.message_type.add(name=name)
    for field_name, number, type_name in fields:
        field = message.field.add(name=field_name, number=number, label=_F.LABEL_REPEATED)
        if type_name is None:
            field.type = _F.TYPE_BYTES
        else:
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{package}.{type_name}"


@cache
def _request_type(view: ShadowView) -> Any:
    # Imported here: only the Prometheus linter reads shadows, and descriptor_pb2 alone is
    # about 3 MiB of a running sidecar's memory.
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    _F = descriptor_pb2.FieldDescriptorProto
    package = f"otel_contract.shadow.{view.value}"
    file = descriptor_pb2.FileDescriptorProto(
        name=package.replace(".", "/") + ".proto", package=package, syntax="proto3"
    )
    _message(file, package, "Request", [("resource_metrics", 1, "ResourceMetrics")])
    _message(file, package, "ResourceMetrics", [("scope_metrics", 2, "ScopeMetrics")])
    _message(file, package, "ScopeMetrics", [("metrics", 2, "Metric")])
    metric = file.message_type.add(name="Metric")
    metric.oneof_decl.add(name="data")  # as in metrics.proto: the members' merge rules are part of the wire format
    for member, (number, container, _) in DATA_MEMBERS.items():
        field = metric.field.add(
            name=member, number=number, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE, oneof_index=0
        )
        field.type_name = f".{package}.{container}"
    for container in dict.fromkeys(container for _, container, _ in DATA_MEMBERS.values()):
        point = next(p for _, c, p in DATA_MEMBERS.values() if c == container)
        _message(file, package, container, [("data_points", 1, point)])
    for point, number in _POINT_ATTRIBUTES.items():
        _message(file, package, point, [("attributes", number, "Key" if view is ShadowView.KEYS else None)])
    if view is ShadowView.KEYS:
        key = file.message_type.add(name="Key")
        key.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Request"))


def shadow_request(payload: bytes, view: ShadowView = ShadowView.ATTRIBUTES, *, discard_unknown: bool = False) -> Any:
    """The shadow reading of a serialized metrics request.

    ``discard_unknown`` drops what the shadow schema does not declare, so that a point serializes to
    its attributes (or keys) alone; it costs a walk, so only callers that serialize points ask for it.
    """
    request = _request_type(view).FromString(payload)
    if discard_unknown:
        request.DiscardUnknownFields()
    return request


def frame(data: bytes) -> bytes:
    """``data`` as protobuf frames it in field 1: the tag, the length as a varint, the bytes."""
    length, varint = len(data), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            return b"\x0a" + bytes(varint) + data
