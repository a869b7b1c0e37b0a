"""``usage --write``: mark archive candidates ``stability: archived`` in the files that define them,
and bump the root contract's version as ``diff`` requires.

The edit is a ruamel.yaml round trip (comments, key order, quoting and flow style kept; the file's
own indentation guessed and reused; no line wrapping), so the text changes only where a stability
or the version changes. Each file is replaced atomically (a temporary file renamed over it); if the
result does not pass ``lint_contract`` without errors, every file is put back as it was.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from otel_contract import rules
from otel_contract.contract.model import Contract, Stability
from otel_contract.contract.yaml_source import YamlSyntaxError, parse_yaml
from otel_contract.loading import lint_contract
from otel_contract.rules import Level
from otel_contract.usage.contract_files import defining_files

# Where ``stability`` goes in an entry that has none: after the first of these keys found, from the
# end, which is where the schema and the examples put it.
_BEFORE_STABILITY = ("owner", "description", "unit", "type", "name")
_PARENT = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")


class ArchiveError(Exception):
    """The contract could not be rewritten; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    archived: tuple[str, ...]
    files: tuple[str, ...]  # files written
    old_version: str
    new_version: str
    bump: str  # "none" | "patch" | "minor" | "major"


def archive(
    root: str | os.PathLike[str], contract: Contract, names: Sequence[str], *, allow_include_outside: bool = False
) -> ArchiveResult:
    """Archive the metrics ``names`` of ``contract`` (loaded from ``root``) in its files; the result is
    checked as ``lint_contract`` with ``allow_include_outside`` checks it."""
    # Imported here: the diff package classifies the change; nothing else in usage needs it.
    from otel_contract.diff import compare, next_version

    if not names:
        return ArchiveResult((), (), contract.version, contract.version, "none")
    root_path = Path(root).resolve()
    wanted = set(names)
    archived_model = replace(
        contract,
        metrics=tuple(replace(m, stability=Stability.ARCHIVED) if m.name in wanted else m for m in contract.metrics),
    )
    bump = compare(contract, archived_model).required_bump
    new_version = next_version(contract.version, bump)
    where = defining_files(root_path)
    edits: dict[Path, list[str]] = {}
    for name in names:
        if name not in where:
            raise ArchiveError(f"metric {name!r} is in no file of {root}")
        edits.setdefault(where[name], []).append(name)
    if new_version != contract.version:
        edits.setdefault(root_path, [])
    originals = {path: path.read_text("utf-8") for path in edits}
    rewritten = {
        path: _edit(originals[path], path, edits[path], new_version if path == root_path else None) for path in edits
    }
    for path, text in rewritten.items():
        _replace_file(path, text)
    errors = [
        f
        for f in lint_contract(root_path, allow_include_outside=allow_include_outside).findings
        if f.level is Level.ERROR and f.rule is not rules.EXPIRED_SHIM
    ]
    if errors:
        for path, text in originals.items():
            _replace_file(path, text)
        raise ArchiveError(f"the archived contract would not pass check ({errors[0].message}); nothing was changed")
    return ArchiveResult(
        archived=tuple(names),
        files=tuple(str(path) for path in rewritten),
        old_version=contract.version,
        new_version=new_version,
        bump=bump.name.lower(),
    )


def _edit(text: str, path: Path, names: Sequence[str], version: str | None) -> str:
    # ruamel.yaml reads without bounds: it gets only text that the bounded reader accepts.
    try:
        parse_yaml(text, str(path))
    except YamlSyntaxError as error:
        raise ArchiveError(f"{error.location}: {error.reason}") from None
    _, sequence_indent, dash_offset = load_yaml_guess_indent(text)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never wrap a long line that was not wrapped
    yaml.indent(mapping=_mapping_indent(text), sequence=sequence_indent or 2, offset=dash_offset or 0)
    document = yaml.load(text)
    if not isinstance(document, CommentedMap):
        raise ArchiveError(f"{path}: not a contract mapping")
    entries = {entry.get("name"): entry for entry in document.get("metrics") or () if isinstance(entry, CommentedMap)}
    for name in names:
        _set(entries[name], "stability", Stability.ARCHIVED.value)
    if version is not None:
        _set(document, "version", version)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _set(mapping: CommentedMap, key: str, value: str) -> None:
    """Set ``key``, keeping the old value's quoting; a new key goes where the examples put it."""
    if key in mapping:
        old = mapping[key]
        mapping[key] = type(old)(value) if isinstance(old, ScalarString) else value
        return
    keys = list(mapping)
    after = next((k for k in _BEFORE_STABILITY if k in mapping), None)
    mapping.insert(keys.index(after) + 1 if after is not None else len(keys), key, value)


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mapping_indent(text: str) -> int:
    """The indentation of a nested block mapping (ruamel guesses the sequences' only)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for parent, child in itertools.pairwise(lines):
        match = _PARENT.match(parent)
        depth = len(child) - len(child.lstrip(" "))
        if match and depth > len(match.group(1)) and not child.lstrip().startswith("- "):
            return depth - len(match.group(1))
    return 2
