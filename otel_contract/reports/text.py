"""Compiler-style text for people: ``contracts/ecommerce.yaml:42:7: error[metric-name] metrics[3].name: ...``.

Colour is opt-in per render (``RenderOptions.color``); ``use_color`` is how the CLI decides it, following
the conventions terminal users already set once for every tool: NO_COLOR (https://no-color.org),
FORCE_COLOR (https://force-color.org) and CLICOLOR_FORCE (https://bixense.com/clicolors/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TextIO

from otel_contract._terminal import is_terminal
from otel_contract.findings import Finding, count_by_level
from otel_contract.reports import RenderOptions, Report, label, visible
from otel_contract.rules import Level

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_LEVEL_COLORS: Mapping[Level, str] = {
    Level.ERROR: "\x1b[31m",  # red
    Level.WARNING: "\x1b[33m",  # yellow
    Level.INFO: "\x1b[36m",  # cyan
}


def format_finding(finding: Finding) -> str:
    """One finding as one uncoloured line (the CLI also prints these on stderr)."""
    return _format(finding, color=False)


def format_error(finding: Finding) -> str:
    """A finding that stops a command (a contract that cannot be used) as the one line every command
    prints on stderr: compiler style when it has a line, else a usage error naming the file."""
    if finding.location and finding.location.line:
        return format_finding(finding)
    return f"error: {finding.source}: {finding.message}"


def render(reports: Iterable[Report], options: RenderOptions | None = None) -> str:
    color = options.color if options is not None else False
    lines = [_format(finding, color=color) for report in reports for finding in report.findings]
    return "".join(line + "\n" for line in lines)


def summary(reports: list[Report]) -> str:
    """One line for stderr: how many findings of each level, over which contracts."""
    counts = count_by_level(f for report in reports for f in report.findings)
    parts = [f"{n} {level.label}{'s' if n != 1 and level.label != 'info' else ''}" for level, n in counts.items()]
    names = ", ".join(label(r) for r in reports)
    noun = "contract" if len(reports) == 1 else "contracts"
    found = ", ".join(parts) if any(counts.values()) else "no findings"
    return f"{found} in {len(reports)} {noun} ({names})"


def use_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Whether output to ``stream`` should be coloured, given the environment ``env``.

    FORCE_COLOR (any non-empty value) turns colour on even when piped, e.g. in a CI log that renders
    ANSI; otherwise NO_COLOR (any non-empty value) turns it off; otherwise CLICOLOR_FORCE (non-empty,
    not ``0``) turns it on; otherwise colour follows whether the stream is a terminal that is not
    ``TERM=dumb``.
    """
    if env.get("FORCE_COLOR"):
        return True
    if env.get("NO_COLOR"):
        return False
    if env.get("CLICOLOR_FORCE", "0") not in ("", "0"):
        return True
    return is_terminal(stream) and env.get("TERM") != "dumb"


def _format(finding: Finding, *, color: bool) -> str:
    where = _one_line(finding.source)
    head = f"{finding.level.label}[{finding.rule.slug}]"
    if color:
        where = f"{_BOLD}{where}{_RESET}" if where else ""
        head = f"{_LEVEL_COLORS[finding.level]}{head}{_RESET}"
    where = f"{where}: " if where else ""
    path = f"{_one_line(finding.path)}: " if finding.path else ""
    count = f" (x{finding.count})" if finding.count > 1 else ""
    return f"{where}{head} {path}{_one_line(finding.message)}{count}"


def _one_line(text: str) -> str:
    # One finding per line keeps the output greppable and lets editors jump to file:line.
    return visible(text).replace("\r", "\\r").replace("\n", "\\n")
