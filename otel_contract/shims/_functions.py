"""PromQL's range and aggregation arithmetic, as Prometheus 2.x computes it.

Each function follows ``promql/functions.go`` and ``promql/engine.go`` of Prometheus 2.42 (the
version the equivalence test runs), including the order of floating-point operations, so the stream
gives the values a recording rule would record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from otel_contract.shims._series import Sample


def extrapolated_rate(
    samples: Sequence[Sample], range_start: int, range_end: int, range_seconds: float, *, is_rate: bool
) -> float | None:
    """``rate`` (``is_rate``) or ``increase`` over the samples inside ``[range_start, range_end]`` ms.

    A sample counts as a reset when its value dropped or its OTLP start time moved (``reset``): in
    both cases the counter restarted from zero, so the value before the reset is added back.
    None when fewer than two samples are in range, as Prometheus drops the element.
    """
    if len(samples) < 2:
        return None
    first, last = samples[0], samples[-1]
    result = last.value - first.value
    previous = first.value
    for sample in samples[1:]:
        if sample.value < previous or sample.reset:
            result += previous
        previous = sample.value
    duration_to_start = (first.time - range_start) / 1000
    duration_to_end = (range_end - last.time) / 1000
    sampled_interval = (last.time - first.time) / 1000
    average_between_samples = sampled_interval / (len(samples) - 1)
    if result > 0 and first.value >= 0:
        # A counter cannot go below zero: extrapolate at most to where it would have been zero.
        duration_to_zero = sampled_interval * (first.value / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average_between_samples * 1.1
    extrapolate_to = sampled_interval
    extrapolate_to += duration_to_start if duration_to_start < threshold else average_between_samples / 2
    extrapolate_to += duration_to_end if duration_to_end < threshold else average_between_samples / 2
    factor = extrapolate_to / sampled_interval
    if is_rate:
        factor /= range_seconds
    return result * factor


def instant_rate(samples: Sequence[Sample]) -> float | None:
    """``irate``: the per-second rate between the last two samples in range."""
    if len(samples) < 2:
        return None
    previous, last = samples[-2], samples[-1]
    interval = last.time - previous.time
    if interval == 0:
        return None
    value = last.value if last.value < previous.value or last.reset else last.value - previous.value
    return value / (interval / 1000)


class Accumulator:
    """One output group of ``sum``, ``min``, ``max``, ``count`` or ``avg``, fed value by value."""

    __slots__ = ("_op", "count", "mean", "value")

    def __init__(self, op: str, first: float) -> None:
        self._op = op
        self.count = 1
        self.value = first
        self.mean = first

    def add(self, value: float) -> None:
        self.count += 1
        op = self._op
        if op == "sum":
            self.value += value
        elif op == "min":
            if self.value > value or math.isnan(self.value):
                self.value = value
        elif op == "max":
            if self.value < value or math.isnan(self.value):
                self.value = value
        elif op == "avg":
            if math.isinf(self.mean):
                if math.isinf(value) and (self.mean > 0) == (value > 0):
                    return  # the mean stays that infinity
                if not math.isinf(value) and not math.isnan(value):
                    return  # a finite value cannot move an infinite mean
            self.mean += value / self.count - self.mean / self.count

    def result(self) -> float:
        if self._op == "count":
            return float(self.count)
        if self._op == "avg":
            return self.mean
        return self.value


SUPPORTED_AGGREGATIONS = frozenset({"sum", "min", "max", "count", "avg"})
