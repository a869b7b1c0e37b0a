"""otel-contract usage: which dashboards and rules read each contract metric."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from otel_contract.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    _contract_option,
    _load,
    _open_output,
    _Parser,
    usage_error,
)


def register(commands: Subparsers[_Parser]) -> None:
    usage = commands.add_parser(
        "usage",
        help="which dashboards, panels and rules read each contract metric; archive the unused ones",
        description="Read Grafana dashboards (JSON: panels, rows, collapsed rows, legacy rows[].panels[], templating"
        " variables such as label_values(metric, label), query_result(...) and metrics(regex), annotations; the HTTP"
        " API's dashboard export too) and Prometheus rule files (groups[].rules[]), extract the metric names"
        " every query reads with promql-parser (Grafana variables such as $__rate_interval and [$var] are replaced"
        " first), and report per contract metric the dashboards, panels and rules that use it, directly or through a"
        " recording rule or compat shim. A metric nothing uses, not archived yet, whose since version was reached (per"
        " the git history of the file that defines it) at least --archive-after before --today is an archive"
        " candidate; --write marks candidates stability: archived and bumps the contract version as diff requires.",
        epilog="Examples: otel-contract usage -c contracts/ecommerce.yaml --dashboards grafana/"
        " --rules prometheus/rules/; otel-contract usage -c c.yaml --dashboards d/ --format markdown"
        " >> $GITHUB_STEP_SUMMARY. --today also sets"
        " the date shim expiry is judged against. Exit codes: 0 report written (also with candidates, unless"
        " --fail-on-candidates), 1 archive candidates left with --fail-on-candidates, 2 usage error, a missing"
        " directory, a file that is not JSON/YAML (named with its line), an unusable contract, or a failed --write.",
    )
    _contract_option(usage)
    usage.add_argument(
        "--dashboards",
        action="append",
        default=[],
        metavar="DIR",
        help="Grafana dashboard JSON: a directory (searched recursively for *.json) or a file; repeatable",
    )
    usage.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="DIR",
        help="Prometheus rule files: a directory (searched recursively for *.yml, *.yaml) or a file; repeatable",
    )
    usage.add_argument(
        "--archive-after",
        default="6mo",
        metavar="WINDOW",
        help="how long ago a metric's since version must have been reached for it to be an archive candidate:"
        " N days (180d) or N calendar months (6mo); default 6mo",
    )
    usage.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="report format (default text)"
    )
    usage.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    usage.add_argument(
        "--write",
        action="store_true",
        help="mark archive candidates stability: archived in the files that define them (comments and layout kept)"
        " and bump the root contract's version as diff requires",
    )
    usage.add_argument(
        "--fail-on-candidates",
        action="store_true",
        help="exit 1 when archive candidates remain (not with --write, which archives them)",
    )
    usage.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from otel_contract import usage

    try:
        window = usage.ArchiveWindow.parse(args.archive_after)
    except ValueError as error:
        return usage_error("otel-contract", f"error: --archive-after: {error}")
    if not args.dashboards and not args.rules:
        return usage_error("otel-contract", "error: usage needs --dashboards DIR or --rules DIR (or both)")
    compiled = _load(args.contract, args.today, args.allow_include_outside)
    if compiled is None:
        return EXIT_USAGE
    contract = compiled.contract
    try:
        scan = usage.scan_files(args.dashboards, args.rules)
    except usage.UsageInputError as error:
        return usage_error("otel-contract", f"error: {error}")
    from otel_contract.usage.contract_files import defining_files

    introduced = usage.introduced_dates(contract, defining_files(Path(args.contract)))
    report = usage.analyse(contract, scan, introduced, today=args.today or date.today(), window=window)
    written = None
    if args.write:
        try:
            candidates = [m.name for m in report.candidates]
            written = usage.archive(
                args.contract, contract, candidates, allow_include_outside=args.allow_include_outside
            )
        except usage.ArchiveError as error:
            return usage_error("otel-contract", f"error: cannot write {args.contract}: {error}")
    from otel_contract.usage.report import renderer as usage_renderer
    from otel_contract.usage.report import summary as usage_summary

    try:
        output = _open_output(args.output)
    except OSError as error:
        return usage_error("otel-contract", f"error: cannot write {args.output}: {error.strerror}")
    try:
        output.write(usage_renderer(args.format)(report, written))
    finally:
        if output is not sys.stdout:
            output.close()
    print(usage_summary(report), file=sys.stderr)
    if args.fail_on_candidates and report.candidates and written is None:
        return EXIT_FINDINGS
    return EXIT_OK
