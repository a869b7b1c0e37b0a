"""JSON Schema errors as findings with file:line:column, key path and did-you-mean hints.

Shared by the contract loader and the sidecar's pipeline config, so both explain a bad key alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any, cast

from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator

from otel_contract.contract.yaml_source import LocDict, format_path, locate, yaml_kind
from otel_contract.findings import Finding, Location
from otel_contract.rules import Rule


def schema_findings(document: Any, display: str, validator: Validator, rule: Rule, *, what: str) -> list[Finding]:
    """Every way ``document`` (parsed with positions) fails ``validator``, as findings of ``rule``."""
    if not isinstance(document, LocDict):
        kind = "empty" if document is None else f"{yaml_kind(document)}, not a mapping"
        loc = getattr(document, "loc", Location(display, 1, 1))
        return [Finding.of(rule, f"{what} is {kind}", location=loc)]
    findings: list[Finding] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        findings.extend(_describe(error, document, rule))
    return findings


def _describe(error: ValidationError, document: Any, rule: Rule) -> Iterator[Finding]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        subschema = cast(Mapping[str, Any], error.schema)
        allowed = set(subschema.get("properties", {}))
        for key in error.instance:
            if key in allowed:
                continue
            key_path = (*path, key)
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(sorted(allowed))}"
            yield Finding.of(
                rule,
                f"unknown key {key!r}{suggestion}",
                location=locate(document, key_path, key=True),
                path=format_path(key_path),
            )
        return
    if error.validator in ("oneOf", "anyOf") and error.context:
        message = _alternatives_message(error)
    else:
        message = _message(error)
    yield Finding.of(
        rule,
        message,
        location=locate(document, path),
        path=format_path(path) or "(top level)",
    )


def _alternatives_message(error: ValidationError) -> str:
    """``oneOf`` of required-key sets reads best as the sets: 'needs exactly one of: a | b + c'."""
    branches = cast(list[Mapping[str, Any]], error.validator_value)
    alternatives: list[list[str] | None] = [branch.get("required") for branch in branches]
    if all(alternatives):
        options = " | ".join(" + ".join(keys or ()) for keys in alternatives)
        quantity = "exactly one of" if error.validator == "oneOf" else "at least one of"
        return f"needs {quantity}: {options}"
    return f"{_message(best_match(error.context))} (no alternative of {error.validator} matched)"


# JSON Schema's type names as a YAML author knows them.
_YAML_WORDS = {
    "object": "a mapping",
    "array": "a sequence",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _message(error: ValidationError) -> str:
    instance = error.instance
    if error.validator == "enum":
        options = [str(option) for option in cast(list[Any], error.validator_value)]
        hint = difflib.get_close_matches(str(instance), options, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"{instance!r} is not one of {', '.join(options)}{suggestion}"
    if error.validator == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [expected]
        expected_text = " or ".join(_YAML_WORDS.get(str(name), str(name)) for name in names)
        # The value itself only when it is a scalar: a collection can be long, and need not be a contract's.
        got = (
            yaml_kind(instance)
            if instance is None or isinstance(instance, dict | list)
            else f"{yaml_kind(instance)} {instance!r}"
        )
        quote_hint = (
            " (quote it: YAML reads it as a number)"
            if expected == "string" and isinstance(instance, int | float)
            else ""
        )
        return f"expected {expected_text}, got {got}{quote_hint}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    return error.message
