"""Tests for otel_contract.units: exact factors, error messages and algebraic properties."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_contract import units
from otel_contract.units import (
    Unit,
    UnitError,
    conversion_factor,
    is_convertible,
    parse_unit,
)

# ---------------------------------------------------------------------------
# Table-driven exact factors
# ---------------------------------------------------------------------------

EXACT_FACTORS = [
    ("ms", "s", Fraction(1, 1000)),
    ("s", "ms", Fraction(1000)),
    ("min", "s", Fraction(60)),
    ("h", "min", Fraction(60)),
    ("d", "h", Fraction(24)),
    ("wk", "d", Fraction(7)),
    ("us", "ns", Fraction(1000)),
    ("ns", "s", Fraction(1, 10**9)),
    ("ps", "ns", Fraction(1, 1000)),
    ("ks", "s", Fraction(1000)),
    ("KiBy", "By", Fraction(1024)),
    ("MiBy", "KiBy", Fraction(1024)),
    ("GiBy", "MiBy", Fraction(1024)),
    ("TiBy", "GiBy", Fraction(1024)),
    ("PiBy", "TiBy", Fraction(1024)),
    ("kBy", "By", Fraction(1000)),
    ("MBy", "kBy", Fraction(1000)),
    ("GBy", "MBy", Fraction(1000)),
    ("TBy", "GBy", Fraction(1000)),
    ("PBy", "TBy", Fraction(1000)),
    ("By", "bit", Fraction(8)),
    ("bit", "By", Fraction(1, 8)),
    ("kbit", "bit", Fraction(1000)),
    ("Kibit", "bit", Fraction(1024)),
    ("Mbit", "kBy", Fraction(125)),
    ("%", "1", Fraction(1, 100)),
    ("1", "%", Fraction(100)),
    ("By/s", "KiBy/min", Fraction(60, 1024)),
    ("KiBy/min", "By/s", Fraction(1024, 60)),
    ("kBy/s", "By/s", Fraction(1000)),
    ("{request}/s", "{request}/min", Fraction(60)),
    ("{request}/s", "1/s", Fraction(1)),
    ("/s", "s-1", Fraction(1)),
    ("Hz", "/s", Fraction(1)),
    ("kHz", "Hz", Fraction(1000)),
    ("By{compressed}", "By", Fraction(1)),
    ("km", "m", Fraction(1000)),
    ("cm", "mm", Fraction(10)),
    ("m2", "cm2", Fraction(10_000)),
    ("kg", "g", Fraction(1000)),
    ("mg", "ug", Fraction(1000)),
    ("J/s", "W", Fraction(1)),
    ("kW", "W", Fraction(1000)),
    ("V.A", "W", Fraction(1)),
    ("kg.m2.s-3", "W", Fraction(1)),
    ("mA", "A", Fraction(1, 1000)),
    ("Cel", "Cel", Fraction(1)),
    ("K", "K", Fraction(1)),
    ("ms/s", "%", Fraction(1, 10)),
]


@pytest.mark.parametrize(("source", "target", "expected"), EXACT_FACTORS)
def test_exact_factor(source: str, target: str, expected: Fraction) -> None:
    factor = conversion_factor(source, target)
    assert type(factor) is Fraction
    assert factor == expected
    assert is_convertible(source, target)


def test_ms_is_exactly_one_thousandth_of_a_second() -> None:
    unit = parse_unit("ms")
    assert unit == Unit(text="ms", factor=Fraction(1, 1000), dimensions=(("time", 1),))
    assert type(unit.factor) is Fraction


def test_accepts_parsed_units() -> None:
    assert conversion_factor(parse_unit("min"), "s") == 60
    assert conversion_factor("min", parse_unit("s")) == 60
    assert is_convertible(parse_unit("By"), parse_unit("bit"))


@pytest.mark.parametrize(
    ("text", "dimensions"),
    [
        ("1", ()),
        ("%", ()),
        ("{request}", ()),
        ("s/s", ()),
        ("By.s/s", (("information", 1),)),
        ("m/s/s", (("length", 1), ("time", -2))),
        # UCUM is strictly left to right: m/s.s is (m/s).s, not m/(s.s).
        ("m/s.s", (("length", 1),)),
        ("/s", (("time", -1),)),
        ("s-1", (("time", -1),)),
        ("s+2", (("time", 2),)),
        ("{packet}/s", (("time", -1),)),
        ("By2{x}", (("information", 2),)),
        ("Cel/h", (("celsius", 1), ("time", -1))),
    ],
)
def test_dimensions(text: str, dimensions: tuple[tuple[str, int], ...]) -> None:
    assert parse_unit(text).dimensions == dimensions


def test_unit_is_frozen() -> None:
    unit = parse_unit("s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        unit.text = "ms"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_unknown_atom_names_unit_and_atom() -> None:
    with pytest.raises(UnitError) as info:
        parse_unit("msec/s")
    message = str(info.value)
    assert "'msec/s'" in message
    assert "'msec'" in message
    assert "'ms'" in message


def test_unknown_atom_without_hint() -> None:
    with pytest.raises(UnitError, match=r"unknown unit 'furlong' in 'furlong/s'"):
        parse_unit("furlong/s")


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("sec", "s"),
        ("secs", "s"),
        ("seconds", "s"),
        ("Seconds", "s"),
        ("msec", "ms"),
        ("millis", "ms"),
        ("usec", "us"),
        ("\u00b5s", "us"),
        ("nanos", "ns"),
        ("minutes", "min"),
        ("hours", "h"),
        ("days", "d"),
        ("bytes", "By"),
        ("byte", "By"),
        ("Bytes", "By"),
        ("B", "By"),
        ("bits", "bit"),
        ("kb", "kbit"),
        ("KB", "kBy"),
        ("KB", "KiBy"),
        ("kB", "kBy"),
        ("MB", "MBy"),
        ("Mb", "Mbit"),
        ("GB", "GBy"),
        ("GiB", "GiBy"),
        ("MS", "ms"),
        ("Ms", "ms"),
        ("KIBY", "KiBy"),
        ("percent", "%"),
        ("Bps", "By/s"),
    ],
)
def test_hints_name_the_ucum_spelling(text: str, suggestion: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_unit(text)
    assert f"{suggestion!r}" in str(info.value)
    parse_unit(suggestion)  # the hint itself must be valid


@pytest.mark.parametrize(
    "text",
    ["MS", "Ms", "sec", "bytes", "seconds", "Bytes", "S", "BY", "kmin", "mh", "kd", "Mmin", "dBy", "mBy"],
)
def test_case_sensitive_and_unprefixable(text: str) -> None:
    with pytest.raises(UnitError, match=re.escape(repr(text))):
        parse_unit(text)
    assert not is_convertible(text, "s")


def test_prefix_not_accepted_is_explained() -> None:
    with pytest.raises(UnitError, match=r"'min' does not take the prefix 'k'"):
        parse_unit("kmin")


def test_empty_unit() -> None:
    with pytest.raises(UnitError, match="empty"):
        parse_unit("")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{}", "empty annotation"),
        ("{request", "unclosed"),
        ("By{request", "unclosed"),
        ("request}", "unmatched"),
        ("By{a}{b}", "must come last"),
        ("{a}By", "must come last"),
        ("{a{b}", "nested"),
        ("{a b}", "printable ASCII"),
        ("s/", "missing unit after"),
        ("/", "missing unit after"),
        (".s", "missing unit before"),
        ("s..m", "missing unit before"),
        ("//s", "missing unit before"),
        ("By / s", "whitespace"),
        (" s", "whitespace"),
        ("s^2", "exponent"),
        ("s**2", "exponent"),
        ("(By/s)", "parentheses"),
        ("0", "numeric factor"),
        ("s1000", "out of range"),
        ("2s", "cannot read"),
        ("s-", "cannot read"),
    ],
)
def test_malformed(text: str, reason: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_unit(text)
    assert reason in str(info.value)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("source", "target"),
    [("s", "By"), ("By", "By/s"), ("Cel", "K"), ("W", "J"), ("V", "A"), ("%", "s"), ("Hz", "s")],
)
def test_incompatible_dimensions(source: str, target: str) -> None:
    with pytest.raises(UnitError) as info:
        conversion_factor(source, target)
    message = str(info.value)
    assert repr(source) in message
    assert repr(target) in message
    assert f"[{units._describe(parse_unit(source).dimensions)}]" in message
    assert not is_convertible(source, target)


def test_incompatible_message_names_dimensions() -> None:
    with pytest.raises(UnitError, match=r"'s' \[time\] to 'By' \[information\]"):
        conversion_factor("s", "By")


def test_is_convertible_false_when_unparseable() -> None:
    assert not is_convertible("sec", "s")
    assert not is_convertible("s", "sec")
    assert not is_convertible("", "")


def test_unit_error_is_value_error() -> None:
    assert issubclass(UnitError, ValueError)


# ---------------------------------------------------------------------------
# Table sanity (private tables, so a future edit cannot silently break parsing)
# ---------------------------------------------------------------------------


def test_every_prefixed_spelling_has_one_reading() -> None:
    readings: dict[str, list[tuple[str, str]]] = {}
    for prefix, (_, atoms) in units._PREFIXES.items():
        for atom in atoms:
            assert atom in units._ATOMS
            readings.setdefault(prefix + atom, []).append((prefix, atom))
    for spelling, found in readings.items():
        assert len(found) == 1, (spelling, found)
        assert spelling not in units._ATOMS
        prefix, atom = found[0]
        expected = units._PREFIXES[prefix][0] * units._ATOMS[atom].factor
        assert parse_unit(spelling).factor == expected


def test_hint_keys_are_invalid_and_hints_are_valid() -> None:
    hints = {**units._WORD_HINTS, **units._ABBREVIATION_HINTS}
    for wrong, hint in hints.items():
        assert not is_convertible(wrong, wrong), wrong
        for code in re.findall(r"'([^']*)'", hint):
            if code != wrong:
                parse_unit(code)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

# Each family lists spellings that share a dimension, with their magnitude relative to
# the family's first entry. The oracle below is independent of units.py's tables.
FAMILIES: dict[str, list[tuple[str, Fraction]]] = {
    "time": [
        ("s", Fraction(1)),
        ("ks", Fraction(1000)),
        ("ms", Fraction(1, 10**3)),
        ("us", Fraction(1, 10**6)),
        ("ns", Fraction(1, 10**9)),
        ("ps", Fraction(1, 10**12)),
        ("min", Fraction(60)),
        ("h", Fraction(3600)),
        ("d", Fraction(86400)),
        ("wk", Fraction(604800)),
    ],
    "information": [
        ("By", Fraction(1)),
        ("kBy", Fraction(10**3)),
        ("MBy", Fraction(10**6)),
        ("GBy", Fraction(10**9)),
        ("TBy", Fraction(10**12)),
        ("PBy", Fraction(10**15)),
        ("KiBy", Fraction(2**10)),
        ("MiBy", Fraction(2**20)),
        ("GiBy", Fraction(2**30)),
        ("TiBy", Fraction(2**40)),
        ("PiBy", Fraction(2**50)),
        ("bit", Fraction(1, 8)),
        ("kbit", Fraction(1000, 8)),
        ("Mbit", Fraction(10**6, 8)),
        ("Gbit", Fraction(10**9, 8)),
        ("Kibit", Fraction(2**10, 8)),
        ("Mibit", Fraction(2**20, 8)),
        ("Gibit", Fraction(2**30, 8)),
    ],
    "frequency": [
        ("Hz", Fraction(1)),
        ("kHz", Fraction(10**3)),
        ("MHz", Fraction(10**6)),
        ("GHz", Fraction(10**9)),
    ],
    "length": [
        ("m", Fraction(1)),
        ("km", Fraction(1000)),
        ("cm", Fraction(1, 100)),
        ("mm", Fraction(1, 1000)),
        ("um", Fraction(1, 10**6)),
        ("nm", Fraction(1, 10**9)),
    ],
    "mass": [
        ("g", Fraction(1)),
        ("kg", Fraction(1000)),
        ("mg", Fraction(1, 1000)),
        ("ug", Fraction(1, 10**6)),
    ],
    "current": [("A", Fraction(1)), ("mA", Fraction(1, 1000)), ("kA", Fraction(1000))],
    "power": [("W", Fraction(1)), ("kW", Fraction(1000)), ("MW", Fraction(10**6)), ("mW", Fraction(1, 1000))],
    "energy": [
        ("J", Fraction(1)),
        ("kJ", Fraction(1000)),
        ("GJ", Fraction(10**9)),
        ("mJ", Fraction(1, 1000)),
    ],
    "voltage": [("V", Fraction(1)), ("mV", Fraction(1, 1000)), ("kV", Fraction(1000))],
    "temperature": [("K", Fraction(1))],
    "celsius": [("Cel", Fraction(1))],
    "percent": [("%", Fraction(1, 100))],
    # Pure numbers and annotations cannot carry an exponent ('12' would be twelve).
    "count": [
        ("1", Fraction(1)),
        ("{request}", Fraction(1)),
        ("{packet}", Fraction(1)),
        ("{thread}", Fraction(1)),
    ],
}

# One component of a unit: (operator before it, family, exponent or None, annotation).
Shape = list[tuple[str, str, int | None, str]]


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    shape: Shape = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        operator = draw(st.sampled_from(["", "/"] if index == 0 else [".", "/"]))
        family = draw(st.sampled_from(sorted(FAMILIES)))
        if family == "count":
            shape.append((operator, family, None, ""))
            continue
        exponent = draw(st.none() | st.integers(min_value=-3, max_value=3).filter(bool))
        annotation = draw(st.sampled_from(["", "", "{x}", "{compressed}"]))
        shape.append((operator, family, exponent, annotation))
    return shape


def realise(draw: st.DrawFn, shape: Shape) -> tuple[str, Fraction]:
    """Pick a concrete spelling per component; return the text and its magnitude per the oracle."""
    text = ""
    magnitude = Fraction(1)
    for operator, family, exponent, annotation in shape:
        atom, scale = draw(st.sampled_from(FAMILIES[family]))
        power = (exponent if exponent is not None else 1) * (-1 if operator == "/" else 1)
        magnitude *= scale**power
        exponent_text = "" if exponent is None else draw(st.sampled_from([str(exponent), f"{exponent:+d}"]))
        text += f"{operator}{atom}{exponent_text}{annotation}"
    return text, magnitude


@st.composite
def same_dimension(draw: st.DrawFn, count: int) -> list[tuple[str, Fraction]]:
    shape = draw(shapes())
    return [realise(draw, shape) for _ in range(count)]


@st.composite
def unit_texts(draw: st.DrawFn) -> str:
    return realise(draw, draw(shapes()))[0]


_settings = settings(deadline=None, max_examples=200)


@_settings
@given(same_dimension(2))
def test_round_trip(pair: list[tuple[str, Fraction]]) -> None:
    (a, _), (b, _) = pair
    assert conversion_factor(a, b) * conversion_factor(b, a) == 1


@_settings
@given(same_dimension(3))
def test_composition(triple: list[tuple[str, Fraction]]) -> None:
    (a, _), (b, _), (c, _) = triple
    assert conversion_factor(a, b) * conversion_factor(b, c) == conversion_factor(a, c)


@_settings
@given(same_dimension(2))
def test_matches_independent_oracle(pair: list[tuple[str, Fraction]]) -> None:
    (a, magnitude_a), (b, magnitude_b) = pair
    assert conversion_factor(a, b) == magnitude_a / magnitude_b


@_settings
@given(unit_texts())
def test_identity(text: str) -> None:
    assert conversion_factor(text, text) == 1
    assert is_convertible(text, text)


@_settings
@given(unit_texts())
def test_parse_is_deterministic_and_positive(text: str) -> None:
    fresh = parse_unit.__wrapped__(text)
    assert fresh == parse_unit.__wrapped__(text) == parse_unit(text)
    assert fresh.text == text
    assert type(fresh.factor) is Fraction
    assert fresh.factor > 0
    assert list(fresh.dimensions) == sorted(fresh.dimensions)
    assert all(power != 0 for _, power in fresh.dimensions)
    assert len({base for base, _ in fresh.dimensions}) == len(fresh.dimensions)


@_settings
@given(unit_texts(), unit_texts())
def test_convertible_iff_same_dimensions(a: str, b: str) -> None:
    same = parse_unit(a).dimensions == parse_unit(b).dimensions
    assert is_convertible(a, b) is same
    if not same:
        with pytest.raises(UnitError, match=re.escape(repr(a))):
            conversion_factor(a, b)


_FUZZ_ALPHABET = st.sampled_from(list("smunkKMGPiBybt%{}./-+0123 ()^*dhHzWJVACelg\u00b5x"))


@_settings
@given(st.text(alphabet=_FUZZ_ALPHABET, max_size=12) | st.text(max_size=12))
def test_arbitrary_text_parses_or_raises_unit_error(text: str) -> None:
    try:
        unit = parse_unit(text)
    except UnitError as error:
        assert str(error)
    else:
        assert unit.factor > 0
        assert conversion_factor(unit, unit) == 1
