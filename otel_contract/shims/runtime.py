"""Compat shims over a stream of requests: the evaluator plus what needs a clock.

Past its expiry a shim keeps emitting (a dashboard must not break at 3 a.m.): every evaluation
counts an ``expired-shim`` finding in self-telemetry and a warning is logged at most once per
``warn_every`` seconds per shim. A shim whose input has not arrived for ``input_timeout`` seconds
(since it last did, or since the sidecar started) is reported as ``shim-input-absent`` on the same
rate limit: the legacy series it keeps alive has silently stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from otel_contract.findings import Finding
from otel_contract.shims.evaluator import CompiledShim, ShimEvaluator, absent_input

_log = logging.getLogger("otel_contract.shims")
# validate and normalize run the same pipeline but configure no logging: without a handler of its own,
# Python would print these sidecar warnings (which point at the sidecar's self-telemetry) on their stderr.
# The sidecar's handlers on the root logger still get them.
_log.addHandler(logging.NullHandler())

DEFAULT_WARN_EVERY = 600.0
DEFAULT_INPUT_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class ShimOutput:
    """What the shims add to one request: serialized OTLP to append, its data points, and findings
    about the shims themselves (self-telemetry only: the client is not told)."""

    payload: bytes = b""
    points: int = 0
    findings: tuple[Finding, ...] = ()


class ShimRuntime:
    def __init__(
        self,
        shims: Sequence[CompiledShim],
        contract: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = date.today,
        warn_every: float = DEFAULT_WARN_EVERY,
        input_timeout: float = DEFAULT_INPUT_TIMEOUT,
        **evaluator_options: Any,
    ) -> None:
        self._evaluator = ShimEvaluator(shims, contract=contract, **evaluator_options)
        self._clock = clock
        self._today = today
        self._warn_every = warn_every
        self._input_timeout = input_timeout
        started = clock()
        self._last_fed = {shim.record: started for shim in shims}
        self._last_warned: dict[tuple[str, str], float] = {}
        self._untracked_reported = 0
        self._lock = threading.Lock()

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics (OTLP names) the shims read."""
        return self._evaluator.metrics

    def process(self, request: Any) -> ShimOutput:
        """The shims' output for one (normalized) metrics request."""
        if not self._last_fed:
            return ShimOutput()
        today = self._today()
        result = self._evaluator.evaluate(request, today=today)
        now = self._clock()
        findings = list(result.findings)
        with self._lock:
            for record in result.fed:
                self._last_fed[record] = now
            for finding in result.findings:
                if self._due(finding, now):
                    _log.warning("%s (each evaluation counts in otel_contract_findings_total)", finding.message)
            for shim in self._evaluator.shims:
                silent = now - self._last_fed[shim.record]
                if silent < self._input_timeout:
                    continue
                finding = absent_input(shim, f"in the last {silent:.0f}s")
                if self._due(finding, now):
                    findings.append(finding)
                    _log.warning("%s", finding.message)
            untracked = self._evaluator.untracked_series
            if untracked > self._untracked_reported:
                _log.warning(
                    "compat shims: %d input sample(s) of new series not tracked, the series limit is reached",
                    untracked - self._untracked_reported,
                )
                self._untracked_reported = untracked
        return ShimOutput(result.payload, result.points, tuple(findings))

    def _due(self, finding: Finding, now: float) -> bool:
        key = (finding.rule.slug, finding.metric or "")
        last = self._last_warned.get(key)
        if last is not None and now - last < self._warn_every:
            return False
        self._last_warned[key] = now
        return True
