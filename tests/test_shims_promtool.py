"""Equivalence with Prometheus: the shims evaluated in the stream record what Prometheus would.

For each case, input series are written by hand in promtool's expanding notation. The same series go
two ways:

* rendered as recording rules (``otel-contract render rules``) and loaded into ``promtool test rules``;
* turned, by a converter written here independently of ``otel_contract.shims``, into one OTLP
  ``ExportMetricsServiceRequest`` per time step and fed through ``ShimEvaluator``.

promtool 2.42 compares ``exp_samples`` exactly, which a different float summation order could break,
so the stream's output goes into promtool as extra input series ``ours_<n>`` (``stale`` where the
stream stopped emitting a series, so that lookback cannot carry an old value), and at every
evaluation time promtool asserts ``count(record) == N`` and
``count(abs(record - ours_n) <= 1e-9 * abs(ours_n) + 1e-12) == N``, N being the number of series the
stream emitted then. A negative control perturbs one value and expects promtool to fail.

By design the stream emits only output series with an input sample in the request, where Prometheus
keeps evaluating a range or a 5-minute lookback after a series stops: the inputs here stop series
only where their output series stays fed by another input series (or where a staleness marker ends
them in Prometheus too). Labels are compared strictly, job and instance included (read back from the
output resource as a downstream Prometheus exporter would).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, NumberDataPoint

from otel_contract.contract.model import Contract
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal
from otel_contract.render import ArtefactOptions
from otel_contract.render.prometheus_rules import render
from otel_contract.shims import SCOPE_NAME as SHIM_SCOPE
from otel_contract.shims import ShimEvaluator, compile_shims
from tests.conftest import CONTRACTS, REPO, TODAY
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.promtool import promtool_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import RawClient, config_for, running

DATA = REPO / "tests" / "data" / "shims"
EQUIVALENCE = DATA / "equivalence.yaml"
ECOMMERCE = CONTRACTS / "ecommerce.yaml"

# Step 0 of the promtool test is the Unix epoch; the stream gets the same steps from here on (an
# arbitrary minute): PromQL only ever looks at differences of timestamps.
BASE_MS = 1_699_999_200_000
COUNTER_START_NS = (BASE_MS - 3_600_000) * 1_000_000  # one constant start time for every cumulative point
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE: OTLP's staleness marker


# --- promtool's series notation ------------------------------------------------------------------


class _Stale:
    def __repr__(self) -> str:
        return "stale"


STALE = _Stale()
Value = float | _Stale | None  # None: no sample at that step ("_")

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_REPEAT = re.compile(rf"(?P<start>{_NUMBER})(?P<step>[+-](?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)?x(?P<times>\d+)")
_BLANKS = re.compile(r"_x(?P<times>\d+)")
_SERIES = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?")
_LABEL = re.compile(r'\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')


def expand(values: str) -> list[Value]:
    """promtool's expanding notation, as Prometheus 2.42's series grammar reads it.

    ``a`` one sample; ``_`` none; ``stale`` a staleness marker; ``_xN`` N steps without a sample;
    ``axN`` a repeated N+1 times; ``a+bxN`` / ``a-bxN`` the N+1 values a, a+b, ... (the parser adds b
    to a running value, so the floats are those of repeated addition, not of a + i*b).
    """
    out: list[Value] = []
    for token in values.split():
        if token == "_":
            out.append(None)
        elif token == "stale":
            out.append(STALE)
        elif (blanks := _BLANKS.fullmatch(token)) is not None:
            out += [None] * int(blanks["times"])
        elif (repeat := _REPEAT.fullmatch(token)) is not None:
            value, step = float(repeat["start"]), float(repeat["step"] or 0)
            for _ in range(int(repeat["times"]) + 1):
                out.append(value)
                value += step
        else:
            out.append(float(token))
    return out


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``name{label="value", ...}``: the metric name and its labels."""
    match = _SERIES.fullmatch(text.strip())
    assert match is not None, f"not a series: {text!r}"
    labels: dict[str, str] = {}
    body = match["labels"] or ""
    position = 0
    while position < len(body.rstrip()):
        label = _LABEL.match(body, position)
        assert label is not None, f"bad labels in {text!r} at {body[position:]!r}"
        labels[label["name"]] = json.loads(f'"{label["value"]}"')
        position = label.end()
    return match["name"], labels


def format_series(name: str, labels: Mapping[str, str]) -> str:
    inner = ", ".join(f"{key}={json.dumps(value)}" for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def format_value(value: float) -> str:
    assert math.isfinite(value), f"the stream emitted {value}; the comparison needs finite values"
    return repr(value)


# --- the cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    contract: Path
    interval_s: int
    steps: int
    series: tuple[tuple[str, str], ...]  # (series, values)
    records: tuple[str, ...] = ()  # the shims to run; () for every shim that reads the case's series


COUNTERS = (
    ('http_requests_total{job="web", instance="web-1", method="GET", code="200"}', "0+10x29"),
    # a reset at step 4
    ('http_requests_total{job="web", instance="web-2", method="GET", code="200"}', "5+12x3 2+13x25"),
    # two resets, one of them to a value above zero
    ('http_requests_total{job="web", instance="web-2", method="GET", code="500"}', "0 10 20 5 15 25 35 45 3+4x21"),
    ('http_requests_total{job="web", instance="web-1", method="POST", code="500"}', "0+1x29"),
    # starts in the middle of the first 5m window
    ('http_requests_total{job="web", instance="web-1", method="GET", code="404"}', "_x7 3+2x22"),
    ('http_requests_total{job="batch-jobs", instance="web-3", method="GET", code="200"}', "100+7.5x29"),
    ('http_requests_total{job="web", instance="api-1", method="GET", code="200"}', "1+0.1x29"),
)

HISTOGRAM = (
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="GET", le="0.1"}', "0+3x29"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="GET", le="0.5"}', "0+5x29"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="GET", le="1"}', "0+6x29"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="GET", le="+Inf"}', "0+7x29"),
    ('http_request_duration_seconds_count{job="web", instance="web-1", method="GET"}', "0+7x29"),
    ('http_request_duration_seconds_sum{job="web", instance="web-1", method="GET"}', "0+2.15x29"),
    # a reset at step 12 (the process restarted), in every series of the histogram
    ('http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="0.1"}', "0+1x11 0+1x17"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="0.5"}', "0+2x11 0+2x17"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="1"}', "0+4x11 1+4x17"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="+Inf"}', "0+5x11 1+5x17"),
    ('http_request_duration_seconds_count{job="web", instance="web-2", method="GET"}', "0+5x11 1+5x17"),
    ('http_request_duration_seconds_sum{job="web", instance="web-2", method="GET"}', "0+1.7x11 0.3+1.7x17"),
    # starts mid-run
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="POST", le="0.1"}', "_x15 0+0x14"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="POST", le="0.5"}', "_x15 0+1x14"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="POST", le="1"}', "_x15 0+3x14"),
    ('http_request_duration_seconds_bucket{job="web", instance="web-1", method="POST", le="+Inf"}', "_x15 1+3x14"),
    ('http_request_duration_seconds_count{job="web", instance="web-1", method="POST"}', "_x15 1+3x14"),
    ('http_request_duration_seconds_sum{job="web", instance="web-1", method="POST"}', "_x15 1.25+2.5x14"),
)

GAUGES = (
    ('queue_depth{job="broker", instance="mq-1", queue="orders"}', "5 7 3 9 12 4 4 4 8 1 0 2 6+1x17"),
    ('queue_depth{job="broker", instance="mq-2", queue="orders"}', "2+3x14 40-2x14"),
    ('queue_depth{job="broker", instance="mq-1", queue="emails"}', "10-0.5x29"),
    # stops with a staleness marker at step 12 and comes back at step 20
    ('queue_depth{job="broker", instance="mq-1", queue="retired"}', "3+1x11 stale _x7 10+0x9"),
    # stops without a marker after step 17: lookback keeps its last value for 5 minutes
    ('queue_depth{job="broker", instance="mq-1", queue="paused"}', "20+1x17"),
    ('queue_depth{job="broker", instance="mq-2", queue="paused"}', "1+1x29"),
    # starts mid-run
    ('queue_depth{job="worker", instance="wk-1", queue="orders"}', "_x9 7 3 11 5+0.25x17"),
    ('queue_depth{job="worker", instance="wk-2", queue="emails"}', "-1 0 1 2x26"),
)

# contracts/ecommerce.yaml's node_disk_io_time_seconds_total, the acceptance criterion:
# sum by (instance, device) (rate(system_disk_io_time_seconds_total[5m])).
DISK = (
    ('system_disk_io_time_seconds_total{job="hostmetrics", instance="host-a", device="sda"}', "0+0.5x39"),
    # resets in the shape of promtool's docs: '0 10 20 5 15 25'
    (
        'system_disk_io_time_seconds_total{job="hostmetrics", instance="host-a", device="sdb"}',
        "0 10 20 5 15 25 35+9x33",
    ),
    # a second job for the same disk: stops with a staleness marker; range selectors ignore markers
    ('system_disk_io_time_seconds_total{job="node-legacy", instance="host-a", device="sda"}', "0+0.25x14 stale"),
    # starts mid-window
    ('system_disk_io_time_seconds_total{job="hostmetrics", instance="host-b", device="sda"}', "_x7 0+2x32"),
    # stops without a marker after step 19, its disk still fed by the other job
    ('system_disk_io_time_seconds_total{job="node-legacy", instance="host-b", device="sda"}', "0+1.5x19"),
    ('system_disk_io_time_seconds_total{job="hostmetrics", instance="host-b", device="nvme0n1"}', "1000+0.125x39"),
)

# A histogram that goes stale (OTLP: a point flagged "no recorded value", bounds kept) and comes back
# after a restart, read by the shims whose output it cannot keep alive on its own.
HISTOGRAM_STALE = (
    *HISTOGRAM[:6],
    (
        'http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="0.1"}',
        "0+1x13 stale _x7 0+1x7",
    ),
    (
        'http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="0.5"}',
        "0+2x13 stale _x7 0+2x7",
    ),
    (
        'http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="1"}',
        "0+4x13 stale _x7 1+4x7",
    ),
    (
        'http_request_duration_seconds_bucket{job="web", instance="web-2", method="GET", le="+Inf"}',
        "0+5x13 stale _x7 1+5x7",
    ),
    ('http_request_duration_seconds_count{job="web", instance="web-2", method="GET"}', "0+5x13 stale _x7 1+5x7"),
    ('http_request_duration_seconds_sum{job="web", instance="web-2", method="GET"}', "0+1.7x13 stale _x7 0.3+1.7x7"),
)

CASES = (
    Case("counters", EQUIVALENCE, 60, 30, COUNTERS),
    Case("histogram", EQUIVALENCE, 60, 30, HISTOGRAM),
    Case(
        "histogram-stale",
        EQUIVALENCE,
        60,
        30,
        HISTOGRAM_STALE,
        ("le:http_request_duration_seconds_bucket:rate5m", "legacy_request_duration_seconds_sum"),
    ),
    Case("gauges", EQUIVALENCE, 60, 30, GAUGES),
    Case("ecommerce-disk-1m", ECOMMERCE, 60, 40, DISK),
    Case("ecommerce-disk-15s", ECOMMERCE, 15, 40, DISK),
)


# --- input series -> OTLP, one request per step --------------------------------------------------


@dataclass(frozen=True)
class InputSeries:
    name: str
    labels: Mapping[str, str]
    values: Sequence[Value]


def input_series(case: Case) -> list[InputSeries]:
    out = []
    for text, values in case.series:
        name, labels = parse_series(text)
        expanded = expand(values)
        assert len(expanded) <= case.steps, f"{text}: {len(expanded)} values for {case.steps} steps"
        out.append(InputSeries(name, labels, expanded))
    return out


def metric_types(contract: Contract) -> dict[str, str]:
    return {metric.name: metric.type.value for metric in contract.metrics}


def _resource_key(labels: Mapping[str, str]) -> tuple[str, str]:
    return labels.get("job", ""), labels.get("instance", "")


def _attributes(labels: Mapping[str, str], *drop: str) -> list[KeyValue]:
    return [
        KeyValue(key=key, value=AnyValue(string_value=value))
        for key, value in sorted(labels.items())
        if key not in ("job", "instance", *drop)
    ]


def _number_point(point: NumberDataPoint, labels: Mapping[str, str], time_ns: int, value: Value) -> None:
    point.time_unix_nano = time_ns
    point.attributes.extend(_attributes(labels))
    if value is STALE:
        point.flags = _NO_RECORDED_VALUE
    else:
        assert isinstance(value, float)
        point.as_double = value


class _Request:
    """One step's request under construction: a ResourceMetrics per job/instance, a Metric per name."""

    def __init__(self) -> None:
        self.message = ExportMetricsServiceRequest()
        self._resources: dict[tuple[str, str], Any] = {}
        self._metrics: dict[tuple[tuple[str, str], str], Metric] = {}

    def metric(self, labels: Mapping[str, str], name: str) -> Metric:
        target = _resource_key(labels)
        metric = self._metrics.get((target, name))
        if metric is None:
            resource = self._resources.get(target)
            if resource is None:
                resource = self._resources[target] = self.message.resource_metrics.add()
                job, instance = target
                if job:
                    resource.resource.attributes.add(key="service.name", value=AnyValue(string_value=job))
                if instance:
                    resource.resource.attributes.add(key="service.instance.id", value=AnyValue(string_value=instance))
                resource.scope_metrics.add().scope.name = "equivalence-test"
            metric = self._metrics[(target, name)] = resource.scope_metrics[0].metrics.add()
            metric.name = name
        return metric


def requests(case: Case, contract: Contract, series: Sequence[InputSeries]) -> Iterator[ExportMetricsServiceRequest]:
    """One request per step with every sample of that step: job/instance become the resource's
    service.name/service.instance.id, counters cumulative monotonic sums with one start time, and the
    _bucket{le}/_count/_sum series of one histogram one HistogramDataPoint (per-bucket counts)."""
    types = metric_types(contract)
    for step in range(case.steps):
        time_ns = (BASE_MS + step * case.interval_s * 1000) * 1_000_000
        request = _Request()
        # (labels without le, histogram name) -> {"bucket": {le: value}, "count": value, "sum": value}
        histograms: dict[tuple[tuple[tuple[str, str], ...], str], dict[str, Any]] = {}
        for one in series:
            value = one.values[step] if step < len(one.values) else None
            if value is None:
                continue
            kind = types.get(one.name)
            if kind == "sum":
                metric = request.metric(one.labels, one.name)
                metric.sum.aggregation_temporality = _CUMULATIVE
                metric.sum.is_monotonic = True
                point = metric.sum.data_points.add()
                point.start_time_unix_nano = COUNTER_START_NS
                _number_point(point, one.labels, time_ns, value)
                continue
            if kind == "gauge":
                _number_point(request.metric(one.labels, one.name).gauge.data_points.add(), one.labels, time_ns, value)
                continue
            base, _, part = one.name.rpartition("_")
            assert types.get(base) == "histogram" and part in ("bucket", "count", "sum"), f"not in the contract: {one}"
            rest = tuple(sorted((key, label) for key, label in one.labels.items() if key != "le"))
            parts = histograms.setdefault((rest, base), {"bucket": {}})
            if part == "bucket":
                parts["bucket"][float(one.labels["le"])] = value
            else:
                parts[part] = value
        for (rest, base), parts in histograms.items():
            _histogram_point(request.metric(dict(rest), base), dict(rest), time_ns, parts)
        yield request.message


def _histogram_point(metric: Metric, labels: Mapping[str, str], time_ns: int, parts: Mapping[str, Any]) -> None:
    metric.histogram.aggregation_temporality = _CUMULATIVE
    point = metric.histogram.data_points.add()
    point.time_unix_nano = time_ns
    point.start_time_unix_nano = COUNTER_START_NS
    point.attributes.extend(_attributes(labels))
    values = [*parts["bucket"].values(), parts.get("count"), parts.get("sum")]
    if all(value is STALE for value in values):
        # As the Collector's Prometheus receiver writes a stale histogram: flagged, bounds kept so
        # that every bucket series goes stale, counts zero.
        point.flags = _NO_RECORDED_VALUE
        point.explicit_bounds.extend(sorted(parts["bucket"])[:-1])
        point.bucket_counts.extend([0] * len(parts["bucket"]))
        return
    assert all(isinstance(value, float) for value in values), f"{metric.name}{labels} is incomplete: {parts}"
    bounds = sorted(parts["bucket"])
    assert bounds[-1] == math.inf and parts["bucket"][math.inf] == parts["count"], parts
    cumulative = [parts["bucket"][bound] for bound in bounds]
    point.explicit_bounds.extend(bounds[:-1])
    point.bucket_counts.extend(_whole(b - a) for a, b in zip([0.0, *cumulative], cumulative, strict=False))
    point.count = _whole(parts["count"])
    point.sum = parts["sum"]


def _whole(value: float) -> int:
    assert value >= 0 and value == int(value), f"a histogram count must be a whole number >= 0, not {value}"
    return int(value)


def _resource_of(resource_metrics: Any) -> tuple[str, str]:
    attributes = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
    job = attributes.get("service.name", "")
    if "service.namespace" in attributes:
        job = f"{attributes['service.namespace']}/{job}"
    return job, attributes.get("service.instance.id", "")


# --- the stream's side ---------------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]
Outputs = list[dict[str, dict[Labels, float]]]  # per step: record -> labels -> value


def emitted_points(payload: bytes) -> Iterator[tuple[str, int, Labels, float]]:
    """(record, time in ns, labels, value) of every shim point in a serialized metrics request, job and
    instance read back from the resource as a downstream Prometheus exporter derives them."""
    for resource_metrics in ExportMetricsServiceRequest.FromString(payload).resource_metrics:
        job, instance = _resource_of(resource_metrics)
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != SHIM_SCOPE:
                continue
            for metric in scope_metrics.metrics:
                data = metric.sum if metric.WhichOneof("data") == "sum" else metric.gauge
                for point in data.data_points:
                    labels = {kv.key: kv.value.string_value for kv in point.attributes}
                    labels.update({"job": job} if job else {})
                    labels.update({"instance": instance} if instance else {})
                    yield metric.name, point.time_unix_nano, tuple(sorted(labels.items())), point.as_double


def _record(outputs: Outputs, record: str, step: int, labels: Labels, value: float) -> None:
    assert labels not in outputs[step][record], f"{record}{labels} emitted twice at step {step}"
    outputs[step][record][labels] = value


def stream_outputs(case: Case, contract: Contract, series: Sequence[InputSeries]) -> Outputs:
    shims = compile_shims(contract)
    evaluator = ShimEvaluator(shims, contract=contract.id)
    outputs: Outputs = []
    for step, request in enumerate(requests(case, contract, series)):
        result = evaluator.evaluate(request, today=TODAY)
        outputs.append({shim.record: {} for shim in shims})
        points = 0
        for record, time_ns, labels, value in emitted_points(result.payload):
            assert time_ns == (BASE_MS + step * case.interval_s * 1000) * 1_000_000
            _record(outputs, record, step, labels, value)
            points += 1
        assert points == result.points
    return outputs


def _canonical_times(sink: OtlpSink) -> set[int]:
    return {
        point.time_unix_nano
        for received in sink.requests
        for rm in ExportMetricsServiceRequest.FromString(received.payload).resource_metrics
        for sm in rm.scope_metrics
        if sm.scope.name != SHIM_SCOPE
        for metric in sm.metrics
        for point in metric.sum.data_points
    }


def sidecar_outputs(case: Case, contract: Contract, series: Sequence[InputSeries], sink: OtlpSink) -> Outputs:
    """The same requests through a running sidecar (real gRPC on loopback) with the case's contract
    file; the shims' points are read back from what the sink received."""
    sent = list(requests(case, contract, series))
    times = {(BASE_MS + step * case.interval_s * 1000) * 1_000_000 for step in range(len(sent))}
    with running(config_for(case.contract, sink.endpoint)) as sidecar:
        client = RawClient(sidecar.endpoint)
        for request in sent:
            client.export(Signal.METRICS, request.SerializeToString())
        client.close()
        assert sink.wait_for(lambda: times <= _canonical_times(sink), timeout=30)
    outputs: Outputs = [{shim.record: {} for shim in contract.compat} for _ in sent]
    for received in sink.requests:
        for record, time_ns, labels, value in emitted_points(received.payload):
            step, rest = divmod(time_ns // 1_000_000 - BASE_MS, case.interval_s * 1000)
            assert rest == 0, f"{record} at {time_ns}: not an input sample's time"
            _record(outputs, record, step, labels, value)
    return outputs


def case_contract(case: Case) -> Contract:
    """The case's contract with only the case's shims, or those that read a series the case feeds."""
    contract = load_contract(case.contract, today=TODAY).contract
    if case.records:
        kept = tuple(shim for shim in contract.compat if shim.record in case.records)
        assert len(kept) == len(case.records), f"{case.id}: unknown records"
    else:
        fed = {parse_series(text)[0] for text, _ in case.series}
        kept = tuple(shim.shim for shim in compile_shims(contract) if any(name in fed for name in shim.reads))
    return dataclasses.replace(contract, compat=kept)


# --- the promtool side ---------------------------------------------------------------------------


def duration(milliseconds: int) -> str:
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def promtool_test(case: Case, contract: Contract, outputs: Outputs) -> dict[str, Any]:
    """The unit test file: the inputs, the stream's output as ``ours_<n>`` series, and per
    evaluation time and shim a count and an agreement-within-tolerance assertion."""
    step_ms = case.interval_s * 1000
    inputs = [{"series": text, "values": values} for text, values in case.series]
    tests: list[dict[str, Any]] = []
    for number, shim in enumerate(contract.compat):
        record = shim.record
        ours = f"ours_{number}"
        for labels in dict.fromkeys(key for step in outputs for key in step[record]):
            tokens: list[str] = []
            for step in outputs:
                if labels in step[record]:
                    tokens.append(format_value(step[record][labels]))
                else:
                    # stale right after the last value, so that lookback cannot carry it on
                    tokens.append("stale" if tokens and tokens[-1] not in ("_", "stale") else "_")
            inputs.append({"series": format_series(ours, dict(labels)), "values": " ".join(tokens)})
        for index, step in enumerate(outputs):
            count = len(step[record])
            expected = [{"labels": "{}", "value": count}] if count else []
            eval_time = duration(index * step_ms)
            tests.append({"expr": f"count({record})", "eval_time": eval_time, "exp_samples": expected})
            tests.append(
                {
                    "expr": f"count(abs({record} - {ours}) <= 1e-9 * abs({ours}) + 1e-12)",
                    "eval_time": eval_time,
                    "exp_samples": expected,
                }
            )
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": duration(step_ms),
        "tests": [{"name": case.id, "interval": duration(step_ms), "input_series": inputs, "promql_expr_test": tests}],
    }


def run_promtool(
    promtool: str, directory: Path, contract: Contract, test: Mapping[str, Any]
) -> subprocess.CompletedProcess[str]:
    (directory / "rules.yml").write_text(render(contract, ArtefactOptions(today=TODAY)), encoding="utf-8")
    (directory / "test.yml").write_text(yaml.safe_dump(dict(test), sort_keys=False), encoding="utf-8")
    return subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def prepared(case: Case) -> tuple[Contract, Outputs]:
    contract = case_contract(case)
    assert contract.compat, f"{case.id}: no shim reads the case's series"
    return contract, stream_outputs(case, contract, input_series(case))


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_stream_records_what_prometheus_records(promtool: str, tmp_path: Path, case: Case) -> None:
    contract, outputs = prepared(case)
    if case.contract == ECOMMERCE:  # the acceptance criterion
        assert [shim.record for shim in contract.compat] == ["node_disk_io_time_seconds_total"]
    for shim in contract.compat:
        emitting = sum(1 for step in outputs if step[shim.record])
        # Not vacuous: every shim emits at most steps (all but the first few, which a range needs).
        assert emitting >= case.steps // 2, f"{shim.record} emitted at {emitting} of {case.steps} steps"
    result = run_promtool(promtool, tmp_path, contract, promtool_test(case, contract, outputs))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_the_sidecar_forwards_what_prometheus_records(promtool: str, tmp_path: Path, otlp_sink: OtlpSink) -> None:
    """The issue's acceptance criterion end to end: contracts/ecommerce.yaml in a running sidecar."""
    (case,) = [case for case in CASES if case.id == "ecommerce-disk-1m"]
    contract = case_contract(case)
    outputs = sidecar_outputs(case, contract, input_series(case), otlp_sink)
    assert outputs == stream_outputs(case, contract, input_series(case))
    assert sum(1 for step in outputs if step["node_disk_io_time_seconds_total"]) >= case.steps // 2
    result = run_promtool(promtool, tmp_path, contract, promtool_test(case, contract, outputs))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_promtool_fails_when_one_value_differs(promtool: str, tmp_path: Path) -> None:
    case = CASES[0]
    contract, outputs = prepared(case)
    record = contract.compat[0].record
    step = next(step for step in outputs[10:] if step[record])
    labels = next(iter(step[record]))
    step[record][labels] = step[record][labels] * 1.001 + 0.001
    result = run_promtool(promtool, tmp_path, contract, promtool_test(case, contract, outputs))
    assert result.returncode != 0
    assert f"count(abs({record} - ours_0)" in result.stdout + result.stderr
    # The count of the record itself still agrees: only the value assertion fails.
    assert f'expr: "count({record})"' not in result.stdout + result.stderr


def test_the_converter_reads_the_notation_as_promtool_does(promtool: str, tmp_path: Path) -> None:
    """The OTLP side gets the values promtool loads: each input series, at each step, is there with
    exactly the expanded value (or absent, for ``_`` and ``stale``)."""
    tests: list[dict[str, Any]] = []
    inputs: list[dict[str, str]] = []
    for case in (case for case in CASES if case.interval_s == 60):
        for number, (one, (_, values)) in enumerate(zip(input_series(case), case.series, strict=True)):
            # A name of its own per series so that the cases' series do not meet.
            name = f"check_{case.id.replace('-', '_')}_{number}"
            inputs.append({"series": format_series(name, one.labels), "values": values})
            selector = format_series(name, one.labels)
            for step in range(case.steps):
                value = one.values[step] if step < len(one.values) else None
                at = step * 60
                expected = [{"labels": selector, "value": value}] if isinstance(value, float) else []
                tests.append(
                    {
                        "expr": f"{selector} and timestamp({selector}) == {at}",
                        "eval_time": f"{at}s",
                        "exp_samples": expected,
                    }
                )
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}],
    }
    (tmp_path / "rules.yml").write_text("groups: []\n", encoding="utf-8")
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert sum(1 for case in CASES for _, values in case.series if "stale" in values) >= 2


def test_expand_follows_the_documented_examples() -> None:
    # The examples of Prometheus' "Unit testing for rules" page, and the shorthands of its grammar.
    assert expand("-2+4x3") == [-2.0, 2.0, 6.0, 10.0]
    assert expand(" 1-2x4") == [1.0, -1.0, -3.0, -5.0, -7.0]
    assert expand("1 _ 3 _x2 5x2 stale") == [1.0, None, 3.0, None, None, 5.0, 5.0, 5.0, STALE]
    assert expand("0.1+0.1x2") == [0.1, 0.2, 0.1 + 0.1 + 0.1]
