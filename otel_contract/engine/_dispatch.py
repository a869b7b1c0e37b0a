"""One entry point for any signal, so the sidecar and the CLI pick the engine function alike."""

from __future__ import annotations

from typing import Any

from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine.cardinality import CardinalityState
from otel_contract.engine.logs import process_logs
from otel_contract.engine.metrics import process_metrics
from otel_contract.engine.traces import process_traces
from otel_contract.findings import Location
from otel_contract.otlp import Signal


def process_signal(
    signal: Signal,
    payload: Any,
    contract: CompiledContract,
    *,
    state: CardinalityState,
    options: EngineOptions,
    source: Location | None = None,
) -> Outcome[Any]:
    """The engine's outcome for one request of ``signal`` (bytes or message).

    Raises ``google.protobuf.message.DecodeError`` for bytes that are not such a request.
    """
    if signal is Signal.METRICS:
        return process_metrics(payload, contract, state=state, options=options, source=source)
    if signal is Signal.TRACES:
        return process_traces(payload, contract, options=options, source=source)
    return process_logs(payload, contract, options=options, source=source)
