"""Resource attributes: the contract's actions (the Collector's resource processor semantics), then
its requirements. The same code serves metrics, traces and logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_contract import rules
from otel_contract.contract.compiled import CompiledContract
from otel_contract.contract.model import ResourceAction, ResourceActionKind
from otel_contract.engine._messages import resource_missing, resource_no_match, resource_not_allowed
from otel_contract.engine._sink import FindingSink
from otel_contract.engine._values import scalar, set_scalar

_SETTERS = frozenset({ResourceActionKind.INSERT, ResourceActionKind.UPDATE, ResourceActionKind.UPSERT})


def _index(attributes: Any, key: str) -> int:
    for index, kv in enumerate(attributes):
        if kv.key == key:
            return index
    return -1


def _apply(action: ResourceAction, attributes: Any, env: Mapping[str, str]) -> bool:
    """Apply one action in place; True when it changed something."""
    at = _index(attributes, action.key)
    if action.action is ResourceActionKind.DELETE:
        if at < 0:
            return False
        del attributes[at]
        return True
    if action.action is ResourceActionKind.RENAME:
        source = _index(attributes, action.from_attribute or "")
        if source < 0:
            return False
        if at < 0:
            attributes[source].key = action.key
        else:  # the canonical key is already there: it wins, the legacy one goes
            del attributes[source]
        return True
    if action.action in _SETTERS:
        if (action.action is ResourceActionKind.INSERT and at >= 0) or (
            action.action is ResourceActionKind.UPDATE and at < 0
        ):
            return False
        if action.from_attribute is not None:
            source = _index(attributes, action.from_attribute)
            if source < 0:
                return False
            new_value = attributes[source].value
            if at >= 0 and attributes[at].value == new_value:
                return False
            target = attributes[at] if at >= 0 else attributes.add(key=action.key)
            target.value.CopyFrom(new_value)
            return True
        new = env.get(action.from_env) if action.from_env is not None else action.value
        if new is None:
            return False  # unset environment variable: the action is skipped
        if at >= 0 and scalar(attributes[at].value) == new and type(scalar(attributes[at].value)) is type(new):
            return False
        target = attributes[at] if at >= 0 else attributes.add(key=action.key)
        set_scalar(target.value, new)
        return True
    return False


def process_resource(
    resource: Any, contract: CompiledContract, env: Mapping[str, str], sink: FindingSink
) -> tuple[bool, bool]:
    """Actions, then requirements (renames of resource keys are ``rename`` actions). Returns (changed, reject)."""
    attributes = resource.attributes
    changed = False
    for action in contract.contract.resource.actions:
        changed |= _apply(action, attributes, env)
    actions = contract.actions
    reject = False
    if contract.resource_required or contract.resource_constraints:
        values = {kv.key: kv.value for kv in attributes}
        for key in contract.resource_required:
            if key not in values:
                reject |= sink.report(rules.MISSING_RESOURCE_ATTRIBUTE, actions, resource_missing(key), attribute=key)
        for key, constraint in contract.resource_constraints.items():
            any_value = values.get(key)
            if any_value is None:
                continue
            value = scalar(any_value)
            problem = None
            if constraint.allowed is not None and value not in constraint.allowed:
                problem = resource_not_allowed(key, value, constraint.allowed)
            elif constraint.pattern is not None and not (isinstance(value, str) and constraint.pattern.matches(value)):
                problem = resource_no_match(key, value, constraint.pattern)
            if problem:
                reject |= sink.report(rules.RESOURCE_ATTRIBUTE_VALUE, actions, problem, attribute=key)
    return changed, reject
