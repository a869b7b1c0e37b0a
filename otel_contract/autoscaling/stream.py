"""Smoothed signals in the stream: the ``<metric>_smoothed`` series the sidecar sends beside the rest.

For every autoscaling signal with ``smoothing:``, each series of its metric (its resource and
attributes, as Prometheus would see it) gets a ``SeriesSmoother``; the intervals a request closes
come out as gauge points of ``<metric>_smoothed`` (a per-second rate for a counter), stamped with the
interval's end, with the input's resource and attributes, in scope ``otel-contract/smoothing``.
Times come from the data points, never from a clock, so the output depends on the input alone.
Delta sums are accumulated first; a new OTLP start time is a counter reset. Memory is bounded:
at most ``max_series`` series, and a series is dropped once it has been silent for longer than
the gap that restarts its average anyway.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract.autoscaling.signals import smoothed_metric_name, smoothed_unit
from otel_contract.autoscaling.smoothing import SeriesSmoother, Smoothing
from otel_contract.contract.model import AutoscalingSignal, Contract
from otel_contract.durations import duration_ms
from otel_contract.prometheus_names import SeriesPart, is_counter
from otel_contract.shims import Element, Labels, Recorded, emit, metrics_of, observations

SCOPE_NAME = "otel-contract/smoothing"
DEFAULT_MAX_SERIES = 10_000


@dataclass(frozen=True, slots=True)
class SmoothedSignal:
    """One smoothed signal: which metric it reads, how, and the series it emits."""

    metric: str
    smoothing: Smoothing
    counter: bool
    recorded: Recorded

    @property
    def wanted(self) -> Mapping[str, SeriesPart]:
        return {self.metric: SeriesPart(self.metric, "value")}


def smoothed_signals(contract: Contract) -> tuple[SmoothedSignal, ...]:
    """The contract's smoothed signals (``check`` guarantees each reads a gauge or a sum of the contract)."""
    metrics = {metric.name: metric for metric in contract.metrics}
    found = []
    for signal in contract.autoscaling:
        metric = metrics.get(signal.metric)
        if signal.smoothing is None or metric is None:
            continue
        found.append(_smoothed(signal, metric.name, is_counter(metric), smoothed_unit(metric)))
    return tuple(found)


def _smoothed(signal: AutoscalingSignal, metric: str, counter: bool, unit: str | None) -> SmoothedSignal:
    assert signal.smoothing is not None
    interval = duration_ms(signal.smoothing.interval)
    max_gap = signal.smoothing.max_gap
    smoothing = Smoothing(
        signal.smoothing.alpha, interval, Smoothing.default_max_gap(interval) if max_gap is None else max_gap
    )
    what = "the per-second rate of " if counter else ""
    description = (
        f"EWMA (alpha {smoothing.alpha}) of {what}{metric} over aligned {signal.smoothing.interval} intervals,"
        f" for the autoscaling signal {signal.name or metric}"
    )
    return SmoothedSignal(metric, smoothing, counter, Recorded(smoothed_metric_name(metric), unit, False, description))


@dataclass(slots=True)
class _Series:
    smoother: SeriesSmoother
    total: float = 0.0  # a delta sum's running total
    start: int = 0  # the last OTLP start time: a later one is a counter reset
    queued: bool = False  # it has an entry in SmoothedSeries._by_deadline (from its first accepted sample on)


@dataclass
class SmoothedSeries:
    """Keeps the smoothers of every smoothed signal; ``evaluate`` is thread-safe."""

    signals: tuple[SmoothedSignal, ...]
    contract: str = ""
    max_series: int = DEFAULT_MAX_SERIES
    untracked: int = 0  # samples of new series not smoothed because max_series was reached
    _series: dict[tuple[str, Labels], _Series] = field(default_factory=dict)
    _by_metric: Mapping[str, SmoothedSignal] = field(default_factory=lambda: MappingProxyType({}))
    _next_sweep: int = 0
    # A heap of (a time after which the series may be dropped, creation number, key), one entry per
    # series with a sample, its time at most its last sample's plus its horizon: a sweep looks at the
    # entries behind its time only, and drops their series or pushes them again (about once per horizon).
    _by_deadline: list[tuple[int, int, tuple[str, Labels]]] = field(default_factory=list)
    _created: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._by_metric = MappingProxyType({signal.metric: signal for signal in self.signals})

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics (OTLP names) the smoothed signals read."""
        return frozenset(self._by_metric)

    def evaluate(self, request: ExportMetricsServiceRequest) -> tuple[bytes, int]:
        """The serialized request of the smoothed points this request's samples closed, and their count."""
        if not self._by_metric:
            return b"", 0
        closed: dict[tuple[str, int], list[Element]] = {}
        with self._lock:
            newest = 0
            for signal, metric, resource in metrics_of(request, self._by_metric):
                for sample in observations(metric, signal.wanted, resource):
                    newest = max(newest, sample.time)
                    series = self._get(signal, sample.labels)
                    if series is None:
                        continue
                    if sample.stale:
                        series.smoother.end()
                        continue
                    reset = bool(sample.start and series.start and sample.start > series.start)
                    series.start = sample.start or series.start
                    value = sample.value
                    if sample.delta:
                        series.total = value if reset else series.total + value
                        value = series.total
                    for end, smoothed in series.smoother.observe(sample.time, value, reset=reset):
                        element = Element(None, sample.labels, smoothed, True, 0, sample.resource)
                        closed.setdefault((signal.metric, end), []).append(element)
                    last = series.smoother.last_time
                    if not series.queued and last is not None:
                        series.queued = True
                        self._created += 1
                        deadline = last + self._horizon(signal)
                        heapq.heappush(self._by_deadline, (deadline, self._created, (signal.metric, sample.labels)))
            self._sweep(newest)
        outputs = [(self._by_metric[metric].recorded, elements, end) for (metric, end), elements in closed.items()]
        return emit(outputs, self.contract, SCOPE_NAME)

    def _get(self, signal: SmoothedSignal, labels: Labels) -> _Series | None:
        key = (signal.metric, labels)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self.max_series:
                self.untracked += 1
                return None
            series = self._series[key] = _Series(SeriesSmoother(signal.smoothing, counter=signal.counter))
        return series

    def _sweep(self, newest: int) -> None:
        """Drop series silent for longer than their restart gap: their state would be discarded anyway.

        Series without a sample yet are kept (they have no entry); the others are looked at only once
        their entry's time has passed.
        """
        if newest < self._next_sweep:
            return
        shortest = min(signal.smoothing.interval_ms for signal in self.signals)
        self._next_sweep = newest + shortest
        queue = self._by_deadline
        while queue and queue[0][0] < newest:
            _, created, key = queue[0]
            last = self._series[key].smoother.last_time
            assert last is not None  # queued from its first sample on, and last_time never goes back
            deadline = last + self._horizon(self._by_metric[key[0]])
            if deadline < newest:
                heapq.heappop(queue)
                del self._series[key]
            else:
                heapq.heapreplace(queue, (deadline, created, key))

    @staticmethod
    def _horizon(signal: SmoothedSignal) -> int:
        """How long (ms) a series of ``signal`` may be silent before its state would be discarded anyway."""
        return (signal.smoothing.max_gap + 2) * signal.smoothing.interval_ms
