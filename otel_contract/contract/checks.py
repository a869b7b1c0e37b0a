"""Semantic checks of a contract: what the JSON Schema cannot express.

Each check is a function that looks at the model and reports through a ``Reporter``, which turns
a key path into ``file:line:column``. ``CHECKS`` lists those about the contract model alone; the
checks that need the compat shims or the autoscaling signals, and the list of every check, are one
layer up, in loading.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from otel_contract import rules, units
from otel_contract.contract.model import SEMVER, Contract, Stability
from otel_contract.contract.yaml_source import format_path, locate
from otel_contract.findings import Finding
from otel_contract.patterns import Pattern, PatternError, compile_pattern
from otel_contract.rules import Rule

Path = tuple[str | int, ...]


@dataclass
class Reporter:
    """Collects findings, locating each key path in the merged document."""

    document: Any
    today: date
    findings: list[Finding] = field(default_factory=list)

    def report(
        self,
        rule: Rule,
        path: Path,
        message: str,
        *,
        metric: str | None = None,
        attribute: str | None = None,
        key: bool = False,
    ) -> None:
        self.findings.append(
            Finding.of(
                rule,
                message,
                location=locate(self.document, path, key=key),
                path=format_path(path),
                metric=metric,
                attribute=attribute,
            )
        )


Check = Callable[[Contract, Reporter], None]


def _check_version(contract: Contract, out: Reporter) -> None:
    if not SEMVER.match(contract.version):
        out.report(
            rules.CONTRACT_VERSION,
            ("version",),
            f"version {contract.version!r} is not a semantic version MAJOR.MINOR.PATCH (e.g. 1.4.0)",
        )


def _check_metric_names(contract: Contract, out: Reporter) -> None:
    seen: dict[str, int] = {}
    owner_of_alias: dict[str, str] = {}
    metric_names = {metric.name for metric in contract.metrics}
    for index, metric in enumerate(contract.metrics):
        if metric.name in seen:
            out.report(
                rules.DUPLICATE_METRIC,
                ("metrics", index, "name"),
                f"metric {metric.name!r} is already defined at metrics[{seen[metric.name]}]",
                metric=metric.name,
            )
        else:
            seen[metric.name] = index
        for alias_index, alias in enumerate(metric.aliases):
            path: Path = ("metrics", index, "aliases", alias_index, "name")
            if alias.name in metric_names:
                out.report(
                    rules.ALIAS_CONFLICT,
                    path,
                    f"alias {alias.name!r} of {metric.name!r} is also the name of a contract metric",
                    metric=metric.name,
                )
            elif alias.name in owner_of_alias:
                out.report(
                    rules.ALIAS_CONFLICT,
                    path,
                    f"alias {alias.name!r} of {metric.name!r} is already an alias of {owner_of_alias[alias.name]!r}",
                    metric=metric.name,
                )
            else:
                owner_of_alias[alias.name] = metric.name


def _regexes(contract: Contract) -> Iterator[tuple[Path, str]]:
    naming = contract.naming
    if naming.metric_pattern is not None:
        yield ("naming", "metric_pattern"), naming.metric_pattern
    if naming.attribute_pattern is not None:
        yield ("naming", "attribute_pattern"), naming.attribute_pattern
    for index, rule in enumerate(naming.rules):
        yield ("naming", "rules", index, "match"), rule.match
        yield ("naming", "rules", index, "pattern"), rule.pattern
    for key, spec in contract.resource.attributes.items():
        if spec.pattern is not None:
            yield ("resource", "attributes", key, "pattern"), spec.pattern
    for index, metric in enumerate(contract.metrics):
        for key, pattern in metric.attributes.patterns.items():
            yield ("metrics", index, "attributes", "patterns", key), pattern


def _check_regexes(contract: Contract, out: Reporter) -> None:
    for path, pattern in _regexes(contract):
        try:
            compile_pattern(pattern)
        except PatternError as error:
            out.report(
                rules.INVALID_PATTERN,
                path,
                f"regex {pattern!r} does not compile: {error} (contract patterns are RE2 syntax, as in Prometheus)",
            )


def _compiled_or_none(pattern: str | None) -> Pattern | None:
    try:
        return compile_pattern(pattern) if pattern else None
    except PatternError:
        return None  # reported by _check_regexes


def _check_naming(contract: Contract, out: Reporter) -> None:
    metric_pattern = _compiled_or_none(contract.naming.metric_pattern)
    name_rules = [
        (match, pattern, rule.message)
        for rule in contract.naming.rules
        if (match := _compiled_or_none(rule.match)) and (pattern := _compiled_or_none(rule.pattern))
    ]
    for index, metric in enumerate(contract.metrics):
        path: Path = ("metrics", index, "name")
        if metric_pattern and not metric_pattern.matches(metric.name):
            out.report(
                rules.METRIC_NAME,
                path,
                f"metric name {metric.name!r} does not match naming.metric_pattern {metric_pattern.pattern!r}",
                metric=metric.name,
            )
        for match, pattern, message in name_rules:
            if match.matches(metric.name) and not pattern.matches(metric.name):
                why = f": {message}" if message else ""
                out.report(
                    rules.METRIC_NAME,
                    path,
                    f"metric name {metric.name!r} matches {match.pattern!r} but not {pattern.pattern!r}{why}",
                    metric=metric.name,
                )
    attribute_pattern = _compiled_or_none(contract.naming.attribute_pattern)
    if attribute_pattern:
        for index, metric in enumerate(contract.metrics):
            for section in ("required", "optional"):
                for position, key in enumerate(getattr(metric.attributes, section)):
                    if not attribute_pattern.matches(key):
                        out.report(
                            rules.METRIC_NAME,
                            ("metrics", index, "attributes", section, position),
                            f"attribute key {key!r} does not match naming.attribute_pattern"
                            f" {attribute_pattern.pattern!r}",
                            metric=metric.name,
                            attribute=key,
                        )


def _check_units(contract: Contract, out: Reporter) -> None:
    for index, metric in enumerate(contract.metrics):
        metric_unit_ok = False
        if metric.unit is not None:
            try:
                units.parse_unit(metric.unit)
                metric_unit_ok = True
            except units.UnitError as error:
                out.report(rules.INVALID_UNIT, ("metrics", index, "unit"), str(error), metric=metric.name)
        for alias_index, alias in enumerate(metric.aliases):
            if alias.unit is None:
                continue
            path: Path = ("metrics", index, "aliases", alias_index, "unit")
            try:
                units.parse_unit(alias.unit)
            except units.UnitError as error:
                out.report(rules.INVALID_UNIT, path, str(error), metric=metric.name)
                continue
            if metric.unit is None:
                out.report(
                    rules.UNIT_MISMATCH,
                    path,
                    f"alias {alias.name!r} has unit {alias.unit!r} but {metric.name!r} declares no unit to convert to",
                    metric=metric.name,
                )
            elif metric_unit_ok and not units.is_convertible(alias.unit, metric.unit):
                out.report(
                    rules.UNIT_MISMATCH,
                    path,
                    f"alias {alias.name!r} in {alias.unit!r} cannot be converted to {metric.name!r} in {metric.unit!r}",
                    metric=metric.name,
                )


def _check_attribute_sets(contract: Contract, out: Reporter) -> None:
    for index, metric in enumerate(contract.metrics):
        forbidden = set(metric.attributes.forbidden)
        for section in ("required", "optional"):
            for position, key in enumerate(getattr(metric.attributes, section)):
                if key in forbidden:
                    out.report(
                        rules.ATTRIBUTE_CONFLICT,
                        ("metrics", index, "attributes", section, position),
                        f"attribute {key!r} of {metric.name!r} is both {section} and forbidden",
                        metric=metric.name,
                        attribute=key,
                    )
        if metric.max_series is not None and metric.max_series <= 0:
            out.report(
                rules.INVALID_BUDGET,
                ("metrics", index, "max_series"),
                f"max_series of {metric.name!r} is {metric.max_series}; a budget must allow at least 1 series",
                metric=metric.name,
            )


def _check_renames(contract: Contract, out: Reporter) -> None:
    global_renames = contract.attributes.renames
    # (where the renames are written, those renames, what applies together with them, metric)
    sections: list[tuple[Path, Mapping[str, str], Mapping[str, str], str | None]] = [
        (("attributes", "renames"), global_renames, global_renames, None)
    ]
    for index, metric in enumerate(contract.metrics):
        own = metric.attributes.renames
        if own:
            sections.append((("metrics", index, "attributes", "renames"), own, {**global_renames, **own}, metric.name))
    for base, own, effective, metric_name in sections:
        for legacy in own:
            chain = [legacy]
            target = effective[legacy]
            while target in effective and target not in chain:
                chain.append(target)
                target = effective[target]
            if len(chain) == 1 and target != legacy:
                continue
            steps = " -> ".join([*chain, target])
            kind = "a cycle" if target in chain else "a chain"
            out.report(
                rules.RENAME_CHAIN,
                (*base, legacy),
                f"attribute renames form {kind} ({steps}); rename every legacy key straight to the canonical key",
                metric=metric_name,
                attribute=legacy,
                key=True,
            )


def _check_metadata(contract: Contract, out: Reporter) -> None:
    for index, metric in enumerate(contract.metrics):
        if metric.stability is not Stability.STABLE:
            continue
        for field_name in ("owner", "description"):
            if not getattr(metric, field_name):
                out.report(
                    rules.METRIC_METADATA,
                    ("metrics", index),
                    f"stable metric {metric.name!r} has no {field_name}",
                    metric=metric.name,
                )
        for field_name in ("collection", "precision"):
            if getattr(metric, field_name) is None:
                out.report(
                    rules.RFC_FIELD,
                    ("metrics", index),
                    f"stable metric {metric.name!r} has no {field_name} (RFC field reviewers rely on)",
                    metric=metric.name,
                )


CHECKS: tuple[Check, ...] = (
    _check_version,
    _check_metric_names,
    _check_regexes,
    _check_naming,
    _check_units,
    _check_attribute_sets,
    _check_renames,
    _check_metadata,
)


def run_checks(contract: Contract, document: Any, today: date, checks: Iterable[Check]) -> list[Finding]:
    reporter = Reporter(document, today)
    for check in checks:
        check(contract, reporter)
    return reporter.findings
