"""OTLP captures: SDK-encoded requests through every file format and back, OTLP/JSON rules, errors."""

from __future__ import annotations

import base64
import inspect
import io
import json
import pickle
import shutil
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourcePb
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_contract.inputs.otlp import MAX_JSON_RECORD, Capture, read_captures, write_capture
from otel_contract.otlp import (
    FACTS,
    InputError,
    OtlpRequest,
    Signal,
    decode_otlp_json,
    parse_otlp_json,
    signal_of,
    to_otlp_json,
)
from tests import core_corpus

DATA = Path(__file__).resolve().parent / "data" / "otlp"
COLLECTOR_JSONL = DATA / "collector-file-exporter.jsonl"
TRACE_ID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
SPAN_ID = bytes.fromhex("00f067aa0ba902b7")


# ---------------------------------------------------------------------------
# Requests as the real SDK encodes them
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_requests() -> Iterator[dict[Signal, OtlpRequest]]:
    """One request per signal from the SDK's own OTLP encoders, recorded inside a sampled span so
    metrics carry exemplars and logs carry trace context: hex IDs at every place OTLP has them."""
    resource = Resource.create({"service.name": "checkout", "service.version": "1.4.0"})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))

    tracer = tracer_provider.get_tracer("checkout.http", "1.0.0")
    meter = meter_provider.get_meter("checkout.http", "1.0.0")
    logger = logger_provider.get_logger("checkout.http")
    requests = meter.create_counter("http.server.request.count", unit="{request}")
    duration = meter.create_histogram("http.server.duration", unit="ms")
    in_flight = meter.create_gauge("http.server.active_requests", unit="{request}")

    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as parent:
        link = Link(parent.get_span_context(), {"link.reason": "retry"})
        with tracer.start_as_current_span("SELECT cart", kind=SpanKind.CLIENT, links=[link]) as child:
            child.add_event("row fetched", {"rows": 3})
            child.set_status(Status(StatusCode.ERROR, "timeout"))
            requests.add(3, {"http.route": "/cart", "http.status_code": 200})
            duration.record(12.5, {"http.route": "/cart"})
            in_flight.set(4, {"http.route": "/cart"})
            logger.emit(body="cart fetched", severity_number=SeverityNumber.INFO, attributes={"rows": 3})

    built: dict[Signal, OtlpRequest] = {
        Signal.METRICS: encode_metrics(reader.get_metrics_data()),  # type: ignore[arg-type]
        Signal.TRACES: encode_spans(spans.get_finished_spans()),
        Signal.LOGS: encode_logs(logs.get_finished_logs()),
    }
    yield built
    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()


def test_sdk_requests_carry_ids_everywhere_otlp_has_them(sdk_requests: dict[Signal, OtlpRequest]) -> None:
    metrics = sdk_requests[Signal.METRICS]
    assert isinstance(metrics, ExportMetricsServiceRequest)
    kinds = {m.WhichOneof("data") for m in metrics.resource_metrics[0].scope_metrics[0].metrics}
    assert kinds == {"sum", "histogram", "gauge"}
    points = metrics.resource_metrics[0].scope_metrics[0].metrics[1].histogram.data_points
    assert len(points[0].exemplars[0].trace_id) == 16
    traces = sdk_requests[Signal.TRACES]
    assert isinstance(traces, ExportTraceServiceRequest)
    spans = traces.resource_spans[0].scope_spans[0].spans
    assert {len(s.parent_span_id) for s in spans} == {0, 8}
    assert any(s.links for s in spans)
    logs = sdk_requests[Signal.LOGS]
    assert isinstance(logs, ExportLogsServiceRequest)
    assert len(logs.resource_logs[0].scope_logs[0].log_records[0].trace_id) == 16


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("signal", list(Signal))
def test_to_otlp_json_round_trips(sdk_requests: dict[Signal, OtlpRequest], signal: Signal) -> None:
    request = sdk_requests[signal]
    document = to_otlp_json(request)
    assert parse_otlp_json(document, source="mem", signal=None) == (signal, request)
    assert parse_otlp_json(json.dumps(document), source="mem") == (signal, request)
    assert parse_otlp_json(json.dumps(document).encode(), source="mem", signal=signal) == (signal, request)


@pytest.mark.parametrize("signal", list(Signal))
@pytest.mark.parametrize("extension", [".pb", ".binpb", ".json", ".jsonl", ".ndjson"])
def test_file_round_trip(
    sdk_requests: dict[Signal, OtlpRequest], signal: Signal, extension: str, tmp_path: Path
) -> None:
    # A name without a signal in it, so binary captures go through the guess.
    path = tmp_path / f"capture{extension}"
    request = sdk_requests[signal]
    write_capture(path, [request])
    (capture,) = read_captures(path)
    assert capture.signal is signal
    assert capture.request == request
    if extension in (".pb", ".binpb"):
        assert capture.source == str(path)
        assert capture.raw == request.SerializeToString() == path.read_bytes()
    else:
        assert capture.raw is None
        assert capture.source == (str(path) if extension == ".json" else f"{path}:1")


@pytest.mark.parametrize("extension", [".json", ".jsonl"])
def test_json_ids_are_hex_not_base64(sdk_requests: dict[Signal, OtlpRequest], extension: str, tmp_path: Path) -> None:
    path = tmp_path / f"all{extension}"
    write_capture(path, sdk_requests.values())
    text = path.read_text("utf-8")
    traces = sdk_requests[Signal.TRACES]
    assert isinstance(traces, ExportTraceServiceRequest)
    ids = [traces.resource_spans[0].scope_spans[0].spans[0].trace_id]
    ids += [s.span_id for s in traces.resource_spans[0].scope_spans[0].spans]
    for raw_id in ids:
        assert f'"{raw_id.hex()}"' in text
        assert base64.b64encode(raw_id).decode() not in text
    assert f'"traceId": "{ids[0].hex()}"' in text or f'"traceId":"{ids[0].hex()}"' in text
    assert [c.request for c in read_captures(path)] == list(sdk_requests.values())


def test_json_encoding_follows_otlp_rules(sdk_requests: dict[Signal, OtlpRequest]) -> None:
    spans = to_otlp_json(sdk_requests[Signal.TRACES])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    child = next(s for s in spans if s["name"] == "SELECT cart")
    assert child["kind"] == SpanKind.CLIENT.value + 1  # OTLP counts from SPAN_KIND_UNSPECIFIED = 0
    assert child["status"]["code"] == 2  # integer enum, not "STATUS_CODE_ERROR"
    assert child["parentSpanId"] == spans[1]["spanId"]
    assert child["links"][0]["traceId"] == child["traceId"]
    assert len(child["traceId"]) == 32 and len(child["spanId"]) == 16
    assert isinstance(child["startTimeUnixNano"], str)  # 64-bit integers as strings, like the Collector
    metric = to_otlp_json(sdk_requests[Signal.METRICS])["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    assert metric["sum"]["aggregationTemporality"] == 2
    exemplar = metric["sum"]["dataPoints"][0]["exemplars"][0]
    assert len(exemplar["traceId"]) == 32 and len(exemplar["spanId"]) == 16
    record = to_otlp_json(sdk_requests[Signal.LOGS])["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["severityNumber"] == SeverityNumber.INFO.value
    assert len(record["traceId"]) == 32


def test_json_document_is_pretty_and_lines_are_compact(sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path) -> None:
    request = sdk_requests[Signal.TRACES]
    write_capture(tmp_path / "one.json", [request])
    write_capture(tmp_path / "one.jsonl", [request])
    pretty = (tmp_path / "one.json").read_text("utf-8")
    assert pretty.startswith('{\n  "resourceSpans": [\n')
    assert json.loads(pretty) == to_otlp_json(request)
    compact = (tmp_path / "one.jsonl").read_text("utf-8")
    assert compact.count("\n") == 1 and compact.endswith("}\n") and ": " not in compact


def test_several_requests_in_a_json_file_become_json_lines(
    sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path
) -> None:
    path = tmp_path / "collector.json"
    write_capture(path, (r for r in sdk_requests.values()))  # a generator: the writer streams
    assert len(path.read_text("utf-8").splitlines()) == 3
    captures = list(read_captures(path))
    assert [c.source for c in captures] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    assert [c.signal for c in captures] == list(Signal)


def test_write_to_stdout_is_json_lines(sdk_requests: dict[Signal, OtlpRequest]) -> None:
    out = io.BytesIO()
    write_capture("-", sdk_requests.values(), stdout=out)
    captures = list(read_captures("-", stdin=io.BytesIO(out.getvalue())))
    assert [c.source for c in captures] == ["-:1", "-:2", "-:3"]
    assert [c.request for c in captures] == list(sdk_requests.values())


def test_write_defaults_to_sys_stdout(
    sdk_requests: dict[Signal, OtlpRequest], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write_capture("-", [sdk_requests[Signal.LOGS]])
    out = capsysbinary.readouterr().out
    assert out.count(b"\n") == 1
    assert parse_otlp_json(out, source="-") == (Signal.LOGS, sdk_requests[Signal.LOGS])


def _hand_built_requests(trace_id: bytes, span_id: bytes, name: str, when: int, value: float) -> list[OtlpRequest]:
    attributes = [KeyValue(key=name, value=AnyValue(bytes_value=trace_id))]  # bytes stay base64
    return [
        ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    scope_spans=[
                        ScopeSpans(
                            spans=[
                                Span(
                                    trace_id=trace_id,
                                    span_id=span_id,
                                    parent_span_id=span_id[::-1],
                                    name=name,
                                    start_time_unix_nano=when,
                                    attributes=attributes,
                                    links=[Span.Link(trace_id=trace_id, span_id=span_id)],
                                )
                            ]
                        )
                    ]
                )
            ]
        ),
        ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    scope_logs=[
                        ScopeLogs(
                            log_records=[
                                LogRecord(
                                    trace_id=trace_id,
                                    span_id=span_id,
                                    time_unix_nano=when,
                                    body=AnyValue(string_value=name),
                                )
                            ]
                        )
                    ]
                )
            ]
        ),
        ExportMetricsServiceRequest(
            resource_metrics=[
                ResourceMetrics(
                    resource=ResourcePb(attributes=attributes),
                    scope_metrics=[
                        ScopeMetrics(
                            metrics=[
                                Metric(
                                    name=name,
                                    sum=Sum(
                                        data_points=[
                                            NumberDataPoint(
                                                as_double=value,
                                                time_unix_nano=when,
                                                exemplars=[
                                                    Exemplar(trace_id=trace_id, span_id=span_id, as_double=value)
                                                ],
                                            )
                                        ]
                                    ),
                                )
                            ]
                        )
                    ],
                )
            ]
        ),
    ]


@settings(max_examples=60, deadline=None)
@given(
    trace_id=st.binary(max_size=20),
    span_id=st.binary(min_size=1, max_size=12),
    name=st.text(max_size=20),
    when=st.integers(min_value=0, max_value=2**64 - 1),
    value=st.floats(allow_nan=False),
)
def test_json_round_trip_property(trace_id: bytes, span_id: bytes, name: str, when: int, value: float) -> None:
    for request in _hand_built_requests(trace_id, span_id, name, when, value):
        text = json.dumps(to_otlp_json(request), allow_nan=False)
        assert parse_otlp_json(text, source="prop") == (signal_of(request), request)
        assert decode_otlp_json(text.encode(), source="prop")[1] == request.SerializeToString()


def test_the_core_reads_json_into_the_bytes_the_python_side_serializes() -> None:
    """Every request of the core's corpus that parses (hostile values: NaN, -0.0, huge ints, every data
    type, surrogates in strings), written as OTLP/JSON by json_format, is read by the core into the very
    bytes protobuf's Python serializer writes: field order, defaults and presence included."""
    compared = 0
    for case in core_corpus.load():
        signal = Signal(case["signal"])
        try:
            request = FACTS[signal].request_type.FromString(bytes.fromhex(case["payload"]))
        except DecodeError:
            continue
        request.DiscardUnknownFields()  # JSON has no place for them
        if request.ByteSize() == 0:
            continue  # {} names no signal: a document needs its key (test_not_an_otlp_document)
        text = json.dumps(to_otlp_json(request)).encode()
        assert decode_otlp_json(text, source="corpus") == (signal, request.SerializeToString())
        compared += 1
    assert compared > 300


_GAUGE_POINT = '{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [%s]}}]}]}]}'


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ('{"timeUnixNano": "1e3", "asDouble": "5.0"}', {"timeUnixNano": "1000", "asDouble": 5.0}),
        ('{"timeUnixNano": 1000.0, "asInt": "-0"}', {"timeUnixNano": "1000", "asInt": "0"}),
        ('{"asDouble": "-Infinity", "flags": 1}', {"asDouble": "-Infinity", "flags": 1}),
        ('{"asDouble": -0.0}', {"asDouble": -0.0}),
    ],
)
def test_numbers_read_in_every_spelling_the_mapping_allows(point: str, expected: dict[str, object]) -> None:
    """As json_format reads them (and Go's protojson, the Collector's): integers as JSON numbers or
    strings, in exponent notation too; doubles as numbers or strings; a oneof member set to zero stays set."""
    _, payload = decode_otlp_json((_GAUGE_POINT % point).encode(), source="x")
    request = ExportMetricsServiceRequest.FromString(payload)
    (read,) = to_otlp_json(request)["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"]
    assert read == expected


def test_an_enum_number_written_as_a_string_is_read() -> None:
    text = '{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"sum": {"aggregationTemporality": "2"}}]}]}]}'
    _, payload = decode_otlp_json(text.encode(), source="x")
    assert ExportMetricsServiceRequest.FromString(payload).resource_metrics[0].scope_metrics[0].metrics[0].sum == (
        json_format.ParseDict({"aggregationTemporality": 2}, Sum())
    )


def test_a_huge_value_is_cut_in_the_error_that_names_it() -> None:
    """A hostile multi-megabyte value must not come back whole in an OTLP/HTTP answer."""
    for text in (
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "%s"}]}]}]}' % ("x" * 100_000),
        '{"resourceMetrics": "%s"}' % ("x" * 100_000),
        _GAUGE_POINT % ('{"timeUnixNano": "%s"}' % ("9" * 100_000)),
    ):
        with pytest.raises(InputError) as caught:
            decode_otlp_json(text.encode(), source="x")
        assert len(caught.value.reason) < 500, caught.value.reason[:100]


def test_another_signals_key_beside_the_one_asked_for_is_ignored() -> None:
    text = b'{"resourceMetrics": [], "resourceSpans": [{}]}'
    assert decode_otlp_json(text, source="x", signal=Signal.METRICS) == (Signal.METRICS, b"")
    with pytest.raises(InputError, match="ambiguous OTLP JSON document: both resourceMetrics and resourceSpans"):
        decode_otlp_json(text, source="x")


def _hex_ids(node: object) -> object:
    """json_format's base64 IDs (snake_case keys) in hex, as OTLP/JSON writes them."""
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    if not isinstance(node, dict):
        return node
    ids = ("trace_id", "span_id", "parent_span_id")
    return {k: base64.b64decode(v).hex() if k in ids else _hex_ids(v) for k, v in node.items()}


def test_snake_case_keys_and_enum_names_read_as_the_canonical_json(sdk_requests: dict[Signal, OtlpRequest]) -> None:
    """The spellings the protobuf JSON mapping also accepts: original field names, enums by name."""
    for signal, request in sdk_requests.items():
        snake = json_format.MessageToDict(request, preserving_proto_field_name=True)
        assert FACTS[signal].json_keys[1] in snake  # resource_spans, not resourceSpans
        text = json.dumps(_hex_ids(snake)).encode()
        assert decode_otlp_json(text, source="sdk") == (signal, request.SerializeToString())


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
_OTLP_KEYS = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "traceId",
        "spanId",
        "links",
        "resourceMetrics",
        "scopeMetrics",
        "metrics",
        "sum",
        "dataPoints",
        "exemplars",
        "asInt",
        "resourceLogs",
        "scopeLogs",
        "logRecords",
        "body",
        "attributes",
        "value",
        "kind",
        "timeUnixNano",
    ]
)
_OTLP_SHAPED = st.recursive(
    _JSON_VALUES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_OTLP_KEYS, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(document=_OTLP_SHAPED)
def test_any_json_is_a_request_or_an_input_error(document: object) -> None:
    # Whatever a capture holds, the reader reports it as an InputError, never another exception.
    for candidate in (document, {"resourceSpans": document}, {"resourceMetrics": [document]}):
        try:
            parse_otlp_json(json.dumps(candidate), source="fuzz")
        except InputError as error:
            assert "\n" not in str(error)


@settings(max_examples=400, deadline=None)
@given(document=_OTLP_SHAPED)
def test_what_the_core_reads_json_format_reads_alike(document: object) -> None:
    """protobuf's json_format (what read OTLP/JSON before the core) as the oracle, on documents without
    IDs (which it would take as base64): what the core reads, json_format reads into the same request.
    The converse does not hold by design: json_format also takes a string or a list where a message
    belongs (as a message without fields), which the core refuses."""
    for signal, candidate in (
        (Signal.TRACES, {"resourceSpans": document}),
        (Signal.METRICS, {"resourceMetrics": [document]}),
    ):
        try:
            text = json.dumps(candidate, allow_nan=False)
        except ValueError:
            continue  # Infinity is not JSON
        if "Id" in text:
            continue
        try:
            found, payload = decode_otlp_json(text.encode(), source="fuzz")
        except InputError:
            continue
        expected = json_format.ParseDict(candidate, FACTS[signal].request_type(), ignore_unknown_fields=True)
        assert (found, FACTS[signal].request_type.FromString(payload)) == (signal, expected)


def test_signal_of() -> None:
    assert signal_of(ExportMetricsServiceRequest()) is Signal.METRICS
    assert signal_of(ExportTraceServiceRequest()) is Signal.TRACES
    assert signal_of(ExportLogsServiceRequest()) is Signal.LOGS
    with pytest.raises(TypeError, match="Span"):
        signal_of(Span())  # type: ignore[arg-type]
    assert Signal("metrics") is Signal.METRICS and str(Signal.LOGS) == "logs"


# ---------------------------------------------------------------------------
# OTLP/JSON as others write it
# ---------------------------------------------------------------------------


def test_collector_json_lines_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    captures = list(read_captures(COLLECTOR_JSONL.name))
    assert [c.source for c in captures] == [f"{COLLECTOR_JSONL.name}:1", f"{COLLECTOR_JSONL.name}:3"]
    metrics, traces = captures[0].request, captures[1].request
    assert isinstance(metrics, ExportMetricsServiceRequest) and isinstance(traces, ExportTraceServiceRequest)
    point = metrics.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    # 64-bit integers as strings or numbers, hex IDs in either case, unknown fields ignored.
    assert point.time_unix_nano == 1_700_000_060_000_000_000
    assert list(point.bucket_counts) == [0, 2, 1]
    assert point.exemplars[0].span_id == SPAN_ID and point.exemplars[0].trace_id == TRACE_ID
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id, span.parent_span_id) == (TRACE_ID, SPAN_ID, b"")
    assert span.kind == Span.SPAN_KIND_SERVER and span.status.code == 1
    assert span.links[0].span_id == bytes.fromhex("b7ad6b7169203331")


def test_snake_case_keys_are_accepted() -> None:
    document = {
        "resource_spans": [{"scope_spans": [{"spans": [{"trace_id": TRACE_ID.hex(), "span_id": "", "kind": 3}]}]}]
    }
    signal, request = parse_otlp_json(document, source="snake")
    assert signal is Signal.TRACES and isinstance(request, ExportTraceServiceRequest)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id, span.kind) == (TRACE_ID, b"", Span.SPAN_KIND_CLIENT)


def test_unknown_fields_and_null_ids_are_ignored() -> None:
    document = {
        "resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": None, "newField": [1, {"x": 2}]}]}], "extra": 1}],
        "partialSuccessHint": True,
    }
    signal, request = parse_otlp_json(document, source="future")
    assert signal is Signal.LOGS
    assert request == ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord()])])]
    )


def test_parse_does_not_modify_a_decoded_document() -> None:
    span = {"traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex()}
    document = MappingProxyType({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    parse_otlp_json(document, source="mem")
    assert span == {"traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex()}


def test_json_file_with_one_document_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "one-line.json"
    path.write_text('\n{"resourceLogs": []}\n\n', "utf-8")
    (capture,) = read_captures(path)
    assert (capture.source, capture.signal, capture.request) == (str(path), Signal.LOGS, ExportLogsServiceRequest())


def test_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "windows.json"
    path.write_bytes(b'\xef\xbb\xbf{\n  "resourceMetrics": []\n}\n')
    assert [c.signal for c in read_captures(path)] == [Signal.METRICS]


def test_empty_json_lines_file_holds_no_requests(tmp_path: Path) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_text("\n  \n", "utf-8")
    assert list(read_captures(path)) == []


# ---------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------


def _big_json_lines(path: Path, request: OtlpRequest, lines: int) -> int:
    write_capture(path, [request] * lines)
    return path.stat().st_size


def test_json_lines_are_read_lazily(sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path) -> None:
    small = tmp_path / "warm-up.jsonl"
    write_capture(small, [sdk_requests[Signal.METRICS]])
    next(read_captures(small))  # first-use imports and caches are not what this test measures
    path = tmp_path / "big.jsonl"
    size = _big_json_lines(path, sdk_requests[Signal.METRICS], 2_000)
    assert size > 3_000_000

    tracemalloc.start()
    try:
        captures = read_captures(path)
        first = next(captures)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert inspect.isgenerator(captures)
    assert first.source == f"{path}:1"
    assert peak < size / 50, f"reading one record of {size} bytes allocated {peak}"
    assert sum(1 for _ in captures) == 1_999


def test_json_lines_in_a_json_file_stream_too(sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path) -> None:
    path = tmp_path / "collector-output.json"
    size = _big_json_lines(path, sdk_requests[Signal.TRACES], 1_000)
    next(read_captures(path))
    tracemalloc.start()
    try:
        first = next(read_captures(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.source == f"{path}:1"
    assert peak < size / 20


def test_records_before_a_bad_line_are_yielded(tmp_path: Path) -> None:
    path = tmp_path / "truncated.jsonl"
    path.write_text('{"resourceSpans": []}\n{"resourceLogs": []}\n{"resourceMetrics": []}\n{"resourceSpa', "utf-8")
    captures = read_captures(path)
    assert [next(captures).signal for _ in range(3)] == [Signal.TRACES, Signal.LOGS, Signal.METRICS]
    with pytest.raises(InputError) as caught:
        next(captures)
    assert caught.value.line == 4
    assert str(caught.value) == f"{path}:4: invalid JSON: Unterminated string starting at (column 2)"


# ---------------------------------------------------------------------------
# Binary protobuf: the signal from the caller, the file name or a guess
# ---------------------------------------------------------------------------

# One resource record: an unknown field 99, then schema_url "x" (field 3 in all three signals).
_UNRECOGNISABLE = b"\x0a\x06\x98\x06\x01\x1a\x01x"

# Only a resource: the same bytes parse, and round-trip, as any of the three signals.
_RESOURCE_ONLY = ExportMetricsServiceRequest(
    resource_metrics=[
        ResourceMetrics(resource=ResourcePb(attributes=[KeyValue(key="a", value=AnyValue(string_value="b"))]))
    ]
).SerializeToString()


@pytest.mark.parametrize(
    ("name", "signal"),
    [
        ("dump.pb", Signal.METRICS),  # no hint: the first signal tried wins
        ("blog-catalog.pb", Signal.METRICS),  # "log" only inside other words
        ("dump.metrics.pb", Signal.METRICS),
        ("metrics2.pb", Signal.METRICS),
        ("dump.traces.binpb", Signal.TRACES),
        ("otlp-spans-0001.pb", Signal.TRACES),
        ("trace.pb", Signal.TRACES),
        ("app_logs.binpb", Signal.LOGS),
        ("logsdump.pb", Signal.LOGS),
        ("LOGS.PB", Signal.LOGS),
        ("metrics-and-logs.pb", Signal.METRICS),  # two hints: no hint, so the guess
    ],
)
def test_signal_from_file_name(name: str, signal: Signal, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(_RESOURCE_ONLY)
    (capture,) = read_captures(path)
    assert capture.signal is signal
    assert capture.raw == _RESOURCE_ONLY


def test_signal_argument_beats_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "dump.metrics.pb"
    path.write_bytes(_RESOURCE_ONLY)
    (capture,) = read_captures(path, signal=Signal.LOGS)
    assert capture.signal is Signal.LOGS and isinstance(capture.request, ExportLogsServiceRequest)


def test_empty_captures_hold_no_request(tmp_path: Path) -> None:
    # An empty capture is no data in every format: no request, no error (validate notes it).
    for name, content in [("empty.pb", b""), ("empty.json", b""), ("blank.json", b" \n\n"), ("empty.jsonl", b"\n")]:
        path = tmp_path / name
        path.write_bytes(content)
        assert list(read_captures(path)) == []
        assert list(read_captures(path, signal=Signal.TRACES)) == []
    assert list(read_captures("-", stdin=io.BytesIO(b" \n\n"))) == []


def test_unrecognisable_protobuf_names_the_signal_flag(tmp_path: Path) -> None:
    # One resource record whose unknown field 99 comes before schema_url: every signal parses it, none
    # without unknown fields or byte for byte, so the signal must be given.
    path = tmp_path / "dump.pb"
    path.write_bytes(_UNRECOGNISABLE)
    assert str(_error(path)).endswith(
        "pass --signal metrics|traces|logs or name the signal in the file name (e.g. dump.metrics.pb)"
    )
    (capture,) = read_captures(path, signal=Signal.LOGS)
    assert capture.signal is Signal.LOGS and capture.request.resource_logs[0].schema_url == "x"  # type: ignore[union-attr]


def test_guess_ranks_a_clean_round_trip_above_one_with_trailing_unknown_fields(tmp_path: Path) -> None:
    # Printable IDs read as a Metric's name and description; kind (field 6) is unknown to Metric but
    # last, so the metrics parse round-trips too, and only its unknown field gives it away.
    span = Span(trace_id=b"abcdefghijklmnop", span_id=b"abcdefgh", kind=Span.SPAN_KIND_SERVER)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    raw = request.SerializeToString()
    as_metrics = ExportMetricsServiceRequest.FromString(raw)
    assert as_metrics.SerializeToString() == raw and as_metrics.resource_metrics[0].scope_metrics[0].metrics
    path = tmp_path / "ambiguous.pb"
    path.write_bytes(raw)
    (capture,) = read_captures(path)
    assert (capture.signal, capture.request) == (Signal.TRACES, request)


def test_guess_prefers_the_parse_without_unknown_fields(tmp_path: Path) -> None:
    # Fields out of number order (scope_spans before resource) do not round-trip byte for byte.
    resource = ResourcePb(attributes=[KeyValue(key="a", value=AnyValue(string_value="b"))]).SerializeToString()
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="x").SerializeToString()
    scope_spans = b"\x12" + bytes([len(span)]) + span
    resource_spans = b"\x12" + bytes([len(scope_spans)]) + scope_spans + b"\x0a" + bytes([len(resource)]) + resource
    raw = b"\x0a" + bytes([len(resource_spans)]) + resource_spans
    path = tmp_path / "reordered.pb"
    path.write_bytes(raw)
    (capture,) = read_captures(path)
    assert capture.signal is Signal.TRACES
    assert isinstance(capture.request, ExportTraceServiceRequest)
    assert capture.request.resource_spans[0].scope_spans[0].spans[0].trace_id == TRACE_ID


# ---------------------------------------------------------------------------
# Standard input
# ---------------------------------------------------------------------------


def test_stdin_json_lines(tmp_path: Path) -> None:
    captures = list(read_captures("-", stdin=io.BytesIO(COLLECTOR_JSONL.read_bytes())))
    assert [(c.source, c.signal) for c in captures] == [("-:1", Signal.METRICS), ("-:3", Signal.TRACES)]


def test_stdin_pretty_json_document(sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path) -> None:
    write_capture(tmp_path / "pretty.json", [sdk_requests[Signal.LOGS]])
    data = b"\n  " + (tmp_path / "pretty.json").read_bytes()
    (capture,) = read_captures("-", stdin=io.BytesIO(data))
    assert (capture.source, capture.signal, capture.raw) == ("-", Signal.LOGS, None)
    assert capture.request == sdk_requests[Signal.LOGS]


@pytest.mark.parametrize("signal", list(Signal))
def test_stdin_protobuf(sdk_requests: dict[Signal, OtlpRequest], signal: Signal) -> None:
    raw = sdk_requests[signal].SerializeToString()
    (capture,) = read_captures("-", stdin=io.BytesIO(raw))
    assert (capture.source, capture.signal, capture.request, capture.raw) == ("-", signal, sdk_requests[signal], raw)


def test_stdin_protobuf_that_sniffs_as_json() -> None:
    # The first resource record 123 bytes long puts "{" right after the leading newline byte.
    for padding in range(200):
        request = ExportMetricsServiceRequest(
            resource_metrics=[ResourceMetrics(schema_url="x" * padding, scope_metrics=[ScopeMetrics()])]
        )
        raw = request.SerializeToString()
        if raw[1:2] == b"{":
            break
    assert raw.startswith(b"\n{")
    (capture,) = read_captures("-", stdin=io.BytesIO(raw))
    assert (capture.signal, capture.request, capture.raw) == (Signal.METRICS, request, raw)


def test_stdin_defaults_to_sys_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"resourceSpans": []}\n')))
    assert [(c.source, c.signal) for c in read_captures("-")] == [("-", Signal.TRACES)]


# ---------------------------------------------------------------------------
# Errors: one line, naming the file (and line) and the reason
# ---------------------------------------------------------------------------


def _error(path: Path | str, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as caught:
        list(read_captures(path, **kwargs))  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    return caught.value


def test_missing_file_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(InputError) as caught:
        read_captures(path)  # no iteration needed
    assert str(caught.value) == f"{path}: no such file"
    assert (caught.value.source, caught.value.line, caught.value.reason) == (str(path), None, "no such file")


def test_directory(tmp_path: Path) -> None:
    assert str(_error(tmp_path)) == f"{tmp_path}: is a directory, not a capture file"


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "capture.txt"
    path.write_text("{}", "utf-8")
    assert "unknown capture format" in str(_error(path))
    assert ".jsonl" in str(_error(path))


def test_invalid_json_names_line_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("capture.json").write_text('{\n  "resourceSpans": [\n    {"a": "bcd" "e": 1}\n  ]\n}\n', "utf-8")
    error = _error("capture.json")
    assert str(error) == "capture.json:3: invalid JSON: Expecting ',' delimiter (column 17)"
    assert (error.source, error.line) == ("capture.json", 3)


def test_invalid_json_in_a_json_lines_record(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    path.write_text('{"resourceLogs": []}\n\n{"resourceLogs": [] "x": 1}\n', "utf-8")
    assert str(_error(path)) == f"{path}:3: invalid JSON: Expecting ',' delimiter (column 21)"


def test_concatenated_pretty_documents(tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    path.write_text('{\n  "resourceLogs": []\n}\n{\n  "resourceLogs": []\n}\n', "utf-8")
    assert str(_error(path)).startswith(f"{path}:4: invalid JSON: Extra data (column 1); several requests need one")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"resourceLogs": []}\n{"resourceLogs": [{"x": "\xe9"}]}\n')
    assert str(_error(path)) == f"{path}:2: not UTF-8 text (byte 0xe9)"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[]", "not an OTLP JSON document: expected an object, found an array"),
        ('"resourceSpans"', "not an OTLP JSON document: expected an object, found a string"),
        (
            '{"resourceProfiles": []}',
            "not an OTLP JSON document: none of the top-level keys resourceMetrics, resourceSpans, resourceLogs",
        ),
        (
            '{"resourceSpans": [], "resourceLogs": []}',
            "ambiguous OTLP JSON document: both resourceSpans and resourceLogs",
        ),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": 1.5}]}]}]}',
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected an integer, found 1.5",
        ),
    ],
)
def test_not_an_otlp_document(text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "capture.json"
    path.write_text(text, "utf-8")
    error = _error(path)
    assert (error.line, error.reason) == (None, reason)
    assert str(error) == f"{path}: {reason}"


def test_wrong_signal_for_the_document(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    path.write_text('{"resourceMetrics": []}\n', "utf-8")
    assert (
        str(_error(path, signal=Signal.TRACES)) == f"{path}:1: expected an OTLP traces document, found resourceMetrics"
    )


@pytest.mark.parametrize(
    ("span", "field", "shown"),
    [
        ({"traceId": "4bf92f3577b34da6a3ce929d0e0e47zz"}, "spans[1].traceId", '"4bf92f3577b34da6a3ce929d0e0e47zz"'),
        ({"spanId": "abc"}, "spans[1].spanId", '"abc"'),
        ({"parentSpanId": "00 f0 67 aa 0b a9 02 b7"}, "spans[1].parentSpanId", '"00 f0 67 aa 0b a9 02 b7"'),
        ({"links": [{"spanId": 12}]}, "spans[1].links[0].spanId", "12"),
        (
            {"traceId": base64.b64encode(TRACE_ID).decode()},
            "spans[1].traceId",
            json.dumps(base64.b64encode(TRACE_ID).decode()),
        ),
    ],
)
def test_bad_hex_id_names_the_field(span: dict[str, object], field: str, shown: str, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{}, span]}]}]}
    path.write_text("\n" + json.dumps(document) + "\n", "utf-8")
    error = _error(path)
    assert str(error) == f"{path}:2: resourceSpans[0].scopeSpans[0].{field}: not a hex ID: {shown}"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "xyz0"}]}]}]}, "logRecords[0].spanId"),
        (
            {
                "resourceMetrics": [
                    {"scopeMetrics": [{"metrics": [{"sum": {"dataPoints": [{"exemplars": [{"traceId": "q"}]}]}}]}]}
                ]
            },
            "metrics[0].sum.dataPoints[0].exemplars[0].traceId",
        ),
    ],
)
def test_bad_hex_in_logs_and_exemplars(document: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=r"\." + field.replace("[", r"\[").replace("]", r"\]") + ": not a hex ID"):
        parse_otlp_json(document, source="mem")


def test_garbage_protobuf(tmp_path: Path) -> None:
    path = tmp_path / "dump.pb"
    path.write_bytes(bytes(range(256)) * 4)
    assert str(_error(path)) == f"{path}: not an OTLP metrics/traces/logs request: Error parsing message"
    hinted = tmp_path / "dump.traces.pb"
    shutil.copy(path, hinted)
    assert str(_error(hinted)) == f"{hinted}: not an OTLP traces request: Error parsing message"


def test_protobuf_of_unknown_fields_only(tmp_path: Path) -> None:
    path = tmp_path / "dump.binpb"
    path.write_bytes(b"\x08\x01\x10\x02")  # fields 1 and 2 as varints: valid protobuf, no OTLP
    assert "not an OTLP metrics/traces/logs request" in str(_error(path))


def test_stdin_errors() -> None:
    assert str(_error("-", stdin=io.BytesIO(b'{"resourceLogs": []}\n{oops}\n'))) == (
        "-:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)"
    )
    assert str(_error("-", stdin=io.BytesIO(b'{\n  "resourceLogs": [\n}'))).startswith("-:3: invalid JSON: ")
    assert str(_error("-", stdin=io.BytesIO(b"\xff\xfe garbage"))) == (
        "-: not an OTLP metrics/traces/logs request: Error parsing message"
    )
    # Sniffed as JSON, not protobuf either: the JSON error stands.
    assert str(_error("-", stdin=io.BytesIO(b"\n{ nope"))).startswith("-:2: invalid JSON: ")


def test_input_error_pickles_and_is_one_line() -> None:
    error = InputError("capture.json", 3, "invalid JSON:\nsomething")
    assert str(error) == "capture.json:3: invalid JSON: something"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.line, copy.reason) == ("capture.json", 3, "invalid JSON: something")


# ---------------------------------------------------------------------------
# Writer errors
# ---------------------------------------------------------------------------


def test_protobuf_capture_holds_exactly_one_request(sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path) -> None:
    path = tmp_path / "two.pb"
    with pytest.raises(ValueError, match="exactly one request, got more than one"):
        write_capture(path, [sdk_requests[Signal.METRICS], sdk_requests[Signal.LOGS]])
    with pytest.raises(ValueError, match="exactly one request, got no request"):
        write_capture(path, [])
    assert not path.exists()


def test_json_capture_needs_a_request(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one request"):
        write_capture(tmp_path / "none.json", [])
    write_capture(tmp_path / "none.jsonl", [])
    assert (tmp_path / "none.jsonl").read_bytes() == b""


def test_writer_rejects_unknown_extensions_and_non_otlp_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown capture format"):
        write_capture(tmp_path / "capture.yaml", [ExportLogsServiceRequest()])
    with pytest.raises(TypeError, match="not an OTLP export request"):
        write_capture(tmp_path / "capture.jsonl", [Span()])  # type: ignore[list-item]
    assert not (tmp_path / "capture.yaml").exists()


def test_capture_is_frozen(sdk_requests: dict[Signal, OtlpRequest]) -> None:
    capture = Capture("x.pb", Signal.LOGS, sdk_requests[Signal.LOGS], b"")
    with pytest.raises(AttributeError):
        capture.source = "y"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Large documents are streamed one resource record at a time
# ---------------------------------------------------------------------------


def _big_traces_document(sdk_requests: dict[Signal, OtlpRequest], records: int) -> dict[str, object]:
    (record,) = to_otlp_json(sdk_requests[Signal.TRACES])["resourceSpans"]
    return {"resourceSpans": [{**record, "padding": "p" * 2000} for _ in range(records)]}


def test_a_large_document_reads_as_the_whole_one(sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path) -> None:
    document = _big_traces_document(sdk_requests, 1300)  # over 4 MiB: streamed
    for path, text in [
        (tmp_path / "big.json", json.dumps(document, indent=1)),
        (tmp_path / "big.jsonl", json.dumps(document)),
    ]:
        path.write_text("\n" + text + "\n")
        captures = list(read_captures(path))
        assert len(captures) > 1
        whole = parse_otlp_json(document, source="x")[1]
        assert [r for c in captures for r in c.request.resource_spans] == list(whole.resource_spans)  # type: ignore[union-attr]
        assert {c.source for c in captures} == ({str(path)} if path.suffix == ".json" else {f"{path}:2"})


def test_a_streamed_document_names_errors_as_the_whole_one(
    sdk_requests: dict[Signal, OtlpRequest], tmp_path: Path
) -> None:
    document = _big_traces_document(sdk_requests, 1300)
    records = document["resourceSpans"]
    assert isinstance(records, list)
    records[1200] = {**records[1200], "scopeSpans": [{"spans": [{"traceId": "zz"}]}]}
    with pytest.raises(InputError) as whole:
        parse_otlp_json(document, source="x")
    path = tmp_path / "big.json"
    path.write_text(json.dumps(document, indent=1))
    assert (
        _error(path).reason
        == whole.value.reason
        == 'resourceSpans[1200].scopeSpans[0].spans[0].traceId: not a hex ID: "zz"'
    )
    path.write_text(json.dumps(document, indent=1)[:-100_000])  # cut short
    assert str(_error(path)).startswith(f"{path}: invalid JSON after resourceSpans[")


def test_a_resource_record_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one-record.json"
    path.write_text('{"resourceLogs": [{}, {"resource": {}, "padding": "' + "p" * (MAX_JSON_RECORD + 2**20) + '"}]}')
    assert str(_error(path)) == (
        f"{path}: resourceLogs[1] is over 32 MiB: a document this large is read one resource record at a time;"
        " split the record into several, or capture JSON lines or protobuf"
    )


def test_json_error_at_the_end_of_a_line_names_that_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"resourceLogs": []}\n{"resourceLogs": [\n')
    assert str(_error(path)) == f"{path}:2: invalid JSON: Expecting value (column 19)"
    path = tmp_path / "c.json"
    path.write_text('{\n  "resourceLogs": [\n\n')
    assert str(_error(path)) == f"{path}:2: invalid JSON: Expecting value (column 20)"
