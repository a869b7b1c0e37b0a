"""The sidecar end to end, in this process: a real gRPC receiver on loopback, the real OpenTelemetry SDK
as the client, a real gRPC sink downstream."""

from __future__ import annotations

import gzip
import os
import random
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_contract.engine import process_metrics
from otel_contract.inputs.prometheus import parse_exposition
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal
from otel_contract.server.sidecar import Sidecar
from tests.conftest import CONTRACTS
from tests.otlp_builders import counter, metrics_request
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import (
    RawClient,
    config_for,
    health_json,
    http_get,
    running,
    shop_contract,
    wait_until,
)
from tests.tls_certs import Certs, certs_fixture  # noqa: F401 - the fixture


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    return shop_contract(tmp_path / "shop.yaml")


def _metric_names(sink: OtlpSink) -> set[str]:
    names = set()
    for received in sink.requests:
        if received.signal is Signal.METRICS:
            request = ExportMetricsServiceRequest.FromString(received.payload)
            names |= {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    return names


def _orders(points: list[tuple[dict[str, Any], float]]) -> bytes:
    request = metrics_request(counter("orders_total", points, unit="{order}"), resource={"service.name": "shop"})
    return request.SerializeToString()


class _RecordingStub:
    """Wraps the SDK exporter's stub to keep the responses it got (the SDK itself drops them)."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub
        self.responses: list[Any] = []

    def Export(self, request: Any, metadata: Any = None, timeout: float | None = None) -> Any:
        response, _call = self._stub.Export.with_call(request, metadata=metadata, timeout=timeout)
        self.responses.append(response)
        return response


def test_sdk_app_sends_legacy_metrics_and_spans_and_the_sink_gets_them_normalized(
    contract: Path, otlp_sink: OtlpSink
) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        exporter = OTLPMetricExporter(endpoint=sidecar.endpoint, insecure=True)
        recording = _RecordingStub(exporter._client)
        exporter._client = recording
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        resource = Resource.create({"service.name": "shop"})
        meters = MeterProvider(resource=resource, metric_readers=[reader])
        meter = meters.get_meter("shop-app")
        latency = meter.create_histogram("http.server.duration", unit="ms")
        latency.record(250, {"http.method": "GET", "status_code": "200"})
        latency.record(1250, {"http.method": "POST", "status_code": "503"})
        orders = meter.create_counter("shop.orders", unit="{order}")
        orders.add(3, {"seq": "a"})
        orders.add(1, {"seq": "b", "user.id": "u-42"})  # forbidden: rejected
        assert meters.force_flush(timeout_millis=10_000)

        spans = TracerProvider(resource=resource)
        spans.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sidecar.endpoint, insecure=True)))
        with spans.get_tracer("shop-app").start_as_current_span("GET /cart") as span:
            span.set_attribute("status_code", "404")
        spans.shutdown()

        assert otlp_sink.wait_for(lambda: _metric_names(otlp_sink) and otlp_sink.items(Signal.TRACES) == 1)
        meters.shutdown()

    assert _metric_names(otlp_sink) == {"http_server_duration_seconds", "orders_total"}
    histogram_points = []
    order_points = []
    # The first export; MeterProvider.shutdown() exports the cumulative state once more.
    first = next(r for r in otlp_sink.requests if r.signal is Signal.METRICS)
    for metric in ExportMetricsServiceRequest.FromString(first.payload).resource_metrics[0].scope_metrics[0].metrics:
        if metric.name == "http_server_duration_seconds":
            assert metric.unit == "s"
            histogram_points += list(metric.histogram.data_points)
        else:
            order_points += list(metric.sum.data_points)
    assert sorted(p.sum for p in histogram_points) == [0.25, 1.25]  # ms -> s
    for point in histogram_points:
        status = {kv.key: kv.value for kv in point.attributes}["http.status_code"]
        assert status.WhichOneof("value") == "int_value"  # renamed and coerced
    assert [{kv.key for kv in p.attributes} for p in order_points] == [{"seq"}]

    response = recording.responses[0]
    assert response.partial_success.rejected_data_points == 1
    assert "forbidden-attribute" in response.partial_success.error_message
    assert "orders_total" in response.partial_success.error_message

    (trace_request,) = [r for r in otlp_sink.requests if r.signal is Signal.TRACES]
    span_attributes = ExportTraceServiceRequest.FromString(trace_request.payload).resource_spans[0]
    attributes = {kv.key: kv.value for kv in span_attributes.scope_spans[0].spans[0].attributes}
    assert attributes["http.status_code"].int_value == 404


def test_the_file_exporter_follows_its_path_when_the_file_is_deleted_or_rotated(
    contract: Path, otlp_sink: OtlpSink, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "forwarded.jsonl"
    rotated = tmp_path / "out" / "forwarded.jsonl.1"
    with running(config_for(contract, otlp_sink.endpoint, export_file=str(out))) as sidecar:
        client = RawClient(sidecar.endpoint)

        def forwarded_to_the_path(tag: str) -> bool:
            client.export(Signal.METRICS, _orders([({"seq": tag}, 1.0)]))
            return wait_until(lambda: out.exists() and f'"{tag}"' in out.read_text("utf-8"))

        assert forwarded_to_the_path("first")
        out.unlink()  # as between two runs of the demo
        assert forwarded_to_the_path("second")
        out.rename(rotated)  # as logrotate does
        assert forwarded_to_the_path("third")
        assert '"second"' in rotated.read_text("utf-8") and '"third"' not in rotated.read_text("utf-8")
        shutil.rmtree(out.parent)  # rm -rf out
        assert forwarded_to_the_path("fourth")
        client.close()
    assert [tag for tag in ("first", "second", "third", "fourth") if f'"{tag}"' in out.read_text("utf-8")] == ["fourth"]


def test_a_request_that_needs_no_change_is_forwarded_as_the_bytes_that_arrived(
    contract: Path, otlp_sink: OtlpSink
) -> None:
    payload = _orders([({"seq": "1"}, 1.0), ({"seq": "2"}, 2.0)])
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        response, _ = client.export(Signal.METRICS, payload)
        client.close()
        assert ExportMetricsServiceResponse.FromString(response) == ExportMetricsServiceResponse()
        assert otlp_sink.wait_for(lambda: len(otlp_sink.requests) == 1)
    assert otlp_sink.requests[0].payload == payload


def test_flagged_only_is_ok_with_zero_rejected_and_a_warning(contract: Path, otlp_sink: OtlpSink) -> None:
    payload = metrics_request(
        counter("shop.orders", [({"seq": "1"}, 1.0)], unit="{order}"), resource={"service.name": "shop"}
    ).SerializeToString()
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, payload)
        client.close()
    response = ExportMetricsServiceResponse.FromString(raw)
    assert response.partial_success.rejected_data_points == 0
    assert response.partial_success.error_message.startswith("warning: contract shop@1.0.0 accepted")
    assert "deprecated-metric" in response.partial_success.error_message


def test_a_huge_name_in_the_request_does_not_come_back_in_full(contract: Path, otlp_sink: OtlpSink) -> None:
    # The findings quote the request's names; five of them must not make an answer the size of the request.
    names = [f"{i}{'x' * 400_000}" for i in range(6)]
    payload = metrics_request(
        *(counter(name, [({"seq": "1"}, 1.0)]) for name in names), resource={"service.name": "shop"}
    ).SerializeToString()
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, payload)
        client.close()
    message = ExportMetricsServiceResponse.FromString(raw).partial_success.error_message
    assert "unknown-metric" in message
    assert "more characters)" in message
    assert len(raw) < 4096


def test_audit_mode_forwards_what_enforce_rejects(contract: Path, otlp_sink: OtlpSink) -> None:
    payload = _orders([({"user.id": "u-1"}, 1.0)])
    with running(config_for(contract, otlp_sink.endpoint, audit=True)) as sidecar:
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, payload)
        client.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)
    response = ExportMetricsServiceResponse.FromString(raw)
    assert response.partial_success.rejected_data_points == 0
    assert "forbidden-attribute" in response.partial_success.error_message


def _health(endpoint: str) -> int:
    channel = grpc.insecure_channel(endpoint)
    try:
        status: int = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        return status
    finally:
        channel.close()


def _truncated() -> bytes:
    return _orders([({"seq": str(i)}, float(i)) for i in range(20)])[:-7]


def _invalid_utf8() -> bytes:
    valid = _orders([({"seq": "XY"}, 1.0)])
    return valid.replace(b"XY", b"\xff\xfe")


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("random bytes", random.Random(7).randbytes(4096)),
        ("truncated protobuf", _truncated()),
        ("invalid UTF-8 in a string", _invalid_utf8()),
        ("a field of the wrong wire type", b"\x0a\x05\x08\x96\x01\x10\x01" + b"\x0b"),
    ],
)
def test_malformed_requests_get_invalid_argument_and_the_server_keeps_serving(
    name: str, payload: bytes, contract: Path, otlp_sink: OtlpSink
) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        with pytest.raises(grpc.RpcError) as caught:
            client.export(Signal.METRICS, payload)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, name
        assert "not an OTLP metrics request" in caught.value.details()
        good, _ = client.export(Signal.METRICS, _orders([({"seq": "1"}, 1.0)]))
        assert ExportMetricsServiceResponse.FromString(good) == ExportMetricsServiceResponse()
        assert _health(sidecar.endpoint) == health_pb2.HealthCheckResponse.SERVING
        client.close()


def test_unknown_enum_values_and_nan_get_a_clean_answer(contract: Path, otlp_sink: OtlpSink) -> None:
    request = ExportMetricsServiceRequest.FromString(_orders([({"seq": "1"}, float("nan")), ({"seq": "2"}, 1.0)]))
    request.resource_metrics[0].scope_metrics[0].metrics[0].sum.aggregation_temporality = 42  # type: ignore[assignment]
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, request.SerializeToString())
        client.close()
        assert _health(sidecar.endpoint) == health_pb2.HealthCheckResponse.SERVING
        # The contract sets no temporality for orders_total: the unknown value travels on, as protobuf keeps it.
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)
    response = ExportMetricsServiceResponse.FromString(raw)
    assert response.partial_success.rejected_data_points == 1
    assert "invalid-data-point" in response.partial_success.error_message
    forwarded = ExportMetricsServiceRequest.FromString(otlp_sink.requests[0].payload)
    assert forwarded.resource_metrics[0].scope_metrics[0].metrics[0].sum.aggregation_temporality == 42


def test_oversized_request_gets_resource_exhausted_naming_the_limit(tmp_path: Path, otlp_sink: OtlpSink) -> None:
    contract = shop_contract(tmp_path / "shop.yaml")
    config = config_for(contract, otlp_sink.endpoint)
    from dataclasses import replace

    config = replace(config, receiver=replace(config.receiver, max_recv_msg_size=64 * 1024))
    big = _orders([({"seq": f"{i:06d}" * 20}, float(i)) for i in range(1000)])
    assert len(big) > 64 * 1024
    with running(config) as sidecar:
        client = RawClient(sidecar.endpoint)
        with pytest.raises(grpc.RpcError) as caught:
            client.export(Signal.METRICS, big)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "0.0625 MiB" in caught.value.details()
        assert "max_recv_msg_size_mib" in caught.value.details()
        client.export(Signal.METRICS, _orders([({"seq": "1"}, 1.0)]))
        client.close()


def test_gzip_requests_are_accepted(contract: Path, otlp_sink: OtlpSink) -> None:
    payload = _orders([({"seq": "1"}, 1.0)])
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        channel = grpc.insecure_channel(sidecar.endpoint, compression=grpc.Compression.Gzip)
        method = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
        method(payload, timeout=10)
        channel.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)
    assert otlp_sink.requests[0].payload == payload
    assert gzip.decompress(gzip.compress(payload)) == payload


def _retry_delay(error: grpc.RpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    raise AssertionError("no RetryInfo in the status details")


def test_a_full_queue_answers_unavailable_with_retry_info(contract: Path) -> None:
    sink = OtlpSink().start()
    sink.stop()  # the downstream is down: nothing leaves the queue
    config = config_for(contract, sink.endpoint)
    from dataclasses import replace

    config = replace(config, exporter=replace(config.exporter, queue=replace(config.exporter.queue, queue_size=2)))
    with running(config) as sidecar:
        client = RawClient(sidecar.endpoint)
        answered = []
        refused: list[grpc.RpcError] = []
        for index in range(6):
            try:
                client.export(Signal.METRICS, _orders([({"seq": str(index)}, 1.0)]))
                answered.append(index)
            except grpc.RpcError as error:
                refused.append(error)
        client.close()
        assert len(answered) == 2 and len(refused) == 4
        for error in refused:
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            assert "queue is full" in error.details()
            assert _retry_delay(error) > 0
            trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
            assert "google.rpc.retryinfo-bin" in trailers  # where the Python SDK looks
        ready, reason = sidecar.ready()
        assert not ready and "queue" in reason
        status, _, body = http_get(f"http://{sidecar.status.address}/readyz")  # type: ignore[union-attr]
        assert status == 503 and b"queue" in body


def test_shutting_down_answers_unavailable_with_retry_info(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        assert sidecar.intake is not None
        sidecar.intake.stop_accepting()
        client = RawClient(sidecar.endpoint)
        with pytest.raises(grpc.RpcError) as caught:
            client.export(Signal.METRICS, _orders([({"seq": "1"}, 1.0)]))
        client.close()
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in caught.value.details()
    assert _retry_delay(caught.value) > 0


def test_the_sdk_retries_a_refused_request_until_it_is_queued(contract: Path) -> None:
    """The Python SDK reads the RetryInfo we send, waits, and its retry is accepted once there is room."""
    sink = OtlpSink().start()
    sink.stop()
    config = config_for(contract, sink.endpoint)
    from dataclasses import replace

    config = replace(config, exporter=replace(config.exporter, queue=replace(config.exporter.queue, queue_size=1)))
    with running(config) as sidecar:
        client = RawClient(sidecar.endpoint)
        client.export(Signal.METRICS, _orders([({"seq": "first"}, 1.0)]))  # fills the queue
        client.close()
        exporter = OTLPMetricExporter(endpoint=sidecar.endpoint, insecure=True, timeout=20)
        meters = MeterProvider(
            resource=Resource.create({"service.name": "shop"}),
            metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)],
        )
        meters.get_meter("app").create_counter("orders_total", unit="{order}").add(1, {"seq": "sdk"})
        sink.start()  # the queue drains, making room for the SDK's retry
        assert meters.force_flush(timeout_millis=20_000)
        assert sink.wait_for(lambda: sink.items(Signal.METRICS) == 2)
        meters.shutdown()
    sink.stop()


def test_health_and_self_telemetry_obey_the_self_contract(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        client.export(Signal.METRICS, _orders([({"seq": "1"}, 1.0), ({"user.id": "u"}, 1.0)]))
        with pytest.raises(grpc.RpcError):
            client.export(Signal.METRICS, b"\xff\xff")
        client.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)
        assert sidecar.status is not None
        address = sidecar.status.address
        assert wait_until(lambda: b'outcome="success"' in http_get(f"http://{address}/metrics")[2])
        status, headers, body = http_get(f"http://{address}/metrics")
        health = health_json(address)
        assert _health(sidecar.endpoint) == health_pb2.HealthCheckResponse.SERVING
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert 'otel_contract_received_data_points_total{signal="metrics"} 2.0' in text
    assert 'otel_contract_rejected_data_points_total{signal="metrics"} 1.0' in text
    assert 'otel_contract_contract_info{contract="shop",version="1.0.0"} 1.0' in text
    assert 'reason="malformed"' in text
    assert health["contract"] == "shop@1.0.0" and health["status"] == "ok"

    self_contract = load_contract(CONTRACTS / "otel-contract-self.yaml")
    outcome = process_metrics(parse_exposition(text, "/metrics", service_name="otel-contract"), self_contract)
    assert outcome.findings == ()
    assert outcome.items > 10


def test_healthz_answers_while_the_receivers_are_still_starting(
    contract: Path, otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The status endpoint serves from the start (/readyz says "starting"); a probe that lands while the
    # HTTP receiver binds once got a 500 because /healthz asked an unstarted server for its address.
    from otel_contract.server import http_receiver

    probes: list[dict[str, Any]] = []
    sidecar = Sidecar(config_for(contract, otlp_sink.endpoint), env={})
    original_start = http_receiver.HttpReceiver.start

    def start_after_a_probe(self: http_receiver.HttpReceiver) -> None:
        assert sidecar.status is not None
        probes.append(health_json(sidecar.status.address))
        original_start(self)

    monkeypatch.setattr(http_receiver.HttpReceiver, "start", start_after_a_probe)
    sidecar.start()
    try:
        assert probes and probes[0]["receivers"]["http"] is None
        assert sidecar.status is not None
        assert health_json(sidecar.status.address)["receivers"]["http"] == sidecar.http_endpoint
    finally:
        sidecar.shutdown()


def test_hot_reload_takes_a_valid_contract_and_refuses_an_invalid_one(tmp_path: Path, otlp_sink: OtlpSink) -> None:
    path = shop_contract(tmp_path / "shop.yaml")
    with running(config_for(path, otlp_sink.endpoint)) as sidecar:
        assert sidecar.status is not None
        address = sidecar.status.address
        shop_contract(path, version="1.1.0")
        assert wait_until(lambda: health_json(address)["contract"] == "shop@1.1.0")

        path.write_text("contract: shop\nversion: [not, valid\n", "utf-8")
        assert wait_until(lambda: b'result="failure"} 1.0' in http_get(f"http://{address}/metrics")[2])
        assert health_json(address)["contract"] == "shop@1.1.0"  # the old one stays in force
        client = RawClient(sidecar.endpoint)
        raw, _ = client.export(Signal.METRICS, _orders([({"user.id": "u"}, 1.0)]))
        client.close()
        assert "shop@1.1.0" in ExportMetricsServiceResponse.FromString(raw).partial_success.error_message
        text = http_get(f"http://{address}/metrics")[2].decode()
    assert 'otel_contract_contract_reloads_total{result="success"} 1.0' in text
    assert 'otel_contract_contract_info{contract="shop",version="1.1.0"} 1.0' in text
    assert 'version="1.0.0"' not in text


def test_hot_reload_refuses_a_pattern_re2_cannot_compile(
    tmp_path: Path, otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    path = shop_contract(tmp_path / "shop.yaml")
    with running(config_for(path, otlp_sink.endpoint)) as sidecar:
        assert sidecar.status is not None
        address = sidecar.status.address
        shop_contract(path, version="1.1.0", extra="naming: {metric_pattern: '^(?!legacy_)'}\n")
        assert wait_until(lambda: b'result="failure"} 1.0' in http_get(f"http://{address}/metrics")[2])
        assert health_json(address)["contract"] == "shop@1.0.0"  # the engine never sees the pattern
    [refused] = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert "shop.yaml:" in refused and "invalid perl operator: (?!" in refused and "\n" not in refused


def test_hot_reload_follows_a_configmap_symlink_swap(tmp_path: Path, otlp_sink: OtlpSink) -> None:
    """Kubernetes updates a mounted ConfigMap by pointing ``..data`` at a new directory."""
    mount = tmp_path / "mount"
    first = mount / "..2026_11_22_01"
    first.mkdir(parents=True)
    shop_contract(first / "contract.yaml", version="1.0.0")
    os.symlink(first.name, mount / "..data")
    os.symlink("..data/contract.yaml", mount / "contract.yaml")
    with running(config_for(mount / "contract.yaml", otlp_sink.endpoint)) as sidecar:
        assert sidecar.status is not None
        second = mount / "..2026_11_22_02"
        second.mkdir()
        shop_contract(second / "contract.yaml", version="2.0.0")
        os.symlink(second.name, mount / "..data_tmp")
        os.replace(mount / "..data_tmp", mount / "..data")  # atomic, as kubelet does it
        assert wait_until(lambda: health_json(sidecar.status.address)["contract"] == "shop@2.0.0")  # type: ignore[union-attr]


def test_the_receiver_serves_mutual_tls(contract: Path, otlp_sink: OtlpSink, certs: Certs) -> None:
    from dataclasses import replace

    from otel_contract.server.config import ReceiverTls

    config = config_for(contract, otlp_sink.endpoint)
    tls = ReceiverTls(certs.path("server.crt"), certs.path("server.key"), client_ca_file=certs.path("ca.crt"))
    config = replace(config, receiver=replace(config.receiver, tls=tls))
    payload = _orders([({"seq": "tls"}, 1.0)])
    options = [("grpc.ssl_target_name_override", "sink.test")]
    method = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    with running(config) as sidecar:
        anonymous = grpc.ssl_channel_credentials(root_certificates=certs.read("ca.crt"))
        channel = grpc.secure_channel(sidecar.endpoint, anonymous, options=options)
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary(method)(payload, timeout=5)
        channel.close()
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE  # the handshake fails without a client cert

        mutual = grpc.ssl_channel_credentials(certs.read("ca.crt"), certs.read("client.key"), certs.read("client.crt"))
        channel = grpc.secure_channel(sidecar.endpoint, mutual, options=options)
        channel.unary_unary(method)(payload, timeout=10)
        channel.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)


def test_each_exporter_has_its_own_queue_and_retry(contract: Path, otlp_sink: OtlpSink, tmp_path: Path) -> None:
    """A failing OTLP downstream neither holds back the file exporter nor makes it write a request twice."""

    def delivered() -> bytes:
        return b"".join(received.payload for received in otlp_sink.requests)

    out = tmp_path / "forwarded.jsonl"
    tags = [f"request-{index}" for index in range(8)]  # more requests than the OTLP exporter has consumers
    otlp_sink.fail_next(10**6, grpc.StatusCode.UNAVAILABLE)
    with running(config_for(contract, otlp_sink.endpoint, export_file=str(out))) as sidecar:
        client = RawClient(sidecar.endpoint)
        for tag in tags:
            client.export(Signal.METRICS, _orders([({"seq": tag}, 1.0)]))
            # Written while the OTLP exporter is still retrying: its queue does not hold the file's back.
            assert wait_until(lambda tag=tag: out.exists() and f'"{tag}"' in out.read_text("utf-8"), timeout=5.0)
        client.close()
        # Let the OTLP exporter retry a few times before the downstream recovers.
        assert otlp_sink.wait_for(lambda: otlp_sink.calls >= 2 * len(tags))
        otlp_sink.answer_ok()
        assert otlp_sink.wait_for(lambda: all(tag.encode() in delivered() for tag in tags))
    written = out.read_text("utf-8")
    assert {tag: written.count(f'"{tag}"') for tag in tags} == dict.fromkeys(tags, 1)
    assert {tag: delivered().count(tag.encode()) for tag in tags} == dict.fromkeys(tags, 1)
