"""otel-contract rfc new, update and list: contract change RFCs."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from otel_contract.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    _include_option,
    _iso_date,
    _Parser,
    _read_model,
    usage_error,
)
from otel_contract.contract.files import ContractFileError
from otel_contract.contract.model import Contract

if TYPE_CHECKING:
    from otel_contract.rfc.advice import Advice
    from otel_contract.rfc.commands import Base


def register(commands: Subparsers[_Parser]) -> None:
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
    rfc_new.set_defaults(handler=run)
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
    rfc_update.set_defaults(handler=run)
    rfc_list = rfc_commands.add_parser(
        "list",
        help="list the RFCs of directories, checking every front matter",
        description="One line per RFC: number, status, contract and versions, title, file.",
        epilog="Exit codes: 0 listed, 2 an RFC whose front matter cannot be read (file:line named).",
    )
    rfc_list.add_argument(
        "dirs", nargs="*", default=["contracts/rfcs"], metavar="DIR", help="RFC directories (default contracts/rfcs)"
    )
    rfc_list.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from otel_contract.rfc import RfcError
    from otel_contract.rfc.commands import CannotWrite, WrongContract

    runners = {"new": _rfc_new, "update": _rfc_update, "list": _rfc_list}
    try:
        return runners[args.rfc_command](args)
    except (RfcError, WrongContract, CannotWrite) as error:
        return usage_error("otel-contract", f"error: {error}")


def _rfc_new(args: argparse.Namespace) -> int:
    from otel_contract.rfc.commands import RfcExists, new_rfc

    if not args.title.strip():
        return usage_error("otel-contract", "error: the RFC needs a TITLE")
    new = _rfc_contract(args.contract, args.allow_include_outside)
    base = _rfc_base(args.base, args.contract, args.allow_include_outside) if new else None
    if new is None or base is None:
        return EXIT_USAGE
    try:
        written = new_rfc(
            new,
            base,
            title=args.title,
            contract_path=args.contract,
            directory=Path(args.dir) if args.dir else Path(args.contract).parent / "rfcs",
            output=Path(args.output) if args.output else None,
            authors=args.author,
            created=args.today or date.today(),
            cwd=Path.cwd(),
        )
    except RfcExists as error:
        return usage_error(
            "otel-contract",
            f"error: {error.path} exists; an RFC is never overwritten (choose another --output, or"
            f" refresh it: otel-contract rfc update {error.path} -c {args.contract})",
        )
    print(f"otel-contract: wrote {written.label} ({written.change}) to {written.path}", file=sys.stderr)
    return _advise(written.advice)


def _rfc_update(args: argparse.Namespace) -> int:
    from otel_contract.rfc.commands import open_rfc, update_rfc

    opened = open_rfc(Path(args.rfc))
    new = _rfc_contract(args.contract, args.allow_include_outside)
    base = _rfc_base(args.base, args.contract, args.allow_include_outside) if new else None
    if new is None or base is None:
        return EXIT_USAGE
    written = update_rfc(opened, new, base, contract_path=args.contract)
    print(f"otel-contract: updated {written.label} ({written.change}) in {written.path}", file=sys.stderr)
    return _advise(written.advice)


def _advise(advice: Advice) -> int:
    if advice.message:
        print(f"otel-contract: {advice.message}", file=sys.stderr)
    return EXIT_FINDINGS if advice.fails else EXIT_OK


def _rfc_list(args: argparse.Namespace) -> int:
    from otel_contract.rfc.commands import list_rfcs

    for line in list_rfcs(Path(directory) for directory in args.dirs):
        print(line)
    return EXIT_OK


def _rfc_contract(spec: str, allow_outside: bool) -> Contract | None:
    from otel_contract.contract.files import GIT_PREFIX

    if spec.startswith(GIT_PREFIX):
        print(f"otel-contract: error: -c takes the contract file after the change, not {spec}", file=sys.stderr)
        return None
    return _read_model(spec, allow_outside)


def _rfc_base(base: str | None, contract_path: str, allow_outside: bool) -> Base | None:
    """The contract before the change, or None after saying why it cannot be read (exit 2)."""
    from otel_contract.rfc.commands import Base, default_base

    if base is not None:
        old = _read_model(base, allow_outside)
        return Base(old, base) if old else None
    try:
        default = default_base(contract_path, os.environ, Path.cwd())
    except ContractFileError as error:
        print(f"otel-contract: error: no --base, and the default base cannot be read: {error}", file=sys.stderr)
        return None
    if not default.exists:
        return Base(None, default.spec)
    old = _read_model(default.spec, allow_outside)
    return Base(old, default.spec) if old else None
