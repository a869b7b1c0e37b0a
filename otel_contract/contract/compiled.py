"""The compiled contract: lookup tables the hot path uses, built once per contract version.

Every question the engine asks per data point (is this name an alias? what is the canonical key
of this attribute? which keys are required?) is a dict or frozenset lookup here; nothing is
recomputed per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from otel_contract import rules, units
from otel_contract._wire import frame
from otel_contract.contract.model import Alias, AttributeType, Contract, Metric, Scalar
from otel_contract.contract.signal_resources import attribute_roles
from otel_contract.patterns import Pattern, compile_pattern
from otel_contract.rules import RULES, Action, Rule, Scope


@dataclass(frozen=True, slots=True)
class CompiledNameRule:
    match: Pattern
    pattern: Pattern
    message: str | None


@dataclass(frozen=True, slots=True)
class CompiledConstraint:
    allowed: frozenset[Scalar] | None
    pattern: Pattern | None
    type: AttributeType | None


@dataclass(frozen=True, slots=True)
class CompiledMetric:
    metric: Metric
    renames: Mapping[str, str]  # global renames overlaid with the metric's own
    types: Mapping[str, AttributeType]
    required: frozenset[str]
    optional: frozenset[str]
    forbidden: frozenset[str]
    allowed: Mapping[str, frozenset[Scalar]]
    patterns: Mapping[str, Pattern]
    actions: Mapping[Rule, Action]  # the contract's actions overlaid with the metric's own policy
    checks_attributes: bool  # False when the metric constrains no attribute: the per-point walk is skipped
    # Required attributes an autoscaling signal maps to a Kubernetes object -> why, for missing-attribute.
    attribute_roles: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def name(self) -> str:
        return self.metric.name


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """Where an alias leads, and the factor from the alias unit to the metric unit.

    ``factor`` is ``None`` when the units cannot be converted (the engine reports unit-mismatch).
    """

    alias: Alias
    metric: CompiledMetric
    factor: Fraction | None


@dataclass(frozen=True, slots=True)
class CompiledContract:
    contract: Contract
    metrics: Mapping[str, CompiledMetric]
    aliases: Mapping[str, AliasTarget]
    attribute_renames: Mapping[str, str]
    attribute_types: Mapping[str, AttributeType]
    metric_pattern: Pattern | None
    name_rules: tuple[CompiledNameRule, ...]
    resource_required: frozenset[str]
    resource_constraints: Mapping[str, CompiledConstraint]
    actions: Mapping[Rule, Action]  # effective runtime action of every telemetry rule
    # Alias names and legacy attribute keys as protobuf encodes them: a payload that contains none
    # of them needs no renaming, which a substring search tells before anything is walked.
    legacy_tokens: tuple[bytes, ...]
    # Compat shims' output names: passed through untouched when they come from the compat scope.
    shim_records: frozenset[str] = frozenset()
    # What layers above build from this contract once and keep for its lifetime (the engine's tables
    # for the compiled core); keyed by the builder's name.
    derived: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.contract.id


def _alias_factor(alias: Alias, metric: Metric) -> Fraction | None:
    if alias.unit is None or metric.unit is None or alias.unit == metric.unit:
        return Fraction(1)
    try:
        return units.conversion_factor(alias.unit, metric.unit)
    except units.UnitError:
        return None


def runtime_actions(contract: Contract, metric: Metric | None = None) -> dict[Rule, Action]:
    """The runtime action of every telemetry rule: the catalog's default, overridden by the contract's
    ``defaults`` and ``policy``, and by ``metric``'s own ``policy`` when given."""
    actions = {rule: rule.action for rule in RULES.values() if rule.scope & Scope.TELEMETRY}
    actions[rules.UNKNOWN_METRIC] = contract.unknown_metrics
    actions.update(contract.policy)
    if metric is not None:
        actions.update(metric.policy)
    return actions


def _compile_metric(contract: Contract, metric: Metric, roles: Mapping[tuple[str, str], str]) -> CompiledMetric:
    own = metric.attributes
    return CompiledMetric(
        metric=metric,
        renames=MappingProxyType({**contract.attributes.renames, **own.renames}),
        types=MappingProxyType({**contract.attributes.types, **own.types}),
        required=frozenset(own.required),
        optional=frozenset(own.optional),
        forbidden=frozenset(own.forbidden),
        allowed=MappingProxyType({key: frozenset(values) for key, values in own.values.items()}),
        patterns=MappingProxyType({key: compile_pattern(pattern) for key, pattern in own.patterns.items()}),
        actions=MappingProxyType(runtime_actions(contract, metric)),
        checks_attributes=bool(own.required or own.forbidden or own.values or own.patterns),
        attribute_roles=MappingProxyType(
            {key: role for (name, key), role in roles.items() if name == metric.name and key in own.required}
        ),
    )


def compile_contract(contract: Contract) -> CompiledContract:
    """Lookup tables for ``contract``.

    Its regexes must be RE2 syntax (``load_contract`` refuses a contract whose patterns are not);
    raises ``PatternError`` otherwise.
    """
    roles = attribute_roles(contract)
    metrics = {metric.name: _compile_metric(contract, metric, roles) for metric in contract.metrics}
    aliases = {
        alias.name: AliasTarget(alias, metrics[metric.name], _alias_factor(alias, metric))
        for metric in contract.metrics
        for alias in metric.aliases
    }
    naming = contract.naming
    legacy = {*aliases, *contract.attributes.renames}
    legacy.update(key for metric in contract.metrics for key in metric.attributes.renames)
    return CompiledContract(
        contract=contract,
        metrics=MappingProxyType(metrics),
        aliases=MappingProxyType(aliases),
        attribute_renames=contract.attributes.renames,
        attribute_types=contract.attributes.types,
        metric_pattern=compile_pattern(naming.metric_pattern) if naming.metric_pattern else None,
        name_rules=tuple(
            CompiledNameRule(compile_pattern(rule.match), compile_pattern(rule.pattern), rule.message)
            for rule in naming.rules
        ),
        resource_required=frozenset(contract.resource.required),
        resource_constraints=MappingProxyType(
            {
                key: CompiledConstraint(
                    allowed=frozenset(spec.allowed) if spec.allowed is not None else None,
                    pattern=compile_pattern(spec.pattern) if spec.pattern else None,
                    type=spec.type,
                )
                for key, spec in contract.resource.attributes.items()
            }
        ),
        actions=MappingProxyType(runtime_actions(contract)),
        # The whole field encoding, not the bare text, so that status_code does not match inside http.status_code.
        legacy_tokens=tuple(sorted(frame(name.encode()) for name in legacy)),
        shim_records=frozenset(shim.record for shim in contract.compat),
    )
