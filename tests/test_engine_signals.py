"""Traces and logs get the resource actions and the attribute renames and types too; and a request
built by the real OpenTelemetry SDK goes through the engine."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_contract import load_contract
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import process_logs, process_metrics, process_traces

from .conftest import CONTRACTS, TODAY
from .otlp_builders import all_metrics, attrs, logs_request, point_attrs, resource_attrs, summary_of, traces_request

SDK_RESOURCE = {
    "service.name": "checkout",
    "k8s.pod.name": "checkout-1",
    "k8s.namespace.name": "shop",
}


@pytest.fixture(scope="module")
def ecommerce() -> CompiledContract:
    return load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY)


def test_span_event_and_link_attributes_are_normalized(ecommerce: CompiledContract) -> None:
    span = {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "name": "GET /cart",
        "attributes": attrs({"http_status": "503", "http.method": "GET"}),
        "events": [{"name": "retry", "attributes": attrs({"status_code": "500"})}],
        "links": [
            {"traceId": "AAAAAAAAAAAAAAAAAAAAAg==", "spanId": "AAAAAAAAAAI=", "attributes": attrs({"status_code": 200})}
        ],
    }
    outcome = process_traces(traces_request([span]).SerializeToString(), ecommerce)
    [out] = outcome.request.resource_spans[0].scope_spans[0].spans
    assert point_attrs(out) == {"http.status_code": 503, "http.method": "GET"}
    assert point_attrs(out.events[0]) == {"http.status_code": 500}
    assert point_attrs(out.links[0]) == {"http.status_code": 200}
    got = resource_attrs(outcome.request.resource_spans[0].resource)
    assert got["service.namespace"] == "ecommerce-prod"
    assert (outcome.items, outcome.rejected, outcome.changed) == (1, 0, True)


def test_log_record_attributes_and_resource_are_normalized(ecommerce: CompiledContract) -> None:
    record = {"severityText": "ERROR", "body": {"stringValue": "timeout"}, "attributes": attrs({"status_code": "504"})}
    outcome = process_logs(logs_request([record], resource={"service.name": "checkout"}), ecommerce)
    [out] = outcome.request.resource_logs[0].scope_logs[0].log_records
    assert point_attrs(out) == {"http.status_code": 504}
    assert summary_of(outcome.findings) == {
        ("missing-resource-attribute", None, "k8s.pod.name", 1),
        ("missing-resource-attribute", None, "k8s.namespace.name", 1),
    }


def test_uncoercible_span_attribute_is_reported(ecommerce: CompiledContract) -> None:
    span = {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "name": "x",
        "attributes": attrs({"http_status": "n/a"}),
    }
    outcome = process_traces(traces_request([span]), ecommerce)
    assert ("attribute-value", None, "http.status_code", 1) in summary_of(outcome.findings)


def test_resource_reject_drops_the_spans_and_counts_them(write) -> None:  # type: ignore[no-untyped-def]
    contract = load_contract(
        write(
            "c.yaml",
            "contract: c\nversion: 1.0.0\nresource: {required: [team]}\npolicy: {missing-resource-attribute: reject}\n",
        )
    )
    spans = [{"traceId": "AAAAAAAAAAAAAAAAAAAAAQ==", "spanId": "AAAAAAAAAAE=", "name": f"s{i}"} for i in range(3)]
    outcome = process_traces(traces_request(spans, resource={"service.name": "x"}), contract)
    assert list(outcome.request.resource_spans) == []
    assert (outcome.items, outcome.rejected) == (3, 3)


def test_a_resource_value_crafted_against_a_nested_quantifier_is_judged_in_linear_time(write) -> None:  # type: ignore[no-untyped-def]
    # Forty a's and a "!" against ^(a+)+$: hours of backtracking for Python's re, one pass for RE2.
    contract = load_contract(
        write("c.yaml", "contract: c\nversion: 1.0.0\nresource: {attributes: {tenant: {pattern: '^(a+)+$'}}}\n")
    )
    hostile = {"tenant": "a" * 40 + "!"}
    span = {"traceId": "AAAAAAAAAAAAAAAAAAAAAQ==", "spanId": "AAAAAAAAAAE=", "name": "s"}
    traces = process_traces(traces_request([span], resource=hostile).SerializeToString(), contract)
    logs = process_logs(logs_request([{"body": {"stringValue": "x"}}], resource=hostile).SerializeToString(), contract)
    for outcome in (traces, logs):
        assert summary_of(outcome.findings) == {("resource-attribute-value", None, "tenant", 1)}
    assert (
        process_logs(logs_request([{"body": {"stringValue": "x"}}], resource={"tenant": "aaaa"}), contract).findings
        == ()
    )


def test_compliant_trace_bytes_pass_through(ecommerce: CompiledContract) -> None:
    from .otlp_builders import GOOD_RESOURCE

    span = {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "name": "x",
        "attributes": attrs({"http.status_code": 200}),
    }
    payload = traces_request([span], resource=GOOD_RESOURCE).SerializeToString()
    outcome = process_traces(payload, ecommerce)
    assert outcome.to_bytes() is payload and outcome.findings == ()


def test_a_request_from_the_real_sdk_goes_through_the_engine(ecommerce: CompiledContract) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create(SDK_RESOURCE), metric_readers=[reader])
    meter = provider.get_meter("checkout")
    duration = meter.create_histogram("http.server.duration", unit="ms")
    duration.record(120.0, {"http.method": "GET", "http_status": "200"})
    duration.record(480.0, {"http.method": "POST", "status_code": 503})
    requests = meter.create_counter("http_requests_total", unit="{request}")
    requests.add(2, {"http.method": "GET", "http.status_code": 200})
    requests.add(1, {"http.status_code": 500})  # no http.method: rejected by the ecommerce policy
    payload = encode_metrics(reader.get_metrics_data()).SerializeToString()
    provider.shutdown()

    outcome = process_metrics(payload, ecommerce)
    by_name = {m.name: m for m in all_metrics(outcome.request)}
    assert set(by_name) == {"http_server_duration_seconds", "http_requests_total"}
    histogram = by_name["http_server_duration_seconds"]
    assert histogram.unit == "s"
    sums = sorted(p.sum for p in histogram.histogram.data_points)
    assert sums == [0.12, 0.48]
    bounds = list(histogram.histogram.data_points[0].explicit_bounds)
    assert bounds[:3] == [0.0, 0.005, 0.01]  # the SDK's default ms buckets 0, 5, 10 ... in seconds
    assert {p["http.status_code"] for p in map(point_attrs, histogram.histogram.data_points)} == {200, 503}
    assert len(by_name["http_requests_total"].sum.data_points) == 1
    assert ("missing-attribute", "http_requests_total", "http.method", 1) in summary_of(outcome.findings)
    assert outcome.rejected == 1
    resource = resource_attrs(outcome.request.resource_metrics[0].resource)
    assert resource["service.namespace"] == "ecommerce-prod" and resource["telemetry.sdk.language"] == "java"


def test_spans_from_the_real_sdk(ecommerce: CompiledContract) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(SDK_RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("checkout")
    with tracer.start_as_current_span("GET /cart", attributes={"http_status": "404"}) as span:
        span.add_event("cache-miss", {"status_code": "404"})
    payload = encode_spans(exporter.get_finished_spans()).SerializeToString()
    provider.shutdown()
    outcome = process_traces(payload, ecommerce)
    [out] = outcome.request.resource_spans[0].scope_spans[0].spans
    assert point_attrs(out)["http.status_code"] == 404
    assert point_attrs(out.events[0]) == {"http.status_code": 404}
