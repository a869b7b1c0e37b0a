"""The OTLP/HTTP receiver end to end: the Python SDK's OTLP/HTTP exporters and raw HTTP requests (as curl
sends them) to a sidecar in this process, a real gRPC sink downstream."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import resource
import shutil
import socket
import ssl
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_contract.otlp import FACTS, Signal, to_otlp_json
from otel_contract.server.config import ReceiverTls, SidecarConfig
from otel_contract.server.receivers import CorsSettings
from otel_contract.server.sidecar import Sidecar
from tests.conftest import CONTRACTS, REPO
from tests.otlp_builders import (
    all_metrics,
    attrs,
    counter,
    histogram,
    hpoint,
    metrics_request,
    point_attrs,
    traces_request,
)
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import (
    RawClient,
    SidecarProcess,
    config_for,
    health_json,
    http_get,
    running,
    shop_contract,
    wait_until,
)
from tests.tls_certs import Certs, certs_fixture  # noqa: F401 - the fixture

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
KIB = 1024


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    return shop_contract(tmp_path / "shop.yaml")


# --- a raw HTTP client: what curl sends -----------------------------------------------------------


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0]

    def status_message(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` body, in the content type it came in."""
        if self.content_type == JSON:
            return json_format.Parse(self.body, status_pb2.Status())
        assert self.content_type == PROTOBUF, self.headers
        return status_pb2.Status.FromString(self.body)

    def response(self, signal: Signal) -> Any:
        """The ``Export<Signal>ServiceResponse`` body."""
        message = FACTS[signal].response_type()
        if self.content_type == JSON:
            return json_format.Parse(self.body, message)
        return message.FromString(self.body)


def post(
    endpoint: str,
    path: str,
    body: bytes,
    content_type: str = PROTOBUF,
    *,
    encoding: str | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Reply:
    host, port = endpoint.rsplit(":", 1)
    connection = (
        http.client.HTTPSConnection(host, int(port), timeout=30, context=context)
        if context
        else http.client.HTTPConnection(host, int(port), timeout=30)
    )
    sent = {"Content-Type": content_type, **(headers or {})}
    if encoding:
        sent["Content-Encoding"] = encoding
    try:
        connection.request(method, path, body=body, headers=sent)
        answer = connection.getresponse()
        return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


def encode(request: Any, content_type: str, encoding: str | None = None) -> bytes:
    raw = json.dumps(to_otlp_json(request)).encode() if content_type == JSON else request.SerializeToString()
    if encoding == "gzip":
        return gzip.compress(raw)
    if encoding == "deflate":
        return zlib.compress(raw)
    return raw


def orders(*points: dict[str, Any], name: str = "orders_total") -> ExportMetricsServiceRequest:
    return metrics_request(
        counter(name, [(attributes, 1.0) for attributes in points], unit="{order}"),
        resource={"service.name": "shop"},
    )


def sent_metrics(sink: OtlpSink) -> list[ExportMetricsServiceRequest]:
    return [ExportMetricsServiceRequest.FromString(r.payload) for r in sink.requests if r.signal is Signal.METRICS]


def one_by_one(sink: OtlpSink, send: Any, *args: Any) -> tuple[Any, bytes]:
    """``send(*args)``'s result and the payload it made the sidecar forward, waited for before the next
    send so that the sender cannot batch two requests into one."""
    before = len(sink.requests)
    result = send(*args)
    assert sink.wait_for(lambda: len(sink.requests) == before + 1)
    return result, sink.requests[-1].payload


def _metrics_text(sidecar: Sidecar) -> str:
    assert sidecar.status is not None
    return http_get(f"http://{sidecar.status.address}/metrics")[2].decode()


ENCODINGS = [
    pytest.param(PROTOBUF, None, id="protobuf"),
    pytest.param(PROTOBUF, "gzip", id="protobuf-gzip"),
    pytest.param(JSON, None, id="json"),
    pytest.param(JSON, "gzip", id="json-gzip"),
    pytest.param(PROTOBUF, "deflate", id="protobuf-deflate"),
]


# --- the SDK ---------------------------------------------------------------------------------------


def _answers_seen(session: requests.Session) -> list[requests.Response]:
    """Every response ``session`` receives, as the SDK's exporter received it."""
    seen: list[requests.Response] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: seen.append(response))
    return seen


def test_the_sdk_http_exporters_send_metrics_spans_and_logs_that_arrive_normalized(
    contract: Path, otlp_sink: OtlpSink
) -> None:
    """The Python SDK (1.45) reads nothing of a 200's body, so it does not log partial_success
    (opentelemetry-python#4803): the test reads what the exporter received through its requests session.
    The JavaScript SDK (test_js_sdk.py) and the Collector's otlp_http exporter (test_collector.py) log it."""
    session = requests.Session()
    answers = _answers_seen(session)
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        base = f"http://{sidecar.http_endpoint}"
        resource_ = Resource.create({"service.name": "shop"})
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", session=session), export_interval_millis=3_600_000
        )
        meters = MeterProvider(resource=resource_, metric_readers=[reader])
        duration = meters.get_meter("shop").create_histogram("http.server.duration", unit="ms")
        duration.record(250.0, {"http.method": "GET", "status_code": "200"})
        duration.record(10.0, {"http.method": "GET", "user.id": "u-1"})  # forbidden: rejected
        meters.shutdown()  # one export

        tracers = TracerProvider(resource=resource_)
        tracers.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", session=session)))
        with tracers.get_tracer("shop").start_as_current_span("checkout") as span:
            span.set_attribute("status_code", "404")
        tracers.shutdown()

        loggers = LoggerProvider(resource=resource_)
        loggers.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", session=session))
        )
        loggers.get_logger("shop").emit(
            body="payment failed", severity_number=SeverityNumber.ERROR, attributes={"status_code": "502"}
        )
        loggers.shutdown()

        assert otlp_sink.wait_for(lambda: {r.signal for r in otlp_sink.requests} == set(Signal))
        text = _metrics_text(sidecar)

    (metrics,) = sent_metrics(otlp_sink)
    (metric,) = all_metrics(metrics)
    assert (metric.name, metric.unit) == ("http_server_duration_seconds", "s")
    (point,) = metric.histogram.data_points  # the point with user.id was rejected
    assert point_attrs(point) == {"http.method": "GET", "http.status_code": 200}
    assert point.sum == pytest.approx(0.25)

    (traces,) = [ExportTraceServiceRequest.FromString(r.payload) for r in otlp_sink.requests if r.signal == "traces"]
    span_attributes = point_attrs(traces.resource_spans[0].scope_spans[0].spans[0])
    assert span_attributes == {"http.status_code": 404}
    (logs,) = [ExportLogsServiceRequest.FromString(r.payload) for r in otlp_sink.requests if r.signal == "logs"]
    assert point_attrs(logs.resource_logs[0].scope_logs[0].log_records[0]) == {"http.status_code": 502}

    for signal in Signal:
        assert f'otel_contract_received_requests_total{{protocol="http",signal="{signal}"}} 1.0' in text

    by_path = {response.request.path_url: response for response in answers}
    assert sorted(by_path) == sorted(FACTS[signal].http_path for signal in Signal)
    for signal in Signal:
        response = by_path[FACTS[signal].http_path]
        assert (response.status_code, response.headers["Content-Type"]) == (200, PROTOBUF)
        partial = FACTS[signal].response_type.FromString(response.content).partial_success
        if signal is Signal.METRICS:
            assert partial.rejected_data_points == 1
            assert "forbidden-attribute on http_server_duration_seconds" in partial.error_message
        else:
            assert not partial.ListFields()  # nothing rejected, nothing to say


# --- every status, in each encoding ----------------------------------------------------------------


def _forwarded_once(
    contract: Path, sink: OtlpSink, request: ExportMetricsServiceRequest, content_type: str, encoding: str | None
) -> Reply:
    """The reply to ``request`` sent once to a fresh sidecar, after the sink has the one request it forwards."""
    with running(config_for(contract, sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        body = encode(request, content_type, encoding)
        reply = post(sidecar.http_endpoint, "/v1/metrics", body, content_type, encoding=encoding)
        assert sink.wait_for(lambda: len(sink.requests) == 1)
    return reply


@pytest.mark.parametrize(("content_type", "encoding"), ENCODINGS)
def test_a_clean_request_gets_200_an_empty_response_and_is_forwarded(
    contract: Path, otlp_sink: OtlpSink, content_type: str, encoding: str | None
) -> None:
    request = orders({"seq": "1"}, {"seq": "2"})
    reply = _forwarded_once(contract, otlp_sink, request, content_type, encoding)
    assert (reply.status, reply.content_type) == (200, content_type)
    assert reply.response(Signal.METRICS) == ExportMetricsServiceResponse()
    if content_type == PROTOBUF:
        assert otlp_sink.requests[0].payload == request.SerializeToString()  # the bytes that arrived
    else:
        assert sent_metrics(otlp_sink) == [request]


@pytest.mark.parametrize(("content_type", "encoding"), ENCODINGS)
def test_rejected_points_get_200_with_partial_success_in_the_request_content_type(
    contract: Path, otlp_sink: OtlpSink, content_type: str, encoding: str | None
) -> None:
    request = orders({"seq": "1"}, {"seq": "2", "user.id": "u-1"})
    reply = _forwarded_once(contract, otlp_sink, request, content_type, encoding)
    assert (reply.status, reply.content_type) == (200, content_type)
    partial = reply.response(Signal.METRICS).partial_success
    assert partial.rejected_data_points == 1
    assert "forbidden-attribute on orders_total" in partial.error_message
    if content_type == JSON:  # OTLP/JSON: lowerCamelCase, int64 as a string
        assert json.loads(reply.body)["partialSuccess"]["rejectedDataPoints"] == "1"
    (forwarded,) = sent_metrics(otlp_sink)
    assert [point_attrs(p) for p in all_metrics(forwarded)[0].sum.data_points] == [{"seq": "1"}]


# An attribute value of kvlists 100 deep: valid OTLP/JSON, nested beyond what the reader recurses into.
_NESTED_KVLISTS = (
    b'{"resourceMetrics": [{"resource": {"attributes": [{"key": "k", "value": '
    + b'{"kvlistValue": {"values": [{"key": "k", "value": ' * 100
    + b"{}"
    + b"}]}}" * 100
    + b"}]}}]}"
)


@pytest.mark.parametrize("encoding", [None, "gzip"])
@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        (PROTOBUF, b"\xff\xff\xff", "not an OTLP metrics request"),
        (JSON, b'{"resourceMetrics": [', "invalid JSON"),
        (JSON, b'{"resourceSpans": []}', "expected an OTLP metrics document"),
        (JSON, b'{"resourceMetrics": [{"scopeMetrics": 7}]}', "scopeMetrics"),
        # nested too deep for a parser to recurse: refused at the parser's limit, as invalid JSON
        (JSON, _NESTED_KVLISTS, "recursion limit exceeded"),
        (JSON, b"[" * 100_000 + b"]" * 100_000, "expected an object, found an array"),
    ],
)
def test_a_body_that_is_not_an_otlp_request_gets_400_with_a_status(
    contract: Path, otlp_sink: OtlpSink, content_type: str, body: bytes, reason: str, encoding: str | None
) -> None:
    sent = gzip.compress(body) if encoding else body
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        reply = post(sidecar.http_endpoint, "/v1/metrics", sent, content_type, encoding=encoding)
        after = post(sidecar.http_endpoint, "/v1/metrics", encode(orders({"seq": "1"}), content_type), content_type)
        text = _metrics_text(sidecar)
    assert (reply.status, reply.content_type) == (400, content_type)
    status = reply.status_message()
    assert status.code == code_pb2.INVALID_ARGUMENT and reason in status.message, status.message
    assert after.status == 200  # the receiver keeps serving
    assert 'otel_contract_refused_requests_total{protocol="http",reason="malformed",signal="metrics"} 1.0' in text


def test_an_empty_body_is_an_empty_request(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        replies = [
            post(sidecar.http_endpoint, "/v1/traces", b"", PROTOBUF),
            post(sidecar.http_endpoint, "/v1/traces", b"{}", JSON),
            post(sidecar.http_endpoint, "/v1/traces", b'{"unknownField": 1}', JSON),
        ]
    assert [r.status for r in replies] == [200, 200, 200]
    assert otlp_sink.requests == []  # nothing to forward


@pytest.mark.parametrize(("content_type", "encoding"), ENCODINGS[:4])
def test_a_body_over_the_limit_gets_413_naming_the_setting(
    contract: Path, otlp_sink: OtlpSink, content_type: str, encoding: str | None
) -> None:
    config = config_for(contract, otlp_sink.endpoint)
    assert config.http_receiver is not None
    config = replace(config, http_receiver=replace(config.http_receiver, max_request_body_size=64 * KIB))
    request = orders(*({"seq": f"{index:06d}"} for index in range(4000)))  # ~100 KiB uncompressed, ~10 KiB gzip
    body = encode(request, content_type, encoding)
    with running(config) as sidecar:
        assert sidecar.http_endpoint is not None
        reply = post(sidecar.http_endpoint, "/v1/metrics", body, content_type, encoding=encoding)
    assert (reply.status, reply.content_type) == (413, content_type)
    status = reply.status_message()
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert "limit of 0.0625 MiB" in status.message and "receiver.http.max_request_body_size_mib" in status.message
    assert otlp_sink.requests == []


def test_a_gzip_bomb_is_refused_at_the_limit_without_being_inflated(contract: Path, otlp_sink: OtlpSink) -> None:
    """2 GiB of zeros in 2 MiB of gzip (32 members of 64 MiB): the receiver stops inflating at its 4 MiB limit."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = (compressor.compress(bytes(64 * 2**20)) + compressor.flush()) * 32
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reply = post(sidecar.http_endpoint, "/v1/metrics", bomb, PROTOBUF, encoding="gzip")
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        after = post(sidecar.http_endpoint, "/v1/metrics", encode(orders({"seq": "1"}), PROTOBUF), PROTOBUF)
    assert reply.status == 413
    assert "exceeds the receiver limit of 4 MiB" in reply.status_message().message
    assert grown_mib < 256, f"peak RSS grew by {grown_mib:.0f} MiB: the bomb was inflated"  # 2048 MiB if it were
    assert after.status == 200


def test_gzip_members_are_read_one_after_another_and_a_truncated_body_is_refused(
    contract: Path, otlp_sink: OtlpSink
) -> None:
    raw = encode(orders({"seq": "1"}, {"seq": "2"}), PROTOBUF)
    two_members = gzip.compress(raw[:10]) + gzip.compress(raw[10:])  # what concatenating gzip files makes
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        whole = post(sidecar.http_endpoint, "/v1/metrics", two_members, encoding="gzip")
        assert otlp_sink.wait_for(lambda: len(otlp_sink.requests) == 1)
        truncated = post(sidecar.http_endpoint, "/v1/metrics", gzip.compress(raw)[:-12], encoding="gzip")
        trailing = post(sidecar.http_endpoint, "/v1/metrics", zlib.compress(raw) + b"junk", encoding="deflate")
    assert whole.status == 200 and otlp_sink.requests[0].payload == raw
    assert truncated.status == 400 and "the gzip body is truncated" in truncated.status_message().message
    assert trailing.status == 400 and "data after the end of the deflate stream" in trailing.status_message().message


@pytest.mark.parametrize(
    ("content_type", "encoding", "expected"),
    [
        ("text/plain", None, "unsupported Content-Type 'text/plain'"),
        ("application/grpc", None, "unsupported Content-Type 'application/grpc'"),
        (PROTOBUF, "br", "unsupported Content-Encoding 'br'"),
    ],
)
def test_an_unsupported_content_type_or_encoding_gets_415(
    contract: Path, otlp_sink: OtlpSink, content_type: str, encoding: str | None, expected: str
) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        reply = post(sidecar.http_endpoint, "/v1/metrics", b"x", content_type, encoding=encoding)
    assert reply.status == 415
    text = reply.body.decode() if reply.content_type == "text/plain" else reply.status_message().message
    assert expected in text, text


def test_other_methods_get_405_and_other_paths_404(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        get = post(sidecar.http_endpoint, "/v1/metrics", b"", method="GET")
        put = post(sidecar.http_endpoint, "/v1/logs", b"", method="PUT")
        options = post(sidecar.http_endpoint, "/v1/traces", b"", method="OPTIONS")  # no CORS configured
        missing = post(sidecar.http_endpoint, "/v1/profiles", b"")
    assert (get.status, get.headers["allow"]) == (405, "POST")
    assert (put.status, options.status, missing.status) == (405, 405, 404)


def test_a_full_queue_gets_503_with_retry_after(contract: Path) -> None:
    sink = OtlpSink().start()
    sink.stop()  # the downstream is down: nothing leaves the queue
    config = config_for(contract, sink.endpoint)
    queue = replace(config.exporter.queue, queue_size=2)
    config = replace(config, exporter=replace(config.exporter, queue=queue), drain_timeout=0.5)
    with running(config) as sidecar:
        assert sidecar.http_endpoint is not None
        replies = [
            post(sidecar.http_endpoint, "/v1/metrics", encode(orders({"seq": str(i)}), JSON), JSON) for i in range(4)
        ]
        text = _metrics_text(sidecar)
    assert [r.status for r in replies] == [200, 200, 503, 503]
    for reply in replies[2:]:
        assert reply.headers["retry-after"] == "1"
        status = reply.status_message()
        assert status.code == code_pb2.UNAVAILABLE and "queue is full" in status.message
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 1
    assert 'otel_contract_refused_requests_total{protocol="http",reason="queue_full",signal="metrics"} 2.0' in text


@pytest.mark.parametrize(("content_type", "encoding"), ENCODINGS[:4])
def test_a_draining_sidecar_answers_503(
    contract: Path, otlp_sink: OtlpSink, content_type: str, encoding: str | None
) -> None:
    body = encode(orders({"seq": "1"}), content_type, encoding)
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.intake is not None and sidecar.http_endpoint is not None
        sidecar.intake.stop_accepting()
        reply = post(sidecar.http_endpoint, "/v1/metrics", body, content_type, encoding=encoding)
    assert (reply.status, reply.content_type, reply.headers["retry-after"]) == (503, content_type, "1")
    assert "shutting down" in reply.status_message().message
    assert otlp_sink.requests == []


def test_an_engine_failure_gets_500_and_is_not_forwarded(
    contract: Path, otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*_: object) -> None:
        raise RuntimeError("injected engine bug")

    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        monkeypatch.setattr(sidecar.processor, "process", failing)
        reply = post(sidecar.http_endpoint, "/v1/metrics", encode(orders({"seq": "1"}), JSON), JSON)
    assert reply.status == 500  # not retryable: OTLP/HTTP clients retry 429, 502, 503 and 504
    status = reply.status_message()
    assert status.code == code_pb2.INTERNAL and "RuntimeError: injected engine bug" in status.message
    assert otlp_sink.requests == []


# --- OTLP/JSON as the specification writes it ----------------------------------------------------


def test_otlp_json_variants_parse_to_the_same_request(contract: Path, otlp_sink: OtlpSink) -> None:
    """snake_case or lowerCamelCase keys, int64 as strings or numbers, enums as integers or names, hex IDs,
    unknown fields: each spelling forwards the same protobuf request."""
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    camel = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "checkout",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [{"key": "status_code", "value": {"stringValue": "200"}}],
                                "futureField": {"ignored": True},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    snake = json.loads(
        json.dumps(camel)
        .replace("resourceSpans", "resource_spans")
        .replace("scopeSpans", "scope_spans")
        .replace("traceId", "trace_id")
        .replace("spanId", "span_id")
        .replace("startTimeUnixNano", "start_time_unix_nano")
        .replace("stringValue", "string_value")
    )
    snake["resource_spans"][0]["scope_spans"][0]["spans"][0].update(
        kind="SPAN_KIND_SERVER", endTimeUnixNano=1700000001000000000
    )
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        sent = [
            one_by_one(otlp_sink, post, sidecar.http_endpoint, "/v1/traces", json.dumps(doc).encode(), JSON)
            for doc in (camel, snake)
        ]
    assert [reply.status for reply, _ in sent] == [200, 200]
    first, second = (ExportTraceServiceRequest.FromString(payload) for _, payload in sent)
    assert first == second
    span = first.resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id.hex(), span.span_id.hex(), span.kind) == (trace_id, span_id, 2)
    assert span.end_time_unix_nano == 1700000001000000000
    assert point_attrs(span) == {"http.status_code": 200}


# --- one pipeline, two protocols -----------------------------------------------------------------


def _differential_requests() -> list[tuple[Signal, Any]]:
    return [
        (Signal.METRICS, orders({"seq": "1"})),  # clean: forwarded as it arrived
        (Signal.METRICS, orders({"seq": "2", "status_code": "200"}, {"seq": "3", "user.id": "u"})),
        (
            Signal.METRICS,
            metrics_request(
                histogram(
                    "http.server.duration", [hpoint({"http.method": "GET"}, [100, 500], [1, 2, 0], 900)], unit="ms"
                ),
                resource={"service.name": "shop"},
            ),
        ),
        (Signal.METRICS, orders({"seq": "4"}, name="not_in_the_contract")),
        (Signal.TRACES, traces_request([{"name": "checkout", "attributes": attrs({"status_code": "500"})}])),
    ]


def test_grpc_and_http_give_the_same_forwarded_bytes_and_answers(contract: Path, otlp_sink: OtlpSink) -> None:
    requests = _differential_requests()
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        client = RawClient(sidecar.endpoint)
        answers: dict[str, list[Any]] = {"grpc": [], PROTOBUF: [], JSON: []}
        forwarded: list[tuple[bytes, bytes, bytes]] = []
        for signal, request in requests:
            (raw, _), over_grpc = one_by_one(otlp_sink, client.export, signal, request.SerializeToString())
            answers["grpc"].append(FACTS[signal].response_type.FromString(raw))
            over_http = []
            for content_type in (PROTOBUF, JSON):
                body = encode(request, content_type)
                reply, payload = one_by_one(
                    otlp_sink, post, sidecar.http_endpoint, FACTS[signal].http_path, body, content_type
                )
                assert reply.status == 200
                answers[content_type].append(reply.response(signal))
                over_http.append(payload)
            forwarded.append((over_grpc, over_http[0], over_http[1]))
        client.close()
        text = _metrics_text(sidecar)
    assert answers["grpc"] == answers[PROTOBUF] == answers[JSON]
    assert any(answer.partial_success.rejected_data_points for answer in answers["grpc"])
    for (signal, _), (over_grpc, over_http, over_json) in zip(requests, forwarded, strict=True):
        assert over_grpc == over_http  # byte for byte
        request_type = FACTS[signal].request_type
        assert request_type.FromString(over_json) == request_type.FromString(over_grpc)
    for protocol in ("grpc", "http"):
        assert f'otel_contract_received_requests_total{{protocol="{protocol}",signal="metrics"}}' in text
    # Each request went three times through one engine: every finding counted a multiple of three times.
    findings = [line for line in text.splitlines() if line.startswith("otel_contract_findings_total{")]
    assert findings and all(float(line.rsplit(" ", 1)[1]) % 3 == 0 for line in findings), findings


# --- CORS, TLS, the listener ---------------------------------------------------------------------


def _with_cors(config: SidecarConfig, cors: CorsSettings) -> SidecarConfig:
    assert config.http_receiver is not None
    return replace(config, http_receiver=replace(config.http_receiver, cors=cors))


def test_cors_lets_allowed_origins_send_from_a_browser(contract: Path, otlp_sink: OtlpSink) -> None:
    cors = CorsSettings(allowed_origins=("https://*.shop.example",), allowed_headers=("x-tenant",), max_age=600)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-tenant"}
    with running(_with_cors(config_for(contract, otlp_sink.endpoint), cors)) as sidecar:
        endpoint = sidecar.http_endpoint
        assert endpoint is not None
        allowed = post(
            endpoint, "/v1/traces", b"", method="OPTIONS", headers={"Origin": "https://app.shop.example", **preflight}
        )
        other = post(
            endpoint, "/v1/traces", b"", method="OPTIONS", headers={"Origin": "https://evil.example", **preflight}
        )
        header = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-secret"}
        bad_header = post(
            endpoint, "/v1/traces", b"", method="OPTIONS", headers={"Origin": "https://app.shop.example", **header}
        )
        sent = post(
            endpoint,
            "/v1/metrics",
            encode(orders({"seq": "1"}), JSON),
            JSON,
            headers={"Origin": "https://app.shop.example"},
        )
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.shop.example"
    assert allowed.headers["access-control-allow-methods"] == "POST"
    assert allowed.headers["access-control-allow-headers"] == "content-type, x-tenant"
    assert allowed.headers["access-control-max-age"] == "600"
    assert (
        "access-control-allow-origin" not in other.headers and "access-control-allow-origin" not in bad_header.headers
    )
    assert (sent.status, sent.headers["access-control-allow-origin"]) == (200, "https://app.shop.example")


def test_the_http_receiver_serves_mutual_tls(contract: Path, otlp_sink: OtlpSink, certs: Certs) -> None:
    config = config_for(contract, otlp_sink.endpoint)
    assert config.http_receiver is not None
    tls = ReceiverTls(certs.path("server.crt"), certs.path("server.key"), client_ca_file=certs.path("ca.crt"))
    config = replace(config, http_receiver=replace(config.http_receiver, tls=tls))
    body = encode(orders({"seq": "tls"}), PROTOBUF)
    with running(config) as sidecar:
        assert sidecar.http_endpoint is not None
        port = sidecar.http_endpoint.rsplit(":", 1)[1]
        anonymous = ssl.create_default_context(cafile=certs.path("ca.crt"))
        anonymous.check_hostname = False
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post(f"127.0.0.1:{port}", "/v1/metrics", body, context=anonymous)
        mutual = ssl.create_default_context(cafile=certs.path("ca.crt"))
        mutual.check_hostname = False
        mutual.load_cert_chain(certs.path("client.crt"), certs.path("client.key"))
        reply = post(f"127.0.0.1:{port}", "/v1/metrics", body, context=mutual)
        assert reply.status == 200
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)


def test_health_names_both_endpoints_and_off_turns_http_off(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.status is not None
        receivers = health_json(sidecar.status.address)["receivers"]
        assert receivers == {"grpc": sidecar.endpoint, "http": sidecar.http_endpoint}
    with running(config_for(contract, otlp_sink.endpoint, http_endpoint="off")) as sidecar:
        assert sidecar.status is not None and sidecar.http_endpoint is None
        assert health_json(sidecar.status.address)["receivers"] == {"grpc": sidecar.endpoint, "http": None}


def _closed_by_peer(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _with_limits(config: SidecarConfig, **limits: Any) -> SidecarConfig:
    assert config.http_receiver is not None
    return replace(config, http_receiver=replace(config.http_receiver, **limits))


def _silent_connections(endpoint: str, count: int) -> list[socket.socket]:
    """``count`` connections that start a request head and never finish it (slowloris)."""
    host, port = endpoint.rsplit(":", 1)
    connections = [socket.create_connection((host, int(port)), timeout=0.1) for _ in range(count)]
    for connection in connections:
        connection.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\n")
    return connections


def test_a_connection_that_does_not_send_a_request_head_in_time_is_closed(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(_with_limits(config_for(contract, otlp_sink.endpoint), head_timeout=0.5)) as sidecar:
        assert sidecar.http_endpoint is not None
        host, port = sidecar.http_endpoint.rsplit(":", 1)
        talking = http.client.HTTPConnection(host, int(port), timeout=30)
        talking.request("POST", "/v1/metrics", b"", {"Content-Type": PROTOBUF})
        assert talking.getresponse().read() == b""
        silent = _silent_connections(sidecar.http_endpoint, 2)
        idle = socket.create_connection((host, int(port)), timeout=0.1)  # sends nothing at all
        assert wait_until(lambda: all(_closed_by_peer(c) for c in (*silent, idle)), timeout=10)
        talking.request("POST", "/v1/metrics", b"", {"Content-Type": PROTOBUF})  # still open, and served
        assert talking.getresponse().status == 200
        talking.close()
        for connection in (*silent, idle):
            connection.close()


def test_beyond_max_connections_the_oldest_silent_one_is_closed(contract: Path, otlp_sink: OtlpSink) -> None:
    """A flood of silent connections cannot lock clients out: each newcomer beyond the bound closes the
    oldest connection that has not sent a request head."""
    limits = {"head_timeout": 60.0, "max_connections": 4}
    with running(_with_limits(config_for(contract, otlp_sink.endpoint), **limits)) as sidecar:
        assert sidecar.http_endpoint is not None
        host, port = sidecar.http_endpoint.rsplit(":", 1)
        talking = http.client.HTTPConnection(host, int(port), timeout=30)
        talking.request("POST", "/v1/metrics", b"", {"Content-Type": PROTOBUF})
        assert talking.getresponse().read() == b""
        silent = _silent_connections(sidecar.http_endpoint, 3)  # four open: the bound
        newcomer = http.client.HTTPConnection(host, int(port), timeout=30)
        newcomer.request("POST", "/v1/metrics", b"", {"Content-Type": PROTOBUF})
        assert newcomer.getresponse().status == 200
        assert wait_until(lambda: _closed_by_peer(silent[0]), timeout=10)
        assert not _closed_by_peer(silent[1]) and not _closed_by_peer(silent[2])
        talking.request("POST", "/v1/metrics", b"", {"Content-Type": PROTOBUF})
        assert talking.getresponse().status == 200
        for connection in (talking, newcomer):
            connection.close()
        for each in silent:
            each.close()


def test_a_client_that_hangs_up_during_its_body_leaves_no_error_behind(
    contract: Path, otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """An exporter that times out mid-request is routine under load: no traceback for each of them."""
    head = (
        b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n"
    )
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar, caplog.at_level(logging.WARNING):
        assert sidecar.http_endpoint is not None
        host, port = sidecar.http_endpoint.rsplit(":", 1)
        for _ in range(3):
            with socket.create_connection((host, int(port))) as connection:
                connection.sendall(head + b"x" * 10)  # 10 of the 1000 bytes promised
        # Served in order on one loop: once this is answered, the three hang-ups have been handled.
        assert post(sidecar.http_endpoint, "/v1/metrics", b"").status == 200
    assert [record.getMessage() for record in caplog.records] == []
    assert otlp_sink.requests == []


def test_keep_alive_connections_carry_many_requests(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.http_endpoint is not None
        host, port = sidecar.http_endpoint.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        statuses = []
        for index in range(20):
            connection.request(
                "POST", "/v1/metrics", encode(orders({"seq": str(index)}), PROTOBUF), {"Content-Type": PROTOBUF}
            )
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
        connection.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 20)
    assert statuses == [200] * 20


# --- the README's example ------------------------------------------------------------------------

EXAMPLE = REPO / "examples" / "otlp-http" / "metrics.json"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_example_against_serve(otlp_sink: OtlpSink) -> None:
    """`otel-contract serve` as `make run` starts it, says where both receivers listen, and answers the
    README's curl command with the rejected point in partial_success."""
    sidecar = SidecarProcess("--contract", str(CONTRACTS / "ecommerce.yaml"), "--exporter-endpoint", otlp_sink.endpoint)
    sidecar.start()
    try:
        command = [
            "curl", "-sS", f"http://{sidecar.http_endpoint}/v1/metrics",
            "-H", "Content-Type: application/json", "-d", f"@{EXAMPLE.relative_to(REPO)}",
        ]  # fmt: skip
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)
    finally:
        sidecar.stop()
    assert f"listening on {sidecar.endpoint} (OTLP/gRPC) and http://{sidecar.http_endpoint} (OTLP/HTTP)" in (
        sidecar.output()
    )
    answer = json.loads(result.stdout)
    assert answer["partialSuccess"]["rejectedDataPoints"] == "1"
    assert "forbidden-attribute on http_requests_total" in answer["partialSuccess"]["errorMessage"]
    (forwarded,) = sent_metrics(otlp_sink)
    (metric,) = all_metrics(forwarded)
    assert metric.name == "http_requests_total"
    assert point_attrs(metric.sum.data_points[0]) == {"http.method": "GET", "http.status_code": 200}
