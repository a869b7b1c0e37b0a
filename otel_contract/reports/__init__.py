"""Reports: one model, several renderings.

``text`` for people (compiler style, colour on a TTY), ``json`` for machines (design §5 keys, schema
shipped as ``reports/schema/report-v1.schema.json``), ``junit`` for Jenkins, ``github`` for workflow
annotations and ``markdown`` for a pull-request comment or ``$GITHUB_STEP_SUMMARY``. Every renderer
is a function ``render(reports, options) -> str`` in the module named after its format.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from otel_contract.findings import Finding
from otel_contract.rules import Level


@dataclass(frozen=True, slots=True)
class Report:
    """What one run found about one contract (and, for telemetry, the data it saw)."""

    source: str
    contract_name: str | None
    contract_version: str | None
    findings: tuple[Finding, ...]
    data_points: int = 0
    rejected_data_points: int = 0
    baselined: int = 0  # findings left out because the baseline file lists them
    metrics: tuple[str, ...] = ()  # the metrics the run covered (seen in telemetry, or defined by the contract)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What a renderer needs besides the findings: which level fails the run, and whether to colour."""

    fail_on: Level | None = Level.ERROR
    color: bool = False
    command: str = "validate"  # names the run in JUnit suites and Markdown headings


Renderer = Callable[[Sequence[Report], RenderOptions], str]

FORMATS: tuple[str, ...] = ("text", "json", "junit", "github", "markdown")


def renderer(fmt: str) -> Renderer:
    """The ``render`` function of format ``fmt`` (one of ``FORMATS``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})")
    # Imported on demand: each renderer module imports this one for ``Report``.
    module = importlib.import_module(f"otel_contract.reports.{fmt}")
    render: Renderer = module.render
    return render


def fails(findings: Sequence[Finding], fail_on: Level | None) -> bool:
    """Whether any finding is at or above ``fail_on`` (None never fails)."""
    return fail_on is not None and any(finding.level >= fail_on for finding in findings)


# C0 and C1 control characters and DEL, bar tab and line breaks: telemetry can carry them in names
# and values, and printed raw they would corrupt a terminal (escape sequences) or an output format.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with control characters (other than tab, CR and LF) written as ``\\xNN`` escapes."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def label(report: Report) -> str:
    """How reports name a contract: ``ecommerce@1.4.0``, or its file when the contract could not be read."""
    if report.contract_name is None:
        return report.source
    if report.contract_version is None:
        return report.contract_name
    return f"{report.contract_name}@{report.contract_version}"


__all__ = ["FORMATS", "RenderOptions", "Renderer", "Report", "fails", "label", "renderer", "visible"]
