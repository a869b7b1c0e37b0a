"""Captured OTLP telemetry files: read them into export requests, write requests back out.

The format follows the file name:

* ``.pb`` / ``.binpb``: one binary protobuf export request. Binary protobuf does not say which
  message it holds, so the signal comes from ``signal=``, else from the file name, else a guess
  (see ``read_captures``).
* ``.json``: one OTLP/JSON document, the signal named by its top-level key (``resourceMetrics``,
  ``resourceSpans`` or ``resourceLogs``). The Collector's file exporter also writes JSON lines into
  files named ``.json``; those are read as JSON lines.
* ``.jsonl`` / ``.ndjson``: JSON lines as the Collector's file exporter writes them, one request
  per line, blank lines skipped, read one line at a time so a capture of any size streams.
* ``-``: standard input, sniffed: a first non-space byte ``{`` means JSON (a document or lines),
  anything else binary protobuf.

``read_capture_stream`` reads the same formats from a stream that is already open (a pipe, a
counted file), without waiting for lines a writer has not sent yet.

OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) is protobuf's JSON
mapping with three differences, bridged here around ``google.protobuf.json_format``: trace and
span IDs are hex rather than base64, enums are integers, and receivers ignore unknown fields.

This is an edge module: it reads and writes files and does nothing else.
"""

from __future__ import annotations

import base64
import codecs
import enum
import itertools
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, BinaryIO, TypeAlias, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_contract.findings import Finding, Location


class Signal(enum.StrEnum):
    """The three OTLP signals, in the order a binary capture is tried as each."""

    METRICS = "metrics"
    TRACES = "traces"
    LOGS = "logs"


OtlpRequest: TypeAlias = ExportMetricsServiceRequest | ExportTraceServiceRequest | ExportLogsServiceRequest


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


@dataclass(frozen=True, slots=True)
class Capture:
    """One export request read from a capture, and where it came from."""

    source: str  # "path" or "path:LINE" for a JSON-lines record, "-" / "-:LINE" for stdin
    signal: Signal
    request: OtlpRequest
    raw: bytes | None  # the protobuf bytes as read, for .pb/.binpb files (None for JSON)
    findings: tuple[Finding, ...] = ()  # what the reader noticed about the input itself (a scrape's Content-Type)
    exposition: bool = False  # read from Prometheus text or OpenMetrics (so Prometheus naming lints apply)
    line: int = 0  # the JSON-lines record's line, when ``source`` is "path:LINE"

    @property
    def location(self) -> Location:
        """Where findings about this request point: file and line, as editors and CI annotations want them."""
        if self.line:
            return Location(self.source.removesuffix(f":{self.line}"), self.line)
        return Location(self.source)


_REQUEST_TYPES: Mapping[Signal, type[OtlpRequest]] = MappingProxyType(
    {
        Signal.METRICS: ExportMetricsServiceRequest,
        Signal.TRACES: ExportTraceServiceRequest,
        Signal.LOGS: ExportLogsServiceRequest,
    }
)

# json_format accepts both spellings of a field name, so the signal sniffing does too.
_TOP_LEVEL_KEYS: Mapping[Signal, tuple[str, str]] = MappingProxyType(
    {
        Signal.METRICS: ("resourceMetrics", "resource_metrics"),
        Signal.TRACES: ("resourceSpans", "resource_spans"),
        Signal.LOGS: ("resourceLogs", "resource_logs"),
    }
)


class _Format(enum.Enum):
    PROTOBUF = "protobuf"
    JSON = "json"
    JSON_LINES = "json lines"


_FORMATS: Mapping[str, _Format] = MappingProxyType(
    {
        ".pb": _Format.PROTOBUF,
        ".binpb": _Format.PROTOBUF,
        ".json": _Format.JSON,
        ".jsonl": _Format.JSON_LINES,
        ".ndjson": _Format.JSON_LINES,
    }
)
_KNOWN_EXTENSIONS = ", ".join(_FORMATS)
OTLP_EXTENSIONS: frozenset[str] = frozenset(_FORMATS)
"""The file extensions of OTLP captures (lower case, with the dot)."""

_STDIO = "-"
JSON_SPACE = b" \t\r\n"  # the whitespace JSON allows between tokens
# Every export request starts with its field 1 (the repeated resource records), length-delimited.
_PROTOBUF_FIRST_TAG = b"\x0a"


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


def _record_count(request: OtlpRequest) -> int:
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


_ID_PLANS = _build_id_plans(request_type.DESCRIPTOR for request_type in _REQUEST_TYPES.values())


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
    document: str | bytes | Mapping[str, Any], *, source: str, signal: Signal | None = None
) -> tuple[Signal, OtlpRequest]:
    """Parse one OTLP/JSON document (text or already-decoded JSON) into an export request.

    The signal comes from the top-level key; ``signal`` insists on one. Unknown fields are ignored, as
    the OTLP spec requires of receivers. ``source`` names the input in any ``InputError``. A decoded
    document is not modified.
    """
    if isinstance(document, str | bytes):
        document = _load_json(document, source, first_line=1)
    return _parse_document(document, source=source, line=None, signal=signal)


def _load_json(data: str | bytes, source: str, *, first_line: int) -> Any:
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
        reason = f"invalid JSON: {err.msg} (column {err.colno})"
        if err.msg == "Extra data":
            reason += "; several requests need one document per line (JSON lines)"
        raise InputError(source, first_line + err.lineno - 1, reason) from None
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


def _parse_document(
    document: Any, *, source: str, line: int | None, signal: Signal | None
) -> tuple[Signal, OtlpRequest]:
    if not isinstance(document, Mapping):
        raise InputError(source, line, f"not an OTLP JSON document: expected an object, found {_json_type(document)}")
    present = [s for s in Signal if any(key in document for key in _TOP_LEVEL_KEYS[s])]
    if not present:
        keys = ", ".join(keys[0] for keys in _TOP_LEVEL_KEYS.values())
        raise InputError(source, line, f"not an OTLP JSON document: none of the top-level keys {keys}")
    if signal is None:
        if len(present) > 1:
            found = " and ".join(_TOP_LEVEL_KEYS[s][0] for s in present)
            raise InputError(source, line, f"ambiguous OTLP JSON document: both {found}")
        signal = present[0]
    elif signal not in present:
        raise InputError(source, line, f"expected an OTLP {signal} document, found {_TOP_LEVEL_KEYS[present[0]][0]}")

    request_type = _REQUEST_TYPES[signal]
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


# --- binary protobuf -----------------------------------------------------------------------------

_HINT_WORDS: Mapping[Signal, frozenset[str]] = MappingProxyType(
    {
        Signal.METRICS: frozenset({"metric", "metrics"}),
        Signal.TRACES: frozenset({"trace", "traces", "span", "spans"}),
        Signal.LOGS: frozenset({"log", "logs"}),
    }
)


def _signal_hint(path: str) -> Signal | None:
    """The signal a file name names: a word such as ``metrics`` (``dump.metrics.pb``, ``otlp-spans.binpb``)
    or a name starting with a plural (``metrics2.pb``, ``logsdump.pb``); None if it names none or several."""
    stem = os.path.splitext(os.path.basename(path))[0].lower()
    words = [word for word in re.split(r"[^a-z]+", stem) if word]
    hinted = {
        signal
        for signal, names in _HINT_WORDS.items()
        for word in words
        if word in names or any(word.startswith(name) for name in names if name.endswith("s"))
    }
    return hinted.pop() if len(hinted) == 1 else None


def _decode_error_reason(err: DecodeError) -> str:
    # upb names the message type it tried, which only restates the signal already in the reason.
    return str(err).split(" with type ", 1)[0] or "Error parsing message"


def _parse_protobuf(raw: bytes, source: str, signal: Signal | None) -> tuple[Signal, OtlpRequest]:
    if signal is not None:
        try:
            return signal, _REQUEST_TYPES[signal].FromString(raw)
        except DecodeError as err:
            raise InputError(source, None, f"not an OTLP {signal} request: {_decode_error_reason(err)}") from None
    return _guess_protobuf(raw, source)


def _has_unknown_fields(request: Message) -> bool:
    # DiscardUnknownFields is recursive; comparing sizes avoids walking the tree here.
    stripped = type(request)()
    stripped.CopyFrom(request)
    stripped.DiscardUnknownFields()
    return stripped.ByteSize() != request.ByteSize()


def _guess_protobuf(raw: bytes, source: str) -> tuple[Signal, OtlpRequest]:
    """Guess the signal of a binary request that neither the caller nor the file name names.

    The bytes are parsed as metrics, then traces, then logs. A parse is a candidate when its
    top-level repeated field is non-empty, and candidates rank, the first in that order winning a tie:

    1. re-serializes to the input byte for byte and has no unknown fields anywhere;
    2. re-serializes to the input byte for byte;
    3. has no unknown fields anywhere (an encoder that orders fields otherwise or writes defaults).

    A wrong-signal parse that gets that far almost always holds unknown fields (the other signal's
    fields), and protobuf serializes unknown fields after the known ones, so the bytes change unless
    they happened to come last; ranking 1 above 2 keeps even that case from beating the right parse.
    Nothing ranked means the file is rejected; so does an empty request, which every signal parses.
    """
    candidates: list[tuple[Signal, OtlpRequest]] = []
    empty_parse = False
    decode_reason = "no resource records, only unknown fields"
    for signal, request_type in _REQUEST_TYPES.items():
        try:
            request = request_type.FromString(raw)
        except DecodeError as err:
            decode_reason = _decode_error_reason(err)
            continue
        if _record_count(request) > 0:
            candidates.append((signal, request))
        elif not _has_unknown_fields(request):
            empty_parse = True
    round_trips = [(s, r) for s, r in candidates if r.SerializeToString() == raw]
    ranked = [(s, r) for s, r in round_trips if not _has_unknown_fields(r)] + round_trips
    ranked += [(s, r) for s, r in candidates if not _has_unknown_fields(r)]
    if ranked:
        return ranked[0]
    hint = "pass the signal or name it in the file name (e.g. dump.metrics.pb)"
    if candidates:
        raise InputError(source, None, f"not recognisably an OTLP metrics, traces or logs request; {hint}")
    if empty_parse:
        raise InputError(source, None, f"an empty OTLP request: cannot tell its signal; {hint}")
    raise InputError(source, None, f"not an OTLP metrics/traces/logs request: {decode_reason}")


def _protobuf_capture(raw: bytes, source: str, signal: Signal | None) -> Capture:
    found, request = _parse_protobuf(raw, source, signal)
    return Capture(source, found, request, raw)


def _protobuf_capture_or_none(raw: bytes, source: str, signal: Signal | None) -> Capture | None:
    try:
        return _protobuf_capture(raw, source, signal)
    except InputError:
        return None


# --- reading -------------------------------------------------------------------------------------


def read_captures(
    path: str | os.PathLike[str], *, signal: Signal | None = None, stdin: BinaryIO | None = None
) -> Iterator[Capture]:
    """The export requests in a capture file, lazily, in file order.

    The format follows the extension (module docstring); ``-`` reads ``stdin`` (default
    ``sys.stdin.buffer``). ``signal`` insists on one signal; for binary protobuf, which does not say,
    it is otherwise taken from the file name (``dump.metrics.pb``, ``spans-1.binpb``, ``logs.pb``)
    or guessed (``_guess_protobuf``).

    Problems with the path itself (missing, a directory, an unknown extension) raise ``InputError``
    at once; problems with the content raise it while iterating, after the requests before them.

    A ``.json`` file is one document unless its first record fits on one line and more follow: the
    Collector writes JSON lines into ``.json`` files. That is the outcome of parsing the file whole
    and falling back to lines on an "Extra data" error, but decided from the first line, so such a
    file streams as ``.jsonl`` does.
    """
    source = os.fspath(path)
    if source == _STDIO:
        return _read_stdin(stdin if stdin is not None else sys.stdin.buffer, signal)
    if stat.S_ISDIR(stat_mode(source)):
        raise InputError(source, None, "is a directory, not a capture file")
    file_format = _FORMATS.get(os.path.splitext(source)[1].lower())
    if file_format is None:
        raise InputError(source, None, f"unknown capture format: expected a file ending in {_KNOWN_EXTENSIONS}, or -")
    return _read_file(source, file_format, signal)


def read_capture_stream(
    stream: BinaryIO, source: str, *, extension: str | None = None, signal: Signal | None = None
) -> Iterator[Capture]:
    """The export requests in an open binary stream, lazily; ``source`` names it in captures and errors.

    ``extension`` (``.pb``, ``.json``, ``.jsonl``, ...) picks the format as for a file of that name;
    None sniffs it as for stdin, except that a first line holding a whole JSON document is taken as
    the first of JSON lines and yielded before the next line is read (source ``NAME:1``): a reader
    on a pipe must not wait for input the writer has not sent yet. The stream is not closed.
    """
    if extension is None:
        return _read_sniffed(stream, source, signal, lookahead=False)
    file_format = _FORMATS.get(extension.lower())
    if file_format is None:
        raise InputError(source, None, f"unknown capture format: expected a file ending in {_KNOWN_EXTENSIONS}, or -")
    hint = _signal_hint(source) if file_format is _Format.PROTOBUF else None
    return _read_stream(stream, source, file_format, signal or hint)


def stat_mode(path: str, *, missing: str = "no such file") -> int:
    """``path``'s st_mode; ``InputError`` naming the path when it is missing or cannot be read."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(path, None, missing) from None
    except OSError as err:
        raise InputError.unreadable(path, err) from None


def _read_file(source: str, file_format: _Format, signal: Signal | None) -> Iterator[Capture]:
    try:
        with open(source, "rb") as stream:
            hint = _signal_hint(source) if file_format is _Format.PROTOBUF else None
            yield from _read_stream(stream, source, file_format, signal or hint)
    except OSError as err:
        raise InputError.unreadable(source, err) from None


def _read_stream(stream: BinaryIO, source: str, file_format: _Format, signal: Signal | None) -> Iterator[Capture]:
    if file_format is _Format.PROTOBUF:
        yield _protobuf_capture(stream.read(), source, signal)
        return
    head = _read_head(stream)
    if head is None:
        if file_format is _Format.JSON:
            raise InputError(source, None, "empty file: no OTLP JSON document")
        return  # an empty JSON-lines capture holds no requests, which is no error
    if file_format is _Format.JSON_LINES:
        yield from _json_lines(stream, source, signal, head)
    else:
        yield from _json_document_or_lines(stream, source, signal, head, protobuf_fallback=False)


def _read_stdin(stream: BinaryIO, signal: Signal | None) -> Iterator[Capture]:
    return _read_sniffed(stream, _STDIO, signal, lookahead=True)


def _read_sniffed(stream: BinaryIO, source: str, signal: Signal | None, *, lookahead: bool) -> Iterator[Capture]:
    head = _read_head(stream)
    if head is None:
        where = "on stdin" if source == _STDIO else "in the input"
        raise InputError(source, None, f"empty input: no OTLP request {where}")
    if head.line.lstrip(JSON_SPACE).startswith(b"{"):
        yield from _json_document_or_lines(stream, source, signal, head, protobuf_fallback=True, lookahead=lookahead)
    else:
        yield _protobuf_capture(head.skipped + head.line + stream.read(), source, signal)


@dataclass(frozen=True, slots=True)
class _Head:
    """The start of a stream: blank lines, verbatim, then the first line with content."""

    skipped: bytes
    number: int
    line: bytes


def _read_head(stream: BinaryIO) -> _Head | None:
    skipped = bytearray()
    number = 0
    while line := stream.readline():
        number += 1
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if line.strip(JSON_SPACE):
            return _Head(bytes(skipped), number, line)
        skipped += line
    return None


def _numbered_lines(stream: BinaryIO, after: int) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines after line ``after``, one at a time, with their line numbers."""
    number = after
    while line := stream.readline():
        number += 1
        if line.strip(JSON_SPACE):
            yield number, line


def _line_capture(source: str, number: int, line: bytes, signal: Signal | None) -> Capture:
    document = _load_json(line, source, first_line=number)
    found, request = _parse_document(document, source=source, line=number, signal=signal)
    return Capture(f"{source}:{number}", found, request, None, line=number)


def _json_lines(stream: BinaryIO, source: str, signal: Signal | None, head: _Head) -> Iterator[Capture]:
    yield _line_capture(source, head.number, head.line, signal)
    for number, line in _numbered_lines(stream, head.number):
        yield _line_capture(source, number, line, signal)


def _json_document_or_lines(
    stream: BinaryIO,
    source: str,
    signal: Signal | None,
    head: _Head,
    *,
    protobuf_fallback: bool,
    lookahead: bool = True,
) -> Iterator[Capture]:
    try:
        first = json.loads(head.line.decode("utf-8"))
    except (ValueError, RecursionError):
        # The first record is not a document on its own line, so this is one document over several
        # lines (pretty-printed): it is read whole, as the one document it is.
        data = head.skipped + head.line + stream.read()
        document: Any = None
        sniffed_wrong: Capture | None = None
        try:
            document = _load_json(data, source, first_line=1)
        except InputError:
            # Binary protobuf can sniff as JSON: a request's first byte is a newline and the next, a
            # length, may be "{". The JSON error stands unless the bytes make sense as protobuf.
            if protobuf_fallback and data.startswith(_PROTOBUF_FIRST_TAG):
                sniffed_wrong = _protobuf_capture_or_none(data, source, signal)
            if sniffed_wrong is None:
                raise
        if sniffed_wrong is not None:
            yield sniffed_wrong
            return
        yield Capture(source, *_parse_document(document, source=source, line=None, signal=signal), None)
        return

    rest = _numbered_lines(stream, head.number)
    if lookahead:
        following = next(rest, None)
        if following is None:
            yield Capture(source, *_parse_document(first, source=source, line=None, signal=signal), None)
            return
        rest = itertools.chain([following], rest)
    found, request = _parse_document(first, source=source, line=head.number, signal=signal)
    yield Capture(f"{source}:{head.number}", found, request, None, line=head.number)
    for number, line in rest:
        yield _line_capture(source, number, line, signal)


# --- writing -------------------------------------------------------------------------------------


def write_capture(
    path: str | os.PathLike[str], requests: Iterable[OtlpRequest], *, stdout: BinaryIO | None = None
) -> None:
    """Write export requests to a capture file that ``read_captures`` reads back, format by extension.

    ``.pb`` / ``.binpb``: exactly one request, binary protobuf. ``.json``: one request as a document
    indented by 2; several as JSON lines, as the Collector writes them. ``.jsonl`` / ``.ndjson``: one
    compact OTLP/JSON line per request. ``-``: JSON lines to ``stdout`` (default ``sys.stdout.buffer``).

    A wrong number of requests or an unknown extension raises ``ValueError`` before the file is
    touched; a request that is not an OTLP export request raises ``TypeError``; I/O errors propagate.
    """
    target = os.fspath(path)
    pending = iter(requests)
    if target == _STDIO:
        out = stdout if stdout is not None else sys.stdout.buffer
        _write_lines(out, pending)
        out.flush()
        return
    file_format = _FORMATS.get(os.path.splitext(target)[1].lower())
    if file_format is None:
        raise ValueError(f"{target}: unknown capture format: expected a file ending in {_KNOWN_EXTENSIONS}, or -")
    head = list(itertools.islice(pending, 2))
    for request in head:
        signal_of(request)
    if file_format is _Format.PROTOBUF:
        if len(head) != 1:
            count = "no request" if not head else "more than one request"
            raise ValueError(f"{target}: a protobuf capture holds exactly one request, got {count}")
        data = head[0].SerializeToString()
        with open(target, "wb") as stream:
            stream.write(data)
        return
    if file_format is _Format.JSON and not head:
        raise ValueError(f"{target}: a JSON capture holds at least one request, got none")
    with open(target, "wb") as stream:
        if file_format is _Format.JSON and len(head) == 1:
            text = json.dumps(to_otlp_json(head[0]), indent=2, ensure_ascii=False, allow_nan=False)
            stream.write(text.encode("utf-8") + b"\n")
        else:
            _write_lines(stream, itertools.chain(head, pending))


def _write_lines(stream: BinaryIO, requests: Iterator[OtlpRequest]) -> None:
    for request in requests:
        line = json.dumps(to_otlp_json(request), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        stream.write(line.encode("utf-8") + b"\n")


__all__ = [
    "OTLP_EXTENSIONS",
    "Capture",
    "InputError",
    "OtlpRequest",
    "Signal",
    "parse_otlp_json",
    "read_capture_stream",
    "read_captures",
    "signal_of",
    "to_otlp_json",
    "write_capture",
]
