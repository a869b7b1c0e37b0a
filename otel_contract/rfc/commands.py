"""The ``rfc`` use cases: write an RFC, refresh one, list them, and find the contract before the change.

Each returns what happened as data (the path written, the change, the version-gate advice) and raises
``RfcError`` for a bad RFC or template, ``RfcExists``, ``WrongContract`` or ``CannotWrite`` for the
other refusals; ``cli/rfc.py`` reads the contracts, prints and picks the exit code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from otel_contract.contract.model import Contract
from otel_contract.diff import ContractDiff, compare
from otel_contract.diff.formats import render_markdown
from otel_contract.rfc import git as rfc_git
from otel_contract.rfc import store
from otel_contract.rfc.advice import Advice, gate_advice
from otel_contract.rfc.facts import new_contract_diff, sections
from otel_contract.rfc.frontmatter import parse, with_values
from otel_contract.rfc.model import Rfc
from otel_contract.rfc.naming import file_name, next_number, number_of
from otel_contract.rfc.template import Draft, fill, replace_schema_diff


class RfcExists(Exception):
    """``rfc new`` would replace an RFC: reviewed prose is never overwritten."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class WrongContract(Exception):
    """``rfc update`` was given another contract than the one the RFC is about."""


class CannotWrite(Exception):
    """The RFC file cannot be written; ``path`` as messages name it, ``reason`` the OS's."""

    def __init__(self, path: str, reason: str | None) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Base:
    """The contract before the change; ``contract`` None: the contract is new at the base."""

    contract: Contract | None
    spec: str  # how the base is named: a path or git:REF:PATH


@dataclass(frozen=True, slots=True)
class DefaultBase:
    """Where the contract before the change is when no ``--base`` names it."""

    spec: str  # git:REF:PATH
    exists: bool  # False: the contract is new at the base


@dataclass(frozen=True, slots=True)
class Written:
    """An RFC written or refreshed: its path as shown, its label, the change it describes, the gate's advice."""

    path: str
    label: str
    change: str
    advice: Advice


@dataclass(frozen=True, slots=True)
class Opened:
    """An RFC read for ``update``: its text, the path as shown and what its front matter says."""

    path: Path
    text: str
    shown: str
    rfc: Rfc


def default_base(contract_path: str, env: Mapping[str, str], cwd: Path) -> DefaultBase:
    """The contract's path at origin/$CHANGE_TARGET, origin/main or HEAD; raises ``ContractFileError``."""
    ref = rfc_git.default_ref(env, cwd)
    return DefaultBase(rfc_git.spec(ref, contract_path), rfc_git.exists_at(ref, contract_path))


def change(base_version: str | None, new: Contract) -> str:
    return f"{new.name} {base_version} -> {new.version}" if base_version else f"new contract {new.id}"


def _schema_diff(base: Base, new: Contract) -> tuple[ContractDiff | None, str]:
    result = compare(base.contract, new) if base.contract else None
    return result, render_markdown(result, heading_level=3) if result else new_contract_diff(new, base.spec)


def new_rfc(
    new: Contract,
    base: Base,
    *,
    title: str,
    contract_path: str,
    directory: Path,
    output: Path | None,
    authors: Sequence[str],
    created: date,
    cwd: Path,
) -> Written:
    """Write the next RFC of ``directory`` (or ``output``) from its template; never overwrites one
    (``RfcExists``). No ``authors``: git's user.name in ``cwd``."""
    template, template_name = store.read_template(directory)
    number = (number_of(output.name) if output else None) or next_number(store.file_names(directory))
    target = output or directory / file_name(number, title)
    draft = Draft(
        number=number,
        title=title.strip(),
        contract=new.name,
        version=new.version,
        base_version=base.contract.version if base.contract else None,
        authors=tuple(authors) or tuple(filter(None, [rfc_git.author(cwd)])),
        owners=new.owners,
        created=created,
    )
    result, schema_diff = _schema_diff(base, new)
    text = fill(template, template_name, draft, sections(base.contract, new), schema_diff)
    try:
        store.write_new(target, text)
    except FileExistsError:
        raise RfcExists(target) from None
    except OSError as error:
        raise CannotWrite(str(target), error.strerror) from None
    advice = gate_advice(result, contract_path=contract_path, rfc_path=str(target))
    return Written(str(target), f"RFC {number:04d}", change(draft.base_version, new), advice)


def open_rfc(path: Path) -> Opened:
    """The RFC at ``path``, its front matter checked (``RfcError`` naming file:line)."""
    text = store.read_text(path)
    shown = store.display(path)
    return Opened(path, text, shown, parse(text, shown, number_of(path.name) or 0))


def update_rfc(opened: Opened, new: Contract, base: Base, *, contract_path: str) -> Written:
    """Set the RFC's versions and replace its schema diff; ``WrongContract`` when it is about another one."""
    if opened.rfc.contract != new.name:
        about = f"is about contract {opened.rfc.contract}, but {contract_path} is {new.name}"
        raise WrongContract(f"{opened.shown} {about}")
    result, schema_diff = _schema_diff(base, new)
    base_version = base.contract.version if base.contract else None
    text = with_values(opened.text, opened.shown, {"version": new.version, "base_version": base_version})
    text = replace_schema_diff(text, opened.shown, schema_diff)
    try:
        store.rewrite(opened.path, text)
    except OSError as error:
        raise CannotWrite(opened.shown, error.strerror) from None
    advice = gate_advice(result, contract_path=contract_path, rfc_path=str(opened.path))
    return Written(opened.shown, opened.rfc.label, change(base_version, new), advice)


def list_rfcs(directories: Iterable[Path]) -> Iterator[str]:
    """One line per RFC: number, status, contract and versions, title, file (``RfcError`` on a bad one)."""
    for directory in directories:
        for rfc in store.load_rfcs(directory):
            versions = f"{rfc.base_version} -> {rfc.version}" if rfc.base_version else f"new at {rfc.version}"
            yield f"{rfc.number:04d}  {rfc.status.value:8}  {rfc.contract} {versions}  {rfc.title}  ({rfc.path})"
