"""The receivers' settings: each receiver's endpoint, TLS and limits, with their defaults and checks.

A receiver kind is one settings class with its ``from_config`` (the pipeline config's ``receiver``
section, paths resolved against the config file's directory); ``receiver.py`` serves OTLP/gRPC with
``ReceiverSettings``. An OTLP/HTTP receiver is one more class here, reusing ``ReceiverTls``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_contract.server._paths import resolve
from otel_contract.server.endpoints import endpoint_problem

MIB = 2**20
DEFAULT_ENDPOINT = "127.0.0.1:4317"


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
    max_recv_msg_size: int = 4 * MIB
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


__all__ = ["DEFAULT_ENDPOINT", "MIB", "OnEngineError", "ReceiverSettings", "ReceiverTls"]
