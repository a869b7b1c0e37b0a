"""A shim's ``expr`` compiled from promql-parser's syntax tree into a small evaluation plan.

The plan covers the subset the README documents; anything else raises ``UnsupportedExpression``
naming the node (its PromQL text) and where it sits in the expression. Each node also carries what
its output is (a counter or a gauge, and its unit), which sets the OTLP type of the shim's series.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple, Protocol

from otel_contract import units
from otel_contract.patterns import Match, Pattern, PatternError, compile_pattern
from otel_contract.shims._functions import SUPPORTED_AGGREGATIONS, Accumulator, extrapolated_rate, instant_rate
from otel_contract.shims._series import Labels, Sample, Series, SeriesKind

_STALE = operator.itemgetter(3)  # Sample.stale, read at C speed
LOOKBACK_MS = 5 * 60 * 1000  # Prometheus' default --query.lookback-delta
_RANGE_FUNCTIONS = frozenset({"rate", "increase", "irate"})
_ARITHMETIC = frozenset({"+", "-", "*", "/"})
_TEMPLATE = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")
# Units a scaled series may be re-expressed in (``* 1000`` turns s into ms); the first that matches wins.
_SCALED_UNITS = ("ns", "us", "ms", "s", "min", "h", "d", "bit", "By", "kBy", "MBy", "GBy", "KiBy", "MiBy", "GiBy")


class UnsupportedExpression(ValueError):
    """``expr`` is valid PromQL outside the evaluated subset; ``node`` is its text, ``where`` its place."""

    def __init__(self, node: str, where: str, reason: str) -> None:
        super().__init__(f"{reason}: `{node}` ({where})")
        self.node = node
        self.where = where
        self.reason = reason


class Element(NamedTuple):
    """One sample of an instant vector: labels (``__name__`` apart), value, and whether any input
    sample behind it arrived in the current round (only those are emitted)."""

    name: str | None
    labels: Labels
    value: float
    fresh: bool
    start: int  # the latest OTLP start time behind it (ns): a restart of any input restarts a sum
    resource: Labels = ()  # the resource attributes every input series behind it shares


class Store(Protocol):
    @property
    def series(self) -> Mapping[str, Mapping[Labels, Series]]: ...


@dataclass(frozen=True, slots=True)
class Output:
    """What a node yields: a counter (cumulative, monotonic) or a gauge, in ``unit`` (None: unknown)."""

    counter: bool
    unit: str | None


class Node(Protocol):
    @property
    def output(self) -> Output: ...

    def evaluate(self, store: Store, now: int, round_: int) -> list[Element]: ...

    def series_names(self) -> Iterator[tuple[str, int]]:
        """(series name, how far back in ms it is read) for every selector below."""
        ...

    def group(self, labels: Labels) -> Labels | None:
        """The labels of the output element an input series with ``labels`` feeds; None when it feeds
        none. The plan is a chain over one selector, so each output element depends on the input
        series of its group alone, and evaluating the plan over just those gives the same element."""
        ...


@dataclass(frozen=True, slots=True)
class _Matcher:
    label: str
    test: Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Selector:
    name: str
    matchers: tuple[_Matcher, ...]
    offset: int  # ms
    range: int  # ms; 0 for an instant selector
    output: Output

    def series_names(self) -> Iterator[tuple[str, int]]:
        yield self.name, self.offset + (self.range or LOOKBACK_MS)

    def group(self, labels: Labels) -> Labels | None:
        if not self.matchers:
            return labels
        present = dict(labels)
        return labels if all(matcher.test(present.get(matcher.label, "")) for matcher in self.matchers) else None

    def matching(self, store: Store) -> Iterator[tuple[Labels, Series]]:
        by_labels = store.series.get(self.name, {})
        if not self.matchers:
            yield from by_labels.items()
            return
        for labels, series in by_labels.items():
            if self.group(labels) is not None:
                yield labels, series

    def evaluate(self, store: Store, now: int, round_: int) -> list[Element]:
        end = now - self.offset
        out = []
        for labels, series in self.matching(store):
            latest = _latest(series.samples, end - LOOKBACK_MS, end)
            if latest is not None:
                out.append(
                    Element(self.name, labels, latest.value, series.updated == round_, series.start, series.resource)
                )
        return out


def _latest(samples: Any, start: int, end: int) -> Sample | None:
    for sample in reversed(samples):
        if sample.time <= end:
            # A staleness marker as the latest sample: the series has ended (Prometheus returns nothing).
            return sample if sample.time >= start and not sample.stale else None
    return None


def _window(samples: Any, start: int, end: int) -> list[Sample]:
    # Prometheus 2.x range selectors include both ends: [now - range, now]; they skip staleness markers.
    # Eviction keeps a series' samples near the window: trim the ends, then copy what is left at C speed.
    first, last = 0, len(samples)
    while first < last and samples[first].time < start:
        first += 1
    while last > first and samples[last - 1].time > end:
        last -= 1
    window = list(itertools.islice(samples, first, last))
    return [sample for sample in window if not sample.stale] if any(map(_STALE, window)) else window


@dataclass(frozen=True, slots=True)
class RangeFunction:
    function: str  # rate | increase | irate
    selector: Selector
    output: Output

    def series_names(self) -> Iterator[tuple[str, int]]:
        return self.selector.series_names()

    def group(self, labels: Labels) -> Labels | None:
        return self.selector.group(labels)

    def evaluate(self, store: Store, now: int, round_: int) -> list[Element]:
        end = now - self.selector.offset
        start = end - self.selector.range
        seconds = self.selector.range / 1000
        out = []
        for labels, series in self.selector.matching(store):
            window = _window(series.samples, start, end)
            if self.function == "irate":
                value = instant_rate(window)
            else:
                value = extrapolated_rate(window, start, end, seconds, is_rate=self.function == "rate")
            if value is not None:
                out.append(Element(None, labels, value, series.updated == round_, series.start, series.resource))
        return out


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    labels: frozenset[str]
    without: bool
    expr: Node
    output: Output

    def series_names(self) -> Iterator[tuple[str, int]]:
        return self.expr.series_names()

    def group(self, labels: Labels) -> Labels | None:
        inner = self.expr.group(labels)
        return None if inner is None else self._group(inner)

    def _group(self, labels: Labels) -> Labels:
        if self.without:
            return tuple(pair for pair in labels if pair[0] not in self.labels)
        return tuple(pair for pair in labels if pair[0] in self.labels and pair[1])

    def evaluate(self, store: Store, now: int, round_: int) -> list[Element]:
        groups: dict[Labels, tuple[Accumulator, bool, int, Labels]] = {}
        for element in self.expr.evaluate(store, now, round_):
            key = self._group(element.labels)
            group = groups.get(key)
            if group is None:
                groups[key] = (Accumulator(self.op, element.value), element.fresh, element.start, element.resource)
            else:
                accumulator, fresh, start, resource = group
                accumulator.add(element.value)
                if resource != element.resource:
                    resource = tuple(pair for pair in resource if pair in element.resource)
                groups[key] = (accumulator, fresh or element.fresh, max(start, element.start), resource)
        return [
            Element(None, key, acc.result(), fresh, start, resource)
            for key, (acc, fresh, start, resource) in groups.items()
        ]


class _ElementWise:
    """A node that maps each element of its operand ``expr`` on its own (``_apply``)."""

    __slots__ = ()
    expr: Node

    def series_names(self) -> Iterator[tuple[str, int]]:
        return self.expr.series_names()

    def group(self, labels: Labels) -> Labels | None:
        inner = self.expr.group(labels)
        return None if inner is None else self._relabel(inner)

    def evaluate(self, store: Store, now: int, round_: int) -> list[Element]:
        return [self._apply(element) for element in self.expr.evaluate(store, now, round_)]

    def _apply(self, element: Element) -> Element:
        raise NotImplementedError

    def _relabel(self, labels: Labels) -> Labels:
        """The labels ``_apply`` gives an element with ``labels``."""
        return labels


@dataclass(frozen=True, slots=True)
class ScalarOp(_ElementWise):
    """``vector OP number`` or ``number OP vector`` (``scalar_left``)."""

    op: str
    scalar: float
    scalar_left: bool
    expr: Node
    output: Output

    def _apply(self, element: Element) -> Element:
        left, right = (self.scalar, element.value) if self.scalar_left else (element.value, self.scalar)
        return element._replace(name=None, value=_arithmetic(self.op, left, right))


def _arithmetic(op: str, left: float, right: float) -> float:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:  # Go's float division: x/0 is ±Inf, 0/0 is NaN
        return math.nan if left == 0 or math.isnan(left) else math.copysign(math.inf, left) * math.copysign(1, right)
    return left / right


@dataclass(frozen=True, slots=True)
class LabelReplace(_ElementWise):
    expr: Node
    destination: str
    replacement: str
    source: str
    regex: Pattern  # whole: PromQL anchors label_replace's regex at both ends
    output: Output

    def _apply(self, element: Element) -> Element:
        labels = self._relabel(element.labels)
        return element if labels is element.labels else element._replace(labels=labels)

    def _relabel(self, labels: Labels) -> Labels:
        present = dict(labels)
        match = self.regex.match(present.get(self.source, ""))
        if match is None:
            return labels
        value = _expand(self.replacement, match)
        if value:
            present[self.destination] = value
        else:
            present.pop(self.destination, None)
        return tuple(sorted(present.items()))


def _expand(template: str, match: Match) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``$$``; unknown groups expand to ""."""

    def group(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        if name is None:
            return "$"
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:  # no such group
            return ""
        return value or ""

    return _TEMPLATE.sub(group, template)


# --- compiling -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputMetric:
    """What the compiler needs to know of a contract metric a selector reads."""

    otlp_kind: str  # "sum" | "gauge" | "histogram" | "summary" | "exponential_histogram"
    unit: str | None
    monotonic: bool


def compile_expression(expr: str, inputs: Mapping[str, tuple[SeriesKind, InputMetric]]) -> Node:
    """The plan for ``expr``; ``inputs`` maps each readable series name to its metric.

    Raises ``ValueError`` (promql-parser's) for invalid PromQL and ``UnsupportedExpression`` for
    anything outside the subset, including a selector of a series no contract metric yields.
    """
    import promql_parser  # here, not above: about 2 MiB, loaded only for a contract with shims

    return _Compiler(inputs).node(promql_parser.parse(expr), "the whole expression")


class _Compiler:
    def __init__(self, inputs: Mapping[str, tuple[SeriesKind, InputMetric]]) -> None:
        self._inputs = inputs

    def node(self, node: Any, where: str) -> Node:
        import promql_parser  # here, not above: about 2 MiB, loaded only for a contract with shims

        if isinstance(node, promql_parser.ParenExpr):
            return self.node(node.expr, where)
        if isinstance(node, promql_parser.VectorSelector):
            return self._selector(node, 0, where)
        if isinstance(node, promql_parser.AggregateExpr):
            return self._aggregate(node, where)
        if isinstance(node, promql_parser.Call):
            return self._call(node, where)
        if isinstance(node, promql_parser.BinaryExpr):
            return self._binary(node, where)
        if isinstance(node, promql_parser.UnaryExpr):
            inner = self.node(node.expr, f"operand of unary minus in {where}")
            return ScalarOp("*", -1.0, False, inner, Output(False, inner.output.unit))
        if isinstance(node, promql_parser.MatrixSelector):
            raise UnsupportedExpression(
                str(node), where, "a range vector is only supported inside rate, increase or irate"
            )
        if isinstance(node, promql_parser.SubqueryExpr):
            raise UnsupportedExpression(str(node), where, "subqueries are not supported")
        if isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
            raise UnsupportedExpression(str(node), where, "a shim must produce a vector of series, not a literal")
        raise UnsupportedExpression(str(node), where, f"{type(node).__name__} is not supported")

    def _selector(self, node: Any, range_ms: int, where: str) -> Selector:
        if node.at is not None:
            raise UnsupportedExpression(str(node), where, "the @ modifier is not supported")
        name = node.name
        matchers: list[_Matcher] = []
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__" and str(matcher.op) == "MatchOp.Equal" and name is None:
                name = matcher.value
                continue
            if matcher.name == "__name__":
                raise UnsupportedExpression(str(node), where, "matchers on __name__ other than one = are not supported")
            matchers.append(_matcher(matcher, str(node), where))
        if node.matchers.or_matchers:
            raise UnsupportedExpression(str(node), where, "'or' inside a selector is not supported")
        if name is None:
            raise UnsupportedExpression(str(node), where, "a selector must name its metric")
        known = self._inputs.get(name)
        if known is None:
            raise UnsupportedExpression(
                str(node), where, f"{name} is no series of a contract metric (histograms give _bucket, _count, _sum)"
            )
        series, metric = known
        if series.part == "histogram":
            raise UnsupportedExpression(
                str(node), where, f"{name} is a native histogram; shims read the classic series (_bucket, _count, _sum)"
            )
        if series.part == "bucket" and metric.otlp_kind != "histogram":
            raise UnsupportedExpression(
                str(node), where, f"{name}: an exponential histogram has no le buckets in the stream; read _count, _sum"
            )
        offset = _milliseconds(node.offset) if node.offset is not None else 0
        if offset < 0:
            raise UnsupportedExpression(str(node), where, "a negative offset reads the future")
        return Selector(name, tuple(matchers), offset, range_ms, _selector_output(series, metric))

    def _aggregate(self, node: Any, where: str) -> Aggregate:
        op = str(node.op)
        if op not in SUPPORTED_AGGREGATIONS:
            raise UnsupportedExpression(
                str(node), where, f"aggregation {op} is not supported (sum, min, max, count, avg are)"
            )
        inner = self.node(node.expr, f"argument of {op} in {where}")
        modifier = node.modifier
        without = modifier is not None and str(modifier.type) == "AggModifierType.Without"
        labels = frozenset(modifier.labels) if modifier is not None else frozenset()
        if op == "sum":
            output = inner.output
        elif op == "count":
            output = Output(False, "1")
        else:
            output = Output(False, inner.output.unit)
        return Aggregate(op, labels, without, inner, output)

    def _call(self, node: Any, where: str) -> Node:
        import promql_parser  # here, not above: about 2 MiB, loaded only for a contract with shims

        function = node.func.name
        if function in _RANGE_FUNCTIONS:
            argument = node.args[0]
            if not isinstance(argument, promql_parser.MatrixSelector):
                raise UnsupportedExpression(
                    str(node), where, f"{function} is supported over a range selector such as metric[5m] only"
                )
            selector = self._selector(
                argument.vector_selector, _milliseconds(argument.range), f"argument of {function}"
            )
            if not selector.output.counter:
                raise UnsupportedExpression(
                    str(node),
                    where,
                    f"{function} needs a cumulative sum or a histogram's _bucket, _count or _sum;"
                    f" {selector.name} is a gauge",
                )
            unit = selector.output.unit
            output = Output(False, unit if function == "increase" else _per_second(unit))
            return RangeFunction(function, selector, output)
        if function == "label_replace":
            inner = self.node(node.args[0], f"argument 1 of label_replace in {where}")
            destination, replacement, source, pattern = (argument.val for argument in node.args[1:])
            try:
                regex = compile_pattern(pattern, whole=True)
            except PatternError as error:
                raise UnsupportedExpression(str(node), where, _not_compiled(pattern, error)) from None
            return LabelReplace(inner, destination, replacement, source, regex, inner.output)
        raise UnsupportedExpression(
            str(node), where, f"function {function} is not supported (rate, increase, irate, label_replace are)"
        )

    def _binary(self, node: Any, where: str) -> ScalarOp:
        op = str(node.op)
        if op not in _ARITHMETIC:
            raise UnsupportedExpression(
                str(node), where, f"operator {op} is not supported (+, -, *, / with a number are)"
            )
        left_number = _number(node.lhs)
        right_number = _number(node.rhs)
        if (left_number is None) == (right_number is None):
            raise UnsupportedExpression(
                str(node), where, "arithmetic is supported between a vector and a number only, not two vectors"
            )
        if right_number is not None:
            inner = self.node(node.lhs, f"left operand of {op} in {where}")
            return ScalarOp(op, right_number, False, inner, _scaled_output(op, right_number, False, inner.output))
        assert left_number is not None
        inner = self.node(node.rhs, f"right operand of {op} in {where}")
        return ScalarOp(op, left_number, True, inner, _scaled_output(op, left_number, True, inner.output))


def _number(node: Any) -> float | None:
    import promql_parser  # here, not above: about 2 MiB, loaded only for a contract with shims

    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.NumberLiteral):
        return float(node.val)
    if isinstance(node, promql_parser.UnaryExpr):
        inner = _number(node.expr)
        return -inner if inner is not None else None
    return None


def _not_compiled(pattern: str, error: PatternError) -> str:
    return f"regex {pattern!r} does not compile: {error} (PromQL regexes are RE2 syntax)"


def _matcher(matcher: Any, node: str, where: str) -> _Matcher:
    op, value = str(matcher.op), matcher.value
    if op in ("MatchOp.Re", "MatchOp.NotRe"):
        try:
            pattern = compile_pattern(value, whole=True)
        except PatternError as error:
            raise UnsupportedExpression(node, where, _not_compiled(value, error)) from None
        if op == "MatchOp.Re":
            return _Matcher(matcher.name, pattern.matches)
        return _Matcher(matcher.name, lambda text: not pattern.matches(text))
    if op == "MatchOp.Equal":
        return _Matcher(matcher.name, lambda text: text == value)
    return _Matcher(matcher.name, lambda text: text != value)


def _milliseconds(duration: Any) -> int:
    return int(duration.total_seconds() * 1000)


def _selector_output(series: SeriesKind, metric: InputMetric) -> Output:
    if series.part in ("bucket", "count"):
        return Output(True, "1")
    if series.part == "sum":
        return Output(True, metric.unit)
    if series.part == "quantile":
        return Output(False, metric.unit)
    return Output(metric.otlp_kind == "sum" and metric.monotonic, metric.unit)


def _per_second(unit: str | None) -> str | None:
    if unit is None:
        return None
    if unit == "s":
        return "1"  # seconds per second
    if unit == "1":
        return "1/s"
    return f"{unit}/s"


def _scaled_output(op: str, number: float, scalar_left: bool, inner: Output) -> Output:
    if op in ("+", "-"):
        return Output(False, inner.unit)
    if op == "/" and scalar_left:
        return Output(False, None)
    factor = Fraction(repr(number)) if op == "*" else 1 / Fraction(repr(number))
    return Output(inner.counter and factor > 0, _unit_scaled_by(inner.unit, factor))


def _unit_scaled_by(unit: str | None, factor: Fraction) -> str | None:
    """The unit a value in ``unit`` is in once multiplied by ``factor`` (s * 1000 → ms)."""
    if unit is None or factor == 1:
        return unit
    for candidate in _SCALED_UNITS:
        try:
            if units.conversion_factor(unit, candidate) == factor:
                return candidate
        except units.UnitError:
            continue
    return None
