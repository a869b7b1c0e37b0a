"""The ``otel-contract`` command line: parse arguments, call the library, map results to exit codes.

Exit codes (design §5): 0 nothing at or above ``--fail-on``; 1 findings at or above it; 2 usage
error or unreadable/unparsable input, with one line naming the file (and line) and the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from otel_contract import __version__, baseline, gate
from otel_contract.contract import CompiledContract, ContractError, ContractUnreadable, lint_contract, load_contract
from otel_contract.contract.files import ContractFileError
from otel_contract.contract.files import resolve as resolve_contract
from otel_contract.contract.loader import SCHEMA_RESOURCE
from otel_contract.contract.model import Contract
from otel_contract.diff import FailOn, Impact, compare
from otel_contract.diff.formats import FORMATS as DIFF_FORMATS
from otel_contract.diff.formats import RENDERERS as DIFF_RENDERERS
from otel_contract.diff.formats import SCHEMA_RESOURCE as DIFF_SCHEMA_RESOURCE
from otel_contract.engine import EngineOptions
from otel_contract.findings import Finding
from otel_contract.inputs.otlp import MAX_MESSAGE_SIZE, write_capture
from otel_contract.inputs.sources import FetchOptions, read_inputs
from otel_contract.lint import PrometheusLinter
from otel_contract.otlp import InputError, Signal
from otel_contract.progress import Progress
from otel_contract.reports import FORMATS, RenderOptions, Report, fails, renderer
from otel_contract.reports import text as text_report
from otel_contract.reports.json import SCHEMA_RESOURCE as REPORT_SCHEMA_RESOURCE
from otel_contract.rules import RULES, Level

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

_FAIL_ON = ("error", "warning", "info", "none")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otel-contract",
        description="Enforce one versioned monitoring contract on OpenTelemetry and Prometheus telemetry.",
        epilog="Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage error or unreadable input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

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
    check.set_defaults(handler=_run_check)

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

    serve = commands.add_parser(
        "serve",
        help="run the sidecar: an OTLP/gRPC receiver that enforces the contract and forwards",
        description="Run the sidecar: receive OTLP/gRPC (metrics, traces, logs), normalize and validate with the"
        " contract, answer partial_success for what was rejected, and forward through a bounded queue with"
        " retries. Flags override the pipeline config; OTEL_EXPORTER_OTLP_* variables fill what neither sets."
        " SIGHUP reloads the contract; SIGTERM stops accepting, drains the queue and exits.",
        epilog="Example: otel-contract serve --contract contracts/ecommerce.yaml --console"
        " --exporter-endpoint collector:4317. Exit codes: 0 stopped cleanly, 2 invalid config or contract,"
        " or a port that cannot be bound, 3 stopped but requests were lost (the in-memory queue was not"
        " drained within shutdown.drain_timeout; persist it with --queue-dir).",
    )
    serve.add_argument("--config", metavar="PIPELINE.yaml", help="pipeline config (design §5 shape)")
    serve.add_argument("--contract", "-c", metavar="CONTRACT", help="contract file (overrides contract.path)")
    _include_option(serve)
    serve.add_argument("--endpoint", metavar="HOST:PORT", help="receiver endpoint (default 127.0.0.1:4317)")
    serve.add_argument("--exporter-endpoint", metavar="HOST:PORT", help="downstream OTLP/gRPC endpoint")
    serve.add_argument("--export-file", metavar="PATH", help="also append forwarded data as OTLP JSON lines")
    serve.add_argument("--console", action="store_true", help="also print a line per forwarded request")
    serve.add_argument(
        "--prometheus",
        metavar="HOST:PORT",
        help="self-telemetry /metrics, /healthz, /readyz (default 127.0.0.1:8888; 'off' disables)",
    )
    serve.add_argument("--queue-dir", metavar="DIR", help="persist the sending queue on disk (SQLite) in DIR")
    serve.add_argument("--audit", action="store_true", help="flag instead of reject (mode: audit)")
    serve.add_argument("--workers", type=_positive_int, metavar="N", help="processes sharing the port (SO_REUSEPORT)")
    serve.add_argument(
        "--log-level",
        default=os.environ.get("OTEL_CONTRACT_LOG_LEVEL", "INFO"),
        help=f"{', '.join(_LOG_LEVELS)} (default: $OTEL_CONTRACT_LOG_LEVEL, else INFO)",
    )
    serve.set_defaults(handler=_run_serve)

    # Imported here: the render subcommand's wiring stays in this block and its handler.
    from otel_contract.render import ARTEFACTS

    render = commands.add_parser(
        "render",
        help="generate artefacts from the contract: " + ", ".join(ARTEFACTS),
        description="Generate a file from the contract for a tool that cannot read the contract itself. The output"
        " is deterministic (no timestamp, tool version or path): commit it next to the contract and re-render in CI"
        " to catch drift.",
        epilog="Examples: otel-contract render rules -c contracts/ecommerce.yaml -o rules/compat.yaml;"
        " otel-contract render schema -c contracts/ecommerce.yaml --schema-url https://schemas.example.com/ecommerce;"
        " otel-contract render adapter -c contracts/hpa-app.yaml --format config;"
        " otel-contract render hpa -c contracts/hpa-app.yaml --namespace hpa-app."
        " Exit codes: 0 written, 2 usage error, an invalid contract, an option the artefact does not take or cannot"
        " express, or an output that cannot be written.",
    )
    render.add_argument(
        "artefact",
        choices=tuple(ARTEFACTS),
        metavar="ARTEFACT",
        help="; ".join(f"{artefact.name}: {artefact.summary}" for artefact in ARTEFACTS.values()),
    )
    _contract_option(render)
    render.add_argument("--output", "-o", metavar="FILE", help="write the artefact to FILE instead of stdout")
    rules_options = render.add_argument_group("rules options")
    rules_options.add_argument(
        "--group", metavar="NAME", help="name of the rule group (default otel-contract-compat-<contract name>)"
    )
    rules_options.add_argument(
        "--interval",
        metavar="DURATION",
        help="evaluation interval of the group, e.g. 30s or 1m (default: Prometheus' global evaluation_interval)",
    )
    schema_options = render.add_argument_group("schema options")
    schema_options.add_argument(
        "--schema-url",
        metavar="URL",
        help="where the schema file is published: the schema family, to which the contract version is appended, or"
        " the full URL ending in the contract version (default https://schemas.invalid/<contract name>/<version>,"
        " a placeholder that never resolves)",
    )
    autoscaling_options = render.add_argument_group("adapter, hpa and keda options")
    autoscaling_options.add_argument(
        "--translation-strategy",
        metavar="STRATEGY",
        help="how the pipeline names contract metrics and attributes in Prometheus, as Prometheus'"
        " otlp.translation_strategy: UnderscoreEscapingWithSuffixes (default: hpa_app_consume_count, a counter,"
        " becomes hpa_app_consume_count_total, as the Collector's Prometheus exporters and prometheus-client write it),"
        " UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, or NoTranslation (the contract's names as"
        " they are, e.g. a service scraped directly that exposes hpa_app_consume_count)",
    )
    autoscaling_options.add_argument(
        "--format",
        dest="adapter_format",
        metavar="FORMAT",
        help="adapter: helm-values (default: the rules: block of the prometheus-community/prometheus-adapter chart)"
        " or config (the adapter's --config file)",
    )
    autoscaling_options.add_argument(
        "--namespace",
        metavar="NAMESPACE",
        help="hpa, keda: the namespace of the manifests (default: none, kubectl's current namespace); keda needs it"
        " for pods and object signals, whose queries select the workload's Pods in it",
    )
    autoscaling_options.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="keda: the Prometheus server the triggers query (default http://prometheus-operated.monitoring.svc:9090,"
        " the Prometheus Operator's service in namespace monitoring)",
    )
    render.set_defaults(handler=_run_render)

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
    diff.set_defaults(handler=_run_diff)

    rfc = commands.add_parser(
        "rfc",
        help="contract change RFCs: write one with the schema diff filled in, refresh it, list them",
        description="A contract change goes through review as an RFC: a Markdown file in rfcs/ next to the"
        " contract (NNNN-title-slug.md) whose front matter names the contract and the version it introduces, and"
        " whose sections answer what the review board asks (collection, precision, lifecycle, owners, rollout,"
        " compat shims). check --require-rfc fails when a contract's version changed and no RFC names it.",
    )
    rfc_commands = rfc.add_subparsers(dest="rfc_command", metavar="SUBCOMMAND", parser_class=_Parser)
    rfc_commands.required = True
    rfc_base_help = (
        "the contract before the change: a file or git:REF:PATH (default: the contract's path at"
        " origin/$CHANGE_TARGET when CHANGE_TARGET is set, else at origin/main if it exists, else at HEAD;"
        " a contract absent there is a new contract)"
    )
    rfc_new = rfc_commands.add_parser(
        "new",
        help="write a new RFC from the template, with the schema diff against the base filled in",
        description="Write rfcs/NNNN-title-slug.md (the next free number) from the directory's TEMPLATE.md, or"
        " the built-in template: front matter naming the contract, its new version and the base version, tables"
        " of what the contract says about the metrics and shims the change touches, and the schema diff"
        " (otel-contract diff --format markdown) between the schema-diff markers.",
        epilog="The path written is printed on stderr. Exit codes: 0 written; 1 written, but the version gate"
        " fails (the RFC shows why; bump the version and run rfc update); 2 usage error, an unreadable contract"
        " or base, a bad template, or the file exists (an RFC is never overwritten).",
    )
    rfc_new.add_argument("--contract", "-c", required=True, metavar="CONTRACT", help="the contract after the change")
    rfc_new.add_argument("--base", metavar="BASE", help=rfc_base_help)
    _include_option(rfc_new)
    rfc_new.add_argument("--dir", metavar="DIR", help="the RFC directory (default: rfcs/ next to the contract)")
    rfc_new.add_argument(
        "--author", action="append", default=[], metavar="NAME", help="an author (repeat; default: git user.name)"
    )
    rfc_new.add_argument("--output", "-o", metavar="FILE", help="write the RFC here instead of DIR/NNNN-slug.md")
    rfc_new.add_argument(
        "--today", type=_iso_date, metavar="YYYY-MM-DD", help="the RFC's created date (default: today)"
    )
    rfc_new.add_argument("title", metavar="TITLE", help="what the change does, in a few words")
    rfc_new.set_defaults(handler=_run_rfc)
    rfc_update = rfc_commands.add_parser(
        "update",
        help="refresh an RFC's schema diff and versions after the contract changed in review",
        description="Replace the schema diff between the RFC's markers and set version and base_version in its"
        " front matter (comments and the rest kept); the prose is not touched.",
        epilog="Exit codes: 0 updated; 1 updated, but the version gate fails; 2 usage error, an unreadable"
        " contract, base or RFC (file:line named).",
    )
    rfc_update.add_argument("rfc", metavar="RFC", help="the RFC file")
    rfc_update.add_argument("--contract", "-c", required=True, metavar="CONTRACT", help="the contract after the change")
    rfc_update.add_argument("--base", metavar="BASE", help=rfc_base_help)
    _include_option(rfc_update)
    rfc_update.set_defaults(handler=_run_rfc)
    rfc_list = rfc_commands.add_parser(
        "list",
        help="list the RFCs of directories, checking every front matter",
        description="One line per RFC: number, status, contract and versions, title, file.",
        epilog="Exit codes: 0 listed, 2 an RFC whose front matter cannot be read (file:line named).",
    )
    rfc_list.add_argument(
        "dirs", nargs="*", default=["contracts/rfcs"], metavar="DIR", help="RFC directories (default contracts/rfcs)"
    )
    rfc_list.set_defaults(handler=_run_rfc)

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
    explain.set_defaults(handler=_run_rules)

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
    usage.set_defaults(handler=_run_usage)

    schema = commands.add_parser(
        "schema",
        help="print the contract JSON Schema (for editors and the YAML language server)",
        description="Print the contract JSON Schema (or with --report, the schema of validate's and check's JSON"
        " report; with --diff, the schema of diff's JSON), or with --path where the installed copy is.",
    )
    schema.add_argument("--path", action="store_true", help="print the file path of the installed schema")
    which = schema.add_mutually_exclusive_group()
    which.add_argument("--report", action="store_true", help="the JSON report's schema instead of the contract's")
    which.add_argument("--diff", action="store_true", help="the schema of diff --format json")
    schema.set_defaults(handler=_run_schema)
    return parser


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
            print(f"otel-contract: {_unreadable_line(finding)}", file=sys.stderr)
        return None


def _engine_options(args: argparse.Namespace) -> EngineOptions:
    return EngineOptions(audit=args.audit, env=dict(os.environ))


def _run_validate(args: argparse.Namespace) -> int:
    contract = _load(args.contract, args.today, args.allow_include_outside)
    if contract is None:
        return EXIT_USAGE
    accepted: baseline.Baseline | None = None
    if args.baseline:
        try:
            accepted = baseline.load(args.baseline)
        except baseline.BaselineError as error:
            print(f"otel-contract: error: {error}", file=sys.stderr)
            return EXIT_USAGE
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
        print(f"otel-contract: error: {error}", file=sys.stderr)
        return EXIT_USAGE
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
        print(f"otel-contract: error: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"otel-contract: wrote {len(findings)} findings to baseline {path}", file=sys.stderr)
    return EXIT_OK


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


def _run_normalize(args: argparse.Namespace) -> int:
    contract = _load(args.contract, args.today, args.allow_include_outside)
    if contract is None:
        return EXIT_USAGE
    totals = gate.Totals()
    try:
        captures = read_inputs([args.input], **_read_options(args))
        results = gate.run(captures, contract, _engine_options(args), totals, today=args.today)
        write_capture(args.output, (result.forwarded_request() for result in results))
    except InputError as error:
        print(f"otel-contract: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as error:
        print(f"otel-contract: error: cannot write {args.output}: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = totals.report(contract)
    sys.stderr.write(text_report.render([report], RenderOptions()))
    print(
        f"{text_report.summary([report])}: wrote {totals.captures} requests,"
        f" {totals.items - totals.dropped} of {totals.items} data points{_derived(totals.appended)}, to {args.output}",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if fails(report.findings, _threshold(args.fail_on)) else EXIT_OK


def _derived(points: int) -> str:
    return f" plus {points} from compat shims and smoothed signals" if points else ""


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
        print(f"otel-contract: error: cannot write {path}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        output.write(render(reports, options))
    finally:
        if output is not sys.stdout:
            output.close()
    return EXIT_OK


def _run_check(args: argparse.Namespace) -> int:
    reports: list[Report] = []
    unreadable = False
    if (args.rfc_base or args.rfc_dir) and not args.require_rfc:
        print("otel-contract: error: --rfc-base and --rfc-dir go with --require-rfc", file=sys.stderr)
        return EXIT_USAGE
    if args.require_rfc:
        from otel_contract.rfc.git import default_ref

        rfc_base = args.rfc_base or default_ref(os.environ, Path.cwd())
    for path in args.contracts:
        try:
            result = lint_contract(path, today=args.today, allow_include_outside=args.allow_include_outside)
        except ContractUnreadable as error:
            unreadable = True
            for finding in error.findings:
                print(f"otel-contract: {_unreadable_line(finding)}", file=sys.stderr)
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


def _unreadable_line(finding: Finding) -> str:
    if finding.location and finding.location.line:  # a YAML syntax error has a position
        return text_report.format_finding(finding)
    return f"error: {finding.source}: {finding.message}"


def _run_rules(args: argparse.Namespace) -> int:
    selected = list(RULES.values())
    if args.slug:
        if args.slug not in RULES:
            print(
                f"otel-contract: error: unknown rule {args.slug!r}; see 'otel-contract rules'",
                file=sys.stderr,
            )
            return EXIT_USAGE
        selected = [RULES[args.slug]]
    if args.format == "markdown":
        from otel_contract.reports.markdown import rule_table

        print(rule_table(selected), end="")
        return EXIT_OK
    for rule in selected:
        scope = "/".join(rule.scope_names)
        print(f"{rule.slug:28} {rule.level.label:8} {rule.action.value:7} {scope:19} {rule.summary}")
    return EXIT_OK


def _run_serve(args: argparse.Namespace) -> int:
    # Imported here: the gRPC stack is only needed by this command.
    from otel_contract.server.config import ConfigError, Overrides, load_config
    from otel_contract.server.run import configure_logging, serve

    overrides = Overrides(
        contract=args.contract,
        endpoint=args.endpoint,
        exporter_endpoint=args.exporter_endpoint,
        export_file=args.export_file,
        console=args.console,
        prometheus=args.prometheus,
        queue_dir=args.queue_dir,
        audit=args.audit,
        workers=args.workers,
        allow_include_outside=args.allow_include_outside,
    )
    level = args.log_level.strip().upper()
    if level not in _LOG_LEVELS:
        print(
            f"otel-contract serve: --log-level: expected one of {', '.join(_LOG_LEVELS)}, got {args.log_level!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        config = load_config(args.config, overrides, env=os.environ)
    except ConfigError as error:
        for finding in error.findings:
            where = f"{finding.source}: " if finding.source else ""
            print(f"otel-contract serve: {where}{finding.message}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(level)
    # Workers configure their logging from the environment they are given.
    return serve(config, {**os.environ, "OTEL_CONTRACT_LOG_LEVEL": level})


def _run_usage(args: argparse.Namespace) -> int:
    from otel_contract import usage

    try:
        window = usage.ArchiveWindow.parse(args.archive_after)
    except ValueError as error:
        print(f"otel-contract: error: --archive-after: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not args.dashboards and not args.rules:
        print("otel-contract: error: usage needs --dashboards DIR or --rules DIR (or both)", file=sys.stderr)
        return EXIT_USAGE
    compiled = _load(args.contract, args.today, args.allow_include_outside)
    if compiled is None:
        return EXIT_USAGE
    contract = compiled.contract
    try:
        scan = usage.scan_files(args.dashboards, args.rules)
    except usage.UsageInputError as error:
        print(f"otel-contract: error: {error}", file=sys.stderr)
        return EXIT_USAGE
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
            print(f"otel-contract: error: cannot write {args.contract}: {error}", file=sys.stderr)
            return EXIT_USAGE
    from otel_contract.usage.report import renderer as usage_renderer
    from otel_contract.usage.report import summary as usage_summary

    try:
        output = _open_output(args.output)
    except OSError as error:
        print(f"otel-contract: error: cannot write {args.output}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        output.write(usage_renderer(args.format)(report, written))
    finally:
        if output is not sys.stdout:
            output.close()
    print(usage_summary(report), file=sys.stderr)
    if args.fail_on_candidates and report.candidates and written is None:
        return EXIT_FINDINGS
    return EXIT_OK


def _run_schema(args: argparse.Namespace) -> int:
    from importlib import resources

    if args.report:
        resource = resources.files("otel_contract.reports").joinpath(REPORT_SCHEMA_RESOURCE)
    elif args.diff:
        resource = resources.files("otel_contract.reports").joinpath(DIFF_SCHEMA_RESOURCE)
    else:
        resource = resources.files("otel_contract.contract").joinpath(SCHEMA_RESOURCE)
    if args.path:
        print(Path(str(resource)).resolve())
    else:
        sys.stdout.write(resource.read_text("utf-8"))
    return EXIT_OK


def _run_render(args: argparse.Namespace) -> int:
    from otel_contract.render import OPTION_FIELDS, ArtefactOptions, RenderError, artefact

    chosen = artefact(args.artefact)
    foreign = [name for name in OPTION_FIELDS if getattr(args, name) is not None and name not in chosen.options]
    if foreign:
        flags = ", ".join("--format" if name == "adapter_format" else "--" + name.replace("_", "-") for name in foreign)
        print(f"otel-contract: error: {flags} does not apply to render {chosen.name}", file=sys.stderr)
        return EXIT_USAGE
    contract = _load(args.contract, args.today, args.allow_include_outside)
    if contract is None:
        return EXIT_USAGE
    options = ArtefactOptions(today=args.today or date.today(), **{name: getattr(args, name) for name in OPTION_FIELDS})
    try:
        text = chosen.render(contract.contract, options)
    except RenderError as error:
        print(f"otel-contract: error: cannot render {chosen.name} of {contract.id}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not _write_text(text, args.output):
        return EXIT_USAGE
    if args.output is not None:
        print(f"otel-contract: wrote {chosen.name} of {contract.id} to {args.output}", file=sys.stderr)
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
        print(f"otel-contract: {_unreadable_line(error.findings[0])}", file=sys.stderr)
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


def _run_diff(args: argparse.Namespace) -> int:
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


@dataclass(frozen=True, slots=True)
class _RfcBase:
    contract: Contract | None  # None: the contract is new at the base
    spec: str  # how the base is named: a path or git:REF:PATH


def _run_rfc(args: argparse.Namespace) -> int:
    from otel_contract.rfc import RfcError

    runners = {"new": _rfc_new, "update": _rfc_update, "list": _rfc_list}
    try:
        return runners[args.rfc_command](args)
    except RfcError as error:
        print(f"otel-contract: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _rfc_new(args: argparse.Namespace) -> int:
    from otel_contract.diff.formats import render_markdown
    from otel_contract.rfc import Draft, file_name, fill, next_number, number_of, sections, store
    from otel_contract.rfc import git as rfc_git
    from otel_contract.rfc.advice import gate_advice
    from otel_contract.rfc.facts import new_contract_diff

    if not args.title.strip():
        print("otel-contract: error: the RFC needs a TITLE", file=sys.stderr)
        return EXIT_USAGE
    new = _rfc_contract(args.contract, args.allow_include_outside)
    base = _rfc_base(args.base, args.contract, args.allow_include_outside) if new else None
    if new is None or base is None:
        return EXIT_USAGE
    directory = Path(args.dir) if args.dir else Path(args.contract).parent / "rfcs"
    template, template_name = store.read_template(directory)
    output = Path(args.output) if args.output else None
    number = (number_of(output.name) if output else None) or next_number(store.file_names(directory))
    target = output or directory / file_name(number, args.title)
    authors = tuple(args.author) or tuple(filter(None, [rfc_git.author(Path.cwd())]))
    draft = Draft(
        number=number,
        title=args.title.strip(),
        contract=new.name,
        version=new.version,
        base_version=base.contract.version if base.contract else None,
        authors=authors,
        owners=new.owners,
        created=args.today or date.today(),
    )
    result = compare(base.contract, new) if base.contract else None
    schema_diff = render_markdown(result, heading_level=3) if result else new_contract_diff(new, base.spec)
    text = fill(template, template_name, draft, sections(base.contract, new), schema_diff)
    try:
        store.write_new(target, text)
    except FileExistsError:
        print(
            f"otel-contract: error: {target} exists; an RFC is never overwritten (choose another --output, or"
            f" refresh it: otel-contract rfc update {target} -c {args.contract})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except OSError as error:
        print(f"otel-contract: error: cannot write {target}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"otel-contract: wrote RFC {number:04d} ({_rfc_change(draft.base_version, new)}) to {target}", file=sys.stderr
    )
    advice = gate_advice(result, contract_path=args.contract, rfc_path=str(target))
    if advice.message:
        print(f"otel-contract: {advice.message}", file=sys.stderr)
    return EXIT_FINDINGS if advice.fails else EXIT_OK


def _rfc_update(args: argparse.Namespace) -> int:
    from otel_contract.diff.formats import render_markdown
    from otel_contract.rfc import parse, replace_schema_diff, store, with_values
    from otel_contract.rfc.advice import gate_advice
    from otel_contract.rfc.facts import new_contract_diff
    from otel_contract.rfc.naming import number_of

    path = Path(args.rfc)
    text = store.read_text(path)
    shown = store.display(path)
    rfc = parse(text, shown, number_of(path.name) or 0)
    new = _rfc_contract(args.contract, args.allow_include_outside)
    base = _rfc_base(args.base, args.contract, args.allow_include_outside) if new else None
    if new is None or base is None:
        return EXIT_USAGE
    if rfc.contract != new.name:
        print(
            f"otel-contract: error: {shown} is about contract {rfc.contract}, but {args.contract} is {new.name}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    result = compare(base.contract, new) if base.contract else None
    schema_diff = render_markdown(result, heading_level=3) if result else new_contract_diff(new, base.spec)
    base_version = base.contract.version if base.contract else None
    text = with_values(text, shown, {"version": new.version, "base_version": base_version})
    text = replace_schema_diff(text, shown, schema_diff)
    try:
        store.rewrite(path, text)
    except OSError as error:
        print(f"otel-contract: error: cannot write {shown}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"otel-contract: updated {rfc.label} ({_rfc_change(base_version, new)}) in {shown}", file=sys.stderr)
    advice = gate_advice(result, contract_path=args.contract, rfc_path=str(path))
    if advice.message:
        print(f"otel-contract: {advice.message}", file=sys.stderr)
    return EXIT_FINDINGS if advice.fails else EXIT_OK


def _rfc_list(args: argparse.Namespace) -> int:
    from otel_contract.rfc import store

    for directory in args.dirs:
        for rfc in store.load_rfcs(Path(directory)):
            change = f"{rfc.base_version} -> {rfc.version}" if rfc.base_version else f"new at {rfc.version}"
            print(f"{rfc.number:04d}  {rfc.status.value:8}  {rfc.contract} {change}  {rfc.title}  ({rfc.path})")
    return EXIT_OK


def _rfc_contract(spec: str, allow_outside: bool) -> Contract | None:
    from otel_contract.contract.files import GIT_PREFIX

    if spec.startswith(GIT_PREFIX):
        print(f"otel-contract: error: -c takes the contract file after the change, not {spec}", file=sys.stderr)
        return None
    return _read_model(spec, allow_outside)


def _rfc_base(base: str | None, contract_path: str, allow_outside: bool) -> _RfcBase | None:
    """The contract before the change, or None after saying why it cannot be read (exit 2)."""
    from otel_contract.rfc import git as rfc_git

    if base is not None:
        old = _read_model(base, allow_outside)
        return _RfcBase(old, base) if old else None
    try:
        ref = rfc_git.default_ref(os.environ, Path.cwd())
        spec = rfc_git.spec(ref, contract_path)
        if not rfc_git.exists_at(ref, contract_path):
            return _RfcBase(None, spec)
    except ContractFileError as error:
        print(f"otel-contract: error: no --base, and the default base cannot be read: {error}", file=sys.stderr)
        return None
    old = _read_model(spec, allow_outside)
    return _RfcBase(old, spec) if old else None


def _rfc_change(base_version: str | None, new: Contract) -> str:
    return f"{new.name} {base_version} -> {new.version}" if base_version else f"new contract {new.id}"


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otel-contract check ... | head`
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
