"""The ``otel-contract`` command line: parse arguments, call the library, map results to exit codes.

Exit codes (design §5): 0 nothing at or above ``--fail-on``; 1 findings at or above it; 2 usage
error or unreadable/unparsable input, with one line naming the file (and line) and the reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from otel_contract import __version__
from otel_contract.cli import check, diff, render, rfc, rules, serve, usage, validate
from otel_contract.cli._common import EXIT_OK, _Parser


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otel-contract",
        description="Enforce one versioned monitoring contract on OpenTelemetry and Prometheus telemetry.",
        epilog="Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage error or unreadable input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    # The order of --help's command list.
    for command in (check, validate, serve, render, diff, rfc, rules, usage):
        command.register(commands)
    render.register_schema(commands)
    return parser


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
