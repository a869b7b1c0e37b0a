"""RFC files on disk: the RFCs of a directory, its template, and writing a new RFC without
overwriting anything."""

from __future__ import annotations

import os
from pathlib import Path

from otel_contract.findings import Location
from otel_contract.rfc.frontmatter import parse
from otel_contract.rfc.model import Rfc, RfcError
from otel_contract.rfc.naming import number_of
from otel_contract.rfc.template import TEMPLATE

TEMPLATE_FILE = "TEMPLATE.md"
BUILT_IN = "(built-in template)"


def display(path: Path) -> str:
    """How messages name ``path``: relative to the current directory when that is shorter to read."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def file_names(directory: Path) -> list[str]:
    """The names of the files in ``directory`` (none when it does not exist yet)."""
    try:
        return sorted(entry.name for entry in directory.iterdir() if entry.is_file())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise RfcError(Location(display(directory)), f"cannot list the RFC directory: {error.strerror}") from None


def load_rfcs(directory: Path) -> tuple[Rfc, ...]:
    """Every RFC (``NNNN-slug.md``) in ``directory``, by number; ``RfcError`` for the first unreadable one."""
    rfcs = []
    for name in file_names(directory):
        number = number_of(name)
        if number is not None:
            path = directory / name
            rfcs.append(parse(read_text(path), display(path), number))
    return tuple(sorted(rfcs, key=lambda rfc: (rfc.number, rfc.path)))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RfcError(Location(display(path)), f"not UTF-8 (byte {error.start})") from None
    except OSError as error:
        raise RfcError(Location(display(path)), f"cannot read: {error.strerror}") from None


def read_template(directory: Path) -> tuple[str, str]:
    """The template text and how to name it: the directory's ``TEMPLATE.md``, else the built-in one."""
    path = directory / TEMPLATE_FILE
    if path.is_file():
        return read_text(path), display(path)
    return TEMPLATE, BUILT_IN


def write_new(path: Path, text: str) -> None:
    """Write ``text`` to a file that must not exist yet (``FileExistsError`` otherwise): an RFC is
    reviewed prose, and a second ``rfc new`` must never replace it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as output:
        output.write(text)


def rewrite(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file, so an interrupted write leaves the old RFC."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
