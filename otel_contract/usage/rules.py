"""Prometheus rule files -> every rule's query, and the series recording rules make.

The file format is Prometheus' (``groups[].rules[]`` with ``record`` or ``alert`` and ``expr``); a
Prometheus Operator ``PrometheusRule`` (``spec.groups``) is read the same way. A recording rule is a
use of what its expression reads, and its ``record`` is a series that other queries may read: it
becomes a ``Derivation``, so a dashboard reading the record uses the metric *through* the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_contract.usage.model import Derivation, Query, Scan, Source, SourceKind, Unparsed
from otel_contract.usage.promql import PromqlError, read_selectors


class NotARuleFile(ValueError):
    """A YAML document without ``groups``: some other YAML file in the directory."""


def scan_rule_documents(documents: list[Any], file: str) -> Scan:
    """Every rule of the YAML ``documents`` of one file (a file may hold several documents)."""
    groups = [group for document in documents for group in _groups(document)]
    if not any(_groups_key(document) for document in documents):
        raise NotARuleFile(f"{file}: not a Prometheus rule file (no groups)")
    queries: list[Query] = []
    unparsed: list[Unparsed] = []
    derivations: list[Derivation] = []
    count = 0
    for group in groups:
        group_name = str(group.get("name"))
        for rule in _dicts(group.get("rules")):
            kind = "record" if "record" in rule else "alert" if "alert" in rule else None
            expr = rule.get("expr")
            if kind is None or not isinstance(expr, str | int | float):
                continue
            count += 1
            name = str(rule[kind])
            source = Source(SourceKind.RULE, file, group=group_name, rule=name, rule_type=kind)
            text = str(expr)
            try:
                selectors = read_selectors(text)
            except PromqlError as error:
                unparsed.append(Unparsed(source, text, str(error)))
                continue
            queries.append(Query(source, text, selectors))
            if kind == "record":
                derivations.append(Derivation(name, selectors, f"recording rule {name} ({file})"))
    return Scan(
        queries=tuple(queries),
        unparsed=tuple(unparsed),
        derivations=tuple(derivations),
        rule_files=(file,),
        rules=count,
    )


def _groups_key(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    spec = document.get("spec")
    return "groups" in document or (isinstance(spec, dict) and "groups" in spec)


def _groups(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, dict):
        return []
    spec = document.get("spec")
    holder = spec if "groups" not in document and isinstance(spec, dict) else document
    return _dicts(holder.get("groups"))


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
