"""Prometheus text exposition (format 0.0.4) read into an OTLP metrics export request.

Parsing is ``prometheus_client``'s; the mapping follows the OpenTelemetry Prometheus compatibility
spec (https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/):

* counter: monotonic cumulative Sum, named as on the wire (``<family>_total``, which is how contracts
  name Prometheus counters);
* gauge, untyped and any other type: Gauge;
* histogram (``_bucket{le}``, ``_sum``, ``_count``): cumulative Histogram with explicit bounds, the
  ``+Inf`` bucket's bound dropped;
* summary (``{quantile}``, ``_sum``, ``_count``): Summary.

Labels become data-point attributes, all strings; ``job`` and ``instance`` are not special here.
Units are left empty: format 0.0.4 carries none, and the engine then takes the contract's.

Minimal for now: no OpenMetrics, no exemplars, no start times.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import otel_contract
from otel_contract.inputs.otlp import InputError

_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_SCOPE = "otel_contract.inputs.prometheus"

_Labels = tuple[tuple[str, str], ...]


def parse_exposition(
    text: str, source: str, *, service_name: str | None = None, time_unix_nano: int | None = None
) -> ExportMetricsServiceRequest:
    """One export request holding every metric of ``text``, under one resource.

    ``service_name`` becomes the resource's ``service.name``; ``time_unix_nano`` stamps samples that
    carry no timestamp (default: now). Raises ``InputError`` when ``text`` is not exposition format.
    """
    now = time.time_ns() if time_unix_nano is None else time_unix_nano
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    if service_name is not None:
        attribute = resource_metrics.resource.attributes.add()
        attribute.key = "service.name"
        attribute.value.string_value = service_name
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = _SCOPE
    scope_metrics.scope.version = otel_contract.__version__
    # A family can come in several pieces (untyped samples, a name repeated further down); the
    # pieces join into one metric so that the engine sees each name once.
    metrics: dict[tuple[str, str], Metric] = {}
    try:
        for family in text_string_to_metric_families(text):
            _add_family(family, metrics, scope_metrics.metrics, source, now)
    except ValueError as error:  # the parser's only complaint about bad text
        detail = str(error).strip()
        reason = "not Prometheus text exposition format" + (f": {detail}" if detail else "")
        raise InputError(source, None, reason) from None
    return request


def _add_family(family: Family, metrics: dict[tuple[str, str], Metric], out: Any, source: str, now: int) -> None:
    if family.type == "counter":
        name, kind = family.name + "_total", "sum"
    elif family.type in ("histogram", "summary"):
        name, kind = family.name, family.type
    else:
        name, kind = family.name, "gauge"
    metric = metrics.get((name, kind))
    if metric is None:
        metric = metrics[(name, kind)] = out.add()
        metric.name = name
        metric.description = family.documentation
        if kind == "sum":
            metric.sum.aggregation_temporality = _CUMULATIVE
            metric.sum.is_monotonic = True
        elif kind == "histogram":
            metric.histogram.aggregation_temporality = _CUMULATIVE
    if kind in ("sum", "gauge"):
        points = metric.sum.data_points if kind == "sum" else metric.gauge.data_points
        for sample in family.samples:
            if kind == "sum" and sample.name != name:
                continue  # a counter's _created sample is not a value
            point: NumberDataPoint = points.add()
            _set_attributes(point, sample.labels)
            point.time_unix_nano = _time(sample, now)
            point.as_double = float(sample.value)
    elif kind == "histogram":
        for labels, group in _series(family.samples, "le").items():
            _histogram_point(metric.histogram.data_points.add(), family.name, labels, group, source, now)
    else:
        for labels, group in _series(family.samples, "quantile").items():
            _summary_point(metric.summary.data_points.add(), family.name, labels, group, source, now)


def _series(samples: Iterable[Sample], split_by: str) -> dict[_Labels, list[Sample]]:
    """The samples of a histogram or summary grouped by series: the labels other than ``split_by``."""
    series: dict[_Labels, list[Sample]] = {}
    for sample in samples:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != split_by))
        series.setdefault(key, []).append(sample)
    return series


def _histogram_point(
    point: HistogramDataPoint, family: str, labels: _Labels, samples: list[Sample], source: str, now: int
) -> None:
    _set_attributes(point, dict(labels))
    cumulative: list[tuple[float, float]] = []
    count: float | None = None
    for sample in samples:
        if sample.name == family + "_bucket":
            cumulative.append((_label_number(sample, "le", source), sample.value))
        elif sample.name == family + "_sum":
            point.sum = float(sample.value)
        elif sample.name == family + "_count":
            count = sample.value
        point.time_unix_nano = _time(sample, now)
    cumulative.sort()
    if cumulative:
        if cumulative[-1][0] != math.inf:
            raise InputError(source, None, f'histogram {family!r} has no le="+Inf" bucket')
        previous = 0
        for bound, value in cumulative:
            running = _count(value, family, source)
            if running < previous:
                raise InputError(source, None, f"histogram {family!r}: cumulative bucket counts decrease at le={bound}")
            point.bucket_counts.append(running - previous)
            previous = running
        point.explicit_bounds.extend(bound for bound, _ in cumulative[:-1])
    # Without _count, the +Inf bucket is the count; a _count that disagrees is left for the engine to report.
    point.count = _count(count, family, source) if count is not None else sum(point.bucket_counts)


def _summary_point(
    point: SummaryDataPoint, family: str, labels: _Labels, samples: list[Sample], source: str, now: int
) -> None:
    _set_attributes(point, dict(labels))
    quantiles: list[tuple[float, float]] = []
    for sample in samples:
        if sample.name == family:
            quantiles.append((_label_number(sample, "quantile", source), float(sample.value)))
        elif sample.name == family + "_sum":
            point.sum = float(sample.value)
        elif sample.name == family + "_count":
            point.count = _count(sample.value, family, source)
        point.time_unix_nano = _time(sample, now)
    for quantile, value in sorted(quantiles):
        entry = point.quantile_values.add()
        entry.quantile = quantile
        entry.value = value


def _set_attributes(point: Any, labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        attribute = point.attributes.add()
        attribute.key = key
        attribute.value.string_value = value


def _time(sample: Sample, now: int) -> int:
    # The text parser gives timestamps in seconds (it divides the wire's milliseconds by 1000).
    return now if sample.timestamp is None else round(float(sample.timestamp) * 1e9)


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
