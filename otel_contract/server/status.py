"""The sidecar's HTTP status endpoint: ``/metrics`` (self-telemetry), ``/healthz`` and ``/readyz``.

One asyncio loop in a daemon thread holds every connection: a connection costs a file descriptor
and a coroutine, not a thread, so idle or half-open connections cannot pin threads (a thread per
connection let 893 half-open connections make 907 threads). The bounds:

* a connection must send its whole request head (request line and headers, at most 8 KiB) within
  ``idle_timeout`` seconds, and take its answer within as long again; otherwise it is closed;
* at most ``max_connections`` are open: one more closes the oldest that has not sent its request yet,
  so a fresh probe gets through a flood of idle connections (or it is closed at once when every open
  connection is being answered);
* answers are computed on ``_WORKERS`` threads, so a slow scrape never blocks the loop, and nothing
  here holds up the OTLP receiver, which runs on its own gRPC threads.

Three GET routes need no framework; one request per connection (``Connection: close``), which is
what Prometheus and Kubernetes probes expect of a small endpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from otel_contract.server.endpoints import Endpoint, parse_endpoint
from otel_contract.server.telemetry import CONTENT_TYPE, SelfTelemetry

_log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 256
_MAX_HEAD_BYTES = 8192
_WORKERS = 2
_TEXT = "text/plain; charset=utf-8"

Ready = Callable[[], tuple[bool, str]]
Health = Callable[[], dict[str, Any]]
_Answer = tuple[HTTPStatus, str, bytes]


class StatusServer:
    """Serves ``GET /metrics``, ``/healthz`` and ``/readyz`` on ``endpoint`` (``host:port``; port 0 picks one)."""

    def __init__(
        self,
        endpoint: str,
        telemetry: SelfTelemetry,
        ready: Ready,
        health: Health,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if not idle_timeout > 0 or max_connections < 1:
            raise ValueError("idle_timeout and max_connections must be positive")
        self._endpoint = parse_endpoint(endpoint, listen=True)
        self._telemetry = telemetry
        self._ready = ready
        self._health = health
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._bound: Endpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        # Touched only on the loop's thread: every open connection, and (oldest first) those still idle.
        self._open: set[asyncio.Task[Any]] = set()
        self._idle: dict[asyncio.Task[Any], None] = {}

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises ``OSError`` naming the address when it is taken."""
        host, port = self._endpoint.host, self._endpoint.port
        try:
            listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as error:
            # create_server's strerror repeats the address; the errno's own text does not.
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise OSError(f"cannot listen on {self._endpoint} (telemetry.prometheus.endpoint): {reason}") from None
        self._bound = replace(self._endpoint, port=int(listener.getsockname()[1]))
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="otel-contract-status")
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(listener, started), name="otel-contract-status", daemon=True
        )
        self._thread.start()
        started.wait(timeout=10)
        _log.info("status endpoint on http://%s", self.address)

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the endpoint asked for port 0)."""
        if self._bound is None:
            raise RuntimeError("StatusServer is not started")
        return self._bound.port

    @property
    def address(self) -> str:
        """``host:port`` as bound, for logs (``[host]:port`` for IPv6)."""
        if self._bound is None:
            raise RuntimeError("StatusServer is not started")
        return str(self._bound)

    def stop(self) -> None:
        """Stop serving, close every connection and the socket; idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        stopping = self._stopping
        if stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the loop's thread -----------------------------------------------------------------------

    def _run(self, listener: socket.socket, started: threading.Event) -> None:
        assert self._loop is not None
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(listener, started))
        finally:
            started.set()  # also when serving failed, so that start() does not wait for nothing
            loop.close()
            listener.close()

    async def _serve(self, listener: socket.socket, started: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=listener, limit=_MAX_HEAD_BYTES)
        started.set()
        await self._stopping.wait()
        server.close()
        for task in list(self._open):
            task.cancel()
        await asyncio.gather(*self._open, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self._max_connections:
            if not self._idle:
                writer.transport.abort()  # every slot is answering a request: refuse cheaply
                return
            oldest = next(iter(self._idle))  # the oldest connection that has not sent a request
            del self._idle[oldest]  # so that the next newcomer picks another one
            oldest.cancel()
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        self._idle[task] = None
        answered = False
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._idle_timeout)
            finally:
                self._idle.pop(task, None)
            loop = asyncio.get_running_loop()
            status, content_type, body = await loop.run_in_executor(self._pool, self._answer, head)
            writer.write(_response(status, content_type, body))
            await asyncio.wait_for(writer.drain(), self._idle_timeout)
            answered = True
            _log.debug("%s %s %d", writer.get_extra_info("peername"), head.split(b"\r\n", 1)[0], status)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # too slow, gone, or a head over the limit: nothing worth answering
        finally:
            self._open.discard(task)
            if answered:
                writer.close()
            else:
                writer.transport.abort()

    def _answer(self, head: bytes) -> _Answer:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return HTTPStatus.BAD_REQUEST, _TEXT, b"bad request\n"
        method, target = parts[0], parts[1]
        if method != "GET":
            return HTTPStatus.METHOD_NOT_ALLOWED, _TEXT, b"only GET\n"
        try:
            return self._route(target.partition("?")[0])
        except Exception:
            _log.exception("the status endpoint failed on %s", target)
            return HTTPStatus.INTERNAL_SERVER_ERROR, _TEXT, b"internal error\n"

    def _route(self, path: str) -> _Answer:
        if path == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE, self._telemetry.exposition()
        if path == "/healthz":
            body = {"status": "ok", **self._health()}
            return HTTPStatus.OK, "application/json", json.dumps(body).encode() + b"\n"
        if path == "/readyz":
            ok, reason = self._ready()
            return HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, reason.encode() + b"\n"
        return HTTPStatus.NOT_FOUND, _TEXT, b"not found\n"


def _response(status: HTTPStatus, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Server: otel-contract\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n" + ("Allow: GET\r\n" if status is HTTPStatus.METHOD_NOT_ALLOWED else "") + "\r\n"
    )
    return head.encode("latin-1") + body
