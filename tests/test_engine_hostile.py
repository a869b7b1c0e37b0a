"""Hostile input (issue 16): values the engine used to raise on are findings, a spliced oneof cannot get
past the attribute memo, and no histogram costs more than its size. Through the engine, ``validate``
and a running sidecar, which must agree; and what happens when the engine itself fails."""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import DataPointFlags

from otel_contract import load_contract
from otel_contract.cli import main
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, process_logs, process_metrics, process_traces
from otel_contract.otlp import Signal
from otel_contract.server.config import OnEngineError

from .conftest import CONTRACTS, TODAY, run_cli
from .hostile_requests import (
    GOOD,
    SHOP_EXTRA,
    exponential_point,
    histogram_with_bounds,
    orders,
    out_of_range_requests,
    spliced_metric,
)
from .otlp_builders import (
    all_metrics,
    attrs,
    gauge,
    histogram,
    hpoint,
    logs_request,
    metrics_request,
    point_attrs,
    summary_of,
    traces_request,
)
from .otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from .sidecar_harness import RawClient, config_for, http_get, running, shop_contract

ECOMMERCE = load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY)
OUT_OF_RANGE = out_of_range_requests()
MAX_EXPLICIT_BOUNDS = 4096  # README, "What the engine does"


@pytest.fixture
def shop_path(tmp_path: Path) -> Path:
    return shop_contract(tmp_path / "shop.yaml", extra=SHOP_EXTRA)


@pytest.fixture
def shop(shop_path: Path) -> CompiledContract:
    return load_contract(shop_path)


def _slugs(outcome: Any) -> set[str]:
    return {finding.rule.slug for finding in outcome.findings}


def _assert_normalized(request: ExportMetricsServiceRequest) -> None:
    """The legacy durations of ``OUT_OF_RANGE``'s requests as the contract wants them downstream."""
    durations = [metric for metric in all_metrics(request) if metric.name == "http_server_duration_seconds"]
    assert durations and all(metric.unit == "s" for metric in durations)
    assert {metric.name for metric in all_metrics(request)} == {"http_server_duration_seconds"}
    points = [point for metric in durations for point in metric.histogram.data_points]
    assert all("user.id" not in point_attrs(point) for point in points)
    assert list(points[0].explicit_bounds) == [0.1, 0.5]


# --- 1. values the engine raised on are findings ------------------------------------------------------


@pytest.mark.parametrize("name", OUT_OF_RANGE)
def test_out_of_range_values_are_findings_with_their_actions(name: str) -> None:
    case = OUT_OF_RANGE[name]
    outcome = process_metrics(case.payload, ECOMMERCE, state=CardinalityState())
    assert {case.rule, "forbidden-attribute", "deprecated-metric"} <= _slugs(outcome)
    assert outcome.rejected == case.rejected
    _assert_normalized(outcome.request)


@pytest.mark.parametrize("temporality", [5, -1, 2**31 - 1])
@pytest.mark.parametrize("kind", ["histogram", "sum"])
def test_a_temporality_outside_the_otlp_enum_is_a_type_mismatch(kind: str, temporality: int) -> None:
    request = metrics_request(
        histogram("http_server_duration_seconds", [hpoint(GOOD, [0.5], [1, 0], 0.1)])
        if kind == "histogram"
        else {"name": "http_requests_total", "unit": "{request}", "sum": {"isMonotonic": True, "dataPoints": []}}
    )
    getattr(all_metrics(request)[0], kind).aggregation_temporality = temporality
    outcome = process_metrics(request.SerializeToString(), ECOMMERCE)
    (mismatch,) = [finding for finding in outcome.findings if finding.rule.slug == "type-mismatch"]
    assert f"got {temporality}, which is no OTLP temporality" in mismatch.message


@pytest.mark.parametrize("value", ["99999999999999999999", "-9223372036854775809", 1e30])
def test_coercions_beyond_int64_are_attribute_values_on_every_signal(value: str | float) -> None:
    span = {
        "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "spanId": "AAAAAAAAAAE=",
        "attributes": attrs({"status_code": value}),
    }
    record = {"body": {"stringValue": "x"}, "attributes": attrs({"http.status_code": value})}
    point = hpoint({"http.method": "GET", "status_code": value}, [], [1], 0.1)
    assert "attribute-value" in _slugs(process_traces(traces_request([span]).SerializeToString(), ECOMMERCE))
    assert "attribute-value" in _slugs(process_logs(logs_request([record]).SerializeToString(), ECOMMERCE))
    request = metrics_request(histogram("http_server_duration_seconds", [point]))
    assert "attribute-value" in _slugs(process_metrics(request.SerializeToString(), ECOMMERCE))


def test_the_int64_limits_still_coerce() -> None:
    limits = {"http.method": "GET", "status_code": str(2**63 - 1)}
    request = metrics_request(histogram("http_server_duration_seconds", [hpoint(limits, [], [1], 0.1)]))
    outcome = process_metrics(request.SerializeToString(), ECOMMERCE)
    assert "attribute-value" not in _slugs(outcome)
    assert point_attrs(all_metrics(outcome.request)[0].histogram.data_points[0])["http.status_code"] == 2**63 - 1


HOURS_CONTRACT = """\
contract: hours
version: 1.0.0
metrics:
  - {name: wait_seconds, type: gauge, unit: s}
  - {name: wait_histogram_seconds, type: histogram, unit: s}
  - {name: wait_summary_seconds, type: summary, unit: s}
  - {name: payload_bytes, type: gauge, unit: By}
"""


@pytest.fixture
def hours(tmp_path: Path) -> CompiledContract:
    path = tmp_path / "hours.yaml"
    path.write_text(HOURS_CONTRACT, "utf-8")
    return load_contract(path)


def _summary(name: str, value: float) -> dict[str, Any]:
    point = {"count": "1", "sum": 1.0, "quantileValues": [{"quantile": 0.5, "value": value}]}
    return {"name": name, "unit": "h", "summary": {"dataPoints": [point]}}


@pytest.mark.parametrize(
    "metric",
    [
        gauge("wait_seconds", [({}, 1e306)], unit="h"),
        histogram("wait_histogram_seconds", [hpoint({}, [1.0, 1e306], [0, 0, 0], 0.0)], unit="h"),
        _summary("wait_summary_seconds", 1e306),
    ],
    ids=["gauge", "histogram bounds", "summary quantiles"],
)
def test_a_conversion_beyond_a_double_is_an_invalid_data_point(hours: CompiledContract, metric: dict[str, Any]) -> None:
    payload = metrics_request(metric).SerializeToString()
    outcome = process_metrics(payload, hours)
    assert summary_of(outcome.findings) == {("invalid-data-point", metric["name"], None, 1)}
    assert outcome.rejected == 1
    flagged = process_metrics(payload, hours, options=EngineOptions(audit=True))
    [sent] = all_metrics(ExportMetricsServiceRequest.FromString(payload))
    [forwarded] = all_metrics(flagged.request)
    kind = sent.WhichOneof("data")
    assert getattr(forwarded, kind) == getattr(sent, kind)  # flagged: forwarded as it came, not as infinities


@pytest.mark.parametrize("unit", ["PBy99.By-98", "By-98.PBy99", "1000." * 40 + "By"])
def test_a_unit_that_cannot_be_applied_is_a_unit_mismatch(hours: CompiledContract, unit: str) -> None:
    request = metrics_request(gauge("payload_bytes", [({}, 1.0)], unit=unit))
    outcome = process_metrics(request.SerializeToString(), hours)
    assert summary_of(outcome.findings) == {("unit-mismatch", "payload_bytes", None, 1)}


# --- 2. the attribute memo answers only for the points it saw -----------------------------------------


def test_a_spliced_oneof_cannot_reuse_a_clean_points_memo(shop: CompiledContract) -> None:
    state = CardinalityState()
    clean = orders([{"seq": "1"}])
    warm = process_metrics(metrics_request(clean).SerializeToString(), shop, state=state)
    assert warm.findings == ()
    crafted = spliced_metric(clean, orders([{"user.id": "u-1"}]), between="gauge")
    [metric] = all_metrics(ExportMetricsServiceRequest.FromString(crafted))
    assert [point_attrs(point) for point in metric.sum.data_points] == [{"user.id": "u-1"}]  # what protobuf sees

    outcome = process_metrics(crafted, shop, state=state)
    assert summary_of(outcome.findings) == {("forbidden-attribute", "orders_total", "user.id", 1)}
    assert outcome.rejected == 1


def test_a_spliced_oneof_cannot_pass_a_series_budget(shop: CompiledContract) -> None:
    state = CardinalityState()
    first = gauge("queue_depth", [({"queue": "a"}, 1.0)], unit="{item}")
    assert process_metrics(metrics_request(first).SerializeToString(), shop, state=state).findings == ()
    second = gauge("queue_depth", [({"queue": "b"}, 1.0)], unit="{item}")
    outcome = process_metrics(spliced_metric(first, second, between="sum"), shop, state=state)
    assert summary_of(outcome.findings) == {("cardinality", "queue_depth", None, 1)}
    assert state.series_count("queue_depth") == 1


# --- 3. histogram bounds -------------------------------------------------------------------------------


def test_more_explicit_bounds_than_allowed_is_an_invalid_data_point(shop: CompiledContract) -> None:
    allowed = process_metrics(histogram_with_bounds(map(float, range(MAX_EXPLICIT_BOUNDS))), shop)
    assert "invalid-data-point" not in _slugs(allowed)
    outcome = process_metrics(histogram_with_bounds(map(float, range(MAX_EXPLICIT_BOUNDS + 1))), shop)
    (invalid,) = [finding for finding in outcome.findings if finding.rule.slug == "invalid-data-point"]
    assert f"{MAX_EXPLICIT_BOUNDS + 1} explicit bounds" in invalid.message
    assert outcome.rejected == 1


@pytest.mark.parametrize("bounds", [10_000, 2_000])
def test_distinct_histogram_layouts_do_not_accumulate_memory(shop: CompiledContract, bounds: int) -> None:
    """Memory the engine keeps after 200 requests, whatever layouts they bring (a few MiB at most)."""
    requests = 200
    payloads = [histogram_with_bounds(map(float, range(i * bounds, (i + 1) * bounds))) for i in range(requests)]
    process_metrics(histogram_with_bounds([1.0]), shop)  # the engine's one-off allocations before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for payload in payloads:
            process_metrics(payload, shop)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 4 * 2**20, f"{kept / 2**20:.1f} MiB kept after {requests} requests of {bounds} bounds"


# --- 4. exponential histogram scales -------------------------------------------------------------------


@pytest.mark.parametrize("scale", [-(2**31), -11, 21, 2**31 - 1])
def test_a_scale_outside_the_otlp_range_is_an_invalid_data_point(shop: CompiledContract, scale: int) -> None:
    outcome = process_metrics(exponential_point(scale), shop)
    assert summary_of(outcome.findings) >= {("invalid-data-point", "payload_size_bytes", None, 1)}
    assert outcome.rejected == 1
    # Flagged (audit), or with no recorded value (value checks skipped): left as it came, never converted.
    for payload, options in (
        (exponential_point(scale), EngineOptions(audit=True)),
        (exponential_point(scale, flags=DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK), EngineOptions()),
    ):
        outcome = process_metrics(payload, shop, options=options)
        assert "invalid-data-point" in _slugs(outcome)
        forwarded = [metric.exponential_histogram.data_points for metric in all_metrics(outcome.request)]
        assert all(point.scale == scale and point.positive.offset == 0 for points in forwarded for point in points)


@pytest.mark.parametrize(("scale", "offset"), [(-10, 0), (20, 10 * 2**20)])
def test_scales_at_the_otlp_limits_convert(shop: CompiledContract, scale: int, offset: int) -> None:
    outcome = process_metrics(exponential_point(scale), shop)
    assert "invalid-data-point" not in _slugs(outcome)
    [metric] = all_metrics(outcome.request)
    assert metric.name == "payload_size_bytes"
    assert metric.exponential_histogram.data_points[0].positive.offset == offset  # KiBy -> By: 2**10


def test_a_bucket_offset_beyond_int32_after_conversion_is_an_invalid_data_point(shop: CompiledContract) -> None:
    outcome = process_metrics(exponential_point(20, offset=2**31 - 2**20), shop)
    (invalid,) = [finding for finding in outcome.findings if finding.rule.slug == "invalid-data-point"]
    assert "beyond the int32 range" in invalid.message


# --- validate: the same findings, never a traceback ---------------------------------------------------


def _validate_json(*args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("validate", *args, "--format", "json", "--today", "2026-11-22")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def test_validate_reports_out_of_range_values_as_findings(tmp_path: Path) -> None:
    paths = []
    for index, case in enumerate(OUT_OF_RANGE.values()):
        path = tmp_path / f"capture-{index}.pb"
        path.write_bytes(case.payload)
        paths.append(str(path))
    code, report, _ = _validate_json("-c", "contracts/ecommerce.yaml", *paths)
    assert code == 1
    rules = {finding["rule"] for finding in report["findings"]}
    assert {case.rule for case in OUT_OF_RANGE.values()} | {"forbidden-attribute"} <= rules
    assert report["summary"]["rejected_data_points"] == sum(case.rejected for case in OUT_OF_RANGE.values())


def test_validate_of_a_clean_then_a_spliced_capture_finds_the_forbidden_attribute(
    tmp_path: Path, shop_path: Path
) -> None:
    clean = orders([{"seq": "1"}])
    (tmp_path / "1-clean.pb").write_bytes(metrics_request(clean).SerializeToString())
    (tmp_path / "2-spliced.pb").write_bytes(spliced_metric(clean, orders([{"user.id": "u-1"}]), between="gauge"))
    code, report, _ = _validate_json("-c", str(shop_path), str(tmp_path / "1-clean.pb"), str(tmp_path / "2-spliced.pb"))
    assert code == 1
    assert [(f["rule"], f["attribute"], f["count"]) for f in report["findings"]] == [
        ("forbidden-attribute", "user.id", 1)
    ]


def test_validate_of_an_exponential_scale_bomb_answers_with_a_finding(tmp_path: Path, shop_path: Path) -> None:
    path = tmp_path / "bomb.pb"
    path.write_bytes(exponential_point(-(2**31)))
    code, report, _ = _validate_json("-c", str(shop_path), str(path))
    assert code == 1
    assert "invalid-data-point" in {finding["rule"] for finding in report["findings"]}


def _failing_engine(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected engine bug")


def test_validate_names_the_file_and_the_failure_when_the_engine_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug can no longer be produced by input: one is injected where the pipeline calls the engine."""
    path = tmp_path / "capture.pb"
    path.write_bytes(metrics_request(orders([{"seq": "1"}])).SerializeToString())
    monkeypatch.setattr("otel_contract.pipeline.process_signal", _failing_engine)
    code = main(["validate", "-c", str(CONTRACTS / "ecommerce.yaml"), str(path), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"otel-contract: error: {path}: the contract engine failed on this request"
        " (RuntimeError: injected engine bug); a bug"
    ]


# --- the sidecar: what validate reports is what it does -----------------------------------------------


def _forwarded(sink: OtlpSink) -> list[ExportMetricsServiceRequest]:
    return [ExportMetricsServiceRequest.FromString(r.payload) for r in sink.requests if r.signal is Signal.METRICS]


def _forwarded_points(sink: OtlpSink) -> list[dict[str, Any]]:
    return [
        point_attrs(point)
        for request in _forwarded(sink)
        for metric in all_metrics(request)
        for point in getattr(metric, metric.WhichOneof("data") or "gauge").data_points
    ]


def test_the_sidecar_normalizes_and_counts_out_of_range_values(otlp_sink: OtlpSink) -> None:
    with running(config_for(CONTRACTS / "ecommerce.yaml", otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        for name, case in OUT_OF_RANGE.items():
            sent = len(otlp_sink.requests)
            raw, call = client.export(Signal.METRICS, case.payload)
            assert call.code() is grpc.StatusCode.OK
            response = ExportMetricsServiceResponse.FromString(raw)
            assert response.partial_success.rejected_data_points == case.rejected, name
            assert "forbidden-attribute" in response.partial_success.error_message
            assert otlp_sink.wait_for(lambda sent=sent: len(otlp_sink.requests) > sent)  # type: ignore[misc]
            _assert_normalized(_forwarded(otlp_sink)[-1])
        client.close()


def test_the_sidecar_rejects_a_spliced_oneof_after_a_clean_request(shop_path: Path, otlp_sink: OtlpSink) -> None:
    clean = orders([{"seq": "1"}])
    first = gauge("queue_depth", [({"queue": "a"}, 1.0)], unit="{item}")
    second = gauge("queue_depth", [({"queue": "b"}, 1.0)], unit="{item}")
    with running(config_for(shop_path, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, metrics_request(clean, first).SerializeToString())
        assert ExportMetricsServiceResponse.FromString(raw) == ExportMetricsServiceResponse()
        responses = [
            ExportMetricsServiceResponse.FromString(client.export(Signal.METRICS, payload)[0]).partial_success
            for payload in (
                spliced_metric(clean, orders([{"user.id": "u-1"}]), between="gauge"),
                spliced_metric(first, second, between="sum"),
            )
        ]
        client.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 2)
    assert [response.rejected_data_points for response in responses] == [1, 1]
    assert "forbidden-attribute on orders_total" in responses[0].error_message
    assert "cardinality on queue_depth" in responses[1].error_message
    assert _forwarded_points(otlp_sink) == [{"seq": "1"}, {"queue": "a"}]


def test_the_sidecar_rejects_an_exponential_scale_bomb(shop_path: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(shop_path, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, exponential_point(-(2**31)))
        client.close()
    response = ExportMetricsServiceResponse.FromString(raw).partial_success
    assert response.rejected_data_points == 1
    assert "invalid-data-point on payload_size_bytes" in response.error_message
    assert "outside the OTLP range -10..20" in response.error_message


# --- on_engine_error: a genuine engine bug ----------------------------------------------------------


def _metrics_text(sidecar: Any) -> str:
    return http_get(f"http://{sidecar.status.address}/metrics")[2].decode()


def _with_failing_engine(sidecar: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug can no longer be produced by input: the processor's engine call is made to raise."""
    monkeypatch.setattr(sidecar.processor, "process", _failing_engine)


def test_an_engine_failure_is_refused_with_internal_logged_and_counted(
    shop_path: Path, otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    payload = metrics_request(orders([{"user.id": "u-1"}])).SerializeToString()
    with running(config_for(shop_path, otlp_sink.endpoint)) as sidecar, caplog.at_level(logging.ERROR):
        _with_failing_engine(sidecar, monkeypatch)
        client = RawClient(sidecar.endpoint)
        with pytest.raises(grpc.RpcError) as caught:
            client.export(Signal.METRICS, payload)
        client.close()
        text = _metrics_text(sidecar)
    assert caught.value.code() is grpc.StatusCode.INTERNAL  # not retryable by OTLP clients
    assert "(RuntimeError: injected engine bug)" in str(caught.value.details())
    assert otlp_sink.requests == []
    (record,) = [r for r in caplog.records if r.name == "otel_contract.receiver"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "RuntimeError: injected engine bug" in record.getMessage()
    assert 'otel_contract_refused_requests_total{protocol="grpc",reason="engine_error",signal="metrics"} 1.0' in text
    assert 'otel_contract_engine_errors_total{action="reject",signal="metrics"} 1.0' in text


def test_on_engine_error_forward_forwards_unchanged_but_still_logs_and_counts(
    shop_path: Path, otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    payload = metrics_request(orders([{"user.id": "u-1"}])).SerializeToString()
    config = config_for(shop_path, otlp_sink.endpoint)
    config = replace(config, receiver=replace(config.receiver, on_engine_error=OnEngineError.FORWARD))
    with running(config) as sidecar, caplog.at_level(logging.ERROR):
        _with_failing_engine(sidecar, monkeypatch)
        client = RawClient(sidecar.endpoint)
        raw, call = client.export(Signal.METRICS, payload)
        client.close()
        assert otlp_sink.wait_for(lambda: len(otlp_sink.requests) == 1)
        text = _metrics_text(sidecar)
    assert call.code() is grpc.StatusCode.OK and raw == b""
    assert otlp_sink.requests[0].payload == payload
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert 'otel_contract_engine_errors_total{action="forward",signal="metrics"} 1.0' in text
    assert 'reason="engine_error"' not in text
