"""The sidecar and the CLI run one pipeline: ``normalize`` writes what the sidecar forwards, compat
shims' series included, and ``validate`` counts what the sidecar counts and rejects."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from otel_contract.inputs.otlp import read_captures, write_capture
from otel_contract.otlp import Signal
from tests.conftest import CONTRACTS, run_cli
from tests.otlp_builders import counter, done_when_request, metrics_request
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import RawClient, config_for, http_get, running

ECOMMERCE = CONTRACTS / "ecommerce.yaml"
_SHIM_SERIES = "node_disk_io_time_seconds_total"
_NODE = {
    "service.name": "node",
    "service.namespace": "ecommerce-prod",
    "service.instance.id": "host-1:9100",
    "k8s.pod.name": "node-exporter-abc",
    "k8s.namespace.name": "monitoring",
}
_T0_NS = 1_700_000_000 * 10**9


def _disk_request(step: int) -> ExportMetricsServiceRequest:
    """A node's cumulative disk counters at ``step`` x 10 s: what the ecommerce contract's shim reads."""
    points = [({"device": "sda"}, 1.5 * (step + 1)), ({"device": "sdb"}, 3.0 * (step + 1))]
    request = metrics_request(counter("system_disk_io_time_seconds_total", points, unit="s"), resource=_NODE)
    for point in request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points:
        point.start_time_unix_nano = _T0_NS
        point.time_unix_nano = _T0_NS + step * 10 * 10**9
    return request


def _requests(count: int) -> list[ExportMetricsServiceRequest]:
    """Each: a legacy name in ms with legacy attribute keys, a point the contract rejects (no
    http.method), an unknown metric, a resource missing service.namespace, and the shim's input."""
    requests = []
    for step in range(count):
        request = done_when_request()
        request.MergeFrom(_disk_request(step))
        requests.append(request)
    return requests


def _capture(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "requests.jsonl"
    write_capture(path, _requests(count))
    return path


def _normalized(capture: Path, tmp_path: Path) -> list[ExportMetricsServiceRequest]:
    out = tmp_path / "normalized.jsonl"
    result = run_cli("normalize", "-c", str(ECOMMERCE), str(capture), "-o", str(out))
    assert result.returncode == 0, result.stderr
    requests = []
    for capture_read in read_captures(str(out)):
        assert isinstance(capture_read.request, ExportMetricsServiceRequest)
        requests.append(capture_read.request)
    return requests


def _metric_names(request: ExportMetricsServiceRequest) -> set[str]:
    return {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def _resource_metrics(requests: list[ExportMetricsServiceRequest]) -> list[bytes]:
    """Every resource's metrics, in a form that ignores how requests were batched and their order."""
    return sorted(rm.SerializeToString(deterministic=True) for request in requests for rm in request.resource_metrics)


def test_normalize_writes_the_compat_shims_series_from_the_second_request_on(tmp_path: Path) -> None:
    written = _normalized(_capture(tmp_path, 3), tmp_path)

    assert len(written) == 3
    # A rate needs two samples: the first request gives none, each later one gives the legacy series.
    assert [_SHIM_SERIES in _metric_names(request) for request in written] == [False, True, True]
    assert "system_disk_io_time_seconds_total" in _metric_names(written[0])


def _sidecar_run(capture: Path, sink: OtlpSink, expected_points: int) -> tuple[list[int], str]:
    """Send the capture's requests through a running sidecar; its partial_success counts and telemetry."""
    requests = [c.request for c in read_captures(str(capture))]
    rejected = []
    with running(config_for(ECOMMERCE, sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        try:
            for request in requests:
                answer, _ = client.export(Signal.METRICS, request.SerializeToString())
                rejected.append(ExportMetricsServiceResponse.FromString(answer).partial_success.rejected_data_points)
        finally:
            client.close()
        assert sink.wait_for(lambda: sink.items(Signal.METRICS) >= expected_points)
        assert sidecar.status is not None
        telemetry = http_get(f"http://{sidecar.status.address}/metrics")[2].decode()
    return rejected, telemetry


def _telemetry_counts(telemetry: str) -> tuple[dict[str, float], Counter[str]]:
    """Data points received and rejected, and finding counts by rule, as the sidecar's /metrics says."""
    totals: dict[str, float] = {}
    by_rule: Counter[str] = Counter()
    for family in text_string_to_metric_families(telemetry):
        for sample in family.samples:
            if sample.labels.get("signal") != "metrics":
                continue
            if sample.name == "otel_contract_findings_total":
                by_rule[sample.labels["rule"]] += int(sample.value)
            elif sample.name in (
                "otel_contract_received_data_points_total",
                "otel_contract_rejected_data_points_total",
            ):
                totals[sample.name] = sample.value
    return totals, by_rule


def test_the_sidecar_forwards_and_counts_what_normalize_writes_and_validate_reports(
    tmp_path: Path, otlp_sink: OtlpSink
) -> None:
    capture = _capture(tmp_path, 3)
    written = _normalized(capture, tmp_path)
    report = run_cli("validate", "-c", str(ECOMMERCE), str(capture), "--format", "json", "--fail-on", "none")
    assert report.returncode == 0, report.stderr
    validated = json.loads(report.stdout)
    written_points = sum(
        len(getattr(m, m.WhichOneof("data")).data_points)
        for request in written
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )

    rejected, telemetry = _sidecar_run(capture, otlp_sink, written_points)

    forwarded = [ExportMetricsServiceRequest.FromString(r.payload) for r in otlp_sink.requests]
    assert _resource_metrics(forwarded) == _resource_metrics(written)
    assert any(_SHIM_SERIES in _metric_names(request) for request in forwarded)
    assert sum(rejected) == validated["summary"]["rejected_data_points"] > 0
    totals, by_rule = _telemetry_counts(telemetry)
    assert totals["otel_contract_received_data_points_total"] == validated["summary"]["data_points"]
    assert totals["otel_contract_rejected_data_points_total"] == sum(rejected)
    reported: Counter[str] = Counter()
    for finding in validated["findings"]:
        if finding["rule"] != "invariant":  # judged over a whole run: the CLI's step after the pipeline
            reported[finding["rule"]] += finding["count"]
    assert by_rule == reported
    assert {"deprecated-metric", "missing-attribute", "unknown-metric"} <= set(reported)
