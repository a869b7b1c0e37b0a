"""The contract processor: the engine behind the receiver, with the active contract swapped on reload.

It also words the OTLP response: rejected items go in ``partial_success`` with an English message
naming rule and metric; flag-only findings give 0 rejected and a warning (OTLP spec, "Partial Success").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_contract.autoscaling.stream import SmoothedSeries, smoothed_signals
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, Outcome, process_signal
from otel_contract.findings import Finding
from otel_contract.inputs.otlp import Signal
from otel_contract.rules import Action
from otel_contract.shims import compile_shims
from otel_contract.shims.runtime import ShimRuntime

_MAX_MESSAGE_FINDINGS = 5
# A finding's text quotes names and values from the request; an attacker's megabyte-long metric name
# must not come back in a response larger than the client's receive limit (gRPC's default is 4 MiB).
_MAX_FINDING_TEXT = 300


def contract_label(contract: CompiledContract) -> str:
    return f"{contract.contract.name}@{contract.contract.version}"


@dataclass(frozen=True, slots=True)
class _Wording:
    noun: str
    rejected_field: str
    response: Callable[[], Any]


_WORDING: Mapping[Signal, _Wording] = MappingProxyType(
    {
        Signal.METRICS: _Wording("data point", "rejected_data_points", ExportMetricsServiceResponse),
        Signal.TRACES: _Wording("span", "rejected_spans", ExportTraceServiceResponse),
        Signal.LOGS: _Wording("log record", "rejected_log_records", ExportLogsServiceResponse),
    }
)


def _describe(findings: list[Finding]) -> str:
    parts = [
        _cut(f"{f.rule.slug} on {f.metric or f.attribute or 'the request'} ({f.count} times: {f.message})")
        for f in sorted(findings, key=lambda f: -f.count)[:_MAX_MESSAGE_FINDINGS]
    ]
    more = len(findings) - _MAX_MESSAGE_FINDINGS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _cut(text: str) -> str:
    if len(text) <= _MAX_FINDING_TEXT:
        return text
    return f"{text[: _MAX_FINDING_TEXT - 40]}... ({len(text) - _MAX_FINDING_TEXT + 40} more characters)"


def response_for(signal: Signal, outcome: Outcome[Any], contract: str) -> bytes:
    """The serialized ``Export<Signal>ServiceResponse`` telling the client what happened to its data."""
    wording = _WORDING[signal]
    response = wording.response()
    if outcome.dropped:
        rejecting = [f for f in outcome.findings if f.action is Action.REJECT]
        duplicates = f"{outcome.merged} duplicate(s) after renames; " if outcome.merged else ""
        setattr(response.partial_success, wording.rejected_field, outcome.dropped)
        response.partial_success.error_message = (
            f"contract {contract} rejected {outcome.dropped} {wording.noun}(s): {duplicates}{_describe(rejecting)}"
        )
    elif outcome.findings:
        response.partial_success.error_message = (
            f"warning: contract {contract} accepted the data with findings: {_describe(list(outcome.findings))}"
        )
    serialized: bytes = response.SerializeToString()
    return serialized


class ContractProcessor:
    """Runs the engine with the active contract; ``swap`` replaces it atomically between requests.

    The cardinality state survives a reload: series admitted under the old contract still count
    against the new budgets, so a reload cannot be used to reset a budget by accident.
    """

    def __init__(self, contract: CompiledContract, *, audit: bool, env: Mapping[str, str]) -> None:
        self._contract = contract
        self._options = EngineOptions(audit=audit, env=MappingProxyType(dict(env)))
        self._state = CardinalityState()
        self._lock = threading.Lock()
        self._shims = _shim_runtime(contract)
        self._smoothed = _smoothed_series(contract)

    @property
    def contract(self) -> CompiledContract:
        return self._contract

    @property
    def label(self) -> str:
        return contract_label(self._contract)

    def swap(self, contract: CompiledContract) -> None:
        """Activate ``contract``; its shims and smoothed signals start afresh (a rate needs two samples
        of the new plan, an average its first interval)."""
        shims, smoothed = _shim_runtime(contract), _smoothed_series(contract)
        with self._lock:
            self._contract, self._shims, self._smoothed = contract, shims, smoothed

    def process(self, signal: Signal, payload: bytes) -> Outcome[Any]:
        """The engine's outcome for one request, with the compat shims' series and the smoothed signals
        appended for metrics; raises ``DecodeError`` for bytes that are not such a request."""
        # One request sees one contract, its shims and smoothers, even if a reload lands meanwhile.
        contract, shims, smoothed = self._contract, self._shims, self._smoothed
        outcome = process_signal(signal, payload, contract, state=self._state, options=self._options)
        if signal is not Signal.METRICS:
            return outcome
        added = shims.process(outcome.request)
        averages, average_points = smoothed.evaluate(outcome.request)
        if not added.points and not added.findings and not average_points:
            return outcome
        return replace(
            outcome,
            appended=added.payload + averages,  # serialized requests concatenate into one
            appended_items=added.points + average_points,
            side_findings=added.findings,
        )


def _shim_runtime(contract: CompiledContract) -> ShimRuntime:
    return ShimRuntime(compile_shims(contract.contract), contract_label(contract))


def _smoothed_series(contract: CompiledContract) -> SmoothedSeries:
    return SmoothedSeries(smoothed_signals(contract.contract), contract_label(contract))
