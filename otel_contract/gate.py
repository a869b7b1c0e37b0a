"""Run the pipeline over captured telemetry: what ``validate`` and ``normalize`` share.

The same ``Pipeline`` the sidecar runs, one capture (one export request) at a time, with one
pipeline (cardinality state, compat shims, smoothed signals) for the whole run; findings are merged
across captures by (rule, metric, attribute) with their counts added, so a violation is reported as
the sidecar would count it, and ``normalize`` writes what the sidecar would forward.

The CLI's own steps are hooks around the pipeline, all in ``run``: before it, what the readers
noticed about the inputs (a scrape's Content-Type), optional lints of the metrics as they arrived
(Prometheus naming, ``Linter``) and the renaming of an exposition's series to contract names; after
it, the contract's invariants over all inputs together, judged when the run ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Protocol

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract._core import MetricSelection
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import EngineOptions
from otel_contract.engine.invariants import InvariantTracker
from otel_contract.findings import Finding, Location
from otel_contract.inputs.otlp import Capture
from otel_contract.otlp import InputError, Signal
from otel_contract.pipeline import Pipeline, Result
from otel_contract.prometheus_names import translated_names
from otel_contract.reports import Report


def _process(capture: Capture, pipeline: Pipeline) -> Result:
    """The pipeline's result; ``InputError`` (one line naming the capture) when it cannot give one."""
    payload: Any = capture.raw if capture.raw is not None else capture.request
    try:
        return pipeline.process(capture.signal, payload, source=capture.location)
    except DecodeError as error:  # the reader parsed it already; kept for raw bytes from elsewhere
        raise InputError(capture.source, None, f"not an OTLP request: {error}") from None
    except Exception as error:  # an engine bug (bad values are findings): one line and exit 2, not a traceback
        failure = f"{type(error).__name__}: {error}"
        raise InputError(
            capture.source, None, f"the contract engine failed on this request ({failure}); a bug"
        ) from error


@dataclass
class Totals:
    """Findings and counts over a whole run."""

    items: int = 0
    dropped: int = 0
    captures: int = 0
    appended: int = 0  # points of the compat shims' and smoothed signals' series
    _findings: dict[tuple[str, str | None, str | None], Finding] = field(default_factory=dict)

    metrics: set[str] = field(default_factory=set)  # contract metrics seen, for per-metric reports

    def add(self, result: Result) -> None:
        self.captures += 1
        self.items += result.items
        self.dropped += result.dropped
        self.appended += result.appended_items
        self.add_findings(result.findings)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            known = self._findings.get(finding.key)
            self._findings[finding.key] = (
                finding if known is None else replace(known, count=known.count + finding.count)
            )

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self._findings.values())

    def report(self, contract: CompiledContract) -> Report:
        return Report(
            source=contract.contract.source,
            contract_name=contract.contract.name,
            contract_version=contract.contract.version,
            findings=self.findings,
            data_points=self.items,
            rejected_data_points=self.dropped,
            metrics=tuple(sorted(self.metrics)),
        )


class Linter(Protocol):
    """Lints metrics as they arrive, before the contract normalizes them (e.g. Prometheus naming)."""

    def lint(self, request: ExportMetricsServiceRequest, location: Location | None) -> tuple[Finding, ...]: ...


def _contract_names(request: ExportMetricsServiceRequest, names: Mapping[str, str]) -> None:
    """Rename, in place, the metrics an exposition names as Prometheus translates contract metrics."""
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                contract_name = names.get(metric.name)
                if contract_name is not None:
                    metric.name = contract_name


def run(
    captures: Iterable[Capture],
    contract: CompiledContract,
    options: EngineOptions,
    totals: Totals,
    *,
    linter: Linter | None = None,
    lint_otlp: bool = False,
    today: date | None = None,
) -> Iterator[Result]:
    """Each capture's result, in order, while ``totals`` accumulates; invariants join it at the end.

    ``linter`` sees the metrics read from Prometheus text or OpenMetrics, and with ``lint_otlp`` the
    metrics read from OTLP captures too. ``today`` is the day compat shims' expiry is judged on.
    """
    pipeline = Pipeline(contract, options, today=today)
    invariants = InvariantTracker(contract)
    # Read off the normalized bytes by the core, so a request is not parsed in Python for them: the
    # contract metrics it has, and the few metrics the invariants read (cut out, then parsed).
    contract_metrics = MetricSelection(sorted(contract.metrics))
    invariant_metrics = MetricSelection(sorted(invariants.metrics)) if invariants.metrics else None
    # Prometheus names of contract metrics that differ from them (a counter's _total): read back to the
    # contract name when the input is a Prometheus exposition.
    prometheus_names = translated_names(contract.contract.metrics, {*contract.metrics, *contract.aliases})
    for capture in captures:
        totals.add_findings(capture.findings)
        # A binary capture's request is parsed only for a linter: the engine parses its bytes itself.
        metrics = capture.signal is Signal.METRICS
        if metrics and linter and (capture.exposition or lint_otlp):
            request = capture.request
            assert isinstance(request, ExportMetricsServiceRequest)
            totals.add_findings(linter.lint(request, capture.location))
        if capture.exposition and prometheus_names and isinstance(capture.parsed, ExportMetricsServiceRequest):
            _contract_names(capture.parsed, prometheus_names)
        result = _process(capture, pipeline)
        totals.add(result)
        if metrics:
            normalized = result.outcome.to_bytes()
            totals.metrics.update(contract_metrics.present(normalized))
            read = invariant_metrics.select(normalized) if invariant_metrics else None
            if read is not None:
                invariants.observe(ExportMetricsServiceRequest.FromString(read))
        yield result
    totals.add_findings(invariants.findings())
