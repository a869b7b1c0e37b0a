"""The whole-run parts of the gate: invariants over all inputs together, baselines, input findings."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract import baseline, gate, load_contract, rules
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import EngineOptions
from otel_contract.findings import Finding
from otel_contract.inputs.otlp import Capture
from otel_contract.otlp import Signal
from otel_contract.rules import Level

from .conftest import CONTRACTS, TODAY
from .otlp_builders import all_metrics, counter, histogram, hpoint, metrics_request

GOOD = {"http.method": "GET", "http.status_code": 200}
POST = {"http.method": "POST", "http.status_code": 200}


@pytest.fixture(scope="module")
def ecommerce() -> CompiledContract:
    return load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY)


def _duration(*points: tuple[dict[str, object], int]) -> dict[str, object]:
    return histogram(
        "http_server_duration_seconds",
        [hpoint(attributes, [0.1, 1.0], [count, 0, 0], 0.05 * count) for attributes, count in points],
    )


def _at(request: ExportMetricsServiceRequest, seconds: int) -> ExportMetricsServiceRequest:
    """``request`` with every point stamped ``seconds`` after the builders' default time."""
    for metric in all_metrics(request):
        for point in getattr(metric, metric.WhichOneof("data")).data_points:
            point.time_unix_nano += seconds * 10**9
    return request


def _requests(*points: tuple[dict[str, object], float]) -> dict[str, object]:
    return counter("http_requests_total", list(points))


def _run(contract: CompiledContract, *requests: object) -> gate.Totals:
    totals = gate.Totals()
    captures = [Capture(f"capture:{i}", Signal.METRICS, request, None) for i, request in enumerate(requests, 1)]  # type: ignore[arg-type]
    for _ in gate.run(captures, contract, EngineOptions(), totals):
        pass
    return totals


def _invariant_findings(totals: gate.Totals) -> list[Finding]:
    return [f for f in totals.findings if f.rule is rules.INVARIANT]


def test_ratio_within_max_deviation_holds(ecommerce: CompiledContract) -> None:
    request = metrics_request(_duration((GOOD, 100), (POST, 4)), _requests((GOOD, 101), (POST, 4)))
    assert _invariant_findings(_run(ecommerce, request)) == []


def test_ratio_outside_max_deviation_shows_both_values_and_the_deviation(ecommerce: CompiledContract) -> None:
    request = metrics_request(_duration((GOOD, 100), (POST, 10)), _requests((GOOD, 100)))
    [finding] = _invariant_findings(_run(ecommerce, request))
    assert finding.metric == "http_server_duration_seconds_count"
    assert finding.path == "invariants[0]" and finding.source.endswith("contracts/ecommerce.yaml")
    assert "http_server_duration_seconds_count = 110" in finding.message
    assert "http_requests_total = 100" in finding.message
    assert "deviation 10.00% exceeds max_deviation 5.00%" in finding.message


def test_ratio_is_judged_over_all_inputs_together(ecommerce: CompiledContract) -> None:
    # Each capture alone is off by far; together the two metrics agree.
    first = metrics_request(_duration((GOOD, 50)))
    second = metrics_request(_requests((GOOD, 50)))
    assert _invariant_findings(_run(ecommerce, first, second)) == []


def test_a_cumulative_series_counts_its_latest_point_not_every_scrape(ecommerce: CompiledContract) -> None:
    early = metrics_request(_duration((GOOD, 40)), _requests((GOOD, 40)))
    late = _at(metrics_request(_duration((GOOD, 100)), _requests((GOOD, 100))), 60)
    # Arrival order does not matter: the point with the later timestamp wins.
    assert _invariant_findings(_run(ecommerce, late, early)) == []
    latest = _at(metrics_request(_requests((GOOD, 150))), 120)
    [finding] = _invariant_findings(_run(ecommerce, early, late, latest))
    assert "http_server_duration_seconds_count = 100, http_requests_total = 150" in finding.message


def test_an_alias_counts_under_its_canonical_name(ecommerce: CompiledContract) -> None:
    legacy = counter("http.server.request.count", [(GOOD, 100)])
    request = metrics_request(_duration((GOOD, 100)), legacy)
    assert _invariant_findings(_run(ecommerce, request)) == []


def test_one_side_missing_is_a_finding_and_neither_is_none(ecommerce: CompiledContract) -> None:
    [finding] = _invariant_findings(_run(ecommerce, metrics_request(_requests((GOOD, 5)))))
    assert finding.level is Level.WARNING
    assert "cannot be judged: http_server_duration_seconds_count never appeared beside http_requests_total" in (
        finding.message
    )
    unrelated = metrics_request(counter("orders_total", [({"payment.method": "card"}, 3)], unit="{order}"))
    assert _invariant_findings(_run(ecommerce, unrelated)) == []


def test_present_invariant_and_policy_ignore(write) -> None:  # type: ignore[no-untyped-def]
    source = (CONTRACTS / "ecommerce.yaml").read_text(encoding="utf-8")
    with_present = source.replace(
        "invariants:\n", "invariants:\n  - name: disk-io-exported\n    present: system_disk_io_time_seconds_total\n", 1
    )
    write("base/org.yaml", (CONTRACTS / "base" / "org.yaml").read_text(encoding="utf-8"))
    contract = load_contract(write("present.yaml", with_present), today=TODAY)
    request = metrics_request(_duration((GOOD, 1)), _requests((GOOD, 1)))
    [finding] = _invariant_findings(_run(contract, request))
    assert finding.message == (
        "invariant disk-io-exported: system_disk_io_time_seconds_total never appeared in the telemetry"
    )
    disk = counter("system_disk_io_time_seconds_total", [({"device": "sda"}, 12.5)], unit="s")
    assert _invariant_findings(_run(contract, metrics_request(_duration((GOOD, 1)), _requests((GOOD, 1)), disk))) == []

    ignored = with_present.replace("policy:\n", "policy:\n  invariant: ignore\n", 1)
    quiet = load_contract(write("ignored.yaml", ignored), today=TODAY)
    assert _invariant_findings(_run(quiet, metrics_request(_requests((GOOD, 5))))) == []


def test_input_findings_join_the_report(ecommerce: CompiledContract) -> None:
    note = Finding.of(rules.SCRAPE_CONTENT_TYPE, "text/plain without version", metric=None)
    capture = Capture("http://x/metrics", Signal.METRICS, metrics_request(_requests((GOOD, 1))), None, (note,))
    totals = gate.Totals()
    for _ in gate.run([capture, capture], ecommerce, EngineOptions(), totals):
        pass
    [merged] = [f for f in totals.findings if f.rule is rules.SCRAPE_CONTENT_TYPE]
    assert merged.count == 2
    assert totals.report(ecommerce).metrics == ("http_requests_total",)


def test_baseline_round_trip_accepts_known_findings_only(ecommerce: CompiledContract, tmp_path: Path) -> None:
    legacy = metrics_request(_requests(({"http.method": "GET", "http.status_code": 200, "user.id": "u1"}, 1)))
    before = _run(ecommerce, legacy).findings
    assert {f.rule for f in before} >= {rules.FORBIDDEN_ATTRIBUTE}
    path = tmp_path / "baseline.json"
    baseline.write(str(path), before, contract=ecommerce.id)
    accepted = baseline.load(str(path))

    # More of the same (a higher count) is still accepted: counts follow traffic.
    again = _run(ecommerce, legacy, legacy).findings
    new, known = accepted.split(again)
    assert new == () and len(known) == len(before)

    worse = metrics_request(_duration((GOOD, 1)), _requests(({"http.method": "BREW", "http.status_code": 200}, 1)))
    new, _ = accepted.split(_run(ecommerce, legacy, worse).findings)
    assert {(f.rule, f.attribute) for f in new} == {(rules.ATTRIBUTE_VALUE, "http.method")}
    assert accepted.gone(_run(ecommerce, worse).findings) == len(before)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not a baseline file: invalid JSON"),
        ('{"findings": []}', "not a baseline file (expected a JSON object with otel-contract-baseline: 1"),
        ('{"otel-contract-baseline": 1, "findings": {}}', "findings: expected a list"),
        ('{"otel-contract-baseline": 1, "findings": [{"metric": "x"}]}', "findings[0]: expected an object with a rule"),
    ],
)
def test_a_broken_baseline_names_the_file_and_the_problem(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(baseline.BaselineError) as error:
        baseline.load(str(path))
    assert str(error.value).startswith(f"{path}: {reason}")


def test_baseline_file_is_sorted_and_stable(ecommerce: CompiledContract) -> None:
    findings = _run(ecommerce, metrics_request(_requests(({"http.method": "BREW"}, 1)))).findings
    text = baseline.dumps(findings, contract=ecommerce.id)
    assert text == baseline.dumps(tuple(reversed(findings)), contract=ecommerce.id)
    assert '"contract": "ecommerce@' in text
