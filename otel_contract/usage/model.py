"""What ``usage`` extracts from dashboards and rule files: queries, where they sit, what they read."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cache


class MatchOp(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class NameMatcher:
    """One ``__name__`` matcher; regexes are fully anchored, as Prometheus anchors them."""

    op: MatchOp
    value: str

    def matches(self, name: str) -> bool:
        if self.op is MatchOp.EQUAL:
            return name == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return name != self.value
        found = _compiled(self.value).fullmatch(name) is not None
        return found if self.op is MatchOp.REGEX else not found


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error:
        # RE2 syntax Python does not know: match nothing rather than guess.
        return re.compile(r"(?!)")


@dataclass(frozen=True, slots=True)
class NameSelector:
    """The metric names one vector selector reads.

    ``alternatives`` holds one tuple of name matchers per ``or`` branch of the selector (one branch
    for a plain selector); a branch without name matchers (``{job="x"}``) reads every name.
    """

    alternatives: tuple[tuple[NameMatcher, ...], ...]

    @classmethod
    def exact(cls, name: str) -> NameSelector:
        return cls(((NameMatcher(MatchOp.EQUAL, name),),))

    def matches(self, name: str) -> bool:
        return any(all(m.matches(name) for m in branch) for branch in self.alternatives)

    @property
    def any_name(self) -> bool:
        """Whether the selector names no metric at all (it reads every series its labels select)."""
        return any(not branch for branch in self.alternatives)


class SourceKind(enum.Enum):
    PANEL = "panel"
    VARIABLE = "variable"
    ANNOTATION = "annotation"
    RULE = "rule"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a query sits: a dashboard panel, variable or annotation, or a rule in a rule file."""

    kind: SourceKind
    file: str
    dashboard: str | None = None  # the dashboard's title
    row: str | None = None
    panel: str | None = None
    ref_id: str | None = None
    variable: str | None = None
    annotation: str | None = None
    group: str | None = None
    rule: str | None = None  # the alert's or the record's name
    rule_type: str | None = None  # "alert" | "record"

    def describe(self) -> str:
        if self.kind is SourceKind.RULE:
            return f"{self.file}: group {self.group!r}, {self.rule_type} {self.rule}"
        where = f"dashboard {self.dashboard!r} ({self.file})"
        if self.kind is SourceKind.VARIABLE:
            return f"{where}: variable ${self.variable}"
        if self.kind is SourceKind.ANNOTATION:
            return f"{where}: annotation {self.annotation!r}"
        row = f"row {self.row!r}, " if self.row else ""
        ref = f" [{self.ref_id}]" if self.ref_id else ""
        return f"{where}: {row}panel {self.panel!r}{ref}"


@dataclass(frozen=True, slots=True)
class Query:
    """A query that parsed, with the names it reads."""

    source: Source
    text: str
    selectors: tuple[NameSelector, ...]


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A query that could not be read: reported, never dropped silently."""

    source: Source
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Derivation:
    """A series made from others: a recording rule's ``record``, or a compat shim's."""

    record: str
    selectors: tuple[NameSelector, ...]
    label: str  # how a use through it is shown: "recording rule X (file)" or "compat shim X"


@dataclass(frozen=True, slots=True)
class Scan:
    """Everything read from a set of dashboards and rule files."""

    queries: tuple[Query, ...] = ()
    unparsed: tuple[Unparsed, ...] = ()
    derivations: tuple[Derivation, ...] = ()
    dashboards: tuple[str, ...] = ()  # files read as dashboards
    panels: int = 0
    rule_files: tuple[str, ...] = ()
    rules: int = 0
    skipped: tuple[str, ...] = ()  # "file: why", for files that were not dashboards/rule files

    def __add__(self, other: Scan) -> Scan:
        return Scan(
            queries=self.queries + other.queries,
            unparsed=self.unparsed + other.unparsed,
            derivations=self.derivations + other.derivations,
            dashboards=self.dashboards + other.dashboards,
            panels=self.panels + other.panels,
            rule_files=self.rule_files + other.rule_files,
            rules=self.rules + other.rules,
            skipped=self.skipped + other.skipped,
        )
