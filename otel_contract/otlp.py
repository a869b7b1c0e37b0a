"""The OTLP vocabulary: the three signals, one table of what each one is on the wire, and OTLP/JSON.

Everything that needs to know "which message, which gRPC method, which ``partial_success`` field,
which JSON key" for a signal reads it from ``FACTS`` here: the engine, the receivers, the exporters,
the input readers. The OTLP/JSON codec lives here too, because the file readers and the sidecar's
receivers both speak it.

OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) is protobuf's JSON
mapping with three differences: trace and span IDs are hex rather than base64, enums are integers,
and receivers ignore unknown fields. Reading it is the compiled core's work (``_core.OtlpJson``, one
call per document, over these very descriptors); writing it (answers, captures) is
``google.protobuf.json_format``'s, with the IDs turned to hex here.
"""

from __future__ import annotations

import base64
import codecs
import enum
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias, cast

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otel_contract._core import OtlpJson, WireError


class Signal(enum.StrEnum):
    """The three OTLP signals, in the order a binary capture is tried as each."""

    METRICS = "metrics"
    TRACES = "traces"
    LOGS = "logs"


CORE_SIGNALS: tuple[Signal, ...] = tuple(Signal)
"""The signals by the numbers the compiled core knows them by (0 metrics, 1 traces, 2 logs)."""

OtlpRequest: TypeAlias = ExportMetricsServiceRequest | ExportTraceServiceRequest | ExportLogsServiceRequest


OtlpResponse: TypeAlias = ExportMetricsServiceResponse | ExportTraceServiceResponse | ExportLogsServiceResponse


@dataclass(frozen=True, slots=True)
class SignalFacts:
    """What one signal is on the wire and in words."""

    request_type: type[OtlpRequest]
    response_type: type[OtlpResponse]
    export_method: str  # the gRPC method, for the receiver and the OTLP exporter alike
    http_path: str  # the OTLP/HTTP path
    rejected_field: str  # the count in ExportXPartialSuccess
    noun: str  # what one item is called in messages: "data point", "span", "log record"
    resources_field: str  # the request's repeated field of resources
    json_keys: tuple[str, str]  # the top-level JSON key, lowerCamelCase first (json_format accepts both)


FACTS: Mapping[Signal, SignalFacts] = MappingProxyType(
    {
        Signal.METRICS: SignalFacts(
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            "/v1/metrics",
            "rejected_data_points",
            "data point",
            "resource_metrics",
            ("resourceMetrics", "resource_metrics"),
        ),
        Signal.TRACES: SignalFacts(
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            "/v1/traces",
            "rejected_spans",
            "span",
            "resource_spans",
            ("resourceSpans", "resource_spans"),
        ),
        Signal.LOGS: SignalFacts(
            ExportLogsServiceRequest,
            ExportLogsServiceResponse,
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            "/v1/logs",
            "rejected_log_records",
            "log record",
            "resource_logs",
            ("resourceLogs", "resource_logs"),
        ),
    }
)


class InputError(Exception):
    """Unreadable or unparsable input; str() is one line naming the file (and line for JSON lines) and the reason."""

    source: str
    line: int | None
    reason: str

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        # Messages from json_format and the OS can span lines; a CLI prints exactly one.
        reason = " ".join(reason.splitlines())
        super().__init__(source, line, reason)
        self.source = source
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.reason}"

    @classmethod
    def unreadable(cls, source: str, error: OSError) -> InputError:
        """The error for a file the OS would not let us read (permissions, I/O, a vanished file)."""
        return cls(source, None, f"cannot read: {error.strerror or error}")


# --- signal_of -----------------------------------------------------------------------------------


def signal_of(request: OtlpRequest) -> Signal:
    """The signal an export request carries."""
    if isinstance(request, ExportMetricsServiceRequest):
        return Signal.METRICS
    if isinstance(request, ExportTraceServiceRequest):
        return Signal.TRACES
    if isinstance(request, ExportLogsServiceRequest):
        return Signal.LOGS
    raise TypeError(f"not an OTLP export request: {type(request).__name__}")


def record_count(request: OtlpRequest) -> int:
    if isinstance(request, ExportMetricsServiceRequest):
        return len(request.resource_metrics)
    if isinstance(request, ExportTraceServiceRequest):
        return len(request.resource_spans)
    return len(request.resource_logs)


def count_items(request: OtlpRequest) -> tuple[int, int]:
    """Resources, and data points / spans / log records, in a request."""
    if isinstance(request, ExportMetricsServiceRequest):
        points = 0
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    points += len(getattr(metric, kind).data_points) if kind else 0
        return len(request.resource_metrics), points
    if isinstance(request, ExportTraceServiceRequest):
        spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        return len(request.resource_spans), spans
    records = sum(len(scope.log_records) for resource in request.resource_logs for scope in resource.scope_logs)
    return len(request.resource_logs), records


# --- hex IDs -------------------------------------------------------------------------------------
#
# Which JSON keys hold IDs is worked out once from the protobuf descriptors rather than by key name
# alone, so that only the subtrees that can hold an ID (spans, span links, log records, exemplars)
# are walked; resources, attributes and data point values are not. (The core does the same when reading.)

_ID_FIELD_NAMES = frozenset({"trace_id", "span_id", "parent_span_id"})


@dataclass(frozen=True, slots=True)
class _IdPlan:
    """Where IDs occur under one message type, keyed by the JSON names json_format writes."""

    ids: frozenset[str]
    children: Mapping[str, str]  # key -> full name of a message type that can hold IDs further down


def _is_id(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_BYTES and field.name in _ID_FIELD_NAMES


def _build_id_plans(roots: Iterable[Descriptor]) -> Mapping[str, _IdPlan]:
    reachable: dict[str, Descriptor] = {}
    pending = list(roots)
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name not in reachable:
            reachable[descriptor.full_name] = descriptor
            pending.extend(field.message_type for field in descriptor.fields if field.message_type is not None)

    def child_name(field: FieldDescriptor) -> str | None:
        return field.message_type.full_name if field.message_type is not None else None

    # A fixpoint, because message types nest recursively (AnyValue holds AnyValues).
    holders = {name for name, descriptor in reachable.items() if any(_is_id(f) for f in descriptor.fields)}
    while True:
        grown = holders | {
            name
            for name, descriptor in reachable.items()
            if any(child_name(field) in holders for field in descriptor.fields)
        }
        if grown == holders:
            break
        holders = grown

    plans: dict[str, _IdPlan] = {}
    for name in holders:
        fields = reachable[name].fields
        ids = frozenset(field.json_name for field in fields if _is_id(field))
        children = {
            field.json_name: child for field in fields if (child := child_name(field)) is not None and child in holders
        }
        plans[name] = _IdPlan(ids, MappingProxyType(children))
    return MappingProxyType(plans)


_ID_PLANS = _build_id_plans(facts.request_type.DESCRIPTOR for facts in FACTS.values())


def _ids_to_hex(node: Any, type_name: str) -> Any:
    """A copy of ``node`` (json_format's output) with every base64 ID in hex; the input is never changed."""
    plan = _ID_PLANS.get(type_name)
    if plan is None or not isinstance(node, Mapping):
        return node
    converted = dict(node)
    for key, value in node.items():
        if key in plan.ids:
            converted[key] = base64.b64decode(value).hex()
        elif (child := plan.children.get(key)) is not None:
            converted[key] = (
                [_ids_to_hex(item, child) for item in value] if isinstance(value, list) else _ids_to_hex(value, child)
            )
    return converted


# --- OTLP/JSON -----------------------------------------------------------------------------------


def to_otlp_json(request: OtlpRequest) -> dict[str, Any]:
    """The OTLP/JSON encoding of a request: lowerCamelCase keys, hex IDs, integer enums, 64-bit ints as strings."""
    signal_of(request)  # only OTLP requests: other messages have no OTLP/JSON encoding
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    return cast(dict[str, Any], _ids_to_hex(document, request.DESCRIPTOR.full_name))


def _descriptor_set() -> bytes:
    """The files that define the three requests, and all they import, dependencies first."""
    files: dict[str, FileDescriptor] = {}

    def add(file: FileDescriptor) -> None:
        if file.name not in files:
            for dependency in file.dependencies:
                add(dependency)
            files[file.name] = file

    for facts in FACTS.values():
        add(facts.request_type.DESCRIPTOR.file)
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    for file in files.values():
        file.CopyToProto(descriptor_set.file.add())
    return descriptor_set.SerializeToString()


@functools.cache
def _json_decoder() -> OtlpJson:
    names = (FACTS[signal].request_type.DESCRIPTOR.full_name for signal in CORE_SIGNALS)
    return OtlpJson(_descriptor_set(), *names)


def decode_otlp_json(
    data: bytes, *, source: str, line: int | None = None, signal: Signal | None = None, empty: bool = False
) -> tuple[Signal, bytes]:
    """The signal and the protobuf bytes of the request that one OTLP/JSON document (UTF-8) is.

    The signal comes from the top-level key; ``signal`` insists on one. Unknown fields are ignored, as
    the OTLP spec requires of receivers; with ``empty`` (and ``signal``), an empty body or a document
    without any signal's key is an empty request, as an OTLP/HTTP body may be. ``source`` and ``line``
    name the input in any ``InputError``.
    """
    wanted = None if signal is None else CORE_SIGNALS.index(signal)
    try:
        index, payload = _json_decoder().decode(data, wanted, empty)
    except WireError as err:
        raise InputError(source, line, str(err)) from None
    return CORE_SIGNALS[index], payload


def parse_otlp_json(
    document: str | bytes | Mapping[str, Any], *, source: str, signal: Signal | None = None, empty: bool = False
) -> tuple[Signal, OtlpRequest]:
    """Parse one OTLP/JSON document (text or already-decoded JSON) into an export request, as
    ``decode_otlp_json`` reads it."""
    if not isinstance(document, str | bytes):
        return parse_document(document, source=source, line=None, signal=signal, empty=empty)
    data = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    found, payload = decode_otlp_json(data, source=source, signal=signal, empty=empty)
    return found, FACTS[found].request_type.FromString(payload)


def load_json(data: str | bytes, source: str, *, first_line: int) -> Any:
    """Decode JSON text whose first line is line ``first_line`` of ``source``."""
    if isinstance(data, bytes):
        data = data.removeprefix(codecs.BOM_UTF8)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = first_line + data.count(b"\n", 0, err.start)
            raise InputError(source, line, f"not UTF-8 text (byte 0x{data[err.start]:02x})") from None
    else:
        text = data
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        # Text that ends too early fails after its last line break, on a line that is not there:
        # the error belongs after the last character, on the last line that has one.
        position = min(err.pos, len(text.rstrip(" \t\r\n")))
        line = text.count("\n", 0, position)
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = f"invalid JSON: {err.msg} (column {column})"
        if err.msg == "Extra data":
            reason += "; several requests need one document per line (JSON lines)"
        raise InputError(source, first_line + line, reason) from None
    except (ValueError, RecursionError) as err:  # integers too long, nesting too deep
        raise InputError(source, first_line, f"invalid JSON: {err}") from None


def _json_container(value: object) -> object:
    """What json.dumps cannot write itself (it writes tuples as lists): a Mapping other than dict."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def parse_document(
    document: Any, *, source: str, line: int | None, signal: Signal | None, empty: bool = False
) -> tuple[Signal, OtlpRequest]:
    """An already-decoded JSON document (from a reader that decoded it for its line numbers or streamed
    it) as a request: written back as JSON text for the core, which reads OTLP/JSON for everyone."""
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, default=_json_container)
        data = text.encode("utf-8", "surrogatepass")
    except ValueError:
        reason = 'invalid JSON: NaN and Infinity are not JSON; OTLP/JSON writes them as strings ("NaN")'
        raise InputError(source, line, reason) from None
    found, payload = decode_otlp_json(data, source=source, line=line, signal=signal, empty=empty)
    return found, FACTS[found].request_type.FromString(payload)
