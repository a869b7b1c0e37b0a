"""The request chain: the engine, then the compat shims, then the smoothed signals.

This is the only place that chains them. The sidecar (per gRPC/HTTP request), ``validate`` and
``normalize`` (per capture) and the benchmarks all run a ``Pipeline``, so what the sidecar forwards
and what ``normalize`` writes cannot diverge. A pipeline holds one run's state: the cardinality state
(series admitted so far), the shims' running series and the smoothers.

What only the CLI does (renaming an exposition's series, Prometheus lints, invariants over a whole
run) happens around a pipeline, in ``otel_contract.gate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract._core import MetricSelection
from otel_contract.autoscaling.stream import SmoothedSeries, smoothed_signals
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, Outcome, process_signal
from otel_contract.findings import Finding, Location
from otel_contract.otlp import Signal
from otel_contract.shims import compile_shims
from otel_contract.shims.runtime import ShimRuntime


@dataclass(frozen=True, slots=True)
class Result:
    """The engine's outcome for one request and what the contract's derived series add to it.

    ``appended`` holds serialized requests of the same signal, sent after the normalized one
    (protobuf concatenates repeated fields, so ``to_bytes()`` is one valid request);
    ``appended_items`` counts their data points. ``side_findings`` are about the pipeline's own work
    (a compat shim past its expiry, a shim whose input stopped): self-telemetry, never told to the
    client and not part of a report.
    """

    outcome: Outcome[Any]
    appended: bytes = b""
    appended_items: int = 0
    side_findings: tuple[Finding, ...] = ()

    @property
    def request(self) -> Any:
        """The normalized request, without the appended series."""
        return self.outcome.request

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.outcome.findings

    @property
    def items(self) -> int:
        return self.outcome.items

    @property
    def forwarded(self) -> int:
        return self.outcome.forwarded

    @property
    def merged(self) -> int:
        return self.outcome.merged

    @property
    def dropped(self) -> int:
        return self.outcome.dropped

    @property
    def sent(self) -> int:
        """Items sent downstream: the forwarded ones plus the appended ones."""
        return self.outcome.forwarded + self.appended_items

    def to_bytes(self) -> bytes:
        """The bytes to forward: the engine's (the original ones when nothing changed), then the appended."""
        return self.outcome.to_bytes() + self.appended

    def forwarded_request(self) -> Any:
        """What ``to_bytes()`` holds, as one message (the normalized request is not modified)."""
        if not self.appended:
            return self.outcome.request
        request = type(self.outcome.request)()
        request.CopyFrom(self.outcome.request)
        request.MergeFromString(self.appended)
        return request


@dataclass(frozen=True, slots=True)
class _Stage:
    """What one request runs with: a contract and the derived series' state built for it."""

    contract: CompiledContract
    shims: ShimRuntime
    smoothed: SmoothedSeries
    reads: MetricSelection | None  # the metrics the shims and smoothed signals read; None: no such metric


class Pipeline:
    """Runs requests through the engine and the contract's derived series, one run's state kept.

    ``swap`` replaces the contract between requests (the sidecar's hot reload). The cardinality state
    survives it: series admitted under the old contract still count against the new budgets, so a
    reload cannot reset a budget by accident. ``today`` fixes the day compat shims' expiry is judged
    on (default: the calendar's).
    """

    def __init__(
        self,
        contract: CompiledContract,
        options: EngineOptions | None = None,
        state: CardinalityState | None = None,
        *,
        today: date | None = None,
    ) -> None:
        self._options = options if options is not None else EngineOptions()
        self._state = state if state is not None else CardinalityState()
        self._today: Callable[[], date] = (lambda: today) if today is not None else date.today
        self._stage = self._build(contract)

    @property
    def contract(self) -> CompiledContract:
        return self._stage.contract

    @property
    def label(self) -> str:
        """``name@version`` of the active contract, as responses and logs name it."""
        return self._stage.contract.id

    def swap(self, contract: CompiledContract) -> None:
        """Activate ``contract``; its shims and smoothed signals start afresh (a rate needs two samples
        of the new plan, an average its first interval)."""
        # One assignment: a request in flight keeps the stage it read, the next one gets the new stage.
        self._stage = self._build(contract)

    def process(self, signal: Signal, payload: Any, *, source: Location | None = None) -> Result:
        """The result for one request (bytes or a message, which is not modified); raises
        ``DecodeError`` for bytes that are not such a request."""
        # One request sees one contract, its shims and smoothers, even if a reload lands meanwhile.
        stage = self._stage
        outcome = process_signal(
            signal, payload, stage.contract, state=self._state, options=self._options, source=source
        )
        if signal is not Signal.METRICS or stage.reads is None:
            # The core answered with bytes: nothing here needs them parsed.
            return Result(outcome)
        # Only the metrics the derived series read are parsed (none, for most requests): the core cuts
        # them out of the bytes it answered with. The shims still see every request: one without
        # their input counts towards shim-input-absent.
        read = stage.reads.select(outcome.to_bytes())
        request = ExportMetricsServiceRequest() if read is None else ExportMetricsServiceRequest.FromString(read)
        added = stage.shims.process(request)
        averages, average_points = stage.smoothed.evaluate(request)
        return Result(outcome, added.payload + averages, added.points + average_points, added.findings)

    def _build(self, contract: CompiledContract) -> _Stage:
        shims = ShimRuntime(compile_shims(contract.contract), contract.id, today=self._today)
        smoothed = SmoothedSeries(smoothed_signals(contract.contract), contract.id)
        reads = shims.metrics | smoothed.metrics
        return _Stage(contract, shims, smoothed, MetricSelection(sorted(reads)) if reads else None)
