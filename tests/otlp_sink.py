"""A real OTLP/gRPC server for tests: records what arrives and answers what it is told to.

``OtlpSink`` serves the three OTLP Export methods on 127.0.0.1 with raw-bytes handlers, so tests see
the exact bytes a client sent. It can be stopped and started again on the same port (an outage),
answer an error status for the next N calls, or answer OK with a ``partial_success``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otel_contract.otlp import Signal
from otel_contract.otlp import count_items as items_in

_SERVICES = {
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}


@dataclass(frozen=True)
class Received:
    signal: Signal
    payload: bytes
    metadata: dict[str, str | bytes]


@dataclass(frozen=True)
class Answer:
    """What the sink answers one call: a status other than OK, or OK with a partial_success."""

    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""
    retry_after: float | None = None  # seconds, sent as google.rpc.RetryInfo
    rejected: int = 0  # OK with partial_success rejecting this many items


@dataclass(frozen=True)
class ServerTls:
    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None  # require client certificates signed by this CA (mTLS)


@dataclass
class _Script:
    answer: Answer
    remaining: int


class OtlpSink:
    """An OTLP/gRPC server on 127.0.0.1 (``port`` 0 picks one, kept across restarts)."""

    def __init__(self, port: int = 0, *, tls: ServerTls | None = None, accept_gzip: bool = True) -> None:
        self.port = port
        self.tls = tls
        self.accept_gzip = accept_gzip
        self.calls = 0  # every call, answered OK or not
        # Reentrant, so that wait_for predicates can call the sink's own accessors.
        self._cond = threading.Condition(threading.RLock())
        self._received: list[Received] = []
        self._script: list[_Script] = []
        self._server: grpc.Server | None = None
        self._pool: futures.ThreadPoolExecutor | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> OtlpSink:
        self._pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-sink")
        # Bit 0 alone enables only "identity": a gzip-compressed request is then refused, which shows
        # whether a client really compressed.
        options = [] if self.accept_gzip else [("grpc.compression_enabled_algorithms_bitset", 1)]
        server = grpc.server(self._pool, options=options)
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    service,
                    {"Export": grpc.unary_unary_rpc_method_handler(self._handler(signal))},  # raw bytes both ways
                )
                for signal, service in _SERVICES.items()
            ]
        )
        address = f"127.0.0.1:{self.port}"
        if self.tls is None:
            port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(self.tls.private_key, self.tls.cert_chain)],
                root_certificates=self.tls.client_ca,
                require_client_auth=self.tls.client_ca is not None,
            )
            port = server.add_secure_port(address, credentials)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        server.start()
        self.port = port
        self._server = server
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self, grace: float | None = None) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def answer_next(self, calls: int, answer: Answer) -> None:
        """Answer the next ``calls`` calls with ``answer`` (after any answers scripted before)."""
        with self._cond:
            self._script.append(_Script(answer, calls))

    def answer_ok(self) -> None:
        """Forget every scripted answer: the next calls are answered OK (the downstream recovered)."""
        with self._cond:
            self._script.clear()

    def fail_next(self, calls: int, code: grpc.StatusCode, *, retry_after: float | None = None) -> None:
        self.answer_next(calls, Answer(code, f"sink says {code.name}", retry_after))

    @property
    def requests(self) -> list[Received]:
        """The requests answered OK, in arrival order."""
        with self._cond:
            return list(self._received)

    def items(self, signal: Signal) -> int:
        """Data points, spans or log records in the requests of ``signal`` answered OK."""
        return sum(count_items(r.signal, r.payload) for r in self.requests if r.signal is signal)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate`` (which may call the sink) holds after a call; False on timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _next_answer(self) -> Answer:
        with self._cond:
            while self._script and self._script[0].remaining <= 0:
                self._script.pop(0)
            if not self._script:
                return Answer()
            self._script[0].remaining -= 1
            return self._script[0].answer

    def _handler(self, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def export(payload: bytes, context: grpc.ServicerContext) -> bytes:
            answer = self._next_answer()
            with self._cond:
                self.calls += 1
                if answer.code is grpc.StatusCode.OK:
                    metadata = dict(context.invocation_metadata())
                    self._received.append(Received(signal, payload, metadata))
                self._cond.notify_all()
            if answer.code is not grpc.StatusCode.OK:
                context.abort_with_status(rpc_status.to_status(_status(answer)))
            return _response(signal, answer.rejected)

        return export

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _status(answer: Answer) -> status_pb2.Status:
    status = status_pb2.Status(code=answer.code.value[0], message=answer.message)
    if answer.retry_after is not None:
        delay = Duration()
        delay.FromNanoseconds(round(answer.retry_after * 1e9))
        detail = AnyProto()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
    return status


_REQUESTS = {
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}
_RESPONSES = {
    Signal.METRICS: (ExportMetricsServiceResponse, "rejected_data_points"),
    Signal.TRACES: (ExportTraceServiceResponse, "rejected_spans"),
    Signal.LOGS: (ExportLogsServiceResponse, "rejected_log_records"),
}


def _response(signal: Signal, rejected: int) -> bytes:
    response_type, rejected_field = _RESPONSES[signal]
    response = response_type()
    if rejected:
        setattr(response.partial_success, rejected_field, rejected)
        response.partial_success.error_message = f"sink rejected {rejected}"
    payload: bytes = response.SerializeToString()
    return payload


def count_items(signal: Signal, payload: bytes) -> int:
    """Data points, spans or log records in a serialized export request."""
    return items_in(_REQUESTS[signal].FromString(payload))[1]


@pytest.fixture(name="otlp_sink")
def otlp_sink_fixture() -> Iterator[OtlpSink]:
    """A started plain-text ``OtlpSink``, stopped after the test."""
    with OtlpSink() as sink:
        yield sink
