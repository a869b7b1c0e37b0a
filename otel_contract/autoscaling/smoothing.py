"""Smoothed autoscaling signals: an exponentially weighted moving average per series, over aligned intervals.

A Horizontal Pod Autoscaler that reads a raw series scales up on a one-scrape spike. Smoothing the
series first makes a short spike move the signal a little and a sustained rise move it all the way.
This module is the pure core: no I/O, no clock. Times come in as arguments, in milliseconds since
the epoch (as OTLP and Prometheus samples carry them); one :class:`SeriesSmoother` per series.

**Intervals.** Time is cut into intervals aligned to the epoch, ``[k*interval_ms, (k+1)*interval_ms)``,
so every series (and every replica of the caller) closes the same intervals at the same boundaries.
An interval with at least one accepted sample is a *data interval*; its value ``x_k`` is:

* gauge mode (``counter=False``): the value of its last sample; earlier samples in it do not count.
* counter mode (``counter=True``): values are cumulative; ``x_k`` is the per-second rate from the
  last sample of the previous data interval, at ``t_prev``, to the last sample of this one, at
  ``t_k``: ``increase / ((t_k - t_prev) / 1000)``. The increase is summed over consecutive samples
  with Prometheus' ``rate()`` semantics: ``v - v_before``, or ``v`` itself on a counter reset
  (``reset=True``, e.g. a new OTLP start time, or the value went down). Without resets it is
  ``v_k - v_prev``; samples inside the interval only matter for detecting resets. The first data
  interval of a series has no previous sample: it is the baseline and yields no output.

**Average.** ``s = x`` for the first output, then ``s_k = alpha * x_k + (1 - alpha) * s_prev``, where
``s_prev`` is the average at the previous data interval.

**Closing.** An interval closes when a sample arrives in a later interval; closing emits
``((k + 1) * interval_ms, s_k)``, the interval's end and the average. Empty intervals (gaps) emit
nothing and leave the average as it is: no data is not zero. If more than ``max_gap`` empty intervals
separate two data intervals, the average restarts: the next output is ``x`` itself, and in counter
mode the old baseline is discarded too, so the first data interval after such a gap yields no output.
:meth:`SeriesSmoother.end` (a staleness marker: the series ended) restarts the same way and drops
the open interval, whose value was never published.

**Ignored samples.** A sample whose time is not strictly after the last accepted one (duplicate or
out of order) and a non-finite value are ignored: ``observe`` returns ``[]`` and nothing changes.
NaN covers Prometheus' staleness marker, a NaN too: the caller recognises it and calls ``end()``.
Infinities are ignored as well, because one would hold the average at infinity until a restart.

**Latency.** A sample's value is reflected at the end of its interval, and only when the next
interval's first sample arrives: up to one interval plus one sample period after it was taken. On
top of that the average lags. A sustained step of height ``h`` moves the average by
``(1 - (1 - alpha)**n) * h`` after ``n`` data intervals at the new level; with ``alpha = 0.3`` it
takes ``n >= ln 0.1 / ln 0.7 ≈ 6.46``, so 7 intervals to reach 90 % (210 s with 30 s intervals).
The mean lag is ``(1 - alpha) / alpha`` intervals: 2.33 (70 s at 30 s) for ``alpha = 0.3``.
A spike lasting ``m`` intervals moves it by at most ``(1 - (1 - alpha)**m) * h``: 0.3 h for one
interval at ``alpha = 0.3``, against 0.51 h, 0.66 h, 0.76 h for a rise lasting 2, 3, 4 intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SeriesSmoother", "Smoothing"]

# Prometheus' default --query.lookback-delta: how long a sample keeps a series present in queries.
_LOOKBACK_MS = 5 * 60 * 1000


def _is_int(value: object) -> bool:
    # bool is an int subclass, and True intervals are a configuration mistake, not 1 ms.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Smoothing:
    """How to smooth: the EWMA weight, the interval grid and the gap that restarts the average."""

    alpha: float
    """Weight of the newest interval, ``0 < alpha <= 1``; 1 means no smoothing."""
    interval_ms: int
    """Interval length in milliseconds, ``> 0``; intervals are aligned to the epoch."""
    max_gap: int
    """Empty intervals tolerated between two data intervals, ``>= 0``; after more, the average restarts."""

    def __post_init__(self) -> None:
        # Written so that NaN fails the check instead of slipping through a comparison.
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1] (the weight of the newest interval), got {self.alpha!r}")
        if not _is_int(self.interval_ms) or self.interval_ms <= 0:
            raise ValueError(f"interval_ms must be a positive integer number of milliseconds, got {self.interval_ms!r}")
        if not _is_int(self.max_gap) or self.max_gap < 0:
            raise ValueError(f"max_gap must be a non-negative integer number of empty intervals, got {self.max_gap!r}")

    @classmethod
    def default_max_gap(cls, interval_ms: int) -> int:
        """Prometheus' 5-minute lookback in whole intervals, at least 1: 10 for 30 s intervals."""
        if not _is_int(interval_ms) or interval_ms <= 0:
            raise ValueError(f"interval_ms must be a positive integer number of milliseconds, got {interval_ms!r}")
        return max(1, _LOOKBACK_MS // interval_ms)


class SeriesSmoother:
    """The smoothed signal of one series: feed its samples in time order, publish what ``observe`` returns."""

    __slots__ = (
        "_average",
        "_base_time",
        "_counter",
        "_gauge_value",
        "_increase",
        "_last_time",
        "_open",
        "_open_time",
        "_previous",
        "_smoothing",
    )

    def __init__(self, smoothing: Smoothing, *, counter: bool) -> None:
        self._smoothing = smoothing
        self._counter = counter
        # Survives end(): ordering still holds across a staleness marker, and eviction needs it.
        self._last_time: int | None = None
        self._restart()

    def _restart(self) -> None:
        self._open: int | None = None  # index of the data interval not yet closed
        self._open_time = 0  # time of its last sample
        self._gauge_value = 0.0  # gauge: value of its last sample
        self._increase = 0.0  # counter: increase since the baseline sample
        self._average: float | None = None
        self._base_time: int | None = None  # counter: last sample of the previous data interval
        self._previous: float | None = None  # counter: last accepted value, to detect resets

    @property
    def last_time(self) -> int | None:
        """Time of the last accepted sample, for evicting idle series; None before the first one."""
        return self._last_time

    def observe(self, time_ms: int, value: float, *, reset: bool = False) -> list[tuple[int, float]]:
        """Feed one sample; return ``(interval_end_ms, smoothed_value)`` for every interval it closed."""
        if not math.isfinite(value) or (self._last_time is not None and time_ms <= self._last_time):
            return []
        self._last_time = time_ms
        interval = time_ms // self._smoothing.interval_ms
        closed: list[tuple[int, float]] = []
        if self._open is not None and interval != self._open:
            point = self._close(self._open)
            if point is not None:
                closed.append(point)
            if interval - self._open - 1 > self._smoothing.max_gap:
                self._restart()
        self._open = interval
        self._open_time = time_ms
        if self._counter:
            self._accumulate(value, reset)
        else:
            self._gauge_value = value
        return closed

    def end(self) -> None:
        """The series ended (a staleness marker): drop the open interval and restart the average."""
        self._restart()

    def _accumulate(self, value: float, reset: bool) -> None:
        if self._previous is not None:
            self._increase += value if reset or value < self._previous else value - self._previous
        self._previous = value

    def _close(self, index: int) -> tuple[int, float] | None:
        x = self._counter_rate() if self._counter else self._gauge_value
        if x is None:
            return None
        alpha = self._smoothing.alpha
        self._average = x if self._average is None else alpha * x + (1 - alpha) * self._average
        return (index + 1) * self._smoothing.interval_ms, self._average

    def _counter_rate(self) -> float | None:
        base, increase = self._base_time, self._increase
        # This interval's last sample is the next one's baseline, whether or not it had one itself.
        self._base_time, self._increase = self._open_time, 0.0
        if base is None:
            return None
        return increase / ((self._open_time - base) / 1000)
