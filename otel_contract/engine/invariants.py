"""Cross-metric invariants (contract ``invariants:``), evaluated over everything a run has seen.

An invariant cannot be judged on one request: ``ratio`` compares two metrics' totals over the whole
run, and ``present`` asks whether a metric appeared at all. ``InvariantTracker`` is fed every
normalized metrics request (so aliases already carry their canonical names) and reports at the end.

A term names a series of a contract metric as ``prometheus_names.contract_series`` spells it: the
metric (``http_requests``, or translated, ``http_requests_total``), or a histogram's or summary's
``_count`` / ``_sum`` (``http_server_duration_seconds_count``); a ``_bucket`` reads as the ``+Inf``
bucket, the count. Its value is the sum over its series of:

* cumulative sums, histograms and summaries, and gauges: the series' latest point (by time);
* delta sums and histograms: every point added up.

A series is its resource, scope and point attributes. The tracker keeps one number per series of
the metrics that invariants name, and nothing for any other metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from otel_contract import rules
from otel_contract.contract.compiled import CompiledContract
from otel_contract.contract.model import Invariant
from otel_contract.findings import Finding, Location
from otel_contract.prometheus_names import SeriesPart, contract_series
from otel_contract.rules import Action, Level

_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
# A series' part -> what the term reads of the points (a whole histogram or summary reads its count).
_COMPONENTS = {"count": "count", "sum": "sum", "bucket": "count"}

_SeriesKey = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Term:
    """What an invariant's metric reference reads: a metric, and its value, count or sum."""

    name: str  # as the invariant spells it
    metric: str  # the OTLP metric name to read
    component: str  # "value", "count" or "sum"


@dataclass
class _Series:
    time: int = -1
    value: float = 0.0


@dataclass
class _Totals:
    """Per series of one term: the latest point (cumulative) or the running sum (delta)."""

    series: dict[_SeriesKey, _Series] = field(default_factory=dict)

    def total(self) -> float:
        values = [entry.value for entry in self.series.values()]
        try:
            return math.fsum(values)
        except (OverflowError, ValueError):  # beyond a double, or inf - inf: the plain sum says so (inf, nan)
            return sum(values)


def _resolve(name: str, series: Mapping[str, SeriesPart]) -> _Term:
    part = series.get(name)
    if part is None:
        return _Term(name, name, "value")  # not in the contract: read it as it arrives
    return _Term(name, part.metric, _COMPONENTS.get(part.part, "value"))


def _attributes_key(attributes: Iterable[Any]) -> tuple[tuple[str, bytes], ...]:
    return tuple(sorted((kv.key, kv.value.SerializeToString()) for kv in attributes))


def _point_value(point: Any, kind: str, component: str) -> float | None:
    if kind in ("sum", "gauge"):
        if component != "value":
            return None
        return float(getattr(point, point.WhichOneof("value") or "as_double"))
    if component == "sum":
        return point.sum if kind == "summary" or point.HasField("sum") else None
    return float(point.count)  # "count", and "value" of a histogram or summary: how many observations


class InvariantTracker:
    """Feed it every normalized metrics request of a run; ``findings()`` judges the contract's invariants."""

    def __init__(self, contract: CompiledContract) -> None:
        self._contract = contract
        self._action = contract.actions[rules.INVARIANT]
        self._invariants = contract.contract.invariants if self._action is not Action.IGNORE else ()
        self._terms: dict[str, _Term] = {}
        series = contract_series(contract.contract.metrics) if self._invariants else {}
        for invariant in self._invariants:
            for name in (*(invariant.ratio or ()), *((invariant.present,) if invariant.present else ())):
                self._terms[name] = _resolve(name, series)
        self._by_metric: dict[str, list[_Term]] = {}
        for term in self._terms.values():
            self._by_metric.setdefault(term.metric, []).append(term)
        self._totals: dict[str, _Totals] = {name: _Totals() for name in self._terms}
        self._seen: set[str] = set()

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics the invariants read: only these need be observed."""
        return frozenset(self._by_metric)

    def observe(self, request: ExportMetricsServiceRequest) -> None:
        if not self._by_metric:
            return
        for resource_metrics in request.resource_metrics:
            resource_key = _attributes_key(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                scope_key = (scope_metrics.scope.name, scope_metrics.scope.version)
                for metric in scope_metrics.metrics:
                    terms = self._by_metric.get(metric.name)
                    if terms:
                        self._observe_metric(metric, (resource_key, scope_key), terms)

    def _observe_metric(self, metric: Any, owner: _SeriesKey, terms: list[_Term]) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        data = getattr(metric, kind)
        delta = getattr(data, "aggregation_temporality", None) == _DELTA
        for point in data.data_points:
            key = (*owner, _attributes_key(point.attributes))
            for term in terms:
                value = _point_value(point, kind, term.component)
                if value is None:
                    continue
                self._seen.add(term.name)
                series = self._totals[term.name].series.setdefault(key, _Series())
                if delta:
                    series.value += value
                elif point.time_unix_nano >= series.time:
                    series.time, series.value = point.time_unix_nano, value

    def findings(self) -> tuple[Finding, ...]:
        found: list[Finding] = []
        for index, invariant in enumerate(self._invariants):
            verdict = self._judge(invariant)
            if verdict is not None:
                message, level = verdict
                subject = invariant.ratio[0] if invariant.ratio else invariant.present
                found.append(
                    Finding.of(
                        rules.INVARIANT,
                        f"invariant {invariant.name}: {message}",
                        location=Location(self._contract.contract.source),
                        path=f"invariants[{index}]",
                        metric=subject,
                        level=level,
                        action=Action.FLAG,
                    )
                )
        return tuple(found)

    def _judge(self, invariant: Invariant) -> tuple[str, Level] | None:
        """None when the invariant holds, else the message and level of the finding."""
        if invariant.present is not None:
            if invariant.present in self._seen:
                return None
            return f"{invariant.present} never appeared in the telemetry", rules.INVARIANT.level
        assert invariant.ratio is not None and invariant.max_deviation is not None  # the schema's oneOf
        numerator, denominator = invariant.ratio
        missing = [name for name in (numerator, denominator) if name not in self._seen]
        if len(missing) == 2:
            return None  # neither side was captured: nothing to compare (a `present` invariant asks for them)
        if missing:
            # A capture of part of a service cannot break a ratio; `present` makes absence an error.
            other = denominator if missing[0] == numerator else numerator
            return (
                f"cannot be judged: {missing[0]} never appeared beside {other}"
                f" (a `present` invariant makes its absence an error)",
                Level.WARNING,
            )
        a, b = self._totals[numerator].total(), self._totals[denominator].total()
        deviation = abs(a - b) / b if b else (0.0 if a == 0 else math.inf)
        if deviation <= invariant.max_deviation:
            return None
        shown = "infinite" if math.isinf(deviation) else f"{deviation:.2%}"
        message = (
            f"{numerator} = {a:g}, {denominator} = {b:g}: deviation {shown} exceeds"
            f" max_deviation {invariant.max_deviation:.2%}"
        )
        return message, rules.INVARIANT.level
