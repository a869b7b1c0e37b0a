"""``render collector``: the contract as an OpenTelemetry Collector configuration.

What the contract says, in the Collector's own components:

* resource actions -> the ``resource`` processor (``from_env`` through the Collector's ``${env:VAR}``);
* metric aliases -> OTTL in the ``transform`` processor: ``scale_metric`` (values, sum, min, max,
  explicit bounds and the unit) then the rename, on every metric type ``scale_metric`` takes; an
  exponential histogram under an alias with a unit change is left as it is (OTTL cannot scale it);
* attribute renames and types -> ``transform`` statements on data points (the contract's and each
  metric's own), spans, span events and log records, converting as the sidecar's engine does;
* reject rules -> ``filter`` conditions (points, metrics, and the resource's spans and log records);
* compat shims that copy one metric -> ``copy_metric`` in ``transform/compat``, after the filter.

The header comment gives every telemetry rule of the registry the contract uses a line: enforced,
reported (flag: the data comes out the same) or sidecar (only the sidecar can; ``--check`` exits 1).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from otel_contract import rules, units
from otel_contract.autoscaling.stream import smoothed_signals
from otel_contract.contract.compiled import CompiledContract, CompiledMetric, compile_contract
from otel_contract.contract.model import (
    AttributeType,
    Contract,
    MetricType,
    ResourceAction,
    ResourceActionKind,
    Stability,
    Temporality,
)
from otel_contract.render import ArtefactOptions, RenderError, header, yaml_block, yaml_comment
from otel_contract.rules import Action
from otel_contract.shims import SCOPE_NAME as SHIM_SCOPE
from otel_contract.shims import CompiledShim, compile_shims

DEFAULT_RECEIVER = "127.0.0.1:4317"
_COMPAT = "transform/compat"
# Statement contexts whose attributes the contract's renames and types apply to, per signal.
_ATTRIBUTE_CONTEXTS = {"trace": ("span", "spanevent"), "log": ("log",)}
_SIGNALS = ("metric", "trace", "log")
# OTTL's condition that a metric is of the contract's type.
_IS_KIND = {kind: f"metric.type == METRIC_DATA_TYPE_{kind.name}" for kind in MetricType}
_REPR_FIXED = "10000000000000000.0"  # 1e16: from here on Python's repr of a float has an exponent
# Where OTTL's converters and the sidecar's (Python's int(), float(), repr) part ways: README lists them.
_UNLIKE_PYTHON = {
    AttributeType.INT: ", but for spellings only Python reads (' 200', '1_000', non-ASCII digits)",
    AttributeType.DOUBLE: ", but for spellings only Python reads (' 2.5', non-ASCII digits)",
    AttributeType.STRING: ", but a double from 1e16 to 1e21 comes out in digits where Python writes 1e+16",
    AttributeType.BOOL: "",
}


def _quote(value: object) -> str:
    """An OTTL literal: a string in double quotes with backslash escapes, a number or bool as JSON has it."""
    return json.dumps(value)


class Kind(enum.Enum):
    """Who enforces a rule or feature of the contract."""

    ENFORCED = "enforced"  # the configuration does to the data what the sidecar does
    REPORTED = "reported"  # the data comes out the same; only the sidecar reports it (flag rules)
    SIDECAR = "sidecar"  # the configuration cannot do it: the data comes out differently


@dataclass(frozen=True, slots=True)
class Coverage:
    """One line of the header: a rule or feature of the contract, and who enforces it."""

    what: str
    kind: Kind
    how: str


# --- resource ----------------------------------------------------------------------------------------


def _from_env(action: ResourceAction) -> str:
    """A ``from_env`` action as an OTTL resource statement. Not the resource processor: there an unset
    variable expands to no value, and the Collector refuses to start; embedded in an OTTL string it
    expands to "", and the statement skips, as the sidecar skips the action."""
    path = f"resource.attributes[{_quote(action.key)}]"
    value = f'"${{env:{action.from_env}}}"'
    guard = {ResourceActionKind.INSERT: f"{path} == nil and ", ResourceActionKind.UPDATE: f"{path} != nil and "}
    return f'set({path}, {value}) where {guard.get(action.action, "")}{value} != ""'


def _resource_actions(contract: Contract) -> tuple[list[dict[str, Any]], list[str], list[Coverage]]:
    """The resource processor's actions, the ``from_env`` actions' OTTL (a transform runs them after
    the processor), and the coverage: an action after a ``from_env`` one on the same key would run
    before it, so the sidecar alone keeps that order."""
    actions: list[dict[str, Any]] = []
    from_env: list[str] = []
    covered: list[Coverage] = []
    env_keys: set[str] = set()
    for action in contract.resource.actions:
        what = f"resource {action.action.value} {action.key}"
        if action.from_env is not None:
            from_env.append(_from_env(action))
            env_keys.add(action.key)
            how = f"transform, resource context: ${{env:{action.from_env}}} as the Collector starts, skipped when unset"
            covered.append(Coverage(what, Kind.ENFORCED, how))
            continue
        if action.action is ResourceActionKind.RENAME:
            # The resource processor has no rename: copy, then delete.
            assert action.from_attribute is not None
            actions.append({"key": action.key, "from_attribute": action.from_attribute, "action": "insert"})
            actions.append({"key": action.from_attribute, "action": "delete"})
        elif action.action is ResourceActionKind.DELETE:
            actions.append({"key": action.key, "action": "delete"})
        else:
            entry: dict[str, Any] = {"key": action.key, "action": action.action.value}
            if action.from_attribute is not None:
                entry["from_attribute"] = action.from_attribute
            else:
                entry["value"] = action.value
            actions.append(entry)
        if {action.key, action.from_attribute} & env_keys:
            how = "it follows a from_env action on the same key, which the transform runs after the resource processor"
            covered.append(Coverage(what, Kind.SIDECAR, how))
        else:
            covered.append(Coverage(what, Kind.ENFORCED, "resource processor"))
    return actions, from_env, covered


# --- transform ---------------------------------------------------------------------------------------


def _rename(context: str, old: str, new: str, where: str = "") -> list[str]:
    """Where both keys are there, the canonical one is kept, as in the sidecar (core/src/attrs.rs)."""
    source, target = f"{context}.attributes[{_quote(old)}]", f"{context}.attributes[{_quote(new)}]"
    guard = f" and {where}" if where else ""
    return [
        f"set({target}, {source}) where {source} != nil and {target} == nil{guard}",
        f"delete_key({context}.attributes, {_quote(old)})" + (f" where {where}" if where else ""),
    ]


def _retype(context: str, key: str, kind: AttributeType, where: str = "") -> list[str]:
    """The sidecar's coercions (engine/_coerce.py) in OTTL: what converts there converts here, except
    spellings only Python reads (``" 200"``, ``"1_000"``, non-ASCII digits), which stay as they came."""
    path = f"{context}.attributes[{_quote(key)}]"
    guard = f" and {where}" if where else ""
    if kind is AttributeType.STRING:
        # Go's String() writes an integral double without ".0" (2 for Python's 2.0); below 1e16, where
        # Python's repr turns to an exponent, the ".0" is added back.
        integral = (
            f"IsDouble({path}) and {path} > -{_REPR_FIXED} and {path} < {_REPR_FIXED} and Double(Int({path})) == {path}"
        )
        return [
            f'set({path}, Concat([String(Int({path})), ".0"], "")) where {integral}{guard}',
            f"set({path}, String({path})) where {path} != nil and not IsString({path}){guard}",
        ]
    if kind is AttributeType.INT:
        return [
            f"set({path}, Int({path})) where IsString({path}){guard}",
            f"set({path}, Int({path})) where IsDouble({path}) and Double(Int({path})) == {path}{guard}",
        ]
    if kind is AttributeType.DOUBLE:
        return [f"set({path}, Double({path})) where (IsString({path}) or IsInt({path})){guard}"]
    lowered = f'ConvertCase({path}, "lower")'
    either = f'{lowered} == "true" or {lowered} == "false"'
    return [f"set({path}, Bool({lowered})) where IsString({path}) and ({either}){guard}"]


def _attribute_statements(
    context: str, renames: dict[str, str], types: dict[str, AttributeType], where: str = ""
) -> list[str]:
    """Renames first, then types: what a rename brings in as "503" becomes 503."""
    statements = [line for old, new in sorted(renames.items()) for line in _rename(context, old, new, where)]
    statements += [line for key, kind in sorted(types.items()) for line in _retype(context, key, kind, where)]
    return statements


def _metric_statements(compiled: CompiledContract) -> tuple[list[str], list[Coverage]]:
    statements: list[str] = []
    covered: list[Coverage] = []
    for alias, target in sorted(compiled.aliases.items()):
        on_alias = f"metric.name == {_quote(alias)}"
        where = on_alias
        factor = float(target.factor) if target.factor is not None else 1.0
        scaled = factor != 1.0
        kind = target.metric.metric.type
        # The sidecar converts by the unit that arrived (none: the alias's), and only data of the
        # contract's type (a mismatched type is forwarded as it came, renamed only).
        arrived = f'(metric.unit == {_quote(target.alias.unit)} or metric.unit == "")'
        if scaled and kind is MetricType.EXPONENTIAL_HISTOGRAM:
            # scale_metric cannot scale an exponential histogram: it stays under its legacy name rather
            # than get the canonical name with values in the wrong unit.
            where = f"{on_alias} and not ({arrived} and {_IS_KIND[kind]})"
        elif scaled:
            unit = target.metric.metric.unit or ""
            statements.append(
                f"scale_metric({factor!r}, {_quote(unit)}) where {on_alias} and {arrived} and {_IS_KIND[kind]}"
            )
        if description := target.metric.metric.description:  # the sidecar gives a renamed alias the contract's
            statements.append(f"set(metric.description, {_quote(description)}) where {where}")
        statements.append(f"set(metric.name, {_quote(target.metric.name)}) where {where}")
        how = f"rename to {target.metric.name}" + (
            f", x{factor!r} from {target.alias.unit} to {target.metric.metric.unit}" if scaled else ""
        )
        if scaled and kind is MetricType.EXPONENTIAL_HISTOGRAM:
            how = (
                "OTTL's scale_metric cannot scale an exponential histogram, so it stays under its legacy name;"
                " the sidecar scales it by a power of two, or else reports unit-mismatch"
            )
            covered.append(Coverage(f"alias {alias}", Kind.SIDECAR, how))
        else:
            covered.append(Coverage(f"alias {alias}", Kind.ENFORCED, how))
    if any(_convertible(metric.metric.unit) for metric in compiled.metrics.values()):
        how = (
            "data that arrives in a unit other than the contract's or the alias's (ms for s, say): the sidecar"
            " converts it by the unit that arrived; here it keeps the unit it came with"
        )
        covered.append(Coverage("units that arrive otherwise", Kind.SIDECAR, how))
    return statements, covered


def _convertible(unit: str | None) -> bool:
    """Whether data can arrive in another unit that the sidecar converts to ``unit``: every unit the units
    module reads has one ('ms' for 's'; '%' for '1' and for an annotation such as '{request}', both
    dimensionless), so the answer is whether it reads ``unit``."""
    return unit is not None and unit != "" and units.is_convertible(unit, unit)


def _datapoint_statements(compiled: CompiledContract) -> list[str]:
    statements = _attribute_statements("datapoint", dict(compiled.attribute_renames), dict(compiled.attribute_types))
    for name, metric in sorted(compiled.metrics.items()):
        renames = {k: v for k, v in metric.renames.items() if compiled.attribute_renames.get(k) != v}
        types = {k: v for k, v in metric.types.items() if compiled.attribute_types.get(k) != v}
        statements += _attribute_statements("datapoint", renames, types, f"metric.name == {_quote(name)}")
    return statements


def _transform(compiled: CompiledContract, from_env: list[str]) -> tuple[dict[str, Any], list[Coverage]]:
    metric_lines, covered = _metric_statements(compiled)
    renames, types = dict(compiled.attribute_renames), dict(compiled.attribute_types)
    # Resource actions come first in the sidecar too: renames and types see the resource they made.
    resource = [{"context": "resource", "statements": from_env}] if from_env else []
    groups: dict[str, list[dict[str, Any]]] = {f"{signal}_statements": list(resource) for signal in _SIGNALS}
    if metric_lines:
        groups["metric_statements"].append({"context": "metric", "statements": metric_lines})
    if datapoint_lines := _datapoint_statements(compiled):
        groups["metric_statements"].append({"context": "datapoint", "statements": datapoint_lines})
    for signal, contexts in _ATTRIBUTE_CONTEXTS.items():
        blocks = [
            {"context": context, "statements": lines}
            for context in contexts
            if (lines := _attribute_statements(context, renames, types))
        ]
        groups[f"{signal}_statements"] += blocks
    for old, new in sorted(renames.items()):
        covered.append(
            Coverage(f"attribute rename {old} -> {new}", Kind.ENFORCED, "data points, spans, span events, logs")
        )
    if renames or types:
        how = "no OTTL context reaches a span link's attributes; the sidecar renames and converts them too"
        covered.append(Coverage("attributes of span links", Kind.SIDECAR, how))
    for key, kind in sorted(types.items()):
        how = f"converted as the sidecar converts{_UNLIKE_PYTHON[kind]}"
        covered.append(Coverage(f"attribute type {key}: {kind.value}", Kind.ENFORCED, how))
    return {"error_mode": "ignore", **{k: v for k, v in groups.items() if v}}, covered


# --- filter ------------------------------------------------------------------------------------------
#
# Every telemetry rule of the registry gets a line: enforced where its action is reject and a filter
# condition does what the sidecar does, reported where it only flags (nothing dropped), sidecar where the
# sidecar rejects and this configuration cannot.

# What the type check leaves for a value the transform could not convert: a point the sidecar rejects.
_IS_TYPE = {AttributeType.INT: "IsInt", AttributeType.DOUBLE: "IsDouble", AttributeType.BOOL: "IsBool"}
_FLAGGED = "not rejected (flag, ignore): nothing dropped"


def _rule_line(rule: rules.Rule, detail: str, rejects: bool, how: str) -> Coverage:
    what = f"{rule.slug} {detail}".rstrip()
    return Coverage(what, Kind.ENFORCED, how) if rejects else Coverage(what, Kind.REPORTED, _FLAGGED)


def _rejects(metric: CompiledMetric, rule: rules.Rule) -> bool:
    return metric.actions.get(rule) is Action.REJECT


def _keys(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys))


def _which(names: list[str], of: int) -> str:
    """``names`` of metrics as a header line names them: "every metric" when they are all ``of``."""
    return "every metric" if len(names) == of else ", ".join(names)


def _point_conditions(metric: CompiledMetric) -> tuple[list[str], list[Coverage]]:
    """The filter's datapoint conditions for ``metric``'s attribute rules, and their coverage."""
    on_metric = f"metric.name == {_quote(metric.name)}"
    conditions: list[str] = []
    covered: list[Coverage] = []

    def path(key: str) -> str:
        return f"datapoint.attributes[{_quote(key)}]"

    rule, rejects = rules.FORBIDDEN_ATTRIBUTE, _rejects(metric, rules.FORBIDDEN_ATTRIBUTE)
    if metric.forbidden:
        conditions += [f"{on_metric} and {path(key)} != nil" for key in sorted(metric.forbidden)] if rejects else []
        covered.append(
            _rule_line(rule, f"{_keys(metric.forbidden)} on {metric.name}", rejects, "filter drops the point")
        )
    rule, rejects = rules.MISSING_ATTRIBUTE, _rejects(metric, rules.MISSING_ATTRIBUTE)
    if metric.required:
        conditions += [f"{on_metric} and {path(key)} == nil" for key in sorted(metric.required)] if rejects else []
        covered.append(
            _rule_line(rule, f"{_keys(metric.required)} on {metric.name}", rejects, "filter drops the point")
        )
    rule, rejects = rules.ATTRIBUTE_VALUE, _rejects(metric, rules.ATTRIBUTE_VALUE)
    for key, allowed in sorted(metric.allowed.items()):
        if rejects:
            anyof = " or ".join(f"{path(key)} == {_quote(value)}" for value in sorted(allowed, key=str))
            conditions.append(f"{on_metric} and {path(key)} != nil and not ({anyof})")
        covered.append(_rule_line(rule, f"values of {key} on {metric.name}", rejects, "filter drops the point"))
    typed = {key: kind for key, kind in metric.types.items() if kind in _IS_TYPE}
    for key, kind in sorted(typed.items()):
        if rejects:  # the transform converted what converts: what is left of another type is rejected
            conditions.append(f"{on_metric} and {path(key)} != nil and not {_IS_TYPE[kind]}({path(key)})")
    # The types' coverage is one line for all metrics (_type_lines): the contract's types apply to each.
    if metric.patterns:
        what = f"{rule.slug} patterns of {_keys(metric.patterns)} on {metric.name}"
        covered.append(
            Coverage(what, Kind.SIDECAR, "not rendered: the sidecar rejects the point")
            if rejects
            else Coverage(what, Kind.REPORTED, _FLAGGED)
        )
    return conditions, covered


def _type_lines(compiled: CompiledContract) -> list[Coverage]:
    """attribute-value for typed keys: enforced on the metrics that reject it, reported on the others."""
    rule = rules.ATTRIBUTE_VALUE
    by_action: dict[bool, list[str]] = {}
    keys: set[str] = set()
    for name, metric in sorted(compiled.metrics.items()):
        if typed := [key for key, kind in metric.types.items() if kind in _IS_TYPE]:
            keys.update(typed)
            by_action.setdefault(_rejects(metric, rule), []).append(name)
    every = sum(map(len, by_action.values()))
    how = "filter drops a point whose value did not convert"
    return [
        _rule_line(
            rule,
            f"types of {_keys(keys)} on {_which(names, every)}",
            rejects,
            how,
        )
        for rejects, names in sorted(by_action.items(), reverse=True)
    ]


def _resource_conditions(compiled: CompiledContract) -> tuple[list[str], list[Coverage]]:
    """Conditions on the resource, which the sidecar applies to every signal's data."""
    conditions: list[str] = []
    covered: list[Coverage] = []
    rule = rules.MISSING_RESOURCE_ATTRIBUTE
    rejects = compiled.actions.get(rule) is Action.REJECT
    if required := sorted(compiled.resource_required):
        conditions += [f"resource.attributes[{_quote(key)}] == nil" for key in required] if rejects else []
        covered.append(_rule_line(rule, _keys(required), rejects, "filter drops the resource's data"))
    rule = rules.RESOURCE_ATTRIBUTE_VALUE
    rejects = compiled.actions.get(rule) is Action.REJECT
    for key, constraint in sorted(compiled.resource_constraints.items()):
        path = f"resource.attributes[{_quote(key)}]"
        if constraint.allowed is not None:
            if rejects:
                anyof = " or ".join(f"{path} == {_quote(value)}" for value in sorted(constraint.allowed, key=str))
                conditions.append(f"{path} != nil and not ({anyof})")
            covered.append(_rule_line(rule, f"values of {key}", rejects, "filter drops the resource's data"))
        if constraint.pattern is not None or constraint.type is not None:
            what = f"{rule.slug} {'pattern' if constraint.pattern is not None else 'type'} of {key}"
            how = "not rendered: the sidecar rejects the resource's data"
            covered.append(Coverage(what, Kind.SIDECAR, how) if rejects else Coverage(what, Kind.REPORTED, _FLAGGED))
    return conditions, covered


def _type_conditions(compiled: CompiledContract) -> tuple[list[str], list[Coverage]]:
    """type-mismatch as core/src/metrics.rs ``type_problem`` judges it: the data type, a sum's
    monotonicity, the temporality of a sum or histogram, where the contract names them."""
    rule = rules.TYPE_MISMATCH
    conditions: list[str] = []
    rejecting: list[str] = []
    flagging: list[str] = []
    for name, metric in sorted(compiled.metrics.items()):
        spec = metric.metric
        if not _rejects(metric, rule):
            flagging.append(name)
            continue
        rejecting.append(name)
        on_metric = f"metric.name == {_quote(name)}"
        conditions.append(f"{on_metric} and not {_IS_KIND[spec.type]}")
        if spec.type is MetricType.SUM and spec.monotonic is not None:
            conditions.append(f"{on_metric} and metric.is_monotonic != {_quote(spec.monotonic)}")
        if spec.temporality is not None and spec.type is not MetricType.GAUGE and spec.type is not MetricType.SUMMARY:
            wanted = f"AGGREGATION_TEMPORALITY_{spec.temporality.name}"
            conditions.append(f"{on_metric} and metric.aggregation_temporality != {wanted}")
    covered: list[Coverage] = []
    if rejecting:
        on = _which(rejecting, len(compiled.metrics))
        covered.append(Coverage(f"{rule.slug} on {on}", Kind.ENFORCED, "filter drops the metric"))
    if flagging:
        on = _which(flagging, len(compiled.metrics))
        how = (
            "not rejected: the sidecar forwards a metric of another type as it came, renamed only; here its"
            " attributes are renamed and converted too"
        )
        covered.append(Coverage(f"{rule.slug} on {on}", Kind.SIDECAR, how))
    return conditions, covered


def _unknown_metrics(compiled: CompiledContract) -> tuple[list[str], list[Coverage]]:
    rule = rules.UNKNOWN_METRIC
    rejects = compiled.actions.get(rule) is Action.REJECT
    covered = [_rule_line(rule, "", rejects, "filter drops the metric")]
    if not rejects:
        return [], covered
    known = sorted({*compiled.metrics, *compiled.aliases})
    condition = " and ".join(f"metric.name != {_quote(name)}" for name in known)
    if compiled.shim_records:  # a shim's series from a sidecar upstream passes, as the sidecar passes it
        records = " or ".join(f"metric.name == {_quote(name)}" for name in sorted(compiled.shim_records))
        condition += f" and not (instrumentation_scope.name == {_quote(SHIM_SCOPE)} and ({records}))"
    return [condition], covered


def _filter(compiled: CompiledContract) -> tuple[dict[str, Any] | None, list[Coverage]]:
    resources, covered = _resource_conditions(compiled)
    metrics, more = _unknown_metrics(compiled)
    types, type_covered = _type_conditions(compiled)
    metrics += types
    covered = more + covered + type_covered
    points: list[str] = []
    for _, metric in sorted(compiled.metrics.items()):
        conditions, more = _point_conditions(metric)
        points += conditions
        covered += more
    covered += _type_lines(compiled)
    section: dict[str, dict[str, list[str]]] = {}
    if resources or metrics:
        # A resource condition in the metric context drops every metric of a resource without the key.
        section["metrics"] = {"metric": [*resources, *metrics]}
    if points:
        section.setdefault("metrics", {})["datapoint"] = points
    if resources:
        section["traces"] = {"span": resources}
        section["logs"] = {"log_record": resources}
    return ({"error_mode": "ignore", **section} if section else None), covered


def _not_rendered(contract: Contract, compiled: CompiledContract) -> list[Coverage]:
    """The rules no processor here renders: what the sidecar rejects of them, only it can do."""
    metrics = sorted(compiled.metrics.values(), key=lambda metric: metric.name)
    relevant: dict[rules.Rule, list[CompiledMetric]] = {
        rules.UNIT_MISMATCH: metrics,
        rules.INVALID_DATA_POINT: metrics,
        rules.CARDINALITY: [metric for metric in metrics if metric.metric.max_series is not None],
        rules.DEPRECATED_METRIC: [
            metric for metric in metrics if metric.metric.aliases or metric.metric.stability is Stability.DEPRECATED
        ],
    }
    if compiled.metric_pattern is not None or compiled.name_rules:
        relevant[rules.METRIC_NAME] = metrics
    lines: list[Coverage] = []
    for rule, scope in relevant.items():
        rejecting = [metric.name for metric in scope if _rejects(metric, rule)]
        if rejecting:
            on = _which(rejecting, len(metrics))
            lines.append(Coverage(f"{rule.slug} on {on}", Kind.SIDECAR, f"not rendered: {rule.summary}"))
        elif scope:
            lines.append(Coverage(rule.slug, Kind.REPORTED, _FLAGGED))
    if compiled.attribute_renames or any(metric.metric.attributes.renames for metric in metrics):
        # Whatever its action, the sidecar keeps one of the points a rename makes identical.
        rule = rules.IDENTITY_CONFLICT
        lines.append(Coverage(rule.slug, Kind.SIDECAR, f"{rule.summary} The Collector forwards both"))
    for rule, present in (
        (rules.EXPIRED_SHIM, contract.compat),
        (rules.SHIM_INPUT_ABSENT, contract.compat),
        (rules.INVARIANT, contract.invariants),
    ):
        if present:
            lines.append(Coverage(rule.slug, Kind.REPORTED, "the sidecar reports it; nothing is dropped"))
    lines.append(Coverage("partial_success", Kind.REPORTED, "the filter drops silently; the sidecar tells the sender"))
    return lines


# --- compat shims ------------------------------------------------------------------------------------


def _copy_statements(shim: CompiledShim, source: str, factor: float) -> tuple[list[str], list[str]]:
    """Metric- and datapoint-context statements that make the shim's series as the sidecar emits it:
    the source's points under the record name, in the shim's unit, a counter or a gauge as its output is."""
    record, recorded = _quote(shim.record), shim.recorded
    unit, on_copy = _quote(recorded.unit or ""), f"metric.name == {_quote(shim.record)}"
    metric = [
        f"copy_metric(name={record}, description={_quote(recorded.description)}, unit={unit})"
        f" where metric.name == {_quote(source)}"
    ]
    if factor != 1.0:
        metric.append(f"scale_metric({factor!r}, {unit}) where {on_copy}")
    if not recorded.counter:
        metric.append(f"convert_sum_to_gauge() where {on_copy}")
    points = [
        f"set(datapoint.attributes[{_quote(key)}], {_quote(value)}) where {on_copy}"
        for key, value in sorted(shim.shim.labels.items())
    ]
    return metric, points


def _compat(contract: Contract) -> tuple[dict[str, Any] | None, list[Coverage]]:
    """Shims that copy one metric -> ``copy_metric``, in a transform after the filter (the sidecar's
    shims read what it forwards); the other shims and the smoothed autoscaling signals need series and
    time, which only the sidecar keeps."""
    metrics = {metric.name: metric for metric in contract.metrics}
    metric_lines: list[str] = []
    point_lines: list[str] = []
    covered: list[Coverage] = []
    for shim in compile_shims(contract):
        copy = shim.plain_copy
        if copy is None or metrics[copy.metric].temporality is Temporality.DELTA:
            how = "PromQL over series and time: the sidecar evaluates it"
            covered.append(Coverage(f"compat shim {shim.record}", Kind.SIDECAR, how))
            continue
        lines, points = _copy_statements(shim, copy.metric, copy.factor)
        metric_lines += lines
        point_lines += points
        how = f"copy_metric of {copy.metric}: the same series for PromQL; the copy keeps its source's resource"
        covered.append(Coverage(f"compat shim {shim.record}", Kind.ENFORCED, how))
    for signal in smoothed_signals(contract):
        how = "an average over time, which only the sidecar keeps and emits"
        covered.append(Coverage(f"smoothed autoscaling signal {signal.recorded.name}", Kind.SIDECAR, how))
    groups = [{"context": "metric", "statements": metric_lines}] if metric_lines else []
    if point_lines:
        groups.append({"context": "datapoint", "statements": point_lines})
    return ({"error_mode": "ignore", "metric_statements": groups} if groups else None), covered


# --- the configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    config: dict[str, Any]
    coverage: tuple[Coverage, ...]

    @property
    def gaps(self) -> tuple[Coverage, ...]:
        """What the configuration cannot do to the data that the sidecar does."""
        return tuple(line for line in self.coverage if line.kind is Kind.SIDECAR)


def build(contract: Contract, options: ArtefactOptions) -> Rendered:
    compiled = compile_contract(contract)
    processors: dict[str, Any] = {}
    coverage: list[Coverage] = []
    actions, from_env, covered = _resource_actions(contract)
    coverage += covered
    if actions:
        processors["resource"] = {"attributes": actions}
    transform, covered = _transform(compiled, from_env)
    coverage += covered
    if len(transform) > 1:
        processors["transform"] = transform
    filtered, covered = _filter(compiled)
    coverage += covered
    if filtered is not None:
        processors["filter"] = filtered
    compat, covered = _compat(contract)
    coverage += covered
    if compat is not None:
        processors[_COMPAT] = compat
    coverage += _not_rendered(contract, compiled)
    # Without a destination (--processors-only, or --check alone), the pipelines list no exporter.
    exporter = _exporter(options)
    pipelines = {
        signal: {
            "receivers": ["otlp"],
            "processors": [name for name in processors if _serves(name, processors[name], signal)],
            "exporters": [exporter[0]] if exporter else [],
        }
        for signal in ("metrics", "traces", "logs")
    }
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": options.receiver_endpoint or DEFAULT_RECEIVER}}}},
        "processors": processors,
        "exporters": dict([exporter]) if exporter else {},
        "service": {"pipelines": pipelines},
    }
    return Rendered(config, tuple(coverage))


def _serves(name: str, processor: dict[str, Any], signal: str) -> bool:
    """Whether the pipeline of ``signal`` lists the processor: the filter where it has conditions for the
    signal, the compat shims' transform for metrics only, the others everywhere."""
    if name == "filter":
        return signal in processor
    return name != _COMPAT or signal == "metrics"


def _exporter(options: ArtefactOptions) -> tuple[str, dict[str, Any]] | None:
    if options.file:
        return "file", {"path": options.file}
    if options.exporter_endpoint:
        return "otlp_grpc", {"endpoint": options.exporter_endpoint, "tls": {"insecure": True}}
    return None


def _coverage_comment(coverage: Iterable[Coverage]) -> list[str]:
    lines = yaml_comment(
        "enforced: this configuration does it; reported: the data comes out the same, and only the sidecar"
        " reports it (where the action is flag); sidecar: only the otel-contract sidecar can do it (render"
        " collector --check exits 1)."
    )
    for line in coverage:
        lines += yaml_comment(f"{line.what}: {line.how}", first=f"  {line.kind.value:<9} ")
    return lines


def _processors_only(config: dict[str, Any]) -> dict[str, Any]:
    """The processors, and which of them each pipeline lists: to paste into an existing configuration."""
    pipelines = config["service"]["pipelines"]
    return {
        "processors": config["processors"],
        "service": {
            "pipelines": {name: {"processors": pipeline["processors"]} for name, pipeline in pipelines.items()}
        },
    }


def gaps(contract: Contract, options: ArtefactOptions) -> tuple[str, ...]:
    """What only the sidecar can do of ``contract``, one line each (``render collector --check``)."""
    return tuple(f"{line.what}: {line.how}" for line in build(contract, options).gaps)


def render(contract: Contract, options: ArtefactOptions) -> str:
    if not options.processors_only and _exporter(options) is None:
        # As `serve`, which refuses to start without an exporter: no destination is a guess.
        raise RenderError(
            "a gateway needs a destination: pass --exporter-endpoint HOST:PORT (otlp_grpc) or --file PATH,"
            " or --processors-only to paste the processors into a configuration that has its exporters"
        )
    rendered = build(contract, options)
    config = _processors_only(rendered.config) if options.processors_only else rendered.config
    lines = [*header(contract, "render collector"), *_coverage_comment(rendered.coverage), *yaml_block(config)]
    return "\n".join(lines) + "\n"
