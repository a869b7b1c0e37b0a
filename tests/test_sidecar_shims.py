"""Compat shims in the sidecar: a real SDK app sends the canonical metric, the sink gets the canonical
series and the shim's legacy series; expiry and absent input are counted and logged."""

from __future__ import annotations

import logging
import math
from datetime import date
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otel_contract.engine import process_metrics
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal
from otel_contract.shims import compile_shims
from otel_contract.shims.runtime import ShimRuntime
from tests.conftest import CONTRACTS
from tests.otlp_builders import counter, metrics_request
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import RawClient, config_for, http_get, running, wait_until

_RESOURCE = {
    "service.name": "node",
    "service.namespace": "ecommerce-prod",
    "service.instance.id": "host-1:9100",
    "k8s.pod.name": "node-exporter-abc",
    "k8s.namespace.name": "monitoring",
}


def _metrics(sink: OtlpSink) -> list[tuple[dict[str, str], object]]:
    """(resource attributes, metric) of every metric the sink received."""
    found = []
    for received in sink.requests:
        if received.signal is Signal.METRICS:
            for rm in ExportMetricsServiceRequest.FromString(received.payload).resource_metrics:
                resource = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
                found += [(resource, metric) for sm in rm.scope_metrics for metric in sm.metrics]
    return found


def _names(sink: OtlpSink) -> set[str]:
    return {metric.name for _, metric in _metrics(sink)}  # type: ignore[attr-defined]


def test_sdk_app_sends_the_new_metric_and_the_sink_gets_the_legacy_series_beside_it(otlp_sink: OtlpSink) -> None:
    contract = CONTRACTS / "ecommerce.yaml"
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        exporter = OTLPMetricExporter(endpoint=sidecar.endpoint, insecure=True)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        meters = MeterProvider(resource=Resource.create(_RESOURCE), metric_readers=[reader])
        io_time = meters.get_meter("hostmetrics").create_counter("system_disk_io_time_seconds_total", unit="s")
        for step in range(3):  # three exports: a rate needs two samples of a series
            io_time.add(1.5, {"device": "sda"})
            io_time.add(3.0, {"device": "sdb"})
            assert meters.force_flush(timeout_millis=10_000)
            assert otlp_sink.wait_for(lambda step=step: otlp_sink.items(Signal.METRICS) >= 2 * (step + 1))
        meters.shutdown()
        assert sidecar.status is not None
        telemetry = http_get(f"http://{sidecar.status.address}/metrics")[2].decode()

    assert {"system_disk_io_time_seconds_total", "node_disk_io_time_seconds_total"} <= _names(otlp_sink)
    legacy = [(res, m) for res, m in _metrics(otlp_sink) if m.name == "node_disk_io_time_seconds_total"]  # type: ignore[attr-defined]
    # The first export gives one sample per series: no rate yet; each later export gives one point per device.
    assert len(legacy) >= 2
    for resource, metric in legacy:
        assert metric.WhichOneof("data") == "gauge" and metric.unit == "1"  # type: ignore[attr-defined]
        # sum by (instance, device): instance goes back into the resource, device stays an attribute;
        # job was aggregated away, so no service.name; what else every input shares stays.
        assert resource["service.instance.id"] == "host-1:9100"
        assert "service.name" not in resource and "service.namespace" not in resource
        assert resource["k8s.pod.name"] == _RESOURCE["k8s.pod.name"]
        points = {p.attributes[0].value.string_value: p.as_double for p in metric.gauge.data_points}  # type: ignore[attr-defined]
        assert set(points) == {"sda", "sdb"}
        assert all(math.isfinite(v) and v > 0 for v in points.values())
        assert points["sdb"] == pytest.approx(2 * points["sda"], rel=1e-9)  # sdb grows twice as fast
    assert "otel_contract_shim_data_points_total" in telemetry
    assert 'rule="expired-shim"' not in telemetry
    # What the sidecar forwarded validates clean: the shim's series are the contract's own output.
    ecommerce = load_contract(contract)
    for received in otlp_sink.requests:
        outcome = process_metrics(received.payload, ecommerce)
        assert [f for f in outcome.findings if f.metric == "node_disk_io_time_seconds_total"] == []
        assert not outcome.changed


_EXPIRED = """\
contract: disks
version: 1.0.0
metrics:
  - name: system_disk_io_time_seconds_total
    type: sum
    unit: s
    monotonic: true
compat:
  - record: node_disk_io_time_seconds_total
    expr: system_disk_io_time_seconds_total
    expires: 2020-01-31
    owner: sre-platform
"""


def _io_request(value: float, seconds: int) -> bytes:
    point = ({"device": "sda"}, value)
    request = metrics_request(
        counter("system_disk_io_time_seconds_total", [point], unit="s"), resource={"service.name": "node"}
    )
    request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].time_unix_nano = seconds * 10**9
    return request.SerializeToString()


def test_an_expired_shim_keeps_emitting_and_is_counted_and_logged(
    tmp_path: Path, otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "disks.yaml"
    path.write_text(_EXPIRED, "utf-8")
    caplog.set_level(logging.WARNING, logger="otel_contract.shims")
    with running(config_for(path, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        for step in range(3):
            response, _ = client.export(Signal.METRICS, _io_request(10.0 * (step + 1), 1_700_000_000 + 60 * step))
            assert response == b""  # the client is not told about the sidecar's own shims
        client.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 6)
        assert sidecar.status is not None
        address = sidecar.status.address
        assert wait_until(lambda: b'rule="expired-shim"' in http_get(f"http://{address}/metrics")[2])
        telemetry = http_get(f"http://{address}/metrics")[2].decode()

    legacy = [m for _, m in _metrics(otlp_sink) if m.name == "node_disk_io_time_seconds_total"]  # type: ignore[attr-defined]
    # A plain selector of a counter stays a cumulative monotonic sum with the input's unit.
    assert [m.sum.data_points[0].as_double for m in legacy] == [10.0, 20.0, 30.0]  # type: ignore[attr-defined]
    assert all(m.sum.is_monotonic and m.unit == "s" for m in legacy)  # type: ignore[attr-defined]
    assert 'otel_contract_findings_total{level="error",rule="expired-shim",signal="metrics"} 3.0' in telemetry
    assert "otel_contract_shim_data_points_total 3.0" in telemetry
    warnings = [r.getMessage() for r in caplog.records if "expired on 2020-01-31" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one warning for three evaluations


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_shim_whose_input_stops_arriving_is_reported_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    contract = load_contract(CONTRACTS / "ecommerce.yaml")
    clock = _Clock()
    runtime = ShimRuntime(
        compile_shims(contract.contract),
        "ecommerce@1.4.0",
        clock=clock,
        today=lambda: date(2026, 11, 22),
        warn_every=600,
        input_timeout=300,
    )
    unrelated = metrics_request(counter("orders_total", [({}, 1.0)]), resource={"service.name": "shop"})
    caplog.set_level(logging.WARNING, logger="otel_contract.shims")

    assert runtime.process(unrelated).findings == ()  # within the timeout since start
    clock.now += 301
    (finding,) = runtime.process(unrelated).findings
    assert finding.rule.slug == "shim-input-absent" and finding.metric == "node_disk_io_time_seconds_total"
    assert "system_disk_io_time_seconds_total did not arrive in the last 301s" in finding.message
    clock.now += 10
    assert runtime.process(unrelated).findings == ()  # rate-limited
    clock.now += 600
    assert [f.rule.slug for f in runtime.process(unrelated).findings] == ["shim-input-absent"]

    fed = metrics_request(
        counter("system_disk_io_time_seconds_total", [({"device": "sda"}, 5.0)], unit="s"),
        resource={"service.name": "node"},
    )
    clock.now += 600
    assert runtime.process(fed).findings == ()  # the input is back
    assert len([r for r in caplog.records if "did not arrive" in r.getMessage()]) == 2
