"""Parse and convert the UCUM units that telemetry actually uses.

OpenTelemetry semantic conventions and Prometheus naming both assume UCUM
case-sensitive unit codes (``s``, ``ms``, ``By``, ``KiBy/s``, ``{request}``).
A full UCUM implementation is large; this module covers the subset seen in
metrics, and rejects everything else loudly with a hint where the mistake is a
common one (``sec``, ``bytes``, ``MB``).

Grammar (a strict subset of UCUM)::

    unit       := ["/"] component (("." | "/") component)*
    component  := number [annotation]
                | atom [exponent] [annotation]
                | annotation
    atom       := [prefix] symbol          e.g. ms, KiBy, km
    exponent   := ["+" | "-"] digits       e.g. m2, s-1
    annotation := "{" printable-ASCII-without-braces "}"

``.`` and ``/`` have equal precedence and apply left to right, exactly as UCUM
specifies: ``a/b/c`` is ``a/(b.c)`` but ``a/b.c`` is ``(a/b).c``.

Every dimension has a canonical base; :attr:`Unit.factor` is the magnitude in
that base: time ``s``, information ``By``, length ``m``, mass ``g``, current
``A``, temperature ``K``, celsius ``Cel``. Celsius is its own dimension because
``Cel`` to ``K`` is an offset, not a factor, so it cannot be expressed here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["Unit", "UnitError", "conversion_factor", "is_convertible", "parse_unit"]

_Dimensions = tuple[tuple[str, int], ...]


class UnitError(ValueError):
    """A unit string is not valid (supported) UCUM, or two units cannot be converted."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A parsed unit: ``value * factor`` is the value in the canonical base of ``dimensions``."""

    text: str
    factor: Fraction
    dimensions: _Dimensions


class _Atom(NamedTuple):
    factor: Fraction
    dimensions: _Dimensions


_TIME: _Dimensions = (("time", 1),)
# Derived SI units are expressed in base dimensions so that J/s converts to W.
# Mass is based on the gram (UCUM's base), hence the factor 1000 for kg-based units.
_ENERGY: _Dimensions = (("length", 2), ("mass", 1), ("time", -2))
_POWER: _Dimensions = (("length", 2), ("mass", 1), ("time", -3))
_VOLTAGE: _Dimensions = (("current", -1), ("length", 2), ("mass", 1), ("time", -3))

_ATOMS: Mapping[str, _Atom] = MappingProxyType(
    {
        "%": _Atom(Fraction(1, 100), ()),
        "s": _Atom(Fraction(1), _TIME),
        "min": _Atom(Fraction(60), _TIME),
        "h": _Atom(Fraction(3600), _TIME),
        "d": _Atom(Fraction(86400), _TIME),
        "wk": _Atom(Fraction(604800), _TIME),
        "By": _Atom(Fraction(1), (("information", 1),)),
        "bit": _Atom(Fraction(1, 8), (("information", 1),)),
        "Hz": _Atom(Fraction(1), (("time", -1),)),
        "m": _Atom(Fraction(1), (("length", 1),)),
        "g": _Atom(Fraction(1), (("mass", 1),)),
        "A": _Atom(Fraction(1), (("current", 1),)),
        "K": _Atom(Fraction(1), (("temperature", 1),)),
        "Cel": _Atom(Fraction(1), (("celsius", 1),)),
        "J": _Atom(Fraction(1000), _ENERGY),
        "W": _Atom(Fraction(1000), _POWER),
        "V": _Atom(Fraction(1000), _VOLTAGE),
    }
)

_INFO = frozenset({"By", "bit"})

# Prefix -> (scale, atoms accepting it). Deliberately narrower than UCUM, which lets
# every metric atom take every prefix: 'Ms' (megasecond) or 'dBy' are almost always
# typos in telemetry, so refusing them catches more bugs than it blocks.
_PREFIXES: Mapping[str, tuple[Fraction, frozenset[str]]] = MappingProxyType(
    {
        "P": (Fraction(10**15), _INFO),
        "T": (Fraction(10**12), _INFO),
        "G": (Fraction(10**9), _INFO | {"Hz", "W", "J"}),
        "M": (Fraction(10**6), _INFO | {"Hz", "W", "J"}),
        "k": (Fraction(10**3), _INFO | {"s", "m", "g", "Hz", "W", "J", "V", "A"}),
        "c": (Fraction(1, 10**2), frozenset({"m"})),
        "m": (Fraction(1, 10**3), frozenset({"s", "m", "g", "W", "J", "V", "A"})),
        "u": (Fraction(1, 10**6), frozenset({"s", "m", "g", "W", "V", "A"})),
        "n": (Fraction(1, 10**9), frozenset({"s", "m", "g"})),
        "p": (Fraction(1, 10**12), frozenset({"s", "m"})),
        "Ki": (Fraction(2**10), _INFO),
        "Mi": (Fraction(2**20), _INFO),
        "Gi": (Fraction(2**30), _INFO),
        "Ti": (Fraction(2**40), _INFO),
        "Pi": (Fraction(2**50), _INFO),
    }
)


def _build_word_hints() -> Mapping[str, str]:
    # Matched case-insensitively: 'Seconds' and 'SECONDS' are the same mistake.
    words = {
        ("sec", "secs", "second", "seconds"): ("seconds", "s"),
        ("msec", "msecs", "millis", "millisecond", "milliseconds"): ("milliseconds", "ms"),
        ("usec", "usecs", "micros", "microsecond", "microseconds", "\u00b5s", "\u03bcs"): (
            "microseconds",
            "us",
        ),
        ("nsec", "nsecs", "nanos", "nanosecond", "nanoseconds"): ("nanoseconds", "ns"),
        ("mins", "minute", "minutes"): ("minutes", "min"),
        ("hr", "hrs", "hour", "hours"): ("hours", "h"),
        ("day", "days"): ("days", "d"),
        ("week", "weeks"): ("weeks", "wk"),
        ("byte", "bytes", "octet", "octets"): ("bytes", "By"),
        ("bits",): ("bits", "bit"),
        ("percent", "pct", "percentage"): ("percent", "%"),
        ("ratio", "fraction"): ("a dimensionless ratio", "1"),
        ("hertz",): ("hertz", "Hz"),
        ("celsius", "degc", "\u00b0c"): ("degrees Celsius", "Cel"),
        ("kelvin",): ("kelvin", "K"),
        ("watt", "watts"): ("watts", "W"),
        ("joule", "joules"): ("joules", "J"),
        ("volt", "volts"): ("volts", "V"),
        ("amp", "amps", "ampere", "amperes"): ("amperes", "A"),
        ("meter", "meters", "metre", "metres"): ("metres", "m"),
        ("gram", "grams"): ("grams", "g"),
    }
    return MappingProxyType(
        {key: f"UCUM spells {meaning} {code!r}" for keys, (meaning, code) in words.items() for key in keys}
    )


def _build_abbreviation_hints() -> Mapping[str, str]:
    # Matched exactly: in byte/bit abbreviations the case is the only thing telling 'Mb' from 'MB'.
    hints = {
        "B": "UCUM spells bytes 'By' ('B' is the bel)",
        "b": "UCUM spells bits 'bit'",
        "Bps": "UCUM spells bytes per second 'By/s'",
        "bps": "UCUM spells bits per second 'bit/s'",
    }
    for decimal, binary, name, binary_name in (
        ("k", "Ki", "kilo", "kibi"),
        ("M", "Mi", "mega", "mebi"),
        ("G", "Gi", "giga", "gibi"),
        ("T", "Ti", "tera", "tebi"),
        ("P", "Pi", "peta", "pebi"),
    ):
        for spelling in dict.fromkeys((decimal, decimal.upper())):
            hints[spelling + "B"] = (
                f"UCUM spells {name}bytes {decimal + 'By'!r} and {binary_name}bytes {binary + 'By'!r}"
            )
            hints[spelling + "b"] = f"UCUM spells {name}bits {decimal + 'bit'!r}"
            hints[spelling + "Bps"] = f"UCUM spells {name}bytes per second {decimal + 'By/s'!r}"
            hints[spelling + "bps"] = f"UCUM spells {name}bits per second {decimal + 'bit/s'!r}"
        hints[binary + "B"] = f"UCUM spells {binary_name}bytes {binary + 'By'!r}"
        hints[binary + "b"] = f"UCUM spells {binary_name}bits {binary + 'bit'!r}"
    return MappingProxyType(hints)


def _build_spellings() -> Mapping[str, tuple[str, ...]]:
    # Case-folded spelling -> every valid atom spelling with it, to answer 'MS' with 'ms'.
    valid = list(_ATOMS)
    valid += [prefix + atom for prefix, (_, atoms) in _PREFIXES.items() for atom in sorted(atoms)]
    folded: dict[str, list[str]] = {}
    for spelling in valid:
        folded.setdefault(spelling.casefold(), []).append(spelling)
    return MappingProxyType({key: tuple(values) for key, values in folded.items()})


_WORD_HINTS = _build_word_hints()
_ABBREVIATION_HINTS = _build_abbreviation_hints()
_SPELLINGS = _build_spellings()

_ANNOTATION_CHARS = re.compile(r"[!-z|~]+", re.ASCII)  # printable ASCII minus space and braces
_NUMBER = re.compile(r"[0-9]+", re.ASCII)
_ATOM_EXPONENT = re.compile(r"(?P<symbol>[^0-9+\-]+)(?P<exponent>[+-]?[0-9]+)?", re.ASCII)
# Bounds keep hostile input (e.g. 'ms999999999') from building astronomically large Fractions.
_MAX_EXPONENT = 99
_MAX_NUMBER_DIGITS = 18
# Telemetry brings units of its own choosing: without a bound, a unit of a million components costs
# minutes of big-number arithmetic. Real units ('{request}/s', 'KiBy') are far shorter.
MAX_UNIT_LENGTH = 128


def _invalid(text: str, reason: str) -> UnitError:
    return UnitError(f"invalid unit {text!r}: {reason}")


def _split(text: str) -> list[tuple[int, str]]:
    """Split into (sign, component) pairs; sign is -1 for components after '/'."""
    parts: list[tuple[int, str]] = []
    sign = 1
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "{":
            close = text.find("}", i + 1)
            if close < 0:
                raise _invalid(text, f"unclosed '{{' at position {i}")
            i = close + 1
            continue
        if char == "}":
            raise _invalid(text, f"unmatched '}}' at position {i}")
        if char in "./":
            component = text[start:i]
            if not component and not (i == 0 and char == "/"):
                raise _invalid(text, f"missing unit before {char!r} at position {i}")
            if component:
                parts.append((sign, component))
            sign = -1 if char == "/" else 1
            start = i + 1
        i += 1
    if start == len(text):
        raise _invalid(text, f"missing unit after {text[-1]!r} at the end")
    parts.append((sign, text[start:]))
    return parts


def _unknown_atom(text: str, symbol: str) -> UnitError:
    reasons: list[str] = []
    hint = _ABBREVIATION_HINTS.get(symbol) or _WORD_HINTS.get(symbol.lower())
    if hint:
        reasons.append(hint)
    else:
        for prefix, (_, atoms) in _PREFIXES.items():
            rest = symbol[len(prefix) :]
            if symbol.startswith(prefix) and rest in _ATOMS and rest not in atoms:
                reasons.append(f"{rest!r} does not take the prefix {prefix!r}")
        candidates = _SPELLINGS.get(symbol.casefold(), ())
        if candidates:
            spelled = " or ".join(repr(candidate) for candidate in candidates)
            reasons.append(f"UCUM is case-sensitive, did you mean {spelled}?")
    where = f"unknown unit {symbol!r}" if symbol == text else f"unknown unit {symbol!r} in {text!r}"
    return UnitError(f"{where} ({'; '.join(reasons)})" if reasons else where)


def _resolve_atom(text: str, symbol: str) -> _Atom:
    atom = _ATOMS.get(symbol)
    if atom is not None:
        return atom
    # At most one prefix split is valid for every table entry (checked by the tests).
    for prefix, (scale, atoms) in _PREFIXES.items():
        rest = symbol[len(prefix) :]
        if symbol.startswith(prefix) and rest in atoms:
            base = _ATOMS[rest]
            return _Atom(scale * base.factor, base.dimensions)
    raise _unknown_atom(text, symbol)


def _parse_component(text: str, component: str) -> _Atom:
    body, brace, annotation = component.partition("{")
    if brace:
        if not component.endswith("}") or "}" in annotation[:-1]:
            raise _invalid(text, f"an annotation must come last in a component, got {component!r}")
        annotation = annotation[:-1]
        if not annotation:
            raise _invalid(text, "empty annotation '{}'")
        if "{" in annotation:
            raise _invalid(text, f"nested '{{' in annotation {{{annotation}}}")
        if not _ANNOTATION_CHARS.fullmatch(annotation):
            raise _invalid(text, f"annotation {{{annotation}}} must be printable ASCII without spaces")
        if not body:
            return _Atom(Fraction(1), ())
    if _NUMBER.fullmatch(body):
        if len(body) > _MAX_NUMBER_DIGITS or int(body) == 0:
            raise _invalid(text, f"unsupported numeric factor {body!r}")
        return _Atom(Fraction(int(body)), ())
    if "(" in body or ")" in body:
        raise _invalid(text, "parentheses are not supported; '.' and '/' apply left to right")
    if "^" in body or "*" in body:
        raise _invalid(text, "UCUM writes exponents straight after the atom, e.g. 'm2' or 's-1'")
    if any(char.isspace() for char in body):
        raise _invalid(text, "UCUM units contain no whitespace")
    match = _ATOM_EXPONENT.fullmatch(body)
    if match is None:
        raise _invalid(text, f"cannot read component {body!r} as an atom with an integer exponent")
    atom = _resolve_atom(text, match["symbol"])
    exponent = int(match["exponent"] or "1")
    if abs(exponent) > _MAX_EXPONENT:
        raise _invalid(text, f"exponent {exponent} is out of range")
    return _Atom(atom.factor**exponent, tuple((base, power * exponent) for base, power in atom.dimensions))


@lru_cache(maxsize=1024)
def parse_unit(text: str) -> Unit:
    """Parse a UCUM unit string such as ``ms``, ``By/s`` or ``{request}/min``.

    Raises :class:`UnitError` for anything outside the supported subset, including
    the empty string (OTLP uses ``""`` for "no unit"; callers decide what that means).
    """
    if not text:
        raise UnitError("unit '' is empty (UCUM spells dimensionless '1'; OTLP uses '' for no unit)")
    if len(text) > MAX_UNIT_LENGTH:
        raise UnitError(f"unit {text[:20]!r}... of {len(text)} characters is longer than {MAX_UNIT_LENGTH}")
    factor = Fraction(1)
    powers: dict[str, int] = {}
    for sign, component in _split(text):
        atom = _parse_component(text, component)
        factor *= atom.factor**sign
        for base, power in atom.dimensions:
            powers[base] = powers.get(base, 0) + sign * power
    dimensions = tuple(sorted((base, power) for base, power in powers.items() if power))
    return Unit(text=text, factor=factor, dimensions=dimensions)


def _describe(dimensions: _Dimensions) -> str:
    if not dimensions:
        return "dimensionless"
    return ".".join(base if power == 1 else f"{base}{power}" for base, power in dimensions)


def _as_unit(unit: str | Unit) -> Unit:
    return unit if isinstance(unit, Unit) else parse_unit(unit)


def conversion_factor(source: str | Unit, target: str | Unit) -> Fraction:
    """Exact factor such that ``value_in_target == value_in_source * factor``."""
    source_unit, target_unit = _as_unit(source), _as_unit(target)
    if source_unit.dimensions != target_unit.dimensions:
        raise UnitError(
            f"cannot convert {source_unit.text!r} [{_describe(source_unit.dimensions)}] "
            f"to {target_unit.text!r} [{_describe(target_unit.dimensions)}]: dimensions differ"
        )
    return source_unit.factor / target_unit.factor


def is_convertible(source: str | Unit, target: str | Unit) -> bool:
    """True when both units parse and share dimensions."""
    try:
        conversion_factor(source, target)
    except UnitError:
        return False
    return True
