"""Tests for otel_contract.autoscaling.smoothing against hand-computed sequences.

Every expected value is written out as a literal, computed by hand from the documented semantics,
so a wrong formula in the module cannot agree with a copy of itself here.
"""

from __future__ import annotations

import math

import pytest

from otel_contract.autoscaling.smoothing import SeriesSmoother, Smoothing

# The start of an interval on the 30 s grid: 1_700_000_010_000 = 56_666_667 * 30_000.
B = 1_700_000_010_000
S = 30_000  # one interval


def approx(points: list[tuple[int, float]]) -> object:
    # Ends are exact integers; only the averages are floats.
    return [(end, pytest.approx(value, rel=1e-12, abs=1e-12)) for end, value in points]


def feed(smoother: SeriesSmoother, samples: list[tuple[int, float]]) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    for time_ms, value in samples:
        out += smoother.observe(time_ms, value)
    return out


def test_gauge_last_sample_per_interval_gaps_and_restart() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=0.3, interval_ms=S, max_gap=3), counter=False)
    # Interval 0: three samples, only the last (at the last millisecond of the interval) counts.
    assert smoother.observe(B + 1_000, 5.0) == []
    assert smoother.observe(B + 15_000, 7.0) == []
    assert smoother.observe(B + 29_999, 10.0) == []
    # A sample exactly on the boundary belongs to interval 1 and closes interval 0: s = x = 10.
    assert smoother.observe(B + 30_000, 20.0) == approx([(B + 30_000, 10.0)])
    assert smoother.observe(B + 45_000, 30.0) == []
    # Interval 1: 0.3*30 + 0.7*10 = 16.
    assert smoother.observe(B + 60_000, 40.0) == approx([(B + 60_000, 16.0)])
    # Intervals 3 and 4 are empty (2 <= max_gap): interval 2 closes, 0.3*40 + 0.7*16 = 23.2,
    # and nothing is emitted for the gap.
    assert smoother.observe(B + 155_000, 10.0) == approx([(B + 90_000, 23.2)])
    # Interval 5 carries the average on across the gap: 0.3*10 + 0.7*23.2 = 19.24.
    assert smoother.observe(B + 185_000, 50.0) == approx([(B + 180_000, 19.24)])
    # Intervals 7..10 are empty (4 > max_gap): interval 6 still closes on the old average,
    # 0.3*50 + 0.7*19.24 = 28.468, then the average restarts.
    assert smoother.observe(B + 331_000, 2.0) == approx([(B + 210_000, 28.468)])
    # Interval 11 after the restart: s = x = 2; then 0.3*4 + 0.7*2 = 2.6.
    assert smoother.observe(B + 360_000, 4.0) == approx([(B + 360_000, 2.0)])
    assert smoother.observe(B + 390_000, 0.0) == approx([(B + 390_000, 2.6)])
    assert smoother.last_time == B + 390_000


def test_gap_of_exactly_max_gap_carries_on_and_one_more_restarts() -> None:
    smoothing = Smoothing(alpha=0.5, interval_ms=S, max_gap=2)
    carries = SeriesSmoother(smoothing, counter=False)
    restarts = SeriesSmoother(smoothing, counter=False)
    for smoother in (carries, restarts):
        assert feed(smoother, [(B, 10.0), (B + 30_000, 20.0)]) == approx([(B + 30_000, 10.0)])
    # Two empty intervals (2, 3): interval 4's 30 averages with 15 -> 0.5*30 + 0.5*15 = 22.5.
    assert feed(carries, [(B + 120_000, 30.0), (B + 150_000, 0.0)]) == approx([(B + 60_000, 15.0), (B + 150_000, 22.5)])
    # Three empty intervals (2, 3, 4): interval 5 starts over at 30.
    assert feed(restarts, [(B + 150_000, 30.0), (B + 180_000, 0.0)]) == approx(
        [(B + 60_000, 15.0), (B + 180_000, 30.0)]
    )


def test_counter_baseline_rate_and_resets() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=0.3, interval_ms=S, max_gap=1), counter=True)
    # Interval 0 is the baseline, its last sample (B+20s, 130) the reference: no output for it.
    assert smoother.observe(B + 10_000, 100.0) == []
    assert smoother.observe(B + 20_000, 130.0) == []
    assert smoother.observe(B + 40_000, 160.0) == []
    assert smoother.observe(B + 50_000, 190.0) == []
    # Interval 1: (190 - 130) / 30 s = 2/s, the first output, so s = 2.
    assert smoother.observe(B + 80_000, 280.0) == approx([(B + 60_000, 2.0)])
    # Interval 2: (280 - 190) / 30 s = 3/s -> 0.3*3 + 0.7*2 = 2.3.
    # Interval 3 starts with the value going down (280 -> 15): a reset, the increase is 15.
    assert smoother.observe(B + 95_000, 15.0) == approx([(B + 90_000, 2.3)])
    assert smoother.observe(B + 110_000, 45.0) == []
    # Interval 3: (15 + 30) / (110 - 80) s = 1.5/s -> 0.3*1.5 + 0.7*2.3 = 2.06.
    # Interval 4: an explicit reset even though the value went up: the increase is 50, not 5.
    assert smoother.observe(B + 135_000, 50.0, reset=True) == approx([(B + 120_000, 2.06)])
    # Interval 4: 50 / (135 - 110) s = 2/s -> 0.3*2 + 0.7*2.06 = 2.042.
    assert smoother.observe(B + 165_000, 110.0) == approx([(B + 150_000, 2.042)])
    # Intervals 6, 7 empty (2 > max_gap 1): interval 5 closes, (110 - 50) / 30 s = 2/s
    # -> 0.3*2 + 0.7*2.042 = 2.0294, then the baseline is discarded with the average.
    assert smoother.observe(B + 245_000, 160.0) == approx([(B + 180_000, 2.0294)])
    # Interval 8 is a new baseline: no output when it closes, even though the value rose by 30.
    assert smoother.observe(B + 275_000, 190.0) == []
    # Interval 9: (190 - 160) / 30 s = 1/s, and the average restarted: s = 1.
    assert smoother.observe(B + 305_000, 200.0) == approx([(B + 300_000, 1.0)])


def test_counter_rate_spans_a_tolerated_gap() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=0.3, interval_ms=S, max_gap=1), counter=True)
    # Baseline (B+29s, 0); interval 1 empty; interval 2 at (B+89s, 120): 120 / 60 s = 2/s.
    # Nothing is emitted at B+60s for the empty interval.
    out = feed(smoother, [(B + 29_000, 0.0), (B + 89_000, 120.0), (B + 90_000, 125.0)])
    assert out == approx([(B + 90_000, 2.0)])


def test_counter_reset_inside_an_interval_counts_both_segments() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=0.3, interval_ms=S, max_gap=1), counter=True)
    # Baseline 100; then 110, reset to 5, 8: increase 10 + 5 + 3 = 18 over 30 s = 0.6/s.
    # Using only the interval's last sample (8 < 100, "reset") would give 8/30 instead.
    out = feed(smoother, [(B + 20_000, 100.0), (B + 35_000, 110.0), (B + 40_000, 5.0), (B + 50_000, 8.0)])
    assert out == []
    assert smoother.observe(B + 60_000, 9.0) == approx([(B + 60_000, 0.6)])


def test_one_interval_spike_stays_below_a_threshold_a_sustained_rise_crosses() -> None:
    smoothing = Smoothing(alpha=0.3, interval_ms=S, max_gap=10)
    threshold = 50.0
    quiet = [(B + i * S, 10.0) for i in range(3)]
    spike = [*quiet, (B + 3 * S, 110.0), *((B + i * S, 10.0) for i in range(4, 8))]
    rise = [*quiet, *((B + i * S, 110.0) for i in range(3, 8))]
    spiked = feed(SeriesSmoother(smoothing, counter=False), spike)
    risen = feed(SeriesSmoother(smoothing, counter=False), rise)
    ends = [B + i * S for i in range(1, 8)]
    assert [end for end, _ in spiked] == ends
    assert [end for end, _ in risen] == ends
    # Spike: 0.3*110 + 0.7*10 = 40, then 0.3*10 + 0.7*40 = 31, 24.7, 20.29.
    assert [value for _, value in spiked] == pytest.approx([10.0, 10.0, 10.0, 40.0, 31.0, 24.7, 20.29], rel=1e-12)
    # Rise: 40, then 0.3*110 + 0.7*40 = 61, 75.7, 85.99.
    assert [value for _, value in risen] == pytest.approx([10.0, 10.0, 10.0, 40.0, 61.0, 75.7, 85.99], rel=1e-12)
    assert max(value for _, value in spiked) < threshold
    assert [value > threshold for _, value in risen] == [False] * 4 + [True] * 3


def test_step_reaches_90_percent_after_7_intervals_at_alpha_0_3() -> None:
    # The latency figure the module docstring documents: 1 - 0.7**n for n = 1..7.
    smoother = SeriesSmoother(Smoothing(alpha=0.3, interval_ms=S, max_gap=1), counter=False)
    out = feed(smoother, [(B, 0.0), *((B + i * S, 1.0) for i in range(1, 9))])
    values = [value for _, value in out[1:]]
    assert values == pytest.approx([0.3, 0.51, 0.657, 0.7599, 0.83193, 0.882351, 0.9176457], rel=1e-12)
    assert values[5] < 0.9 <= values[6]


def test_out_of_order_duplicate_and_non_finite_samples_are_ignored() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=0.5, interval_ms=S, max_gap=1), counter=False)
    assert smoother.last_time is None
    assert smoother.observe(B + 10_000, 4.0) == []
    assert smoother.observe(B + 31_000, 8.0) == approx([(B + 30_000, 4.0)])
    # Older (even from the closed interval), equal time, NaN and infinities: no effect at all.
    assert smoother.observe(B + 20_000, 1000.0) == []
    assert smoother.observe(B + 30_500, 1000.0) == []
    assert smoother.observe(B + 31_000, 1000.0) == []
    assert smoother.observe(B + 32_000, math.nan) == []
    assert smoother.observe(B + 33_000, math.inf) == []
    assert smoother.observe(B + 61_000, -math.inf) == []
    assert smoother.last_time == B + 31_000
    # Interval 1's value is still 8: 0.5*8 + 0.5*4 = 6.
    assert smoother.observe(B + 61_000, 0.0) == approx([(B + 60_000, 6.0)])
    assert smoother.last_time == B + 61_000


def test_counter_ignores_nan_without_breaking_the_rate() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=0.5, interval_ms=S, max_gap=1), counter=True)
    out = feed(smoother, [(B, 10.0), (B + 30_000, math.nan), (B + 30_000, 40.0), (B + 45_000, 5.0)])
    # NaN at B+30s was ignored so the real sample at the same time was accepted; 40 -> 5 is a reset.
    assert out == []
    # Interval 1: (30 + 5) / 45 s from the baseline at B.
    assert smoother.observe(B + 60_000, 6.0) == approx([(B + 60_000, 35 / 45)])


def test_end_drops_the_open_interval_and_restarts() -> None:
    gauge = SeriesSmoother(Smoothing(alpha=0.5, interval_ms=S, max_gap=10), counter=False)
    assert feed(gauge, [(B, 10.0), (B + 30_000, 20.0)]) == approx([(B + 30_000, 10.0)])
    gauge.end()
    assert gauge.last_time == B + 30_000
    # Still ordered after the marker: an older sample is ignored.
    assert gauge.observe(B + 29_000, 1.0) == []
    # Interval 1 (value 20) was dropped, and the average restarted: s = x = 100, not 55.
    assert feed(gauge, [(B + 60_000, 100.0), (B + 90_000, 0.0)]) == approx([(B + 90_000, 100.0)])

    counter = SeriesSmoother(Smoothing(alpha=0.5, interval_ms=S, max_gap=10), counter=True)
    assert feed(counter, [(B, 0.0), (B + 30_000, 30.0), (B + 60_000, 60.0)]) == approx([(B + 60_000, 1.0)])
    counter.end()
    # The baseline went with the marker: interval 3 is a new baseline, interval 4 the first rate.
    assert counter.observe(B + 90_000, 1000.0) == []
    assert counter.observe(B + 120_000, 1060.0) == []
    assert counter.observe(B + 150_000, 1060.0) == approx([(B + 150_000, 2.0)])


def test_intervals_are_aligned_to_the_epoch() -> None:
    smoother = SeriesSmoother(Smoothing(alpha=1.0, interval_ms=60_000, max_gap=1), counter=False)
    # B is half past a minute (B = 28_333_333.5 minutes): the first sample's interval is
    # [B - 30 s, B + 30 s), so it ends at the next whole minute, not 60 s after the first sample.
    assert B % 60_000 == 30_000
    assert smoother.observe(B, 1.0) == []
    assert smoother.observe(B + 31_000, 2.0) == [(B + 30_000, 1.0)]


@pytest.mark.parametrize(
    ("interval_ms", "expected"),
    [(30_000, 10), (60_000, 5), (45_000, 6), (1_000, 300), (300_000, 1), (600_000, 1)],
)
def test_default_max_gap_is_the_5_minute_lookback_in_intervals(interval_ms: int, expected: int) -> None:
    assert Smoothing.default_max_gap(interval_ms) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0, "interval_ms": S, "max_gap": 1}, r"alpha must be in \(0, 1\].*got 0\.0"),
        ({"alpha": 1.5, "interval_ms": S, "max_gap": 1}, r"alpha must be in \(0, 1\].*got 1\.5"),
        ({"alpha": -0.1, "interval_ms": S, "max_gap": 1}, r"alpha must be in \(0, 1\].*got -0\.1"),
        ({"alpha": math.nan, "interval_ms": S, "max_gap": 1}, r"alpha must be in \(0, 1\].*got nan"),
        ({"alpha": 0.3, "interval_ms": 0, "max_gap": 1}, r"interval_ms must be a positive integer.*got 0"),
        ({"alpha": 0.3, "interval_ms": -30_000, "max_gap": 1}, r"interval_ms must be a positive.*got -30000"),
        ({"alpha": 0.3, "interval_ms": 30_000.5, "max_gap": 1}, r"interval_ms must be a positive.*got 30000\.5"),
        ({"alpha": 0.3, "interval_ms": S, "max_gap": -1}, r"max_gap must be a non-negative integer.*got -1"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Smoothing(**kwargs)  # type: ignore[arg-type]


def test_boundary_parameters_are_accepted() -> None:
    assert Smoothing(alpha=1.0, interval_ms=1, max_gap=0).max_gap == 0
    with pytest.raises(ValueError, match=r"interval_ms must be a positive integer.*got 0"):
        Smoothing.default_max_gap(0)
