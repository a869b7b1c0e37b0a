"""Findings: what a check or the engine reports, with where it came from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from otel_contract.rules import Action, Level, Rule


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a source file; ``line`` and ``column`` are 1-based like compilers print them."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        if not self.column:  # a JSON-lines record: the line is the whole place
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported problem.

    ``path`` is the key path inside a contract (``metrics[3].attributes.values.http.method``);
    ``metric`` and ``attribute`` name what the finding is about when that is known. ``action`` is
    what the engine did with the data (reject or flag); None for findings about files.
    """

    rule: Rule
    message: str
    location: Location | None = None
    path: str = ""
    metric: str | None = None
    attribute: str | None = None
    count: int = 1
    level: Level = field(default=Level.ERROR)
    action: Action | None = None

    @classmethod
    def of(
        cls,
        rule: Rule,
        message: str,
        *,
        location: Location | None = None,
        path: str = "",
        metric: str | None = None,
        attribute: str | None = None,
        count: int = 1,
        level: Level | None = None,
        action: Action | None = None,
    ) -> Finding:
        """A finding at the rule's default level unless ``level`` overrides it."""
        return cls(rule, message, location, path, metric, attribute, count, level or rule.level, action)

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What the finding is about, whatever its count and source: (rule slug, metric, attribute).

        A run merges findings with one key (their counts added); a baseline accepts findings by key.
        """
        return (self.rule.slug, self.metric, self.attribute)

    @property
    def source(self) -> str:
        return str(self.location) if self.location else ""

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location or Location("")
        return (loc.file, loc.line, loc.column, self.rule.slug)


def count_by_level(findings: Iterable[Finding]) -> dict[Level, int]:
    """How many findings there are at each level (every level present, zero included)."""
    counts: Counter[Level] = Counter()
    for finding in findings:
        counts[finding.level] += finding.count
    return {level: counts[level] for level in sorted(Level, reverse=True)}


def worst_level(findings: Iterable[Finding]) -> Level | None:
    return max((finding.level for finding in findings), default=None)
