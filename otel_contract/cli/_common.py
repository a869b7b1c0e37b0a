"""What the commands share: exit codes, options, argument types, contract loading and output.

Private to ``otel_contract.cli``; each command module imports what it uses from here.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from otel_contract.contract import CompiledContract, ContractError, ContractUnreadable
from otel_contract.contract.files import ContractFileError
from otel_contract.contract.files import resolve as resolve_contract
from otel_contract.contract.model import Contract
from otel_contract.engine import EngineOptions
from otel_contract.findings import Finding
from otel_contract.loading import lint_contract, load_contract
from otel_contract.otlp import Signal
from otel_contract.reports import FORMATS, RenderOptions, Report, fails, renderer
from otel_contract.reports import text as text_report
from otel_contract.rules import Level

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

_FAIL_ON = ("error", "warning", "info", "none")

# What each command's register() receives.
Subparsers = argparse._SubParsersAction


def usage_error(command: str, message: str) -> int:
    """Print ``message`` as the one line of a usage error and return its exit code."""
    print(f"{command}: {message}", file=sys.stderr)
    return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse exits 2 already; keep its message but name the program like every other error.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _positive_int(text: str) -> int:
    return _integer(text, minimum=1, what="a positive integer")


def _non_negative_int(text: str) -> int:
    return _integer(text, minimum=0, what="a whole number >= 0")


def _integer(text: str, *, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _contract_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contract", "-c", required=True, metavar="CONTRACT", help="the contract YAML file")
    _today_option(parser)
    _include_option(parser)


def _include_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-include-outside",
        action="store_true",
        help="let include: read files outside the contract's directory tree (refused by default, so that a"
        " contract from a pull request cannot read other files of the machine)",
    )


def _today_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--today",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="the date shim expiry is judged against (default: today), for reproducible CI",
    )


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (compiler style), json (schema: otel-contract schema --report), junit (Jenkins), github"
        " (workflow annotations), markdown (PR comment, $GITHUB_STEP_SUMMARY); default text",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text report (auto: on a terminal, unless NO_COLOR is set)",
    )


def _reading_options(parser: argparse.ArgumentParser) -> None:
    # Imported here: the capture readers are for the commands that read captures, not for serve.
    from otel_contract.inputs.otlp import MAX_MESSAGE_SIZE

    parser.add_argument(
        "--signal",
        choices=tuple(Signal),
        help="the signal of binary OTLP inputs (.pb/.binpb, or protobuf on stdin) whose file name does not say it;"
        " any other input must hold this signal",
    )
    parser.add_argument(
        "--max-input-size",
        type=_positive_int,
        default=MAX_MESSAGE_SIZE // 2**20,
        metavar="MIB",
        help="the largest binary OTLP request read (protobuf is parsed whole, at about 4 times its size in memory;"
        f" default {MAX_MESSAGE_SIZE // 2**20}). JSON and Prometheus text are streamed and need no limit",
    )


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "signal": None if args.signal is None else Signal(args.signal),
        "max_message_size": args.max_input_size * 2**20,
    }


def _budget_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-findings",
        type=_non_negative_int,
        metavar="N",
        help="a budget: fail only when more than N findings (rule x metric x attribute, not data points) are at"
        " or above --fail-on",
    )


def _fail_on_option(parser: argparse.ArgumentParser, *, default: str) -> None:
    parser.add_argument(
        "--fail-on",
        choices=_FAIL_ON,
        default=default,
        help=f"lowest level that makes the exit code 1 (default {default}; none never fails)",
    )


def _load(path: str, today: date | None, allow_outside: bool) -> CompiledContract | None:
    """The compiled contract, or None after printing why it cannot be used (exit 2)."""
    try:
        return load_contract(path, today=today, allow_include_outside=allow_outside)
    except ContractError as error:
        # One line per problem, as check prints them, naming the contract as it was given.
        for finding in error.named_as(path):
            print(f"otel-contract: {text_report.format_error(finding)}", file=sys.stderr)
        return None


def _engine_options(args: argparse.Namespace) -> EngineOptions:
    return EngineOptions(audit=args.audit, env=dict(os.environ))


@dataclass(frozen=True, slots=True)
class _Verdict:
    fails: bool
    budget_note: str | None


def _verdict(findings: Sequence[Finding], fail_on: Level | None, max_findings: int | None) -> _Verdict:
    """Exit 1 on any finding at or above ``fail_on``, or, with a budget, on more of them than it allows."""
    if max_findings is None:
        return _Verdict(fails(findings, fail_on), None)
    over = sum(1 for finding in findings if fail_on is not None and finding.level >= fail_on)
    threshold = fail_on.label if fail_on else "none"
    note = f"{over} findings at or above {threshold}, budget {max_findings}"
    return _Verdict(over > max_findings, note + (" (over budget)" if over > max_findings else ""))


def _threshold(fail_on: str) -> Level | None:
    return None if fail_on == "none" else Level.parse(fail_on)


def _render_options(args: argparse.Namespace, command: str) -> RenderOptions:
    if args.color == "auto":
        stream = sys.stdout if args.output is None else None
        color = stream is not None and text_report.use_color(stream, os.environ)
    else:
        color = args.color == "always"
    return RenderOptions(fail_on=_threshold(args.fail_on), color=color, command=command)


def _open_output(path: str | None) -> TextIO:
    if path is None:
        return sys.stdout
    return open(path, "w", encoding="utf-8")


def _write_report(reports: list[Report], fmt: str, path: str | None, options: RenderOptions) -> int:
    render = renderer(fmt)
    try:
        output = _open_output(path)
    except OSError as error:
        return usage_error("otel-contract", f"error: cannot write {path}: {error.strerror}")
    try:
        output.write(render(reports, options))
    finally:
        if output is not sys.stdout:
            output.close()
    return EXIT_OK


def _write_text(text: str, path: str | None) -> bool:
    """Write ``text`` to ``path`` (stdout when None); False after saying why it could not be written."""
    try:
        output = _open_output(path)
    except OSError as error:
        print(f"otel-contract: error: cannot write {path}: {error.strerror}", file=sys.stderr)
        return False
    try:
        output.write(text)
    finally:
        if output is not sys.stdout:
            output.close()
    return True


def _read_model(spec: str, allow_outside: bool) -> Contract | None:
    """The model of the contract that ``spec`` names (a path or git:REF:PATH), or None after saying why
    it cannot be compared (exit 2). Semantic errors do not stop a comparison; they are mentioned."""
    try:
        files, path = resolve_contract(spec)
        result = lint_contract(path, files=files, allow_include_outside=allow_outside)
    except ContractFileError as error:
        print(f"otel-contract: error: {error}", file=sys.stderr)
        return None
    except ContractUnreadable as error:
        print(f"otel-contract: {text_report.format_error(error.findings[0])}", file=sys.stderr)
        return None
    if result.contract is None:
        print(f"otel-contract: error: contract {spec} is not schema-valid, so it cannot be compared:", file=sys.stderr)
        for finding in result.findings:
            if finding.level is Level.ERROR:
                print(f"  {finding.source}: {finding.message}", file=sys.stderr)
        return None
    errors = sum(1 for finding in result.findings if finding.level is Level.ERROR)
    if errors:
        noun = "error" if errors == 1 else "errors"
        print(
            f"otel-contract: warning: {spec} has {errors} {noun}; otel-contract check {spec} lists them",
            file=sys.stderr,
        )
    return result.contract
