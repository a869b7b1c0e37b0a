"""The ``otel-contract`` command line: parse arguments, call the library, map results to exit codes.

Exit codes (design §5): 0 nothing at or above ``--fail-on``; 1 findings at or above it; 2 usage
error or unreadable/unparsable input, with one line naming the file (and line) and the reason.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otel_contract import __version__
from otel_contract.cli._common import EXIT_OK, _Parser

# (module, its registering function, the commands that registers), in the order of --help's command
# list. A command line that names a command imports only that module: `serve` then carries none of the
# others' imports (the capture readers, the report formats, diff), about 4 MiB of a running sidecar.
_REGISTRARS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("check", "register", ("check",)),
    ("validate", "register", ("validate", "normalize")),
    ("serve", "register", ("serve",)),
    ("render", "register", ("render",)),
    ("diff", "register", ("diff",)),
    ("rfc", "register", ("rfc",)),
    ("rules", "register", ("rules",)),
    ("usage", "register", ("usage",)),
    ("render", "register_schema", ("schema",)),
)


def _build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otel-contract",
        description="Enforce one versioned monitoring contract on OpenTelemetry and Prometheus telemetry.",
        epilog="Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage error or unreadable input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    # Options before the command are only --help and --version, which need every command.
    named = [each for each in _REGISTRARS if argv and argv[0] in each[2]]
    for module, function, _ in named or _REGISTRARS:
        getattr(importlib.import_module(f"otel_contract.cli.{module}"), function)(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser(arguments).parse_args(arguments)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otel-contract check ... | head`
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
