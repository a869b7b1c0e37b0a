"""The contract engine: pure functions from (OTLP request, compiled contract) to (normalized request,
findings, counts). The sidecar and every CLI command call these and nothing else, so a violation is
reported identically at runtime and in CI. No I/O, no clock, no global state: the environment for
``from_env`` and the cardinality state are passed in."""

from otel_contract.engine._dispatch import (
    check_request,
    process_logs,
    process_metrics,
    process_signal,
    process_traces,
)
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine.cardinality import CardinalityState

__all__ = [
    "CardinalityState",
    "EngineOptions",
    "Outcome",
    "check_request",
    "process_logs",
    "process_metrics",
    "process_signal",
    "process_traces",
]
