"""What the core asks Python, because the answer must be Python's: attribute coercions with Python's
text rules (Unicode digits, underscores, float text) and exact UCUM conversion factors."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from otel_contract import units
from otel_contract.contract.model import AttributeType, Scalar

# AnyValue.int_value is an int64: a coerced integer outside it does not convert.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# A conversion multiplies doubles by the factor's numerator and divides by its denominator; a term
# beyond the double range (a unit such as 'PBy99.By-98') cannot be applied at all.
MAX_FACTOR_TERM = 2**1023


def coerced(current: Scalar, target: AttributeType) -> Scalar | None:
    """``current`` converted to ``target``, or None when it does not convert without loss."""
    try:
        if target is AttributeType.INT:
            number = None
            if isinstance(current, str):
                number = int(current.strip(), 10)
            elif isinstance(current, float) and current.is_integer():
                number = int(current)
            return number if number is not None and _INT64_MIN <= number <= _INT64_MAX else None
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


@lru_cache(maxsize=1024)
def factor(arrived: str, target: str) -> Fraction | None:
    """The exact factor from unit ``arrived`` to ``target``; None when they do not convert."""
    try:
        return units.conversion_factor(arrived, target)
    except units.UnitError:
        return None


def power_of_two(value: Fraction) -> int | None:
    """k when value == 2**k, else None: such a factor scales an exponential histogram exactly."""
    for term, sign in ((value.numerator, 1), (value.denominator, -1)):
        other = value.denominator if sign == 1 else value.numerator
        if other == 1 and term & (term - 1) == 0:
            return sign * (term.bit_length() - 1)
    return None
