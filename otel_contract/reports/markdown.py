"""A GitHub-flavoured Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

Per contract: a heading with the command, ``name@version`` and the verdict against ``--fail-on``; a
counts table; a findings table, errors first. Every cell is escaped so a message cannot break the
table or inject markup: ``|`` and Markdown punctuation are backslash-escaped, newlines become
``<br>``, and names are code spans fenced with more backticks than they contain. A findings table
longer than ``FOLD_ROWS`` rows is folded into ``<details>`` so the verdict stays on screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from otel_contract.findings import Finding, count_by_level
from otel_contract.reports import RenderOptions, Report, fails, label, visible
from otel_contract.rules import Level, Rule, Scope

FOLD_ROWS = 50

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that start markup
# inside a table cell (emphasis, links, code, HTML, strikethrough, the cell separator, entities).
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&!])")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_BACKTICKS = re.compile(r"`+")


def render(reports: Iterable[Report], options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    return "\n".join(_section(report, options) for report in reports)


def _section(report: Report, options: RenderOptions) -> str:
    failed = fails(report.findings, options.fail_on)
    verdict = "❌ failed" if failed else "✅ passed"
    threshold = options.fail_on.label if options.fail_on is not None else "none"
    lines = [
        f"## otel-contract {options.command}: {cell_text(label(report))} {verdict}",
        "",
        f"Fail on: **{threshold}** · source: {code_span(report.source)}",
        "",
        *_counts(report),
        "",
    ]
    if report.findings:
        table = _findings(report.findings)
        if len(table) - 2 > FOLD_ROWS:  # the header and its delimiter row are not findings
            noun = "finding" if len(report.findings) == 1 else "findings"
            lines += [f"<details><summary>{len(report.findings)} {noun}</summary>", "", *table, "", "</details>"]
        else:
            lines += table
    else:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"


def _counts(report: Report) -> list[str]:
    counts = count_by_level(report.findings)
    cells = [
        *(str(counts[level]) for level in (Level.ERROR, Level.WARNING, Level.INFO)),
        str(report.data_points),
        str(report.rejected_data_points),
        str(report.baselined),
    ]
    return [
        "| errors | warnings | info | data points | rejected | baselined |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        table_row(cells),
    ]


def _findings(findings: Sequence[Finding]) -> list[str]:
    ordered = sorted(
        findings,
        key=lambda f: (-f.level, f.rule.slug, f.metric or "", f.attribute or "", f.sort_key()),
    )
    rows = [
        table_row(
            [
                f.level.label,
                code_span(f.rule.slug),
                code_span(f.metric),
                code_span(f.attribute),
                str(f.count),
                cell_text(f.message),
                code_span(f.source),
            ]
        )
        for f in ordered
    ]
    header = [
        "| level | rule | metric | attribute | count | message | source |",
        "| --- | --- | --- | --- | ---: | --- | --- |",
    ]
    return header + rows


def rule_table(rules: Iterable[Rule]) -> str:
    """The rule catalog as a table: the README's copy is this output (``make docs`` writes it there)."""
    lines = [table_row(["rule", "level", "runtime action", "fires on", "what"]), table_row(["---"] * 5)]
    for rule in rules:
        fires_on = " + ".join(rule.scope_names)
        if rule.only_in:
            fires_on += f" ({code_span(rule.only_in)})"
        # Only telemetry has data to act on; a contract or config finding is reported, never acted on.
        action = rule.action.value if Scope.TELEMETRY in rule.scope else "—"
        # The catalog's own prose, shown as written (no cell_text escapes): only a "|" would break the row.
        what = rule.summary.replace("|", "\\|")
        lines.append(table_row([code_span(rule.slug), rule.level.label, action, fires_on, what]))
    return "\n".join(lines) + "\n"


def table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def cell_text(value: str) -> str:
    """Plain text for a table cell: markup characters escaped, line breaks kept as ``<br>``."""
    return "<br>".join(_MARKUP.sub(r"\\\1", line) for line in _NEWLINES.split(visible(value)))


def code_span(value: str | None) -> str:
    """A code span for a name, or empty: fenced with a backtick run longer than any inside it."""
    if not value:
        return ""
    value = _NEWLINES.sub(" ", visible(value))
    fence = "`" * (1 + max((len(run) for run in _BACKTICKS.findall(value)), default=0))
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    # A table splits cells on "|" before it reads code spans, so the pipe needs escaping even here.
    return f"{fence}{pad}{value.replace('|', chr(92) + '|')}{pad}{fence}"
