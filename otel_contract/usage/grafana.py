"""Grafana dashboard JSON -> every PromQL query in it, with where it sits.

Panels (``panels[]``, the panels of collapsed rows ``panels[].panels[]``, the legacy
``rows[].panels[]``), templating variables of type ``query`` and annotations are read; the HTTP API's
``{"dashboard": {...}, "meta": {...}}`` export is unwrapped. Grafana variables are replaced before
parsing (``substitute``), so that a templated query is still PromQL; one that is not is reported as
unparsed with its reason, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from otel_contract.usage.model import MatchOp, NameMatcher, NameSelector, Query, Scan, Source, SourceKind, Unparsed
from otel_contract.usage.promql import PromqlError, read_selectors

# What a variable stands for once substituted: any duration parses where a range or offset goes, a
# number where a scalar goes, and a match-all regex inside a label value keeps a regex matcher valid.
DURATION = "5m"
NUMBER = "1"
IN_STRING = ".*"

# Grafana's own pattern for a variable reference: $name, [[name]] or [[name:format]], ${name},
# ${name.field} or ${name:format}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+)(?::\w+)?\]\]|\$\{(\w+)(?:\.[^:}]+)?(?::[^}]+)?\}")
# PromQL string literals, where a variable is a label value (or a regex), not syntax.
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
_NAME_CHAR = re.compile(r"[A-Za-z0-9_:]")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_]")
_OFFSET_BEFORE = re.compile(r"\boffset\s*$")

_LABEL_VALUES = re.compile(
    r"\s*label_values\s*\(\s*(?:(?P<selector>.*\S)\s*,\s*)?(?P<label>[A-Za-z_][\w.]*)\s*\)\s*", re.S
)
_QUERY_RESULT = re.compile(r"\s*query_result\s*\((?P<expr>.*)\)\s*", re.S)
_METRICS = re.compile(r"\s*metrics\s*\((?P<regex>.*)\)\s*", re.S)
_LABEL_NAMES = re.compile(r"\s*label_names\s*\(.*\)\s*", re.S)


class Unresolvable(ValueError):
    """A variable that cannot be replaced without guessing a name (``ceph_$metric_total``)."""


def substitute(expr: str, variables: frozenset[str] = frozenset()) -> str:
    """``expr`` with Grafana variables replaced by placeholders that keep it PromQL.

    Inside string literals only the dashboard's ``variables`` and Grafana's built-ins (``$__...``) are
    replaced, because ``"$1"`` in ``label_replace`` is a regex group, as Grafana also leaves it.
    Outside strings every reference is replaced (``$`` is not PromQL there): in ``[...]`` and after
    ``offset`` by a duration (by a number when a unit follows, ``[${days}d]``), elsewhere by a number
    (``topk($n, ...)``). A variable glued to a name cannot be replaced without guessing the name.
    """
    # Brackets and "offset" are looked for with string literals blanked out, so that a regex such
    # as "[a-z]" does not look like a range.
    code = _STRING.sub(lambda m: " " * len(m.group()), expr)
    out: list[str] = []
    position = 0
    for string in _STRING.finditer(expr):
        out.append(_outside(expr, code, position, string.start()))
        out.append(_VARIABLE.sub(lambda m: _in_string(m, variables), string.group()))
        position = string.end()
    out.append(_outside(expr, code, position, len(expr)))
    return "".join(out)


def _in_string(match: re.Match[str], variables: frozenset[str]) -> str:
    name = _variable_name(match)
    return IN_STRING if name.startswith("__") or name in variables else match.group()


def _variable_name(match: re.Match[str]) -> str:
    return next(group for group in match.groups() if group is not None)


def _outside(expr: str, code: str, start: int, end: int) -> str:
    """Replace the variables of ``expr[start:end]``, a stretch outside string literals."""
    out: list[str] = []
    position = start
    for match in _VARIABLE.finditer(expr, start, end):
        out.append(expr[position : match.start()])
        before = expr[match.start() - 1] if match.start() > 0 else ""
        after = expr[match.end()] if match.end() < len(expr) else ""
        opened = code.rfind("[", 0, match.start())
        in_brackets = opened != -1 and code.rfind("]", 0, match.start()) < opened
        # In a range a colon separates a subquery's step ([5m:$__interval]); elsewhere it is part of a
        # recording rule's name.
        glued = _WORD_CHAR.match(before) if in_brackets else _NAME_CHAR.match(before) or _NAME_CHAR.match(after)
        if glued:
            name = _variable_name(match)
            raise Unresolvable(f"variable ${name} is part of a metric or label name, known only at run time")
        if in_brackets:
            out.append(NUMBER if after.isalpha() else DURATION)
        elif _OFFSET_BEFORE.search(code, 0, match.start()):
            out.append(DURATION)
        else:
            out.append(NUMBER)
        position = match.end()
    out.append(expr[position:end])
    return "".join(out)


# --- walking a dashboard ----------------------------------------------------------------------------


class NotADashboard(ValueError):
    """A JSON document without panels, rows or templating: some other JSON file in the directory."""


@dataclass(frozen=True, slots=True)
class _Raw:
    source: Source
    text: str
    kind: str = "promql"  # "promql" | "selector" (label_values) | "metrics" (a name regex)


def scan_dashboard(document: Any, file: str) -> Scan:
    """Every query of one dashboard document, parsed (or reported as unparsed)."""
    dashboard = _unwrap(document, file)
    title = dashboard.get("title") if isinstance(dashboard.get("title"), str) else file
    variables = frozenset(_variable_names(dashboard))
    base = Source(SourceKind.PANEL, file, dashboard=title)
    raws: list[_Raw] = []
    panels = 0
    for row, panel in _panels(dashboard):
        panels += 1
        raws += _panel_queries(panel, replace(base, row=row, panel=_title(panel)))
    raws += _variable_queries(dashboard, replace(base, kind=SourceKind.VARIABLE))
    raws += _annotation_queries(dashboard, replace(base, kind=SourceKind.ANNOTATION))
    parsed = [_parse(raw, variables) for raw in raws]
    queries = [item for item in parsed if isinstance(item, Query)]
    unparsed = [item for item in parsed if isinstance(item, Unparsed)]
    return Scan(queries=tuple(queries), unparsed=tuple(unparsed), dashboards=(file,), panels=panels)


def _unwrap(document: Any, file: str) -> Mapping[str, Any]:
    if isinstance(document, dict) and isinstance(document.get("dashboard"), dict) and "panels" not in document:
        document = document["dashboard"]
    if not isinstance(document, dict) or not any(key in document for key in ("panels", "rows", "templating")):
        raise NotADashboard(f"{file}: not a Grafana dashboard (no panels, rows or templating)")
    return document


def _title(panel: Mapping[str, Any]) -> str | None:
    title = panel.get("title")
    return title if isinstance(title, str) else None


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _panels(dashboard: Mapping[str, Any]) -> Iterator[tuple[str | None, Mapping[str, Any]]]:
    """(row title, panel) for every panel that is not itself a row."""
    row: str | None = None
    for panel in _dicts(dashboard.get("panels")):
        if panel.get("type") == "row":
            # An open row's panels follow it in the list; a collapsed row holds them.
            row = _title(panel)
            for inner in _dicts(panel.get("panels")):
                yield row, inner
            continue
        yield row, panel
    for legacy in _dicts(dashboard.get("rows")):
        for panel in _dicts(legacy.get("panels")):
            yield _title(legacy), panel


def _panel_queries(panel: Mapping[str, Any], source: Source) -> list[_Raw]:
    raws = []
    for target in _dicts(panel.get("targets")):
        expr = target.get("expr")
        if isinstance(expr, str) and expr.strip():
            ref = target.get("refId")
            raws.append(_Raw(replace(source, ref_id=ref if isinstance(ref, str) else None), expr))
    return raws


def _variable_names(dashboard: Mapping[str, Any]) -> Iterator[str]:
    templating = dashboard.get("templating")
    for variable in _dicts(templating.get("list") if isinstance(templating, dict) else None):
        if isinstance(variable.get("name"), str):
            yield variable["name"]


def _variable_queries(dashboard: Mapping[str, Any], source: Source) -> list[_Raw]:
    templating = dashboard.get("templating")
    raws = []
    for variable in _dicts(templating.get("list") if isinstance(templating, dict) else None):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):  # the variable editor of Grafana 9+: {"query": "...", "refId": ...}
            query = query.get("query")
        if not isinstance(query, str) or not query.strip():
            continue
        raw = _template_query(query, replace(source, variable=str(variable.get("name"))))
        if raw is not None:
            raws.append(raw)
    return raws


def _template_query(query: str, source: Source) -> _Raw | None:
    """The PromQL of a Prometheus variable query, or None when it reads no metric."""
    if match := _LABEL_VALUES.fullmatch(query):
        selector = match.group("selector")
        return _Raw(source, selector, "selector") if selector else None  # label_values(label): every series
    if match := _QUERY_RESULT.fullmatch(query):
        return _Raw(source, match.group("expr"))
    if match := _METRICS.fullmatch(query):
        return _Raw(source, match.group("regex").strip(), "metrics")
    if _LABEL_NAMES.fullmatch(query):
        return None
    return _Raw(source, query)


def _annotation_queries(dashboard: Mapping[str, Any], source: Source) -> list[_Raw]:
    annotations = dashboard.get("annotations")
    raws = []
    for annotation in _dicts(annotations.get("list") if isinstance(annotations, dict) else None):
        target = annotation.get("target")
        expr = annotation.get("expr") or (target.get("expr") if isinstance(target, dict) else None)
        if isinstance(expr, str) and expr.strip():
            raws.append(_Raw(replace(source, annotation=str(annotation.get("name"))), expr))
    return raws


def _parse(raw: _Raw, variables: frozenset[str]) -> Query | Unparsed:
    try:
        if raw.kind == "metrics":
            # Grafana filters metric names with an unanchored JavaScript regex search.
            pattern = _VARIABLE.sub(IN_STRING, raw.text)
            re.compile(pattern)
            return Query(raw.source, raw.text, (NameSelector(((NameMatcher(MatchOp.REGEX, f".*(?:{pattern}).*"),),)),))
        return Query(raw.source, raw.text, read_selectors(substitute(raw.text, variables)))
    except (PromqlError, Unresolvable) as error:
        return Unparsed(raw.source, raw.text, str(error))
    except re.error as error:
        return Unparsed(raw.source, raw.text, f"metrics() regex does not compile: {error}")
