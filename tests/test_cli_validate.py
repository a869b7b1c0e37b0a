"""`validate` and `normalize` run the engine the sidecar runs: same rules, same counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_contract import load_contract
from otel_contract.engine import CardinalityState, process_metrics
from otel_contract.inputs.otlp import read_captures, write_capture

from .conftest import CONTRACTS, TODAY, run_cli
from .otlp_builders import (
    all_metrics,
    counter,
    done_when_request,
    gauge,
    histogram,
    hpoint,
    metrics_request,
    point_attrs,
)

ECOMMERCE = "contracts/ecommerce.yaml"
# Judged over the whole run rather than per request: the engine alone never reports them.
WHOLE_RUN_RULES = {"invariant"}


@pytest.mark.parametrize("name", ["capture.json", "capture.jsonl", "capture.metrics.pb"])
def test_validate_reports_what_the_engine_reports(tmp_path: Path, name: str) -> None:
    request = done_when_request()
    path = tmp_path / name
    write_capture(path, [request])
    engine = process_metrics(
        request.SerializeToString(), load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY), state=CardinalityState()
    )
    result = run_cli("validate", "-c", ECOMMERCE, str(path), "--format", "json", "--today", "2026-11-22")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    per_request = [f for f in report["findings"] if f["rule"] not in WHOLE_RUN_RULES]
    assert {(f["rule"], f["metric"], f["attribute"], f["count"]) for f in per_request} == {
        (f.rule.slug, f.metric, f.attribute, f.count) for f in engine.findings
    }
    assert report["summary"]["data_points"] == engine.items == 3
    assert report["summary"]["rejected_data_points"] == engine.rejected == 1
    assert report["findings"][0]["source"] in (str(path), f"{path}:1")  # JSON lines name the line


def test_counts_add_up_over_several_inputs(tmp_path: Path) -> None:
    write_capture(tmp_path / "a.jsonl", [done_when_request(), done_when_request()])
    write_capture(tmp_path / "b.json", [done_when_request()])
    result = run_cli(
        "validate", "-c", ECOMMERCE, str(tmp_path / "a.jsonl"), str(tmp_path / "b.json"), "--format", "json"
    )
    report = json.loads(result.stdout)
    counts = {f["rule"]: f["count"] for f in report["findings"] if f["rule"] not in WHOLE_RUN_RULES}
    assert counts == {"unknown-metric": 3, "deprecated-metric": 6, "missing-attribute": 3}
    assert report["summary"]["data_points"] == 9 and report["summary"]["rejected_data_points"] == 3


def test_compliant_capture_exits_0(tmp_path: Path) -> None:
    good = {"http.method": "GET", "http.status_code": 200}
    duration = histogram("http_server_duration_seconds", [hpoint(good, [0.1], [1, 0], 0.05)])
    write_capture(tmp_path / "ok.json", [metrics_request(counter("http_requests_total", [(good, 1.0)]), duration)])
    result = run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "ok.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "" and "no findings" in result.stderr


def test_text_report_and_fail_on(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.json", [metrics_request(gauge("checkout_cart_items", [({}, 1.0)]))])
    flagged = run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "c.json"))
    assert flagged.returncode == 0  # unknown-metric is a warning
    assert "warning[unknown-metric]" in flagged.stdout
    assert run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "c.json"), "--fail-on", "warning").returncode == 1


def test_audit_mode_rejects_nothing(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.json", [done_when_request()])
    result = run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "c.json"), "--format", "json", "--audit")
    assert json.loads(result.stdout)["summary"]["rejected_data_points"] == 0


def test_stdin(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.jsonl", [done_when_request()])
    result = run_cli("validate", "-c", ECOMMERCE, "-", "--format", "json", stdin=(tmp_path / "c.jsonl").read_text())
    assert json.loads(result.stdout)["summary"]["data_points"] == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ('{"resourceMetrics": [}', "invalid JSON"),
        ('{"something": []}', "resourceMetrics"),
    ],
)
def test_unreadable_inputs_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    result = run_cli("validate", "-c", ECOMMERCE, str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr and message in result.stderr


def test_invalid_contract_exits_2_with_every_reason(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.json", [done_when_request()])
    result = run_cli("validate", "-c", "tests/contracts/broken/invalid-budget.yaml", str(tmp_path / "c.json"))
    assert result.returncode == 2
    assert result.stderr.count("error[invalid-budget]") == 2


def test_normalize_writes_what_the_sidecar_would_forward(tmp_path: Path) -> None:
    write_capture(tmp_path / "in.json", [done_when_request()])
    out = tmp_path / "out.pb"
    result = run_cli("normalize", "-c", ECOMMERCE, str(tmp_path / "in.json"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "error[missing-attribute]" in result.stderr
    [capture] = list(read_captures(out))
    duration, _unknown = all_metrics(capture.request)
    assert duration.name == "http_server_duration_seconds" and duration.unit == "s"
    [point] = duration.histogram.data_points
    assert point_attrs(point) == {"http.method": "GET", "http.status_code": 503}
    assert list(point.explicit_bounds) == [0.1, 0.5]
    again = run_cli("validate", "-c", ECOMMERCE, str(out), "--format", "json")
    assert {f["rule"] for f in json.loads(again.stdout)["findings"]} - WHOLE_RUN_RULES == {"unknown-metric"}


def test_normalize_to_stdout(tmp_path: Path) -> None:
    write_capture(tmp_path / "in.json", [done_when_request()])
    result = run_cli("normalize", "-c", ECOMMERCE, str(tmp_path / "in.json"), "-o", "-")
    assert result.returncode == 0
    assert json.loads(result.stdout.splitlines()[0])["resourceMetrics"][0]["scopeMetrics"]
