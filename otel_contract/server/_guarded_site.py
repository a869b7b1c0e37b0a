"""An aiohttp TCP site whose connections are bounded in number and in the time to send a first request head.

aiohttp closes a connection that stays idle after a response (its keep-alive timeout), but waits for
a connection's first request forever: a client that opens connections and sends part of a request
head (slowloris) would hold each one, and its memory, for as long as it likes. Go's net/http has
``ReadHeaderTimeout`` for this, which the Collector's confighttp sets; this is the same bound:

* a connection whose first request head has not been read within ``head_timeout`` seconds is closed;
* at most ``max_connections`` are open at once; one more is closed as soon as it is accepted.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.abort()


class HeadWatch:
    """The connections that have not sent a request head yet: its ``middleware`` goes in the application
    (before the runner's setup), its ``site`` listens (after it)."""

    def __init__(self) -> None:
        # Held for at most head_timeout each (aiohttp's handlers have __slots__: no weak references).
        self._silent: set[RequestHandler] = set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        self._silent.discard(request.protocol)
        return await handler(request)

    def site(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        reuse_port: bool,
        head_timeout: float,
        max_connections: int,
    ) -> GuardedSite:
        return GuardedSite(
            runner,
            host,
            port,
            ssl_context=ssl_context,
            reuse_port=reuse_port,
            head_timeout=head_timeout,
            max_connections=max_connections,
            silent=self._silent,
        )


class GuardedSite(web.BaseSite):
    """A TCP listener for ``runner`` (made by ``HeadWatch.site``)."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        reuse_port: bool,
        head_timeout: float,
        max_connections: int,
        silent: set[RequestHandler],
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._app_runner = runner
        self._host, self._port = host, port
        self._ssl = ssl_context
        self._reuse_port = reuse_port
        self._head_timeout = head_timeout
        self._max_connections = max_connections
        self._listener: asyncio.Server | None = None
        self._silent = silent

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the chosen one when ``port`` was 0)."""
        if self._listener is None or not self._listener.sockets:
            return self._port
        return int(self._listener.sockets[0].getsockname()[1])

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            self._connection,
            self._host,
            self._port,
            ssl=self._ssl,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
        # BaseSite.stop() closes the listener it knows by this name.
        self._server = self._listener

    def _connection(self) -> asyncio.Protocol:
        server = self._app_runner.server
        assert server is not None
        if len(server.connections) >= self._max_connections:
            return _Refused()
        handler = server()
        self._silent.add(handler)
        asyncio.get_running_loop().call_later(self._head_timeout, self._close_if_silent, handler)
        return handler

    def _close_if_silent(self, handler: RequestHandler) -> None:
        if handler in self._silent:
            self._silent.discard(handler)
            if handler.transport is not None:
                handler.force_close()
