"""The sidecar's HTTP status endpoint: ``/metrics`` (self-telemetry), ``/healthz`` and ``/readyz``.

Served by aiohttp from its own event loop thread (``_aio.ThreadedServer``, as the OTLP/HTTP receiver
is), so a connection costs a file descriptor and a coroutine, not a thread: idle or half-open
connections cannot pin threads (a thread per connection once let 893 half-open connections make 907
threads). The bounds: a connection must send its request head within ``idle_timeout`` seconds and may
stay idle as long after an answer; at most ``max_connections`` are open, and one more closes the
oldest that has not sent its request yet, so a fresh probe gets through a flood of idle connections.
Answers are computed on ``_WORKERS`` threads, so a slow scrape never blocks the loop, and nothing here
holds up the OTLP receivers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from aiohttp import web

from otel_contract.server._aio import Limits, ThreadedServer
from otel_contract.server.telemetry import CONTENT_TYPE, SelfTelemetry

_log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 256
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
        self._telemetry = telemetry
        self._ready = ready
        self._health = health
        self._pool: ThreadPoolExecutor | None = None
        app = web.Application()
        for path, answer in (("/metrics", self._metrics), ("/healthz", self._healthz), ("/readyz", self._readyz)):
            app.router.add_get(path, self._route(answer), allow_head=False)
        self._server = ThreadedServer(
            app,
            endpoint,
            what="telemetry.prometheus.endpoint",
            limits=Limits(idle_timeout, max_connections, keepalive_timeout=idle_timeout),
        )

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises ``OSError`` naming the address when it is taken."""
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="otel-contract-status")
        self._server.start()
        _log.info("status endpoint on http://%s", self.address)

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the endpoint asked for port 0)."""
        return self._server.port

    @property
    def address(self) -> str:
        """``host:port`` as bound, for logs (``[host]:port`` for IPv6)."""
        return self._server.address

    def stop(self) -> None:
        """Stop serving, close every connection and the socket; idempotent."""
        self._server.stop(grace=1.0)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- answers, computed on the pool's threads -------------------------------------------------

    def _route(self, answer: Callable[[], _Answer]) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            try:
                status, content_type, body = await self._server.loop.run_in_executor(self._pool, answer)
            except Exception:
                _log.exception("the status endpoint failed on %s", request.path)
                status, content_type, body = HTTPStatus.INTERNAL_SERVER_ERROR, _TEXT, b"internal error\n"
            headers = {"Content-Type": content_type, "Cache-Control": "no-store"}
            return web.Response(status=status, body=body, headers=headers)

        return handle

    def _metrics(self) -> _Answer:
        return HTTPStatus.OK, CONTENT_TYPE, self._telemetry.exposition()

    def _healthz(self) -> _Answer:
        body = {"status": "ok", **self._health()}
        return HTTPStatus.OK, "application/json", json.dumps(body).encode() + b"\n"

    def _readyz(self) -> _Answer:
        ok, reason = self._ready()
        return HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, reason.encode() + b"\n"
