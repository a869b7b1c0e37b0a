"""The receivers' settings: each receiver's endpoint, TLS and limits, with their defaults and checks.

A receiver kind is one settings class with its ``from_config`` (the pipeline config's ``receiver``
section, paths resolved against the config file's directory): ``grpc_receiver.py`` serves OTLP/gRPC
with ``ReceiverSettings``, ``http_receiver.py`` OTLP/HTTP with ``HttpReceiverSettings``
(``receiver.http``). Both take the same TLS settings and the same default size limit.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_contract.server._paths import resolve
from otel_contract.server.endpoints import endpoint_or_off, endpoint_problem

MIB = 2**20
DEFAULT_ENDPOINT = "127.0.0.1:4317"
DEFAULT_HTTP_ENDPOINT = "127.0.0.1:4318"
_DEFAULT_MAX_SIZE = 4 * MIB  # the Collector's gRPC default; the HTTP receiver takes the same


@dataclass(frozen=True, slots=True)
class ReceiverTls:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None, base: Path) -> ReceiverTls | None:
        """``receiver.tls`` (the schema requires both files), or None when TLS is off."""
        if not raw:
            return None
        return cls(
            cert_file=resolve(base, raw["cert_file"]) or "",
            key_file=resolve(base, raw["key_file"]) or "",
            client_ca_file=resolve(base, raw.get("client_ca_file")),
        )


class OnEngineError(enum.Enum):
    """What the receiver does with a request on which the contract engine itself fails (a bug)."""

    REJECT = "reject"  # refuse it, non-retryable: unchecked data never passes the contract
    FORWARD = "forward"  # forward it unchanged: availability before enforcement


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """The OTLP/gRPC receiver: where it listens, the largest request it takes, TLS, engine failures."""

    endpoint: str = DEFAULT_ENDPOINT
    max_recv_msg_size: int = _DEFAULT_MAX_SIZE
    tls: ReceiverTls | None = None
    on_engine_error: OnEngineError = OnEngineError.REJECT

    def __post_init__(self) -> None:
        if problem := endpoint_problem("receiver.endpoint", self.endpoint, listen=True):
            raise ValueError(problem)

    @classmethod
    def from_config(
        cls,
        raw: Mapping[str, Any],
        base: Path,
        *,
        endpoint: str | None = None,
        on_engine_error: str | None = None,
    ) -> ReceiverSettings:
        """``receiver`` as the pipeline config writes it (MiB); ``endpoint`` (``--endpoint``) wins over
        the file, ``on_engine_error`` is the config's top-level key. A key not set keeps the default
        above; raises ``ValueError`` for a value refused."""
        defaults = cls()
        return cls(
            endpoint=endpoint or raw.get("endpoint", defaults.endpoint),
            max_recv_msg_size=int(raw.get("max_recv_msg_size_mib", defaults.max_recv_msg_size / MIB) * MIB),
            tls=ReceiverTls.from_config(raw.get("tls"), base),
            on_engine_error=OnEngineError(on_engine_error or defaults.on_engine_error.value),
        )


def _origin_pattern(origin: str) -> re.Pattern[str]:
    # The Collector's syntax: an origin, "*" for any, or one "*" within (https://*.example.com).
    return re.compile(".*" if origin == "*" else ".*".join(re.escape(part) for part in origin.split("*", 1)))


@dataclass(frozen=True, slots=True)
class CorsSettings:
    """Which browser origins may send (``receiver.http.cors``), as the Collector's confighttp says it."""

    allowed_origins: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = ()
    max_age: int = 0  # seconds a browser may cache a preflight answer; 0 sends no Access-Control-Max-Age

    def __post_init__(self) -> None:
        for origin in self.allowed_origins:
            if origin.count("*") > 1:
                raise ValueError(f"receiver.http.cors.allowed_origins: at most one '*' in an origin, got {origin!r}")

    def allows(self, origin: str) -> bool:
        return any(_origin_pattern(allowed).fullmatch(origin) for allowed in self.allowed_origins)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> CorsSettings | None:
        if not raw or not raw.get("allowed_origins"):
            return None  # without an allowed origin, CORS answers nothing: browsers are refused
        return cls(
            allowed_origins=tuple(raw["allowed_origins"]),
            allowed_headers=tuple(raw.get("allowed_headers", ())),
            max_age=int(raw.get("max_age", 0)),
        )


@dataclass(frozen=True, slots=True)
class HttpReceiverSettings:
    """The OTLP/HTTP receiver (``POST /v1/metrics``, ``/v1/traces``, ``/v1/logs``): where it listens,
    the largest body it takes (after decompression), TLS and CORS."""

    endpoint: str = DEFAULT_HTTP_ENDPOINT
    max_request_body_size: int = _DEFAULT_MAX_SIZE
    tls: ReceiverTls | None = None
    cors: CorsSettings | None = None
    read_timeout: float = 30.0  # for a request's body, so that a stalled client cannot hold a slot
    head_timeout: float = 10.0  # for a connection's first request head (slowloris)
    max_connections: int = 4096  # open at once; memory per connection is small, but not nothing

    def __post_init__(self) -> None:
        if problem := endpoint_problem("receiver.http.endpoint", self.endpoint, listen=True):
            raise ValueError(problem)

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], base: Path, *, endpoint: str | None = None
    ) -> HttpReceiverSettings | None:
        """``receiver.http`` as the pipeline config writes it (MiB); ``endpoint`` (``--http-endpoint``)
        wins over the file. None when the endpoint is ``off``."""
        defaults = cls()
        chosen = endpoint_or_off(endpoint if endpoint is not None else raw.get("endpoint", defaults.endpoint))
        if chosen is None:
            return None
        return cls(
            endpoint=chosen,
            max_request_body_size=int(raw.get("max_request_body_size_mib", defaults.max_request_body_size / MIB) * MIB),
            tls=ReceiverTls.from_config(raw.get("tls"), base),
            cors=CorsSettings.from_config(raw.get("cors")),
        )


__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_HTTP_ENDPOINT",
    "MIB",
    "CorsSettings",
    "HttpReceiverSettings",
    "OnEngineError",
    "ReceiverSettings",
    "ReceiverTls",
]
