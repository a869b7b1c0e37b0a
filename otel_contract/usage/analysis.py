"""Per contract metric: which queries use it, and whether it is an archive candidate. Pure: no I/O.

A query uses a metric when one of its selectors matches one of the metric's series names, or a series
derived from them by a recording rule or a compat shim, transitively ("through" that rule). The names
are ``prometheus_names.metric_series`` of the metric and its aliases: every translation strategy's,
so both the classic ``hpa_app_consume_count`` and the default ``hpa_app_consume_count_total`` (unit
words, ``_total``, escaping), each with ``_bucket``/``_count``/``_sum`` for histograms (the bare
name being the native histogram) and ``_count``/``_sum`` for summaries.

An archive candidate is a metric that nothing uses, is not archived already, and was introduced
(the date its ``since`` version was reached, found by the caller) at least the archive window
before ``today``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from otel_contract.contract.model import Contract, Metric, MetricType, Stability
from otel_contract.prometheus_names import metric_series
from otel_contract.usage.model import Derivation, MatchOp, NameMatcher, Query, Scan, Source
from otel_contract.usage.promql import PromqlError, read_selectors

_WINDOW = re.compile(r"(?P<amount>[1-9][0-9]*)(?P<unit>d|mo)")


@dataclass(frozen=True, slots=True)
class ArchiveWindow:
    """How long a metric must have existed before it may be archived: days or calendar months."""

    amount: int
    unit: str  # "d" | "mo"

    @classmethod
    def parse(cls, text: str) -> ArchiveWindow:
        match = _WINDOW.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"expected a window like 180d (days) or 6mo (calendar months), got {text!r}")
        return cls(int(match.group("amount")), match.group("unit"))

    def after(self, start: date) -> date:
        """The first day on which something that started on ``start`` is older than the window."""
        if self.unit == "d":
            return date.fromordinal(start.toordinal() + self.amount)
        months = start.year * 12 + start.month - 1 + self.amount
        year, month = divmod(months, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, min(start.day, last))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


DEFAULT_WINDOW = ArchiveWindow(6, "mo")


@dataclass(frozen=True, slots=True)
class Introduced:
    """When a metric's ``since`` version was reached, or why that is not known."""

    on: date | None
    note: str  # where the date comes from, or why there is none


@dataclass(frozen=True, slots=True)
class Use:
    source: Source
    series: str  # the series name the query reads
    via: tuple[str, ...] = ()  # recording rules / compat shims in between, nearest the metric first


@dataclass(frozen=True, slots=True)
class MetricUsage:
    name: str
    type: MetricType
    stability: Stability
    since: str | None
    introduced: Introduced
    uses: tuple[Use, ...]
    candidate: bool
    reason: str

    @property
    def dashboards(self) -> tuple[str, ...]:
        """Titles of the dashboards that use the metric, in first-use order."""
        return tuple(dict.fromkeys(u.source.dashboard for u in self.uses if u.source.dashboard is not None))

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f"{u.source.rule_type} {u.source.rule}" for u in self.uses if u.source.rule))


@dataclass(frozen=True, slots=True)
class UsageReport:
    contract: str
    version: str
    source: str
    today: date
    window: ArchiveWindow
    metrics: tuple[MetricUsage, ...]
    scan: Scan

    @property
    def candidates(self) -> tuple[MetricUsage, ...]:
        return tuple(m for m in self.metrics if m.candidate)


def series_names(metric: Metric) -> tuple[str, ...]:
    """The Prometheus series names under which queries read ``metric`` (or one of its aliases)."""
    return tuple(metric_series(metric, aliases=True))


def shim_derivations(contract: Contract) -> tuple[Derivation, ...]:
    """The contract's compat shims as derived series (a shim ``check`` rejects is left out)."""
    derived = []
    for shim in contract.compat:
        try:
            derived.append(Derivation(shim.record, read_selectors(shim.expr), f"compat shim {shim.record}"))
        except PromqlError:
            continue
    return tuple(derived)


def analyse(
    contract: Contract,
    scan: Scan,
    introduced: Mapping[str, Introduced],
    *,
    today: date,
    window: ArchiveWindow = DEFAULT_WINDOW,
) -> UsageReport:
    index = _Index(scan.queries)
    derivations = scan.derivations + shim_derivations(contract)
    metrics = []
    for metric in contract.metrics:
        series = series_names(metric)
        uses = index.uses(series, _derived(series, derivations))
        when = introduced.get(metric.name, Introduced(None, "no introduction date was looked up"))
        candidate, reason = _verdict(metric, uses, when, today, window)
        metrics.append(
            MetricUsage(metric.name, metric.type, metric.stability, metric.since, when, uses, candidate, reason)
        )
    return UsageReport(contract.name, contract.version, contract.source, today, window, tuple(metrics), scan)


def _derived(series: Sequence[str], derivations: Sequence[Derivation]) -> dict[str, tuple[str, ...]]:
    """Records made (transitively) from ``series``: record -> the derivations in between."""
    chains: dict[str, tuple[str, ...]] = {name: () for name in series}
    grown = True
    while grown:
        grown = False
        for derivation in derivations:
            if derivation.record in chains:
                continue
            for name, chain in list(chains.items()):
                if any(selector.matches(name) for selector in derivation.selectors):
                    chains[derivation.record] = (*chain, derivation.label)
                    grown = True
                    break
    return {record: chain for record, chain in chains.items() if chain}


class _Index:
    """Queries by the exact names they read, and the few whose selectors need a regex to match."""

    def __init__(self, queries: Sequence[Query]) -> None:
        self._order = {id(query): position for position, query in enumerate(queries)}
        self._exact: dict[str, list[Query]] = {}
        self._other: list[Query] = []
        for query in queries:
            exact = [_exact_name(selector.alternatives) for selector in query.selectors]
            if all(name is not None for name in exact):
                for name in dict.fromkeys(exact):
                    self._exact.setdefault(str(name), []).append(query)
            else:
                self._other.append(query)

    def uses(self, series: Sequence[str], derived: Mapping[str, tuple[str, ...]]) -> tuple[Use, ...]:
        found: dict[int, Use] = {}
        for name, via in [*((name, ()) for name in series), *derived.items()]:
            for query in self._exact.get(name, ()):
                found.setdefault(id(query), Use(query.source, name, via))
            for query in self._other:
                if id(query) not in found and any(s.matches(name) for s in query.selectors):
                    found[id(query)] = Use(query.source, name, via)
        return tuple(found[key] for key in sorted(found, key=self._order.__getitem__))


def _exact_name(alternatives: tuple[tuple[NameMatcher, ...], ...]) -> str | None:
    if len(alternatives) == 1 and len(alternatives[0]) == 1 and alternatives[0][0].op is MatchOp.EQUAL:
        return alternatives[0][0].value
    return None


def _verdict(
    metric: Metric, uses: Sequence[Use], when: Introduced, today: date, window: ArchiveWindow
) -> tuple[bool, str]:
    if metric.stability is Stability.ARCHIVED:
        return False, "already archived"
    if uses:
        return False, f"used by {len(uses)} {'query' if len(uses) == 1 else 'queries'}"
    if when.on is None:
        return False, f"unused, but not a candidate: {when.note}"
    due = window.after(when.on)
    if today < due:
        return False, f"unused, introduced {when.on.isoformat()}: younger than {window} until {due.isoformat()}"
    return True, f"unused, introduced {when.on.isoformat()} ({when.note}): older than {window}"
