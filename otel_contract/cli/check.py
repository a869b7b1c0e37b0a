"""otel-contract check: lint contract files, and with --require-rfc ask for an RFC per version change."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from otel_contract.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    _budget_option,
    _fail_on_option,
    _include_option,
    _Parser,
    _render_options,
    _report_options,
    _today_option,
    _verdict,
    _write_report,
    usage_error,
)
from otel_contract.contract import ContractUnreadable
from otel_contract.contract.files import ContractFileError
from otel_contract.contract.model import Contract
from otel_contract.findings import Finding
from otel_contract.loading import lint_contract
from otel_contract.reports import Report
from otel_contract.reports import text as text_report


def register(commands: Subparsers[_Parser]) -> None:
    check = commands.add_parser(
        "check",
        help="lint contract files (schema and semantics)",
        description="Lint contract files: JSON Schema validation, then semantic checks (duplicate metrics,"
        " alias collisions, regexes, UCUM units, attribute sets, rename chains, compat shims and their"
        " expiry, semver, metadata). Every finding names file:line:column, the key path and the rule.",
        epilog="Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,"
        " 2 a file that cannot be read or is not YAML (with --require-rfc also: a base revision that cannot be"
        " read, or an RFC whose front matter cannot, named file:line).",
    )
    check.add_argument("contracts", nargs="+", metavar="CONTRACT", help="contract YAML files")
    _report_options(check)
    _fail_on_option(check, default="error")
    _budget_option(check)
    _today_option(check)
    _include_option(check)
    rfc_options = check.add_argument_group("RFC options")
    rfc_options.add_argument(
        "--require-rfc",
        action="store_true",
        help="a contract whose version differs from its version at --rfc-base (or that is new there) needs an RFC"
        " naming the contract and the new version in --rfc-dir (any status but rejected); else a missing-rfc error",
    )
    rfc_options.add_argument(
        "--rfc-base",
        metavar="REF",
        help="the git revision versions are compared with (default: origin/$CHANGE_TARGET when CHANGE_TARGET is"
        " set, else origin/main if it exists, else HEAD)",
    )
    rfc_options.add_argument(
        "--rfc-dir", metavar="DIR", help="where the RFCs are (default: rfcs/ next to each contract file)"
    )
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    reports: list[Report] = []
    unreadable = False
    if (args.rfc_base or args.rfc_dir) and not args.require_rfc:
        return usage_error("otel-contract", "error: --rfc-base and --rfc-dir go with --require-rfc")
    if args.require_rfc:
        from otel_contract.rfc.git import default_ref

        rfc_base = args.rfc_base or default_ref(os.environ, Path.cwd())
    for path in args.contracts:
        try:
            result = lint_contract(path, today=args.today, allow_include_outside=args.allow_include_outside)
        except ContractUnreadable as error:
            unreadable = True
            for finding in error.findings:
                print(f"otel-contract: {text_report.format_error(finding)}", file=sys.stderr)
            continue
        contract = result.contract
        report = Report(
            source=result.path,
            contract_name=contract.name if contract else None,
            contract_version=contract.version if contract else None,
            findings=result.findings,
            metrics=tuple(metric.name for metric in contract.metrics) if contract else (),
        )
        if args.require_rfc and contract is not None:
            required = _rfc_required(path, report, contract, args, rfc_base)
            unreadable = unreadable or required is None
            report = required or report
        reports.append(report)
    options = _render_options(args, "check")
    code = _write_report(reports, args.format, args.output, options)
    if code != EXIT_OK:
        return code
    all_findings = [f for report in reports for f in report.findings]
    verdict = _verdict(all_findings, options.fail_on, args.max_findings)
    if reports:
        budget = f": {verdict.budget_note}" if verdict.budget_note else ""
        print(text_report.summary(reports) + budget, file=sys.stderr)
    if unreadable:
        return EXIT_USAGE
    return EXIT_FINDINGS if verdict.fails else EXIT_OK


def _rfc_required(path: str, report: Report, contract: Contract, args: argparse.Namespace, ref: str) -> Report | None:
    """``report`` with a missing-RFC finding when ``contract``'s version changed since ``ref`` and no RFC
    names the new one; None after saying why it cannot be told (exit 2)."""
    import shlex

    from otel_contract.rfc import RfcError, missing_rfc, store, version_location
    from otel_contract.rfc import git as rfc_git

    directory = Path(args.rfc_dir) if args.rfc_dir else Path(path).parent / "rfcs"
    try:
        base_version = rfc_git.version_at(ref, path)
        rfcs = store.load_rfcs(directory) if base_version != contract.version else ()
    except (ContractFileError, RfcError) as error:
        print(f"otel-contract: error: --require-rfc: {error}", file=sys.stderr)
        return None
    command = (
        f"otel-contract rfc new -c {shlex.quote(path)} --base {shlex.quote(rfc_git.spec(ref, path))}"
        + (f" --dir {shlex.quote(args.rfc_dir)}" if args.rfc_dir else "")
        + " 'TITLE'"
    )
    finding = missing_rfc(
        contract,
        base_version=base_version,
        base_ref=ref,
        rfcs=rfcs,
        rfc_dir=store.display(directory),
        location=version_location(Path(path).read_text(encoding="utf-8"), report.source),
        new_command=command,
    )
    if finding is None:
        return report
    return replace(report, findings=tuple(sorted((*report.findings, finding), key=Finding.sort_key)))
