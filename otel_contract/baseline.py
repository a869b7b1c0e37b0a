"""Baselines: adopt the gate on a legacy service and fail only on new findings.

``validate --write-baseline FILE`` records today's findings; ``validate --baseline FILE`` then leaves
out every finding the file lists. A finding is identified by (rule, metric, attribute): not by its
count, which follows traffic volume, nor by its source, which names capture files that change from
run to run. The file is JSON with sorted entries, so its diff in a review shows what was accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from otel_contract.findings import Finding

FORMAT_VERSION = 1

_Key = tuple[str, str | None, str | None]


class BaselineError(Exception):
    """A baseline file that cannot be read or is not a baseline; str() is one line naming the file."""


@dataclass(frozen=True, slots=True)
class Baseline:
    source: str
    keys: frozenset[_Key]

    def split(self, findings: Iterable[Finding]) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
        """(new findings, findings the baseline accepts)."""
        new: list[Finding] = []
        known: list[Finding] = []
        for finding in findings:
            (known if finding.key in self.keys else new).append(finding)
        return tuple(new), tuple(known)

    def gone(self, findings: Iterable[Finding]) -> int:
        """How many baseline entries no longer occur: fixed since, so the file can shrink."""
        return len(self.keys - {finding.key for finding in findings})


def _entry(key: _Key, count: int) -> dict[str, Any]:
    rule, metric, attribute = key
    return {"rule": rule, "metric": metric, "attribute": attribute, "count": count}


def dumps(findings: Sequence[Finding], *, contract: str) -> str:
    """The baseline file text for ``findings`` of a run against ``contract`` (``name@version``)."""
    counts: dict[_Key, int] = {}
    for finding in findings:
        counts[finding.key] = counts.get(finding.key, 0) + finding.count
    entries = [_entry(key, counts[key]) for key in sorted(counts, key=lambda k: (k[0], k[1] or "", k[2] or ""))]
    document = {"otel-contract-baseline": FORMAT_VERSION, "contract": contract, "findings": entries}
    return json.dumps(document, indent=2) + "\n"


def write(path: str, findings: Sequence[Finding], *, contract: str) -> None:
    """Write the baseline atomically (a reader never sees half a file); OSError propagates."""
    text = dumps(findings, contract=contract)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, path)


def load(path: str) -> Baseline:
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except OSError as error:
        raise BaselineError(f"{path}: cannot read baseline: {error.strerror or error}") from None
    except ValueError as error:
        raise BaselineError(f"{path}: not a baseline file: invalid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("otel-contract-baseline") != FORMAT_VERSION:
        raise BaselineError(
            f"{path}: not a baseline file (expected a JSON object with otel-contract-baseline: {FORMAT_VERSION};"
            " write one with validate --write-baseline)"
        )
    entries = document.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"{path}: findings: expected a list")
    keys: set[_Key] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("rule"), str):
            raise BaselineError(f"{path}: findings[{index}]: expected an object with a rule slug")
        metric, attribute = entry.get("metric"), entry.get("attribute")
        if not (metric is None or isinstance(metric, str)) or not (attribute is None or isinstance(attribute, str)):
            raise BaselineError(f"{path}: findings[{index}]: metric and attribute must be strings or null")
        keys.add((entry["rule"], metric, attribute))
    return Baseline(path, frozenset(keys))
