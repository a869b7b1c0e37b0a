"""Reports: one model, several renderings (text for people, JSON for machines)."""

from __future__ import annotations

from dataclasses import dataclass

from otel_contract.findings import Finding


@dataclass(frozen=True, slots=True)
class Report:
    """What one run found about one contract (and, for telemetry, the data it saw)."""

    source: str
    contract_name: str | None
    contract_version: str | None
    findings: tuple[Finding, ...]
    data_points: int = 0
    rejected_data_points: int = 0


__all__ = ["Report"]
