"""Metric lifecycle: which dashboards, panels and rules read each contract metric, and which unused
metrics are old enough to archive (``otel-contract usage``).

``files.scan_files`` reads dashboards and rule files (``grafana``, ``rules``, ``promql`` do the
parsing), ``history.introduced_dates`` dates each metric's ``since`` from git, ``analysis.analyse``
(pure) joins them, ``report`` renders, ``archive.archive`` writes ``stability: archived``.
"""

from otel_contract.usage.analysis import (
    DEFAULT_WINDOW,
    ArchiveWindow,
    Introduced,
    MetricUsage,
    UsageReport,
    Use,
    analyse,
    series_names,
)
from otel_contract.usage.archive import ArchiveError, ArchiveResult, archive
from otel_contract.usage.files import UsageInputError, scan_files
from otel_contract.usage.grafana import scan_dashboard, substitute
from otel_contract.usage.history import introduced_dates
from otel_contract.usage.model import NameSelector, Query, Scan, Source, SourceKind, Unparsed
from otel_contract.usage.promql import PromqlError, read_selectors
from otel_contract.usage.rules import scan_rule_documents

__all__ = [
    "DEFAULT_WINDOW",
    "ArchiveError",
    "ArchiveResult",
    "ArchiveWindow",
    "Introduced",
    "MetricUsage",
    "NameSelector",
    "PromqlError",
    "Query",
    "Scan",
    "Source",
    "SourceKind",
    "Unparsed",
    "UsageInputError",
    "UsageReport",
    "Use",
    "analyse",
    "archive",
    "introduced_dates",
    "read_selectors",
    "scan_dashboard",
    "scan_files",
    "scan_rule_documents",
    "series_names",
    "substitute",
]
