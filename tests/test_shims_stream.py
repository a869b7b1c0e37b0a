"""Compat shims evaluated on the stream, fed with what the real OpenTelemetry SDK exports.

Every input is a ``MeterProvider`` with an ``InMemoryMetricReader``, encoded by the OTLP exporter's
``encode_metrics``. Only the point times are rewritten: ``time_unix_nano`` to ``T0 + t`` (t a multiple
of 60 s) and ``start_time_unix_nano`` to the app's start (cumulative) or the previous collection
(delta), so that every expected value below is worked out by hand with Prometheus 2.42's rules:

* a range selector ``[5m]`` evaluated at T holds the samples in ``[T - 300 s, T]``, both ends included;
* ``increase`` = (last - first + the value before every reset) * extrapolation factor, where the
  factor is 1 when the first sample sits on ``T - 300 s`` and the last on T; otherwise the gap at
  either end is added when it is below 1.1 x the average sample interval (else half an interval), the
  start gap being cut to where the counter would have been zero;
* ``rate`` = ``increase`` / 300; ``irate`` = the difference of the last two samples (the last value
  alone after a reset) / their distance in seconds;
* an instant selector takes the newest sample of the last 5 minutes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality as OtlpTemporality
from opentelemetry.proto.metrics.v1.metrics_pb2 import DataPointFlags
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from otel_contract import rules
from otel_contract.loading import load_contract
from otel_contract.shims import ShimEvaluator, ShimResult, compile_shims

from .conftest import TODAY

T0_NS = 1_700_000_000 * 1_000_000_000
BOUNDS = (0.1, 0.5, 1.0)
CONTRACT_ID = "stream@1.0.0"

CONTRACT_HEAD = """\
contract: stream
version: 1.0.0
metrics:
  - name: jobs_processed_total
    type: sum
    unit: '{job}'
    monotonic: true
  - name: busy_seconds_total
    type: sum
    unit: s
    monotonic: true
  - name: queue_depth
    type: gauge
    unit: '{item}'
  - name: request_duration_seconds
    type: histogram
    unit: s
compat:
"""


def ns(seconds: float) -> int:
    return T0_NS + int(seconds * 1_000_000_000)


class App:
    """A real SDK app: one MeterProvider (one process lifetime) whose collections become requests."""

    def __init__(self, *, start: float, instance: str, delta: bool) -> None:
        temporality = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
        self.reader = InMemoryMetricReader(preferred_temporality=temporality if delta else None)
        resource = Resource({"service.namespace": "shop", "service.name": "worker", "service.instance.id": instance})
        self.provider = MeterProvider(
            resource=resource,
            metric_readers=[self.reader],
            views=[
                View(
                    instrument_name="request_duration_seconds",
                    aggregation=ExplicitBucketHistogramAggregation(BOUNDS),
                )
            ],
            shutdown_on_exit=False,
        )
        meter = self.provider.get_meter("stream-test")
        self.jobs = meter.create_counter("jobs_processed_total", unit="{job}")
        self.busy = meter.create_counter("busy_seconds_total", unit="s")
        self.depth = meter.create_gauge("queue_depth", unit="{item}")
        self.latency = meter.create_histogram("request_duration_seconds", unit="s")
        self._delta = delta
        self._start = start
        self._last = start

    def collect(self, at: float) -> ExportMetricsServiceRequest:
        """The SDK's export of everything recorded so far, stamped ``T0 + at`` seconds."""
        data = self.reader.get_metrics_data()
        assert data is not None, "the SDK exported nothing"
        request = encode_metrics(data)  # type: ignore[arg-type]
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        point.time_unix_nano = ns(at)
                        if kind != "gauge":
                            point.start_time_unix_nano = ns(self._last if self._delta else self._start)
        self._last = at
        return request


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    """``app(start=-30, instance="w-1", delta=False)``: a new SDK app; shut down after the test."""
    made: list[App] = []

    def make(*, start: float = -30, instance: str = "w-1", delta: bool = False) -> App:
        made.append(App(start=start, instance=instance, delta=delta))
        return made[-1]

    yield make
    for each in made:
        each.provider.shutdown()


def evaluator(tmp_path: Path, compat: str, **options: Any) -> ShimEvaluator:
    """The evaluator of a contract whose ``compat:`` section is ``compat`` (YAML list text)."""
    path = tmp_path / "stream.yaml"
    path.write_text(CONTRACT_HEAD + textwrap.indent(textwrap.dedent(compat), "  "), encoding="utf-8")
    compiled = load_contract(path, today=TODAY)
    return ShimEvaluator(compile_shims(compiled.contract), contract=CONTRACT_ID, **options)


def merged(*requests: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest:
    out = ExportMetricsServiceRequest()
    for request in requests:
        out.resource_metrics.extend(request.resource_metrics)
    return out


@dataclass(frozen=True)
class Out:
    """One emitted data point, flattened."""

    record: str
    kind: str  # "sum" | "gauge"
    unit: str
    monotonic: bool
    cumulative: bool
    resource: dict[str, str]
    labels: dict[str, str]
    value: float
    time: float  # seconds after T0
    start: int  # ns

    @property
    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


def decode(result: ShimResult) -> list[Out]:
    if not result.payload:
        assert result.points == 0
        return []
    request = ExportMetricsServiceRequest.FromString(result.payload)
    out = []
    for resource_metrics in request.resource_metrics:
        resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                for point in data.data_points:
                    out.append(
                        Out(
                            record=metric.name,
                            kind=kind,
                            unit=metric.unit,
                            monotonic=kind == "sum" and data.is_monotonic,
                            cumulative=kind == "sum"
                            and data.aggregation_temporality == OtlpTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
                            resource=resource,
                            labels={kv.key: kv.value.string_value for kv in point.attributes},
                            value=point.as_double,
                            time=(point.time_unix_nano - T0_NS) / 1e9,
                            start=point.start_time_unix_nano,
                        )
                    )
    assert len(out) == result.points
    return out


def values(outs: list[Out], record: str) -> dict[str, float]:
    """``record``'s points by their attributes (``"k=v,k=v"``, ``""`` for none)."""
    found: dict[str, float] = {}
    for out in outs:
        if out.record == record:
            assert out.key not in found, f"{record}{{{out.key}}} emitted twice"
            found[out.key] = out.value
    return found


def run(shims: ShimEvaluator, request: ExportMetricsServiceRequest) -> list[Out]:
    return decode(shims.evaluate(request, today=TODAY))


def one(outs: list[Out], record: str) -> Out:
    matching = [out for out in outs if out.record == record]
    assert len(matching) == 1, matching
    return matching[0]


WORKER = {"service.namespace": "shop", "service.name": "worker", "service.instance.id": "w-1"}

COUNTER_SHIMS = """\
- {record: jobs_rate, expr: 'rate(jobs_processed_total[5m])', expires: 2030-01-01}
- {record: jobs_increase, expr: 'increase(jobs_processed_total[5m])', expires: 2030-01-01}
- {record: jobs_irate, expr: 'irate(jobs_processed_total[5m])', expires: 2030-01-01}
"""


# --- rate, increase, irate -------------------------------------------------------------------------


def test_rate_increase_irate_over_a_counter(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, COUNTER_SHIMS)
    sdk = app()
    outputs = {}
    for step, add in enumerate([10, 10, 20, 20, 30, 30]):  # cumulative 10 20 40 60 90 120
        sdk.jobs.add(add, {"queue": "a"})
        outputs[step * 60] = run(shims, sdk.collect(step * 60))

    # One sample is no rate: Prometheus drops the element.
    assert outputs[0] == []
    # T=120: samples 10@0 20@60 40@120 in [-180, 120]. result 30; the start gap (180 s) is cut to
    # where the counter was zero, 120 * 10/30 = 40 s (< 1.1 * 60), the end gap is 0:
    # increase = 30 * (120 + 40) / 120 = 40.
    at120 = outputs[120]
    assert values(at120, "jobs_increase") == pytest.approx({"queue=a": 40.0})
    assert values(at120, "jobs_rate") == pytest.approx({"queue=a": 40.0 / 300})
    assert values(at120, "jobs_irate") == pytest.approx({"queue=a": 20.0 / 60})
    # T=300: six samples from 10@0 to 120@300 cover [0, 300] exactly: no extrapolation.
    at300 = outputs[300]
    assert values(at300, "jobs_increase") == pytest.approx({"queue=a": 110.0})
    assert values(at300, "jobs_rate") == pytest.approx({"queue=a": 110.0 / 300})
    assert values(at300, "jobs_irate") == pytest.approx({"queue=a": 30.0 / 60})
    for out in at300:
        assert (out.kind, out.time, out.resource) == ("gauge", 300.0, WORKER)
    assert {out.unit for out in at300 if out.record != "jobs_increase"} == {"{job}/s"}
    assert one(at300, "jobs_increase").unit == "{job}"


def test_counter_reset_by_a_new_meter_provider(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, COUNTER_SHIMS)
    outputs = {}
    first = app(start=-30)
    for t in (0, 60, 120):  # 10 20 30
        first.jobs.add(10, {"queue": "a"})
        outputs[t] = run(shims, first.collect(t))
    first.provider.shutdown()
    restarted = app(start=150)  # the process restarted: a new MeterProvider, the counter from zero
    for t, add in ((180, 5), (240, 10), (300, 10)):  # 5 15 25
        restarted.jobs.add(add, {"queue": "a"})
        outputs[t] = run(shims, restarted.collect(t))

    # irate right after the reset: the new value counts from zero, 5 / 60 s.
    assert values(outputs[180], "jobs_irate") == pytest.approx({"queue=a": 5.0 / 60})
    assert values(outputs[240], "jobs_irate") == pytest.approx({"queue=a": 10.0 / 60})
    # T=300: 10 20 30 | 5 15 25 on [0, 300]: 25 - 10 + 30 (the value before the reset) = 45.
    assert values(outputs[300], "jobs_increase") == pytest.approx({"queue=a": 45.0})
    assert values(outputs[300], "jobs_rate") == pytest.approx({"queue=a": 45.0 / 300})


def test_reset_detected_by_start_time_alone(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, COUNTER_SHIMS)
    outputs = {}
    first = app(start=-30)
    for t in (0, 60, 120):  # 10 20 30
        first.jobs.add(10, {"queue": "a"})
        outputs[t] = run(shims, first.collect(t))
    first.provider.shutdown()
    restarted = app(start=150)
    restarted.jobs.add(40, {"queue": "a"})  # 40 > 30: the value did not drop, only the start time moved
    outputs[180] = run(shims, restarted.collect(180))
    for t in (240, 300):  # 50 60
        restarted.jobs.add(10, {"queue": "a"})
        outputs[t] = run(shims, restarted.collect(t))

    # The 40 was counted from zero: irate is 40 / 60 s, not (40 - 30) / 60 s.
    assert values(outputs[180], "jobs_irate") == pytest.approx({"queue=a": 40.0 / 60})
    # T=300: 10 20 30 | 40 50 60 on [0, 300]: 60 - 10 + 30 = 80 (20 before, 40 + 20 after the restart).
    assert values(outputs[300], "jobs_increase") == pytest.approx({"queue=a": 80.0})
    assert values(outputs[300], "jobs_rate") == pytest.approx({"queue=a": 80.0 / 300})


def test_delta_temporality_gives_the_same_rate_as_cumulative(tmp_path: Path, app: Any) -> None:
    cumulative_shims = evaluator(tmp_path, COUNTER_SHIMS)
    delta_shims = evaluator(tmp_path, COUNTER_SHIMS)
    cumulative, delta = app(), app(delta=True)
    for step, add in enumerate([10, 10, 20, 20, 30, 30]):
        t = step * 60
        for sdk in (cumulative, delta):
            sdk.jobs.add(add, {"queue": "a"})
        delta_request = delta.collect(t)
        (sum_,) = (m.sum for m in delta_request.resource_metrics[0].scope_metrics[0].metrics)
        assert sum_.aggregation_temporality == OtlpTemporality.AGGREGATION_TEMPORALITY_DELTA
        assert sum_.data_points[0].as_int == add  # the SDK sent the increment, not the total
        from_delta = run(delta_shims, delta_request)
        from_cumulative = run(cumulative_shims, cumulative.collect(t))
        for record in ("jobs_rate", "jobs_increase", "jobs_irate"):
            assert values(from_delta, record) == pytest.approx(values(from_cumulative, record)), (t, record)
    # ... and both are the hand-computed values of test_rate_increase_irate_over_a_counter.
    assert values(from_delta, "jobs_increase") == pytest.approx({"queue=a": 110.0})
    assert values(from_delta, "jobs_rate") == pytest.approx({"queue=a": 110.0 / 300})
    assert values(from_delta, "jobs_irate") == pytest.approx({"queue=a": 30.0 / 60})


def test_delta_counter_selected_alone_is_a_cumulative_sum_with_one_start(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, "- {record: jobs, expr: jobs_processed_total, expires: 2030-01-01}\n")
    sdk = app(start=-30, delta=True)
    emitted = []
    for t in (0, 60, 120):
        sdk.jobs.add(10)
        request = sdk.collect(t)
        # The SDK's delta points: each starts where the previous one ended.
        assert request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].start_time_unix_nano == ns(
            t - 60 if t else -30
        )
        emitted.append(one(run(shims, request), "jobs"))
    # Accumulated as Prometheus would see it, a cumulative monotonic sum: 10 20 30 since the first
    # delta's start. A start that moved with every point would tell a consumer the counter restarted.
    assert [(o.kind, o.cumulative, o.monotonic, o.value) for o in emitted] == [
        ("sum", True, True, 10.0),
        ("sum", True, True, 20.0),
        ("sum", True, True, 30.0),
    ]
    assert [o.start for o in emitted] == [ns(-30)] * 3


# --- histograms --------------------------------------------------------------------------------------

HISTOGRAM_SHIMS = """\
- record: latency_bucket_rate
  expr: sum by (le) (rate(request_duration_seconds_bucket[5m]))
  expires: 2030-01-01
- {record: latency_count_rate, expr: 'rate(request_duration_seconds_count[5m])', expires: 2030-01-01}
- {record: latency_sum, expr: request_duration_seconds_sum, expires: 2030-01-01}
"""


def _histogram_run(tmp_path: Path, app: Any, *, delta: bool = False) -> list[Out]:
    """Six collections, 0 to 300 s; each 60 s route /a sees 0.05 s and 0.7 s, route /b 0.3 s."""
    shims = evaluator(tmp_path, HISTOGRAM_SHIMS)
    sdk = app(delta=delta)
    outs: list[Out] = []
    for t in range(0, 301, 60):
        sdk.latency.record(0.05, {"http.route": "/a"})
        sdk.latency.record(0.7, {"http.route": "/a"})
        sdk.latency.record(0.3, {"http.route": "/b"})
        request = sdk.collect(t)
        points = request.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points
        assert [list(p.explicit_bounds) for p in points] == [list(BOUNDS)] * 2  # the SDK's buckets
        outs = run(shims, request)
    return outs


def test_histogram_bucket_rate_summed_by_le(tmp_path: Path, app: Any) -> None:
    outs = _histogram_run(tmp_path, app)
    # Per 60 s, cumulative buckets grow: /a le=0.1 +1, le=0.5 +1, le=1 +2, +Inf +2; /b 0, +1, +1, +1.
    # Summed by le: +1 +2 +3 +3, five times between 0 s and 300 s, over [0, 300] exactly.
    assert values(outs, "latency_bucket_rate") == pytest.approx(
        {"le=0.1": 5 / 300, "le=0.5": 10 / 300, "le=1": 15 / 300, "le=+Inf": 15 / 300}
    )
    assert all(out.kind == "gauge" for out in outs if out.record == "latency_bucket_rate")


def test_histogram_count_rate(tmp_path: Path, app: Any) -> None:
    outs = _histogram_run(tmp_path, app)
    # /a: 2 observations a minute, /b: 1; attribute http.route becomes label http_route.
    assert values(outs, "latency_count_rate") == pytest.approx({"http_route=/a": 10 / 300, "http_route=/b": 5 / 300})
    rate = one([o for o in outs if o.labels == {"http_route": "/a"}], "latency_count_rate")
    assert (rate.kind, rate.unit, rate.resource) == ("gauge", "1/s", WORKER)


def test_histogram_sum_is_a_cumulative_sum(tmp_path: Path, app: Any) -> None:
    outs = _histogram_run(tmp_path, app)
    # Six collections: /a 6 * (0.05 + 0.7) = 4.5 s, /b 6 * 0.3 = 1.8 s.
    assert values(outs, "latency_sum") == pytest.approx({"http_route=/a": 4.5, "http_route=/b": 1.8})
    for out in outs:
        if out.record == "latency_sum":
            assert (out.kind, out.monotonic, out.cumulative, out.unit) == ("sum", True, True, "s")
            assert out.start == ns(-30)  # the SDK app's start, carried over


def test_delta_histogram_gives_the_same_series_as_cumulative(tmp_path: Path, app: Any) -> None:
    from_delta = _histogram_run(tmp_path, app, delta=True)
    from_cumulative = _histogram_run(tmp_path, app)
    for record in ("latency_bucket_rate", "latency_count_rate", "latency_sum"):
        assert values(from_delta, record) == pytest.approx(values(from_cumulative, record)), record
    assert values(from_delta, "latency_sum") == pytest.approx({"http_route=/a": 4.5, "http_route=/b": 1.8})


# --- aggregations and matchers ----------------------------------------------------------------------

DEPTHS = {("a", "eu"): 4, ("ab", "eu"): 10, ("b", "us"): 1, ("ba", "us"): 7}


def _depths(app: Any, at: float = 0, instance: str = "w-1") -> ExportMetricsServiceRequest:
    sdk = app(instance=instance)
    for (queue, region), depth in DEPTHS.items():
        sdk.depth.set(depth, {"queue": queue, "region": region})
    return sdk.collect(at)  # type: ignore[no-any-return]


def test_aggregations_by_and_without(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - {record: depth_sum_by, expr: sum by (region) (queue_depth), expires: 2030-01-01}
        - {record: depth_min_by, expr: min by (region) (queue_depth), expires: 2030-01-01}
        - {record: depth_max_without, expr: max without (queue) (queue_depth), expires: 2030-01-01}
        - {record: depth_count_without, expr: 'count without (queue, region) (queue_depth)', expires: 2030-01-01}
        - {record: depth_avg_by, expr: avg by (region) (queue_depth), expires: 2030-01-01}
        - {record: depth_sum, expr: sum(queue_depth), expires: 2030-01-01}
        """,
    )
    outs = run(shims, _depths(app))
    assert values(outs, "depth_sum_by") == {"region=eu": 14.0, "region=us": 8.0}
    assert values(outs, "depth_min_by") == {"region=eu": 4.0, "region=us": 1.0}
    assert values(outs, "depth_max_without") == {"region=eu": 10.0, "region=us": 7.0}
    assert values(outs, "depth_count_without") == {"": 4.0}
    assert values(outs, "depth_avg_by") == {"region=eu": 7.0, "region=us": 4.0}
    assert values(outs, "depth_sum") == {"": 22.0}
    # `without` keeps job and instance: they go back to the app's resource, never into the attributes.
    for out in outs:
        if out.record in ("depth_max_without", "depth_count_without"):
            assert out.resource.items() >= WORKER.items(), out
        assert out.kind == "gauge"
    assert one(outs, "depth_count_without").unit == "1"


@pytest.mark.parametrize(
    ("selector", "queues"),
    [
        ('queue_depth{queue="a"}', {"a"}),
        ('queue_depth{queue!="a"}', {"ab", "b", "ba"}),
        ('queue_depth{queue=~"a"}', {"a"}),  # anchored: not "ab", not "ba"
        ('queue_depth{queue=~"b.*"}', {"b", "ba"}),  # anchored at the start: not "ab"
        ('queue_depth{queue=~"a|b"}', {"a", "b"}),  # the whole alternation is anchored
        ('queue_depth{queue!~"a.*"}', {"b", "ba"}),
        ('queue_depth{queue!~"b"}', {"a", "ab", "ba"}),  # anchored: "ab" and "ba" do not match "b"
        ('queue_depth{region="eu", queue=~".+b"}', {"ab"}),
    ],
)
def test_matchers(tmp_path: Path, app: Any, selector: str, queues: set[str]) -> None:
    shims = evaluator(tmp_path, f"- {{record: selected, expr: '{selector}', expires: 2030-01-01}}\n")
    outs = run(shims, _depths(app))
    assert {out.labels["queue"] for out in outs} == queues
    for out in outs:
        assert out.value == DEPTHS[(out.labels["queue"], out.labels["region"])]
        assert out.labels == {"queue": out.labels["queue"], "region": out.labels["region"]}


def test_regexes_are_re2_and_a_crafted_label_value_costs_one_pass(tmp_path: Path, app: Any) -> None:
    # Forty a's and a "!" against (a+)+: hours of backtracking for Python's re, one pass for RE2.
    shims = evaluator(
        tmp_path,
        """\
        - {record: selected, expr: 'queue_depth{queue=~"(a+)+"}', expires: 2030-01-01}
        - {record: unselected, expr: 'queue_depth{queue!~"(a+)+"}', expires: 2030-01-01}
        - record: replaced
          expr: label_replace(queue_depth, "q", "$1", "queue", "((a+)+)")
          expires: 2030-01-01
        - record: unicode
          expr: label_replace(queue_depth, "q", "$1", "queue", "(\\\\pL+).*")
          expires: 2030-01-01
        """,
    )
    sdk = app()
    hostile = "a" * 40 + "!"
    for queue in (hostile, "aaaa", "é1"):
        sdk.depth.set(1, {"queue": queue})
    outs = run(shims, sdk.collect(0))
    assert {out.labels["queue"] for out in outs if out.record == "selected"} == {"aaaa"}
    assert {out.labels["queue"] for out in outs if out.record == "unselected"} == {hostile, "é1"}
    assert {out.labels["queue"]: out.labels.get("q") for out in outs if out.record == "replaced"} == {
        "aaaa": "aaaa",
        hostile: None,
        "é1": None,
    }
    # \pL is RE2 (and Go) syntax that Python's re does not know.
    assert {out.labels["queue"]: out.labels.get("q") for out in outs if out.record == "unicode"} == {
        "aaaa": "aaaa",
        hostile: "a" * 40,
        "é1": "é",
    }


# --- scalar arithmetic ------------------------------------------------------------------------------


def test_scalar_arithmetic_output_types_and_units(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - {record: busy_ms_total, expr: busy_seconds_total * 1000, expires: 2030-01-01}
        - {record: busy_minutes_total, expr: busy_seconds_total / 60, expires: 2030-01-01}
        - {record: busy_per_minute, expr: 'rate(busy_seconds_total[5m]) * 60', expires: 2030-01-01}
        - {record: busy_negated, expr: '- busy_seconds_total', expires: 2030-01-01}
        - {record: busy_plus_one, expr: busy_seconds_total + 1, expires: 2030-01-01}
        - {record: busy_percent, expr: 'rate(busy_seconds_total[5m]) * 100', unit: '%', expires: 2030-01-01}
        - {record: busy_declared, expr: busy_seconds_total * 1000, unit: us, expires: 2030-01-01}
        """,
    )
    sdk = app()
    for t in range(0, 301, 60):  # 6 12 ... 36 s busy
        sdk.busy.add(6.0, {"cpu": "0"})
        outs = run(shims, sdk.collect(t))

    def shape(record: str) -> tuple[str, bool, bool, str, float]:
        out = one(outs, record)
        assert out.labels == {"cpu": "0"} and out.resource == WORKER
        return (out.kind, out.monotonic, out.cumulative, out.unit, out.value)

    # x * 1000 on a seconds counter: still a counter, now in milliseconds, same start time.
    assert shape("busy_ms_total") == ("sum", True, True, "ms", pytest.approx(36_000.0))
    assert one(outs, "busy_ms_total").start == ns(-30)
    assert shape("busy_minutes_total") == ("sum", True, True, "min", pytest.approx(0.6))
    # rate: (36 - 6) / 300 = 0.1 s/s; * 60 = 6 s a minute: a gauge.
    assert shape("busy_per_minute")[:3] == ("gauge", False, False)
    assert shape("busy_per_minute")[4] == pytest.approx(6.0)
    assert shape("busy_negated") == ("gauge", False, False, "s", -36.0)
    assert shape("busy_plus_one") == ("gauge", False, False, "s", 37.0)
    # The shim's declared unit wins over the inferred one.
    assert shape("busy_percent") == ("gauge", False, False, "%", pytest.approx(10.0))
    assert shape("busy_declared") == ("sum", True, True, "us", pytest.approx(36_000.0))


# --- label_replace ----------------------------------------------------------------------------------


def test_label_replace(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - record: copied
          expr: label_replace(queue_depth, "q", "$1", "queue", "(.*)")
          expires: 2030-01-01
        - record: braced
          expr: label_replace(queue_depth, "q", "${1}x", "queue", "(a)(.*)")
          expires: 2030-01-01
        - record: greedy_name
          expr: label_replace(queue_depth, "q", "$1x", "queue", "(a)(.*)")
          expires: 2030-01-01
        - record: named
          expr: label_replace(queue_depth, "q", "$rest-${first}", "queue", "(?P<first>a)(?P<rest>.*)")
          expires: 2030-01-01
        - record: emptied
          expr: label_replace(queue_depth, "region", "", "queue", "a.*")
          expires: 2030-01-01
        """,
    )
    outs = run(shims, _depths(app))

    def labels(record: str) -> dict[str, dict[str, str]]:
        return {out.labels["queue"]: out.labels for out in outs if out.record == record}

    assert {queue: found["q"] for queue, found in labels("copied").items()} == {
        "a": "a",
        "ab": "ab",
        "b": "b",
        "ba": "ba",
    }
    # ${1}x is group 1 then "x"; the regex is anchored, so "ba" does not match and keeps its labels.
    assert labels("braced") == {
        "a": {"queue": "a", "region": "eu", "q": "ax"},
        "ab": {"queue": "ab", "region": "eu", "q": "ax"},
        "b": {"queue": "b", "region": "us"},
        "ba": {"queue": "ba", "region": "us"},
    }
    # Go's template reads $1x as the group named "1x": none, so the value is empty and no label is set.
    assert all("q" not in found for found in labels("greedy_name").values())
    assert {queue: found.get("q") for queue, found in labels("named").items()} == {
        "a": "-a",
        "ab": "b-a",
        "b": None,
        "ba": None,
    }
    # An empty result removes the destination label; no match leaves the labels alone.
    assert labels("emptied") == {
        "a": {"queue": "a"},
        "ab": {"queue": "ab"},
        "b": {"queue": "b", "region": "us"},
        "ba": {"queue": "ba", "region": "us"},
    }
    depth_of = {queue: depth for (queue, _), depth in DEPTHS.items()}
    assert all(out.value == depth_of[out.labels["queue"]] for out in outs)


# --- output shape -----------------------------------------------------------------------------------


def test_output_shape(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - record: legacy_queue_depth
          expr: queue_depth{queue="a"}
          labels: {source: compat, team: sre}
          expires: 2030-01-01
        """,
    )
    result = shims.evaluate(_depths(app, at=120), today=TODAY)
    assert result.fed == frozenset({"legacy_queue_depth"})
    assert result.findings == ()
    request = ExportMetricsServiceRequest.FromString(result.payload)
    (resource_metrics,) = request.resource_metrics
    assert {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes} == WORKER
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "otel-contract/compat"
    assert {kv.key: kv.value.string_value for kv in scope_metrics.scope.attributes} == {
        "otel_contract.contract": CONTRACT_ID
    }
    (metric,) = scope_metrics.metrics
    assert (metric.name, metric.unit, metric.WhichOneof("data")) == ("legacy_queue_depth", "{item}", "gauge")
    assert "2030-01-01" in metric.description
    (point,) = metric.gauge.data_points
    assert point.time_unix_nano == ns(120)
    assert point.as_double == 4.0
    # Shim labels added, job and instance not among the attributes (they went back to the resource).
    assert {kv.key: kv.value.string_value for kv in point.attributes} == {
        "queue": "a",
        "region": "eu",
        "source": "compat",
        "team": "sre",
    }


def test_only_series_with_fresh_input_are_emitted(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, "- {record: depth, expr: 'queue_depth{queue=\"a\"}', expires: 2030-01-01}\n")
    one_ = run(shims, _depths(app, at=0, instance="w-1"))
    assert [(out.resource["service.instance.id"], out.time) for out in one_] == [("w-1", 0.0)]
    # A request with the other instance's data only: w-1's sample (60 s old) is still within the
    # lookback, but it is not re-emitted.
    two = run(shims, _depths(app, at=60, instance="w-2"))
    assert [(out.resource["service.instance.id"], out.time) for out in two] == [("w-2", 60.0)]
    # Both in one request: one resource each.
    both = run(shims, merged(_depths(app, at=120, instance="w-1"), _depths(app, at=120, instance="w-2")))
    assert sorted(out.resource["service.instance.id"] for out in both) == ["w-1", "w-2"]
    # A request the shim does not read feeds nothing and emits nothing.
    sdk = app()
    sdk.busy.add(1.0)
    result = shims.evaluate(sdk.collect(180), today=TODAY)
    assert (result.payload, result.points, result.fed) == (b"", 0, frozenset())


# --- bounded memory ---------------------------------------------------------------------------------


def test_max_series_leaves_new_series_untracked_and_counts_them(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, "- {record: depth, expr: queue_depth, expires: 2030-01-01}\n", max_series=2)
    sdk = app()
    for queue in ("a", "b", "c"):
        sdk.depth.set(1, {"queue": queue})
    first = run(shims, sdk.collect(0))
    assert len(first) == 2
    assert shims.untracked_series == 1
    tracked = {out.labels["queue"] for out in first}
    second = run(shims, sdk.collect(60))  # the third series' next sample is refused again, and counted
    assert {out.labels["queue"] for out in second} == tracked
    assert shims.untracked_series == 2


def test_silent_series_is_evicted_and_a_later_sample_starts_afresh(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - {record: jobs, expr: jobs_processed_total, expires: 2030-01-01}
        - {record: jobs_all, expr: sum(jobs_processed_total), expires: 2030-01-01}
        - {record: jobs_increase, expr: 'increase(jobs_processed_total[5m])', expires: 2030-01-01}
        """,
    )
    silent, steady = app(instance="w-1", delta=True), app(instance="w-2", delta=True)
    outs = {}
    for t in range(0, 901, 60):
        requests = []
        if t <= 120:  # w-1 sends 10 a minute until 120 s, then falls silent
            silent.jobs.add(10)
            requests.append(silent.collect(t))
        steady.jobs.add(1)
        requests.append(steady.collect(t))
        outs[t] = run(shims, merged(*requests))

    def instances(record: str, t: int) -> dict[str, float]:
        return {o.resource["service.instance.id"]: o.value for o in outs[t] if o.record == record}

    assert instances("jobs", 120) == {"w-1": 30.0, "w-2": 3.0}
    # While silent, w-1 is not emitted; its last sample still counts in the sum within the lookback
    # (120 s + 300 s) and no longer after it.
    assert instances("jobs", 180) == {"w-2": 4.0}
    assert values(outs[420], "jobs_all") == {"": 30.0 + 8.0}
    assert values(outs[480], "jobs_all") == {"": 9.0}
    # w-1 comes back after 840 s of silence (longer than range + lookback): a single fresh sample,
    # accumulated from zero (5, not 35), and no increase from the samples of before.
    silent.jobs.add(5)
    steady.jobs.add(1)
    back = run(shims, merged(silent.collect(960), steady.collect(960)))
    assert {o.resource["service.instance.id"]: o.value for o in back if o.record == "jobs"} == {"w-1": 5.0, "w-2": 17.0}
    assert [o.resource["service.instance.id"] for o in back if o.record == "jobs_increase"] == ["w-2"]


def test_evicted_series_frees_its_place_under_max_series(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, "- {record: depth, expr: queue_depth, expires: 2030-01-01}\n", max_series=2)
    first, second, third = app(instance="w-1"), app(instance="w-2"), app(instance="w-3")
    for sdk in (first, second, third):
        sdk.depth.set(1)
    run(shims, merged(first.collect(0), second.collect(0)))  # two series: the limit
    for t in range(60, 361, 60):  # w-1 silent: at 360 s its sample (0 s) is older than the lookback
        run(shims, second.collect(t))
    outs = run(shims, merged(second.collect(420), third.collect(420)))
    assert shims.untracked_series == 0
    assert sorted(o.resource["service.instance.id"] for o in outs) == ["w-2", "w-3"]


def test_an_evaluation_back_in_time_does_not_see_samples_an_eviction_dropped(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, "- {record: depth_all, expr: sum(queue_depth), expires: 2030-01-01}\n")
    first, late = app(instance="w-1"), app(instance="w-2")
    first.depth.set(1)
    run(shims, first.collect(0))
    first.depth.set(2)
    run(shims, first.collect(800))  # the eviction after it drops w-1's sample at 0 s (older than 500 s)
    late.depth.set(5)
    # Evaluated at 200 s: w-1's sample at 0 s would be within the lookback, but it is gone.
    assert values(run(shims, late.collect(200)), "depth_all") == {"": 5.0}


def test_groups_come_out_in_the_order_their_series_were_first_seen(tmp_path: Path, app: Any) -> None:
    shims = evaluator(tmp_path, "- {record: depth_by, expr: sum by (queue) (queue_depth), expires: 2030-01-01}\n")
    first, second = app(instance="w-1"), app(instance="w-2")
    first.depth.set(1, {"queue": "b"})
    second.depth.set(2, {"queue": "a"})
    run(shims, merged(first.collect(0), second.collect(0)))
    # w-2 (queue a) comes first in the request now; the groups keep the order of their series.
    outs = run(shims, merged(second.collect(60), first.collect(60)))
    assert [out.labels["queue"] for out in outs] == ["b", "a"]


# --- samples that are not samples -------------------------------------------------------------------


def test_out_of_order_and_duplicate_timestamps_are_ignored(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        COUNTER_SHIMS + "- {record: jobs, expr: jobs_processed_total, expires: 2030-01-01}\n",
    )
    sdk = app()
    for t in (0, 60, 120):  # 10 20 30
        sdk.jobs.add(10, {"queue": "a"})
        run(shims, sdk.collect(t))
    other = app()  # same resource and series, other values
    other.jobs.add(1000, {"queue": "a"})
    late = shims.evaluate(other.collect(90), today=TODAY)  # older than the newest sample
    assert (late.payload, late.points, late.fed) == (b"", 0, frozenset())
    other.jobs.add(500, {"queue": "a"})
    duplicate = shims.evaluate(other.collect(120), today=TODAY)  # same time as the newest sample
    assert (duplicate.payload, duplicate.points, duplicate.fed) == (b"", 0, frozenset())
    sdk.jobs.add(10, {"queue": "a"})
    outs = run(shims, sdk.collect(180))
    # As if 1000@90 and 1500@120 never arrived: 10 20 30 40 on [-120, 180]: result 30, start gap
    # cut to 180 * 10/30 = 60 s (< 66): increase = 30 * 240 / 180 = 40.
    assert values(outs, "jobs") == {"queue=a": 40.0}
    assert values(outs, "jobs_increase") == pytest.approx({"queue=a": 40.0})
    assert values(outs, "jobs_irate") == pytest.approx({"queue=a": 10.0 / 60})


def _no_recorded_value(request: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest:
    """Flag every point of an SDK export "no recorded value" (the SDK never does; the Collector's
    Prometheus receiver does when a target disappears)."""
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in getattr(metric, metric.WhichOneof("data")).data_points:
                    point.flags = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    return request


def test_points_without_a_recorded_value_are_no_samples(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        COUNTER_SHIMS + "- {record: jobs, expr: jobs_processed_total, expires: 2030-01-01}\n",
    )
    sdk = app()
    for t in (0, 60, 120):  # 10 20 30
        sdk.jobs.add(10, {"queue": "a"})
        run(shims, sdk.collect(t))
    restarted = app(start=140)
    restarted.jobs.add(1, {"queue": "a"})
    marker = shims.evaluate(_no_recorded_value(restarted.collect(150)), today=TODAY)
    assert (marker.payload, marker.points) == (b"", 0)  # nothing emitted for it
    sdk.jobs.add(10, {"queue": "a"})
    outs = run(shims, sdk.collect(180))
    # The flagged point (value 1, a new start) neither reset the counter nor counted as a sample:
    # 10 20 30 40 on [-120, 180] as in test_out_of_order_and_duplicate_timestamps_are_ignored.
    assert values(outs, "jobs") == {"queue=a": 40.0}
    assert values(outs, "jobs_increase") == pytest.approx({"queue=a": 40.0})
    assert values(outs, "jobs_irate") == pytest.approx({"queue=a": 10.0 / 60})


def test_a_point_without_a_recorded_value_ends_the_series_for_instant_selectors(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - {record: depth, expr: queue_depth, expires: 2030-01-01}
        - {record: depth_total, expr: sum(queue_depth), expires: 2030-01-01}
        """,
    )
    ending, steady = app(instance="w-1"), app(instance="w-2")
    ending.depth.set(4)
    steady.depth.set(10)
    assert values(run(shims, merged(ending.collect(0), steady.collect(0))), "depth_total") == {"": 14.0}
    # w-1's staleness marker: its sample of 0 s, though within the lookback, is no longer selected.
    outs = run(shims, merged(_no_recorded_value(ending.collect(60)), steady.collect(60)))
    assert values(outs, "depth_total") == {"": 10.0}
    assert [o.resource["service.instance.id"] for o in outs if o.record == "depth"] == ["w-2"]
    # A sample after the marker brings the series back.
    ending.depth.set(6)
    outs = run(shims, merged(ending.collect(120), steady.collect(120)))
    assert values(outs, "depth_total") == {"": 16.0}


# --- expiry -----------------------------------------------------------------------------------------


def test_expired_shim_reports_one_finding_per_evaluation_and_still_emits(tmp_path: Path, app: Any) -> None:
    shims = evaluator(
        tmp_path,
        """\
        - {record: old_busy_ms, expr: busy_seconds_total * 1000, expires: 2024-01-01, owner: sre-platform}
        - {record: current_busy_ms, expr: busy_seconds_total * 1000, expires: 2030-01-01}
        - {record: depth_now, expr: queue_depth, expires: 2030-01-01}
        """,
    )
    sdk = app()
    for t in (0, 60):
        sdk.busy.add(2.0)
        result = shims.evaluate(sdk.collect(t), today=TODAY)
        (finding,) = result.findings
        assert (finding.rule, finding.metric) == (rules.EXPIRED_SHIM, "old_busy_ms")
        assert "2024-01-01" in finding.message and "sre-platform" in finding.message
        assert values(decode(result), "old_busy_ms") == {"": 2000.0 * (t // 60 + 1)}
        assert values(decode(result), "current_busy_ms") == {"": 2000.0 * (t // 60 + 1)}
    # Not evaluated (its input did not arrive): no finding.
    unrelated = shims.evaluate(_depths(app, at=120), today=TODAY)
    assert unrelated.fed == frozenset({"depth_now"})
    assert unrelated.findings == ()
