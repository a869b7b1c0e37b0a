"""Capture: one export request read from a capture, and where it came from; what every reader yields.

Re-exported by ``inputs.otlp``, the path the rest of the code imports it from.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_contract.findings import Finding, Location
from otel_contract.otlp import FACTS, OtlpRequest, Signal


@dataclass(frozen=True, slots=True)
class Capture:
    """One export request read from a capture, and where it came from.

    A binary capture keeps only its bytes (``parsed`` is None): the engine parses them itself, and
    a second parse held beside them would double the memory a large request takes. ``request``
    then parses them again on each access.
    """

    source: str  # "path" or "path:LINE" for a JSON-lines record, "-" / "-:LINE" for stdin
    signal: Signal
    parsed: OtlpRequest | None  # the request, when read from JSON or text (None: parse ``raw``)
    raw: bytes | None  # the protobuf bytes as read, for .pb/.binpb files (None for JSON)
    findings: tuple[Finding, ...] = ()  # what the reader noticed about the input itself (a scrape's Content-Type)
    exposition: bool = False  # read from Prometheus text or OpenMetrics (so Prometheus naming lints apply)
    line: int = 0  # the JSON-lines record's line, when ``source`` is "path:LINE"

    @property
    def request(self) -> OtlpRequest:
        """The export request (for a binary capture, parsed from ``raw`` anew on each access)."""
        if self.parsed is not None:
            return self.parsed
        assert self.raw is not None, "a capture holds its request or its bytes"
        return FACTS[self.signal].request_type.FromString(self.raw)

    @property
    def location(self) -> Location:
        """Where findings about this request point: file and line, as editors and CI annotations want them."""
        if self.line:
            return Location(self.source.removesuffix(f":{self.line}"), self.line)
        return Location(self.source)
