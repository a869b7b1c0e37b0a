"""GitHub Actions workflow commands: one annotation per finding, on the file and line it is about.

``::error file=contracts/ecommerce.yaml,line=42,col=7,title=otel-contract metric-name::message``;
levels map to ``error``, ``warning`` and ``notice``. Escaping follows the Actions toolkit
(actions/toolkit ``packages/core/src/command.ts``: ``escapeData`` for the message escapes ``%``, CR
and LF; ``escapeProperty`` also ``:`` and ``,``), which the runner undoes before showing the text.

Properties a finding's location lacks are left out, as the toolkit does. A finding about stdin (``-``)
or a URL gets no ``file``: an annotation can only point at a file of the repository, so the source
goes into the message instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from otel_contract.findings import Finding
from otel_contract.reports import RenderOptions, Report, visible
from otel_contract.rules import Level

_COMMANDS: Mapping[Level, str] = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "notice"}


def render(reports: Iterable[Report], options: RenderOptions | None = None) -> str:
    return "".join(annotation(finding) + "\n" for report in reports for finding in report.findings)


def annotation(finding: Finding) -> str:
    """The workflow command that annotates ``finding``."""
    properties: dict[str, str] = {}
    prefix = ""
    location = finding.location
    if location is not None and location.file:
        if _in_repository(location.file):
            properties["file"] = visible(location.file)
            if location.line:
                properties["line"] = str(location.line)
                if location.column:
                    properties["col"] = str(location.column)
        else:
            prefix = f"{location}: "
    properties["title"] = f"otel-contract {finding.rule.slug}"
    path = f"{finding.path}: " if finding.path else ""
    count = f" (x{finding.count})" if finding.count > 1 else ""
    message = visible(f"{prefix}{path}{finding.message}{count}")
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{_COMMANDS[finding.level]} {props}::{escape_data(message)}"


def escape_data(text: str) -> str:
    """A command's message, escaped like the toolkit's ``escapeData``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command property's value, escaped like the toolkit's ``escapeProperty``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _in_repository(file: str) -> bool:
    """Whether ``file`` can name a file in the checkout (not stdin, not a scraped URL)."""
    return file != "-" and not file.startswith("-:") and "://" not in file
