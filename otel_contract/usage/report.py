"""The usage report as text (people), JSON (machines; schema ``reports/schema/usage-v1.schema.json``)
and Markdown (a pull-request comment)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from otel_contract.reports.markdown import cell_text, code_span, table_row
from otel_contract.usage.analysis import MetricUsage, UsageReport, Use
from otel_contract.usage.archive import ArchiveResult
from otel_contract.usage.model import Source, Unparsed

SCHEMA_RESOURCE = "schema/usage-v1.schema.json"
FORMATS = ("text", "json", "markdown")

Renderer = Callable[[UsageReport, ArchiveResult | None], str]


def renderer(fmt: str) -> Renderer:
    return {"text": render_text, "json": render_json, "markdown": render_markdown}[fmt]


@cache
def load_schema() -> Mapping[str, Any]:
    """The JSON report's schema (draft 2020-12), shipped with the package."""
    text = resources.files("otel_contract.reports").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    document: Mapping[str, Any] = json.loads(text)
    return document


def summary(report: UsageReport) -> str:
    """One line for stderr: what was read and what was found."""
    scan = report.scan
    used = sum(1 for m in report.metrics if m.uses)
    parts = [
        f"{len(scan.dashboards)} dashboards ({scan.panels} panels)",
        f"{len(scan.rule_files)} rule files ({scan.rules} rules)",
        f"{len(scan.queries)} queries parsed, {len(scan.unparsed)} unparsed",
    ]
    if scan.skipped:
        parts.append(f"{len(scan.skipped)} files skipped")
    metrics = f"{len(report.metrics)} metrics: {used} used, {len(report.metrics) - used} unused"
    candidates = f"{len(report.candidates)} archive candidates"
    return f"usage of {report.contract}@{report.version}: {', '.join(parts)}; {metrics}, {candidates}"


# --- text ------------------------------------------------------------------------------------------


def render_text(report: UsageReport, written: ArchiveResult | None = None) -> str:
    lines = []
    for metric in report.metrics:
        lines.append(
            f"{metric.name} ({metric.type.value}, {metric.stability.value}{_since(metric)}): {_status(metric)}"
        )
        lines += [f"  {_use_line(use)}" for use in metric.uses]
    if report.scan.unparsed:
        lines.append("")
        lines.append(f"unparsed queries ({len(report.scan.unparsed)}):")
        lines += [f"  {item.source.describe()}: {item.reason}: {_one_line(item.text)}" for item in report.scan.unparsed]
    if report.scan.skipped:
        lines.append("")
        lines += [f"skipped {item}" for item in report.scan.skipped]
    if written is not None:
        lines.append("")
        lines.append(_written(written))
    return "\n".join(lines) + "\n"


def _since(metric: MetricUsage) -> str:
    return f", since {metric.since}" if metric.since else ""


def _status(metric: MetricUsage) -> str:
    if metric.candidate:
        return f"ARCHIVE CANDIDATE: {metric.reason}"
    if not metric.uses:
        return metric.reason
    dashboards, rules = len(metric.dashboards), len(metric.rules)
    return f"used by {dashboards} dashboard{'s' * (dashboards != 1)}, {rules} rule{'s' * (rules != 1)}"


def _use_line(use: Use) -> str:
    via = f" through {' -> '.join(reversed(use.via))}" if use.via else ""
    return f"{use.source.describe()} reads {use.series}{via}"


def _written(written: ArchiveResult) -> str:
    if not written.archived:
        return "wrote nothing: no archive candidates"
    return (
        f"archived {', '.join(written.archived)} in {', '.join(written.files)};"
        f" version {written.old_version} -> {written.new_version} ({written.bump} bump)"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- JSON ------------------------------------------------------------------------------------------


def to_dict(report: UsageReport, written: ArchiveResult | None = None) -> dict[str, Any]:
    scan = report.scan
    return {
        "contract": {"name": report.contract, "version": report.version, "source": report.source},
        "today": report.today.isoformat(),
        "archive_after": str(report.window),
        "summary": {
            "dashboards": len(scan.dashboards),
            "panels": scan.panels,
            "rule_files": len(scan.rule_files),
            "rules": scan.rules,
            "queries": len(scan.queries),
            "unparsed": len(scan.unparsed),
            "skipped_files": len(scan.skipped),
            "metrics": len(report.metrics),
            "used": sum(1 for m in report.metrics if m.uses),
            "candidates": len(report.candidates),
        },
        "metrics": [_metric(metric) for metric in report.metrics],
        "unparsed": [_unparsed(item) for item in scan.unparsed],
        "skipped": list(scan.skipped),
        "written": _written_dict(written),
    }


def render_json(report: UsageReport, written: ArchiveResult | None = None) -> str:
    return json.dumps(to_dict(report, written), indent=2, ensure_ascii=False) + "\n"


def _metric(metric: MetricUsage) -> dict[str, Any]:
    dashboards: dict[tuple[str, str], None] = {}
    for use in metric.uses:
        if use.source.dashboard is not None:
            dashboards[(use.source.dashboard, use.source.file)] = None
    return {
        "name": metric.name,
        "type": metric.type.value,
        "stability": metric.stability.value,
        "since": metric.since,
        "introduced": metric.introduced.on.isoformat() if metric.introduced.on else None,
        "introduced_note": metric.introduced.note,
        "used": bool(metric.uses),
        "candidate": metric.candidate,
        "reason": metric.reason,
        "dashboards": [{"title": title, "file": file} for title, file in dashboards],
        "rules": sorted({f"{u.source.file}:{u.source.group}:{u.source.rule}" for u in metric.uses if u.source.rule}),
        "uses": [{**_source(use.source), "series": use.series, "via": list(use.via)} for use in metric.uses],
    }


def _source(source: Source) -> dict[str, Any]:
    return {
        "kind": source.kind.value,
        "file": source.file,
        "dashboard": source.dashboard,
        "row": source.row,
        "panel": source.panel,
        "ref_id": source.ref_id,
        "variable": source.variable,
        "annotation": source.annotation,
        "group": source.group,
        "rule": source.rule,
        "rule_type": source.rule_type,
    }


def _unparsed(item: Unparsed) -> dict[str, Any]:
    return {**_source(item.source), "query": item.text, "reason": item.reason}


def _written_dict(written: ArchiveResult | None) -> dict[str, Any] | None:
    if written is None:
        return None
    return {
        "archived": list(written.archived),
        "files": list(written.files),
        "old_version": written.old_version,
        "new_version": written.new_version,
        "bump": written.bump,
    }


# --- Markdown --------------------------------------------------------------------------------------


def render_markdown(report: UsageReport, written: ArchiveResult | None = None) -> str:
    scan = report.scan
    lines = [
        f"## otel-contract usage: {_md(report.contract)}@{_md(report.version)}",
        "",
        f"{len(scan.dashboards)} dashboards, {scan.panels} panels, {len(scan.rule_files)} rule files,"
        f" {scan.rules} rules; {len(scan.queries)} queries parsed, {len(scan.unparsed)} unparsed."
        f" Archive window: {report.window} before {report.today.isoformat()}.",
        "",
        table_row(["metric", "stability", "used by", "since", "candidate"]),
        table_row(["---"] * 5),
    ]
    for metric in report.metrics:
        used_by = "<br>".join(
            [f"dashboard {_md(title)}" for title in metric.dashboards] + [_md(rule) for rule in metric.rules]
        )
        since = _md(metric.since or "—")
        if metric.introduced.on:
            since += f" ({metric.introduced.on.isoformat()})"
        candidate = "**yes**" if metric.candidate else "no"
        lines.append(
            table_row([code_span(metric.name), metric.stability.value, used_by or _md(metric.reason), since, candidate])
        )
    if scan.unparsed:
        lines += ["", f"<details><summary>{len(scan.unparsed)} unparsed queries</summary>", ""]
        lines += [f"- {_md(item.source.describe())}: {_md(item.reason)}" for item in scan.unparsed]
        lines += ["", "</details>"]
    if written is not None:
        lines += ["", _md(_written(written))]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Text for a table cell or a list item, on one line."""
    return cell_text(" ".join(text.split()))
