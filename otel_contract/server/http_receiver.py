"""The OTLP/HTTP receiver: ``POST /v1/metrics``, ``/v1/traces``, ``/v1/logs`` on aiohttp.

Bodies are ``application/x-protobuf`` or ``application/json`` (OTLP/JSON), plain, gzip or deflate. A
protobuf body goes to ``intake.Intake`` as the bytes that arrived, as over gRPC, so a request the
contract leaves alone is forwarded unchanged; a JSON body becomes protobuf first, in one call into the
compiled core (``otlp.decode_otlp_json``).
The answer has the request's Content-Type (OTLP spec, "OTLP/HTTP Response"):

* 200 with the ``Export<Signal>ServiceResponse``, ``partial_success`` counting what the contract rejected;
* 400 with a ``google.rpc.Status`` for a body that is not an OTLP request (not retryable);
* 413 for a body over ``max_request_body_size`` (counted after decompression), 415 for a content type
  or encoding not listed above, 500 when the engine fails on the request (a bug; not retryable);
* 503 with ``Retry-After`` (and RetryInfo in the Status) when the queue is full or the sidecar drains;
* 404 and 405 (``Allow: POST``) from the router for other paths and methods.

One event loop in a daemon thread reads requests; the contract runs on a thread pool (the core
releases the GIL), so slow engine work never stalls reading. Bounded: a body is read and inflated in
steps up to the limit (a gzip bomb stops at the limit, it is never inflated whole), within
``read_timeout``; at most ``2 x threads`` requests are read or processed at once, later ones wait
unread in their sockets. A client that hangs up before its body arrived is forgotten without a log
line (an overloaded sidecar sees many: each client's timeout is one).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import zlib
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from otel_contract.otlp import FACTS, InputError, Signal, decode_otlp_json
from otel_contract.server._aio import Limits, ThreadedServer
from otel_contract.server.intake import Intake, Refusal, Refused, Transport, retry_status, too_large
from otel_contract.server.receivers import CorsSettings, HttpReceiverSettings, ReceiverTls

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_KEEPALIVE_SECONDS = 60.0
_SETTING = "receiver.http.max_request_body_size_mib"
# Headers a browser SDK sends with an export, allowed by any CORS configuration.
_CORS_HEADERS = ("content-type", "content-encoding", "accept")

_STATUSES: Mapping[Refusal, tuple[int, int]] = MappingProxyType(
    {  # reason -> (HTTP status, google.rpc code in the body)
        Refusal.QUEUE_FULL: (503, code_pb2.UNAVAILABLE),
        Refusal.SHUTTING_DOWN: (503, code_pb2.UNAVAILABLE),
        Refusal.TOO_LARGE: (413, code_pb2.RESOURCE_EXHAUSTED),
        Refusal.MALFORMED: (400, code_pb2.INVALID_ARGUMENT),
        Refusal.UNSUPPORTED: (415, code_pb2.INVALID_ARGUMENT),
        Refusal.ENGINE_ERROR: (500, code_pb2.INTERNAL),
    }
)


# Content-Encoding -> zlib's wbits: gzip, or deflate as RFC 9110 means it (zlib-wrapped).
_WBITS: Mapping[str, int] = MappingProxyType({"gzip": 31, "x-gzip": 31, "deflate": 15})


class _Timeout(Exception):
    pass


class _Gone(Exception):
    """The client closed the connection before its body arrived: nothing to answer, nothing to log."""


def _encode(message: Message, content_type: str) -> bytes:
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def _tls_context(tls: ReceiverTls) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Inflater:
    """A gzip or deflate body inflated in steps, never more than ``limit`` + 1 bytes out of it."""

    def __init__(self, encoding: str) -> None:
        self._wbits = _WBITS[encoding]  # KeyError: not an encoding the receiver reads
        self._encoding = encoding
        self._inflater = zlib.decompressobj(wbits=self._wbits)

    def inflate(self, data: bytes, room: int, out: list[bytes]) -> int:
        """Append what ``data`` inflates to, stopping past ``room`` bytes; the bytes appended. Raises
        ``zlib.error`` (or ``ValueError`` for data after a deflate stream)."""
        appended = 0
        while data and appended <= room:
            # max_length leaves what is not inflated yet in unconsumed_tail, not in memory as output.
            piece = self._inflater.decompress(data, room - appended + 1)
            appended += len(piece)
            out.append(piece)
            data = self._inflater.unconsumed_tail
            if self._inflater.eof and self._inflater.unused_data:
                if self._wbits != 31:
                    raise ValueError(f"data after the end of the {self._encoding} stream")
                data = self._inflater.unused_data  # another gzip member follows (RFC 1952)
                self._inflater = zlib.decompressobj(wbits=self._wbits)
        return appended

    @property
    def complete(self) -> bool:
        return self._inflater.eof


class HttpReceiver:
    """Serves OTLP/HTTP on ``settings.endpoint`` and passes requests to ``intake``."""

    def __init__(
        self,
        settings: HttpReceiverSettings,
        intake: Intake,
        *,
        threads: int = 8,
        reuse_port: bool = False,
    ) -> None:
        self._settings = settings
        self._intake = intake
        self._threads = threads
        self._slots = asyncio.Semaphore(2 * threads)
        self._pool: ThreadPoolExecutor | None = None
        # client_max_size bounds only request.read(), which is not used: _read_body bounds every body.
        app = web.Application(client_max_size=settings.max_request_body_size)
        for signal, facts in FACTS.items():
            app.router.add_post(facts.http_path, self._handler(signal))
            if settings.cors is not None:
                app.router.add_route("OPTIONS", facts.http_path, self._preflight)
        if settings.cors is not None:
            app.on_response_prepare.append(self._cors_headers)
        self._server = ThreadedServer(
            app,
            settings.endpoint,
            what="receiver.http.endpoint",
            limits=Limits(settings.head_timeout, settings.max_connections, _KEEPALIVE_SECONDS),
            ssl_context=_tls_context(settings.tls) if settings.tls else None,  # file errors now, not in the loop
            reuse_port=reuse_port,
            auto_decompress=False,  # _read_body inflates, within the limit
        )

    @property
    def address(self) -> str:
        """``host:port`` as bound."""
        return self._server.address

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises ``OSError`` naming the address when it cannot bind."""
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="otlp-http-receiver")
        self._server.start()

    def stop(self, grace: float) -> None:
        """Finish in-flight requests for up to ``grace`` seconds, then close every connection; idempotent."""
        self._server.stop(grace)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the loop's thread -----------------------------------------------------------------------

    def _handler(self, signal: Signal) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def export(request: web.Request) -> web.StreamResponse:
            return await self._export(signal, request)

        return export

    async def _export(self, signal: Signal, request: web.Request) -> web.StreamResponse:
        intake = self._intake
        content_type = request.content_type.lower()
        if content_type not in (PROTOBUF, JSON):
            # No Status body: the client's encoding is unknown, so the answer is plain text.
            text = f"unsupported Content-Type {request.content_type!r}: OTLP/HTTP takes {PROTOBUF} or {JSON}"
            refused = intake.refuse(signal, Transport.HTTP, Refusal.UNSUPPORTED, text)
            return await _closing(request, web.Response(status=415, text=refused.message))
        async with self._slots:
            try:
                body = await self._read_body(signal, request)
                answer = await self._server.loop.run_in_executor(self._pool, self._process, signal, content_type, body)
            except Refused as refused:
                response = self._refusal(refused, content_type)
                if request.content.is_eof():
                    return response
                return await _closing(request, response)
            except _Timeout:
                return await _closing(request, web.Response(status=408, text="the request body did not arrive in time"))
            except _Gone:
                request.protocol.force_close()
                return web.Response(status=400, text="the client closed the connection")  # written nowhere
        return web.Response(body=answer, content_type=content_type)

    async def _read_body(self, signal: Signal, request: web.Request) -> bytes:
        """The body, inflated, at most ``max_request_body_size`` bytes; raises ``Refused`` or ``_Timeout``."""
        limit = self._settings.max_request_body_size
        intake = self._intake
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        try:
            inflater = None if encoding in ("", "identity") else _Inflater(encoding)
        except KeyError:
            message = f"unsupported Content-Encoding {encoding!r}: OTLP/HTTP takes gzip, deflate or none"
            raise intake.refuse(signal, Transport.HTTP, Refusal.UNSUPPORTED, message) from None
        declared = request.content_length
        if declared is not None and declared > limit:
            raise intake.refuse(signal, Transport.HTTP, Refusal.TOO_LARGE, too_large(declared, limit, _SETTING))
        parts: list[bytes] = []
        size = received = 0
        try:
            async with asyncio.timeout(self._settings.read_timeout):
                async for chunk in request.content.iter_any():
                    received += len(chunk)  # also bounded: empty gzip members inflate to nothing
                    if received > limit:
                        raise intake.refuse(
                            signal, Transport.HTTP, Refusal.TOO_LARGE, too_large(received, limit, _SETTING)
                        )
                    if inflater is None:
                        size += len(chunk)
                        parts.append(chunk)
                    else:
                        size += inflater.inflate(chunk, limit - size, parts)
                    if size > limit:
                        raise intake.refuse(signal, Transport.HTTP, Refusal.TOO_LARGE, too_large(size, limit, _SETTING))
        except TimeoutError:
            raise _Timeout from None
        except ConnectionError:
            raise _Gone from None
        except (zlib.error, ValueError) as error:
            raise intake.refuse(
                signal, Transport.HTTP, Refusal.MALFORMED, f"the body is not valid {encoding} data: {error}"
            ) from None
        if inflater is not None and not inflater.complete:
            raise intake.refuse(signal, Transport.HTTP, Refusal.MALFORMED, f"the {encoding} body is truncated")
        return b"".join(parts)

    def _process(self, signal: Signal, content_type: str, body: bytes) -> bytes:
        """On a pool thread: the encoded response for an accepted request; raises ``Refused``."""
        if content_type == JSON:
            body = self._from_json(signal, body)
        response = self._intake.export(signal, body, Transport.HTTP)
        if content_type == PROTOBUF:
            return response
        return _encode(FACTS[signal].response_type.FromString(response), JSON)

    def _from_json(self, signal: Signal, body: bytes) -> bytes:
        try:
            return decode_otlp_json(body, source=f"the {signal} request", signal=signal, empty=True)[1]
        except InputError as error:
            raise self._intake.refuse(
                signal, Transport.HTTP, Refusal.MALFORMED, f"not an OTLP {signal} request: {error.reason}"
            ) from None

    def _refusal(self, refused: Refused, content_type: str) -> web.Response:
        status, code = _STATUSES[refused.reason]
        headers = {}
        if refused.reason.retryable:
            retry_after = self._intake.retry_after
            body = retry_status(refused.message, retry_after)
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        else:
            body = status_pb2.Status(code=code, message=refused.message)
        response = web.Response(status=status, body=_encode(body, content_type), content_type=content_type)
        response.headers.update(headers)
        return response

    # --- CORS ------------------------------------------------------------------------------------

    @property
    def _cors(self) -> CorsSettings:
        assert self._settings.cors is not None
        return self._settings.cors

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        """Answer a browser's preflight; an origin or header not allowed gets no Allow-* headers, which
        the browser reads as a refusal."""
        cors = self._cors
        origin = request.headers.get("Origin", "")
        response = web.Response(status=204)
        response.headers["Vary"] = "Origin"
        wanted = [h.strip().lower() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")]
        wanted = [h for h in wanted if h]
        allowed_headers = {h.lower() for h in (*_CORS_HEADERS, *cors.allowed_headers)}
        headers_ok = "*" in allowed_headers or all(h in allowed_headers for h in wanted)
        if cors.allows(origin) and headers_ok and request.headers.get("Access-Control-Request-Method") == "POST":
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "POST"
            if wanted:
                response.headers["Access-Control-Allow-Headers"] = ", ".join(wanted)
            if cors.max_age:
                response.headers["Access-Control-Max-Age"] = str(cors.max_age)
        return response

    async def _cors_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and request.method == "POST" and self._cors.allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"


async def _closing(request: web.Request, response: web.Response) -> web.Response:
    """Send ``response`` and close the connection: the rest of the body is not read, so the connection
    cannot carry another request (and aiohttp would wait on the unread body until its lingering timeout)."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response
