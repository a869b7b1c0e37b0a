"""Field-by-field comparison of two contract models (pure: no I/O).

Every change is classified by its kind (``kinds.py``) and carries the consequence in words. Where the
consequence depends on what the sidecar does with such data, the reason names the new contract's
action for the rule concerned ("is rejected (attribute-value)", "is flagged as missing-attribute").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from otel_contract import rules
from otel_contract.contract.compiled import runtime_actions
from otel_contract.contract.model import (
    AttributeRules,
    AutoscalingSignal,
    Contract,
    Invariant,
    Metric,
    ResourceAction,
    ResourceActionKind,
    Shim,
    Stability,
)
from otel_contract.diff import kinds
from otel_contract.diff.kinds import Area, ChangeKind
from otel_contract.diff.model import Change, ContractDiff, JsonValue, Side, version_gate
from otel_contract.rules import Action, Rule
from otel_contract.units import conversion_factor, is_convertible

Actions = Mapping[Rule, Action]

_STRICTNESS = {Action.IGNORE: 0, Action.FLAG: 1, Action.REJECT: 2}
_RETIRED = frozenset({Stability.DEPRECATED, Stability.ARCHIVED})


def compare(old: Contract, new: Contract) -> ContractDiff:
    """Every change from ``old`` to ``new``, most serious first, and the semver gate over them."""
    differ = _Differ(old, new)
    differ.run()
    changes = tuple(sorted(differ.changes, key=Change.sort_key))
    return ContractDiff(
        old=Side(old.name, old.version, old.source),
        new=Side(new.name, new.version, new.source),
        changes=changes,
        gate=version_gate(old.version, new.version, changes),
    )


def _json(value: Any) -> JsonValue:
    if isinstance(value, enum.Enum):
        return _json(value.value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(_json(key)): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_json(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _fate(actions: Actions, rule: Rule) -> str:
    """What happens to data that breaks ``rule`` under ``actions``."""
    action = actions.get(rule, rule.action)
    if action is Action.REJECT:
        return f"is rejected ({rule.slug})"
    if action is Action.FLAG:
        return f"is flagged as {rule.slug}"
    return f"breaks the contract, though this contract's policy ignores {rule.slug}"


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for each key whose value differs; None stands for absent."""
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before != after:
            yield key, before, after


def _listing(values: Iterable[Any]) -> str:
    return ", ".join(str(value) for value in values)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where an attribute rule applies: the words for reasons, the path prefix, the area, the actions."""

    where: str  # " on http_server_duration_seconds", " on every signal", " on the resource"
    path: str
    area: Area
    actions: Actions
    value_rule: Rule = rules.ATTRIBUTE_VALUE
    required_rule: Rule = rules.MISSING_ATTRIBUTE


class _Differ:
    def __init__(self, old: Contract, new: Contract) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        # The new contract's runtime actions, not its compiled form: a contract whose patterns do not
        # compile can still be compared (its errors are mentioned, not fatal).
        self._new_actions = runtime_actions(new)

    def add(self, kind: ChangeKind, area: Area, subject: str, path: str, old: Any, new: Any, reason: str) -> None:
        self.changes.append(Change(kind, area, subject, path, _json(old), _json(new), reason))

    def run(self) -> None:
        self._contract()
        self._naming()
        self._defaults_and_policy()
        self._resource()
        self._global_attributes()
        self._metrics()
        self._compat()
        self._invariants()
        self._autoscaling()

    # --- contract, naming, policy ---------------------------------------------------------------------------

    def _contract(self) -> None:
        old, new = self.old, self.new
        if old.name != new.name:
            self.add(
                kinds.CONTRACT_RENAMED,
                Area.CONTRACT,
                "contract",
                "contract",
                old.name,
                new.name,
                f"the contract id changes from {old.name} to {new.name}: health, logs, reports and"
                " baselines name the contract differently",
            )
        for name, before, after in (
            ("description", old.description, new.description),
            ("owners", sorted(old.owners), sorted(new.owners)),
        ):
            if before != after:
                self.add(
                    kinds.CONTRACT_METADATA,
                    Area.CONTRACT,
                    name,
                    name,
                    before,
                    after,
                    f"the contract's {name} changed; documentation only",
                )

    def _naming(self) -> None:
        old, new = self.old.naming, self.new.naming
        for name, before, after in (
            ("metric_pattern", old.metric_pattern, new.metric_pattern),
            ("attribute_pattern", old.attribute_pattern, new.attribute_pattern),
        ):
            path = f"naming.{name}"
            if before == after:
                continue
            if after is None:
                self.add(
                    kinds.NAMING_PATTERN_DROPPED,
                    Area.NAMING,
                    name,
                    path,
                    before,
                    after,
                    f"names no longer have to match {before!r}: nothing accepted before is refused",
                )
            else:
                was = f" (was {before!r})" if before else ""
                self.add(
                    kinds.NAMING_PATTERN,
                    Area.NAMING,
                    name,
                    path,
                    before,
                    after,
                    f"names must now match {after!r}{was}: a name that passed before may not, and such data"
                    f" {_fate(self._new_actions, rules.METRIC_NAME)}",
                )
        old_rules = {rule.match: rule for rule in old.rules}
        new_rules = {rule.match: rule for rule in new.rules}
        for match in sorted(old_rules.keys() | new_rules.keys()):
            before_rule, after_rule = old_rules.get(match), new_rules.get(match)
            subject, path = f"naming rule {match}", f"naming.rules[{match}]"
            if after_rule is None:
                assert before_rule is not None
                self.add(
                    kinds.NAMING_RULE_DROPPED,
                    Area.NAMING,
                    subject,
                    path,
                    before_rule.pattern,
                    None,
                    f"names matching {match!r} no longer have to match {before_rule.pattern!r}",
                )
            elif before_rule is None or before_rule.pattern != after_rule.pattern:
                was = f" (was {before_rule.pattern!r})" if before_rule else ""
                self.add(
                    kinds.NAMING_RULE,
                    Area.NAMING,
                    subject,
                    path,
                    before_rule.pattern if before_rule else None,
                    after_rule.pattern,
                    f"names matching {match!r} must now match {after_rule.pattern!r}{was}: a name that passed"
                    f" before may not, and such data {_fate(self._new_actions, rules.METRIC_NAME)}",
                )
            elif before_rule.message != after_rule.message:
                self.add(
                    kinds.CONTRACT_METADATA,
                    Area.NAMING,
                    subject,
                    f"{path}.message",
                    before_rule.message,
                    after_rule.message,
                    "the rule's message changed; the rule did not",
                )

    def _defaults_and_policy(self) -> None:
        self._action_change(
            Area.DEFAULTS,
            "unknown metrics",
            "defaults.unknown_metrics",
            self.old.unknown_metrics,
            self.new.unknown_metrics,
            "data of metrics the contract does not know",
        )
        self._policy(self.old.policy, self.new.policy, Area.POLICY, "policy", "")

    def _policy(
        self, old: Mapping[Rule, Action], new: Mapping[Rule, Action], area: Area, path: str, where: str
    ) -> None:
        for rule in sorted(old.keys() | new.keys(), key=lambda r: r.slug):
            self._action_change(
                area,
                f"{rule.slug}{where}",
                f"{path}.{rule.slug}",
                old.get(rule, rule.action),
                new.get(rule, rule.action),
                f"data that breaks {rule.slug}{where}",
            )

    def _action_change(self, area: Area, subject: str, path: str, before: Action, after: Action, what: str) -> None:
        if before is after:
            return
        stricter = _STRICTNESS[after] > _STRICTNESS[before]
        kind = kinds.POLICY_STRICTER if stricter else kinds.POLICY_LOOSER
        consequence = "was accepted before and now" if stricter else "now"
        verbs = {
            Action.REJECT: "is rejected",
            Action.FLAG: "is forwarded and flagged",
            Action.IGNORE: "passes unreported",
        }
        self.add(
            kind,
            area,
            subject,
            path,
            before,
            after,
            f"{what} {consequence} {verbs[after]} (was {before.value}, now {after.value})",
        )

    # --- attributes: shared by metrics, the global section and the resource ----------------------------------

    def _required(self, scope: _Scope, old: Iterable[str], new: Iterable[str], path: str) -> None:
        before, after = set(old), set(new)
        for key in sorted(after - before):
            self.add(
                kinds.ATTRIBUTE_REQUIRED,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.{path}",
                None,
                key,
                f"{key} became required{scope.where}: data without it, accepted before,"
                f" {_fate(scope.actions, scope.required_rule)}",
            )
        for key in sorted(before - after):
            self.add(
                kinds.ATTRIBUTE_RELAXED,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.{path}",
                key,
                None,
                f"{key} is no longer required{scope.where}: nothing accepted before is refused, but consumers"
                " can no longer count on it",
            )

    def _allowed_values(
        self, scope: _Scope, old: Mapping[str, tuple[Any, ...]], new: Mapping[str, tuple[Any, ...]], path: str
    ) -> None:
        for key, before, after in _changed(old, new):
            subject, where = f"{key}{scope.where}", f"{scope.path}.{path}.{key}"
            fate = _fate(scope.actions, scope.value_rule)
            if before is None:
                assert after is not None
                self.add(
                    kinds.ATTRIBUTE_VALUES_REMOVED,
                    scope.area,
                    subject,
                    where,
                    None,
                    after,
                    f"{key}{scope.where} now allows only {_listing(after)}: any other value, accepted before, {fate}",
                )
                continue
            if after is None:
                self.add(
                    kinds.ATTRIBUTE_VALUES_ADDED,
                    scope.area,
                    subject,
                    where,
                    before,
                    None,
                    f"{key}{scope.where} accepts any value now, not only {_listing(before)}",
                )
                continue
            removed = [value for value in before if value not in after]
            added = [value for value in after if value not in before]
            if removed:
                examples = " or ".join(f"{key}={value}" for value in removed)
                self.add(
                    kinds.ATTRIBUTE_VALUES_REMOVED,
                    scope.area,
                    subject,
                    where,
                    removed,
                    None,
                    f"removing {_listing(removed)} from the allowed values of {key}{scope.where}: data with"
                    f" {examples}, accepted before, {fate}",
                )
            if added:
                self.add(
                    kinds.ATTRIBUTE_VALUES_ADDED,
                    scope.area,
                    subject,
                    where,
                    None,
                    added,
                    f"{key}{scope.where} also accepts {_listing(added)}",
                )

    def _patterns(self, scope: _Scope, old: Mapping[str, str], new: Mapping[str, str], path: str) -> None:
        for key, before, after in _changed(old, new):
            was = f" (was {before!r})" if before else ""
            self._tightened_or_dropped(
                scope,
                key,
                path,
                (before, after),
                (kinds.ATTRIBUTE_PATTERN, kinds.ATTRIBUTE_PATTERN_DROPPED),
                f"values of {key}{scope.where} must now match {after!r}{was}: a value that passed before may"
                f" not, and such data {_fate(scope.actions, scope.value_rule)}",
                f"values of {key}{scope.where} no longer have to match {before!r}",
            )

    def _types(self, scope: _Scope, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for key, before, after in _changed(old, new):
            self._tightened_or_dropped(
                scope,
                key,
                path,
                (before, after),
                (kinds.ATTRIBUTE_TYPE, kinds.ATTRIBUTE_TYPE_DROPPED),
                f"{key}{scope.where} is now {_json(after)} (was {_json(before) or 'any type'}): values are coerced"
                " where they can be, and consumers comparing against the old type see different values; a value"
                f" that cannot be coerced {_fate(scope.actions, scope.value_rule)}",
                f"{key}{scope.where} may have any type now, not only {_json(before)}",
            )

    def _tightened_or_dropped(
        self,
        scope: _Scope,
        key: str,
        path: str,
        values: tuple[Any, Any],
        kinds_: tuple[ChangeKind, ChangeKind],
        tightened: str,
        dropped: str,
    ) -> None:
        """A constraint on an attribute's values that was added or changed, or dropped (new value None)."""
        before, after = values
        gone = after is None
        self.add(
            kinds_[1] if gone else kinds_[0],
            scope.area,
            f"{key}{scope.where}",
            f"{scope.path}.{path}.{key}",
            before,
            after,
            dropped if gone else tightened,
        )

    def _renames(self, scope: _Scope, old: Mapping[str, str], new: Mapping[str, str], path: str) -> None:
        for key, before, after in _changed(old, new):
            where = f"{scope.path}.{path}.{key}"
            if before is None:
                reason = f"{key} is now renamed to {after}{scope.where}: queries and dashboards that read {key} lose it"
            elif after is None:
                reason = (
                    f"{key} is no longer renamed to {before}{scope.where}: data that sends {key} keeps that key,"
                    f" so consumers of {before} lose it"
                )
            else:
                reason = f"{key} now becomes {after} instead of {before}{scope.where}: consumers of {before} lose it"
            self.add(kinds.ATTRIBUTE_RENAME, scope.area, f"{key}{scope.where}", where, before, after, reason)

    def _attribute_rules(self, scope: _Scope, old: AttributeRules, new: AttributeRules) -> None:
        self._required(scope, old.required, new.required, "required")
        before_optional, after_optional = set(old.optional), set(new.optional)
        if before_optional != after_optional:
            self.add(
                kinds.ATTRIBUTE_OPTIONAL,
                scope.area,
                f"optional attributes{scope.where}",
                f"{scope.path}.optional",
                sorted(before_optional - after_optional),
                sorted(after_optional - before_optional),
                f"the documented optional attributes{scope.where} changed; optional attributes are not enforced",
            )
        for key in sorted(set(new.forbidden) - set(old.forbidden)):
            self.add(
                kinds.ATTRIBUTE_FORBIDDEN,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.forbidden",
                None,
                key,
                f"{key} became forbidden{scope.where}: data carrying it, accepted before,"
                f" {_fate(scope.actions, rules.FORBIDDEN_ATTRIBUTE)}",
            )
        for key in sorted(set(old.forbidden) - set(new.forbidden)):
            self.add(
                kinds.ATTRIBUTE_ALLOWED,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.forbidden",
                key,
                None,
                f"{key} is no longer forbidden{scope.where}",
            )
        self._allowed_values(scope, old.values, new.values, "values")
        self._patterns(scope, old.patterns, new.patterns, "patterns")
        self._types(scope, old.types, new.types, "types")
        self._renames(scope, old.renames, new.renames, "renames")

    def _global_attributes(self) -> None:
        scope = _Scope(" on every signal", "attributes", Area.ATTRIBUTES, self._new_actions)
        self._attribute_rules(scope, self.old.attributes, self.new.attributes)

    # --- resource -----------------------------------------------------------------------------------------------

    def _resource(self) -> None:
        old, new = self.old.resource, self.new.resource
        actions = self._new_actions
        scope = _Scope(
            " on the resource",
            "resource",
            Area.RESOURCE,
            actions,
            value_rule=rules.RESOURCE_ATTRIBUTE_VALUE,
            required_rule=rules.MISSING_RESOURCE_ATTRIBUTE,
        )
        self._required(scope, old.required, new.required, "required")

        def constraint(rules_: Mapping[str, Any], attribute: str) -> dict[str, Any]:
            return {
                key: getattr(spec, attribute) for key, spec in rules_.items() if getattr(spec, attribute) is not None
            }

        self._allowed_values(
            scope, constraint(old.attributes, "allowed"), constraint(new.attributes, "allowed"), "attributes"
        )
        self._patterns(
            scope, constraint(old.attributes, "pattern"), constraint(new.attributes, "pattern"), "attributes"
        )
        self._types(scope, constraint(old.attributes, "type"), constraint(new.attributes, "type"), "attributes")
        self._resource_actions(old.actions, new.actions)

    def _resource_actions(self, old: tuple[ResourceAction, ...], new: tuple[ResourceAction, ...]) -> None:
        def identities(actions: tuple[ResourceAction, ...]) -> dict[tuple[str, str, int], ResourceAction]:
            seen: dict[tuple[str, str], int] = {}
            keyed = {}
            for action in actions:
                pair = (action.key, action.action.value)
                seen[pair] = seen.get(pair, 0) + 1
                keyed[(*pair, seen[pair])] = action
            return keyed

        def describe(action: ResourceAction) -> dict[str, Any]:
            return {
                name: _json(value)
                for name in ("key", "action", "value", "from_attribute", "from_env")
                if (value := getattr(action, name)) is not None
            }

        before, after = identities(old), identities(new)
        for identity in sorted(after.keys() - before.keys()):
            action = after[identity]
            subject, path = f"{action.action.value} {action.key}", f"resource.actions[{action.key}]"
            if action.action is ResourceActionKind.INSERT:
                self.add(
                    kinds.RESOURCE_ACTION_INSERT_ADDED,
                    Area.RESOURCE,
                    subject,
                    path,
                    None,
                    describe(action),
                    f"{action.key} is now inserted where it is absent; data that had it is unchanged",
                )
            else:
                self.add(
                    kinds.RESOURCE_ACTION_ADDED,
                    Area.RESOURCE,
                    subject,
                    path,
                    None,
                    describe(action),
                    f"{action.key} is now {action.action.value}d on every resource: consumers see different"
                    " resource attributes than before",
                )
        for identity in sorted(before.keys() - after.keys()):
            action = before[identity]
            self.add(
                kinds.RESOURCE_ACTION_REMOVED,
                Area.RESOURCE,
                f"{action.action.value} {action.key}",
                f"resource.actions[{action.key}]",
                describe(action),
                None,
                f"{action.key} is no longer {action.action.value}d: resources that relied on it keep their own"
                " value or lack the attribute",
            )
        common = [identity for identity in before if identity in after]
        for identity in common:
            if describe(before[identity]) != describe(after[identity]):
                action = after[identity]
                self.add(
                    kinds.RESOURCE_ACTION_CHANGED,
                    Area.RESOURCE,
                    f"{action.action.value} {action.key}",
                    f"resource.actions[{action.key}]",
                    describe(before[identity]),
                    describe(action),
                    f"{action.key} is now {action.action.value}d from a different value or source: consumers"
                    " see different values",
                )
        order_after = [identity for identity in after if identity in before]
        if common != order_after:
            self.add(
                kinds.RESOURCE_ACTIONS_REORDERED,
                Area.RESOURCE,
                "resource actions",
                "resource.actions",
                [f"{i[1]} {i[0]}" for i in common],
                [f"{i[1]} {i[0]}" for i in order_after],
                "resource actions run in order, so the same actions in another order can produce other attributes",
            )

    # --- metrics -----------------------------------------------------------------------------------------------

    def _metrics(self) -> None:
        old = {metric.name: metric for metric in self.old.metrics}
        new = {metric.name: metric for metric in self.new.metrics}
        shim_records = {shim.record for shim in self.new.compat}
        renamed_to = {
            alias.name: metric for metric in self.new.metrics for alias in metric.aliases if alias.name in old
        }
        for name in sorted(old.keys() - new.keys()):
            if name in renamed_to:
                self._renamed(old[name], renamed_to[name], name in shim_records, fresh=renamed_to[name].name not in old)
            else:
                self._removed(old[name])
        renamed_targets = {metric.name for metric in renamed_to.values() if metric.name not in old}
        for name in sorted(new.keys() - old.keys() - renamed_targets):
            metric = new[name]
            self.add(
                kinds.METRIC_ADDED,
                Area.METRICS,
                name,
                f"metrics[{name}]",
                None,
                metric.type,
                f"{name} ({metric.type.value}{', ' + metric.unit if metric.unit else ''}) is new",
            )
        for name in sorted(old.keys() & new.keys()):
            self._metric(old[name], new[name])

    def _removed(self, metric: Metric) -> None:
        name = metric.name
        unknown = self.new.unknown_metrics
        if metric.stability is Stability.ARCHIVED and unknown is not Action.REJECT:
            self.add(
                kinds.ARCHIVED_METRIC_REMOVED,
                Area.METRICS,
                name,
                f"metrics[{name}]",
                metric.type,
                None,
                f"{name} was archived; its data, if any still comes,"
                f" {_fate(self._new_actions, rules.UNKNOWN_METRIC)} instead of deprecated-metric",
            )
            return
        self.add(
            kinds.METRIC_REMOVED,
            Area.METRICS,
            name,
            f"metrics[{name}]",
            metric.type,
            None,
            f"removing {name}: its data becomes an unknown metric and"
            f" {_fate(self._new_actions, rules.UNKNOWN_METRIC)}, and queries, dashboards and alerts on"
            f" {name} go empty",
        )

    def _renamed(self, old: Metric, new: Metric, shimmed: bool, *, fresh: bool) -> None:
        if shimmed:
            self.add(
                kinds.METRIC_RENAMED_WITH_SHIM,
                Area.METRICS,
                old.name,
                f"metrics[{new.name}]",
                old.name,
                new.name,
                f"{old.name} is now {new.name}; producers may keep sending {old.name} (an alias), and a compat shim"
                f" keeps recording {old.name} for the queries that read it",
            )
        else:
            self.add(
                kinds.METRIC_RENAMED,
                Area.METRICS,
                old.name,
                f"metrics[{new.name}]",
                old.name,
                new.name,
                f"{old.name} is now {new.name}; producers may keep sending {old.name} (an alias), but queries,"
                f" dashboards and alerts on {old.name} go empty (no compat shim records {old.name})",
            )
        if fresh:
            self._metric(old, new, ignore_alias=old.name)

    def _metric(self, old: Metric, new: Metric, *, ignore_alias: str | None = None) -> None:
        name = new.name
        path = f"metrics[{name}]"
        actions = runtime_actions(self.new, new)
        if old.type is not new.type:
            self.add(
                kinds.METRIC_TYPE,
                Area.METRICS,
                name,
                f"{path}.type",
                old.type,
                new.type,
                f"{name} changes from {old.type.value} to {new.type.value}: data sent as {old.type.value}, accepted"
                f" before, {_fate(actions, rules.TYPE_MISMATCH)}, and queries written for a {old.type.value} break",
            )
        self._unit(name, f"{path}.unit", old.unit, new.unit, actions)
        self._fixed(name, f"{path}.temporality", "temporality", old.temporality, new.temporality, actions)
        self._fixed(name, f"{path}.monotonic", "monotonic", old.monotonic, new.monotonic, actions)
        self._stability(old, new, actions)
        for field_name in ("description", "owner", "collection", "since", "replaced_by"):
            before, after = getattr(old, field_name), getattr(new, field_name)
            if before != after:
                self.add(
                    kinds.METRIC_DOCUMENTATION,
                    Area.METRICS,
                    name,
                    f"{path}.{field_name}",
                    before,
                    after,
                    f"{field_name} of {name} changed; documentation only",
                )
        self._precision(name, f"{path}.precision", old.precision, new.precision)
        self._budget(name, f"{path}.max_series", old.max_series, new.max_series, actions)
        self._aliases(old, new, actions, ignore_alias)
        scope = _Scope(f" on {name}", f"{path}.attributes", Area.METRICS, actions)
        self._attribute_rules(scope, old.attributes, new.attributes)
        self._policy(old.policy, new.policy, Area.METRICS, f"{path}.policy", f" on {name}")

    def _unit(self, name: str, path: str, before: str | None, after: str | None, actions: Actions) -> None:
        if before == after:
            return
        if after is None:
            self.add(
                kinds.METRIC_UNIT_DROPPED,
                Area.METRICS,
                name,
                path,
                before,
                None,
                f"{name} no longer fixes its unit (was {before})",
            )
            return
        fate = _fate(actions, rules.UNIT_MISMATCH)
        if before is None:
            self.add(
                kinds.METRIC_UNIT,
                Area.METRICS,
                name,
                path,
                None,
                after,
                f"{name} now has unit {after}: data in a unit that cannot be converted to {after}, accepted before,"
                f" {fate}",
            )
            return
        factor = conversion_factor(before, after) if is_convertible(before, after) else None
        if factor is not None and factor != 1:
            self.add(
                kinds.METRIC_UNIT_SCALED,
                Area.METRICS,
                name,
                path,
                before,
                after,
                f"{name} changes unit from {before} to {after}: the sidecar converts data sent in {before}, but every"
                f" value that queries, dashboards and alerts read is {float(factor):g} times what it was",
            )
        else:
            self.add(
                kinds.METRIC_UNIT,
                Area.METRICS,
                name,
                path,
                before,
                after,
                f"{name} changes unit from {before} to {after}, which no conversion relates: data sent in {before},"
                f" accepted before, {fate}",
            )

    def _fixed(self, name: str, path: str, what: str, before: Any, after: Any, actions: Actions) -> None:
        """A property the data must have (temporality, monotonicity), or None for any."""
        if before == after:
            return
        if after is None:
            kind = kinds.METRIC_TEMPORALITY_DROPPED if what == "temporality" else kinds.METRIC_MONOTONIC_DROPPED
            self.add(kind, Area.METRICS, name, path, before, None, f"{name} no longer requires {what} {_json(before)}")
            return
        kind = kinds.METRIC_TEMPORALITY if what == "temporality" else kinds.METRIC_MONOTONIC
        was = f" (was {_json(before)})" if before is not None else ""
        self.add(
            kind,
            Area.METRICS,
            name,
            path,
            before,
            after,
            f"{name} now requires {what} {_json(after)}{was}: data with another {what}, accepted before,"
            f" {_fate(actions, rules.TYPE_MISMATCH)}",
        )

    def _stability(self, old: Metric, new: Metric, actions: Actions) -> None:
        before, after = old.stability, new.stability
        if before is after:
            return
        name, path = new.name, f"metrics[{new.name}].stability"
        if after in _RETIRED and before not in _RETIRED:
            rejected = actions.get(rules.DEPRECATED_METRIC) is Action.REJECT
            kind = kinds.METRIC_DEPRECATED_REJECTED if rejected else kinds.METRIC_DEPRECATED
            self.add(
                kind,
                Area.METRICS,
                name,
                path,
                before,
                after,
                f"{name} becomes {after.value}: its data, accepted before, {_fate(actions, rules.DEPRECATED_METRIC)}",
            )
            return
        if before in _RETIRED and after not in _RETIRED:
            reason = f"{name} is {after.value} again: its data is no longer flagged as deprecated-metric"
        else:
            reason = f"{name} moves from {before.value} to {after.value}; what is accepted does not change"
        self.add(kinds.METRIC_STABILITY, Area.METRICS, name, path, before, after, reason)

    def _precision(self, name: str, path: str, before: int | None, after: int | None) -> None:
        if before == after:
            return

        def decimals(value: int | None) -> str:
            return "no stated precision" if value is None else f"{value} decimals"

        reduced = after is None or (before is not None and after < before)
        self.add(
            kinds.METRIC_PRECISION_REDUCED if reduced else kinds.METRIC_PRECISION_RAISED,
            Area.METRICS,
            name,
            path,
            before,
            after,
            f"consumers of {name} may rely on {decimals(after)} (was {decimals(before)})",
        )

    def _budget(self, name: str, path: str, before: int | None, after: int | None, actions: Actions) -> None:
        if before == after:
            return

        def budget(value: int | None) -> str:
            return "unlimited" if value is None else f"{value} series"

        reduced = after is not None and (before is None or after < before)
        consequence = f"; series beyond it, accepted before, {_fate(actions, rules.CARDINALITY)}" if reduced else ""
        self.add(
            kinds.MAX_SERIES_REDUCED if reduced else kinds.MAX_SERIES_RAISED,
            Area.METRICS,
            name,
            path,
            before,
            after,
            f"the cardinality budget of {name} is {budget(after)} (was {budget(before)}){consequence}",
        )

    def _aliases(self, old: Metric, new: Metric, actions: Actions, ignore: str | None) -> None:
        name = new.name
        before = {alias.name: alias for alias in old.aliases}
        after = {alias.name: alias for alias in new.aliases if alias.name != ignore}
        for alias in sorted(after.keys() - before.keys()):
            self.add(
                kinds.ALIAS_ADDED,
                Area.METRICS,
                f"{alias} (alias of {name})",
                f"metrics[{name}].aliases[{alias}]",
                None,
                alias,
                f"{alias} is now accepted and normalized to {name}",
            )
        for alias in sorted(before.keys() - after.keys()):
            self.add(
                kinds.ALIAS_REMOVED,
                Area.METRICS,
                f"{alias} (alias of {name})",
                f"metrics[{name}].aliases[{alias}]",
                alias,
                None,
                f"{alias} is no longer normalized to {name}: data sent as {alias}, accepted before, becomes an"
                f" unknown metric and {_fate(self._new_actions, rules.UNKNOWN_METRIC)}",
            )
        for alias in sorted(before.keys() & after.keys()):
            if before[alias].unit != after[alias].unit:
                self.add(
                    kinds.ALIAS_UNIT,
                    Area.METRICS,
                    f"{alias} (alias of {name})",
                    f"metrics[{name}].aliases[{alias}].unit",
                    before[alias].unit,
                    after[alias].unit,
                    f"data sent as {alias} is now read as {_unit_of(after[alias].unit, name)} (was"
                    f" {_unit_of(before[alias].unit, name)}): its converted values change",
                )

    # --- compat, invariants, autoscaling --------------------------------------------------------------------

    def _compat(self) -> None:
        old = {shim.record: shim for shim in self.old.compat}
        new = {shim.record: shim for shim in self.new.compat}
        for record in sorted(new.keys() - old.keys()):
            shim = new[record]
            self.add(
                kinds.SHIM_ADDED,
                Area.COMPAT,
                record,
                f"compat[{record}]",
                None,
                shim.expr,
                f"{record} is recorded from {shim.expr} until {shim.expires.isoformat()}",
            )
        for record in sorted(old.keys() - new.keys()):
            self.add(
                kinds.SHIM_REMOVED,
                Area.COMPAT,
                record,
                f"compat[{record}]",
                old[record].expr,
                None,
                f"{record} is no longer recorded: dashboards and alerts that read it go empty",
            )
        for record in sorted(old.keys() & new.keys()):
            self._shim(old[record], new[record])

    def _shim(self, old: Shim, new: Shim) -> None:
        record, path = new.record, f"compat[{new.record}]"
        for field_name in ("expr", "labels", "unit"):
            before, after = getattr(old, field_name), getattr(new, field_name)
            if before != after:
                self.add(
                    kinds.SHIM_CHANGED,
                    Area.COMPAT,
                    record,
                    f"{path}.{field_name}",
                    before,
                    after,
                    f"the {field_name} of {record} changed: the series dashboards read is computed differently",
                )
        if old.expires != new.expires:
            earlier = new.expires < old.expires
            self.add(
                kinds.SHIM_EXPIRY_EARLIER if earlier else kinds.SHIM_EXPIRY_LATER,
                Area.COMPAT,
                record,
                f"{path}.expires",
                old.expires,
                new.expires,
                f"{record} expires on {new.expires.isoformat()} (was {old.expires.isoformat()})"
                + (": consumers have less time to migrate" if earlier else ""),
            )
        for field_name in ("owner", "reason"):
            before, after = getattr(old, field_name), getattr(new, field_name)
            if before != after:
                self.add(
                    kinds.SHIM_METADATA,
                    Area.COMPAT,
                    record,
                    f"{path}.{field_name}",
                    before,
                    after,
                    f"the {field_name} of {record} changed; documentation only",
                )

    def _invariants(self) -> None:
        old = {invariant.name: invariant for invariant in self.old.invariants}
        new = {invariant.name: invariant for invariant in self.new.invariants}
        fate = _fate(self._new_actions, rules.INVARIANT)
        for name in sorted(new.keys() - old.keys()):
            self.add(
                kinds.INVARIANT_ADDED,
                Area.INVARIANTS,
                name,
                f"invariants[{name}]",
                None,
                _invariant(new[name]),
                f"invariant {name} is new: telemetry that passed validate before can fail it, and then {fate}",
            )
        for name in sorted(old.keys() - new.keys()):
            self.add(
                kinds.INVARIANT_REMOVED,
                Area.INVARIANTS,
                name,
                f"invariants[{name}]",
                _invariant(old[name]),
                None,
                f"invariant {name} is no longer checked",
            )
        for name in sorted(old.keys() & new.keys()):
            before, after = old[name], new[name]
            path = f"invariants[{name}]"
            if (before.ratio, before.present) != (after.ratio, after.present):
                self.add(
                    kinds.INVARIANT_TIGHTENED,
                    Area.INVARIANTS,
                    name,
                    path,
                    _invariant(before),
                    _invariant(after),
                    f"invariant {name} checks something else now: telemetry that passed it may not, and then {fate}",
                )
            elif before.max_deviation != after.max_deviation:
                tighter = (after.max_deviation or 0.0) < (before.max_deviation or 0.0)
                self.add(
                    kinds.INVARIANT_TIGHTENED if tighter else kinds.INVARIANT_LOOSENED,
                    Area.INVARIANTS,
                    name,
                    f"{path}.max_deviation",
                    before.max_deviation,
                    after.max_deviation,
                    f"invariant {name} tolerates a deviation of {after.max_deviation} (was {before.max_deviation})"
                    + (f": telemetry that passed it may not, and then {fate}" if tighter else ""),
                )
            if before.description != after.description:
                self.add(
                    kinds.INVARIANT_METADATA,
                    Area.INVARIANTS,
                    name,
                    f"{path}.description",
                    before.description,
                    after.description,
                    f"the description of invariant {name} changed; documentation only",
                )

    def _autoscaling(self) -> None:
        old = {signal.metric: signal for signal in self.old.autoscaling}
        new = {signal.metric: signal for signal in self.new.autoscaling}
        for metric in sorted(new.keys() - old.keys()):
            self.add(
                kinds.SIGNAL_ADDED,
                Area.AUTOSCALING,
                _signal_name(new[metric]),
                f"autoscaling[{metric}]",
                None,
                _signal(new[metric]),
                f"{_signal_name(new[metric])} can drive an HPA ({new[metric].kind.value} metric)",
            )
        for metric in sorted(old.keys() - new.keys()):
            self.add(
                kinds.SIGNAL_REMOVED,
                Area.AUTOSCALING,
                _signal_name(old[metric]),
                f"autoscaling[{metric}]",
                _signal(old[metric]),
                None,
                f"{_signal_name(old[metric])} is no longer an autoscaling signal: an HPA on it shows <unknown>"
                " once its adapter rule is regenerated",
            )
        for metric in sorted(old.keys() & new.keys()):
            before, after = _signal(old[metric]), _signal(new[metric])
            subject, path = _signal_name(new[metric]), f"autoscaling[{metric}]"
            for field_name in _SIGNAL_READS:
                if before.get(field_name) != after.get(field_name):
                    self.add(
                        kinds.SIGNAL_CHANGED,
                        Area.AUTOSCALING,
                        subject,
                        f"{path}.{field_name}",
                        before.get(field_name),
                        after.get(field_name),
                        f"the {field_name} of {subject} changed: the adapter serves a different metric or query, and"
                        " HPAs written against the old one lose it",
                    )
            for field_name in _SIGNAL_TUNING:
                if before.get(field_name) != after.get(field_name):
                    self.add(
                        kinds.SIGNAL_TUNED,
                        Area.AUTOSCALING,
                        subject,
                        f"{path}.{field_name}",
                        before.get(field_name),
                        after.get(field_name),
                        f"the {field_name} of {subject} changed: the HPA scales differently on the same metric",
                    )


_SIGNAL_READS = ("kind", "name", "selector", "rate_window", "scale_target", "resources", "described_object")
_SIGNAL_TUNING = ("target", "min_replicas", "max_replicas", "behavior", "smoothing")


def _signal(signal: AutoscalingSignal) -> dict[str, JsonValue]:
    return {
        "kind": _json(signal.kind),
        "name": signal.name,
        "selector": _json(signal.selector),
        "rate_window": signal.rate_window,
        "scale_target": _json([signal.scale_target, signal.scale_target_kind, signal.scale_target_api_version]),
        "target": _json({"type": signal.target_type, "value": signal.target_value}),
        "min_replicas": signal.min_replicas,
        "max_replicas": signal.max_replicas,
        "behavior": _json(signal.behavior),
        "resources": _json(signal.resources),
        "described_object": _json(asdict(signal.described_object) if signal.described_object else None),
        "smoothing": _json(asdict(signal.smoothing) if signal.smoothing else None),
    }


def _unit_of(unit: str | None, metric: str) -> str:
    return unit or f"{metric}'s unit"


def _signal_name(signal: AutoscalingSignal) -> str:
    return signal.name or signal.metric


def _invariant(invariant: Invariant) -> dict[str, JsonValue]:
    return {
        key: value
        for key, value in (
            ("ratio", _json(invariant.ratio)),
            ("max_deviation", invariant.max_deviation),
            ("present", invariant.present),
        )
        if value is not None
    }
