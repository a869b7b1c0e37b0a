"""otel-contract rules: the rule catalog."""

from __future__ import annotations

import argparse

from otel_contract.cli._common import (
    EXIT_OK,
    Subparsers,
    _Parser,
    usage_error,
)
from otel_contract.rules import RULES


def register(commands: Subparsers[_Parser]) -> None:
    explain = commands.add_parser(
        "rules",
        help="list every rule with its level, runtime action and meaning",
        description="The rule catalog.",
    )
    explain.add_argument("slug", nargs="?", help="show one rule")
    explain.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text (one line per rule, the default) or markdown (the table of the README's rule catalog)",
    )
    explain.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    selected = list(RULES.values())
    if args.slug:
        if args.slug not in RULES:
            return usage_error("otel-contract", f"error: unknown rule {args.slug!r}; see 'otel-contract rules'")
        selected = [RULES[args.slug]]
    if args.format == "markdown":
        from otel_contract.reports.markdown import rule_table

        print(rule_table(selected), end="")
        return EXIT_OK
    for rule in selected:
        scope = "/".join(rule.scope_names)
        print(f"{rule.slug:28} {rule.level.label:8} {rule.action.value:7} {scope:19} {rule.summary}")
    return EXIT_OK
