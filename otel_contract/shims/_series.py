"""The shims' view of OTLP: Prometheus series with a bounded window of samples each.

An OTLP metric becomes the series the OpenTelemetry Collector's Prometheus exporters would write
(OpenTelemetry spec, "Prometheus and OpenMetrics Compatibility", "OTLP Metric points to
Prometheus"): the series names ``prometheus_names.contract_series`` gives (the contract name, or its
translation with unit word and ``_total``), ``_bucket{le}``, ``_count`` and ``_sum`` for
histograms, ``{quantile}``, ``_count`` and ``_sum`` for summaries, attribute keys sanitized to label
names by ``prometheus_names.label_name``, and ``job``/``instance`` from
``service.namespace``/``service.name`` and ``service.instance.id``. Delta points are accumulated
into the cumulative value Prometheus would see. A point flagged "no recorded value" is a staleness
marker, as the Collector's Prometheus exporters write it: instant selectors see nothing from it on,
range selectors skip it.
"""

from __future__ import annotations

import bisect
import heapq
import math
import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypeAlias, TypeVar

from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from otel_contract.prometheus_names import SeriesPart, label_name

Labels: TypeAlias = tuple[tuple[str, str], ...]
"""Sorted (name, value) pairs, without ``__name__``."""
T = TypeVar("T")

_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE: a staleness marker, not a sample


class Sample(NamedTuple):
    time: int  # milliseconds since the epoch, Prometheus' resolution
    value: float
    reset: bool = False  # the OTLP start time moved: the counter restarted before this sample
    stale: bool = False  # a staleness marker (value NaN): the series ended here


SeriesKind = SeriesPart
"""Where a Prometheus series comes from in an OTLP metric: its name and part (``"value"``, ``"bucket"``, ...)."""


def format_bound(bound: float) -> str:
    """An ``le``/``quantile`` value as Prometheus writes it (Go's ``FormatFloat(f, 'f', -1, 64)``)."""
    if bound == float("inf"):
        return "+Inf"
    if bound == float("-inf"):
        return "-Inf"
    text = format(Decimal(repr(bound)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _string_value(value: Any) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    return str(getattr(value, kind)) if kind else ""


def resource_attributes(resource: Any) -> Labels:
    """A resource's string attributes, sorted: what a shim's output resource is built from."""
    return tuple(
        sorted((kv.key, kv.value.string_value) for kv in resource.attributes if kv.value.HasField("string_value"))
    )


def target_labels(attributes: Mapping[str, str]) -> dict[str, str]:
    """``job`` and ``instance`` of a resource, as the Collector's Prometheus exporters derive them."""
    labels: dict[str, str] = {}
    name = attributes.get("service.name")
    if name:
        namespace = attributes.get("service.namespace")
        labels["job"] = f"{namespace}/{name}" if namespace else name
    instance = attributes.get("service.instance.id")
    if instance:
        labels["instance"] = instance
    return labels


def metrics_of(request: Any, wanted: Mapping[str, T]) -> Iterator[tuple[T, Any, Labels]]:
    """``(wanted[metric.name], metric, resource labels)`` for each metric of ``request`` that is wanted;
    a resource's labels are read once, and only for a resource that has a wanted metric."""
    for resource_metrics in request.resource_metrics:
        resource: Labels | None = None
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                entry = wanted.get(metric.name)
                if entry is None:
                    continue
                if resource is None:
                    resource = resource_attributes(resource_metrics.resource)
                yield entry, metric, resource


class Observation(NamedTuple):
    name: str
    labels: Labels
    time: int
    value: float
    start: int  # OTLP start_time_unix_nano, 0 when unknown
    delta: bool
    resource: Labels
    stale: bool = False  # from a point flagged "no recorded value"


def observations(metric: Any, wanted: Mapping[str, SeriesKind], resource: Labels) -> Iterator[Observation]:
    """Every sample of ``metric`` for the series names in ``wanted`` (all from this one metric)."""
    target = target_labels(dict(resource))
    kind = metric.WhichOneof("data")
    if kind is None:
        return
    data = getattr(metric, kind)
    delta = getattr(data, "aggregation_temporality", None) == _DELTA
    parts = {kind_.part: name for name, kind_ in wanted.items()}
    for point in data.data_points:
        stale = bool(point.flags & _NO_RECORDED_VALUE)
        base = dict(target)
        for kv in point.attributes:
            base.setdefault(label_name(kv.key), _string_value(kv.value))
        time = point.time_unix_nano // 1_000_000
        start = point.start_time_unix_nano
        if kind in ("sum", "gauge"):
            name = parts.get("value")
            if name is not None:
                if stale:
                    value = math.nan
                else:
                    value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
                yield Observation(name, _sorted(base), time, value, start, delta, resource, stale)
            continue
        if "count" in parts:
            yield Observation(parts["count"], _sorted(base), time, float(point.count), start, delta, resource, stale)
        if "sum" in parts and (kind == "summary" or point.HasField("sum") or stale):
            yield Observation(parts["sum"], _sorted(base), time, point.sum, start, delta, resource, stale)
        if kind == "histogram" and "bucket" in parts:
            cumulative = 0
            bounds = [*point.explicit_bounds, float("inf")]
            # A stale point keeps its bounds (the Collector sends them so that every bucket goes stale).
            counts = [0] * len(bounds) if stale else point.bucket_counts
            for bound, count in zip(bounds, counts, strict=False):
                cumulative += count
                labels = _sorted({**base, "le": format_bound(bound)})
                yield Observation(parts["bucket"], labels, time, float(cumulative), start, delta, resource, stale)
        elif kind == "summary" and "quantile" in parts:
            for quantile in point.quantile_values:
                labels = _sorted({**base, "quantile": format_bound(quantile.quantile)})
                yield Observation(parts["quantile"], labels, time, quantile.value, start, False, resource, stale)


def _sorted(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


@dataclass(slots=True)
class Series:
    """One series' recent samples, oldest first, at most ``capacity`` of them."""

    samples: deque[Sample]
    start: int = 0
    updated: int = -1  # the evaluation round that last added a sample
    resource: Labels = ()
    order: int = 0  # the store's creation count when it was created: a name's series iterate in this order
    trimmed: int = 0  # evictions of its name its samples are trimmed to (at first: those before it was created)
    groups: tuple[Labels | None, ...] = ()  # its output group under each grouping of its name (None: none)

    def add(self, observation: Observation, round_: int) -> bool:
        """Append the sample; False when it is not newer than the last one (Prometheus refuses those).

        A staleness marker is kept (instant selectors stop at it) but does not make the series fresh.
        """
        last = self.samples[-1] if self.samples else None
        if last is not None and observation.time <= last.time:
            return False
        if observation.stale:
            self.samples.append(Sample(observation.time, math.nan, stale=True))
            return True
        if last is not None and last.stale:  # delta and reset arithmetic continue from the last value
            last = next((sample for sample in reversed(self.samples) if not sample.stale), None)
        value = observation.value
        reset = False
        start = observation.start
        if observation.delta:
            value += last.value if last is not None else 0.0
            if last is not None and self.start:
                start = self.start  # the accumulated total counts from the first delta's start
        elif last is not None and observation.start and self.start and observation.start > self.start:
            reset = True
        self.samples.append(Sample(observation.time, value, reset))
        self.start = start
        self.updated = round_
        self.resource = observation.resource
        return True


Grouping: TypeAlias = Callable[[Labels], "Labels | None"]
"""The output group a series with these labels feeds (None: it feeds none), as a plan groups them."""


@dataclass(slots=True)
class _Name:
    """One series name's series and what keeps a request's work on them independent of their number."""

    groupings: list[Grouping] = field(default_factory=list)
    series: dict[Labels, Series] = field(default_factory=dict)  # in creation order, as evaluation reads them
    groups: list[dict[Labels, dict[Labels, Series]]] = field(default_factory=list)  # per grouping, by group
    # A heap of (a sample time, order, labels), one entry per series, its time at most that of the
    # series' last sample: an eviction looks at the entries behind its horizon only, and removes their
    # series or pushes them again at their last sample time (about once per retention period).
    by_last: list[tuple[int, int, Labels]] = field(default_factory=list)
    evictions: int = 0
    # (eviction number, horizon), horizons decreasing: the highest horizon of the evictions after any
    # number is the first entry past it. A series' old samples are trimmed to it when it is next read.
    horizons: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class SeriesStore:
    """The samples the shims need, by series name and labels, bounded in series and samples.

    ``retention`` (ms, per series name) is how far back any shim looks; older samples and series with
    nothing left are evicted. Series beyond ``max_series`` are not tracked; ``untracked`` counts their samples.

    No operation walks every series of a name: a request reads the groups its own series feed
    (``group_members``), and an eviction takes the series it removes off a heap by their last sample
    time; the older samples of the series that stay are trimmed when the series is next read, to what
    trimming them all at every eviction would have left.
    """

    retention: Mapping[str, int]
    max_series: int
    max_samples: int
    size: int = 0
    untracked: int = 0
    _names: dict[str, _Name] = field(default_factory=dict)
    _created: int = 0

    def group_by(self, name: str, grouping: Grouping) -> int:
        """Keep ``name``'s series grouped by ``grouping`` (before any is added); its number for ``group_members``."""
        entry = self._names.setdefault(name, _Name())
        entry.groupings.append(grouping)
        entry.groups.append({})
        return len(entry.groupings) - 1

    def add(self, observation: Observation, round_: int) -> Series | None:
        """The series the sample was added to; None when it was not (see ``Series.add``, ``max_series``)."""
        entry = self._names.setdefault(observation.name, _Name())
        series = entry.series.get(observation.labels)
        if series is None:
            if observation.stale:  # the end of a series never seen: nothing to end
                return None
            if self.size >= self.max_series:
                self.untracked += 1
                return None
            series = self._create(entry, observation.labels)
            heapq.heappush(entry.by_last, (observation.time, series.order, observation.labels))
        else:
            self._trim(entry, series)
        return series if series.add(observation, round_) else None

    def _create(self, entry: _Name, labels: Labels) -> Series:
        self._created += 1
        groups = tuple(grouping(labels) for grouping in entry.groupings)
        series = Series(deque(maxlen=self.max_samples), order=self._created, trimmed=entry.evictions, groups=groups)
        entry.series[labels] = series
        for by_group, group in zip(entry.groups, groups, strict=True):
            if group is not None:
                by_group.setdefault(group, {})[labels] = series
        self.size += 1
        return series

    def group_members(self, name: str, grouping: int, fed: Iterable[Series]) -> dict[Labels, Series]:
        """Every series in a group (of ``grouping``) of the series ``fed``, in creation order, trimmed."""
        entry = self._names[name]
        by_group = entry.groups[grouping]
        members: dict[Labels, Series] = {}
        seen: set[Labels] = set()
        for series in fed:
            group = series.groups[grouping]
            if group is None or group in seen:
                continue
            seen.add(group)
            members.update(by_group[group])
        if len(seen) > 1:
            members = dict(sorted(members.items(), key=lambda item: item[1].order))
        for series in members.values():
            self._trim(entry, series)
        return members

    def evict(self, name: str, now: int) -> None:
        entry = self._names.get(name)
        if entry is None:
            return
        horizon = now - self.retention.get(name, 0)
        entry.evictions += 1
        horizons = entry.horizons
        while horizons and horizons[-1][1] <= horizon:
            horizons.pop()
        horizons.append((entry.evictions, horizon))
        by_last = entry.by_last
        while by_last and by_last[0][0] < horizon:
            _, order, labels = by_last[0]
            series = entry.series[labels]
            last = series.samples[-1].time
            if last >= horizon:
                heapq.heapreplace(by_last, (last, order, labels))
                continue
            heapq.heappop(by_last)
            del entry.series[labels]
            for by_group, group in zip(entry.groups, series.groups, strict=True):
                if group is not None:
                    members = by_group[group]
                    del members[labels]
                    if not members:
                        del by_group[group]
            self.size -= 1

    @staticmethod
    def _trim(entry: _Name, series: Series) -> None:
        """Drop the samples older than the horizon of any eviction since the series was last trimmed.

        The evictions before it was created do not apply: a series that survives an eviction keeps its
        last sample, and later samples are newer, so only a new series can hold samples behind a horizon.
        """
        if series.trimmed == entry.evictions:
            return
        horizons = entry.horizons
        horizon = horizons[bisect.bisect_right(horizons, series.trimmed, key=operator.itemgetter(0))][1]
        series.trimmed = entry.evictions
        samples = series.samples
        while samples and samples[0].time < horizon:
            samples.popleft()
