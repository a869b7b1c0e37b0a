"""What every area's differ shares: recording a change, its JSON values, and the words for a rule's fate."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from otel_contract import rules
from otel_contract.contract.compiled import runtime_actions
from otel_contract.contract.model import Contract
from otel_contract.diff import kinds
from otel_contract.diff.kinds import Area, ChangeKind
from otel_contract.diff.model import Change, JsonValue
from otel_contract.rules import Action, Rule

Actions = Mapping[Rule, Action]

_STRICTNESS = {Action.IGNORE: 0, Action.FLAG: 1, Action.REJECT: 2}


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


class _Recorder:
    """The two contracts, the new one's actions, and the changes found so far; the areas' differs extend it."""

    def __init__(self, old: Contract, new: Contract) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        # The new contract's runtime actions, not its compiled form: a contract whose patterns do not
        # compile can still be compared (its errors are mentioned, not fatal).
        self._new_actions = runtime_actions(new)

    def add(self, kind: ChangeKind, area: Area, subject: str, path: str, old: Any, new: Any, reason: str) -> None:
        self.changes.append(Change(kind, area, subject, path, _json(old), _json(new), reason))

    # --- actions: shared by the contract's policy, the defaults and each metric's policy ------------------

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
