"""otel-contract diff: compare two contract versions and apply the semver gate."""

from __future__ import annotations

import argparse
import sys

from otel_contract.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    _include_option,
    _Parser,
    _read_model,
    _write_text,
)
from otel_contract.diff import FailOn, Impact, compare
from otel_contract.diff.formats import FORMATS as DIFF_FORMATS
from otel_contract.diff.formats import RENDERERS as DIFF_RENDERERS


def register(commands: Subparsers[_Parser]) -> None:
    diff = commands.add_parser(
        "diff",
        help="compare two contract versions: every change classified breaking, compatible or informational,"
        " and the semver gate",
        description="Compare two versions of a contract field by field (includes merged on each side): metrics,"
        " units, types, attributes, allowed values, resource rules and actions, naming, policy and defaults, compat"
        " shims, invariants and autoscaling signals. Each change is classified breaking (data accepted before is"
        " rejected or flagged, or a query, dashboard or HPA loses data or changes meaning), compatible or"
        " informational, with the reason in words. The semver gate fails when a breaking change comes without a"
        " major version step (minor below 1.0.0), or anything changed without a version step.",
        epilog="OLD and NEW are contract files, or git:REF:PATH to read PATH as committed at REF (PATH relative to"
        " the current directory; includes are read from the same revision), e.g."
        " otel-contract diff git:origin/main:contracts/ecommerce.yaml contracts/ecommerce.yaml --format markdown."
        " Exit codes: 0 nothing at or above --fail-on, 1 the gate fails (or with --fail-on any, anything changed),"
        " 2 a contract that cannot be read or is not schema-valid, or a bad git reference.",
    )
    diff.add_argument("old", metavar="OLD", help="the contract before the change: a file or git:REF:PATH")
    diff.add_argument("new", metavar="NEW", help="the contract after the change: a file or git:REF:PATH")
    diff.add_argument(
        "--format",
        choices=DIFF_FORMATS,
        default="text",
        help="text; json (stable keys, schema: otel-contract schema --diff); markdown (the schema diff section of"
        " an RFC); default text",
    )
    diff.add_argument("--output", "-o", metavar="FILE", help="write the diff to FILE instead of stdout")
    _include_option(diff)
    diff.add_argument(
        "--fail-on",
        choices=tuple(choice.value for choice in FailOn),
        default=FailOn.BREAKING.value,
        help="breaking (default): exit 1 when the semver gate fails; any: also when anything changed at all;"
        " none: report only",
    )
    diff.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    outside = args.allow_include_outside
    old, new = _read_model(args.old, outside), _read_model(args.new, outside)
    if old is None or new is None:
        return EXIT_USAGE
    result = compare(old, new)
    if not _write_text(DIFF_RENDERERS[args.format](result), args.output):
        return EXIT_USAGE
    failed = result.fails(FailOn(args.fail_on))
    if args.output is not None or args.format != "text":
        verdict = "the version gate fails" if not result.gate.passed else "the version gate passes"
        print(
            f"otel-contract: diff {old.id} -> {new.id}: {len(result.changes)} changes,"
            f" {result.count(Impact.BREAKING)} breaking; {verdict}",
            file=sys.stderr,
        )
    return EXIT_FINDINGS if failed else EXIT_OK
