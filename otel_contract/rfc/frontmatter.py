"""The RFC front matter: YAML between two ``---`` lines at the top of the Markdown file.

Parsing goes through the contract loader's YAML reader, so every error names the file line of the
offending key or value. Writing goes through ruamel.yaml's round trip, so the template's comments and
key order survive ``rfc new``, and a person's edits survive ``rfc update``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from otel_contract.contract.model import SEMVER
from otel_contract.contract.yaml_source import LocDict, YamlSyntaxError, parse_yaml
from otel_contract.findings import Location
from otel_contract.rfc.model import Rfc, RfcError, Status

FENCE = "---"
REQUIRED = ("title", "contract", "version", "status")


@dataclass(frozen=True, slots=True)
class Split:
    front: str  # the YAML between the fences
    body: str  # everything after the closing fence line


def split(text: str, file: str) -> Split:
    """The front matter and the body of ``text``; ``RfcError`` when there is no closed front matter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != FENCE:
        raise RfcError(
            Location(file, 1, 1),
            "no front matter: an RFC starts with a '---' line, the YAML keys (title, contract, version, status, ...),"
            " and another '---' line",
        )
    for index in range(1, len(lines)):
        if lines[index].rstrip() == FENCE:
            return Split("".join(lines[1:index]), "".join(lines[index + 1 :]))
    raise RfcError(Location(file, 1, 1), "the front matter opened on line 1 is not closed by a '---' line")


def parse(text: str, file: str, number: int) -> Rfc:
    """The RFC in ``text`` (the whole Markdown file); ``RfcError`` names the line of the first problem."""
    data = _mapping(split(text, file).front, file)
    missing = [key for key in REQUIRED if data.get(key) is None]
    if missing:
        keys = ", ".join(missing)
        raise RfcError(data.loc, f"the front matter lacks {keys} (required: {', '.join(REQUIRED)})")
    return Rfc(
        path=file,
        number=number,
        title=_text(data, "title"),
        contract=_text(data, "contract"),
        version=_version(data, "version"),
        base_version=_version(data, "base_version") if data.get("base_version") is not None else None,
        status=_status(data),
        authors=_names(data, "authors"),
        owners=_names(data, "owners"),
        created=_date(data, "created"),
    )


def _mapping(front: str, file: str) -> LocDict:
    try:
        # One empty line stands for the opening fence, so YAML positions are the file's lines.
        data, duplicates = parse_yaml("\n" + front, file)
    except YamlSyntaxError as error:
        raise RfcError(error.location, f"the front matter is not YAML: {error.reason}") from None
    if duplicates:
        location, key = duplicates[0]
        raise RfcError(location, f"duplicate key {key!r} in the front matter")
    if not isinstance(data, LocDict):
        raise RfcError(
            getattr(data, "loc", Location(file, 2, 1)),
            "the front matter must be YAML keys and values (title: ..., contract: ..., version: ...)",
        )
    return data


def _text(data: LocDict, key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise RfcError(data.value_locs[key], f"{key} must be text, got {value!r}")
    return value


def _version(data: LocDict, key: str) -> str:
    value = data[key]
    if not isinstance(value, str):  # 2.0 is a float to YAML
        raise RfcError(data.value_locs[key], f"{key} must be a version MAJOR.MINOR.PATCH like 2.0.0, got {value!r}")
    if not SEMVER.match(value):
        raise RfcError(data.value_locs[key], f"{key} {value!r} is not a semantic version MAJOR.MINOR.PATCH")
    return value


def _names(data: LocDict, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RfcError(data.value_locs[key], f"{key} must be a list of names, e.g. [alice, team-checkout]")
    return tuple(value)


def _status(data: LocDict) -> Status:
    value = _text(data, "status")
    try:
        return Status(value)
    except ValueError:
        statuses = ", ".join(status.value for status in Status)
        raise RfcError(data.value_locs["status"], f"status {value!r} is not one of {statuses}") from None


def _date(data: LocDict, key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise RfcError(data.value_locs[key], f"{key} must be a date YYYY-MM-DD, got {value!r}") from None


FrontValue = str | date | tuple[str, ...] | None


def with_values(text: str, file: str, values: Mapping[str, FrontValue]) -> str:
    """``text`` (a whole RFC or the template) with ``values`` set in its front matter, comments and key order
    kept; a key the front matter lacks is appended. Lists are written in flow style: ``[alice, bob]``."""
    parts = split(text, file)
    _mapping(parts.front, file)  # the same errors, with lines, as parse(); ruamel.yaml reads only what passes
    round_trip = YAML(typ="rt")
    round_trip.width = 1000
    round_trip.representer.add_representer(type(None), _represent_null)
    document = round_trip.load(parts.front)
    for key, value in values.items():
        document[key] = _flow(value) if isinstance(value, tuple) else value
    output = io.StringIO()
    round_trip.dump(document, output)
    return f"{FENCE}\n{output.getvalue()}{FENCE}\n{parts.body}"


def _flow(values: tuple[str, ...]) -> CommentedSeq:
    sequence = CommentedSeq(values)
    sequence.fa.set_flow_style()
    return sequence


def _represent_null(representer: Any, _: None) -> Any:
    # ruamel writes None as an empty value; "null" tells a reader the key is empty on purpose.
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")
