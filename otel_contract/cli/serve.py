"""otel-contract serve: run the sidecar."""

from __future__ import annotations

import argparse
import os
import sys

from otel_contract.cli._common import (
    EXIT_USAGE,
    Subparsers,
    _include_option,
    _Parser,
    _positive_int,
    usage_error,
)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def register(commands: Subparsers[_Parser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the sidecar: OTLP/gRPC and OTLP/HTTP receivers that enforce the contract and forward",
        description="Run the sidecar: receive OTLP over gRPC (4317) and HTTP (4318; protobuf or JSON) for metrics,"
        " traces and logs, normalize and validate with the"
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
    serve.add_argument("--endpoint", metavar="HOST:PORT", help="OTLP/gRPC receiver endpoint (default 127.0.0.1:4317)")
    serve.add_argument(
        "--http-endpoint",
        metavar="HOST:PORT",
        help="OTLP/HTTP receiver endpoint, POST /v1/metrics, /v1/traces, /v1/logs (default 127.0.0.1:4318;"
        " 'off' disables)",
    )
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
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the gRPC stack is only needed by this command.
    from otel_contract.server.config import ConfigError, Overrides, load_config
    from otel_contract.server.run import configure_logging, serve

    overrides = Overrides(
        contract=args.contract,
        endpoint=args.endpoint,
        http_endpoint=args.http_endpoint,
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
        return usage_error(
            "otel-contract serve", f"--log-level: expected one of {', '.join(_LOG_LEVELS)}, got {args.log_level!r}"
        )
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
