"""Finding aggregation and action resolution for one engine run.

Findings are aggregated per (rule, metric, attribute) with a count and the first message as the
example, so a request with 10,000 points and one systematic error yields one finding, count 10000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from otel_contract.findings import Finding, Location
from otel_contract.rules import Action, Rule

_Key = tuple[Rule, str | None, str | None]


@dataclass
class _Entry:
    message: str
    count: int
    action: Action


@dataclass
class FindingSink:
    source: Location | None  # where the request came from; None for live traffic
    audit: bool
    _entries: dict[_Key, _Entry] = field(default_factory=dict)
    reported: int = 0  # findings recorded (not ignored): tells whether a check found anything

    def report(
        self,
        rule: Rule,
        actions: Mapping[Rule, Action],
        message: str,
        *,
        metric: str | None = None,
        attribute: str | None = None,
        count: int = 1,
    ) -> bool:
        """Record a finding; True when the data it is about must be rejected."""
        action = actions[rule]
        if action is Action.IGNORE:
            return False
        self.reported += 1
        rejects = action is Action.REJECT and not self.audit
        key = (rule, metric, attribute)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(message, count, Action.REJECT if rejects else Action.FLAG)
        else:
            entry.count += count
        return rejects

    def findings(self) -> tuple[Finding, ...]:
        return tuple(
            Finding.of(
                rule,
                entry.message,
                location=self.source,
                metric=metric,
                attribute=attribute,
                count=entry.count,
                action=entry.action,
            )
            for (rule, metric, attribute), entry in self._entries.items()
        )
