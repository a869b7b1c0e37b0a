"""What ``diff`` finds: changes, and the semver gate over them."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from otel_contract.diff.kinds import Area, ChangeKind, Impact
from otel_contract.diff.version import Bump, bump_between, next_version, required_bump

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    area: Area
    subject: str  # what changed, as a reviewer names it: "http.method on http_server_duration_seconds"
    path: str  # where in the contract: "metrics[http_server_duration_seconds].attributes.values.http.method"
    old: JsonValue
    new: JsonValue
    reason: str  # the consequence, in words

    @property
    def impact(self) -> Impact:
        return self.kind.impact

    def sort_key(self) -> tuple[int, int, str, str]:
        return (-self.impact, list(Area).index(self.area), self.subject, self.path)


@dataclass(frozen=True, slots=True)
class Side:
    """One of the two contracts compared."""

    name: str
    version: str
    source: str


class FailOn(enum.Enum):
    """What makes ``diff`` exit 1."""

    BREAKING = "breaking"  # the semver gate fails
    ANY = "any"  # the gate fails, or anything changed at all
    NONE = "none"  # never: report only


@dataclass(frozen=True, slots=True)
class VersionGate:
    """Whether the version step covers the changes (a breaking change needs a major step, any change a step)."""

    old: str
    new: str
    actual: Bump
    required: Bump
    problems: tuple[str, ...]  # why the gate fails; empty when it passes
    notes: tuple[str, ...]  # advice that does not fail the gate

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def suggested(self) -> str:
        """The version the changes need, from the old one."""
        return next_version(self.old, self.required)


@dataclass(frozen=True, slots=True)
class ContractDiff:
    old: Side
    new: Side
    changes: tuple[Change, ...]
    gate: VersionGate

    def count(self, impact: Impact) -> int:
        return sum(1 for change in self.changes if change.impact is impact)

    @property
    def impact(self) -> Impact | None:
        """The most serious impact among the changes, None when nothing changed."""
        return max((change.impact for change in self.changes), default=None)

    @property
    def required_bump(self) -> Bump:
        return self.gate.required

    def fails(self, fail_on: FailOn) -> bool:
        if fail_on is FailOn.NONE:
            return False
        return not self.gate.passed or (fail_on is FailOn.ANY and bool(self.changes))


def version_gate(old: str, new: str, changes: Sequence[Change]) -> VersionGate:
    impact = max((change.impact for change in changes), default=None)
    required = required_bump(impact, old)
    actual = bump_between(old, new)
    problems: list[str] = []
    notes: list[str] = []
    breaking = sum(1 for change in changes if change.impact is Impact.BREAKING)
    needed = next_version(old, required)
    if actual is Bump.DOWNGRADE:
        problems.append(f"the version went down: {old} -> {new}")
    elif changes and actual is Bump.NONE:
        problems.append(f"{_count(len(changes), 'change')} but the version is still {old}: it needs at least {needed}")
    elif breaking and actual < required:
        step = "major" if required is Bump.MAJOR else "minor (below 1.0.0)"
        verb = "needs" if breaking == 1 else "need"
        problems.append(
            f"{_count(breaking, 'breaking change')} {verb} a {step} version step: {old} -> {needed}, "
            f"not {new} (a {actual.label} step)"
        )
    elif changes and actual < required:
        notes.append(f"compatible additions take a minor step by semver ({old} -> {needed}); {new} is a patch step")
    if not changes and actual > Bump.NONE:
        notes.append(f"the version moved {old} -> {new} with no change to the contract")
    return VersionGate(old, new, actual, required, tuple(problems), tuple(notes))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
