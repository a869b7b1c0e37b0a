"""``check --require-rfc``: a contract whose version changed needs an RFC that names the new version."""

from __future__ import annotations

from collections.abc import Sequence

from otel_contract import rules
from otel_contract.contract.model import Contract
from otel_contract.contract.yaml_source import YamlSyntaxError, locate, parse_yaml
from otel_contract.findings import Finding, Location
from otel_contract.rfc.model import Rfc, Status


def missing_rfc(
    contract: Contract,
    *,
    base_version: str | None,
    base_ref: str,
    rfcs: Sequence[Rfc],
    rfc_dir: str,
    location: Location,
    new_command: str,
) -> Finding | None:
    """A finding when ``contract``'s version differs from ``base_version`` (None: the contract is new at
    ``base_ref``) and no RFC in ``rfcs`` (which live in ``rfc_dir``) names the contract and its version."""
    if base_version == contract.version:
        return None
    if any(rfc.names(contract.name, contract.version) for rfc in rfcs):
        return None
    change = f"went {base_version} -> {contract.version}" if base_version else f"is new at {contract.version}"
    message = (
        f"contract {contract.name} {change} against {base_ref}, but no RFC in {rfc_dir} names {contract.name}"
        f" {contract.version}{_near_misses(contract, rfcs)}; write one: {new_command}"
    )
    return Finding.of(rules.MISSING_RFC, message, location=location, path="version")


def _near_misses(contract: Contract, rfcs: Sequence[Rfc]) -> str:
    # The usual cause is an RFC written before review asked for another version step: say which one.
    notes = []
    for rfc in rfcs:
        if rfc.contract != contract.name:
            continue
        if rfc.version == contract.version and rfc.status is Status.REJECTED:
            notes.append(f"{rfc.label} was rejected")
        elif rfc.version != contract.version:
            notes.append(f"{rfc.label} names {rfc.version}")
    return f" ({'; '.join(notes)})" if notes else ""


def version_location(text: str, file: str) -> Location:
    """Where the contract in ``text`` sets ``version:`` (the file alone when it cannot be told)."""
    try:
        document, _ = parse_yaml(text, file)
    except YamlSyntaxError:
        return Location(file)
    return locate(document, ("version",)) or Location(file)
