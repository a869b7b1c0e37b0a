"""Rewrite the copies of the catalogs that live outside the code (``make docs``).

Two files carry them for readers that cannot import Python: the README's rule table (between the
``rules`` markers, from ``otel_contract/rules.py``) and change table (between the ``changes``
markers, from ``otel_contract/diff/kinds.py``), and the contract JSON Schema's ``telemetryRule``
enum (editors complete ``policy:`` keys from it). All are generated; tests fail when one differs.

    python tools/sync_catalog.py            # rewrite both
    python tools/sync_catalog.py --check    # exit 1 naming each stale file, write nothing
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from otel_contract.diff.formats import change_table
from otel_contract.diff.kinds import KINDS
from otel_contract.reports.markdown import rule_table
from otel_contract.rules import RULES, Scope

README = "README.md"
SCHEMA = "otel_contract/contract/schema/contract-v1.schema.json"
# The README's generated blocks: marker name -> the table that goes between its marker lines.
_BLOCKS: dict[str, Callable[[], str]] = {
    "rules": lambda: rule_table(RULES.values()),
    "changes": lambda: change_table(KINDS.values()),
}

# The enum's items sit on their own lines between "[" and "]"; the rest of the file is hand-written.
_ENUM = re.compile(r'("telemetryRule": \{[^{}]*?"enum": \[\n)[^\]]*?(\n *\])')
_WIDTH = 120
_INDENT = " " * 8


class SyncError(Exception):
    """A file the catalog cannot be written into: its markers or its enum are not where expected."""


def readme(text: str) -> str:
    """``text`` with each catalog's table between its marker lines (prose may quote the markers)."""
    for name, table in _BLOCKS.items():
        text = _block(text, name, table())
    return text


def _block(text: str, name: str, table: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    lines = text.splitlines(keepends=True)
    begins = [index for index, line in enumerate(lines) if line.strip() == begin]
    ends = [index for index, line in enumerate(lines) if line.strip() == end]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise SyncError(f"{README}: expected one {begin} line, then one {end} line, around the {name} table")
    return "".join([*lines[: begins[0] + 1], table, *lines[ends[0] :]])


def schema(text: str) -> str:
    """``text`` with the telemetry rules' slugs as the ``telemetryRule`` enum, in catalog order."""
    slugs = [f'"{slug}"' for slug, rule in RULES.items() if Scope.TELEMETRY in rule.scope]
    lines = [_INDENT]
    for item in slugs:
        if len(lines[-1]) + len(item) + 2 > _WIDTH:  # room for ", " or a closing ","
            lines[-1] = lines[-1].rstrip()
            lines.append(_INDENT)
        lines[-1] += f"{item}, "
    body = "\n".join(lines).removesuffix(", ")
    replaced, count = _ENUM.subn(lambda match: f"{match[1]}{body}{match[2]}", text)
    if count != 1:
        raise SyncError(f'{SCHEMA}: expected one "telemetryRule" object with an "enum" array, found {count}')
    return replaced


_COPIES: dict[str, Callable[[str], str]] = {README: readme, SCHEMA: schema}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="report stale files, write nothing")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="the repository")
    args = parser.parse_args(argv)
    texts = {name: (args.root / name).read_text(encoding="utf-8") for name in _COPIES}
    try:
        wanted = {name: generate(texts[name]) for name, generate in _COPIES.items()}
    except SyncError as error:
        print(f"sync_catalog: {error}", file=sys.stderr)
        return 2
    stale = [name for name in _COPIES if wanted[name] != texts[name]]
    for name in stale:
        if args.check:
            print(f"{name}: differs from the catalogs in the code; run make docs")
        else:
            (args.root / name).write_text(wanted[name], encoding="utf-8")
            print(f"{name}: rewritten from the catalogs in the code")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
