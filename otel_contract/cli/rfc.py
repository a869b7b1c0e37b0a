"""otel-contract rfc new, update and list: contract change RFCs."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

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
from otel_contract.diff import compare


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


@dataclass(frozen=True, slots=True)
class _RfcBase:
    contract: Contract | None  # None: the contract is new at the base
    spec: str  # how the base is named: a path or git:REF:PATH


def run(args: argparse.Namespace) -> int:
    from otel_contract.rfc import RfcError

    runners = {"new": _rfc_new, "update": _rfc_update, "list": _rfc_list}
    try:
        return runners[args.rfc_command](args)
    except RfcError as error:
        return usage_error("otel-contract", f"error: {error}")


def _rfc_new(args: argparse.Namespace) -> int:
    from otel_contract.diff.formats import render_markdown
    from otel_contract.rfc import Draft, file_name, fill, next_number, number_of, sections, store
    from otel_contract.rfc import git as rfc_git
    from otel_contract.rfc.advice import gate_advice
    from otel_contract.rfc.facts import new_contract_diff

    if not args.title.strip():
        return usage_error("otel-contract", "error: the RFC needs a TITLE")
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
        return usage_error(
            "otel-contract",
            f"error: {target} exists; an RFC is never overwritten (choose another --output, or"
            f" refresh it: otel-contract rfc update {target} -c {args.contract})",
        )
    except OSError as error:
        return usage_error("otel-contract", f"error: cannot write {target}: {error.strerror}")
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
        return usage_error("otel-contract", f"error: cannot write {shown}: {error.strerror}")
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
