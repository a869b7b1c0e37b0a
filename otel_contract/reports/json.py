"""The JSON report with the stable keys of design §5, one object per contract, one object per line.

Several contracts give JSON Lines; a single contract gives one line, which is also one JSON document.
The shape is published as a JSON Schema shipped in the package (``schema/report-v1.schema.json``);
``schema_path`` and ``load_schema`` give it to the CLI and to tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from otel_contract.findings import Finding, count_by_level
from otel_contract.reports import RenderOptions, Report

SCHEMA_RESOURCE = "schema/report-v1.schema.json"


def schema_path() -> str:
    """Where the report schema is installed (for ``--path``-style printing)."""
    return str(resources.files("otel_contract.reports").joinpath(SCHEMA_RESOURCE))


@cache
def load_schema() -> Mapping[str, Any]:
    """The report JSON Schema (draft 2020-12) shipped with the package."""
    document: Mapping[str, Any] = json.loads(
        resources.files("otel_contract.reports").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    )
    return document


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule.slug,
        "level": finding.level.label,
        "metric": finding.metric,
        "attribute": finding.attribute,
        "count": finding.count,
        "message": finding.message,
        "source": finding.source,
        "path": finding.path or None,
    }


def to_dict(report: Report) -> dict[str, Any]:
    counts = count_by_level(report.findings)
    return {
        "contract": {
            "name": report.contract_name,
            "version": report.contract_version,
            "source": report.source,
        },
        "summary": {
            "data_points": report.data_points,
            "findings": {level.label: n for level, n in counts.items()},
            "rejected_data_points": report.rejected_data_points,
            "baselined": report.baselined,
        },
        "findings": [_finding(f) for f in report.findings],
    }


def render(reports: Iterable[Report], options: RenderOptions | None = None) -> str:
    return "".join(json.dumps(to_dict(report), sort_keys=False) + "\n" for report in reports)
