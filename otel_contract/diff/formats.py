"""A ``ContractDiff`` as text (terminal, Jenkins log), JSON (stable keys, schema shipped) or Markdown
(the "schema diff" section of a contract RFC: the gate, breaking changes first, a table per area)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from otel_contract.diff.kinds import Area, ChangeKind, Impact
from otel_contract.diff.model import Change, ContractDiff, Side
from otel_contract.reports import visible
from otel_contract.reports.markdown import cell_text, code_span, table_row

SCHEMA_RESOURCE = "schema/diff-v1.schema.json"
FORMATS = ("text", "json", "markdown")


@cache
def load_schema() -> Mapping[str, Any]:
    """The JSON Schema (draft 2020-12) of ``diff --format json``, shipped with the package."""
    document: Mapping[str, Any] = json.loads(
        resources.files("otel_contract.reports").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    )
    return document


def change_table(kinds: Iterable[ChangeKind]) -> str:
    """The change catalog as a table: the README's copy is this output (``make docs`` writes it there)."""
    lines = [table_row(["kind", "impact", "what"]), table_row(["---"] * 3)]
    for kind in kinds:
        lines.append(table_row([code_span(kind.slug), kind.impact.label, kind.summary.replace("|", "\\|")]))
    return "\n".join(lines) + "\n"


def _side(side: Side) -> str:
    return f"{side.name} {side.version} ({side.source})"


def _counts(diff: ContractDiff) -> str:
    total = len(diff.changes)
    noun = "change" if total == 1 else "changes"
    parts = ", ".join(f"{diff.count(impact)} {impact.label}" for impact in reversed(Impact))
    return f"{total} {noun}: {parts}"


def _gate_line(diff: ContractDiff) -> str:
    gate = diff.gate
    step = f"{gate.old} -> {gate.new} is a {gate.actual.label} step" if gate.actual.value > 0 else ""
    if gate.passed:
        needs = f"; the changes need {gate.required.label}" if diff.changes else ""
        return f"passed: {step or 'version unchanged'}{needs}"
    return "FAILED: " + "; ".join(gate.problems)


# --- text -----------------------------------------------------------------------------------------


def render_text(diff: ContractDiff) -> str:
    lines = [f"old: {visible(_side(diff.old))}", f"new: {visible(_side(diff.new))}", ""]
    if not diff.changes:
        lines.append("no changes")
    width = max((len(change.impact.label) for change in diff.changes), default=0)
    for change in diff.changes:
        lines.append(
            f"{change.impact.label.upper():<{width}}  {change.kind.slug}  {visible(change.subject)}\n"
            f"{'':<{width}}  {visible(change.reason)}"
        )
    lines += ["", _counts(diff), f"version gate {_gate_line(diff)}"]
    lines += [f"note: {note}" for note in diff.gate.notes]
    return "\n".join(lines) + "\n"


# --- JSON --------------------------------------------------------------------------------------------


def to_json(diff: ContractDiff) -> dict[str, Any]:
    gate = diff.gate
    return {
        "old": {"contract": diff.old.name, "version": diff.old.version, "source": diff.old.source},
        "new": {"contract": diff.new.name, "version": diff.new.version, "source": diff.new.source},
        "summary": {impact.label: diff.count(impact) for impact in Impact},
        "version_gate": {
            "passed": gate.passed,
            "bump": gate.actual.label,
            "required": gate.required.label,
            "suggested_version": gate.suggested,
            "problems": list(gate.problems),
            "notes": list(gate.notes),
        },
        "changes": [
            {
                "kind": change.kind.slug,
                "impact": change.impact.label,
                "area": change.area.value,
                "subject": change.subject,
                "path": change.path,
                "old": change.old,
                "new": change.new,
                "reason": change.reason,
            }
            for change in diff.changes
        ],
    }


def render_json(diff: ContractDiff) -> str:
    return json.dumps(to_json(diff), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- Markdown ------------------------------------------------------------------------------------------


def _value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return code_span(value)
    return code_span(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _tables(changes: Sequence[Change], heading: str, *, impact_column: bool) -> list[str]:
    lines: list[str] = []
    for area in Area:
        in_area = [change for change in changes if change.area is area]
        if not in_area:
            continue
        header = ["impact"] if impact_column else []
        header += ["subject", "change", "old", "new", "reason"]
        lines += [f"{heading} {area.value}", "", table_row(header), table_row(["---"] * len(header))]
        for change in in_area:
            cells = [change.impact.label] if impact_column else []
            cells += [
                cell_text(change.subject),
                code_span(change.kind.slug),
                _value(change.old),
                _value(change.new),
                cell_text(change.reason),
            ]
            lines.append(table_row(cells))
        lines.append("")
    return lines


def render_markdown(diff: ContractDiff, *, heading_level: int = 2) -> str:
    """The schema diff section of an RFC; ``heading_level`` places it under the document's headings."""
    h = "#" * heading_level
    gate = diff.gate
    verdict = "✅ passed" if gate.passed else "❌ failed"
    lines = [
        f"{h} Schema diff: {cell_text(diff.old.name)} {cell_text(diff.old.version)} → "
        f"{cell_text(diff.new.name)} {cell_text(diff.new.version)}",
        "",
        f"Old: {code_span(diff.old.source)} · new: {code_span(diff.new.source)}",
        "",
        f"**Version gate: {verdict}.** "
        + (
            f"The changes need a **{gate.required.label}** step ({cell_text(gate.old)} → {cell_text(gate.suggested)});"
            f" the version went {cell_text(gate.old)} → {cell_text(gate.new)} ({gate.actual.label})."
            if diff.changes
            else "No change to the contract."
        ),
        "",
    ]
    lines += [f"- {cell_text(problem)}" for problem in gate.problems]
    lines += [f"- note: {cell_text(note)}" for note in gate.notes]
    if gate.problems or gate.notes:
        lines.append("")
    lines += [
        table_row([impact.label for impact in reversed(Impact)]),
        table_row(["---:"] * len(Impact)),
        table_row([str(diff.count(impact)) for impact in reversed(Impact)]),
        "",
    ]
    breaking = [change for change in diff.changes if change.impact is Impact.BREAKING]
    others = [change for change in diff.changes if change.impact is not Impact.BREAKING]
    if breaking:
        lines += [f"{h}# Breaking changes", "", *_tables(breaking, f"{h}##", impact_column=False)]
    if others:
        lines += [f"{h}# Other changes", "", *_tables(others, f"{h}##", impact_column=True)]
    return "\n".join(lines).rstrip("\n") + "\n"


RENDERERS: Mapping[str, Callable[[ContractDiff], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}
