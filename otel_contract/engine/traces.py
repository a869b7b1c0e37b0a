"""The traces engine: resource and attribute normalization on spans, span events and span links."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine._records import RecordShape, process_records
from otel_contract.findings import Location
from otel_contract.otlp import Signal


def _span_attributes(span: Any) -> Iterable[Any]:
    yield span.attributes
    for event in span.events:
        yield event.attributes
    for link in span.links:
        yield link.attributes


_SPANS = RecordShape(Signal.TRACES, "span", "resource_spans", "scope_spans", "spans", _span_attributes)


def process_traces(
    payload: bytes | ExportTraceServiceRequest,
    contract: CompiledContract,
    *,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[ExportTraceServiceRequest]:
    """Normalize one traces request; ``items`` and ``rejected`` count spans."""
    return process_records(payload, ExportTraceServiceRequest, _SPANS, contract, options, source)
