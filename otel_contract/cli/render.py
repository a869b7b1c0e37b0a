"""otel-contract render and schema: files generated from the contract, and the JSON Schemas."""

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
    _Parser,
    _write_text,
    usage_error,
)
from otel_contract.contract.loader import SCHEMA_RESOURCE
from otel_contract.diff.formats import SCHEMA_RESOURCE as DIFF_SCHEMA_RESOURCE
from otel_contract.reports.json import SCHEMA_RESOURCE as REPORT_SCHEMA_RESOURCE


def register(commands: Subparsers[_Parser]) -> None:
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
    collector_options = render.add_argument_group("collector options")
    collector_options.add_argument(
        "--receiver-endpoint", metavar="HOST:PORT", help="the otlp receiver's endpoint (default 127.0.0.1:4317)"
    )
    collector_options.add_argument(
        "--exporter-endpoint",
        metavar="HOST:PORT",
        help="the otlp_grpc exporter's destination, e.g. the backend's OTLP endpoint (this or --file is required"
        " unless --processors-only)",
    )
    collector_options.add_argument("--file", metavar="PATH", help="a file exporter writing to PATH instead")
    collector_options.add_argument(
        "--processors-only",
        action="store_true",
        default=None,
        help="write only the processors and each pipeline's list of them, to paste into an existing configuration",
    )
    collector_options.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the contract asks for something the Collector cannot do (listed on stderr); the"
        " configuration is written all the same",
    )
    render.set_defaults(handler=_run_render)


def register_schema(commands: Subparsers[_Parser]) -> None:
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


def run(args: argparse.Namespace) -> int:
    return _run_render(args) if args.command == "render" else _run_schema(args)


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
    if args.check and not chosen.checked:
        return usage_error("otel-contract", f"error: --check does not apply to render {chosen.name}")
    foreign = [name for name in OPTION_FIELDS if getattr(args, name) is not None and name not in chosen.options]
    if foreign:
        flags = ", ".join("--format" if name == "adapter_format" else "--" + name.replace("_", "-") for name in foreign)
        return usage_error("otel-contract", f"error: {flags} does not apply to render {chosen.name}")
    contract = _load(args.contract, args.today, args.allow_include_outside)
    if contract is None:
        return EXIT_USAGE
    options = ArtefactOptions(today=args.today or date.today(), **{name: getattr(args, name) for name in OPTION_FIELDS})
    try:
        text = chosen.render(contract.contract, options)
    except RenderError as error:
        return usage_error("otel-contract", f"error: cannot render {chosen.name} of {contract.id}: {error}")
    if not _write_text(text, args.output):
        return EXIT_USAGE
    if args.output is not None:
        print(f"otel-contract: wrote {chosen.name} of {contract.id} to {args.output}", file=sys.stderr)
    if args.check:
        missing = chosen.gaps(contract.contract, options)
        for line in missing:
            print(f"otel-contract: only the sidecar can enforce {line}", file=sys.stderr)
        return EXIT_FINDINGS if missing else EXIT_OK
    return EXIT_OK
