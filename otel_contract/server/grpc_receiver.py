"""The OTLP/gRPC receiver: raw-bytes handlers for the metrics, trace and logs services.

Handlers take the request's bytes, not a parsed message, so a request the contract leaves alone is
queued as the bytes that arrived (``intake.Intake`` runs the contract for both receivers). Every way
out is a status a client can act on:

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

from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass
from types import MappingProxyType
from typing import NoReturn

import grpc
from grpc_status import rpc_status

from otel_contract.otlp import FACTS, Signal
from otel_contract.server.intake import Intake, Refusal, Refused, Transport, retry_status, too_large
from otel_contract.server.receivers import ReceiverSettings

# gRPC refuses bigger messages itself, before a handler runs, with its own wording; below this hard cap
# the handler refuses with a message that says which setting to raise.
_HARD_CAP_FACTOR = 4

_CODES: Mapping[Refusal, grpc.StatusCode] = MappingProxyType(
    {
        Refusal.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
        Refusal.MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Refusal.UNSUPPORTED: grpc.StatusCode.INVALID_ARGUMENT,
        Refusal.ENGINE_ERROR: grpc.StatusCode.INTERNAL,
    }
)


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _unavailable(message: str, retry_after: float) -> grpc.Status:
    """UNAVAILABLE with RetryInfo both where the OTLP spec puts it (the status details, read by the Go
    and Java SDKs) and in the ``google.rpc.retryinfo-bin`` trailer the Python SDK reads."""
    status = retry_status(message, retry_after)
    standard = rpc_status.to_status(status)
    retry = status.details[0].value  # the serialized RetryInfo
    return _Status(standard.code, standard.details, (*standard.trailing_metadata, ("google.rpc.retryinfo-bin", retry)))


class GrpcReceiver:
    """Serves the three OTLP export services on ``settings.endpoint`` and passes requests to ``intake``."""

    def __init__(
        self,
        settings: ReceiverSettings,
        intake: Intake,
        *,
        threads: int = 8,
        reuse_port: bool = False,
        extra_services: Callable[[grpc.Server], None] | None = None,
    ) -> None:
        self._settings = settings
        self._intake = intake
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

    def stop(self, grace: float) -> None:
        self._server.stop(grace).wait(grace + 1)

    def _handler(self, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        limit = self._settings.max_recv_msg_size
        intake = self._intake

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                if len(request) > limit:
                    message = too_large(len(request), limit, "receiver.max_recv_msg_size_mib")
                    raise intake.refuse(signal, Transport.GRPC, Refusal.TOO_LARGE, message)
                return intake.export(signal, request, Transport.GRPC)
            except Refused as refused:
                _abort(context, refused, intake.retry_after)

        return export


def _abort(context: grpc.ServicerContext, refused: Refused, retry_after: float) -> NoReturn:
    if refused.reason.retryable:
        context.abort_with_status(_unavailable(refused.message, retry_after))
    context.abort(_CODES[refused.reason], refused.message)
