"""An aiohttp application served from its own event loop in a daemon thread, with bounded connections.

The sidecar's two HTTP servers (the OTLP/HTTP receiver and the status endpoint) run this way beside
gRPC's threads. A connection costs a file descriptor and a coroutine, not a thread. aiohttp closes a
connection that stays idle after a response (its keep-alive timeout) but waits for a connection's
first request forever, and accepts any number of connections; these bounds are added here:

* a connection whose first request head has not arrived within ``head_timeout`` is closed (slowloris;
  Go's ``ReadHeaderTimeout``, which the Collector's confighttp sets);
* at most ``max_connections`` are open: one more closes the oldest connection that has not sent a
  request head yet, so that a fresh client gets through a flood of idle connections, or is closed at
  once when every open connection has sent one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from otel_contract.server.endpoints import Endpoint, parse_endpoint

_log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The connection bounds of one server."""

    head_timeout: float = 10.0  # seconds for a connection's first request head
    max_connections: int = 4096
    keepalive_timeout: float = 60.0  # seconds a connection may stay idle after a response

    def __post_init__(self) -> None:
        if not (self.head_timeout > 0 and self.keepalive_timeout > 0) or self.max_connections < 1:
            raise ValueError("head_timeout, keepalive_timeout and max_connections must be positive")


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, seen by ``ThreadedServer`` when it opens and closes.

    The bound is applied in connection_made, not when the protocol is made: the event loop makes the
    protocols of a batch of accepted connections before any of them is connected."""

    __slots__ = ("_admitted", "_handler", "_owner")

    def __init__(self, handler: RequestHandler, owner: ThreadedServer) -> None:
        self._handler = handler
        self._owner = owner
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._admitted = self._owner._admit(self._handler, transport)
        if self._admitted:
            self._handler.connection_made(transport)
        else:
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._owner._release(self._handler)
            self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> None:
        self._handler.eof_received()  # aiohttp's returns None: the transport closes itself

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


class ThreadedServer:
    """Serves ``app`` on ``endpoint`` (``host:port``; port 0 picks one); ``what`` names the setting in errors."""

    def __init__(
        self,
        app: web.Application,
        endpoint: str,
        *,
        what: str,
        limits: Limits,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        **handler_args: Any,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint, listen=True)
        self._what = what
        self._limits = limits
        self._ssl = ssl_context
        self._reuse_port = reuse_port
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=limits.keepalive_timeout, shutdown_timeout=5.0, **handler_args
        )
        app.middlewares.append(self._spoke)
        # Touched by the loop's thread only: how many connections are open, and those of them that have
        # not sent a request head yet, oldest first, with their transports.
        self._open = 0
        self._silent: dict[RequestHandler, asyncio.Transport] = {}
        self._bound: Endpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: asyncio.Server | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server is not started")
        return self._loop

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the endpoint asked for port 0)."""
        if self._bound is None:
            raise RuntimeError("the server is not started")
        return self._bound.port

    @property
    def address(self) -> str:
        """``host:port`` as bound (``[host]:port`` for IPv6)."""
        if self._bound is None:
            raise RuntimeError("the server is not started")
        return str(self._bound)

    def start(self) -> None:
        """Bind and serve; raises ``OSError`` naming the address and ``what`` when it cannot bind."""
        self._loop = loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name=f"otel-contract {self._what}", daemon=True)
        self._thread.start()
        try:
            port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=_START_TIMEOUT)
        except OSError as error:
            self.stop(0)
            # The errno's own text: asyncio's repeats the address.
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise OSError(f"cannot listen on {self._endpoint} ({self._what}): {reason}") from None
        self._bound = replace(self._endpoint, port=port)

    def stop(self, grace: float = 5.0) -> None:
        """Finish requests in progress for up to ``grace`` seconds, then close every connection; idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=grace + 5)
        except Exception:  # a stop must finish: what is left is closed with the loop
            _log.exception("%s did not stop cleanly", self._what)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()

    # --- the loop's thread -----------------------------------------------------------------------

    async def _serve(self) -> int:
        await self._runner.setup()
        self._listener = await asyncio.get_running_loop().create_server(
            self._connection,
            self._endpoint.host,
            self._endpoint.port,
            ssl=self._ssl,
            reuse_port=self._reuse_port or None,
        )
        return int(self._listener.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._listener is not None:
            self._listener.close()
        await self._runner.cleanup()

    def _connection(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        return _Counted(server(), self)

    def _admit(self, handler: RequestHandler, transport: asyncio.Transport) -> bool:
        """Whether a new connection may open: below the bound, or by closing the oldest silent one."""
        if self._open >= self._limits.max_connections:
            if not self._silent:
                return False  # every open connection is being served: refuse the newcomer
            oldest = next(iter(self._silent))
            self._silent.pop(oldest).close()
        self._open += 1
        self._silent[handler] = transport
        asyncio.get_running_loop().call_later(self._limits.head_timeout, self._close_if_silent, handler)
        return True

    def _release(self, handler: RequestHandler) -> None:
        """An admitted connection closed."""
        self._silent.pop(handler, None)
        self._open -= 1

    def _close_if_silent(self, handler: RequestHandler) -> None:
        transport = self._silent.pop(handler, None)
        if transport is not None:  # no request head within head_timeout
            transport.close()

    @web.middleware
    async def _spoke(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        self._silent.pop(request.protocol, None)
        return await handler(request)
