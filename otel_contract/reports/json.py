"""The JSON report with the stable keys of design §5, one object per contract.

Several contracts give JSON Lines (one report per line); a single contract gives one document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from otel_contract.findings import Finding, count_by_level
from otel_contract.reports import RenderOptions, Report


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
