"""The metric names a PromQL expression reads, from promql-parser's syntax tree."""

from __future__ import annotations

from typing import Any

import promql_parser

from otel_contract.usage.model import MatchOp, NameMatcher, NameSelector

# promql-parser's MatchOp is not hashable, so its members are compared, not looked up.
_OPS = (
    (promql_parser.MatchOp.Equal, MatchOp.EQUAL),
    (promql_parser.MatchOp.NotEqual, MatchOp.NOT_EQUAL),
    (promql_parser.MatchOp.Re, MatchOp.REGEX),
    (promql_parser.MatchOp.NotRe, MatchOp.NOT_REGEX),
)


class PromqlError(ValueError):
    """The expression is not PromQL; the message is promql-parser's."""


def read_selectors(expr: str) -> tuple[NameSelector, ...]:
    """One ``NameSelector`` per vector selector in ``expr``, in the order they appear."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as error:
        raise PromqlError(str(error).strip() or "not PromQL") from None
    found: list[NameSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(_selector(node))

    promql_parser.walk(tree, visit)
    return tuple(found)


def _selector(node: Any) -> NameSelector:
    named = (NameMatcher(MatchOp.EQUAL, node.name),) if node.name else ()
    groups = node.matchers.or_matchers or [node.matchers.matchers]
    return NameSelector(
        tuple(named + tuple(NameMatcher(_op(m.op), m.value) for m in group if m.name == "__name__") for group in groups)
    )


def _op(op: Any) -> MatchOp:
    for theirs, ours in _OPS:
        if op == theirs:
            return ours
    raise PromqlError(f"unknown matcher operator {op}")  # pragma: no cover - promql-parser has four
