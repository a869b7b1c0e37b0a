"""The rule catalog is complete, and it is the only place that spells a slug."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

from otel_contract import _core, rules
from otel_contract.rules import RULES, Action, Level, Scope

from .conftest import REPO, run_cli

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


def test_every_rule_the_compiled_core_reports_is_a_telemetry_rule_of_the_catalog() -> None:
    """The core spells its slugs in Rust (core/src/sink.rs): each must be a catalog rule that fires on
    telemetry, or its findings could not be formatted or would name a rule the docs do not have."""
    assert len(_core.RULES) == len(set(_core.RULES)) == 13
    assert [slug for slug in _core.RULES if slug not in RULES or Scope.TELEMETRY not in RULES[slug].scope] == []


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


_BEGIN, _END = "<!-- rules:begin -->", "<!-- rules:end -->"
_SCHEMA = "otel_contract/contract/schema/contract-v1.schema.json"


def test_readme_rule_table_is_generated_from_the_catalog() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines(keepends=True)
    markers = [index for index, line in enumerate(lines) if line.strip() in (_BEGIN, _END)]
    assert len(markers) == 2, f"README.md: the rule table goes between a {_BEGIN} line and a {_END} line"
    documented = "".join(lines[markers[0] + 1 : markers[1]])
    generated = run_cli("rules", "--format", "markdown")
    assert generated.returncode == 0, generated.stderr
    assert documented == generated.stdout, "README.md's rule table is not rules.py's: run make docs"


def _sync_catalog(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = REPO / "tools/sync_catalog.py"
    command = [sys.executable, str(tool), "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_make_docs_rewrites_stale_copies_of_the_catalog(tmp_path: Path) -> None:
    for name in ("README.md", _SCHEMA):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, tmp_path / name)
    assert _sync_catalog(tmp_path, "--check").returncode == 0  # the checked-in copies are what it writes
    readme, schema = tmp_path / "README.md", tmp_path / _SCHEMA
    readme.write_text(
        readme.read_text().replace("| `metric-name` | error | flag |", "| `metric-name` | error | reject |")
    )
    schema.write_text(schema.read_text().replace('"metric-name", ', ""))

    stale = _sync_catalog(tmp_path, "--check")
    assert (stale.returncode, stale.stdout.count("run make docs")) == (1, 2), stale.stdout + stale.stderr
    assert _sync_catalog(tmp_path).returncode == 0
    assert readme.read_bytes() == (REPO / "README.md").read_bytes()
    assert schema.read_bytes() == (REPO / _SCHEMA).read_bytes()
