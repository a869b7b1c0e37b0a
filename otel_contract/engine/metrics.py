"""The metrics engine: normalize and validate an ExportMetricsServiceRequest against a contract.

Order (README, "What the engine does"): resource actions and requirements; per metric, alias ->
canonical name with unit conversion, type/temporality/monotonicity, then per data point attribute
renames and type coercion, attribute rules, invalid values, identity conflicts and cardinality.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from fractions import Fraction
from itertools import chain, pairwise
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, DataPointFlags

from otel_contract import rules, units
from otel_contract._wire import SHIM_SCOPE, shadow_request
from otel_contract.contract.compiled import AliasTarget, CompiledContract, CompiledMetric
from otel_contract.contract.model import MetricType, Stability, Temporality
from otel_contract.engine._outcome import EngineOptions, Outcome, prepare
from otel_contract.engine._resource import process_resource
from otel_contract.engine._sink import FindingSink
from otel_contract.engine._values import FIELD_OF_TYPE, INT64_MAX, INT64_MIN, SCALAR_FIELDS, normalize_attributes
from otel_contract.engine.cardinality import CardinalityState
from otel_contract.findings import Location

_NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_TEMPORALITY = {
    Temporality.CUMULATIVE: AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
    Temporality.DELTA: AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
}
_TEMPORALITY_NAMES = {
    value: name.removeprefix("AGGREGATION_TEMPORALITY_").lower() for name, value in AggregationTemporality.items()
}
# A conversion multiplies doubles by the factor's numerator and divides by its denominator; Python
# refuses (OverflowError) to turn an int beyond the double range into a float, so a factor with a
# bigger term (a unit such as 'PBy99.By-98') cannot be applied at all.
_MAX_FACTOR_TERM = 2**1023
# The OTLP data model's range of exponential histogram scales; 2**scale is computed only inside it.
_MIN_SCALE, _MAX_SCALE = -10, 20
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


def _hashable(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in SCALAR_FIELDS else value.SerializeToString()


class _Run:
    """One request's worth of state: counts, findings, the series seen per resource."""

    def __init__(
        self,
        contract: CompiledContract,
        options: EngineOptions,
        state: CardinalityState | None,
        sink: FindingSink,
        renames_possible: bool,
        shadow: Any = None,
    ) -> None:
        self.contract = contract
        self.shadow = shadow
        self.options = options
        self.state = state
        self.sink = sink
        self.renames_possible = renames_possible
        self.data_points = 0
        self.rejected = 0
        self.merged = 0
        self.changed = False

    # --- request and resource level -----------------------------------------------------------

    def request(self, request: ExportMetricsServiceRequest) -> None:
        drop_resources = []
        shadows = self.shadow.resource_metrics if self.shadow is not None else None
        for index, resource_metrics in enumerate(request.resource_metrics):
            if not self._resource(resource_metrics, shadows[index] if shadows is not None else None):
                drop_resources.append(index)
        for index in reversed(drop_resources):
            del request.resource_metrics[index]
            self.changed = True

    def _resource(self, resource_metrics: Any, shadow: Any) -> bool:
        if self._shim_output(resource_metrics):
            # The contract's own output: its resource has the target the shim's labels give, by design.
            self.data_points += sum(_point_count(m) for sm in resource_metrics.scope_metrics for m in sm.metrics)
            return True
        changed, reject = process_resource(resource_metrics.resource, self.contract, self.options.env, self.sink)
        self.changed |= changed
        if reject:
            points = sum(_point_count(m) for sm in resource_metrics.scope_metrics for m in sm.metrics)
            self.data_points += points
            self.rejected += points
            return False
        # Canonical-named metrics first, so that their series win identity conflicts with aliases.
        entries = [
            (scope_index, metric_index, metric)
            for scope_index, scope in enumerate(resource_metrics.scope_metrics)
            for metric_index, metric in enumerate(scope.metrics)
        ]
        entries.sort(key=lambda entry: entry[2].name in self.contract.aliases)
        names = [self._canonical_name(metric.name) for _, _, metric in entries]
        repeated = {name for name, count in Counter(names).items() if count > 1}
        # Series identities per canonical metric, tracked only where renames can make two collide.
        seen: dict[str, set[tuple[tuple[str, Any], ...]]] = {}
        drop: list[tuple[int, int]] = []
        for (scope_index, metric_index, metric), name in zip(entries, names, strict=True):
            if metric.name in self.contract.shim_records and _from_shims(resource_metrics.scope_metrics[scope_index]):
                self.data_points += _point_count(metric)
                continue
            track = seen.setdefault(name, set()) if self.renames_possible or name in repeated else None
            # Only where no identity can collide does the attribute memo stand in for the checks.
            shadow_metric = shadow.scope_metrics[scope_index].metrics[metric_index] if shadow and not track else None
            if not self._metric(metric, track, shadow_metric):
                drop.append((scope_index, metric_index))
        if not drop:
            return True
        self.changed = True
        for scope_index, metric_index in sorted(drop, reverse=True):
            del resource_metrics.scope_metrics[scope_index].metrics[metric_index]
        # Remove what this run emptied; a scope or resource that arrived empty is left alone.
        for scope_index in sorted({scope for scope, _ in drop}, reverse=True):
            if not resource_metrics.scope_metrics[scope_index].metrics:
                del resource_metrics.scope_metrics[scope_index]
        return bool(resource_metrics.scope_metrics)

    def _shim_output(self, resource_metrics: Any) -> bool:
        """Only compat shims' series, from their scope: what a sidecar appended, passed through as is."""
        scopes = resource_metrics.scope_metrics
        return bool(scopes) and all(
            _from_shims(scope) and all(metric.name in self.contract.shim_records for metric in scope.metrics)
            for scope in scopes
        )

    def _canonical_name(self, name: str) -> str:
        target = self.contract.aliases.get(name)
        return target.metric.name if target else name

    # --- metric level -------------------------------------------------------------------------

    def _metric(self, metric: Any, seen: set[tuple[tuple[str, Any], ...]] | None, shadow: Any = None) -> bool:
        """Normalize and validate one metric in place; False when the whole metric goes."""
        name = metric.name
        compiled = self.contract.metrics.get(name)
        alias: AliasTarget | None = None
        if compiled is None:
            alias = self.contract.aliases.get(name)
            if alias is not None:
                compiled = alias.metric
        kind = metric.WhichOneof("data")
        points = getattr(metric, kind).data_points if kind else ()
        count = len(points)
        self.data_points += count
        if compiled is None:
            return self._unknown_metric(metric, kind, points)
        actions = compiled.actions
        canonical = compiled.name
        report = self.sink.report
        if alias is not None:
            report(
                rules.DEPRECATED_METRIC,
                actions,
                f"{name!r} is a deprecated alias of {canonical!r}; renamed",
                metric=canonical,
                count=count,
            )
            metric.name = canonical
            self.changed = True
        elif compiled.metric.stability in (Stability.DEPRECATED, Stability.ARCHIVED):
            replacement = f"; use {compiled.metric.replaced_by!r}" if compiled.metric.replaced_by else ""
            report(
                rules.DEPRECATED_METRIC,
                actions,
                f"{canonical!r} is {compiled.metric.stability.value}{replacement}",
                metric=canonical,
                count=count,
            )
        problem = self._type_problem(metric, kind, compiled)
        if problem and report(rules.TYPE_MISMATCH, actions, problem, metric=canonical, count=count):
            self.rejected += count
            return False
        if problem:
            return True  # a flagged type mismatch is forwarded as it came, unconverted and unchecked
        scale_by = self._unit(metric, kind, compiled, alias)
        if scale_by is None:
            self.rejected += count
            return False
        shadow_points = getattr(shadow, kind).data_points if shadow is not None and kind else None
        if shadow_points is not None and (shadow.WhichOneof("data") != kind or len(shadow_points) != count):
            # The memo answers for the shadow's bytes: used only where the shadow saw these very points
            # (_wire: it parses with the same oneof, so this guards a bug, not an input).
            shadow_points = None
        self._points(metric, kind, points, compiled, scale_by, seen, shadow_points)
        return len(points) > 0 or count == 0

    def _unknown_metric(self, metric: Any, kind: str | None, points: Any) -> bool:
        name = metric.name
        count = len(points)
        actions = self.contract.actions
        reject = self.sink.report(
            rules.UNKNOWN_METRIC,
            actions,
            f"{name!r} is neither a contract metric nor an alias",
            metric=name,
            count=count,
        )
        reject |= self._check_name(name, count)
        if reject:
            self.rejected += count
            return False
        renames = self.contract.attribute_renames if self.renames_possible else {}
        if renames or self.contract.attribute_types:
            reporter = self._attribute_reporter(name, actions)
            for point in points:
                changed, _ = normalize_attributes(point.attributes, renames, self.contract.attribute_types, reporter)
                self.changed |= changed
        return True

    def _check_name(self, name: str, count: int) -> bool:
        reject = False
        pattern = self.contract.metric_pattern
        actions = self.contract.actions
        if pattern is not None and not pattern.matches(name):
            reject |= self.sink.report(
                rules.METRIC_NAME,
                actions,
                f"metric name {name!r} does not match {pattern.pattern!r}",
                metric=name,
                count=count,
            )
        for rule in self.contract.name_rules:
            if rule.match.matches(name) and not rule.pattern.matches(name):
                why = f": {rule.message}" if rule.message else ""
                reject |= self.sink.report(
                    rules.METRIC_NAME,
                    actions,
                    f"metric name {name!r} does not match {rule.pattern.pattern!r}{why}",
                    metric=name,
                    count=count,
                )
        return reject

    @staticmethod
    def _type_problem(metric: Any, kind: str | None, compiled: CompiledMetric) -> str | None:
        spec = compiled.metric
        if kind != spec.type.value:
            return f"{spec.name!r} must be a {spec.type.value}, got {kind or 'no data'}"
        data = getattr(metric, kind)
        if spec.type is MetricType.SUM and spec.monotonic is not None and data.is_monotonic != spec.monotonic:
            wanted = "monotonic" if spec.monotonic else "non-monotonic"
            return f"{spec.name!r} must be a {wanted} sum"
        if (
            spec.temporality is not None
            and hasattr(data, "aggregation_temporality")
            and data.aggregation_temporality != _TEMPORALITY[spec.temporality]
        ):
            got = data.aggregation_temporality
            shown = _TEMPORALITY_NAMES.get(got) or f"{got}, which is no OTLP temporality"
            return f"{spec.name!r} must have {spec.temporality.value} temporality, got {shown}"
        return None

    def _unit(self, metric: Any, kind: str, compiled: CompiledMetric, alias: AliasTarget | None) -> Fraction | None:
        """Set unit (and, for aliases, description) from the contract; the factor for values.

        None when the metric is rejected for a unit that cannot be converted.
        """
        spec = compiled.metric
        arrived = metric.unit or (alias.alias.unit if alias else None)
        factor = Fraction(1)
        if spec.unit is not None and arrived is not None and arrived != spec.unit:
            why = ""
            try:
                factor = units.conversion_factor(arrived, spec.unit)
            except units.UnitError:
                factor = Fraction(0)
            if factor and max(factor.numerator, factor.denominator) >= _MAX_FACTOR_TERM:
                factor, why = Fraction(0), " (the factor is beyond the range of a double)"
            if factor and kind == MetricType.EXPONENTIAL_HISTOGRAM.value and factor != 1:
                step = _power_of_two(factor)
                if step is None:
                    factor, why = Fraction(0), " on an exponential histogram (only powers of two can)"
            if not factor:
                reject = self.sink.report(
                    rules.UNIT_MISMATCH,
                    compiled.actions,
                    f"{spec.name!r} arrived in {arrived!r}, which cannot be converted to {spec.unit!r}{why}",
                    metric=spec.name,
                    count=len(getattr(metric, kind).data_points),
                )
                return None if reject else Fraction(1)
        if spec.unit is not None and metric.unit != spec.unit:
            metric.unit = spec.unit
            self.changed = True
        if alias is not None and spec.description and metric.description != spec.description:
            metric.description = spec.description
            self.changed = True
        return factor

    def _attribute_reporter(self, metric: str, actions: Any) -> Callable[[rules.Rule, str, str], bool]:
        report = self.sink.report

        def reporter(rule: rules.Rule, attribute: str, message: str) -> bool:
            return report(rule, actions, f"{metric}: {message}", metric=metric, attribute=attribute)

        return reporter

    # --- data point level ---------------------------------------------------------------------

    def _points(
        self,
        metric: Any,
        kind: str,
        points: Any,
        compiled: CompiledMetric,
        factor: Fraction,
        seen: set[tuple[tuple[str, Any], ...]] | None,
        shadow_points: Any = None,
    ) -> None:
        name = compiled.name
        actions = compiled.actions
        renames = compiled.renames if self.renames_possible else {}
        types = compiled.types
        attribute_reporter = self._attribute_reporter(name, actions)
        check_attributes = self._attribute_checker(compiled) if compiled.checks_attributes else None
        check_value = _VALUE_CHECKS[kind](compiled.metric) if kind in _VALUE_CHECKS else None
        convert = _converter(kind, factor, compiled.metric.unit or "") if factor != 1 else None
        budget = compiled.metric.max_series if self.state is not None else None
        report = self.sink.report
        # The kind each typed key must have: a point whose values already have it needs no coercion,
        # which the single pass below tells without calling into the slower normalizer.
        typed = {key: FIELD_OF_TYPE[wanted] for key, wanted in types.items()}
        track_identity = seen is not None or budget is not None
        state = self.state
        memo = (
            state.clean_series(self.contract, name)
            if state is not None and shadow_points is not None and seen is None
            else None
        )
        sink = self.sink
        drop: list[int] = []
        merged: list[int] = []
        for index, point in enumerate(points):
            reject = False
            attribute_bytes = tuple(shadow_points[index].attributes) if memo is not None else None
            # A hit means these attribute bytes passed every attribute check before: only values are left.
            series = memo.get(attribute_bytes) if memo is not None and attribute_bytes is not None else None
            identity: tuple[tuple[str, Any], ...] | None = None
            if series is None:
                reported_before = sink.reported
                attributes = point.attributes
                values = {}
                normalize = False
                for kv in attributes:
                    value = kv.value
                    kind_of_value = value.WhichOneof("value")
                    key = kv.key
                    values[key] = (
                        getattr(value, kind_of_value) if kind_of_value in SCALAR_FIELDS else value.SerializeToString()
                    )
                    if (typed and typed.get(key, kind_of_value) != kind_of_value) or key in renames:
                        normalize = True
                if normalize:  # the slower path, only for points that carry a legacy key or a mistyped value
                    changed, reject = normalize_attributes(attributes, renames, types, attribute_reporter)
                    if changed:
                        self.changed = True
                        values = {kv.key: _hashable(kv.value) for kv in attributes}
                if check_attributes is not None:
                    reject |= check_attributes(values)
                if track_identity or memo is not None:
                    identity = tuple(sorted(values.items()))
                    series = hash(identity)
                passed = not normalize and sink.reported == reported_before
                if passed and memo is not None and attribute_bytes is not None and series is not None:
                    assert state is not None  # a memo comes from the state
                    state.remember_clean(memo, attribute_bytes, series)
            invalid = False
            if check_value is not None and not point.flags & _NO_RECORDED_VALUE:
                problem = check_value(point)
                if problem:
                    invalid = True
                    reject |= report(rules.INVALID_DATA_POINT, actions, f"{name}: {problem}", metric=name)
            if seen is not None and identity is not None:
                if identity in seen:
                    report(
                        rules.IDENTITY_CONFLICT,
                        actions,
                        f"{name}: two series collapsed into one identity {dict(identity)!r}; kept the first",
                        metric=name,
                    )
                    merged.append(index)
                    continue
                seen.add(identity)
            if (
                budget is not None
                and series is not None
                and state is not None
                and not state.admit(name, series, budget)
            ):
                reject |= report(
                    rules.CARDINALITY,
                    actions,
                    f"{name}: a new series beyond the budget of {budget} series",
                    metric=name,
                )
            if reject:
                drop.append(index)
            elif convert is not None:
                # A point that cannot be converted stays as it came; it is invalid unless already reported so.
                problem = convert(point)
                if (
                    problem
                    and not invalid
                    and report(rules.INVALID_DATA_POINT, actions, f"{name}: {problem}", metric=name)
                ):
                    drop.append(index)
        if convert is not None:
            self.changed = True
        gone = sorted(drop + merged, reverse=True)
        for index in gone:
            del points[index]
        self.rejected += len(drop)
        self.merged += len(merged)
        if gone:
            self.changed = True

    def _attribute_checker(self, compiled: CompiledMetric) -> Callable[[Any], bool]:
        name = compiled.name
        actions = compiled.actions
        required, forbidden = compiled.required, compiled.forbidden
        roles = compiled.attribute_roles
        allowed, patterns = compiled.allowed, compiled.patterns
        report = self.sink.report

        def check(present: dict[str, Any]) -> bool:
            reject = False
            if required:
                for key in required.difference(present):
                    reject |= report(
                        rules.MISSING_ATTRIBUTE,
                        actions,
                        f"{name}: a data point lacks required attribute {key!r}"
                        + (f" ({roles[key]})" if key in roles else ""),
                        metric=name,
                        attribute=key,
                    )
            if forbidden:
                for key in forbidden.intersection(present):
                    reject |= report(
                        rules.FORBIDDEN_ATTRIBUTE,
                        actions,
                        f"{name}: a data point carries forbidden attribute {key!r}",
                        metric=name,
                        attribute=key,
                    )
            for key, values in allowed.items():
                value = present.get(key, values)
                if value is not values and value not in values:
                    reject |= report(
                        rules.ATTRIBUTE_VALUE,
                        actions,
                        f"{name}: {key}={value!r} is not an allowed value",
                        metric=name,
                        attribute=key,
                    )
            for key, pattern in patterns.items():
                if key in present:
                    value = present[key]
                    if not (isinstance(value, str) and pattern.matches(value)):
                        reject |= report(
                            rules.ATTRIBUTE_VALUE,
                            actions,
                            f"{name}: {key}={value!r} does not match {pattern.pattern!r}",
                            metric=name,
                            attribute=key,
                        )
            return reject

        return check


# --- per-type value checks and conversions ------------------------------------------------------


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


def _from_shims(scope_metrics: Any) -> bool:
    """The sidecar's compat shims emitted this scope: its metrics are the contract's own output."""
    return bool(scope_metrics.scope.name == SHIM_SCOPE)


def _point_count(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


# --- entry point ----------------------------------------------------------------------------------


def process_metrics(
    payload: bytes | ExportMetricsServiceRequest,
    contract: CompiledContract,
    *,
    state: CardinalityState | None = None,
    options: EngineOptions | None = None,
    source: Location | None = None,
) -> Outcome[ExportMetricsServiceRequest]:
    """Normalize and validate one metrics request.

    ``payload`` is the request's bytes (as received) or a message (left untouched: the engine works
    on a copy). Raises ``google.protobuf.message.DecodeError`` for bytes that are not a request.
    """
    options = options or EngineOptions()
    request, original, renames_possible = prepare(payload, ExportMetricsServiceRequest, contract)
    sink = FindingSink(source, options.audit)
    # The attribute memo needs the raw bytes and a state to keep it in; renames rewrite attributes anyway.
    shadow = shadow_request(original) if original is not None and state is not None and not renames_possible else None
    run = _Run(contract, options, state, sink, renames_possible, shadow)
    run.request(request)
    return Outcome(
        request=request,
        findings=sink.findings(),
        items=run.data_points,
        rejected=run.rejected,
        merged=run.merged,
        changed=run.changed,
        original=original,
    )
