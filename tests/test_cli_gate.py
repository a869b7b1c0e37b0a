"""`validate` as a CI gate, end to end through the command line: formats, URLs, baselines, budgets, reports."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from otel_contract.reports.json import load_schema

from .conftest import REPO, run_cli

CAPTURES = Path("tests/data/captures")
SHOP = str(CAPTURES / "shop-contract.yaml")
FORMATS = ["shop.jsonl", "shop.pb", "shop.prom", "shop.om"]


def _findings(stdout: str) -> list[tuple[str, str | None, str | None, int]]:
    report = json.loads(stdout)
    return sorted((f["rule"], f["metric"], f["attribute"], f["count"]) for f in report["findings"])


def _validate_json(*args: str) -> tuple[int, dict[str, object]]:
    result = run_cli("validate", "-c", SHOP, *args, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


# --- the same data, whatever the format ------------------------------------------------------------


@pytest.mark.parametrize("lints", ["auto", "on"])
def test_same_slugs_and_counts_whether_otlp_protobuf_otlp_json_or_exposition(lints: str) -> None:
    results = {}
    for name in FORMATS:
        code, report = _validate_json(str(CAPTURES / name), "--prometheus-lints", lints)
        results[name] = (code, _findings(json.dumps(report)), report["summary"])
    reference = results["shop.jsonl"]
    assert all(result == reference for result in results.values()), results
    code, findings, summary = reference
    assert code == 1
    assert {rule for rule, *_ in findings} == {
        "attribute-value",
        "cardinality",
        "invariant",
        "missing-attribute",
        "unknown-metric",
    }
    assert ("missing-attribute", "shop_request_duration_seconds", "method", 2) in findings
    assert summary["data_points"] == 5 and summary["rejected_data_points"] == 1  # type: ignore[index]


def test_a_directory_is_read_recursively_and_counts_like_its_files(tmp_path: Path) -> None:
    nested = tmp_path / "captures" / "nested"
    nested.mkdir(parents=True)
    (tmp_path / "captures" / "shop.prom").write_bytes((CAPTURES / "shop.prom").read_bytes())
    (nested / "shop.jsonl").write_bytes((CAPTURES / "shop.jsonl").read_bytes())
    (nested / "notes.md").write_text("not a capture")
    result = run_cli("validate", "-c", SHOP, str(tmp_path / "captures"), "--format", "json")
    assert "1 files in directories skipped for their extension" in result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["data_points"] == 10
    counts = {rule: count for rule, _, _, count in _findings(json.dumps(report))}
    assert counts["missing-attribute"] == 4 and counts["unknown-metric"] == 2


def test_exposition_on_stdin() -> None:
    text = (REPO / CAPTURES / "shop.prom").read_text()
    result = run_cli("validate", "-c", SHOP, "-", "--format", "json", stdin=text)
    assert result.returncode == 1, result.stderr
    assert ("cardinality", "shop_request_duration_seconds", None, 1) in _findings(result.stdout)


def test_prometheus_lints_apply_to_expositions_by_default_and_to_otlp_on_request(tmp_path: Path) -> None:
    bad = "# TYPE requestLatencyMs gauge\nrequestLatencyMs 3\n"
    (tmp_path / "bad.prom").write_text(bad)
    _, report = _validate_json(str(tmp_path / "bad.prom"))
    rules = {rule for rule, metric, *_ in _findings(json.dumps(report)) if metric == "requestLatencyMs"}
    assert {"prom-help", "prom-camel-case"} <= rules
    _, quiet = _validate_json(str(tmp_path / "bad.prom"), "--prometheus-lints", "off")
    assert not any(rule.startswith("prom-") for rule, *_ in _findings(json.dumps(quiet)))


# --- URLs ------------------------------------------------------------------------------------------


class _Exposition(http.server.BaseHTTPRequestHandler):
    body = b""
    content_type = "text/plain; version=0.0.4; charset=utf-8"
    token: str | None = None

    def do_GET(self) -> None:
        if self.token is not None and self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            self.end_headers()
            return
        body = gzip.compress(self.body) if "gzip" in self.headers.get("Accept-Encoding", "") else self.body
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        if body is not self.body:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def metrics_endpoint() -> Iterator[type[_Exposition]]:
    handler = type("Handler", (_Exposition,), {"body": (REPO / CAPTURES / "shop.prom").read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/metrics"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_url_with_the_right_content_type_reports_what_the_file_reports(metrics_endpoint: type[_Exposition]) -> None:
    url = metrics_endpoint.url  # type: ignore[attr-defined]
    _, from_url = _validate_json(url)
    _, from_file = _validate_json(str(CAPTURES / "shop.prom"))
    url_findings = _findings(json.dumps(from_url))
    # A scrape adds what only a scrape can tell: these series carry no pod/namespace labels.
    assert [f for f in url_findings if f[0] != "pod-mapping"] == _findings(json.dumps(from_file))
    [(_, _, _, lacking)] = [f for f in url_findings if f[0] == "pod-mapping"]
    assert lacking == 5
    assert not any(rule == "scrape-content-type" for rule, *_ in url_findings)


def test_url_with_plain_text_content_type_is_reported(metrics_endpoint: type[_Exposition]) -> None:
    metrics_endpoint.content_type = "text/plain"
    result = run_cli("validate", "-c", SHOP, metrics_endpoint.url)  # type: ignore[attr-defined]
    assert "warning[scrape-content-type]" in result.stdout
    assert "text/plain" in result.stdout and "warning[pod-mapping]" in result.stdout


def test_url_header_for_auth_and_a_clear_error_without_it(metrics_endpoint: type[_Exposition]) -> None:
    metrics_endpoint.token = "s3cret"
    url = metrics_endpoint.url  # type: ignore[attr-defined]
    refused = run_cli("validate", "-c", SHOP, url, "--retries", "0")
    assert refused.returncode == 2 and url in refused.stderr and "401" in refused.stderr
    allowed = run_cli("validate", "-c", SHOP, url, "--header", "Authorization: Bearer s3cret", "--format", "json")
    assert allowed.returncode == 1 and json.loads(allowed.stdout)["summary"]["data_points"] == 5


def test_bad_header_argument_is_a_usage_error() -> None:
    result = run_cli("validate", "-c", SHOP, "x.prom", "--header", "no colon here")
    assert result.returncode == 2 and "expected 'Name: value'" in result.stderr


# --- gating: baseline and budget -------------------------------------------------------------------


def test_baseline_adoption_fails_only_on_new_findings(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    written = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--write-baseline", str(baseline))
    assert written.returncode == 0, written.stderr
    assert f"wrote 5 findings to baseline {baseline}" in written.stderr

    shop_prom = str(CAPTURES / "shop.prom")
    adopted = run_cli("validate", "-c", SHOP, shop_prom, "--baseline", str(baseline), "--format", "json")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    report = json.loads(adopted.stdout)
    assert report["findings"] == [] and report["summary"]["baselined"] == 5
    assert f"5 accepted by baseline {baseline}" in adopted.stderr

    # A series that loses its status label: missing-attribute on shop_orders_total is new.
    worse = (REPO / CAPTURES / "shop.prom").read_text().replace(',status="500"', "")
    (tmp_path / "worse.prom").write_text(worse)
    failed = run_cli(
        "validate", "-c", SHOP, str(tmp_path / "worse.prom"), "--baseline", str(baseline), "--format", "json"
    )
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert [(f["rule"], f["metric"], f["attribute"]) for f in report["findings"]] == [
        ("missing-attribute", "shop_orders_total", "status")
    ]
    assert report["summary"]["baselined"] == 5


def test_baseline_that_is_not_one_exits_2(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("[]")
    result = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--baseline", str(tmp_path / "b.json"))
    assert result.returncode == 2 and "not a baseline file" in result.stderr


@pytest.mark.parametrize(("budget", "code"), [("3", 1), ("4", 0), ("0", 1)])
def test_max_findings_is_a_budget_of_findings_at_or_above_fail_on(budget: str, code: int) -> None:
    # Four error findings (rule x metric x attribute); one of them counts two data points.
    result = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--max-findings", budget)
    assert result.returncode == code, result.stderr
    assert f"4 findings at or above error, budget {budget}" in result.stderr
    assert ("(over budget)" in result.stderr) == (code == 1)


# --- reports ---------------------------------------------------------------------------------------


def test_json_report_validates_against_the_shipped_schema() -> None:
    _, report = _validate_json(str(CAPTURES / "shop.om"))
    jsonschema.Draft202012Validator(load_schema()).validate(report)
    printed = run_cli("schema", "--report")
    assert printed.returncode == 0 and json.loads(printed.stdout) == load_schema()


def test_junit_report_lists_each_metric_and_rule_for_jenkins(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    result = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--format", "junit", "--output", str(out))
    assert result.returncode == 1 and result.stdout == ""
    suites = ET.parse(out).getroot()
    [suite] = suites.findall("testsuite")
    cases = {(case.get("classname"), case.get("name")): case for case in suite.findall("testcase")}
    failing = {key for key, case in cases.items() if case.find("failure") is not None}
    assert ("shop-captures.shop_request_duration_seconds", "missing-attribute method") in failing
    assert ("shop-captures.shop_request_duration_seconds", "cardinality") in failing
    assert int(suite.get("failures", "0")) == len(failing) == 4
    assert int(suite.get("tests", "0")) == len(cases)
    # A warning below --fail-on passes, with the finding in its output.
    unknown = cases[("shop-captures.shop_queue_depth", "unknown-metric")]
    assert unknown.find("failure") is None and "shop_queue_depth" in (unknown.findtext("system-out") or "")


def test_github_and_markdown_reports() -> None:
    github = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--format", "github")
    lines = github.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith(("::error ", "::warning ")) for line in lines)
    cardinality = next(line for line in lines if "title=otel-contract cardinality::" in line)
    assert cardinality.startswith("::error file=tests/data/captures/shop.jsonl,line=1,")
    markdown = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--format", "markdown")
    assert markdown.stdout.startswith("## otel-contract validate: shop-captures@1.0.0 ❌ failed")
    rows = [line for line in markdown.stdout.splitlines() if line.startswith("| error | `")]
    assert len(rows) == 4 and any("| `cardinality` | `shop_request_duration_seconds` |" in row for row in rows)


def test_progress_is_drawn_on_request_and_never_on_a_pipe_by_default() -> None:
    result = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"), "--progress")
    drawn = [line for line in result.stderr.splitlines() if line.endswith("requests")]
    assert drawn and str(CAPTURES / "shop.jsonl") in drawn[0]
    quiet = run_cli("validate", "-c", SHOP, str(CAPTURES / "shop.jsonl"))
    assert "\r" not in quiet.stderr and quiet.stderr.startswith("5 errors, 1 warning")


# --- the pipeline ----------------------------------------------------------------------------------


def test_every_jenkinsfile_shell_step_calls_a_script_that_ci_run_runs() -> None:
    jenkinsfile = (REPO / "Jenkinsfile").read_text()
    ci_run = (REPO / ".ci" / "run").read_text()
    steps = [line.strip() for line in jenkinsfile.splitlines() if line.strip().startswith(("sh ", "sh(", "expression"))]
    assert steps, "no shell steps found"
    scripts = set()
    for step in steps:
        called = [word.strip("'\"(){}") for word in step.split() if "pipelines/ci/" in word]
        assert called, f"a shell step that calls no pipelines/ci script: {step}"
        scripts.update(called)
    for script in scripts:
        path = REPO / script
        assert path.is_file() and path.stat().st_mode & 0o111, f"{script} is missing or not executable"
        name = path.stem
        assert name in ci_run, f".ci/run does not run {script}"


def test_pre_commit_hooks_run_real_commands() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"otel-contract-check", "otel-contract-validate"}
    for hook in hooks.values():
        assert {"id", "name", "entry", "language"} <= set(hook) and hook["language"] == "python"
    # What pre-commit runs: the entry, the hook's args, then (for check) the staged file names.
    check = hooks["otel-contract-check"]["entry"].split()[1:]
    assert run_cli(*check, "contracts/ecommerce.yaml").returncode == 0
    assert run_cli(*check, "tests/contracts/broken/metric-name.yaml").returncode == 1
    validate = hooks["otel-contract-validate"]["entry"].split()[1:]
    assert hooks["otel-contract-validate"]["pass_filenames"] is False
    assert run_cli(*validate, "-c", SHOP, str(CAPTURES)).returncode == 1
