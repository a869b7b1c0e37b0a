"""``otel-contract diff``: every change kind from a pair of contracts, the semver gate, git revisions,
the three formats, and the issue's acceptance on the example contract."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from markdown_it import MarkdownIt

from otel_contract.diff import KINDS, Bump, Impact, bump_between, compare, next_version, required_bump
from otel_contract.diff.formats import change_table, load_schema, render_json, render_markdown, to_json
from otel_contract.diff.model import version_gate
from otel_contract.loading import lint_contract
from tests.conftest import CONTRACTS, REPO, git, run_cli

BASE = REPO / "tests" / "data" / "diff" / "base.yaml"

Doc = dict[str, Any]


def _metric(doc: Doc, name: str) -> Doc:
    return next(metric for metric in doc["metrics"] if metric["name"] == name)


def _drop_metric(doc: Doc, name: str) -> None:
    doc["metrics"] = [metric for metric in doc["metrics"] if metric["name"] != name]


def _rename_duration(doc: Doc) -> None:
    metric = _metric(doc, "http_server_duration_seconds")
    metric["name"] = "http_server_latency_seconds"
    metric["aliases"].append({"name": "http_server_duration_seconds"})


def _with_shim(doc: Doc) -> None:
    _rename_duration(doc)
    doc["compat"].append(
        {"record": "http_server_duration_seconds", "expr": "sum(http_requests_total)", "expires": "2027-01-01"}
    )


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """An edit that sets a dotted path ("metrics.queue_depth.unit"); a metric is named, not indexed."""

    def edit(doc: Doc) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = next(item for item in node if item["name"] == part) if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return edit


_DELETE = object()


def _both(*edits: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for one in edits:
            one(doc)

    return edit


DURATION = "metrics/http_server_duration_seconds"
REQUESTS = "metrics/http_requests_total"
QUEUE = "metrics/queue_depth"

# (id, edit of the base document, the kinds expected, in any order, with repeats)
CASES: list[tuple[str, Callable[[Doc], None], list[str]]] = [
    ("nothing", lambda doc: None, []),
    ("contract id", _set("contract", "store"), ["contract-renamed"]),
    ("description", _set("description", "Shop"), ["contract-metadata"]),
    ("owners", _set("owners", ["sre", "team-a"]), ["contract-metadata"]),
    (
        "metric added",
        lambda doc: doc["metrics"].append({"name": "cart_size", "type": "gauge", "unit": "{item}"}),
        ["metric-added"],
    ),
    ("metric removed", lambda doc: _drop_metric(doc, "http_requests_total"), ["metric-removed"]),
    (
        "metric removed with its signal",
        _both(lambda doc: _drop_metric(doc, "queue_depth"), _set("autoscaling", [])),
        ["metric-removed", "signal-removed"],
    ),
    ("archived metric removed", lambda doc: _drop_metric(doc, "legacy_jobs_total"), ["archived-metric-removed"]),
    (
        "archived metric removed, unknown metrics rejected",
        _both(lambda doc: _drop_metric(doc, "legacy_jobs_total"), _set("defaults/unknown_metrics", "reject")),
        ["metric-removed", "policy-stricter"],
    ),
    ("metric renamed", _rename_duration, ["metric-renamed"]),
    ("metric renamed with a shim", _with_shim, ["metric-renamed-with-shim", "shim-added"]),
    (
        "metric renamed and its unit changed",
        _both(_rename_duration, _set("metrics/http_server_latency_seconds/unit", "ms")),
        ["metric-renamed", "metric-unit-scaled"],
    ),
    ("type", _set(f"{QUEUE}/type", "sum"), ["metric-type"]),
    ("unit scaled", _set(f"{DURATION}/unit", "ms"), ["metric-unit-scaled"]),
    ("unit not convertible", _set(f"{QUEUE}/unit", "By"), ["metric-unit"]),
    ("unit dropped", _set(f"{QUEUE}/unit", _DELETE), ["metric-unit-dropped"]),
    ("temporality changed", _set(f"{DURATION}/temporality", "delta"), ["metric-temporality"]),
    ("temporality added", _set(f"{REQUESTS}/temporality", "cumulative"), ["metric-temporality"]),
    ("temporality dropped", _set(f"{DURATION}/temporality", _DELETE), ["metric-temporality-dropped"]),
    ("monotonic changed", _set(f"{REQUESTS}/monotonic", False), ["metric-monotonic"]),
    ("monotonic dropped", _set(f"{REQUESTS}/monotonic", _DELETE), ["metric-monotonic-dropped"]),
    ("deprecated", _set(f"{REQUESTS}/stability", "deprecated"), ["metric-deprecated"]),
    ("archived", _set(f"{REQUESTS}/stability", "archived"), ["metric-deprecated"]),
    (
        "deprecated while the policy rejects deprecated metrics",
        _both(_set(f"{REQUESTS}/stability", "deprecated"), _set("policy/deprecated-metric", "reject")),
        ["metric-deprecated-rejected", "policy-stricter"],
    ),
    ("experimental to stable", _set(f"{QUEUE}/stability", "stable"), ["metric-stability"]),
    ("archived to stable", _set("metrics/legacy_jobs_total/stability", "stable"), ["metric-stability"]),
    ("metadata", _set(f"{DURATION}/owner", "team-b"), ["metric-documentation"]),
    ("since", _set(f"{DURATION}/since", "1.1.0"), ["metric-documentation"]),
    ("precision reduced", _set(f"{DURATION}/precision", 1), ["metric-precision-reduced"]),
    ("precision dropped", _set(f"{DURATION}/precision", _DELETE), ["metric-precision-reduced"]),
    ("precision raised", _set(f"{DURATION}/precision", 6), ["metric-precision-raised"]),
    ("precision added", _set(f"{QUEUE}/precision", 0), ["metric-precision-raised"]),
    ("alias added", lambda doc: _metric(doc, "queue_depth").update(aliases=[{"name": "queue.depth"}]), ["alias-added"]),
    ("alias removed", _set(f"{DURATION}/aliases", []), ["alias-removed"]),
    ("alias unit", _set(f"{DURATION}/aliases", [{"name": "http.server.duration", "unit": "us"}]), ["alias-unit"]),
    ("budget reduced", _set(f"{DURATION}/max_series", 50), ["max-series-reduced"]),
    ("budget added", _set(f"{QUEUE}/max_series", 50), ["max-series-reduced"]),
    ("budget raised", _set(f"{DURATION}/max_series", 500), ["max-series-raised"]),
    ("budget dropped", _set(f"{DURATION}/max_series", _DELETE), ["max-series-raised"]),
    ("required added", _set(f"{REQUESTS}/attributes/required", ["http.method", "http.route"]), ["attribute-required"]),
    ("required dropped", _set(f"{REQUESTS}/attributes/required", []), ["attribute-relaxed"]),
    ("optional", _set(f"{DURATION}/attributes/optional", ["http.route", "net.peer"]), ["attribute-optional"]),
    ("forbidden added", _set(f"{DURATION}/attributes/forbidden", ["user.id", "session"]), ["attribute-forbidden"]),
    ("forbidden dropped", _set(f"{DURATION}/attributes/forbidden", []), ["attribute-allowed"]),
    ("value removed", _set(f"{DURATION}/attributes/values", {"http.method": ["POST"]}), ["attribute-values-removed"]),
    (
        "value added",
        _set(f"{DURATION}/attributes/values", {"http.method": ["GET", "POST", "PUT"]}),
        ["attribute-values-added"],
    ),
    (
        "values restricted",
        _set(f"{REQUESTS}/attributes/values", {"http.method": ["GET"]}),
        ["attribute-values-removed"],
    ),
    ("values unrestricted", _set(f"{DURATION}/attributes/values", {}), ["attribute-values-added"]),
    ("pattern changed", _set(f"{DURATION}/attributes/patterns", {"http.route": "^/api"}), ["attribute-pattern"]),
    ("pattern dropped", _set(f"{DURATION}/attributes/patterns", {}), ["attribute-pattern-dropped"]),
    ("type changed", _set("attributes/types", {"http.status_code": "string"}), ["attribute-type"]),
    ("type dropped", _set("attributes/types", {}), ["attribute-type-dropped"]),
    (
        "rename added",
        _set("attributes/renames", {"status_code": "http.status_code", "code": "rpc.code"}),
        ["attribute-rename"],
    ),
    ("rename dropped", _set("attributes/renames", {}), ["attribute-rename"]),
    ("rename changed", _set("attributes/renames", {"status_code": "http.response.status_code"}), ["attribute-rename"]),
    ("resource required added", _set("resource/required", ["service.name", "k8s.pod.name"]), ["attribute-required"]),
    ("resource required dropped", _set("resource/required", []), ["attribute-relaxed"]),
    (
        "resource value removed",
        _set("resource/attributes", {"deployment.environment": {"allowed": ["prod"], "pattern": "^[a-z]+$"}}),
        ["attribute-values-removed"],
    ),
    (
        "resource pattern changed",
        _set("resource/attributes", {"deployment.environment": {"allowed": ["prod", "staging"], "pattern": "^p"}}),
        ["attribute-pattern"],
    ),
    (
        "resource insert added",
        lambda doc: doc["resource"]["actions"].append({"key": "team", "action": "insert", "value": "shop"}),
        ["resource-action-insert-added"],
    ),
    (
        "resource upsert added",
        lambda doc: doc["resource"]["actions"].append({"key": "team", "action": "upsert", "value": "shop"}),
        ["resource-action-added"],
    ),
    ("resource action removed", lambda doc: doc["resource"]["actions"].pop(), ["resource-action-removed"]),
    (
        "resource action changed",
        lambda doc: doc["resource"]["actions"][0].update(value="store"),
        ["resource-action-changed"],
    ),
    (
        "resource actions reordered",
        lambda doc: doc["resource"]["actions"].reverse(),
        ["resource-actions-reordered"],
    ),
    ("name pattern changed", _set("naming/metric_pattern", "^[a-z]+$"), ["naming-pattern"]),
    ("name pattern dropped", _set("naming/attribute_pattern", _DELETE), ["naming-pattern-dropped"]),
    (
        "naming rule added",
        lambda doc: doc["naming"]["rules"].append({"match": "^db_", "pattern": "^db_[a-z_]+_seconds$"}),
        ["naming-rule"],
    ),
    ("naming rule dropped", _set("naming/rules", []), ["naming-rule-dropped"]),
    ("naming rule changed", lambda doc: doc["naming"]["rules"][0].update(pattern="^http_.*$"), ["naming-rule"]),
    ("naming rule message", lambda doc: doc["naming"]["rules"][0].update(message="HTTP"), ["contract-metadata"]),
    ("policy stricter", _set("policy/missing-attribute", "reject"), ["policy-stricter"]),
    ("policy looser", _set("policy/missing-attribute", "ignore"), ["policy-looser"]),
    ("policy back to the default", _set("policy", {}), []),  # missing-attribute's default action is flag
    ("unknown metrics rejected", _set("defaults/unknown_metrics", "reject"), ["policy-stricter"]),
    ("unknown metrics ignored", _set("defaults/unknown_metrics", "ignore"), ["policy-looser"]),
    ("metric policy", _set(f"{DURATION}/policy", {"cardinality": "flag"}), ["policy-looser"]),
    (
        "shim added",
        lambda doc: doc["compat"].append(
            {"record": "old_total", "expr": "sum(http_requests_total)", "expires": "2027-01-01"}
        ),
        ["shim-added"],
    ),
    ("shim removed", _set("compat", []), ["shim-removed"]),
    ("shim expression", lambda doc: doc["compat"][0].update(expr="sum(http_requests_total)"), ["shim-changed"]),
    ("shim expires earlier", lambda doc: doc["compat"][0].update(expires="2027-01-01"), ["shim-expiry-earlier"]),
    ("shim expires later", lambda doc: doc["compat"][0].update(expires="2028-01-01"), ["shim-expiry-later"]),
    ("shim reason", lambda doc: doc["compat"][0].update(reason="migrating"), ["shim-metadata"]),
    (
        "invariant added",
        lambda doc: doc["invariants"].append({"name": "queue-present", "present": "queue_depth"}),
        ["invariant-added"],
    ),
    ("invariant removed", _set("invariants", []), ["invariant-removed"]),
    ("invariant tightened", lambda doc: doc["invariants"][0].update(max_deviation=0.01), ["invariant-tightened"]),
    ("invariant loosened", lambda doc: doc["invariants"][0].update(max_deviation=0.1), ["invariant-loosened"]),
    (
        "invariant checks something else",
        lambda doc: doc["invariants"][0].update(ratio=["http_server_duration_seconds_count", "queue_depth"]),
        ["invariant-tightened"],
    ),
    ("invariant description", lambda doc: doc["invariants"][0].update(description="x"), ["invariant-metadata"]),
    (
        "signal added",
        lambda doc: doc["autoscaling"].append(
            {
                "metric": "http_requests_total",
                "kind": "pods",
                "target": {"type": "AverageValue", "value": 10},
                "rate_window": "1m",
            }
        ),
        ["signal-added"],
    ),
    ("signal selector", lambda doc: doc["autoscaling"][0].update(selector={"queue_name": "jobs"}), ["signal-changed"]),
    ("signal replicas", lambda doc: doc["autoscaling"][0].update(max_replicas=8), ["signal-tuned"]),
    (
        "signal target",
        lambda doc: doc["autoscaling"][0].update(target={"type": "Value", "value": 50}),
        ["signal-tuned"],
    ),
]


def _model(tmp_path: Path, doc: Doc, name: str):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    result = lint_contract(path)
    assert result.contract is not None, [f.message for f in result.findings]
    return result.contract


@pytest.fixture(scope="module")
def base_doc() -> Doc:
    document: Doc = yaml.safe_load(BASE.read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize(("edit", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_change_is_classified(
    tmp_path: Path, base_doc: Doc, edit: Callable[[Doc], None], expected: list[str]
) -> None:
    new_doc = copy.deepcopy(base_doc)
    edit(new_doc)
    old, new = _model(tmp_path, base_doc, "old.yaml"), _model(tmp_path, new_doc, "new.yaml")
    diff = compare(old, new)
    assert sorted(change.kind.slug for change in diff.changes) == sorted(expected)
    for change in diff.changes:
        assert change.reason and change.subject and change.path
        assert change.impact is KINDS[change.kind.slug].impact


def test_every_kind_in_the_catalog_has_a_case() -> None:
    covered = {slug for _, _, expected in CASES for slug in expected}
    assert covered == set(KINDS)


def test_the_readme_change_table_is_generated_from_the_catalog() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines(keepends=True)
    markers = [i for i, line in enumerate(lines) if line.strip() in ("<!-- changes:begin -->", "<!-- changes:end -->")]
    assert len(markers) == 2, "README.md: the change table goes between the changes:begin and changes:end lines"
    documented = "".join(lines[markers[0] + 1 : markers[1]])
    assert documented == change_table(KINDS.values()), "README.md's change table is not diff/kinds.py's: run make docs"


def _diff_of(tmp_path: Path, base_doc: Doc, edit: Callable[[Doc], None]):  # type: ignore[no-untyped-def]
    new_doc = copy.deepcopy(base_doc)
    edit(new_doc)
    return compare(_model(tmp_path, base_doc, "old.yaml"), _model(tmp_path, new_doc, "new.yaml"))


def test_reasons_name_the_value_the_attribute_the_metric_and_the_action(tmp_path: Path, base_doc: Doc) -> None:
    diff = _diff_of(tmp_path, base_doc, _set(f"{DURATION}/attributes/values", {"http.method": ["POST"]}))
    (change,) = diff.changes
    assert change.reason == (
        "removing GET from the allowed values of http.method on http_server_duration_seconds: data with"
        " http.method=GET, accepted before, is flagged as attribute-value"
    )
    assert change.path == "metrics[http_server_duration_seconds].attributes.values.http.method"
    assert (change.old, change.new) == (["GET"], None)

    rejected = _diff_of(
        tmp_path,
        base_doc,
        _both(
            _set(f"{REQUESTS}/attributes/required", ["http.method", "code"]), _set("policy/missing-attribute", "reject")
        ),
    )
    required = next(c for c in rejected.changes if c.kind.slug == "attribute-required")
    assert "is rejected (missing-attribute)" in required.reason


def test_a_convertible_unit_change_says_by_how_much(tmp_path: Path, base_doc: Doc) -> None:
    (change,) = _diff_of(tmp_path, base_doc, _set(f"{DURATION}/unit", "ms")).changes
    assert "1000 times what it was" in change.reason
    assert change.impact is Impact.BREAKING


def test_a_renamed_metric_is_compared_with_its_old_definition(tmp_path: Path, base_doc: Doc) -> None:
    diff = _diff_of(tmp_path, base_doc, _rename_duration)
    (change,) = diff.changes
    assert (change.old, change.new) == ("http_server_duration_seconds", "http_server_latency_seconds")
    assert "no compat shim records http_server_duration_seconds" in change.reason


def test_changes_are_ordered_breaking_first(tmp_path: Path, base_doc: Doc) -> None:
    diff = _diff_of(
        tmp_path,
        base_doc,
        _both(_set("description", "x"), _set(f"{QUEUE}/type", "sum"), _set(f"{DURATION}/max_series", 500)),
    )
    assert [change.impact for change in diff.changes] == [Impact.BREAKING, Impact.COMPATIBLE, Impact.INFORMATIONAL]


# --- the semver gate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "bump"),
    [
        ("1.4.0", "2.0.0", Bump.MAJOR),
        ("1.4.0", "1.5.0", Bump.MINOR),
        ("1.4.0", "1.4.1", Bump.PATCH),
        ("1.4.0", "1.4.0", Bump.NONE),
        ("1.4.0", "1.3.9", Bump.DOWNGRADE),
        ("2.0.0-rc.1", "2.0.0-rc.2", Bump.PATCH),
        ("2.0.0-rc.1", "2.0.0", Bump.PATCH),
        ("2.0.0", "2.0.0-rc.1", Bump.DOWNGRADE),
        ("1.9.0", "2.0.0-rc.1", Bump.MAJOR),
        ("1.4.0", "1.4.0+build.7", Bump.NONE),
        ("1.0.0-alpha.10", "1.0.0-alpha.9", Bump.DOWNGRADE),  # numeric identifiers compare as numbers
    ],
)
def test_bump_between(old: str, new: str, bump: Bump) -> None:
    assert bump_between(old, new) is bump


def test_next_and_required_versions() -> None:
    assert next_version("1.4.2", Bump.MAJOR) == "2.0.0"
    assert next_version("1.4.2", Bump.MINOR) == "1.5.0"
    assert next_version("1.4.2", Bump.PATCH) == "1.4.3"
    assert next_version("2.0.0-rc.1", Bump.PATCH) == "2.0.0"
    assert required_bump(Impact.BREAKING, "1.4.0") is Bump.MAJOR
    assert required_bump(Impact.BREAKING, "0.4.0") is Bump.MINOR  # below 1.0.0
    assert required_bump(Impact.COMPATIBLE, "1.4.0") is Bump.MINOR
    assert required_bump(Impact.INFORMATIONAL, "1.4.0") is Bump.PATCH
    assert required_bump(None, "1.4.0") is Bump.NONE


def test_gate(tmp_path: Path, base_doc: Doc) -> None:
    breaking = _diff_of(tmp_path, base_doc, _set(f"{QUEUE}/type", "sum")).changes
    compatible = _diff_of(tmp_path, base_doc, _set(f"{DURATION}/max_series", 500)).changes
    informational = _diff_of(tmp_path, base_doc, _set("description", "x")).changes

    failed = version_gate("1.2.0", "1.3.0", breaking)
    assert not failed.passed and failed.suggested == "2.0.0"
    assert failed.problems == (
        "1 breaking change needs a major version step: 1.2.0 -> 2.0.0, not 1.3.0 (a minor step)",
    )
    assert version_gate("1.2.0", "2.0.0", breaking).passed
    assert version_gate("0.2.0", "0.3.0", breaking).passed
    assert not version_gate("0.2.0", "0.2.1", breaking).passed

    unbumped = version_gate("1.2.0", "1.2.0", informational)
    assert unbumped.problems == ("1 change but the version is still 1.2.0: it needs at least 1.2.1",)
    assert version_gate("1.2.0", "1.2.1", informational).passed

    patched = version_gate("1.2.0", "1.2.1", compatible)
    assert patched.passed and patched.notes and "minor" in patched.notes[0]
    assert not version_gate("1.2.0", "1.1.0", []).passed
    assert version_gate("1.2.0", "1.2.0", []).passed


# --- the command line, git revisions and formats -------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of contracts/ (the ecommerce contract includes base/org.yaml)."""
    root = tmp_path / "repo"
    shutil.copytree(CONTRACTS, root / "contracts")
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "contracts")
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


ECOMMERCE = "contracts/ecommerce.yaml"
ACCEPTANCE = {
    "removing an allowed value": (
        "values: {http.method: [GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS]}",
        "values: {http.method: [POST, PUT, DELETE, PATCH, HEAD, OPTIONS]}",
        "attribute-values-removed",
    ),
    "changing a unit": ("    unit: ms\n", "    unit: s\n", "metric-unit-scaled"),
    "deleting a metric": (
        "  - name: db_connection_pool_wait_time_ms\n    type: histogram\n",
        "  - name: db_connection_pool_wait_time_ms_removed\n    type: histogram\n",
        None,
    ),
}


@pytest.mark.parametrize("change", list(ACCEPTANCE), ids=list(ACCEPTANCE))
def test_example_contract_breaking_changes_fail_the_gate_without_a_major_bump(repo: Path, change: str) -> None:
    before, after, slug = ACCEPTANCE[change]
    path = repo / ECOMMERCE
    if slug is None:  # delete the whole entry: from its name up to the next metric
        text = path.read_text(encoding="utf-8")
        start = text.index("  - name: db_connection_pool_wait_time_ms\n")
        end = text.index("  - name: system_disk_io_time_seconds_total\n")
        path.write_text(text[:start] + text[end:], encoding="utf-8")
        slug = "metric-removed"
    else:
        _edit(path, before, after)
    _edit(path, "version: 1.4.0", "version: 1.5.0")
    minor = run_cli("diff", f"git:HEAD:{ECOMMERCE}", ECOMMERCE, "--format", "json", cwd=repo)
    assert minor.returncode == 1, minor.stderr
    report = json.loads(minor.stdout)
    assert [(c["kind"], c["impact"]) for c in report["changes"]] == [(slug, "breaking")]
    assert report["version_gate"]["passed"] is False
    assert report["version_gate"]["suggested_version"] == "2.0.0"

    _edit(path, "version: 1.5.0", "version: 2.0.0")
    major = run_cli("diff", f"git:HEAD:{ECOMMERCE}", ECOMMERCE, cwd=repo)
    assert major.returncode == 0, major.stdout + major.stderr
    assert "BREAKING" in major.stdout and "version gate passed" in major.stdout


def test_includes_are_read_from_the_same_revision(repo: Path) -> None:
    _edit(repo / "contracts/base/org.yaml", "allowed: [prod, staging, canary, dev]", "allowed: [prod, staging]")
    # ecommerce.yaml overrides deployment.environment itself, so the base's edit shows through hpa-app only.
    result = run_cli("diff", "git:HEAD:contracts/hpa-app.yaml", "contracts/hpa-app.yaml", "--format", "json", cwd=repo)
    assert result.returncode == 1, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert [(c["kind"], c["subject"], c["old"]) for c in changes] == [
        ("attribute-values-removed", "deployment.environment on the resource", ["canary", "dev"])
    ]


def test_a_path_in_a_git_spec_is_relative_to_the_current_directory(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "change")
    _edit(repo / ECOMMERCE, "version: 1.4.0", "version: 1.4.1")
    _edit(repo / ECOMMERCE, "description: Checkout, cart", "description: The checkout, cart")
    git(repo, "commit", "-q", "-am", "describe")
    result = run_cli("diff", "git:main:ecommerce.yaml", "git:change:ecommerce.yaml", cwd=repo / "contracts")
    assert result.returncode == 0, result.stderr
    assert "contract-metadata" in result.stdout
    assert "git:main:contracts/ecommerce.yaml" in result.stdout


@pytest.mark.parametrize(
    ("old", "message"),
    [
        ("git:no-such-branch:contracts/ecommerce.yaml", "'no-such-branch' is not a commit"),
        ("git:HEAD:contracts/missing.yaml", "contracts/missing.yaml"),
        ("git:HEAD", "expected git:REF:PATH"),
        ("contracts/missing.yaml", "contracts/missing.yaml: cannot read contract"),
    ],
)
def test_unreadable_sides_exit_2_naming_them(repo: Path, old: str, message: str) -> None:
    result = run_cli("diff", old, ECOMMERCE, cwd=repo)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_a_schema_invalid_side_exits_2_with_its_errors(repo: Path) -> None:
    _edit(repo / ECOMMERCE, "    type: histogram\n", "    type: histogramm\n")
    result = run_cli("diff", f"git:HEAD:{ECOMMERCE}", ECOMMERCE, cwd=repo)
    assert result.returncode == 2
    assert "is not schema-valid" in result.stderr and "ecommerce.yaml:" in result.stderr


@pytest.mark.parametrize("pattern", ["^http_(?!legacy)", "^http_[a-z"], ids=["lookahead", "unclosed-class"])
def test_a_side_whose_pattern_does_not_compile_is_still_compared(repo: Path, pattern: str) -> None:
    # check reports the pattern (invalid-pattern); the diff names the change and mentions the error.
    _edit(repo / ECOMMERCE, "pattern: '^http_[a-z_]+_(seconds|total|bytes)$'", f"pattern: '{pattern}'")
    result = run_cli("diff", f"git:HEAD:{ECOMMERCE}", ECOMMERCE, cwd=repo)
    assert result.returncode == 1, result.stderr
    assert f"names matching '^http_' must now match '{pattern}'" in result.stdout
    assert "has 1 error; otel-contract check contracts/ecommerce.yaml lists them" in result.stderr


def test_fail_on(repo: Path) -> None:
    _edit(repo / ECOMMERCE, "    max_series: 50\n", "    max_series: 80\n")  # compatible, version not bumped
    args = ("diff", f"git:HEAD:{ECOMMERCE}", ECOMMERCE)
    assert run_cli(*args, cwd=repo).returncode == 1  # a change without a version step
    assert run_cli(*args, "--fail-on", "none", cwd=repo).returncode == 0
    _edit(repo / ECOMMERCE, "version: 1.4.0", "version: 1.5.0")
    assert run_cli(*args, cwd=repo).returncode == 0
    assert run_cli(*args, "--fail-on", "any", cwd=repo).returncode == 1
    same = run_cli("diff", ECOMMERCE, ECOMMERCE, "--fail-on", "any", cwd=repo)
    assert same.returncode == 0 and "no changes" in same.stdout


def test_json_matches_its_schema_and_markdown_puts_breaking_changes_first(tmp_path: Path, base_doc: Doc) -> None:
    diff = _diff_of(
        tmp_path,
        base_doc,
        _both(
            _set(f"{QUEUE}/type", "sum"),
            _set(f"{DURATION}/attributes/values", {"http.method": ["POST"]}),
            _set(f"{DURATION}/max_series", 500),
            _set("compat", []),
            _set("description", "a | pipe"),
        ),
    )
    document = json.loads(render_json(diff))
    jsonschema.Draft202012Validator(load_schema()).validate(document)
    assert document == to_json(diff)
    assert document["summary"] == {"breaking": 3, "compatible": 1, "informational": 1}

    markdown = render_markdown(diff)
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    headings = [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]
    assert headings == [
        "Schema diff: shop 1.2.0 → shop 1.2.0",
        "Breaking changes",
        "metrics",
        "compat",
        "Other changes",
        "contract",
        "metrics",
    ]
    rows = [token for token in tokens if token.type == "tr_open"]
    assert len(rows) == 1 + 1 + (1 + 2) + (1 + 1) + (1 + 1) + (1 + 1)  # counts + each table's header and rows
    assert "a \\| pipe" in markdown  # a pipe in a value cannot split the cell


# --- the Jenkins "Contract diff" stage -----------------------------------------------------------------------


def _stage_repo(tmp_path: Path) -> Path:
    """A repository laid out like this one: the stage's script, the contracts, and this checkout's .venv."""
    root = tmp_path / "ci"
    shutil.copytree(CONTRACTS, root / "contracts")
    (root / "pipelines" / "ci").mkdir(parents=True)
    shutil.copy(REPO / "pipelines" / "ci" / "diff-contracts.sh", root / "pipelines" / "ci")
    (root / ".venv").symlink_to(REPO / ".venv")
    (root / ".gitignore").write_text(".venv\nout/\n")
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "contracts")
    git(root, "checkout", "-q", "-b", "change")
    return root


def _stage(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "pipelines/ci/diff-contracts.sh"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "TARGET": "main", "HOME": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_stage_archives_a_markdown_diff_per_contract_and_fails_on_a_failed_gate(tmp_path: Path) -> None:
    root = _stage_repo(tmp_path)
    _edit(root / "contracts/base/org.yaml", "allowed: [prod, staging, canary, dev]", "allowed: [prod, staging]")
    git(root, "commit", "-q", "-am", "narrow the environments")
    result = _stage(root)
    assert result.returncode == 1, result.stdout + result.stderr
    archived = sorted(path.name for path in (root / "out/ci/contract-diff").iterdir())
    # the changed base itself, and every top-level contract since an included file changed
    assert archived == ["base-org.md", "ecommerce.md", "hpa-app.md", "otel-contract-self.md"]
    hpa = (root / "out/ci/contract-diff/hpa-app.md").read_text()
    assert "Version gate: ❌ failed" in hpa and "attribute-values-removed" in hpa
    assert "No change to the contract." in (root / "out/ci/contract-diff/otel-contract-self.md").read_text()

    _edit(root / "contracts/hpa-app.yaml", "version: 2.0.0", "version: 3.0.0")
    _edit(root / "contracts/base/org.yaml", "version: 1.0.0", "version: 2.0.0")
    # ecommerce overrides deployment.environment, and org-base is not included by the self contract
    git(root, "commit", "-q", "-am", "major bumps")
    passed = _stage(root)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "4 contract(s) compared with main" in passed.stdout


def test_the_stage_lists_new_contracts_and_compares_nothing_without_changes(tmp_path: Path) -> None:
    root = _stage_repo(tmp_path)
    assert _stage(root).stdout.strip() == "diff-contracts: 0 contract(s) compared with main; exit 0"
    shutil.copy(root / "contracts/hpa-app.yaml", root / "contracts/queue.yaml")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "a new contract")
    result = _stage(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "contracts/queue.yaml is new on this branch" in result.stdout


def test_the_json_schema_is_printed_by_the_schema_command() -> None:
    printed = run_cli("schema", "--diff")
    assert printed.returncode == 0
    assert json.loads(printed.stdout) == load_schema()
