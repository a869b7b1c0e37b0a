"""The metrics engine: normalize and validate an ExportMetricsServiceRequest against a contract.

Order (README, "What the engine does"): resource actions and requirements; per metric, alias ->
canonical name with unit conversion, type/temporality/monotonicity, then per data point attribute
renames and type coercion, attribute rules, invalid values, identity conflicts and cardinality.

What each metric type's points must satisfy and how their values convert between units is
``_data_points.py``'s; this module walks the request and applies them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, DataPointFlags

from otel_contract import rules, units
from otel_contract._wire import SHIM_SCOPE, shadow_request
from otel_contract.contract.compiled import AliasTarget, CompiledContract, CompiledMetric
from otel_contract.contract.model import MetricType, Stability, Temporality
from otel_contract.engine._data_points import _VALUE_CHECKS, MAX_FACTOR_TERM, _converter, _power_of_two
from otel_contract.engine._native import process_native
from otel_contract.engine._outcome import EngineOptions, Outcome, prepare
from otel_contract.engine._resource import process_resource
from otel_contract.engine._sink import FindingSink
from otel_contract.engine._values import FIELD_OF_TYPE, SCALAR_FIELDS, normalize_attributes
from otel_contract.engine.cardinality import CardinalityState
from otel_contract.findings import Location
from otel_contract.otlp import Signal

_NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_TEMPORALITY = {
    Temporality.CUMULATIVE: AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
    Temporality.DELTA: AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
}
_TEMPORALITY_NAMES = {
    value: name.removeprefix("AGGREGATION_TEMPORALITY_").lower() for name, value in AggregationTemporality.items()
}


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
            if factor and max(factor.numerator, factor.denominator) >= MAX_FACTOR_TERM:
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
    if options.native:
        return process_native(Signal.METRICS, payload, ExportMetricsServiceRequest, contract, options, state, source)
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
