"""The OTLP/gRPC receiver: raw-bytes handlers for the metrics, trace and logs services.

Handlers take the request's bytes, not a parsed message, so a request the contract leaves alone is
queued as the bytes that arrived. Every way out is a status a client can act on:

* OK, with ``partial_success`` counting what the contract rejected (and why);
* INVALID_ARGUMENT for bytes that are not an OTLP request (not retryable: resending cannot help);
* INTERNAL when the engine itself fails on a request (a bug) and ``on_engine_error`` is ``reject``:
  not retryable either (OTLP clients retry only UNAVAILABLE and the like), because the same bytes
  would fail again; INTERNAL rather than INVALID_ARGUMENT because the fault is the sidecar's;
* RESOURCE_EXHAUSTED for a request over the size limit, saying the limit and how to raise it;
* UNAVAILABLE with ``google.rpc.RetryInfo`` when the queue is full or the sidecar is shutting down,
  so OTLP exporters retry instead of dropping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Protocol

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from otel_contract.findings import Finding
from otel_contract.otlp import FACTS, Signal
from otel_contract.pipeline import Pipeline, Result
from otel_contract.server._batch import Batch
from otel_contract.server.processor import response_for
from otel_contract.server.receivers import MIB, OnEngineError, ReceiverSettings

_log = logging.getLogger("otel_contract.receiver")

# gRPC refuses bigger messages itself, before a handler runs, with its own wording; below this hard cap
# the handler refuses with a message that says which setting to raise.
_HARD_CAP_FACTOR = 4
# An exception's text in a status message is cut here: grpc-message travels in a header.
_MAX_FAILURE_TEXT = 300


class ReceiverObserver(Protocol):
    def request_processed(
        self,
        signal: Signal,
        *,
        received: int,
        forwarded: int,
        rejected: int,
        findings: tuple[Finding, ...],
        seconds: float,
    ) -> None: ...

    def request_refused(self, signal: Signal, reason: str) -> None: ...

    def engine_failed(self, signal: Signal, action: OnEngineError) -> None: ...

    def shims_evaluated(self, *, points: int, findings: tuple[Finding, ...]) -> None: ...


class Admission(Protocol):
    """Where accepted batches go: the sending queue."""

    def offer(self, batch: Batch) -> bool: ...


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _unavailable(message: str, retry_after: float) -> grpc.Status:
    """UNAVAILABLE with RetryInfo both where the OTLP spec puts it (the status details, read by the Go
    and Java SDKs) and in the ``google.rpc.retryinfo-bin`` trailer the Python SDK reads."""
    seconds = int(retry_after)
    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds, nanos=int((retry_after - seconds) * 1e9)))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(retry)
    standard = rpc_status.to_status(status)
    return _Status(
        standard.code,
        standard.details,
        (*standard.trailing_metadata, ("google.rpc.retryinfo-bin", retry.SerializeToString())),
    )


def _decode_reason(error: DecodeError) -> str:
    text = str(error) or "unparsable protobuf"
    return text[0].lower() + text[1:]


class Receiver:
    """Accepts OTLP exports, runs the contract, hands the result to ``admission``."""

    def __init__(
        self,
        settings: ReceiverSettings,
        processor: Pipeline,
        admission: Admission,
        observer: ReceiverObserver,
        *,
        threads: int = 8,
        reuse_port: bool = False,
        retry_after: float = 1.0,
        extra_services: Callable[[grpc.Server], None] | None = None,
    ) -> None:
        self._settings = settings
        self._processor = processor
        self._admission = admission
        self._observer = observer
        self._retry_after = retry_after
        self._accepting = True
        limit = settings.max_recv_msg_size
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="otlp-receiver"),
            options=[
                ("grpc.max_receive_message_length", limit * _HARD_CAP_FACTOR),
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ],
            # No maximum_concurrent_rpcs: gRPC would answer RESOURCE_EXHAUSTED without RetryInfo, which
            # OTLP clients must not retry. Overload is pushed back by the sending queue instead.
        )
        handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
            facts.export_method.rsplit("/", 1)[0].lstrip("/"): grpc.unary_unary_rpc_method_handler(
                self._handler(signal), request_deserializer=None, response_serializer=None
            )
            for signal, facts in FACTS.items()
        }
        self._server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(service, {"Export": handler})
                for service, handler in handlers.items()
            ]
        )
        if extra_services is not None:
            extra_services(self._server)
        self.port = self._bind(settings)

    def _bind(self, settings: ReceiverSettings) -> int:
        if settings.tls is None:
            port = self._server.add_insecure_port(settings.endpoint)
        else:
            tls = settings.tls
            with open(tls.key_file, "rb") as key, open(tls.cert_file, "rb") as cert:
                pair = (key.read(), cert.read())
            client_ca = None
            if tls.client_ca_file:
                with open(tls.client_ca_file, "rb") as ca:
                    client_ca = ca.read()
            credentials = grpc.ssl_server_credentials(
                [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
            )
            port = self._server.add_secure_port(settings.endpoint, credentials)
        if not port:
            raise OSError(f"cannot listen on {settings.endpoint}: address in use or not available")
        return port

    def start(self) -> None:
        self._server.start()

    def stop_accepting(self) -> None:
        """New requests are answered UNAVAILABLE + RetryInfo from now on (SIGTERM)."""
        self._accepting = False

    def stop(self, grace: float) -> None:
        self._server.stop(grace).wait(grace + 1)

    def _handler(self, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        limit = self._settings.max_recv_msg_size

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            if not self._accepting:
                self._observer.request_refused(signal, "shutting_down")
                context.abort_with_status(_unavailable("the sidecar is shutting down; retry", self._retry_after))
            if len(request) > limit:
                self._observer.request_refused(signal, "too_large")
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"request of {len(request) / MIB:.1f} MiB exceeds the receiver limit of {limit / MIB:g} MiB; "
                    "send smaller batches or raise receiver.max_recv_msg_size_mib in the pipeline config",
                )
            started = time.perf_counter()
            try:
                outcome = self._processor.process(signal, request)
            except DecodeError as error:
                self._observer.request_refused(signal, "malformed")
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"not an OTLP {signal} request: {_decode_reason(error)}"
                )
            except Exception as error:  # an engine bug: bad input is a finding or a DecodeError
                return self._engine_failed(signal, request, error, context)
            return self._admit(signal, outcome, time.perf_counter() - started, context)

        return export

    def _engine_failed(self, signal: Signal, request: bytes, error: Exception, context: grpc.ServicerContext) -> bytes:
        action = self._settings.on_engine_error
        failure = f"{type(error).__name__}: {error}"
        if len(failure) > _MAX_FAILURE_TEXT:
            failure = failure[:_MAX_FAILURE_TEXT] + "..."
        forward = action is OnEngineError.FORWARD
        _log.error(
            "the contract engine failed on a %s request (%s); %s (on_engine_error: %s)",
            signal,
            failure,
            "forwarding it unchanged" if forward else "refusing it with INTERNAL",
            action.value,
            exc_info=error,
        )
        self._observer.engine_failed(signal, action)
        if forward:
            self._enqueue(Batch(signal, request, 0), context)
            return b""
        self._observer.request_refused(signal, "engine_error")
        context.abort(
            grpc.StatusCode.INTERNAL,
            f"the contract engine failed on this {signal} request ({failure}); it was not forwarded,"
            " and resending it would fail again: a sidecar bug, see its log",
        )

    def _admit(self, signal: Signal, outcome: Result, seconds: float, context: grpc.ServicerContext) -> bytes:
        if outcome.sent:
            self._enqueue(Batch(signal, outcome.to_bytes(), outcome.sent), context)
        self._observer.request_processed(
            signal,
            received=outcome.items,
            forwarded=outcome.forwarded,
            rejected=outcome.dropped,
            findings=outcome.findings,
            seconds=seconds,
        )
        if outcome.appended_items or outcome.side_findings:
            self._observer.shims_evaluated(points=outcome.appended_items, findings=outcome.side_findings)
        return response_for(signal, outcome, self._processor.label)

    def _enqueue(self, batch: Batch, context: grpc.ServicerContext) -> None:
        """Queue ``batch``, or refuse the whole request with a retryable status when the queue is full."""
        if not self._admission.offer(batch):
            self._observer.request_refused(batch.signal, "queue_full")
            context.abort_with_status(_unavailable("the sidecar's sending queue is full; retry", self._retry_after))
