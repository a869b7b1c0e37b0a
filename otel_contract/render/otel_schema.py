"""``render schema``: the contract's renames as an OpenTelemetry schema file (file format 1.1.0).

The contract says which legacy names the engine normalizes; a schema file says the same to any
schema-aware consumer (the Collector's schema processor, a backend translating queries):

* metric aliases -> ``metrics: changes: - rename_metrics: {old: new}``;
* global ``attributes.renames`` -> ``all: changes: - rename_attributes: {attribute_map}``;
* a metric's own ``attributes.renames`` -> ``metrics: changes: - rename_attributes: {attribute_map,
  apply_to_metrics: [metric]}``, listed after ``rename_metrics`` so that it also reaches the
  aliases renamed in the same version.

A rename sits under the version in which it took effect: the metric's ``since``, else the contract
version (global renames carry no version, so they take the contract's). Versions are listed newest
first, as the specification's examples are, and the contract version is always there because the
spec requires the version in ``schema_url`` to be the highest one. Spec:
https://opentelemetry.io/docs/specs/otel/schemas/file_format_v1.1.0/
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from otel_contract.contract.model import SEMVER, Contract, Metric
from otel_contract.render import ArtefactOptions, RenderError, header, yaml_block, yaml_comment

FILE_FORMAT = "1.1.0"
# A reserved top-level domain (RFC 2606): it never resolves, so a file published without
# --schema-url fails loudly where it is fetched instead of pointing at someone else's host.
DEFAULT_SCHEMA_URL = "https://schemas.invalid/{contract}/{version}"

_NOTE_WIDTH = 96  # comment lines stay readable in a diff


@dataclass(slots=True)
class _Version:
    """The changes of one version while they are collected (the output is built from it once)."""

    notes: list[str] = field(default_factory=list)
    attribute_renames: dict[str, str] = field(default_factory=dict)
    metric_renames: dict[str, str] = field(default_factory=dict)
    metric_attribute_renames: list[tuple[dict[str, str], str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.attribute_renames:
            out["all"] = {"changes": [{"rename_attributes": {"attribute_map": self.attribute_renames}}]}
        changes: list[dict[str, Any]] = []
        if self.metric_renames:
            changes.append({"rename_metrics": self.metric_renames})
        changes += [
            {"rename_attributes": {"attribute_map": renames, "apply_to_metrics": [metric]}}
            for renames, metric in self.metric_attribute_renames
        ]
        if changes:
            out["metrics"] = {"changes": changes}
        return out


def schema_url(contract: Contract, given: str | None) -> str:
    """The file's ``schema_url``: ``given`` (a schema family, or a URL ending in the contract version), or the default.

    The last path segment of a schema URL is the version (the schema processor splits family and
    version there), and the spec requires it to be the highest version in the file: the contract's.
    """
    if given is None:
        return DEFAULT_SCHEMA_URL.format(contract=contract.name, version=contract.version)
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RenderError(f"schema URL {given!r} is not an http(s) URL without query or fragment")
    base = given.rstrip("/")
    last = base.rpartition("/")[2] if parts.path.strip("/") else ""
    if last == contract.version:
        return base
    if SEMVER.fullmatch(last):
        raise RenderError(
            f"schema URL {given!r} ends in version {last}, but the contract is {contract.id}; the version in the URL"
            " must be the contract's (or give the schema family and the version is appended)"
        )
    return f"{base}/{contract.version}"


def render(contract: Contract, options: ArtefactOptions) -> str:
    """The OpenTelemetry schema file (format 1.1.0) of ``contract``'s metric aliases and attribute renames."""
    url = schema_url(contract, options.schema_url)
    versions: dict[str, _Version] = {contract.version: _Version()}
    if contract.attributes.renames:
        versions[contract.version].attribute_renames.update(contract.attributes.renames)
    for metric in contract.metrics:
        if not metric.aliases and not metric.attributes.renames:
            continue
        number, note = _effective_version(metric, contract.version)
        version = versions.setdefault(number, _Version())
        if note:
            versions[contract.version].notes.append(note)
        for alias in metric.aliases:
            version.metric_renames[alias.name] = metric.name
            if alias.unit is not None and metric.unit is not None and alias.unit != metric.unit:
                version.notes.append(
                    f"{alias.name} -> {metric.name}: the alias is in {alias.unit}, the metric in {metric.unit};"
                    f" file format {FILE_FORMAT} cannot convert units, so a consumer of this file renames the"
                    f" metric but keeps its values in {alias.unit} (the otel-contract sidecar converts them)"
                )
        if metric.attributes.renames:
            version.metric_attribute_renames.append((dict(metric.attributes.renames), metric.name))
            if number == contract.version:
                version.notes += _shadowed(metric, contract)
    lines = [
        *header(contract, "render schema"),
        *yaml_block({"file_format": FILE_FORMAT, "schema_url": url}),
        "versions:",
    ]
    for number in sorted(versions, key=_precedence, reverse=True):
        version = versions[number]
        for note in version.notes:
            lines += yaml_comment(
                "\n".join(textwrap.wrap(note, _NOTE_WIDTH, break_long_words=False, break_on_hyphens=False)),
                2,
                rest="  ",
            )
        lines += yaml_block({number: version.body()}, indent=2)
    return "\n".join(lines) + "\n"


def _effective_version(metric: Metric, contract_version: str) -> tuple[str, str | None]:
    """The version under which ``metric``'s renames go, and a note when that is not its ``since``."""
    since = metric.since
    if since is None:
        return contract_version, None
    if not SEMVER.fullmatch(since):
        return contract_version, (
            f"{metric.name}: since {since!r} is not a semantic version, so its renames are listed under the"
            f" contract version {contract_version}"
        )
    if _precedence(since) > _precedence(contract_version):
        return contract_version, (
            f"{metric.name}: since {since} is newer than the contract version, so its renames are listed under"
            f" {contract_version} (the version in schema_url must be the highest)"
        )
    return since, None


def _shadowed(metric: Metric, contract: Contract) -> list[str]:
    """Notes for per-metric renames the global ones pre-empt: ``all`` runs before ``metrics`` in a version."""
    global_renames = contract.attributes.renames
    return [
        f"{metric.name} renames {key} to {target}, the global renames to {global_renames[key]}; in one version"
        f" section 'all' is applied first, so consumers of this file get {global_renames[key]} on {metric.name}"
        for key, target in metric.attributes.renames.items()
        if key in global_renames and global_renames[key] != target
    ]


def _precedence(version: str) -> tuple[Any, ...]:
    """A sort key giving semver precedence (a pre-release sorts before its release); ties broken by the text."""
    match = SEMVER.fullmatch(version)
    if match is None:  # pragma: no cover - only semantic versions reach here
        raise RenderError(f"{version!r} is not a semantic version")
    major, minor, patch, pre, _build = match.groups()
    # Pre-release identifiers: numeric ones compare as numbers and sort before alphanumeric ones.
    identifiers = (
        tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")) if pre else ()
    )
    return (int(major), int(minor), int(patch), 0 if pre else 1, identifiers, version)
