"""What an RFC is to the tool: its file, its number and the front matter it reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from otel_contract.findings import Location


class Status(enum.Enum):
    """Where an RFC stands; reviews move it draft -> review -> accepted or rejected."""

    DRAFT = "draft"
    REVIEW = "review"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Rfc:
    """One RFC file: its number and slug come from the file name, the rest from the front matter."""

    path: str  # as messages name it
    number: int
    title: str
    contract: str
    version: str  # the contract version the RFC introduces
    base_version: str | None  # the version it changes; None for a new contract
    status: Status
    authors: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    created: str | None = None

    @property
    def label(self) -> str:
        return f"RFC {self.number:04d}"

    def names(self, contract: str, version: str) -> bool:
        """Whether this RFC proposes ``version`` of ``contract``; a rejected RFC proposes nothing."""
        return self.status is not Status.REJECTED and self.contract == contract and self.version == version


class RfcError(Exception):
    """An RFC (or the RFC template) that cannot be used; ``str()`` is ``file:line:column: reason``."""

    def __init__(self, location: Location, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason
