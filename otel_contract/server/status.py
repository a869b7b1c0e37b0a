"""The sidecar's HTTP status endpoint: ``/metrics`` (self-telemetry), ``/healthz`` and ``/readyz``.

Plain ``http.server`` in a daemon thread: three tiny GET routes need no framework, and a slow or
stuck scrape must never hold up the OTLP receiver, which runs on its own gRPC threads.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otel_contract.server.telemetry import CONTENT_TYPE, SelfTelemetry

_log = logging.getLogger(__name__)

# How often serve_forever looks for a stop request: stop() waits up to this long.
_POLL_SECONDS = 0.1

Ready = Callable[[], tuple[bool, str]]
Health = Callable[[], dict[str, Any]]


class StatusServer:
    """Serves ``GET /metrics``, ``/healthz`` and ``/readyz`` on ``endpoint`` (``host:port``; port 0 picks one)."""

    def __init__(self, endpoint: str, telemetry: SelfTelemetry, ready: Ready, health: Health) -> None:
        self._address = _split_endpoint(endpoint)
        self._telemetry = telemetry
        self._ready = ready
        self._health = health
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises ``OSError`` when the address is taken."""
        server_class = _IPv6Server if ":" in self._address[0] else ThreadingHTTPServer
        server = server_class(self._address, _handler(self._telemetry, self._ready, self._health))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(_POLL_SECONDS,), name="otel-contract-status", daemon=True
        )
        self._thread.start()
        _log.info("status endpoint on http://%s", self.address)

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the endpoint asked for port 0)."""
        if self._server is None:
            raise RuntimeError("StatusServer is not started")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``host:port`` as bound, for logs (``[host]:port`` for IPv6)."""
        host = self._address[0] or "0.0.0.0"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"status endpoint {endpoint!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _handler(telemetry: SelfTelemetry, ready: Ready, health: Health) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "otel-contract"

        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            if path == "/metrics":
                self._send(HTTPStatus.OK, CONTENT_TYPE, telemetry.exposition())
            elif path == "/healthz":
                body = {"status": "ok", **health()}
                self._send(HTTPStatus.OK, "application/json", json.dumps(body).encode() + b"\n")
            elif path == "/readyz":
                ok, reason = ready()
                status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, "text/plain; charset=utf-8", reason.encode() + b"\n")
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes and probes arrive every few seconds; they belong in debug output, not on stderr.
            _log.debug("%s " + format, self.address_string(), *args)

    return _Handler
