"""Prometheus naming lints (otel_contract.lint): one case per rule, on exposition text and on OTLP built
directly, and parity with the real ``promtool check metrics`` on a corpus and on real client output.

Tests marked "reader change" below expect the exposition reader's intended mapping (a 0.0.4 counter
sample ``foo`` becomes OTLP ``foo``; untyped samples carry ``metadata`` ``prometheus.type=unknown``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary, generate_latest

from otel_contract import rules
from otel_contract.findings import Finding, Location
from otel_contract.inputs.prometheus import parse_exposition
from otel_contract.lint import PROMETHEUS_RULES, PrometheusLinter
from otel_contract.loading import load_contract
from otel_contract.rules import Action, Rule
from tests.conftest import REPO
from tests.otlp_builders import attrs, counter, gauge, histogram, hpoint, metrics_request
from tests.promtool import promtool_fixture  # noqa: F401 - the fixture

CORPUS = REPO / "tests" / "data" / "prometheus"

Seen = set[tuple[Rule, str | None, str | None]]


def lint_text(text: str, actions: dict[Rule, Action] | None = None) -> Seen:
    return seen(PrometheusLinter(actions or {}).lint(parse_exposition(text, "test.prom"), Location("test.prom")))


def seen(findings: Iterable[Finding]) -> Seen:
    return {(f.rule, f.metric, f.attribute) for f in findings}


def family(name: str, kind: str, *samples: str, help_text: str = "Something worth measuring.") -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n" + "".join(f"{sample}\n" for sample in samples)


# --- one case per rule, on exposition text ---------------------------------------------------------


def hist(name: str, labels: str = "") -> tuple[str, ...]:
    """The samples of a histogram with one bucket; ``labels`` like 'route="/a"'."""
    before = labels + "," if labels else ""
    braces = "{" + labels + "}" if labels else ""
    return (
        f'{name}_bucket{{{before}le="1"}} 1',
        f'{name}_bucket{{{before}le="+Inf"}} 2',
        f"{name}_sum{braces} 3",
        f"{name}_count{braces} 2",
    )


EXPOSITION_CASES: list[tuple[str, str, Seen]] = [
    ("no-help", "# TYPE jobs_waiting gauge\njobs_waiting 3\n", {(rules.PROM_HELP, "jobs_waiting", None)}),
    (
        "empty-help",  # promtool reports an empty HELP as no help too
        "# HELP jobs_waiting \n# TYPE jobs_waiting gauge\njobs_waiting 3\n",
        {(rules.PROM_HELP, "jobs_waiting", None)},
    ),
    ("help", family("jobs_waiting", "gauge", "jobs_waiting 3"), set()),
    (
        "total-on-gauge",
        family("queue_depth_total", "gauge", "queue_depth_total 7"),
        {(rules.PROM_TOTAL_SUFFIX, "queue_depth_total", None)},
    ),
    (
        "prefixed-base-unit",
        family("request_latency_milliseconds", "histogram", *hist("request_latency_milliseconds")),
        {(rules.PROM_BASE_UNIT, "request_latency_milliseconds", None)},
    ),
    (
        "kilobytes",
        family("disk_read_kilobytes", "gauge", "disk_read_kilobytes 1"),
        {(rules.PROM_BASE_UNIT, "disk_read_kilobytes", None)},
    ),
    (
        "hours",
        family("process_uptime_hours", "gauge", "process_uptime_hours 1"),
        {(rules.PROM_BASE_UNIT, "process_uptime_hours", None)},
    ),
    (
        "kelvins",
        family("lamp_color_kelvins", "gauge", "lamp_color_kelvins 1"),
        {(rules.PROM_BASE_UNIT, "lamp_color_kelvins", None)},
    ),
    # promlint matches whole name parts: "thermometers" is not "meters", "seconds" is a base unit
    ("not-a-unit", family("room_thermometers", "gauge", "room_thermometers 1"), set()),
    ("base-unit", family("process_cpu_seconds", "gauge", "process_cpu_seconds 1"), set()),
    (
        "ms",
        family("response_time_ms", "gauge", "response_time_ms 1"),
        {(rules.PROM_UNIT_ABBREVIATION, "response_time_ms", None)},
    ),
    (
        "kb-inside",
        family("payload_KB_received", "gauge", "payload_KB_received 1"),  # matched case-insensitively
        {(rules.PROM_UNIT_ABBREVIATION, "payload_KB_received", None)},
    ),
    ("not-an-abbreviation", family("queue_msg_bytes", "gauge", "queue_msg_bytes 1"), set()),
    (
        "camel-metric",
        family("cacheHitRatio", "gauge", "cacheHitRatio 1"),
        {(rules.PROM_CAMEL_CASE, "cacheHitRatio", None)},
    ),
    (
        "camel-label",
        family("active_requests", "gauge", 'active_requests{httpMethod="GET"} 1'),
        {(rules.PROM_CAMEL_CASE, "active_requests", "httpMethod")},
    ),
    ("upper-case-is-not-camel", family("HTTP_REQUESTS", "gauge", "HTTP_REQUESTS 1"), set()),
    (
        "bucket-on-gauge",
        family("batch_size_bucket", "gauge", "batch_size_bucket 1"),
        {(rules.PROM_RESERVED_SUFFIX, "batch_size_bucket", None)},
    ),
    (
        "bucket-on-summary",
        family("rpc_size_bucket", "summary", "rpc_size_bucket_sum 1", "rpc_size_bucket_count 1"),
        {(rules.PROM_RESERVED_SUFFIX, "rpc_size_bucket", None)},
    ),
    (
        "count-on-gauge",
        family("items_processed_count", "gauge", "items_processed_count 1"),
        {(rules.PROM_RESERVED_SUFFIX, "items_processed_count", None)},
    ),
    (
        "sum-on-gauge",
        family("items_weight_sum", "gauge", "items_weight_sum 1"),
        {(rules.PROM_RESERVED_SUFFIX, "items_weight_sum", None)},
    ),
    ("count-on-summary", family("rpc_count", "summary", "rpc_count_sum 1", "rpc_count_count 1"), set()),
    (
        "le-and-quantile-on-gauge",
        family("pool_usage", "gauge", 'pool_usage{le="10",quantile="0.9"} 1'),
        {(rules.PROM_RESERVED_LABEL, "pool_usage", "le"), (rules.PROM_RESERVED_LABEL, "pool_usage", "quantile")},
    ),
    (
        "quantile-on-histogram",
        family("response_size_bytes", "histogram", *hist("response_size_bytes", 'quantile="0.9"')),
        {(rules.PROM_RESERVED_LABEL, "response_size_bytes", "quantile")},
    ),
    (
        "le-on-summary",
        family("rpc_seconds", "summary", 'rpc_seconds{le="1",quantile="0.5"} 1', 'rpc_seconds_count{le="1"} 1'),
        {(rules.PROM_RESERVED_LABEL, "rpc_seconds", "le")},
    ),
    (
        "colon",
        family("job:http_errors:rate5m", "gauge", "job:http_errors:rate5m 1"),
        {(rules.PROM_RESERVED_CHARS, "job:http_errors:rate5m", None)},
    ),
    (
        "type-in-name",
        family("memory_used_gauge", "gauge", "memory_used_gauge 1"),
        {(rules.PROM_TYPE_IN_NAME, "memory_used_gauge", None)},
    ),
    (
        "other-type-in-name",  # promlint looks for every type, not just the metric's own
        family("worker_counter_value", "gauge", "worker_counter_value 1"),
        {(rules.PROM_TYPE_IN_NAME, "worker_counter_value", None)},
    ),
    (
        "duplicate",
        family("active_requests", "gauge", 'active_requests{method="GET"} 1', 'active_requests{method="GET"} 2'),
        {(rules.PROM_DUPLICATE, "active_requests", None)},
    ),
    (
        "clean",
        family("http_server_duration_seconds", "histogram", *hist("http_server_duration_seconds", 'route="/a"'))
        + family("http_requests_total", "counter", 'http_requests_total{code="200"} 1'),
        set(),
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in EXPOSITION_CASES], ids=[c[0] for c in EXPOSITION_CASES])
def test_each_rule_on_exposition(text: str, expected: Seen) -> None:
    assert lint_text(text) == expected


def test_a_counter_without_total_is_reported() -> None:  # reader change: the sample foo stays foo
    text = family("http_requests", "counter", 'http_requests{code="200"} 10')
    assert lint_text(text) == {(rules.PROM_COUNTER_SUFFIX, "http_requests", None)}
    text = family("payments_sum", "counter", "payments_sum 3")
    assert lint_text(text) == {
        (rules.PROM_COUNTER_SUFFIX, "payments_sum", None),
        (rules.PROM_RESERVED_SUFFIX, "payments_sum", None),
    }


def test_untyped_samples_are_exempt_from_type_rules() -> None:  # reader change: untyped is marked
    text = 'legacy_total 1\nlegacy_sum 2\n# HELP legacy_bounds Bounds.\nlegacy_bounds{le="1",quantile="0.5"} 3\n'
    assert lint_text(text) == {(rules.PROM_HELP, "legacy_total", None), (rules.PROM_HELP, "legacy_sum", None)}
    # help, units, types in names, ':' and camelCase still apply to untyped metrics
    text = "# HELP legacyQueue_counter Jobs.\nlegacyQueue_counter 1\n"
    assert lint_text(text) == {
        (rules.PROM_CAMEL_CASE, "legacyQueue_counter", None),
        (rules.PROM_TYPE_IN_NAME, "legacyQueue_counter", None),
    }


# --- OTLP built directly ---------------------------------------------------------------------------


def lint_request(*metrics: dict[str, Any], actions: dict[Rule, Action] | None = None) -> Seen:
    return seen(PrometheusLinter(actions or {}).lint(metrics_request(*metrics), Location("request.pb")))


def described(metric: dict[str, Any], text: str = "Something worth measuring.") -> dict[str, Any]:
    return {**metric, "description": text}


def untyped(metric: dict[str, Any]) -> dict[str, Any]:
    return {**metric, "metadata": attrs({"prometheus.type": "unknown"})}


def summary(name: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    data = [
        {"attributes": attrs(a), "count": "2", "sum": 3.0, "quantileValues": [{"quantile": 0.5, "value": 1.0}]}
        for a in points
    ]
    return {"name": name, "summary": {"dataPoints": data}}


def exponential_histogram(name: str) -> dict[str, Any]:
    point = {"count": "1", "sum": 2.0, "scale": 0, "zeroCount": "0", "positive": {"offset": 0, "bucketCounts": ["1"]}}
    return {"name": name, "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [point]}}


def test_a_monotonic_sum_is_a_counter() -> None:
    assert lint_request(described(counter("http_requests", [({}, 1.0)]))) == {
        (rules.PROM_COUNTER_SUFFIX, "http_requests", None)
    }
    assert lint_request(described(counter("http_requests_total", [({}, 1.0)]))) == set()


def test_a_non_monotonic_sum_is_a_gauge() -> None:
    metric = described(counter("queue_items_total", [({}, 1.0)], monotonic=False))
    assert lint_request(metric) == {(rules.PROM_TOTAL_SUFFIX, "queue_items_total", None)}
    assert lint_request(described(counter("queue_items", [({}, 1.0)], monotonic=False))) == set()


def test_a_gauge_marked_unknown_is_untyped() -> None:
    points = [({"le": "1", "quantile": "0.5"}, 1.0)]
    assert lint_request(described(untyped(gauge("legacy_total", points)))) == set()
    assert lint_request(described(untyped(gauge("legacy_count", points)))) == set()
    # the same gauge without the mark is a gauge
    assert lint_request(described(gauge("legacy_total", points))) == {
        (rules.PROM_TOTAL_SUFFIX, "legacy_total", None),
        (rules.PROM_RESERVED_LABEL, "legacy_total", "le"),
        (rules.PROM_RESERVED_LABEL, "legacy_total", "quantile"),
    }


def test_histograms_and_summaries() -> None:
    point = hpoint({}, [1.0], [1, 0], 0.5)
    assert lint_request(described(histogram("rpc_latency_count", [point]))) == set()
    assert lint_request(described(exponential_histogram("rpc_latency_sum"))) == set()
    assert lint_request(described(exponential_histogram("rpc_latency_bucket"))) == set()
    assert lint_request(exponential_histogram("rpc_latency_milliseconds")) == {
        (rules.PROM_HELP, "rpc_latency_milliseconds", None),
        (rules.PROM_BASE_UNIT, "rpc_latency_milliseconds", None),
    }
    assert lint_request(described(summary("rpc_count", [{}]))) == set()
    assert lint_request(described(summary("rpc_bucket", [{}]))) == {(rules.PROM_RESERVED_SUFFIX, "rpc_bucket", None)}


def test_otlp_attributes_named_like_the_labels_an_exporter_adds() -> None:
    # An OTLP histogram carries its bounds as a field; an "le" attribute would collide with the
    # label the Prometheus exporter adds for them (promtool cannot see this case).
    assert lint_request(described(histogram("rpc_seconds", [hpoint({"le": "x"}, [1.0], [1, 0], 0.5)]))) == {
        (rules.PROM_RESERVED_LABEL, "rpc_seconds", "le")
    }
    assert lint_request(described(summary("rpc_seconds", [{"quantile": "x"}]))) == {
        (rules.PROM_RESERVED_LABEL, "rpc_seconds", "quantile")
    }


def test_double_underscore_labels_are_reserved() -> None:
    # Beyond promtool: Prometheus reserves labels starting with "__" for itself (exposition parsers
    # refuse them, so they only arrive over OTLP); untyped metrics are not exempt.
    for metric in (gauge("tenants", [({"__tenant": "a"}, 1.0)]), untyped(gauge("tenants", [({"__tenant": "a"}, 1.0)]))):
        assert lint_request(described(metric)) == {(rules.PROM_RESERVED_LABEL, "tenants", "__tenant")}


def test_metrics_without_points_are_skipped() -> None:
    # promtool's parser drops families without samples, and Prometheus exposes nothing for them
    assert lint_request(gauge("cacheHitRatio_ms", [])) == set()
    assert lint_request({"name": "cacheHitRatio_ms"}) == set()


def test_names_and_labels_are_taken_raw() -> None:
    metric = described(counter("http.server.requestCount", [({"http.requestMethod": "GET"}, 1.0)]))
    assert lint_request(metric) == {
        (rules.PROM_COUNTER_SUFFIX, "http.server.requestCount", None),
        (rules.PROM_CAMEL_CASE, "http.server.requestCount", None),
        (rules.PROM_CAMEL_CASE, "http.server.requestCount", "http.requestMethod"),
    }


def test_finding_fields_and_message() -> None:
    findings = PrometheusLinter({}).lint(
        metrics_request(described(counter("http_requests", [({}, 1.0)]))), Location("a.prom")
    )
    assert len(findings) == 1
    finding = findings[0]
    assert finding.rule is rules.PROM_COUNTER_SUFFIX
    assert finding.message == (
        'counter http_requests has no "_total" suffix; Prometheus and OpenMetrics name counters http_requests_total'
    )
    assert finding.location == Location("a.prom")
    assert (finding.metric, finding.attribute, finding.count) == ("http_requests", None, 1)
    assert (finding.level, finding.action) == (rules.PROM_COUNTER_SUFFIX.level, Action.FLAG)
    unlocated = PrometheusLinter({}).lint(metrics_request(gauge("x_ms", [({}, 1.0)])), None)
    assert unlocated and all(f.location is None for f in unlocated)


def test_messages_say_what_to_do() -> None:
    request = metrics_request(
        described(gauge("request_latency_milliseconds", [({"httpMethod": "GET"}, 1.0)])),
        described(gauge("payload_kb", [({}, 1.0)])),
    )
    messages = {(f.rule, f.attribute): f.message for f in PrometheusLinter({}).lint(request, None)}
    assert "request_latency_seconds" in messages[(rules.PROM_BASE_UNIT, None)]
    assert "http_method" in messages[(rules.PROM_CAMEL_CASE, "httpMethod")]
    assert '"bytes"' in messages[(rules.PROM_UNIT_ABBREVIATION, None)]


# --- once per run ----------------------------------------------------------------------------------


def _points(n: int) -> list[tuple[dict[str, Any], float]]:
    return [({"httpMethod": f"M{i}", "__shard": str(i % 3)}, float(i)) for i in range(n)]


def test_each_problem_is_reported_once_per_run() -> None:
    linter = PrometheusLinter({})
    request = metrics_request(gauge("cacheHits_total", _points(5)))
    first = linter.lint(request, Location("a"))
    assert seen(first) == {
        (rules.PROM_HELP, "cacheHits_total", None),
        (rules.PROM_TOTAL_SUFFIX, "cacheHits_total", None),
        (rules.PROM_CAMEL_CASE, "cacheHits_total", None),
        (rules.PROM_CAMEL_CASE, "cacheHits_total", "httpMethod"),
        (rules.PROM_RESERVED_LABEL, "cacheHits_total", "__shard"),
    }
    assert all(f.count == 1 for f in first)
    assert linter.lint(request, Location("b")) == ()
    # a problem that is new in a later request is still reported
    later = metrics_request(gauge("cacheHits_total", [({"userId": "1"}, 1.0)]))
    assert seen(linter.lint(later, Location("c"))) == {(rules.PROM_CAMEL_CASE, "cacheHits_total", "userId")}


def test_one_request_or_ten_give_the_same_findings() -> None:
    points = _points(10)
    whole = PrometheusLinter({}).lint(metrics_request(gauge("cacheHits_total", points)), Location("capture"))
    linter = PrometheusLinter({})
    split = [
        f
        for point in points
        for f in linter.lint(metrics_request(gauge("cacheHits_total", [point])), Location("capture"))
    ]
    assert sorted(whole, key=Finding.sort_key) == sorted(split, key=Finding.sort_key)
    assert len(split) == len(seen(split)) == 5


# --- policy ----------------------------------------------------------------------------------------


def test_ignored_rules_are_not_reported() -> None:
    text = "# TYPE jobsWaiting gauge\njobsWaiting 3\njobsWaiting 3\n"
    assert lint_text(text) == {
        (rules.PROM_HELP, "jobsWaiting", None),
        (rules.PROM_CAMEL_CASE, "jobsWaiting", None),
        (rules.PROM_DUPLICATE, "jobsWaiting", None),
    }
    ignore = {rules.PROM_HELP: Action.IGNORE, rules.PROM_DUPLICATE: Action.IGNORE, rules.PROM_CAMEL_CASE: Action.FLAG}
    assert lint_text(text, ignore) == {(rules.PROM_CAMEL_CASE, "jobsWaiting", None)}


def test_a_contract_policy_silences_a_lint(tmp_path: Path) -> None:  # needs the prom-* slugs in the schema
    path = tmp_path / "contract.yaml"
    path.write_text("contract: shop\nversion: 1.0.0\npolicy:\n  prom-help: ignore\n", encoding="utf-8")
    contract = load_contract(path)
    request = parse_exposition("# TYPE jobsWaiting gauge\njobsWaiting 3\n", "x.prom")
    assert seen(PrometheusLinter(contract.actions).lint(request, Location("x.prom"))) == {
        (rules.PROM_CAMEL_CASE, "jobsWaiting", None)
    }


def test_the_linter_reports_only_prometheus_rules() -> None:
    assert all(rule.slug.startswith("prom-") for rule in PROMETHEUS_RULES)
    assert {rule for rule in rules.RULES.values() if rule.slug.startswith("prom-")} == set(PROMETHEUS_RULES)


# --- duplicates ------------------------------------------------------------------------------------


def _request(resources: list[list[list[dict[str, Any]]]]) -> ExportMetricsServiceRequest:
    """resources -> scopes -> metrics, as OTLP/JSON."""
    document = {
        "resourceMetrics": [
            {
                "resource": {"attributes": attrs({"service.name": f"svc{i}"})},
                "scopeMetrics": [{"scope": {"name": f"scope{j}"}, "metrics": scope} for j, scope in enumerate(scopes)],
            }
            for i, scopes in enumerate(resources)
        ]
    }
    return json_format.ParseDict(document, ExportMetricsServiceRequest())


def _duplicates(request: ExportMetricsServiceRequest, linter: PrometheusLinter | None = None) -> Seen:
    found = seen((linter or PrometheusLinter({})).lint(request, None))
    return {entry for entry in found if entry[0] is rules.PROM_DUPLICATE}


DUPLICATE = {(rules.PROM_DUPLICATE, "active_requests", None)}


def test_duplicate_series_in_one_metric() -> None:
    points = [({"method": "GET", "route": "/a"}, 1.0), ({"route": "/a", "method": "GET"}, 2.0)]
    assert _duplicates(_request([[[gauge("active_requests", points * 3)]]])) == DUPLICATE
    distinct: list[tuple[dict[str, Any], float]] = [
        ({"method": "GET"}, 1.0),
        ({"method": "POST"}, 1.0),
        ({"method": 1}, 1.0),
        ({}, 1.0),
    ]
    assert _duplicates(_request([[[gauge("active_requests", distinct)]]])) == set()
    hist_points = [hpoint({"route": "/a"}, [1.0], [1, 0], 0.5)] * 2
    assert _duplicates(_request([[[histogram("active_requests", hist_points)]]])) == DUPLICATE


LONG = "k" * 200  # a key whose length takes two bytes on the wire


@pytest.mark.parametrize(
    "scopes",
    [
        [[("a", "b"), ("b", "a")]],  # one metric, keys in two orders
        [[("b", "a"), ("b", "a")]],  # every point with its keys out of order
        [[("b", "a")], [("a", "b")]],  # the same series in two scopes, in two orders
        [[(LONG, "a"), ("a", LONG)]],
    ],
    ids=["mixed", "all-unsorted", "across-scopes", "long-key"],
)
def test_the_order_of_attributes_does_not_hide_a_duplicate(scopes: list[list[tuple[str, str]]]) -> None:
    def request(value: Callable[[int, int], str]) -> ExportMetricsServiceRequest:
        metrics = [
            [gauge("active_requests", [(dict.fromkeys(keys, value(i, j)), 1.0) for j, keys in enumerate(scope)])]
            for i, scope in enumerate(scopes)
        ]
        return _request([metrics])

    assert _duplicates(request(lambda i, j: "v")) == DUPLICATE
    assert _duplicates(request(lambda i, j: f"v{i}.{j}")) == set()


def test_duplicates_are_per_resource_and_across_scopes() -> None:
    one = gauge("active_requests", [({"method": "GET"}, 1.0)])
    assert _duplicates(_request([[[one]], [[one]]])) == set()  # two resources: two series
    assert _duplicates(_request([[[one], [one]]])) == DUPLICATE  # two scopes of one resource: one series
    assert _duplicates(_request([[[one, one]]])) == DUPLICATE


def test_duplicates_are_within_one_request() -> None:
    linter = PrometheusLinter({})
    one = _request([[[gauge("active_requests", [({"method": "GET"}, 1.0)])]]])
    assert _duplicates(one, linter) == set()
    assert _duplicates(one, linter) == set()  # the same series again in the next request is a new sample


# --- parity with promtool --------------------------------------------------------------------------


@dataclass(frozen=True)
class PromtoolProblem:
    pattern: re.Pattern[str]
    rule: Rule
    in_promtool_2_42: bool = True


# Every problem text promlint prints, and our rule for it. A text not in this table fails the parity
# test: a newer promtool checks something new and the catalog needs a rule for it.
PROMTOOL_PROBLEMS = (
    PromtoolProblem(re.compile(r"no help text"), rules.PROM_HELP),
    PromtoolProblem(re.compile(r'use base unit "\w+" instead of "\w+"'), rules.PROM_BASE_UNIT),
    PromtoolProblem(re.compile(r'counter metrics should have "_total" suffix'), rules.PROM_COUNTER_SUFFIX),
    PromtoolProblem(re.compile(r'non-counter metrics should not have "_total" suffix'), rules.PROM_TOTAL_SUFFIX),
    PromtoolProblem(re.compile(r'non-histogram metrics should not have "_bucket" suffix'), rules.PROM_RESERVED_SUFFIX),
    PromtoolProblem(
        re.compile(r'non-histogram and non-summary metrics should not have "_count" suffix'), rules.PROM_RESERVED_SUFFIX
    ),
    PromtoolProblem(
        re.compile(r'non-histogram and non-summary metrics should not have "_sum" suffix'), rules.PROM_RESERVED_SUFFIX
    ),
    PromtoolProblem(re.compile(r'non-histogram metrics should not have "le" label'), rules.PROM_RESERVED_LABEL),
    PromtoolProblem(re.compile(r'non-summary metrics should not have "quantile" label'), rules.PROM_RESERVED_LABEL),
    PromtoolProblem(re.compile(r"metric name should not include type '\w+'"), rules.PROM_TYPE_IN_NAME),
    PromtoolProblem(re.compile(r"metric names should not contain ':'"), rules.PROM_RESERVED_CHARS),
    PromtoolProblem(
        re.compile(r"metric names should be written in 'snake_case' not 'camelCase'"), rules.PROM_CAMEL_CASE
    ),
    PromtoolProblem(
        re.compile(r"label names should be written in 'snake_case' not 'camelCase'"), rules.PROM_CAMEL_CASE
    ),
    PromtoolProblem(re.compile(r"metric names should not contain abbreviated units"), rules.PROM_UNIT_ABBREVIATION),
    # client_golang >= v1.15 (promtool >= 2.43); promtool 2.42 does not check for duplicate series
    PromtoolProblem(re.compile(r"metric not unique"), rules.PROM_DUPLICATE, in_promtool_2_42=False),
)

# What we report that promtool 2.42 does not, per input (metric, rule); anything else is a false positive:
# * duplicate series (prom-duplicate): promtool 2.42 has no such check (newer promlint: "metric not unique");
# * labels starting with "__" (prom-reserved-label): promtool's parser accepts them silently;
# * "le"/"quantile" attributes on OTLP histograms/summaries (prom-reserved-label): exposition cannot carry them;
# * an empty HELP reads as no help for both, but a HELP of only spaces is no help only for us.
KNOWN_EXTRAS: dict[str, set[tuple[str, Rule]]] = {
    "promlint.prom": {("http_server_active_requests", rules.PROM_DUPLICATE)},
}


@dataclass(frozen=True)
class Reported:
    metric: str
    rule: Rule
    kind: int  # index into PROMTOOL_PROBLEMS
    line: str


def promtool_problems(promtool: str, text: str) -> list[Reported]:
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    # 0: no problems, 3: lint problems; anything else (1: unparsable) means the corpus is wrong
    assert result.returncode in (0, 3), f"promtool exit {result.returncode}: {result.stderr}"
    reported = []
    for line in (result.stdout + result.stderr).splitlines():
        if not line.strip():
            continue
        metric, _, problem = line.partition(" ")
        kinds = [i for i, known in enumerate(PROMTOOL_PROBLEMS) if known.pattern.fullmatch(problem)]
        assert kinds, f"promtool reports a problem the parity table does not know (add a rule for it): {line!r}"
        reported.append(Reported(metric, PROMTOOL_PROBLEMS[kinds[0]].rule, kinds[0], line))
    assert (result.returncode == 3) == bool(reported), result
    return reported


def _owners(metric: str) -> tuple[str, ...]:
    # prometheus_client's 0.0.4 output writes a counter's, histogram's or summary's _created series as a
    # gauge family of its own, which promtool lints by its name; the exposition reader turns it into
    # the family's start time, so our finding is on the family: <name> (histogram, summary) or <name>_total.
    base = metric.removesuffix("_created")
    return (metric,) if base == metric else (metric, base, base + "_total")


def _prometheus_client_capture() -> str:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "HTTP requests served", ["method", "statusCode"], registry=registry)
    requests.labels("GET", "200").inc()
    Counter("requestsServed", "Requests served", registry=registry).inc(2)
    Counter("bytes_sent_kb", "", registry=registry).inc(3)
    latency = Histogram("requestLatencyMs", "Request latency", ["route"], buckets=(5, 10, 50), registry=registry)
    latency.labels("/cart").observe(7)
    Histogram("db_query_duration_seconds", "Query duration", registry=registry).observe(0.2)
    Summary("payload_kilobytes", "Payload size", registry=registry).observe(3)
    Summary("rpc_duration_summary", "RPC duration", registry=registry).observe(0.1)
    Gauge("queue_length_total", "Jobs queued", registry=registry).set(4)
    Gauge("room_temperature_fahrenheit", "Room temperature", registry=registry).set(70)
    Gauge("cache_size_kb", "", registry=registry).set(1)
    Gauge("job:errors:rate5m", "Errors per second", registry=registry).set(0.1)
    Gauge("inflight_count", "Requests in flight", ["le"], registry=registry).labels("1").set(1)
    Gauge("memory_used_gauge", "Memory in use", registry=registry).set(1024)
    Info("build", "Build information", registry=registry).info({"version": "1.0", "gitCommit": "abc123"})
    Enum("taskState", "Task state", states=["running", "stopped"], registry=registry).state("running")
    return generate_latest(registry).decode()


def _opentelemetry_sdk_capture() -> str:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "shop"}))
    try:
        meter = provider.get_meter("shop.checkout", "1.0.0")
        meter.create_counter("http.server.requests", "{request}", "HTTP requests served").add(
            3, {"http.method": "GET", "httpRoute": "/cart"}
        )
        meter.create_counter("bytesSent", "By").add(10)
        meter.create_counter("orders_processed").add(1)
        meter.create_histogram("http.server.duration", "ms").record(12.0, {"http.method": "GET"})
        meter.create_histogram("db.query.time", "s", "Query duration").record(0.3)
        meter.create_histogram("payload.size", "kBy", "Payload size").record(3)
        meter.create_up_down_counter("queue.length", "{item}").add(4)
        meter.create_up_down_counter("cache_size_total", "By", "Cache size").add(4)

        def temperature(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(21.5, {"room": "lab"})]

        meter.create_observable_gauge("room.temperature", [temperature], "Cel", "Room temperature")
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()


PARITY_INPUTS = {
    "promlint.prom": lambda: (CORPUS / "promlint.prom").read_text(encoding="utf-8"),
    "counters.prom": lambda: (CORPUS / "counters.prom").read_text(encoding="utf-8"),  # reader change
    "untyped.prom": lambda: (CORPUS / "untyped.prom").read_text(encoding="utf-8"),  # reader change (extras)
    "prometheus-client": _prometheus_client_capture,
    "opentelemetry-sdk": _opentelemetry_sdk_capture,
}


@pytest.mark.parametrize("name", PARITY_INPUTS)
def test_we_report_everything_promtool_reports(promtool: str, name: str) -> None:
    text = PARITY_INPUTS[name]()
    theirs = promtool_problems(promtool, text)
    assert theirs, f"promtool reports nothing on {name}; the parity test would pass vacuously"
    ours = {(f.metric, f.rule) for f in PrometheusLinter({}).lint(parse_exposition(text, name), Location(name))}
    missing = [p.line for p in theirs if not any((owner, p.rule) in ours for owner in _owners(p.metric))]
    assert not missing, f"promtool reports, we do not: {missing}"
    matched = {(owner, p.rule) for p in theirs for owner in _owners(p.metric)}
    assert ours - matched <= KNOWN_EXTRAS.get(name, set()), "we report what promtool does not"


def test_the_corpus_triggers_every_promtool_problem(promtool: str) -> None:
    kinds = {
        p.kind
        for path in sorted(CORPUS.glob("*.prom"))
        for p in promtool_problems(promtool, path.read_text(encoding="utf-8"))
    }
    expected = {i for i, known in enumerate(PROMTOOL_PROBLEMS) if known.in_promtool_2_42}
    assert expected <= kinds, [PROMTOOL_PROBLEMS[i].pattern.pattern for i in sorted(expected - kinds)]
