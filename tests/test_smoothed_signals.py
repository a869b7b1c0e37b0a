"""Smoothed autoscaling signals in the stream and in the sidecar: ``<metric>_smoothed`` beside the rest.

The expected values are worked out by hand in the comments (alpha 0.5, 10 s intervals), so a
mistake in the evaluator cannot hide behind the same formula in the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from otel_contract.autoscaling.stream import SCOPE_NAME, SmoothedSeries, smoothed_signals
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal
from tests.conftest import TODAY
from tests.otlp_builders import attrs
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import RawClient, config_for, running

_CONTRACT = """
contract: queue
version: 1.0.0
metrics:
  - name: queue.depth
    type: gauge
    unit: '{message}'
    attributes: {required: [queue_name]}
  - name: jobs.done
    type: sum
    unit: '{job}'
    attributes: {required: [pod, namespace]}
autoscaling:
  - metric: queue.depth
    kind: external
    selector: {queue_name: emails}
    target: {type: Value, value: 100}
    scale_target: {name: worker}
    max_replicas: 5
    smoothing: {ewma: {alpha: 0.5}, interval: 10s, max_gap: 2}
  - metric: jobs.done
    kind: pods
    target: {type: AverageValue, value: 5}
    scale_target: {name: worker}
    smoothing: {ewma: {alpha: 0.5}, interval: 10s}
"""
_RESOURCE = {"service.name": "worker", "k8s.pod.name": "worker-0"}
_SECOND = 1_000_000_000


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    path = tmp_path / "queue.yaml"
    path.write_text(_CONTRACT, encoding="utf-8")
    return path


def _gauge_request(seconds: float, value: float, queue: str = "emails") -> ExportMetricsServiceRequest:
    point = {"attributes": attrs({"queue_name": queue}), "asDouble": value, "timeUnixNano": str(int(seconds * _SECOND))}
    return _request({"name": "queue.depth", "unit": "{message}", "gauge": {"dataPoints": [point]}})


def _delta_request(seconds: float, increase: float, start: float) -> ExportMetricsServiceRequest:
    point = {
        "attributes": attrs({"pod": "worker-0", "namespace": "jobs"}),
        "asDouble": increase,
        "startTimeUnixNano": str(int(start * _SECOND)),
        "timeUnixNano": str(int(seconds * _SECOND)),
    }
    data = {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [point]}  # 1: DELTA
    return _request({"name": "jobs.done", "unit": "{job}", "sum": data})


def _request(metric: dict[str, Any]) -> ExportMetricsServiceRequest:
    document = {
        "resourceMetrics": [
            {
                "resource": {"attributes": attrs(_RESOURCE)},
                "scopeMetrics": [{"scope": {"name": "app"}, "metrics": [metric]}],
            }
        ]
    }
    return json_format.ParseDict(document, ExportMetricsServiceRequest())


def _points(payload: bytes) -> list[tuple[str, str, int, float, dict[str, str], dict[str, str]]]:
    """(scope, metric, time in s, value, attributes, resource) of every point in ``payload``."""
    found = []
    for resource_metrics in ExportMetricsServiceRequest.FromString(payload).resource_metrics:
        resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                assert metric.WhichOneof("data") == "gauge"
                for point in metric.gauge.data_points:
                    attributes = {kv.key: kv.value.string_value for kv in point.attributes}
                    seconds = point.time_unix_nano // _SECOND
                    scope = scope_metrics.scope.name
                    found.append((scope, metric.name, seconds, point.as_double, attributes, resource))
    return found


def test_a_gauge_is_smoothed_per_closed_interval_with_gaps(contract: Path) -> None:
    smoothed = SmoothedSeries(smoothed_signals(load_contract(contract, today=TODAY).contract), "queue@1.0.0")
    outputs = []
    # (time s, value) -> what it closes, by hand with alpha 0.5 and 10 s intervals:
    feed = [
        (1, 10.0),  # opens [0,10)
        (5, 30.0),  # same interval: its last value (30) counts, not 10
        (12, 20.0),  # closes [0,10): s = 30 -> (10 s, 30)
        (25, 40.0),  # closes [10,20): s = 0.5*20 + 0.5*30 = 25 -> (20 s, 25)
        (55, 0.0),  # closes [20,30): s = 0.5*40 + 0.5*25 = 32.5 -> (30 s, 32.5); [30,50) stay empty
        (61, 100.0),  # closes [50,60): gap of 2 <= max_gap, s = 0.5*0 + 0.5*32.5 = 16.25 -> (60 s, 16.25)
        (95, 50.0),  # 2 empty intervals again: closes [60,70): s = 0.5*100 + 0.5*16.25 = 58.125 -> (70 s, 58.125)
        (131, 7.0),  # closes [90,100): s = 0.5*50 + 0.5*58.125 = 54.0625 -> (100 s, 54.0625)
        (141, 9.0),  # [100,130) was empty, 3 > max_gap: [130,140) restarts the average: s = 7 -> (140 s, 7)
    ]
    for seconds, value in feed:
        payload, points = smoothed.evaluate(_gauge_request(seconds, value))
        found = _points(payload) if points else []
        assert len(found) == points
        outputs += found
    assert [(name, time, value) for _, name, time, value, _, _ in outputs] == [
        ("queue.depth_smoothed", 10, 30.0),
        ("queue.depth_smoothed", 20, 25.0),
        ("queue.depth_smoothed", 30, 32.5),
        ("queue.depth_smoothed", 60, 16.25),
        ("queue.depth_smoothed", 70, 58.125),
        ("queue.depth_smoothed", 100, 54.0625),
        ("queue.depth_smoothed", 140, 7.0),
    ]
    scope, _, _, _, attributes, resource = outputs[0]
    assert scope == SCOPE_NAME
    assert attributes == {"queue_name": "emails"}
    assert resource["k8s.pod.name"] == "worker-0" and resource["service.name"] == "worker"


def test_series_are_smoothed_apart(contract: Path) -> None:
    smoothed = SmoothedSeries(smoothed_signals(load_contract(contract, today=TODAY).contract))
    for seconds, queue, value in [(1, "emails", 10.0), (2, "sms", 99.0), (11, "emails", 0.0)]:
        payload, _ = smoothed.evaluate(_gauge_request(seconds, value, queue))
    assert [(attributes["queue_name"], value) for *_, value, attributes, _ in _points(payload)] == [("emails", 10.0)]


def test_a_delta_counter_is_accumulated_and_smoothed_as_a_rate(contract: Path) -> None:
    smoothed = SmoothedSeries(smoothed_signals(load_contract(contract, today=TODAY).contract))
    feed = [
        (9, 50.0, 0),  # total 50 at 9 s: the baseline interval [0,10)
        (19, 100.0, 9),  # total 150 at 19 s
        (29, 300.0, 19),  # closes [10,20): rate (150-50)/10 s = 10/s, s = 10 -> (20 s, 10)
        (39, 0.0, 29),  # closes [20,30): rate (450-150)/10 = 30/s, s = 0.5*30 + 0.5*10 = 20 -> (30 s, 20)
    ]
    outputs = []
    for seconds, increase, start in feed:
        payload, points = smoothed.evaluate(_delta_request(seconds, increase, start))
        outputs += _points(payload) if points else []
    assert [(name, time, value) for _, name, time, value, _, _ in outputs] == [
        ("jobs.done_smoothed", 20, 10.0),
        ("jobs.done_smoothed", 30, 20.0),
    ]
    assert outputs[0][4] == {"pod": "worker-0", "namespace": "jobs"}


def test_a_silent_series_is_dropped_and_frees_its_place(contract: Path) -> None:
    compiled = load_contract(contract, today=TODAY)
    smoothed = SmoothedSeries(smoothed_signals(compiled.contract), "queue@1.0.0", max_series=1)
    smoothed.evaluate(_gauge_request(0, 1.0))
    smoothed.evaluate(_gauge_request(10, 2.0, queue="b"))
    assert smoothed.untracked == 1  # one series at most: emails holds the place
    # emails has been silent for 60 s, longer than (max_gap 2 + 2) intervals of 10 s: dropped after this request.
    smoothed.evaluate(_gauge_request(60, 2.0, queue="b"))
    assert smoothed.untracked == 2
    smoothed.evaluate(_gauge_request(70, 3.0, queue="b"))
    payload, _ = smoothed.evaluate(_gauge_request(80, 4.0, queue="b"))
    assert smoothed.untracked == 2
    assert [(seconds, value, attributes) for _, _, seconds, value, attributes, _ in _points(payload)] == [
        (80, 3.0, {"queue_name": "b"})
    ]


def test_the_sidecar_forwards_the_smoothed_series_beside_the_input(contract: Path, otlp_sink: OtlpSink) -> None:
    with running(config_for(contract, otlp_sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        try:
            for step, (seconds, value) in enumerate([(1, 10.0), (12, 20.0), (25, 40.0)]):
                response, call = client.export(Signal.METRICS, _gauge_request(seconds, value).SerializeToString())
                assert call.code() == grpc.StatusCode.OK
                # the data is accepted whole: the smoothed series is extra, not a replacement
                assert ExportMetricsServiceResponse.FromString(response).partial_success.rejected_data_points == 0
                # each request after the first closes one interval: its input point plus one smoothed point
                assert otlp_sink.wait_for(lambda step=step: otlp_sink.items(Signal.METRICS) >= 2 * step + 1)
        finally:
            client.close()
    smoothed = [
        point
        for received in otlp_sink.requests
        if received.signal is Signal.METRICS
        for point in _points_any(received.payload)
        if point[0] == "queue.depth_smoothed"
    ]
    assert smoothed == [("queue.depth_smoothed", 10, 10.0), ("queue.depth_smoothed", 20, 15.0)]


def _points_any(payload: bytes) -> list[tuple[str, int, float]]:
    request = ExportMetricsServiceRequest.FromString(payload)
    return [
        (metric.name, point.time_unix_nano // _SECOND, point.as_double)
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.WhichOneof("data") == "gauge"
        for point in metric.gauge.data_points
    ]
