"""The OTLP vocabulary: the three signals, one table of what each one is on the wire, and OTLP/JSON.

Everything that needs to know "which message, which gRPC method, which ``partial_success`` field,
which JSON key" for a signal reads it from ``FACTS`` here: the engine, the receivers, the exporters,
the input readers. The OTLP/JSON codec lives here too, because the file readers and the sidecar's
receivers both speak it.

OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) is protobuf's JSON
mapping with three differences, bridged here around ``google.protobuf.json_format``: trace and
span IDs are hex rather than base64, enums are integers, and receivers ignore unknown fields.
"""

from __future__ import annotations

import base64
import codecs
import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
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


class Signal(enum.StrEnum):
    """The three OTLP signals, in the order a binary capture is tried as each."""

    METRICS = "metrics"
    TRACES = "traces"
    LOGS = "logs"


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
# alone, so an ID is recognised under either spelling (traceId / trace_id) and only where the schema
# puts one (spans, span links, log records, exemplars); subtrees that cannot hold an ID (resources,
# attributes, data point values) are not walked at all.

_ID_FIELD_NAMES = frozenset({"trace_id", "span_id", "parent_span_id"})


@dataclass(frozen=True, slots=True)
class _IdPlan:
    """Where IDs occur under one message type, keyed by both JSON spellings of each field."""

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
        ids = frozenset(key for field in fields if _is_id(field) for key in (field.name, field.json_name))
        children = {
            key: child
            for field in fields
            if (child := child_name(field)) is not None and child in holders
            for key in (field.name, field.json_name)
        }
        plans[name] = _IdPlan(ids, MappingProxyType(children))
    return MappingProxyType(plans)


_ID_PLANS = _build_id_plans(facts.request_type.DESCRIPTOR for facts in FACTS.values())


class _BadId(Exception):
    """An ID that is not hex; ``path`` grows as the exception unwinds, so the happy path builds none."""

    def __init__(self, key: str, value: object) -> None:
        super().__init__(key, value)
        self.path = [key]
        self.value = value


def _convert_ids(node: Any, type_name: str, convert: Callable[[str, Any], Any]) -> Any:
    """A copy of ``node`` with every ID value passed through ``convert``; the input is never changed."""
    plan = _ID_PLANS.get(type_name)
    if plan is None or not isinstance(node, Mapping):
        return node  # wrong shapes are left for json_format to report
    converted = dict(node)
    for key, value in node.items():
        if key in plan.ids:
            converted[key] = convert(key, value)
        elif (child := plan.children.get(key)) is not None:
            if isinstance(value, list):
                items = []
                for index, item in enumerate(value):
                    try:
                        items.append(_convert_ids(item, child, convert))
                    except _BadId as err:
                        err.path.insert(0, f"{key}[{index}]")
                        raise
                converted[key] = items
            else:
                try:
                    converted[key] = _convert_ids(value, child, convert)
                except _BadId as err:
                    err.path.insert(0, key)
                    raise
    return converted


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _hex_to_base64(key: str, value: Any) -> Any:
    if value is None:
        return None  # JSON null means "not set", as for any field
    # bytes.fromhex alone would also accept spaces between the digits.
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise _BadId(key, value)
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _base64_to_hex(key: str, value: Any) -> Any:
    return base64.b64decode(value).hex()


# --- OTLP/JSON -----------------------------------------------------------------------------------


def to_otlp_json(request: OtlpRequest) -> dict[str, Any]:
    """The OTLP/JSON encoding of a request: lowerCamelCase keys, hex IDs, integer enums, 64-bit ints as strings."""
    signal_of(request)  # only OTLP requests: other messages have no OTLP/JSON encoding
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    return cast(dict[str, Any], _convert_ids(document, request.DESCRIPTOR.full_name, _base64_to_hex))


def parse_otlp_json(
    document: str | bytes | Mapping[str, Any], *, source: str, signal: Signal | None = None, empty: bool = False
) -> tuple[Signal, OtlpRequest]:
    """Parse one OTLP/JSON document (text or already-decoded JSON) into an export request.

    The signal comes from the top-level key; ``signal`` insists on one. Unknown fields are ignored, as
    the OTLP spec requires of receivers; with ``empty`` (and ``signal``), a document without any
    signal's key is an empty request, as an OTLP/HTTP body may be. ``source`` names the input in any
    ``InputError``. A decoded document is not modified.
    """
    if isinstance(document, str | bytes):
        document = load_json(document, source, first_line=1)
    return parse_document(document, source=source, line=None, signal=signal, empty=empty)


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


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


_PARSE_ERROR_STEP = re.compile(r"Failed to parse (\w+) field: ")
_PARSE_ERROR_AT = re.compile(r" at Export\w+ServiceRequest\.(\S+)$")


def _describe_parse_error(err: json_format.ParseError) -> str:
    """json_format's nested 'Failed to parse X field: ...' chain, condensed to 'path: problem'."""
    text = " ".join(str(err).splitlines())
    steps = []
    while step := _PARSE_ERROR_STEP.match(text):
        steps.append(step[1])
        text = text[step.end() :]
    text = text.rstrip(".")
    path = ".".join(steps)
    if at := _PARSE_ERROR_AT.search(text):
        path, text = at[1].rstrip("."), text[: at.start()]
    return f"{path}: {text}" if path else text


def parse_document(
    document: Any, *, source: str, line: int | None, signal: Signal | None, empty: bool = False
) -> tuple[Signal, OtlpRequest]:
    if not isinstance(document, Mapping):
        raise InputError(source, line, f"not an OTLP JSON document: expected an object, found {_json_type(document)}")
    present = [s for s in Signal if any(key in document for key in FACTS[s].json_keys)]
    if not present and empty and signal is not None:
        return signal, FACTS[signal].request_type()
    if not present:
        keys = ", ".join(facts.json_keys[0] for facts in FACTS.values())
        raise InputError(source, line, f"not an OTLP JSON document: none of the top-level keys {keys}")
    if signal is None:
        if len(present) > 1:
            found = " and ".join(FACTS[s].json_keys[0] for s in present)
            raise InputError(source, line, f"ambiguous OTLP JSON document: both {found}")
        signal = present[0]
    elif signal not in present:
        raise InputError(source, line, f"expected an OTLP {signal} document, found {FACTS[present[0]].json_keys[0]}")

    request_type = FACTS[signal].request_type
    try:
        converted = _convert_ids(document, request_type.DESCRIPTOR.full_name, _hex_to_base64)
    except _BadId as err:
        shown = repr(err.value) if len(repr(err.value)) <= 40 else repr(err.value)[:37] + "..."
        field = ".".join(err.path)
        raise InputError(source, line, f"{field}: not a hex ID: {shown}") from None
    try:
        request = json_format.ParseDict(converted, request_type(), ignore_unknown_fields=True)
    except json_format.ParseError as err:
        raise InputError(source, line, f"invalid OTLP {signal} JSON: {_describe_parse_error(err)}") from None
    return signal, request
