"""Prometheus naming lints on OTLP metrics: what ``promtool check metrics`` reports, and a little more.

``otel-contract validate`` replaces ``promtool check metrics`` in CI, so every problem promtool
reports has a rule here, with the same conditions as the promlint that Prometheus 2.42 vendors
(client_golang v1.14, ``prometheus/testutil/promlint``): the same units, prefixes and
abbreviations, the same camelCase pattern, the same exemptions for untyped metrics.

Each OTLP metric is linted as Prometheus would see it:

* type: a monotonic Sum is a counter, a non-monotonic Sum a gauge, a Gauge a gauge (untyped when its
  ``metadata`` says ``prometheus.type: unknown``, as the Collector's Prometheus receiver and our
  exposition reader record it), Histogram and ExponentialHistogram a histogram, Summary a summary;
* name: the OTLP name as it arrives, before any contract normalization;
* help: the description; label names: the data points' attribute keys.

A metric without data points is skipped, as promtool's parser drops families without samples.

Beyond promtool, ``prom-duplicate`` reports two data points of one metric with the same attributes
under the same resource of one request (newer promlint says "metric not unique"); an OTLP point
attribute named ``le`` or ``quantile`` is reported on histograms and summaries too, where the
Prometheus exporter adds those labels itself; and a label starting with ``__`` is reported as reserved.

A run lints many requests and reports each (rule, metric, label) once, like promtool prints one line
per family and problem, so a capture split into ten requests gives the findings of one.

It runs on every request ``validate`` reads, so it is cheap: name lints run once per (name, type, has
help); label lints once per key signature of a metric (the attribute keys of a point, in order, read
as bytes from a shadow parse of the request, see ``otel_contract._wire``), and when every point of a metric has
the same keys, which one comparison of bytes tells, the metric costs a few dict lookups whatever its
size. Duplicates need one identity per point, taken from a second shadow parse, and stop costing once
a metric's duplicate is reported. This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from otel_contract import rules
from otel_contract._wire import ShadowView, frame, shadow_request
from otel_contract.contract.model import MetricType
from otel_contract.findings import Finding, Location
from otel_contract.prometheus_names import part_suffixes
from otel_contract.rules import Action, Rule

PROMETHEUS_RULES: tuple[Rule, ...] = (
    rules.PROM_HELP,
    rules.PROM_COUNTER_SUFFIX,
    rules.PROM_TOTAL_SUFFIX,
    rules.PROM_BASE_UNIT,
    rules.PROM_UNIT_ABBREVIATION,
    rules.PROM_CAMEL_CASE,
    rules.PROM_RESERVED_SUFFIX,
    rules.PROM_RESERVED_LABEL,
    rules.PROM_RESERVED_CHARS,
    rules.PROM_TYPE_IN_NAME,
    rules.PROM_DUPLICATE,
)
"""Every rule ``PrometheusLinter`` can report."""


class PromType(enum.StrEnum):
    """The Prometheus metric type an OTLP metric is exposed as."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    UNTYPED = "untyped"


# --- promlint's tables (client_golang v1.14, prometheus/testutil/promlint/promlint.go) -------------

# A name part is a unit when it is one of these, bare or behind one of the prefixes below; it is a
# base unit only when bare and mapped to itself ("milliseconds" is seconds with a prefix).
_UNITS: Mapping[str, str] = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "bits": "bytes",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
_UNIT_PREFIXES = (
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
)
# Every spelling of a unit, prefixed or not, with its base unit.
_UNIT_WORDS: Mapping[str, str] = {
    prefix + unit: base for unit, base in _UNITS.items() for prefix in ("", *_UNIT_PREFIXES)
}

# promlint's abbreviations, matched as a whole name part of the lower-cased name; the value is
# what to write instead, for the message.
_ABBREVIATIONS: Mapping[str, str] = {
    "s": '"seconds"',
    "ms": '"seconds" (values scaled from milliseconds)',
    "us": '"seconds" (values scaled from microseconds)',
    "ns": '"seconds" (values scaled from nanoseconds)',
    "sec": '"seconds"',
    "b": '"bytes"',
    "kb": '"bytes" (values scaled from kilobytes)',
    "mb": '"bytes" (values scaled from megabytes)',
    "gb": '"bytes" (values scaled from gigabytes)',
    "tb": '"bytes" (values scaled from terabytes)',
    "pb": '"bytes" (values scaled from petabytes)',
    "m": '"meters", or "seconds" for minutes',
    "h": '"seconds" (values scaled from hours)',
    "d": '"seconds" (values scaled from days)',
}

# promlint loops over client_model's MetricType names except UNTYPED, whatever the metric's own type.
_TYPE_NAMES = ("counter", "gauge", "summary", "histogram", "gauge_histogram")

_CAMEL_CASE = re.compile(r"[a-z][A-Z]")

# suffix: the types that may end in it, because they expose <name>_bucket, _count and _sum series
_SERIES_OF = {
    PromType.HISTOGRAM: part_suffixes(MetricType.HISTOGRAM),
    PromType.SUMMARY: part_suffixes(MetricType.SUMMARY),
}
_RESERVED_SUFFIXES: Mapping[str, tuple[PromType, ...]] = {
    suffix: tuple(kind for kind, series in _SERIES_OF.items() if suffix in series)
    for suffix in dict.fromkeys(suffix for series in _SERIES_OF.values() for suffix in series if suffix)
}

_PLURAL = {PromType.HISTOGRAM: "histograms", PromType.SUMMARY: "summaries"}

_PROMETHEUS_TYPE_KEY = "prometheus.type"
_UNKNOWN = "unknown"


def prometheus_type(metric: Metric) -> PromType | None:
    """The Prometheus type ``metric`` is exposed as; None when it carries no data at all."""
    kind = metric.WhichOneof("data")
    if kind == "sum":
        return PromType.COUNTER if metric.sum.is_monotonic else PromType.GAUGE
    if kind == "gauge":
        for entry in metric.metadata:
            if entry.key == _PROMETHEUS_TYPE_KEY and entry.value.string_value == _UNKNOWN:
                return PromType.UNTYPED
        return PromType.GAUGE
    if kind in ("histogram", "exponential_histogram"):
        return PromType.HISTOGRAM
    if kind == "summary":
        return PromType.SUMMARY
    return None


@dataclass(frozen=True, slots=True)
class _Problem:
    rule: Rule
    metric: str
    attribute: str | None
    message: str


@dataclass(slots=True)
class _Family:
    """What the linter knows about one (name, type, has help): its name problems, the key signatures
    (see ``otel_contract._wire``) and labels already linted, and per signature whether its keys are in order."""

    problems: tuple[_Problem, ...]
    signatures: dict[bytes, bool] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)


_FamilyKey = tuple[str, PromType, bool]


class _Views:
    """The request's shadow readings (``otel_contract._wire``), each parsed on first use, at most once per request."""

    def __init__(self, request: ExportMetricsServiceRequest) -> None:
        self._request = request
        self._payload: bytes | None = None
        self._views: dict[bool, Any] = {}

    def data(self, with_values: bool, where: tuple[int, int, int], member: str) -> Any:
        """The shadow of one metric's data (its ``gauge``, ``sum``, ...): ``.data_points[i].attributes``."""
        view = self._views.get(with_values)
        if view is None:
            if self._payload is None:
                self._payload = self._request.SerializeToString()
            shown = ShadowView.ATTRIBUTES if with_values else ShadowView.KEYS
            view = self._views[with_values] = shadow_request(self._payload, shown, discard_unknown=True)
        r, s, m = where
        return getattr(view.resource_metrics[r].scope_metrics[s].metrics[m], member)


class PrometheusLinter:
    """Lints the metrics of every request of one run; reports each problem once per run.

    ``actions`` is the compiled contract's ``actions``: a rule whose action is ``Action.IGNORE`` is
    not reported (``policy: {prom-help: ignore}``). A rule missing from it keeps its default action.
    Findings always carry ``Action.FLAG``: a lint never changes or drops data. One linter serves one
    run, from one thread.
    """

    def __init__(self, actions: Mapping[Rule, Action]) -> None:
        self._enabled = frozenset(rule for rule in PROMETHEUS_RULES if actions.get(rule, rule.action) != Action.IGNORE)
        self._check_duplicates = rules.PROM_DUPLICATE in self._enabled
        self._families: dict[_FamilyKey, _Family] = {}
        self._reported: set[tuple[Rule, str, str | None]] = set()

    def lint(self, request: ExportMetricsServiceRequest, location: Location | None) -> tuple[Finding, ...]:
        """The problems in ``request`` that this run has not reported yet, located at ``location``."""
        found: list[_Problem] = []
        views = _Views(request)
        for r, resource_metrics in enumerate(request.resource_metrics):
            # Duplicates are series of one resource; scopes do not tell series apart in Prometheus.
            series: dict[str, set[bytes]] = {}
            for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
                for m, metric in enumerate(scope_metrics.metrics):
                    self._lint_metric(metric, (r, s, m), views, series, found)
        if not found:
            return ()
        return tuple(
            Finding.of(
                problem.rule,
                problem.message,
                location=location,
                metric=problem.metric,
                attribute=problem.attribute,
                action=Action.FLAG,
            )
            for problem in found
        )

    def _lint_metric(
        self,
        metric: Metric,
        where: tuple[int, int, int],
        views: _Views,
        series: dict[str, set[bytes]],
        found: list[_Problem],
    ) -> None:
        kind = prometheus_type(metric)
        member = metric.WhichOneof("data")
        if kind is None or member is None or not len(getattr(metric, member).data_points):
            return  # promtool's parser drops families without samples; Prometheus exposes nothing
        name = metric.name
        key = (name, kind, bool(metric.description.strip()))
        family = self._families.get(key)
        if family is None:
            family = self._families[key] = _Family(tuple(_name_problems(name, kind, key[2])))
            self._report(family.problems, found)
        in_order = self._lint_labels(family, name, kind, views.data(False, where, member), found)
        if self._check_duplicates and (rules.PROM_DUPLICATE, name, None) not in self._reported:
            points = views.data(True, where, member).data_points
            # Series identities: a point's attributes as they are when its keys are in order, else sorted.
            if in_order is True:
                identities = [point.SerializeToString() for point in points]
            elif in_order is False:
                identities = [_sorted_attributes(point) for point in points]
            else:
                identities = [
                    point.SerializeToString() if ordered else _sorted_attributes(point)
                    for point, ordered in zip(points, in_order, strict=True)
                ]
            seen = series.setdefault(name, set())
            distinct = set(identities)
            if len(distinct) < len(identities) or not seen.isdisjoint(distinct):
                repeat = views.data(False, where, member).data_points[_first_repeat(identities, seen)]
                self._report((_duplicate(name, kind, repeat),), found)
            seen |= distinct

    def _lint_labels(
        self, family: _Family, name: str, kind: PromType, data: Any, found: list[_Problem]
    ) -> bool | list[bool]:
        """Lints each key signature of ``data``'s points not seen before; whether the keys are in order,
        for all points when they share one signature, else per point."""
        points = data.data_points
        signatures = family.signatures
        first = points[0].SerializeToString()
        # The usual case, every point with the same keys, is told by one comparison of bytes.
        if data.SerializeToString() == frame(first) * len(points):
            in_order = signatures.get(first)
            if in_order is None:
                in_order = signatures[first] = self._new_signature(family, name, kind, points[0], found)
            return in_order
        orders = []
        for point in points:
            signature = point.SerializeToString()
            ordered = signatures.get(signature)
            if ordered is None:
                ordered = signatures[signature] = self._new_signature(family, name, kind, point, found)
            orders.append(ordered)
        return orders

    def _new_signature(self, family: _Family, name: str, kind: PromType, point: Any, found: list[_Problem]) -> bool:
        """Lints the labels of a key signature not seen before; True when its keys are in sorted order."""
        keys = [attribute.key for attribute in point.attributes]
        labels = [key.decode("utf-8", "replace") for key in keys]
        fresh = [label for label in dict.fromkeys(labels) if label not in family.labels]
        if fresh:
            family.labels.update(fresh)
            self._report(_label_problems(name, kind, fresh), found)
        # The values view's attributes are whole KeyValues as sent, which begin with their key's tag,
        # length and bytes: sorted as bytes, they are sorted by these prefixes.
        prefixes = [frame(key) for key in keys]
        return prefixes == sorted(prefixes)

    def _report(self, problems: Iterable[_Problem], found: list[_Problem]) -> None:
        for problem in problems:
            if problem.rule not in self._enabled:
                continue
            key = (problem.rule, problem.metric, problem.attribute)
            if key not in self._reported:
                self._reported.add(key)
                found.append(problem)


def _sorted_attributes(point: Any) -> bytes:
    """A point's attributes serialized in sorted order: the same bytes as a point with the same
    attributes whose keys arrived in order."""
    ordered = type(point)()
    ordered.attributes.extend(sorted(point.attributes))
    return bytes(ordered.SerializeToString())


def _first_repeat(identities: list[bytes], seen: set[bytes]) -> int:
    """The index of the first identity that repeats one seen before it, in this metric or an earlier one."""
    earlier = set(seen)
    for index, identity in enumerate(identities):
        if identity in earlier:
            return index
        earlier.add(identity)
    raise AssertionError("no repeated identity")  # the caller found one


# --- the checks, in promlint's order ---------------------------------------------------------------


def _name_problems(name: str, kind: PromType, has_help: bool) -> Iterable[_Problem]:
    if not has_help:
        yield _Problem(
            rules.PROM_HELP,
            name,
            None,
            f"{kind} {name} has no help text; give it a HELP line (an OTLP description) that says what it measures",
        )
    yield from _unit_problems(name, kind)
    yield from _suffix_problems(name, kind)
    yield from _type_in_name_problems(name, kind)
    if ":" in name:
        yield _Problem(
            rules.PROM_RESERVED_CHARS,
            name,
            None,
            f"metric name {name} contains ':', which Prometheus reserves for recording rules"
            f" (level:metric:operations); use '_' ({name.replace(':', '_')})",
        )
    if _CAMEL_CASE.search(name):
        yield _Problem(
            rules.PROM_CAMEL_CASE,
            name,
            None,
            f"metric name {name} is camelCase; Prometheus names are snake_case ({_snake_case(name)})",
        )
    yield from _abbreviation_problems(name, kind)


def _unit_problems(name: str, kind: PromType) -> Iterable[_Problem]:
    parts = name.split("_")
    for index, part in enumerate(parts):
        base = _UNIT_WORDS.get(part)
        if base is not None and base != part:
            better = "_".join([*parts[:index], base, *parts[index + 1 :]])
            yield _Problem(
                rules.PROM_BASE_UNIT,
                name,
                None,
                f'{kind} {name} names the unit "{part}"; Prometheus names use base units: {better},'
                f" with the values converted to {base}",
            )
            return  # promlint reports one unit per name


def _suffix_problems(name: str, kind: PromType) -> Iterable[_Problem]:
    has_total = name.endswith("_total")
    if kind is PromType.COUNTER and not has_total:
        yield _Problem(
            rules.PROM_COUNTER_SUFFIX,
            name,
            None,
            f'counter {name} has no "_total" suffix; Prometheus and OpenMetrics name counters {name}_total',
        )
    elif kind is not PromType.UNTYPED and kind is not PromType.COUNTER and has_total:
        yield _Problem(
            rules.PROM_TOTAL_SUFFIX,
            name,
            None,
            f'{kind} {name} ends in "_total", which is reserved for counters; rename it'
            f" ({name.removesuffix('_total')}) or, if it only goes up, make it a monotonic sum",
        )
    if kind is PromType.UNTYPED:
        return  # promlint exempts untyped metrics from the histogram and summary reservations
    for suffix, owners in _RESERVED_SUFFIXES.items():
        if name.endswith(suffix) and kind not in owners:
            owned_by = " and ".join(_PLURAL[owner] for owner in owners)
            yield _Problem(
                rules.PROM_RESERVED_SUFFIX,
                name,
                None,
                f'{kind} {name} ends in "{suffix}", which is reserved for {owned_by}'
                f" (they expose <name>{suffix} series); rename it",
            )


def _words_in_name(name: str, words: Iterable[str]) -> list[str]:
    """The ``words`` that appear in ``name`` as a whole ``_``-separated part after the first."""
    lowered = name.lower()
    return [word for word in words if f"_{word}_" in lowered or lowered.endswith(f"_{word}")]


def _type_in_name_problems(name: str, kind: PromType) -> Iterable[_Problem]:
    found = _words_in_name(name, _TYPE_NAMES)
    if found:
        listed = ", ".join(f'"{t}"' for t in found)
        yield _Problem(
            rules.PROM_TYPE_IN_NAME,
            name,
            None,
            f"{kind} {name} has a metric type in its name ({listed}); the type is already in the TYPE line"
            " (the OTLP data type), leave it out of the name",
        )


def _abbreviation_problems(name: str, kind: PromType) -> Iterable[_Problem]:
    found = _words_in_name(name, _ABBREVIATIONS)
    if found:
        instead = "; ".join(f'"{a}" -> {_ABBREVIATIONS[a]}' for a in found)
        yield _Problem(
            rules.PROM_UNIT_ABBREVIATION,
            name,
            None,
            f"{kind} {name} abbreviates its unit; Prometheus names spell out base units: {instead}",
        )


def _label_problems(name: str, kind: PromType, labels: Iterable[str]) -> Iterable[_Problem]:
    for label in labels:
        if _CAMEL_CASE.search(label):
            yield _Problem(
                rules.PROM_CAMEL_CASE,
                name,
                label,
                f"label {label} of {name} is camelCase; Prometheus label names are snake_case ({_snake_case(label)})",
            )
        reserved = _reserved_label(label, kind)
        if reserved:
            yield _Problem(rules.PROM_RESERVED_LABEL, name, label, f"{kind} {name} has a label {label}: {reserved}")


def _reserved_label(label: str, kind: PromType) -> str | None:
    if label.startswith("__"):
        return 'names starting with "__" are reserved for Prometheus\' internal use'
    if kind is PromType.UNTYPED:
        return None  # promlint exempts untyped metrics (their le/quantile can be a histogram's pieces)
    # OTLP histograms and summaries carry their bounds and quantiles as fields; the exporter turns
    # them into le and quantile labels, which a data-point attribute of the same name would collide with.
    if label == "le":
        if kind is PromType.HISTOGRAM:
            return "it collides with the le label Prometheus gives histogram buckets"
        return "le is reserved for the bucket bounds of histograms"
    if label == "quantile":
        if kind is PromType.SUMMARY:
            return "it collides with the quantile label Prometheus gives summary quantiles"
        return "quantile is reserved for the quantiles of summaries"
    return None


def _duplicate(name: str, kind: PromType, point: Any) -> _Problem:
    labels = ", ".join(sorted(attribute.key.decode("utf-8", "replace") for attribute in point.attributes))
    return _Problem(
        rules.PROM_DUPLICATE,
        name,
        None,
        f"{kind} {name} has two data points for the same series ({labels or 'no labels'}) under one resource;"
        " Prometheus keeps one of the samples and drops the others as duplicates",
    )


def _snake_case(name: str) -> str:
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
