"""Compiler-style text: ``contracts/ecommerce.yaml:42:7: error[metric-name] metrics[3].name: ...``."""

from __future__ import annotations

from collections.abc import Iterable

from otel_contract.findings import Finding, count_by_level
from otel_contract.reports import RenderOptions, Report


def format_finding(finding: Finding) -> str:
    where = f"{finding.source}: " if finding.source else ""
    path = f"{finding.path}: " if finding.path else ""
    count = f" (x{finding.count})" if finding.count > 1 else ""
    return f"{where}{finding.level.label}[{finding.rule.slug}] {path}{finding.message}{count}"


def render(reports: Iterable[Report], options: RenderOptions | None = None) -> str:
    lines = [format_finding(finding) for report in reports for finding in report.findings]
    return "".join(line + "\n" for line in lines)


def summary(reports: list[Report]) -> str:
    """One line for stderr: how many findings of each level, over which contracts."""
    counts = count_by_level(f for report in reports for f in report.findings)
    parts = [f"{n} {level.label}{'s' if n != 1 and level.label != 'info' else ''}" for level, n in counts.items()]
    names = ", ".join(f"{r.contract_name}@{r.contract_version}" if r.contract_name else r.source for r in reports)
    noun = "contract" if len(reports) == 1 else "contracts"
    found = ", ".join(parts) if any(counts.values()) else "no findings"
    return f"{found} in {len(reports)} {noun} ({names})"
