"""The engine's finding messages, by template name: the compiled core (``otel_contract._core``) hands
back a template name and its arguments, and they are formatted here, in Python, once per finding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_contract.patterns import Pattern


def both_present(key: str, target: str) -> str:
    return f"both {key!r} and {target!r} are present; kept {target!r}, dropped the legacy key"


def not_convertible(key: str, wanted: str, current: Any) -> str:
    return f"attribute {key!r} must be {wanted}; {current!r} cannot be converted"


def resource_missing(key: str) -> str:
    return f"resource lacks required attribute {key!r}"


def resource_not_allowed(key: str, value: Any, allowed: frozenset[Any]) -> str:
    shown = ", ".join(sorted(map(str, allowed)))
    return f"resource attribute {key!r} is {value!r}; allowed: {shown}"


def resource_no_match(key: str, value: Any, pattern: Pattern) -> str:
    return f"resource attribute {key!r} is {value!r}; it must match {pattern.pattern!r}"


_TEMPORALITY_NAMES = {0: "unspecified", 1: "delta", 2: "cumulative"}
_MAX_EXPLICIT_BOUNDS = 4096


def _retired(name: str, stability: str, replaced_by: str | None) -> str:
    replacement = f"; use {replaced_by!r}" if replaced_by else ""
    return f"{name!r} is {stability}{replacement}"


def _temporality(name: str, wanted: str, got: int) -> str:
    shown = _TEMPORALITY_NAMES.get(got) or f"{got}, which is no OTLP temporality"
    return f"{name!r} must have {wanted} temporality, got {shown}"


def _missing(key: str, role: str | None) -> str:
    return f"a data point lacks required attribute {key!r}" + (f" ({role})" if role else "")


def _identity(pairs: tuple[tuple[str, Any], ...]) -> str:
    return f"two series collapsed into one identity {dict(pairs)!r}; kept the first"


# Templates whose arguments are all in the core's answer (``with_patterns`` adds the contract's
# patterns to the others).
TEMPLATES: dict[str, Callable[..., str]] = {
    "attribute.both_present": both_present,
    "attribute.not_convertible": not_convertible,
    "resource.missing": resource_missing,
    "metric.alias": lambda name, canonical: f"{name!r} is a deprecated alias of {canonical!r}; renamed",
    "metric.retired": _retired,
    "metric.type": lambda name, wanted, got: f"{name!r} must be a {wanted}, got {got}",
    "metric.monotonic": lambda name, monotonic: (
        f"{name!r} must be a {'monotonic' if monotonic else 'non-monotonic'} sum"
    ),
    "metric.temporality": _temporality,
    "metric.unit_mismatch": lambda name, arrived, target, why: (
        f"{name!r} arrived in {arrived!r}, which cannot be converted to {target!r}{why}"
    ),
    "metric.unknown": lambda name: f"{name!r} is neither a contract metric nor an alias",
    "metric.missing": _missing,
    "metric.forbidden": lambda key: f"a data point carries forbidden attribute {key!r}",
    "metric.not_allowed": lambda key, value: f"{key}={value!r} is not an allowed value",
    "metric.identity": _identity,
    "metric.cardinality": lambda budget: f"a new series beyond the budget of {budget} series",
    "point.counter": lambda value: f"counter value {value!r} is not a non-negative number",
    "point.too_many_bounds": lambda n: f"{n} explicit bounds, more than the {_MAX_EXPLICIT_BOUNDS} allowed",
    "point.bucket_counts": lambda counts, bounds: f"{counts} bucket counts for {bounds} bounds (need bounds + 1)",
    "point.bucket_total": lambda total, count: f"bucket counts add up to {total}, not to count {count}",
    "point.bounds_order": lambda: "explicit bounds are not strictly increasing",
    "point.histogram_nan": lambda: "histogram sum is NaN",
    "point.scale": lambda scale: f"scale {scale} is outside the OTLP range -10..20",
    "point.exponential_total": lambda total, count: (
        f"bucket counts and zero count add up to {total}, not to count {count}"
    ),
    "point.quantile_range": lambda q: f"quantile {q!r} is outside [0, 1]",
    "point.quantile_order": lambda: "quantile values decrease as quantiles grow",
    "point.summary_nan": lambda: "summary sum is NaN",
    "convert.double": lambda value, unit: f"{value!r} converted to {unit!r} is beyond the range of a double",
    "convert.int64": lambda value, unit: f"{value} converted to {unit!r} is beyond the int64 range",
    "convert.offsets": lambda unit: f"its bucket offsets converted to {unit!r} are beyond the int32 range",
}


def with_patterns(template: str, args: tuple[Any, ...], patterns: list[Pattern], contract: Any) -> str:
    """The messages that show a contract pattern: the core names it by its index in ``patterns``."""
    if template == "metric.name_pattern":
        (name,) = args
        return f"metric name {name!r} does not match {contract.metric_pattern.pattern!r}"
    if template == "metric.name_rule":
        name, index = args
        rule = contract.name_rules[index]
        why = f": {rule.message}" if rule.message else ""
        return f"metric name {name!r} does not match {rule.pattern.pattern!r}{why}"
    key, value, index = args
    return f"{key}={value!r} does not match {patterns[index].pattern!r}"
