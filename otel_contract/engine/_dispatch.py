"""The engine's entry points, one per signal and one for any signal: each is one call into the core."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine._native import check_native, process_native
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine.cardinality import CardinalityState
from otel_contract.findings import Location
from otel_contract.otlp import Signal


def process_signal(
    signal: Signal,
    payload: Any,
    contract: CompiledContract,
    *,
    state: CardinalityState | None = None,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[Any]:
    """The engine's outcome for one request of ``signal``: its bytes as received, or a message (the
    CLI's OTLP/JSON input; serialized for the core, never modified).

    ``items`` and ``rejected`` count data points (metrics), spans (traces) or log records (logs).
    ``state`` keeps the metrics' series budgets across requests; without it every request starts
    afresh. Raises ``google.protobuf.message.DecodeError`` for bytes that are not such a request.
    """
    return process_native(signal, payload, contract, options or EngineOptions(), state, source)


def check_request(signal: Signal, payload: bytes) -> None:
    """Raise ``google.protobuf.message.DecodeError`` unless ``payload`` is a request of ``signal`` that
    the Python parser accepts: what a capture reader must know, for a fraction of a parse's cost."""
    check_native(signal, payload)


def process_metrics(
    payload: bytes | ExportMetricsServiceRequest,
    contract: CompiledContract,
    *,
    state: CardinalityState | None = None,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[ExportMetricsServiceRequest]:
    """Normalize and validate one metrics request (``process_signal`` for metrics)."""
    return process_signal(Signal.METRICS, payload, contract, state=state, options=options, source=source)


def process_traces(
    payload: bytes | ExportTraceServiceRequest,
    contract: CompiledContract,
    *,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[ExportTraceServiceRequest]:
    """Normalize one traces request: resource, spans, span events and span links."""
    return process_signal(Signal.TRACES, payload, contract, options=options, source=source)


def process_logs(
    payload: bytes | ExportLogsServiceRequest,
    contract: CompiledContract,
    *,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[ExportLogsServiceRequest]:
    """Normalize one logs request: resource and log records."""
    return process_signal(Signal.LOGS, payload, contract, options=options, source=source)
