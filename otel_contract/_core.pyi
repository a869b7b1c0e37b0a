# The compiled core's Python face (core/src/lib.rs); otel_contract.engine._native is its caller.
from collections.abc import Sequence
from typing import Any

Scalar = str | bool | int | float

class WireError(ValueError):
    """The bytes are not a request of the expected type."""

class CoreError(Exception):
    """The core failed on a request: a bug, never bad input."""

class Contract:
    """The compiled contract's tables (see engine/_native.py for each key), the contract's patterns
    by the indexes the tables use, and the oracle that answers what only Python can."""

    def __init__(self, tables: dict[str, Any], patterns: Sequence[Any], oracle: Any) -> None: ...

class Budgets:
    """Series budgets kept across requests: per metric, the hashes of the series admitted."""

    def __init__(self, max_tracked_series: int) -> None: ...
    def admit(self, metric: str, series: int, budget: int) -> bool: ...
    def series_count(self, metric: str) -> int: ...
    @property
    def tracked(self) -> int: ...
    def forget(self, metric: str | None = None) -> None: ...

def check(signal: int, payload: bytes) -> None:
    """Raise WireError unless ``payload`` is a request of ``signal`` (0 metrics, 1 traces, 2 logs)."""

RULES: list[str]
"""The slugs of the rules the core can report (core/src/sink.rs)."""

class MetricSelection:
    """Metric names, and the cut of a serialized metrics request down to the metrics with one of them."""

    def __init__(self, names: Sequence[str]) -> None: ...
    def select(self, payload: bytes) -> bytes | None:
        """Only the selected metrics, with their resources and scopes; None when there is none."""

    def present(self, payload: bytes) -> list[str]:
        """The selected names that metrics of ``payload`` have, sorted."""

class OtlpJson:
    """OTLP/JSON documents into protobuf requests, over the FileDescriptorSet that defines the metrics,
    traces and logs requests named."""

    def __init__(self, descriptor_set: bytes, metrics: str, traces: str, logs: str) -> None: ...
    def decode(self, data: bytes, signal: int | None = None, empty: bool = False) -> tuple[int, bytes]:
        """(signal, the request's protobuf bytes); WireError says why the document is not a request."""

# (slug, metric, attribute, count, action, template, prefix, args)
FindingRow = tuple[str, str | None, str | None, int, str, str, str | None, tuple[Any, ...]]

def process(
    contract: Contract,
    signal: int,
    payload: bytes,
    env: Sequence[str | None],
    audit: bool,
    budgets: Budgets | None = None,
) -> tuple[bytes | None, list[FindingRow], int, int, int]: ...
def _panic_at_the_boundary() -> None:
    """Panics inside the boundary every request crosses (raises CoreError): for the tests."""
