"""What the engine is given besides the request, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from otel_contract.findings import Finding


class _Message(Protocol):
    def SerializeToString(self) -> bytes: ...


RequestT = TypeVar("RequestT", bound=_Message)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """``audit`` turns every reject into flag (for rollouts); ``env`` feeds ``from_env`` actions.

    The engine reads no environment itself: the caller passes it (the sidecar: ``os.environ``).
    """

    audit: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class Outcome(Generic[RequestT]):
    """The normalized request and what happened to it.

    ``items`` counts data points (metrics), spans (traces) or log records (logs) received;
    ``rejected`` of them were removed by a reject action, ``merged`` were duplicates removed by an
    identity conflict; the rest is forwarded.

    The core answers with bytes, not a message: ``payload`` holds the rewritten request (None when
    nothing changed) and ``request`` parses it only when someone asks (the sidecar forwards the bytes
    and never does).
    """

    __slots__ = ("_request", "_type", "findings", "items", "merged", "original", "payload", "rejected")

    def __init__(
        self,
        request_type: type[RequestT],
        original: bytes,
        payload: bytes | None,
        findings: tuple[Finding, ...],
        items: int,
        rejected: int,
        merged: int,
    ) -> None:
        self._request: RequestT | None = None
        self._type = request_type
        self.original = original
        self.payload = payload
        self.findings = findings
        self.items = items
        self.rejected = rejected
        self.merged = merged

    @property
    def changed(self) -> bool:
        """Whether the core rewrote anything; when not, ``to_bytes()`` is the bytes that arrived."""
        return self.payload is not None

    @property
    def request(self) -> RequestT:
        if self._request is None:
            self._request = self._type.FromString(self.to_bytes())  # type: ignore[attr-defined]
        return self._request

    @property
    def forwarded(self) -> int:
        return self.items - self.rejected - self.merged

    @property
    def dropped(self) -> int:
        """What the client is told in OTLP ``partial_success``: rejected plus merged duplicates."""
        return self.rejected + self.merged

    def to_bytes(self) -> bytes:
        """The bytes to forward: the original ones when nothing changed, else the normalized request."""
        return self.original if self.payload is None else self.payload
