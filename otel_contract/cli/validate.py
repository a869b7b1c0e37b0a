"""otel-contract validate and normalize: run the engine on captured telemetry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from otel_contract import baseline, gate
from otel_contract.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    _budget_option,
    _contract_option,
    _engine_options,
    _fail_on_option,
    _load,
    _non_negative_int,
    _Parser,
    _read_options,
    _reading_options,
    _render_options,
    _report_options,
    _threshold,
    _verdict,
    _write_report,
    usage_error,
)
from otel_contract.contract import CompiledContract
from otel_contract.findings import Finding
from otel_contract.inputs.otlp import write_capture
from otel_contract.inputs.sources import FetchOptions, read_inputs
from otel_contract.lint import PrometheusLinter
from otel_contract.otlp import InputError, OtlpRequest
from otel_contract.pipeline import Result
from otel_contract.progress import Progress
from otel_contract.reports import RenderOptions, fails
from otel_contract.reports import text as text_report


def register(commands: Subparsers[_Parser]) -> None:
    validate = commands.add_parser(
        "validate",
        help="run the engine on captured telemetry: OTLP files, Prometheus/OpenMetrics text, /metrics URLs",
        description="Run the contract engine, exactly as the sidecar runs it, on captured telemetry and report what"
        " the sidecar would report (the same rules, the same counts), plus what only a CI run over all inputs can"
        " tell: the contract's invariants, Prometheus naming lints (what promtool check metrics reports) and, for"
        " URLs, the scrape's Content-Type and whether prometheus-adapter can map the series to Pods.",
        epilog="INPUT: .pb/.binpb (binary OTLP; the signal from --signal, else the name, e.g. dump.metrics.pb, else"
        " guessed),"
        " .json (one OTLP/JSON document, or the Collector file exporter's JSON lines), .jsonl/.ndjson,"
        " .prom/.txt (Prometheus text 0.0.4), .om/.openmetrics (OpenMetrics 1.0), a directory (searched"
        " recursively), an http(s)://.../metrics URL, or - for stdin (format sniffed). Exit codes: 0 nothing at or"
        " above --fail-on (or no more than --max-findings), 1 findings at or above it, 2 usage error, an invalid"
        " contract, an unreadable input or baseline.",
    )
    _contract_option(validate)
    validate.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="capture files, directories, /metrics URLs, or - for stdin"
    )
    _report_options(validate)
    _fail_on_option(validate, default="error")
    _budget_option(validate)
    validate.add_argument(
        "--baseline", metavar="FILE", help="leave out findings this baseline lists; fail only on new ones"
    )
    validate.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="record this run's findings as the baseline in FILE and exit 0 (adopt the gate on a legacy service)",
    )
    validate.add_argument(
        "--audit", action="store_true", help="turn every reject into flag, as the sidecar's audit mode"
    )
    validate.add_argument(
        "--prometheus-lints",
        choices=("auto", "on", "off"),
        default="auto",
        help="Prometheus naming lints (prom-* rules, what promtool check metrics reports): auto lints what arrives"
        " as Prometheus text or OpenMetrics, on lints OTLP inputs too, off skips them (default auto; a contract's"
        " policy can ignore single rules)",
    )
    scrape = validate.add_argument_group("URL inputs")
    scrape.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        type=_header,
        help="extra request header, e.g. 'Authorization: Bearer $TOKEN' (repeatable)",
    )
    scrape.add_argument(
        "--timeout", type=_positive_float, default=10.0, metavar="SECONDS", help="per attempt (default 10)"
    )
    scrape.add_argument(
        "--retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="retries on connection errors, 429 and 5xx, with backoff (default 2)",
    )
    _reading_options(validate)
    validate.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )
    validate.set_defaults(handler=_run_validate)

    normalize = commands.add_parser(
        "normalize",
        help="write the normalized telemetry the sidecar would forward",
        description="Normalize captured OTLP telemetry with the contract and write what the sidecar would forward,"
        " to migrate captured data or to see exactly what changes. Findings go to stderr.",
        epilog="OUTPUT format by extension: .pb/.binpb (one request), .json, .jsonl/.ndjson, or - (JSON lines on"
        " stdout). Exit codes: 0 written (1 with --fail-on and findings at or above it), 2 usage error, an invalid"
        " contract or an unreadable input.",
    )
    _contract_option(normalize)
    normalize.add_argument("input", metavar="INPUT", help="a capture file, or - for stdin")
    normalize.add_argument("--output", "-o", metavar="OUTPUT", required=True, help="where to write, or -")
    _fail_on_option(normalize, default="none")
    normalize.add_argument("--audit", action="store_true", help="turn every reject into flag")
    _reading_options(normalize)
    normalize.set_defaults(handler=_run_normalize)


def run(args: argparse.Namespace) -> int:
    return _run_validate(args) if args.command == "validate" else _run_normalize(args)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _run_validate(args: argparse.Namespace) -> int:
    contract = _load(args.contract, args.today, args.allow_include_outside)
    if contract is None:
        return EXIT_USAGE
    accepted: baseline.Baseline | None = None
    if args.baseline:
        try:
            accepted = baseline.load(args.baseline)
        except baseline.BaselineError as error:
            return usage_error("otel-contract", f"error: {error}")
    totals = gate.Totals()
    fetch = FetchOptions(timeout=args.timeout, retries=args.retries, headers=dict(args.header))
    linter = PrometheusLinter(contract.actions) if args.prometheus_lints != "off" else None
    progress = _progress(args.progress)
    try:
        captures = read_inputs(
            args.inputs, fetch=fetch, progress=progress.update if progress else None, **_read_options(args)
        )
        lint_otlp = args.prometheus_lints == "on"
        for _ in gate.run(
            captures, contract, _engine_options(args), totals, linter=linter, lint_otlp=lint_otlp, today=args.today
        ):
            pass
    except InputError as error:
        return usage_error("otel-contract", f"error: {error}")
    finally:
        if progress is not None:
            progress.close()
    if args.write_baseline:
        return _write_baseline(args.write_baseline, totals.findings, contract)
    report = totals.report(contract)
    if accepted is not None:
        new, known = accepted.split(report.findings)
        report = replace(report, findings=new, baselined=len(known))
    options = _render_options(args, "validate")
    code = _write_report([report], args.format, args.output, options)
    if code != EXIT_OK:
        return code
    verdict = _verdict(report.findings, options.fail_on, args.max_findings)
    notes = [f"{totals.items} data points in {totals.captures} requests, {totals.dropped} rejected"]
    if captures.skipped:
        notes.append(f"{len(captures.skipped)} files in directories skipped for their extension")
    if captures.empty:
        named = ", ".join(captures.empty[:3]) + (", ..." if len(captures.empty) > 3 else "")
        notes.append(f"{len(captures.empty)} empty inputs read as no data ({named})")
    if accepted is not None:
        notes.append(f"{report.baselined} accepted by baseline {accepted.source}")
        if gone := accepted.gone(totals.findings):
            notes.append(f"{gone} baseline entries no longer occur (refresh with --write-baseline)")
    if verdict.budget_note:
        notes.append(verdict.budget_note)
    print(f"{text_report.summary([report])}: {'; '.join(notes)}", file=sys.stderr)
    return EXIT_FINDINGS if verdict.fails else EXIT_OK


def _progress(wanted: bool | None) -> Progress | None:
    """No line with --no-progress; with --progress always; by default Progress draws on a terminal only."""
    return None if wanted is False else Progress(sys.stderr, force=bool(wanted))


def _write_baseline(path: str, findings: Sequence[Finding], contract: CompiledContract) -> int:
    try:
        baseline.write(path, findings, contract=contract.id)
    except OSError as error:
        return usage_error("otel-contract", f"error: cannot write {path}: {error.strerror or error}")
    print(f"otel-contract: wrote {len(findings)} findings to baseline {path}", file=sys.stderr)
    return EXIT_OK


def _run_normalize(args: argparse.Namespace) -> int:
    contract = _load(args.contract, args.today, args.allow_include_outside)
    if contract is None:
        return EXIT_USAGE
    totals = gate.Totals()
    skipped = 0

    def forwarded(results: Iterable[Result]) -> Iterator[OtlpRequest]:
        # A request rejected whole is empty: written as {}, it would be a line no reader can tell the
        # signal of (the sidecar forwards nothing for it either).
        nonlocal skipped
        for result in results:
            if result.to_bytes():
                yield result.forwarded_request()
            else:
                skipped += 1

    try:
        captures = read_inputs([args.input], **_read_options(args))
        write_capture(
            args.output, forwarded(gate.run(captures, contract, _engine_options(args), totals, today=args.today))
        )
    except InputError as error:
        return usage_error("otel-contract", f"error: {error}")
    except (OSError, ValueError) as error:
        return usage_error("otel-contract", f"error: cannot write {args.output}: {error}")
    report = totals.report(contract)
    sys.stderr.write(text_report.render([report], RenderOptions()))
    print(
        f"{text_report.summary([report])}: wrote {totals.captures - skipped} requests{_not_written(skipped)},"
        f" {totals.items - totals.dropped} of {totals.items} data points{_derived(totals.appended)}, to {args.output}",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if fails(report.findings, _threshold(args.fail_on)) else EXIT_OK


def _not_written(skipped: int) -> str:
    return f" ({skipped} left nothing to forward, not written)" if skipped else ""


def _derived(points: int) -> str:
    return f" plus {points} from compat shims and smoothed signals" if points else ""
