"""The contract engine: pure functions from (OTLP request, compiled contract) to (normalized request,
findings, counts). The sidecar and every CLI command call these and nothing else, so a violation is
reported identically at runtime and in CI. No I/O, no clock, no global state: the environment for
``from_env`` and the cardinality state are passed in."""

from otel_contract.engine._dispatch import process_signal
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine.cardinality import CardinalityState
from otel_contract.engine.logs import process_logs
from otel_contract.engine.metrics import process_metrics
from otel_contract.engine.traces import process_traces

__all__ = [
    "CardinalityState",
    "EngineOptions",
    "Outcome",
    "process_logs",
    "process_metrics",
    "process_signal",
    "process_traces",
]
