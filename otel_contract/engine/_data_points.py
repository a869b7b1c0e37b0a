"""What each metric type's data points must satisfy, and how their values are converted between units.

The metrics engine (``metrics.py``) builds one value check and one converter per metric, then calls
them per data point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from itertools import chain, pairwise
from typing import Any

from otel_contract.contract.model import MetricType
from otel_contract.engine._values import INT64_MAX, INT64_MIN

# The OTLP data model's range of exponential histogram scales; 2**scale is computed only inside it.
_MIN_SCALE, _MAX_SCALE = -10, 20
# A conversion multiplies doubles by the factor's numerator and divides by its denominator; Python
# refuses (OverflowError) to turn an int beyond the double range into a float, so a factor with a
# bigger term (a unit such as 'PBy99.By-98') cannot be applied at all (both engines refuse it).
MAX_FACTOR_TERM = 2**1023
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# More explicit bounds than any real histogram has (the Collector's and Prometheus' are below 200):
# a point with more is invalid, so that a request cannot make the checks work on millions of bounds.
_MAX_EXPLICIT_BOUNDS = 4096
Scale = Callable[[float], float]
Convert = Callable[[Any], str | None]


def _scaler(factor: Fraction) -> Scale:
    """Multiply by ``factor`` with one correctly rounded float operation where possible.

    ``x / 1000`` is the correctly rounded ms -> s conversion; ``x * 0.001`` is not always.
    """
    if factor.numerator == 1:
        denominator = factor.denominator
        return lambda value: value / denominator
    if factor.denominator == 1:
        numerator = factor.numerator
        return lambda value: value * numerator
    numerator, denominator = factor.numerator, factor.denominator
    return lambda value: value * numerator / denominator


def _power_of_two(factor: Fraction) -> int | None:
    """k when factor == 2**k, else None."""
    for value, sign in ((factor.numerator, 1), (factor.denominator, -1)):
        other = factor.denominator if sign == 1 else factor.numerator
        if other == 1 and value & (value - 1) == 0:
            return sign * (value.bit_length() - 1)
    return None


def _number_check(spec: Any) -> Callable[[Any], str | None]:
    counter = spec.type is MetricType.SUM and spec.monotonic is not False

    def check(point: Any) -> str | None:
        value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
        if counter and (math.isnan(value) or value < 0):
            return f"counter value {value!r} is not a non-negative number"
        return None

    return check


# Whether a histogram's explicit bounds increase strictly, by bounds: a service's histograms share a
# handful of bucket layouts, so this is worked out once per layout, not once per point. Only layouts
# of up to _MAX_CACHED_BOUNDS bounds are kept, at most _MAX_LAYOUTS of them: a few MiB at worst,
# whatever layouts requests bring. Longer layouts are rare, and checked every time.
_INCREASING: dict[tuple[float, ...], bool] = {}
_MAX_LAYOUTS = 1024
_MAX_CACHED_BOUNDS = 64


def _strictly_increasing(bounds: tuple[float, ...]) -> bool:
    ok = _INCREASING.get(bounds)
    if ok is None:
        ok = all(a < b for a, b in pairwise(bounds))
        if len(bounds) <= _MAX_CACHED_BOUNDS and len(_INCREASING) < _MAX_LAYOUTS:
            _INCREASING[bounds] = ok
    return ok


def _histogram_check(spec: Any) -> Callable[[Any], str | None]:
    def check(point: Any) -> str | None:
        counts = point.bucket_counts
        if len(point.explicit_bounds) > _MAX_EXPLICIT_BOUNDS:
            return f"{len(point.explicit_bounds)} explicit bounds, more than the {_MAX_EXPLICIT_BOUNDS} allowed"
        if counts:
            bounds = tuple(point.explicit_bounds)
            if len(counts) != len(bounds) + 1:
                return f"{len(counts)} bucket counts for {len(bounds)} bounds (need bounds + 1)"
            total = sum(counts)
            if total != point.count:
                return f"bucket counts add up to {total}, not to count {point.count}"
            if not _strictly_increasing(bounds):
                return "explicit bounds are not strictly increasing"
        if point.HasField("sum") and math.isnan(point.sum):
            return "histogram sum is NaN"
        return None

    return check


def _scale_problem(point: Any) -> str | None:
    if _MIN_SCALE <= point.scale <= _MAX_SCALE:
        return None
    return f"scale {point.scale} is outside the OTLP range {_MIN_SCALE}..{_MAX_SCALE}"


def _exponential_check(spec: Any) -> Callable[[Any], str | None]:
    def check(point: Any) -> str | None:
        problem = _scale_problem(point)
        if problem:
            return problem
        total = point.zero_count + sum(point.positive.bucket_counts) + sum(point.negative.bucket_counts)
        if total != point.count:
            return f"bucket counts and zero count add up to {total}, not to count {point.count}"
        if point.HasField("sum") and math.isnan(point.sum):
            return "histogram sum is NaN"
        return None

    return check


def _summary_check(spec: Any) -> Callable[[Any], str | None]:
    def check(point: Any) -> str | None:
        previous = -math.inf
        for quantile in point.quantile_values:
            if not 0.0 <= quantile.quantile <= 1.0:
                return f"quantile {quantile.quantile!r} is outside [0, 1]"
            if quantile.value < previous:
                return "quantile values decrease as quantiles grow"
            previous = quantile.value
        if math.isnan(point.sum):
            return "summary sum is NaN"
        return None

    return check


_VALUE_CHECKS: dict[str, Callable[[Any], Callable[[Any], str | None]]] = {
    MetricType.GAUGE.value: _number_check,
    MetricType.SUM.value: _number_check,
    MetricType.HISTOGRAM.value: _histogram_check,
    MetricType.EXPONENTIAL_HISTOGRAM.value: _exponential_check,
    MetricType.SUMMARY.value: _summary_check,
}


def _converter(kind: str, factor: Fraction, unit: str) -> Convert:
    """Converts one point to ``unit`` in place; returns None, or why the point cannot be converted
    (an integer beyond int64, a finite value beyond the double range), leaving the point as it came."""
    scale = _scaler(factor)
    # Only a multiplication can make a finite double infinite; most conversions (ms -> s) divide, and
    # skip the check, so that they cost what they did before it.
    may_overflow = factor.numerator != 1

    def overflow(values: Iterable[float]) -> str | None:
        """Why converting ``values`` would make one infinite; checked before the point changes."""
        for value in values:
            if math.isinf(scale(value)) and not math.isinf(value):
                return f"{value!r} converted to {unit!r} is beyond the range of a double"
        return None

    def number(point: Any) -> str | None:
        if point.WhichOneof("value") == "as_int":
            exact = point.as_int * factor
            if exact.denominator == 1:
                if not INT64_MIN <= exact <= INT64_MAX:
                    return f"{point.as_int} converted to {unit!r} is beyond the int64 range"
                point.as_int = int(exact)
                return None
            value = float(point.as_int)
        else:
            value = point.as_double
        problem = overflow((value,)) if may_overflow else None
        if problem is None:
            point.as_double = scale(value)
        return problem

    def statistics(point: Any) -> list[float]:
        return [getattr(point, field) for field in ("sum", "min", "max") if point.HasField(field)]

    def sum_min_max(point: Any) -> None:
        for field in ("sum", "min", "max"):
            if point.HasField(field):
                setattr(point, field, scale(getattr(point, field)))

    def histogram(point: Any) -> str | None:
        problem = overflow(chain(statistics(point), point.explicit_bounds)) if may_overflow else None
        if problem is None:
            sum_min_max(point)
            point.explicit_bounds[:] = [scale(bound) for bound in point.explicit_bounds]
        return problem

    def summary(point: Any) -> str | None:
        values = chain((point.sum,), (quantile.value for quantile in point.quantile_values))
        problem = overflow(values) if may_overflow else None
        if problem is None:
            point.sum = scale(point.sum)
            for quantile in point.quantile_values:
                quantile.value = scale(quantile.value)
        return problem

    step = _power_of_two(factor) or 0

    def exponential(point: Any) -> str | None:
        problem = _scale_problem(point)  # before 2**scale, which a hostile scale makes a huge number
        if problem:
            return problem
        # Multiplying every value by 2**k moves every bucket by k * 2**scale indexes; the bucket
        # boundaries stay exact when that is an integer, otherwise the scale is lowered until it is.
        while point.scale > 0 and (step * 2**point.scale) % 1:
            point.scale -= 1  # pragma: no cover - only negative scales can need this
        shift = step * 2**point.scale if point.scale >= 0 else step // 2 ** (-point.scale)
        offsets = (point.positive.offset + shift, point.negative.offset + shift)
        if not all(_INT32_MIN <= offset <= _INT32_MAX for offset in offsets):
            return f"its bucket offsets converted to {unit!r} are beyond the int32 range"
        problem = overflow([*statistics(point), point.zero_threshold]) if may_overflow else None
        if problem is None:
            point.positive.offset, point.negative.offset = offsets
            sum_min_max(point)
            point.zero_threshold = scale(point.zero_threshold)
        return problem

    converters: dict[str, Convert] = {
        MetricType.GAUGE.value: number,
        MetricType.SUM.value: number,
        MetricType.HISTOGRAM.value: histogram,
        MetricType.SUMMARY.value: summary,
        MetricType.EXPONENTIAL_HISTOGRAM.value: exponential,
    }
    return converters[kind]
