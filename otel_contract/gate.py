"""Run the engine over captured telemetry: what ``validate`` and ``normalize`` share.

The same engine functions the sidecar calls, one capture (one export request) at a time, with one
cardinality state for the whole run; findings are merged across captures by (rule, metric,
attribute) with their counts added, so a violation is reported as the sidecar would count it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf.message import DecodeError

from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, Outcome, process_signal
from otel_contract.findings import Finding
from otel_contract.inputs.otlp import Capture, InputError
from otel_contract.reports import Report


def process_capture(
    capture: Capture, contract: CompiledContract, state: CardinalityState, options: EngineOptions
) -> Outcome[Any]:
    payload: Any = capture.raw if capture.raw is not None else capture.request
    try:
        return process_signal(capture.signal, payload, contract, state=state, options=options, source=capture.source)
    except DecodeError as error:  # the reader parsed it already; kept for raw bytes from elsewhere
        raise InputError(capture.source, None, f"not an OTLP request: {error}") from None


@dataclass
class Totals:
    """Findings and counts over a whole run."""

    items: int = 0
    dropped: int = 0
    captures: int = 0
    _findings: dict[tuple[str, str | None, str | None], Finding] = field(default_factory=dict)

    def add(self, outcome: Outcome[Any]) -> None:
        self.captures += 1
        self.items += outcome.items
        self.dropped += outcome.dropped
        for finding in outcome.findings:
            key = (finding.rule.slug, finding.metric, finding.attribute)
            known = self._findings.get(key)
            self._findings[key] = finding if known is None else replace(known, count=known.count + finding.count)

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
        )


def run(
    captures: Iterable[Capture], contract: CompiledContract, options: EngineOptions, totals: Totals
) -> Iterator[Outcome[Any]]:
    """Each capture's outcome, in order, while ``totals`` accumulates."""
    state = CardinalityState()
    for capture in captures:
        outcome = process_capture(capture, contract, state, options)
        totals.add(outcome)
        yield outcome
