"""One parsed Prometheus/OpenMetrics metric family mapped to OTLP data points, as the OpenTelemetry spec says.

The rules are those of "Prometheus and OpenMetrics Compatibility", section "Prometheus Metric points
to OTLP" (https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/); each
function below names the subsection it follows. ``prometheus.py`` parses, batches and assembles
requests; this module only maps, and reads nothing.

A data point comes out as a ``MappedPoint``: the metric it belongs to (name, type, unit, help), the
target it belongs to (``job`` and ``instance`` labels, which become the resource, not attributes),
the instrumentation scope (``otel_scope_name``/``otel_scope_version``/``otel_scope_schema_url``
labels) and the OTLP point with every other label as a string attribute, in label order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    HistogramDataPoint,
    NumberDataPoint,
    SummaryDataPoint,
)
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.samples import Sample, Timestamp

from otel_contract import rules
from otel_contract.findings import Finding, Location
from otel_contract.otlp import InputError
from otel_contract.rules import Level

TargetKey: TypeAlias = tuple[str | None, str | None]
"""The ``job`` and ``instance`` labels of a series (None when absent): the target, hence the resource."""
ScopeKey: TypeAlias = tuple[str, str, str] | None
"""``otel_scope_name``, ``otel_scope_version`` and ``otel_scope_schema_url``; None: the reader's own scope."""
Attributes: TypeAlias = tuple[tuple[str, str], ...]
OtlpPoint: TypeAlias = NumberDataPoint | HistogramDataPoint | SummaryDataPoint

TARGET_LABELS = ("job", "instance")
SCOPE_NAME, SCOPE_VERSION, SCOPE_SCHEMA_URL = "otel_scope_name", "otel_scope_version", "otel_scope_schema_url"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What an OTLP metric needs besides its points. ``kind`` is the OTLP data field."""

    name: str
    kind: str  # "sum" | "gauge" | "histogram" | "summary"
    description: str
    unit: str
    prometheus_type: str
    monotonic: bool = False


@dataclass(frozen=True, slots=True)
class MappedPoint:
    metric: MetricSpec
    target: TargetKey
    scope: ScopeKey
    point: OtlpPoint


@dataclass(frozen=True, slots=True)
class FamilyContext:
    """What mapping a family needs to know about the input as a whole.

    What the mapping drops is counted per family and reason until ``settle`` turns it into findings,
    once the family is complete: a large family is mapped in parts, and reported as one.
    """

    source: str
    now: int  # time of samples without a timestamp, in Unix nanoseconds
    openmetrics: bool
    findings: list[Finding]  # what the mapping dropped, for the capture that carries the family's points
    _dropped: dict[tuple[str, str, Level | None], int] = field(default_factory=dict)

    def drop(self, family: str, count: int, reason: str, level: Level | None) -> None:
        key = (family, reason, level)
        self._dropped[key] = self._dropped.get(key, 0) + count

    def settle(self) -> None:
        """The drops counted so far, as findings: the family they were about is complete."""
        for (family, reason, level), count in self._dropped.items():
            self.findings.append(
                Finding.of(
                    rules.INVALID_DATA_POINT,
                    f"{family}: {count} series dropped: {reason}",
                    location=Location(self.source),
                    metric=family,
                    count=count,
                    level=level,
                )
            )
        self._dropped.clear()


# --- units (section "Metric Metadata") ------------------------------------------------------------
#
# The spec converts Prometheus unit words to OpenTelemetry's UCUM abbreviations, "ratio" to "1" and
# "foo_per_bar" to "foo/bar". Only the reverse table (UCUM to words) exists in a library (the SDK's
# Prometheus exporter), and it is not a bijection, so the words this reader understands are listed here.

_UNIT_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "days": "d",
        "hours": "h",
        "minutes": "min",
        "seconds": "s",
        "milliseconds": "ms",
        "microseconds": "us",
        "nanoseconds": "ns",
        "bytes": "By",
        "kibibytes": "KiBy",
        "mebibytes": "MiBy",
        "gibibytes": "GiBy",
        "tebibytes": "TiBy",
        "kilobytes": "kBy",
        "megabytes": "MBy",
        "gigabytes": "GBy",
        "terabytes": "TBy",
        "bits": "bit",
        "meters": "m",
        "metres": "m",
        "volts": "V",
        "amperes": "A",
        "joules": "J",
        "watts": "W",
        "grams": "g",
        "celsius": "Cel",
        "kelvin": "K",
        "hertz": "Hz",
        "percent": "%",
        "ratio": "1",
    }
)
_PER_WORDS: Mapping[str, str] = MappingProxyType(
    {"second": "s", "minute": "min", "hour": "h", "day": "d", "week": "wk", "month": "mo", "year": "a"}
)


def otel_unit(unit: str) -> str:
    """The OpenTelemetry spelling of an OpenMetrics ``# UNIT``; a word it does not know stays as it is."""
    if unit in _UNIT_WORDS:
        return _UNIT_WORDS[unit]
    top, per, bottom = unit.partition("_per_")
    if per and top and bottom:
        return f"{_UNIT_WORDS.get(top, top)}/{_PER_WORDS.get(bottom, _UNIT_WORDS.get(bottom, bottom))}"
    return unit


# --- labels, times, values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Series:
    target: TargetKey
    scope: ScopeKey
    attributes: Attributes


def _split(labels: Mapping[str, str], *, without: str | None = None) -> _Series:
    """A series' labels parted into target, scope and data-point attributes (section "Resource
    Attributes": job/instance identify the target; "Instrumentation Scope": otel_scope_* labels)."""
    scope: ScopeKey = None
    skip: set[str] = set(TARGET_LABELS)
    if without is not None:
        skip.add(without)
    name = labels.get(SCOPE_NAME)
    if name is not None:
        scope = (name, labels.get(SCOPE_VERSION, ""), labels.get(SCOPE_SCHEMA_URL, ""))
        skip.update((SCOPE_NAME, SCOPE_VERSION, SCOPE_SCHEMA_URL))
    attributes = tuple((key, value) for key, value in labels.items() if key not in skip)
    return _Series((labels.get("job"), labels.get("instance")), scope, attributes)


def _key(labels: Mapping[str, str], without: str | None = None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != without))


def _set_attributes(point: OtlpPoint, attributes: Attributes) -> None:
    point.attributes.extend(KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in attributes)


def _nanos(timestamp: float | Timestamp | None, context: FamilyContext) -> int:
    if timestamp is None:
        return context.now
    if isinstance(timestamp, Timestamp):
        return timestamp.sec * 1_000_000_000 + timestamp.nsec
    if context.openmetrics:
        return round(timestamp * 1e9)  # OpenMetrics timestamps are seconds
    # Text 0.0.4 timestamps are integer milliseconds, which the parser divides by 1000: undo that exactly.
    return round(timestamp * 1000) * 1_000_000


def _created_nanos(value: float) -> int:
    # A _created sample's value is the start time in seconds (section "Start Time").
    return round(value * 1e9) if math.isfinite(value) and value > 0 else 0


_HEX_ID = re.compile(r"[0-9a-fA-F]+")
_ID_LENGTHS: Mapping[str, int] = MappingProxyType({"trace_id": 32, "span_id": 16})  # hex digits


def _exemplar(exemplar: PromExemplar, context: FamilyContext) -> Exemplar:
    """Section "Exemplars": trace_id/span_id labels become the IDs, every other label an attribute."""
    out = Exemplar(as_double=float(exemplar.value))
    if exemplar.timestamp is not None:
        out.time_unix_nano = _nanos(exemplar.timestamp, context)
    for key, value in exemplar.labels.items():
        length = _ID_LENGTHS.get(key)
        if length is not None and len(value) == length and _HEX_ID.fullmatch(value):
            setattr(out, key, bytes.fromhex(value))
        else:
            out.filtered_attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return out


def _label_number(sample: Sample, label: str, source: str) -> float:
    text = sample.labels.get(label)
    try:
        if text is not None:
            return float(text)
    except ValueError:
        pass
    raise InputError(source, None, f"{sample.name}: label {label}={text!r} is not a number")


def _count(value: float, family: str, source: str) -> int:
    # OTLP counts are unsigned integers; anything else cannot be represented at all.
    if math.isfinite(value) and value >= 0 and float(value).is_integer():
        return int(value)
    raise InputError(source, None, f"{family!r}: count {value!r} is not a non-negative integer")


# --- families ---------------------------------------------------------------------------------------


def _prometheus_type(family: Family) -> str:
    return "unknown" if family.type == "untyped" else family.type


def _spec(family: Family, name: str, kind: str, *, monotonic: bool = False) -> MetricSpec:
    return MetricSpec(
        name=name,
        kind=kind,
        description=family.documentation,
        unit=otel_unit(family.unit),
        prometheus_type=_prometheus_type(family),
        monotonic=monotonic,
    )


def map_family(family: Family, context: FamilyContext, *, counter_name: str | None = None) -> Iterator[MappedPoint]:
    """The OTLP data points of one family. ``counter_name``: the name a text 0.0.4 counter was
    declared with, which its parser no longer tells (it appends ``_total`` to every counter sample)."""
    kind = family.type
    if kind == "counter":
        yield from _counter(family, context, counter_name)
    elif kind == "histogram":
        yield from _histogram(family, context)
    elif kind == "summary":
        yield from _summary(family, context)
    elif kind in ("info", "stateset"):
        yield from _numbers(family, context, "sum")
    elif kind == "gaugehistogram":
        _gauge_histogram(family, context)
    else:
        yield from _numbers(family, context, "gauge")


def _counter(family: Family, context: FamilyContext, counter_name: str | None) -> Iterator[MappedPoint]:
    """Section "Counters": a monotonic cumulative Sum, named after the counter's sample name (section
    "Metric Metadata": the name is not altered), with ``_created`` as the start time."""
    total = family.name + "_total"
    created: dict[tuple[tuple[str, str], ...], int] = {}
    values: list[Sample] = []
    for sample in family.samples:
        if sample.name == family.name + "_created":
            created[_key(sample.labels)] = _created_nanos(sample.value)
        else:
            values.append(sample)
    spec = _spec(family, counter_name or total, "sum", monotonic=True)
    for sample in values:
        series = _split(sample.labels)
        point = NumberDataPoint(
            time_unix_nano=_nanos(sample.timestamp, context),
            start_time_unix_nano=created.get(_key(sample.labels), 0),
            as_double=float(sample.value),
        )
        _set_attributes(point, series.attributes)
        if sample.exemplar is not None:
            point.exemplars.append(_exemplar(sample.exemplar, context))
        yield MappedPoint(spec, series.target, series.scope, point)


def _numbers(family: Family, context: FamilyContext, data: str) -> Iterator[MappedPoint]:
    """One number point per sample, under a metric per sample name, of OTLP type ``data``:

    * ``gauge``: sections "Gauges" and "Unknown-typed" (the Prometheus type stays in ``prometheus.type``);
    * ``sum`` (non-monotonic, cumulative): sections "Info" and "StateSet" (the target info metric never
      gets here: it is the resource); an info metric is named after its sample, ``<family>_info``.
    """
    specs: dict[str, MetricSpec] = {}
    for sample in family.samples:
        spec = specs.get(sample.name)
        if spec is None:
            spec = specs[sample.name] = _spec(family, sample.name, data)
        yield _number_point(spec, sample, context)


def _number_point(spec: MetricSpec, sample: Sample, context: FamilyContext) -> MappedPoint:
    series = _split(sample.labels)
    point = NumberDataPoint(time_unix_nano=_nanos(sample.timestamp, context), as_double=float(sample.value))
    _set_attributes(point, series.attributes)
    return MappedPoint(spec, series.target, series.scope, point)


def _gauge_histogram(family: Family, context: FamilyContext) -> None:
    """Section "Dropped Types": GaugeHistograms are dropped; the finding says so, so nothing is lost silently."""
    groups = _group(family.samples, "le")
    if groups:
        reason = "OTLP has no gauge histogram, and the OpenTelemetry Prometheus compatibility spec drops them"
        context.drop(family.name, len(groups), reason, Level.WARNING)


def _group(samples: Iterable[Sample], split_by: str) -> dict[tuple[tuple[str, str], ...], list[Sample]]:
    """The samples of a histogram or summary grouped by series: the labels other than ``split_by``."""
    series: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for sample in samples:
        series.setdefault(_key(sample.labels, split_by), []).append(sample)
    return series


def _grouped_points(
    family: Family,
    samples: Iterable[Sample],
    context: FamilyContext,
    split_by: str,
    build: Callable[[list[Sample]], OtlpPoint | None],
    kind: str,
) -> Iterator[MappedPoint]:
    """A point per series of a histogram or summary; series without ``_count`` are dropped, as the
    spec requires, and counted in one finding."""
    spec = _spec(family, family.name, kind)
    missing_count = 0
    for group in _group(samples, split_by).values():
        series = _split(group[0].labels, without=split_by)
        point = build(group)
        if point is None:
            missing_count += 1
            continue
        _set_attributes(point, series.attributes)
        yield MappedPoint(spec, series.target, series.scope, point)
    if missing_count:
        reason = (
            f"no {family.name}_count sample, and the OpenTelemetry Prometheus compatibility spec"
            f" drops a {kind} without one"
        )
        context.drop(family.name, missing_count, reason, None)


def _histogram(family: Family, context: FamilyContext) -> Iterator[MappedPoint]:
    """Section "Histograms": ``_bucket{le}`` counts become explicit bounds and per-bucket counts (the
    ``+Inf`` bound dropped), ``_count``/``_sum`` the count and sum, ``_created`` the start time;
    bucket exemplars become the point's exemplars."""
    name = family.name
    source = context.source
    native = sum(1 for sample in family.samples if sample.native_histogram is not None)
    if native:
        reason = "native histograms are not read (the spec lets a reader drop them)"
        context.drop(name, native, reason, Level.WARNING)

    def build(samples: list[Sample]) -> HistogramDataPoint | None:
        point = HistogramDataPoint()
        cumulative: list[tuple[float, float]] = []
        count: float | None = None
        timestamp: float | Timestamp | None = None
        for sample in samples:
            suffix = sample.name[len(name) :]
            if suffix == "_bucket":
                cumulative.append((_label_number(sample, "le", source), sample.value))
                if sample.exemplar is not None:
                    point.exemplars.append(_exemplar(sample.exemplar, context))
            elif suffix == "_sum":
                point.sum = float(sample.value)
            elif suffix == "_count":
                count = sample.value
            elif suffix == "_created":
                point.start_time_unix_nano = _created_nanos(sample.value)
                continue  # a _created sample's own timestamp says nothing about the point's
            if timestamp is None:
                timestamp = sample.timestamp
        point.time_unix_nano = _nanos(timestamp, context)
        cumulative.sort()
        if cumulative:
            if cumulative[-1][0] != math.inf:
                raise InputError(source, None, f'histogram {name!r} has no le="+Inf" bucket')
            previous = 0
            for bound, value in cumulative:
                running = _count(value, name, source)
                if running < previous:
                    reason = f"histogram {name!r}: cumulative bucket counts decrease at le={bound}"
                    raise InputError(source, None, reason)
                point.bucket_counts.append(running - previous)
                previous = running
            point.explicit_bounds.extend(bound for bound, _ in cumulative[:-1])
        if count is None:
            return None
        point.count = _count(count, name, source)
        return point

    classic = [sample for sample in family.samples if sample.native_histogram is None]
    yield from _grouped_points(family, classic, context, "le", build, "histogram")


def _summary(family: Family, context: FamilyContext) -> Iterator[MappedPoint]:
    """Section "Summaries": ``{quantile}`` samples become quantile values, ``_count``/``_sum`` the count
    and sum (a missing sum stays zero), ``_created`` the start time."""
    name = family.name
    source = context.source

    def build(samples: list[Sample]) -> SummaryDataPoint | None:
        point = SummaryDataPoint()
        quantiles: list[tuple[float, float]] = []
        count: float | None = None
        timestamp: float | Timestamp | None = None
        for sample in samples:
            if sample.name == name:
                quantiles.append((_label_number(sample, "quantile", source), float(sample.value)))
            elif sample.name == name + "_sum":
                point.sum = float(sample.value)
            elif sample.name == name + "_count":
                count = sample.value
            elif sample.name == name + "_created":
                point.start_time_unix_nano = _created_nanos(sample.value)
                continue
            if timestamp is None:
                timestamp = sample.timestamp
        point.time_unix_nano = _nanos(timestamp, context)
        for quantile, value in sorted(quantiles):
            point.quantile_values.add(quantile=quantile, value=value)
        if count is None:
            return None
        point.count = _count(count, name, source)
        return point

    yield from _grouped_points(family, family.samples, context, "quantile", build, "summary")
