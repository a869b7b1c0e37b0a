"""Contract files -> validated, merged document -> model -> compiled lookup tables.

Phases, each reporting every problem it finds rather than the first:

1. read and parse YAML (a file that cannot be read or parsed raises ``ContractUnreadable``);
2. validate every file, the includes too, against the JSON Schema;
3. merge includes under the including file (precedence documented in the README);
4. build the model (only from a schema-valid document, because the semantic checks trust the shape
   the schema guarantees).

The semantic checks and compiling (``lint_contract``, ``load_contract``) run one layer up, in
loading.py: some checks need the compat shims and the autoscaling signals, which sit above this layer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from otel_contract import rules
from otel_contract.contract.files import ContractFileError, ContractFiles, WorkingTree
from otel_contract.contract.model import Contract, build_contract
from otel_contract.contract.schema_errors import schema_findings
from otel_contract.contract.yaml_source import LocDict, LocList, YamlSyntaxError, format_path, locate, parse_yaml
from otel_contract.findings import Finding, Location
from otel_contract.rules import Level

SCHEMA_RESOURCE = "schema/contract-v1.schema.json"


class ContractError(Exception):
    """A contract could not be loaded; ``findings`` says every reason, with locations."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = tuple(findings)
        first = self.findings[0] if self.findings else None
        summary = f"{first.source}: {first.message}" if first else "invalid contract"
        more = len(self.findings) - 1
        super().__init__(summary + (f" (and {more} more)" if more > 0 else ""))

    def named_as(self, path: str) -> tuple[Finding, ...]:
        """The findings with the top-level contract named as the user gave it (``path``), not as the
        loader displays it (relative to the current directory), so an error names the file typed."""
        shown = WorkingTree().display(Path(path))
        return tuple(
            replace(finding, location=replace(finding.location, file=path))
            if finding.location is not None and finding.location.file == shown
            else finding
            for finding in self.findings
        )


class ContractUnreadable(ContractError):
    """A contract file is missing, unreadable, not UTF-8 or not YAML: a usage error (exit 2)."""


@dataclass(frozen=True, slots=True)
class LintResult:
    """What ``check`` learns about one contract file."""

    path: str
    contract: Contract | None  # None when the schema already failed
    findings: tuple[Finding, ...]

    def has_errors(self, *, ignore: frozenset[rules.Rule] = frozenset()) -> bool:
        return any(f.level is Level.ERROR and f.rule not in ignore for f in self.findings)


@dataclass(frozen=True, slots=True)
class ReadContract:
    """A contract file and its includes, read, validated, merged and built: what the checks look at."""

    path: str
    document: Any  # the merged document the checks locate their findings in
    contract: Contract | None  # None when the schema failed: the checks trust the shape it guarantees
    findings: tuple[Finding, ...]  # reading's, the schema's and the includes'


@cache
def schema() -> Mapping[str, Any]:
    """The contract JSON Schema shipped with the package."""
    text = resources.files("otel_contract.contract").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    document: Mapping[str, Any] = json.loads(text)
    return document


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


# --- reading -------------------------------------------------------------------------------------


def _read(files: ContractFiles, path: Path, display: str) -> tuple[Any, list[Finding]]:
    try:
        data = files.read_bytes(path)
    except ContractFileError as error:
        raise ContractUnreadable([_fatal(Location(display), str(error))]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        message = f"not UTF-8: byte 0x{data[error.start]:02x} cannot be decoded"
        raise ContractUnreadable([_fatal(Location(display, line, column), message)]) from None
    try:
        document, duplicates = parse_yaml(text, display)
    except YamlSyntaxError as error:
        raise ContractUnreadable([_fatal(error.location, error.reason)]) from None
    findings = [
        Finding.of(rules.CONTRACT_SYNTAX, f"duplicate key {key!r}; the last value wins", location=loc)
        for loc, key in duplicates
    ]
    return document, findings


def _fatal(location: Location, message: str) -> Finding:
    return Finding.of(rules.CONTRACT_SYNTAX, message, location=location)


# --- includes and merge ----------------------------------------------------------------------------

# List sections merged by a key (the including file's entry replaces the included one), and list
# sections concatenated (included entries first) or united. Everything else: mappings merge key by
# key, and the including file's scalars win.
_KEYED_LISTS: Mapping[tuple[str, ...], str] = {
    ("metrics",): "name",
    ("compat",): "record",
    ("invariants",): "name",
    ("autoscaling",): "metric",
}
_CONCATENATED = frozenset({("resource", "actions"), ("naming", "rules")})
_UNITED = frozenset({("owners",), ("resource", "required")})


def _merge(base: Any, override: Any, at: tuple[str, ...] = ()) -> Any:
    if isinstance(base, LocDict) and isinstance(override, LocDict):
        merged = LocDict(base)
        merged.loc = override.loc
        merged.key_locs = {**base.key_locs}
        merged.value_locs = {**base.value_locs}
        for key, value in override.items():
            merged[key] = _merge(base[key], value, (*at, key)) if key in base else value
            merged.key_locs[key] = override.key_locs[key]
            merged.value_locs[key] = override.value_locs[key]
        return merged
    if isinstance(base, LocList) and isinstance(override, LocList):
        if at in _KEYED_LISTS:
            field = _KEYED_LISTS[at]
            replaced = {item.get(field) for item in override if isinstance(item, dict)}
            pairs = [
                (item, loc)
                for item, loc in zip(base, base.item_locs, strict=True)
                if not (isinstance(item, dict) and item.get(field) in replaced)
            ]
            pairs += list(zip(override, override.item_locs, strict=True))
        elif at in _CONCATENATED:
            pairs = [*zip(base, base.item_locs, strict=True), *zip(override, override.item_locs, strict=True)]
        elif at in _UNITED:
            pairs = list(zip(base, base.item_locs, strict=True))
            pairs += [(i, loc) for i, loc in zip(override, override.item_locs, strict=True) if i not in base]
        else:
            return override
        merged_list = LocList(item for item, _ in pairs)
        merged_list.loc = override.loc
        merged_list.item_locs = [loc for _, loc in pairs]
        return merged_list
    return override


@dataclass(frozen=True, slots=True)
class _Tree:
    """How one contract's files are read: from where, and where includes may lead."""

    files: ContractFiles
    within: Path | None  # the directory every include must resolve into; None: anywhere


def _load_tree(
    tree: _Tree, path: Path, stack: tuple[Path, ...], seen: set[Path], included: list[str]
) -> tuple[Any, list[Finding]]:
    """The merged document rooted at ``path`` and the findings of every file in it."""
    files = tree.files
    display = files.display(path)
    document, findings = _read(files, path, display)
    if not isinstance(document, LocDict) or "contract" not in document:
        # Not a contract file. Say so without its keys or values: an include can name any file.
        return None, [_not_a_contract(document, display)]
    findings += schema_findings(document, display, _validator(), rules.CONTRACT_SCHEMA, what="the contract")
    merged: Any = None
    include_list = document.get("include")
    if isinstance(include_list, list):
        for index, entry in enumerate(include_list):
            if not isinstance(entry, str):
                continue  # the schema reported it
            target = (path.parent / entry).resolve()  # symlinks followed: a link out of the tree is out
            where = locate(document, ("include", index))
            if tree.within is not None and not target.is_relative_to(tree.within):
                # Refused before looking at the file, so that a refusal does not tell whether it exists.
                findings.append(_outside(tree, entry, target, where, index))
                continue
            if target in stack:
                cycle = " -> ".join(files.display(p) for p in (*stack[stack.index(target) :], target))
                findings.append(Finding.of(rules.CONTRACT_INCLUDE, f"include cycle: {cycle}", location=where))
                continue
            if target in seen:
                continue  # a shared base included along two paths is merged once
            if not files.is_file(target):
                findings.append(
                    Finding.of(
                        rules.CONTRACT_INCLUDE,
                        f"included file {entry!r} does not exist (looked for {files.display(target)})",
                        location=where,
                        path=format_path(("include", index)),
                    )
                )
                continue
            seen.add(target)
            included.append(files.display(target))
            child, child_findings = _load_tree(tree, target, (*stack, target), seen, included)
            findings += child_findings
            if child is not None:
                merged = child if merged is None else _merge(merged, child)
    own = LocDict((k, v) for k, v in document.items() if k != "include")
    own.loc, own.key_locs, own.value_locs = document.loc, document.key_locs, document.value_locs
    return (own if merged is None else _merge(merged, own)), findings


def _not_a_contract(document: Any, display: str) -> Finding:
    if not isinstance(document, LocDict):
        [finding] = schema_findings(document, display, _validator(), rules.CONTRACT_SCHEMA, what="the contract")
        return finding
    return Finding.of(
        rules.CONTRACT_SCHEMA,
        "not a contract file: it has no 'contract' key (every contract file, an included one too, starts with"
        " contract: NAME and version: X.Y.Z)",
        location=document.loc,
        path="(top level)",
    )


def _outside(tree: _Tree, entry: str, target: Path, where: Location | None, index: int) -> Finding:
    assert tree.within is not None
    files = tree.files
    resolved = files.display(target)
    shown = repr(entry) if resolved == entry else f"{entry!r} ({resolved})"  # a symlink: where it leads
    return Finding.of(
        rules.CONTRACT_INCLUDE,
        f"included file {shown} is outside the directory of the top-level contract ({files.display(tree.within)});"
        " --allow-include-outside (serve: contract.allow_include_outside) allows it",
        location=where,
        path=format_path(("include", index)),
    )


# --- entry points ----------------------------------------------------------------------------------


def read_contract(
    path: str | os.PathLike[str], *, files: ContractFiles | None = None, allow_include_outside: bool = False
) -> ReadContract:
    """The contract at ``path`` and its includes, read from ``files`` (default: the working tree),
    validated, merged and built, ready for the semantic checks (loading.py runs them). An include that
    resolves (symlinks followed) outside the directory of ``path`` is a ``contract-include`` error and
    is not read, unless ``allow_include_outside``.

    Raises ``ContractUnreadable`` when a file cannot be read or parsed as YAML.
    """
    files = files or WorkingTree()
    root = Path(path).resolve()
    tree = _Tree(files, None if allow_include_outside else root.parent)
    included: list[str] = []
    document, findings = _load_tree(tree, root, (root,), {root}, included)
    display = files.display(root)
    contract: Contract | None = None
    if document is not None and not any(f.rule is rules.CONTRACT_SCHEMA for f in findings):
        contract = build_contract(document, display, tuple(included))
    return ReadContract(display, document, contract, tuple(findings))
