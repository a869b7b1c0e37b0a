"""The RFC template and filling it in: the front matter, the ``{{token}}`` placeholders of the body,
and the schema diff between its markers.

``rfc new`` uses ``TEMPLATE.md`` of the RFC directory when there is one (a team's own questions), else
``TEMPLATE`` below; ``contracts/rfcs/TEMPLATE.md`` in this repository is a copy of it (a test keeps the
two equal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from otel_contract.findings import Location
from otel_contract.rfc.frontmatter import split, with_values
from otel_contract.rfc.model import RfcError

BEGIN = "<!-- schema-diff:begin -->"
END = "<!-- schema-diff:end -->"

_TOKEN = re.compile(r"\{\{([a-z_]+)\}\}")

TEMPLATE = """\
---
# Written by `otel-contract rfc new`; `otel-contract check --require-rfc` reads contract and version.
title: Short title of the change
contract: CONTRACT-ID      # the contract's `contract:` id
version: 0.0.0             # the contract version this RFC introduces
base_version: null         # the version it changes; null for a new contract
status: draft              # draft | review | accepted | rejected
authors: []
owners: []                 # the contract's owners: they approve the change
created: 1970-01-01
---

# RFC {{number}}: {{title}}

Contract `{{contract}}` {{base_version}} → {{version}}. Answer every section: the contract review
board reads them in this order and asks for each one. Sections marked *(from the contract)* were
filled in from the contract file; correct the contract, not the table, and run
`otel-contract rfc update` to refresh the schema diff.

## Summary

_One paragraph: what changes, for whom, and why now._

## Motivation

_Which consumers (dashboards, alerts, SLOs, HPAs) need this; what stays broken without it; the
alternatives considered._

## How the data is collected

_For every metric added or changed: the instrumentation (OpenTelemetry SDK, Collector receiver,
Prometheus exporter, ...), where it runs, and how often it is exported or scraped. The contract
keeps the short form in each metric's `collection` field._

*(from the contract)*

{{collection}}

## Precision consumers may rely on

_What a consumer may build on: the unit, the decimals (`precision`), histogram buckets, sampling,
counter resets, late or missing data. Anything finer than this is noise that may change without
an RFC._

*(from the contract)*

{{precision}}

## Lifecycle

_When the metrics stop being useful, and what happens then. The archive rule: a metric that no
dashboard, alert or recording rule has read for six months is archived (`stability: archived`);
`otel-contract usage` shows who reads each metric and proposes the archive. Name the metrics this
change deprecates, their `replaced_by`, and when they go._

*(from the contract)*

{{lifecycle}}

## Owners

_Who answers for the data, reviews changes to it and is paged when it breaks._

*(from the contract)*

{{owners}}

## Rollout plan

1. **Audit first.** Deploy the new contract version with the sidecar in audit mode (`mode: audit`
   in the pipeline config, or `otel-contract serve --audit`): every reject becomes a flag, nothing
   is dropped.
2. **Watch.** `otel_contract_findings_total{rule=...}` on each sidecar's `/metrics` counts what
   enforcement would reject or flag; `otel-contract validate` on captured telemetry shows the same
   findings in CI. Name the dashboards and the threshold that say "ready".
3. **Enforce.** Switch to `mode: enforce` once the findings are at the expected level: _when, where
   first (canary, one region), who decides_.
4. **Roll back.** _How to return to the previous contract version, and who can do it._

## Compat shim plan and expiry

_Which legacy series consumers still need, the shim that keeps each alive (`compat:` in the
contract), the date it expires (`expires:`; `check` fails after it), who removes it, and how
consumers are told to migrate._

*(from the contract)*

{{shims}}

## Schema diff

Written by `otel-contract rfc new` and refreshed by `otel-contract rfc update`; do not edit between
the markers.

<!-- schema-diff:begin -->
<!-- schema-diff:end -->

## Decision

_Filled in by the review board: accepted or rejected, the date, who decided, and any conditions.
Set `status:` in the front matter to match._
"""


@dataclass(frozen=True, slots=True)
class Draft:
    """What ``rfc new`` knows about the RFC it writes."""

    number: int
    title: str
    contract: str
    version: str
    base_version: str | None  # None: a new contract
    authors: tuple[str, ...]
    owners: tuple[str, ...]
    created: date


def fill(template: str, file: str, draft: Draft, sections: Mapping[str, str], schema_diff: str) -> str:
    """The RFC text: ``template`` (read from ``file``) with the draft's front matter, the body's
    placeholders replaced (``sections`` adds to number, title, contract, version, base_version; an
    unknown placeholder stays as written) and ``schema_diff`` between the markers."""
    filled = with_values(
        template,
        file,
        {
            "title": draft.title,
            "contract": draft.contract,
            "version": draft.version,
            "base_version": draft.base_version,
            "status": "draft",
            "authors": draft.authors,
            "owners": draft.owners,
            "created": draft.created,
        },
    )
    body = split(filled, file).body
    tokens = {
        "number": f"{draft.number:04d}",
        "title": draft.title,
        "contract": draft.contract,
        "version": draft.version,
        "base_version": draft.base_version or "(new contract)",
        **sections,
    }
    # One pass, so a value that happens to contain "{{...}}" is not substituted again.
    filled_body = _TOKEN.sub(lambda match: tokens.get(match[1], match[0]), body)
    return replace_schema_diff(filled[: len(filled) - len(body)] + filled_body, file, schema_diff)


def replace_schema_diff(text: str, file: str, markdown: str) -> str:
    """``text`` with ``markdown`` between the schema-diff markers (whatever was there before is replaced)."""
    begin, end = _marker(text, file, BEGIN), _marker(text, file, END)
    if end < begin:
        raise RfcError(_location(text, file, end), f"{END!r} comes before {BEGIN!r}")
    return f"{text[: begin + len(BEGIN)]}\n{markdown.strip()}\n{text[end:]}"


def _marker(text: str, file: str, marker: str) -> int:
    count = text.count(marker)
    if count != 1:
        problem = "no" if count == 0 else f"{count}"
        second = text.find(marker, text.find(marker) + 1)
        where = _location(text, file, second) if count else Location(file, 1, 1)
        raise RfcError(
            where,
            f"{problem} {marker!r} marker{'s' if count > 1 else ''}: the schema diff goes between {BEGIN} and {END}",
        )
    return text.index(marker)


def _location(text: str, file: str, offset: int) -> Location:
    line_start = text.rfind("\n", 0, offset) + 1
    return Location(file, text.count("\n", 0, offset) + 1, offset - line_start + 1)
