"""Contract change RFCs: ``otel-contract rfc new|update|list`` and ``check --require-rfc``.

Pure parts: ``frontmatter`` (parse and set the YAML front matter), ``naming`` (``NNNN-slug.md``),
``template`` (fill the template, the schema diff between its markers), ``facts`` (the tables the
contract answers), ``require`` (the missing-RFC finding). I/O: ``store`` (files) and ``git`` (the base).
"""

from otel_contract.rfc.facts import sections, touched_metrics
from otel_contract.rfc.frontmatter import parse, split, with_values
from otel_contract.rfc.model import Rfc, RfcError, Status
from otel_contract.rfc.naming import file_name, next_number, number_of, slug
from otel_contract.rfc.require import missing_rfc, version_location
from otel_contract.rfc.template import BEGIN, END, TEMPLATE, Draft, fill, replace_schema_diff

__all__ = [
    "BEGIN",
    "END",
    "TEMPLATE",
    "Draft",
    "Rfc",
    "RfcError",
    "Status",
    "file_name",
    "fill",
    "missing_rfc",
    "next_number",
    "number_of",
    "parse",
    "replace_schema_diff",
    "sections",
    "slug",
    "split",
    "touched_metrics",
    "version_location",
    "with_values",
]
