"""The logs engine: resource and attribute normalization on log records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine._records import RecordShape, process_records
from otel_contract.findings import Location
from otel_contract.otlp import Signal


def _log_attributes(record: Any) -> Iterable[Any]:
    yield record.attributes


_LOGS = RecordShape(Signal.LOGS, "log record", "resource_logs", "scope_logs", "log_records", _log_attributes)


def process_logs(
    payload: bytes | ExportLogsServiceRequest,
    contract: CompiledContract,
    *,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[ExportLogsServiceRequest]:
    """Normalize one logs request; ``items`` and ``rejected`` count log records."""
    return process_records(payload, ExportLogsServiceRequest, _LOGS, contract, options, source)
