"""The contract-wide sections compared: identity, naming, defaults, policy, global attributes, resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_contract import rules
from otel_contract.contract.model import ResourceAction, ResourceActionKind
from otel_contract.diff import kinds
from otel_contract.diff._attributes import _AttributeDiffer
from otel_contract.diff._changes import _fate, _json, _Scope
from otel_contract.diff.kinds import Area


class _SectionDiffer(_AttributeDiffer):
    """The contract-wide sections: identity, naming, defaults and policy, global attributes, resource."""

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
