"""The rule catalog is complete, and it is the only place that spells a slug."""

from __future__ import annotations

import ast
import re

from otel_contract import rules
from otel_contract.rules import RULES, Action, Level, Scope

from .conftest import REPO

# The slugs of design §4 (shared/design.md): output, config and docs rely on these staying stable.
DESIGN_SLUGS = {
    "unknown-metric", "metric-name", "deprecated-metric", "type-mismatch", "unit-mismatch",
    "missing-attribute", "forbidden-attribute", "attribute-value", "identity-conflict", "cardinality",
    "missing-resource-attribute", "resource-attribute-value", "invalid-data-point", "expired-shim",
    "invariant", "contract-schema",
}  # fmt: skip


def test_catalog_has_every_design_slug() -> None:
    assert set(RULES) >= DESIGN_SLUGS


def test_every_rule_is_complete_data() -> None:
    for slug, rule in RULES.items():
        assert rule.slug == slug
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", slug)
        assert isinstance(rule.level, Level) and isinstance(rule.action, Action)
        assert rule.scope & (Scope.TELEMETRY | Scope.CONTRACT | Scope.PIPELINE)
        assert rule.summary.endswith(".") and len(rule.summary) < 120


def test_rule_constants_are_the_catalog_entries() -> None:
    constants = {name: value for name, value in vars(rules).items() if isinstance(value, rules.Rule)}
    assert set(constants.values()) == set(RULES.values())
    assert rules.METRIC_NAME is RULES["metric-name"]


def test_no_module_but_the_catalog_spells_a_slug() -> None:
    offenders = []
    for path in sorted((REPO / "otel_contract").rglob("*.py")):
        if path.name == "rules.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in RULES:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_levels_order_and_parse() -> None:
    assert Level.ERROR > Level.WARNING > Level.INFO
    assert Level.parse("Warning") is Level.WARNING


def test_readme_documents_every_rule() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [slug for slug in RULES if f"`{slug}`" not in readme]
    assert missing == []
