"""The pipeline hands the compat shims and smoothed signals only the metrics they read (the core cuts
them out of the normalized request), and they record what they record from the whole request."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import ScopeMetrics

from otel_contract.autoscaling.stream import SmoothedSeries, smoothed_signals
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal
from otel_contract.pipeline import Pipeline
from otel_contract.shims import ShimEvaluator, compile_shims
from tests.conftest import TODAY

_CONTRACT = """
contract: reads
version: 1.0.0
metrics:
  - name: jobs_processed_total
    type: sum
    unit: '{job}'
    monotonic: true
    aliases: [{name: jobs.processed}]
  - name: queue_depth
    type: gauge
    unit: '{item}'
    attributes: {required: [queue]}
  - name: other_total
    type: sum
    unit: '{thing}'
    monotonic: true
compat:
  - {record: jobs_rate, expr: 'sum by (queue) (rate(jobs_processed_total[5m]))', expires: 2030-01-01}
autoscaling:
  - metric: queue_depth
    kind: external
    selector: {queue: a}
    target: {type: Value, value: 100}
    scale_target: {name: worker}
    max_replicas: 5
    smoothing: {ewma: {alpha: 0.5}, interval: 10s}
"""
_T0_NS = 1_700_000_000 * 1_000_000_000
_STEP_NS = 10 * 1_000_000_000


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _add(scope: ScopeMetrics, name: str, step: int, queues: tuple[str, ...]) -> None:
    metric = scope.metrics.add()
    metric.name = name
    if name == "queue_depth":
        data = metric.gauge
    else:
        metric.unit = "{job}" if name.startswith("jobs") else "{thing}"
        metric.sum.aggregation_temporality, metric.sum.is_monotonic = 2, True
        data = metric.sum
    for index, queue in enumerate(queues):
        point = data.data_points.add()
        point.start_time_unix_nano = _T0_NS
        point.time_unix_nano = _T0_NS + step * _STEP_NS
        point.as_double = step * (index + 1.5)
        point.attributes.append(_string("queue", queue))


def _request(step: int, layout: dict[str, dict[str, dict[str, tuple[str, ...]]]]) -> bytes:
    """Resources (by instance) of scopes (by name) of metrics (by name, with their points' queues)."""
    request = ExportMetricsServiceRequest()
    for instance, scopes in layout.items():
        resource_metrics = request.resource_metrics.add()
        resource_metrics.resource.attributes.extend([_string("service.name", "worker"), _string("zone", instance[-1])])
        resource_metrics.resource.attributes.append(_string("service.instance.id", instance))
        for scope_name, metrics in scopes.items():
            scope = resource_metrics.scope_metrics.add()
            scope.scope.name = scope_name
            for name, queues in metrics.items():
                _add(scope, name, step, queues)
    return request.SerializeToString()


_MIXED = {
    "w-1": {
        "app": {"other_total": ("a",), "jobs.processed": ("a", "b")},  # an alias: read under its contract name
        "lib": {"queue_depth": ("a", "b")},
    },
    "w-2": {"app": {"other_total": ("a", "b")}},
    "w-3": {"app": {"queue_depth": ("a",), "other_total": ("c",)}, "lib": {"jobs_processed_total": ("b", "c")}},
}


def test_derived_series_read_their_metrics_only_and_record_what_the_whole_request_gives(tmp_path: Path) -> None:
    path = tmp_path / "reads.yaml"
    path.write_text(_CONTRACT, encoding="utf-8")
    compiled = load_contract(path, today=TODAY)
    pipeline = Pipeline(compiled, today=TODAY)
    shims = ShimEvaluator(compile_shims(compiled.contract), contract=compiled.id)
    smoothed = SmoothedSeries(smoothed_signals(compiled.contract), compiled.id)
    appended = 0
    for step in range(6):
        result = pipeline.process(Signal.METRICS, _request(step, _MIXED))
        whole = result.request  # the normalized request, every metric of it
        expected_shims = shims.evaluate(whole, today=TODAY)
        expected_smoothed, smoothed_points = smoothed.evaluate(whole)
        assert result.appended == expected_shims.payload + expected_smoothed
        assert result.appended_items == expected_shims.points + smoothed_points
        appended += result.appended_items
    assert appended > 0
    # A request without their metrics adds nothing, and the engine's bytes go out as they are.
    payload = _request(6, {"w-2": {"app": {"other_total": ("a",)}}})
    result = pipeline.process(Signal.METRICS, payload)
    assert (result.appended, result.appended_items, result.side_findings) == (b"", 0, ())
    assert result.to_bytes() == result.outcome.to_bytes()
