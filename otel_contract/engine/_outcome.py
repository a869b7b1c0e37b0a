"""What the engine is given besides the request, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from google.protobuf.message import Message

from otel_contract.contract.compiled import CompiledContract
from otel_contract.findings import Finding


class _Message(Protocol):
    def SerializeToString(self) -> bytes: ...


RequestT = TypeVar("RequestT", bound=_Message)
MessageT = TypeVar("MessageT", bound=Message)


def prepare(
    payload: bytes | bytearray | memoryview | MessageT, message_type: type[MessageT], contract: CompiledContract
) -> tuple[MessageT, bytes | None, bool]:
    """The request to work on, the original bytes (if given bytes) and whether renames may apply.

    A message argument is copied, never modified. For bytes, a substring search for every alias
    and legacy attribute key tells before any walk whether a rename can be needed at all.
    Raises ``google.protobuf.message.DecodeError`` for bytes that are not such a request.
    """
    if isinstance(payload, bytes | bytearray | memoryview):
        original = bytes(payload)
        request = message_type.FromString(original)
        return request, original, any(token in original for token in contract.legacy_tokens)
    request = message_type()
    request.CopyFrom(payload)
    return request, None, bool(contract.legacy_tokens)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """``audit`` turns every reject into flag (for rollouts); ``env`` feeds ``from_env`` actions.

    The engine reads no environment itself: the caller passes it (the sidecar: ``os.environ``).
    ``native`` runs the compiled core (``otel_contract._core``) where it covers the request; False
    runs the Python engine it replaces, which the differential tests compare it with.
    """

    audit: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    native: bool = True


class Outcome(Generic[RequestT]):
    """The normalized request and what happened to it.

    ``items`` counts data points (metrics), spans (traces) or log records (logs) received;
    ``rejected`` of them were removed by a reject action, ``merged`` were duplicates removed by an
    identity conflict; the rest is forwarded.

    The compiled core answers with bytes, not a message: ``payload`` holds them and ``request`` parses
    them only when someone asks (the sidecar forwards the bytes and never does).
    """

    __slots__ = ("_request", "_type", "changed", "findings", "items", "merged", "original", "payload", "rejected")

    def __init__(
        self,
        request: RequestT | None,
        findings: tuple[Finding, ...],
        items: int,
        rejected: int,
        merged: int,
        changed: bool,
        original: bytes | None = None,
        *,
        payload: bytes | None = None,
        request_type: type[RequestT] | None = None,
    ) -> None:
        if request is None and (request_type is None or (payload is None and original is None)):
            raise ValueError("an outcome needs the request, or its bytes and type")
        self._request = request
        self._type = request_type
        self.findings = findings
        self.items = items
        self.rejected = rejected
        self.merged = merged
        self.changed = changed
        self.original = original
        self.payload = payload

    @property
    def request(self) -> RequestT:
        if self._request is None:
            assert self._type is not None  # __init__ makes sure
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
        if not self.changed and self.original is not None:
            return self.original
        if self.payload is not None:
            return self.payload
        return self.request.SerializeToString()
