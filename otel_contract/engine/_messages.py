"""The engine's finding messages, by template name: the Python engine and the compiled core
(``otel_contract._core``, which hands back a template name and its arguments) format them here, so a
finding reads the same whichever engine found it."""

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


# Templates whose arguments are all in the core's answer; the resource constraint messages also need
# the contract's allowed values or pattern, which the native face adds.
TEMPLATES: dict[str, Callable[..., str]] = {
    "attribute.both_present": both_present,
    "attribute.not_convertible": not_convertible,
    "resource.missing": resource_missing,
}
