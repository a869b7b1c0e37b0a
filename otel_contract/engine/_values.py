"""OTLP attribute values: read them as Python scalars, write them, coerce them, rename keys.

Shared by every signal: metric data points, spans, span events and links, log records, resources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otel_contract import rules
from otel_contract.contract.model import AttributeType, Scalar
from otel_contract.engine._messages import both_present, not_convertible

# reporter(rule, attribute, message) -> True when the data must be rejected
Reporter = Callable[[rules.Rule, str, str], bool]

FIELD_OF_TYPE: Mapping[AttributeType, str] = {
    AttributeType.STRING: "string_value",
    AttributeType.INT: "int_value",
    AttributeType.DOUBLE: "double_value",
    AttributeType.BOOL: "bool_value",
}
SCALAR_FIELDS = frozenset(FIELD_OF_TYPE.values())
# AnyValue.int_value is an int64: a coerced integer outside it does not convert.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def scalar(value: AnyValue) -> Scalar | None:
    """The value as a Python scalar; None for empty, array, kvlist and bytes values."""
    kind = value.WhichOneof("value")
    if kind in SCALAR_FIELDS:
        result: Scalar = getattr(value, kind)
        return result
    return None


def set_scalar(value: AnyValue, new: Scalar) -> None:
    # bool before int: bool is an int subclass in Python.
    if isinstance(new, bool):
        value.bool_value = new
    elif isinstance(new, int):
        value.int_value = new
    elif isinstance(new, float):
        value.double_value = new
    else:
        value.string_value = new


def coerced(current: Scalar, target: AttributeType) -> Scalar | None:
    """``current`` converted to ``target``, or None when it does not convert without loss."""
    try:
        if target is AttributeType.INT:
            number = None
            if isinstance(current, str):
                number = int(current.strip(), 10)
            elif isinstance(current, float) and current.is_integer():
                number = int(current)
            return number if number is not None and INT64_MIN <= number <= INT64_MAX else None
        elif target is AttributeType.DOUBLE:
            if isinstance(current, str | int) and not isinstance(current, bool):
                return float(current)
        elif target is AttributeType.BOOL:
            if isinstance(current, str) and current.lower() in ("true", "false"):
                return current.lower() == "true"
        elif target is AttributeType.STRING:
            if isinstance(current, bool):
                return "true" if current else "false"
            return str(current)
    except ValueError:
        return None
    return None


def normalize_attributes(
    attributes: Any,
    renames: Mapping[str, str],
    types: Mapping[str, AttributeType],
    report: Reporter,
) -> tuple[bool, bool]:
    """Rename legacy keys and coerce typed values in a repeated KeyValue field, in place.

    When a legacy key and its canonical key are both present, the canonical one is kept and the
    legacy one dropped (``identity-conflict``). Returns (changed, reject).
    """
    changed = reject = False
    present: set[str] | None = None
    drop: list[int] = []
    for index, kv in enumerate(attributes):
        key = kv.key
        target = renames.get(key)
        if target is not None:
            if present is None:
                present = {item.key for item in attributes}
            if target in present:
                drop.append(index)
                reject |= report(rules.IDENTITY_CONFLICT, target, both_present(key, target))
                continue
            present.discard(key)
            present.add(target)
            kv.key = key = target
            changed = True
        wanted = types.get(key)
        if wanted is not None:
            field = FIELD_OF_TYPE[wanted]
            kind = kv.value.WhichOneof("value")
            if kind != field:
                current = scalar(kv.value)
                new = None if current is None else coerced(current, wanted)
                if new is None:
                    reject |= report(rules.ATTRIBUTE_VALUE, key, not_convertible(key, wanted.value, current))
                else:
                    set_scalar(kv.value, new)
                    changed = True
    for index in reversed(drop):
        del attributes[index]
    return changed or bool(drop), reject
