"""Loader: example contracts, compiled lookup tables, includes and their precedence, error paths."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from otel_contract import ContractError, ContractUnreadable, lint_contract, load_contract, rules
from otel_contract.contract.model import AttributeType, MetricType, ResourceActionKind
from otel_contract.rules import Action

from .conftest import CONTRACTS, EXAMPLES, TODAY


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_contracts_have_no_findings(path: Path) -> None:
    result = lint_contract(path, today=TODAY)
    assert result.findings == ()
    assert result.contract is not None


def test_examples_are_the_three_the_project_promises() -> None:
    names = {lint_contract(path, today=TODAY).contract.name for path in EXAMPLES}  # type: ignore[union-attr]
    assert names == {"ecommerce", "hpa-app", "otel-contract-self"}


def test_ecommerce_compiles_to_lookup_tables() -> None:
    compiled = load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY)
    assert compiled.id == "ecommerce@1.4.0"
    target = compiled.aliases["http.server.duration"]
    assert target.metric.name == "http_server_duration_seconds"
    assert target.factor == Fraction(1, 1000)  # ms -> s, exactly
    assert compiled.aliases["http.server.request.count"].factor == 1
    assert compiled.attribute_renames == {"http_status": "http.status_code", "status_code": "http.status_code"}
    assert compiled.attribute_types["http.status_code"] is AttributeType.INT
    duration = compiled.metrics["http_server_duration_seconds"]
    assert duration.metric.type is MetricType.HISTOGRAM
    assert duration.required == {"http.method", "http.status_code"}
    assert duration.forbidden == {"user.id"}
    assert "GET" in duration.allowed["http.method"] and "TRACE" not in duration.allowed["http.method"]
    assert duration.renames["status_code"] == "http.status_code"  # global renames reach every metric
    assert compiled.actions[rules.MISSING_ATTRIBUTE] is Action.REJECT  # policy override
    assert compiled.actions[rules.FORBIDDEN_ATTRIBUTE] is rules.FORBIDDEN_ATTRIBUTE.action  # catalog default
    assert compiled.actions[rules.UNKNOWN_METRIC] is Action.FLAG
    pattern = compiled.metric_pattern
    assert pattern is not None and pattern.matches("http_requests_total") and not pattern.matches("Http")
    assert compiled.resource_constraints["deployment.environment"].allowed == {"prod", "staging", "canary"}


def test_lookup_tables_are_immutable() -> None:
    compiled = load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY)
    with pytest.raises(TypeError):
        compiled.metrics["x"] = compiled.metrics["http_requests_total"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        compiled.contract.version = "9.9.9"  # type: ignore[misc]


def test_ecommerce_merges_the_org_base_with_documented_precedence() -> None:
    contract = lint_contract(CONTRACTS / "ecommerce.yaml", today=TODAY).contract
    assert contract is not None
    assert [Path(p).name for p in contract.includes] == ["org.yaml"]
    # scalars: the including file wins
    assert contract.name == "ecommerce" and contract.version == "1.4.0"
    # resource actions: the base's first, then the including file's own
    assert [a.key for a in contract.resource.actions] == [
        "deployment.environment",
        "k8s.pod.name",
        "k8s.namespace.name",
        "service.namespace",
        "telemetry.sdk.language",
    ]
    assert contract.resource.actions[1].action is ResourceActionKind.RENAME
    # required resource attributes: united, base first, no duplicates
    assert contract.resource.required == ("service.name", "k8s.pod.name", "k8s.namespace.name", "service.namespace")
    # mappings merge key by key; the including file's value wins
    assert contract.resource.attributes["deployment.environment"].allowed == ("prod", "staging", "canary")
    assert contract.naming.metric_pattern == "^[a-z][a-z0-9_]*$"  # from the base
    assert [r.match for r in contract.naming.rules] == ["^http_"]  # from the including file
    assert contract.owners == ("sre-platform", "team-checkout")


def test_include_replaces_metrics_by_name_and_keeps_the_rest(write) -> None:  # type: ignore[no-untyped-def]
    write(
        "base.yaml",
        """contract: base
version: 1.0.0
metrics:
  - {name: queue_depth, type: gauge, unit: '{message}'}
  - {name: jobs_total, type: sum}
policy: {unknown-metric: reject, cardinality: flag}
""",
    )
    top = write(
        "top.yaml",
        """contract: top
version: 2.0.0
include: [base.yaml]
metrics:
  - {name: queue_depth, type: sum, unit: '{item}'}
policy: {unknown-metric: ignore}
""",
    )
    contract = lint_contract(top, today=TODAY).contract
    assert contract is not None
    by_name = {m.name: m for m in contract.metrics}
    assert set(by_name) == {"queue_depth", "jobs_total"}
    assert by_name["queue_depth"].type is MetricType.SUM and by_name["queue_depth"].unit == "{item}"
    assert contract.policy == {rules.UNKNOWN_METRIC: Action.IGNORE, rules.CARDINALITY: Action.FLAG}


def test_findings_in_an_included_file_name_that_file(write) -> None:  # type: ignore[no-untyped-def]
    write("shared/base.yaml", "contract: base\nversion: 1.0.0\nmetrics:\n  - {name: a, type: gauge, unit: sec}\n")
    top = write("top.yaml", "contract: top\nversion: 1.0.0\ninclude: [shared/base.yaml]\n")
    [finding] = lint_contract(top, today=TODAY).findings
    assert finding.rule is rules.INVALID_UNIT
    assert finding.location is not None
    assert finding.location.file.endswith("shared/base.yaml") and finding.location.line == 4


def test_a_base_included_twice_is_merged_once(write) -> None:  # type: ignore[no-untyped-def]
    write("base.yaml", "contract: b\nversion: 1.0.0\nresource:\n  actions: [{key: a, action: delete}]\n")
    write("mid.yaml", "contract: m\nversion: 1.0.0\ninclude: [base.yaml]\n")
    top = write("top.yaml", "contract: t\nversion: 1.0.0\ninclude: [base.yaml, mid.yaml]\n")
    contract = lint_contract(top, today=TODAY).contract
    assert contract is not None and len(contract.resource.actions) == 1


def test_every_schema_error_is_reported_not_only_the_first(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "c.yaml",
        """contract: c
version: 1.0.0
metrics:
  - {name: a, type: gauge, colour: red}
  - {name: b, type: guage}
  - {name: c, type: sum, max_series: many}
""",
    )
    findings = lint_contract(path, today=TODAY).findings
    assert [(f.rule, f.location.line, f.path) for f in findings if f.location] == [
        (rules.CONTRACT_SCHEMA, 4, "metrics[0].colour"),
        (rules.CONTRACT_SCHEMA, 5, "metrics[1].type"),
        (rules.CONTRACT_SCHEMA, 6, "metrics[2].max_series"),
    ]
    assert "did you mean 'gauge'" in findings[1].message


def test_key_path_names_nested_attribute_keys(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "c.yaml",
        """contract: c
version: 1.0.0
metrics:
  - name: a
    type: gauge
    attributes:
      values:
        http.method: GET
""",
    )
    [finding] = lint_contract(path, today=TODAY).findings
    assert finding.path == "metrics[0].attributes.values.http.method"
    assert (finding.location.line, finding.location.column) == (8, 22)  # type: ignore[union-attr]


def test_yaml_anchors_and_merge_keys_work(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "c.yaml",
        """contract: c
version: 1.0.0
metrics:
  - &http {name: a_seconds, type: histogram, unit: s}
  - <<: *http
    name: b_seconds
""",
    )
    contract = lint_contract(path, today=TODAY).contract
    assert contract is not None and [m.unit for m in contract.metrics] == ["s", "s"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"contract: c\nversion: 1.0.0\ndescription: caf\xe9\n", "not UTF-8"),
        (b"contract: [c\n", "expected ',' or ']'"),
        (b"contract: c\n\tversion: 1.0.0\n", "tab"),
    ],
)
def test_unreadable_contracts_raise_with_position(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ContractUnreadable) as caught:
        lint_contract(path)
    [finding] = caught.value.findings
    assert reason in finding.message
    assert finding.location is not None and finding.location.line >= 1


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ContractUnreadable, match="No such file"):
        lint_contract(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "message"), [("", "empty"), ("- a\n- b\n", "the contract is a sequence, not a mapping")]
)
def test_a_document_that_is_not_a_mapping_is_a_schema_error(write, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    [finding] = lint_contract(write("c.yaml", text)).findings
    assert finding.rule is rules.CONTRACT_SCHEMA and message in finding.message


def test_load_contract_raises_with_every_error(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "c.yaml",
        "contract: c\nversion: one\nmetrics:\n  - {name: a, type: gauge, unit: sec, max_series: 0}\n",
    )
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert {f.rule for f in caught.value.findings} == {rules.CONTRACT_VERSION, rules.INVALID_UNIT, rules.INVALID_BUDGET}
    assert "c.yaml:2:10" in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("^(a)\\1$", "invalid escape sequence"),  # backreference
        ("^(?=a)", "invalid perl operator"),  # lookahead
        ("^a++$", "bad repetition operator"),  # possessive
        ("^a\\Z", "invalid escape sequence"),  # Python's end of text; RE2 spells it \z
        ("^a{1001}$", "invalid repetition size"),
    ],
)
def test_load_contract_refuses_a_pattern_re2_cannot_compile(write, pattern: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    # What the sidecar (at start and on reload) and validate load: the engine never sees such a pattern.
    path = write(
        "c.yaml", f"contract: c\nversion: 1.0.0\nresource: {{attributes: {{team: {{pattern: '{pattern}'}}}}}}\n"
    )
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    [finding] = caught.value.findings
    assert finding.rule is rules.INVALID_PATTERN and reason in finding.message
    assert "c.yaml:3:41" in str(caught.value)


def test_runtime_load_keeps_an_expired_shim_running() -> None:
    later = date(2099, 1, 1)
    assert lint_contract(CONTRACTS / "ecommerce.yaml", today=later).has_errors()
    compiled = load_contract(CONTRACTS / "ecommerce.yaml", today=later)
    assert [shim.record for shim in compiled.contract.compat] == ["node_disk_io_time_seconds_total"]


@pytest.mark.parametrize(("contract", "loaded"), [("hpa-app.yaml", False), ("ecommerce.yaml", True)])
def test_the_promql_parser_is_loaded_only_for_a_contract_with_shims(contract: str, loaded: bool) -> None:
    """A sidecar whose contract has no compat shims does not carry the PromQL parser (about 2 MiB)."""
    script = (
        "import sys\nfrom otel_contract.loading import load_contract\nfrom otel_contract.pipeline import Pipeline\n"
        "Pipeline(load_contract(sys.argv[1]))\nprint('promql_parser' in sys.modules)"
    )
    argv = [sys.executable, "-c", script, str(CONTRACTS / contract)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == [str(loaded)]
