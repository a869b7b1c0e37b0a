"""``render collector``: the rendered configuration passes ``otelcol validate``, and on the real
Collector (tools/otelcol) it does to requests what the sidecar's pipeline (``normalize``) does, for
everything its header says the Collector enforces."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_contract.contract.compiled import CompiledMetric, compile_contract
from otel_contract.contract.model import Contract, Metric, Temporality
from otel_contract.inputs.otlp import read_captures
from otel_contract.loading import load_contract
from otel_contract.otlp import FACTS, Signal, to_otlp_json
from otel_contract.prometheus_names import SeriesPart
from otel_contract.shims import SCOPE_NAME, observations
from tests.conftest import CONTRACTS, run_cli
from tests.otelcol import Collector, otelcol_fixture  # noqa: F401 - the fixture
from tests.otlp_builders import (
    all_metrics,
    as_collector_compares,
    attrs,
    counter,
    gauge,
    histogram,
    hpoint,
    logs_request,
    metrics_request,
    point_attrs,
    traces_request,
)
from tests.sidecar_harness import RawClient, free_port, wait_until

_ECOMMERCE = CONTRACTS / "ecommerce.yaml"
# What ecommerce.yaml requires of a resource, so that the sidecar's flags leave the data as it is.
_RESOURCE = {
    "service.name": "checkout",
    "k8s.pod.name": "checkout-7d9f8",
    "k8s.namespace.name": "shop",
}


def _render(contract: Path, *args: str) -> str:
    result = run_cli("render", "collector", "-c", str(contract), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("contract", sorted(CONTRACTS.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_rendered_config_passes_otelcol_validate(otelcol: str, tmp_path: Path, contract: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(_render(contract, "--exporter-endpoint", "127.0.0.1:4317"), "utf-8")
    result = subprocess.run(
        [otelcol, "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"DEPLOY_ENV": "prod", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _requests() -> list[tuple[Signal, Any]]:
    """Every construct ecommerce.yaml's header lists as enforced: an alias with ms -> s on a histogram
    (bounds, sum), an alias without a unit change, renamed and retyped attributes on points, spans, span
    events and log records (one with both the legacy and the canonical key), a forbidden attribute, and
    the resource actions."""
    legacy = histogram(
        "http.server.duration",
        [
            hpoint({"http.method": "GET", "http_status": "200"}, [100, 500], [1, 2, 0], 900),
            hpoint({"http.method": "GET", "http_status": "200", "user.id": "u-1"}, [100, 500], [1, 0, 0], 50),
        ],
        unit="ms",
    )
    requests_total = counter("http.server.request.count", [({"http.method": "POST", "status_code": "503"}, 7.0)])
    span = {
        "name": "GET /cart",
        "attributes": attrs({"status_code": "404"}),
        "events": [{"name": "retry", "attributes": attrs({"http_status": "503"})}],
    }
    # Both the legacy and the canonical key: the canonical one is kept, as the sidecar keeps it.
    record = {
        "body": {"stringValue": "timeout"},
        "attributes": attrs({"http_status": "500", "http.status_code": "501"}),
    }
    return [
        (Signal.METRICS, metrics_request(legacy, requests_total, resource=_RESOURCE)),
        (Signal.TRACES, traces_request([span], resource=_RESOURCE)),
        (Signal.LOGS, logs_request([record], resource=_RESOURCE)),
    ]


def _read(path: Path, signal: Signal) -> list[Any]:
    if not path.exists() or not path.read_bytes().endswith(b"\n"):
        return []
    return [
        as_collector_compares(capture.request, sort_attributes=True)
        for capture in read_captures(path)
        if capture.signal is signal
    ]


def _through_both(
    otelcol: str, directory: Path, contract: Path, requests: list[tuple[Signal, Any]], forwarded: dict[Signal, int]
) -> tuple[Path, Path]:
    """``requests`` through the real Collector running the rendered configuration (until its file has
    ``forwarded`` requests of each signal) and through ``normalize``: the two output files."""
    port, out = free_port(), directory / "collector-out.jsonl"
    config = yaml.safe_load(_render(contract, "--receiver-endpoint", f"127.0.0.1:{port}", "--file", str(out)))
    config["exporters"]["file"]["flush_interval"] = "100ms"
    collector = Collector(otelcol, directory, "rendered", config, port).start()
    try:
        client = RawClient(collector.endpoint)
        for signal, request in requests:
            client.export(signal, request.SerializeToString())
        client.close()
        arrived = lambda: all(len(_read(out, signal)) == count for signal, count in forwarded.items())  # noqa: E731
        assert wait_until(arrived, timeout=30), collector.output()
    finally:
        collector.stop()
    capture = directory / "sent.jsonl"
    capture.write_text("".join(json.dumps(to_otlp_json(request)) + "\n" for _, request in requests), "utf-8")
    normalized = directory / "normalized.jsonl"
    result = run_cli("normalize", "-c", str(contract), str(capture), "-o", str(normalized))
    assert result.returncode in (0, 1), result.stderr
    return out, normalized


_EXPONENTIAL = {
    "name": "http.server.duration",
    "unit": "ms",
    "exponentialHistogram": {
        "aggregationTemporality": 2,
        "dataPoints": [
            {
                "attributes": attrs({"http.method": "GET", "http.status_code": 200}),
                "timeUnixNano": "1700000000000000000",
                "count": "3",
                "sum": 300.0,
                "scale": 0,
                "positive": {"offset": 5, "bucketCounts": ["1", "2"]},
            }
        ],
    },
}


def test_the_rendered_config_on_the_real_collector_does_what_the_sidecar_does(
    otelcol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_ENV", "prod")  # from_env: the Collector's ${env:DEPLOY_ENV}, the sidecar's env
    # Last, an exponential histogram under the alias of a histogram: a type-mismatch, which ecommerce
    # rejects; the Collector's filter drops it as the sidecar does (before it was rendered, the
    # Collector forwarded it under its legacy name).
    requests = [*_requests(), (Signal.METRICS, metrics_request(_EXPONENTIAL, resource=_RESOURCE))]
    out, normalized = _through_both(otelcol, tmp_path, _ECOMMERCE, requests, dict.fromkeys(Signal, 1))
    for signal in Signal:
        by_collector, by_sidecar = _read(out, signal), _read(normalized, signal)
        assert by_collector == by_sidecar, f"{signal}:\n{by_collector}\n---\n{by_sidecar}"
        assert isinstance(by_collector[0], FACTS[signal].request_type)


_FULLY_COVERED = """\
contract: gateway
version: 1.0.0
defaults: {unknown_metrics: reject}
policy: {unit-mismatch: flag, invalid-data-point: flag}
metrics:
  - name: queue_depth
    type: gauge
    aliases: [{name: queue.depth}]
    attributes: {forbidden: [user.id]}
"""


def test_check_exits_1_naming_what_only_the_sidecar_can_do(tmp_path: Path) -> None:
    destination = ("--exporter-endpoint", "backend:4317")
    result = run_cli(
        "render", "collector", "-c", str(_ECOMMERCE), *destination, "--check", "-o", str(tmp_path / "c.yaml")
    )
    assert result.returncode == 1
    gaps = [line for line in result.stderr.splitlines() if "only the sidecar can enforce" in line]
    assert any("compat shim node_disk_io_time_seconds_total" in line for line in gaps), result.stderr
    assert any("cardinality on" in line for line in gaps)
    assert (tmp_path / "c.yaml").read_text("utf-8").startswith("# Generated by otel-contract")  # written all the same
    covered = tmp_path / "gateway.yaml"
    covered.write_text(_FULLY_COVERED, "utf-8")
    full = run_cli("render", "collector", "-c", str(covered), *destination, "--check")
    assert full.returncode == 0, full.stderr
    config = yaml.safe_load(full.stdout)
    assert config["processors"]["filter"]["metrics"] == {
        "metric": [
            'metric.name != "queue.depth" and metric.name != "queue_depth"',
            'metric.name == "queue_depth" and not metric.type == METRIC_DATA_TYPE_GAUGE',
        ],
        "datapoint": ['metric.name == "queue_depth" and datapoint.attributes["user.id"] != nil'],
    }


def test_an_annotation_unit_is_listed_as_converted_by_the_sidecar_only(tmp_path: Path) -> None:
    """'%' data for a '{message}' metric: the sidecar scales it (both are dimensionless), the Collector
    keeps it as it came, so --check names the difference (it used to call such a contract covered)."""
    contract = tmp_path / "gateway.yaml"
    contract.write_text(_FULLY_COVERED.replace("type: gauge", "type: gauge\n    unit: '{message}'"), "utf-8")
    result = run_cli("render", "collector", "-c", str(contract), "--processors-only", "--check")
    assert result.returncode == 1
    assert "units that arrive otherwise" in result.stderr
    capture = tmp_path / "in.json"
    request = metrics_request(gauge("queue_depth", [({}, 50.0)], unit="%"), resource=_RESOURCE)
    capture.write_text(json.dumps(to_otlp_json(request)), "utf-8")
    normalized = run_cli("normalize", "-c", str(contract), str(capture), "-o", str(tmp_path / "out.json"))
    assert normalized.returncode == 0, normalized.stderr
    ((_, out),) = [(c.signal, c.request) for c in read_captures(tmp_path / "out.json")]
    (metric,) = all_metrics(out)
    assert (metric.unit, metric.gauge.data_points[0].as_double) == ("{message}", 0.5)


def test_processors_only_is_what_to_paste_into_an_existing_config() -> None:
    config = yaml.safe_load(_render(_ECOMMERCE, "--processors-only"))
    assert set(config) == {"processors", "service"}
    assert set(config["processors"]) == {"resource", "transform", "filter"}
    assert config["service"]["pipelines"]["metrics"] == {"processors": ["resource", "transform", "filter"]}
    assert config["service"]["pipelines"]["traces"] == {"processors": ["resource", "transform"]}


def test_a_config_without_a_destination_is_refused_naming_the_options() -> None:
    result = run_cli("render", "collector", "-c", str(_ECOMMERCE))
    assert result.returncode == 2 and not result.stdout
    assert (
        "a gateway needs a destination: pass --exporter-endpoint HOST:PORT (otlp_grpc) or --file PATH" in result.stderr
    )


def test_check_and_collector_options_apply_to_render_collector_only() -> None:
    for flags in (("--check",), ("--processors-only",), ("--file", "x.jsonl")):
        result = run_cli("render", "rules", "-c", str(_ECOMMERCE), *flags)
        assert result.returncode == 2 and "does not apply to render rules" in result.stderr, result.stderr


_REJECTING = """\
contract: gateway
version: 1.0.0
defaults: {unknown_metrics: reject}
policy: {attribute-value: reject, missing-resource-attribute: reject, resource-attribute-value: reject,
         missing-attribute: reject}
resource: {required: [service.name], attributes: {env: {allowed: [prod]}}}
attributes:
  renames: {status_code: http.status_code}
  types: {http.status_code: int}
metrics:
  - name: queue_depth_bytes
    type: gauge
    unit: By
    aliases: [{name: queue.depth, unit: KiBy}]
    attributes:
      renames: {q: queue}
      forbidden: [user.id]
      values: {queue: [orders, refunds]}
  - name: jobs_total
    type: sum
    unit: '{job}'
    monotonic: true
    aliases: [{name: jobs.count, unit: '{job}'}]
    attributes: {required: [http.status_code]}
  - name: job_duration_seconds
    type: summary
    unit: s
    aliases: [{name: job.duration, unit: ms}]
"""
_SUMMARY = {
    "name": "job.duration",
    "unit": "ms",
    "summary": {
        "dataPoints": [
            {
                "timeUnixNano": "1700000000000000000",
                "count": "10",
                "sum": 5000.0,
                "quantileValues": [{"quantile": 0.5, "value": 120.0}, {"quantile": 0.99, "value": 900.0}],
            }
        ]
    },
}


def _rejecting_requests() -> list[Any]:

    depth = gauge(
        "queue.depth",
        [({"q": "orders"}, 2.0), ({"q": "spam"}, 3.0), ({"q": "refunds", "user.id": "u-1"}, 4.0)],
        unit="KiBy",
    )
    # Converts: "200" and 2.0; does not convert, so rejected: "abc", 1.5, true; missing, so rejected: {}.
    statuses: list[dict[str, Any]] = [{"status_code": v} for v in ("200", "abc", 1.5, True, 2.0)] + [{}]
    jobs = counter("jobs.count", [(status, 5.0) for status in statuses], unit="{job}")
    mystery = counter("mystery_total", [({}, 1.0)])
    # type-mismatch, rejected by default: a non-monotonic sum for a counter, a sum for a gauge.
    updown = counter("jobs.count", [({"status_code": "209"}, 1.0)], unit="{job}", monotonic=False)
    summed = counter("queue.depth", [({"q": "orders"}, 1.0)], unit="KiBy")
    one = counter("jobs.count", [({"status_code": "200"}, 1.0)], unit="{job}")
    span = {"name": "job", "attributes": attrs({"status_code": "201"})}
    record = {"body": {"stringValue": "done"}, "attributes": attrs({"status_code": "202"})}
    good, dev, anonymous = {"service.name": "worker", "env": "prod"}, {"service.name": "w", "env": "dev"}, {}
    return [
        (Signal.METRICS, metrics_request(depth, jobs, mystery, _SUMMARY, updown, summed, resource=good)),
        (Signal.METRICS, metrics_request(one, resource={"host.name": "no-service"})),
        (Signal.METRICS, metrics_request(one, resource=dev)),
        *((Signal.TRACES, traces_request([span], resource=resource)) for resource in (good, dev, anonymous)),
        *((Signal.LOGS, logs_request([record], resource=resource)) for resource in (good, dev, anonymous)),
    ]


def test_what_the_contract_rejects_the_rendered_filter_drops_as_the_sidecar_does(otelcol: str, tmp_path: Path) -> None:
    """Reject actions on every filter rule (disallowed values and types, forbidden and missing keys, unknown
    metrics, type mismatches, a missing or disallowed resource attribute, on every signal), a per-metric
    rename, a gauge scaled from KiBy to By and a sum renamed as is."""
    contract = tmp_path / "gateway.yaml"
    contract.write_text(_REJECTING, "utf-8")
    out, normalized = _through_both(otelcol, tmp_path, contract, _rejecting_requests(), dict.fromkeys(Signal, 1))
    for signal in Signal:
        by_collector, by_sidecar = _read(out, signal), _read(normalized, signal)
        assert by_collector == by_sidecar, f"{signal}:\n{by_collector}\n---\n{by_sidecar}"
    (request,) = _read(out, Signal.METRICS)
    metrics = {metric.name: metric for metric in all_metrics(request)}
    assert set(metrics) == {"queue_depth_bytes", "jobs_total", "job_duration_seconds"}  # mystery_total: unknown
    summary = metrics["job_duration_seconds"].summary.data_points[0]  # ms -> s: the sum and every quantile
    assert (summary.sum, [q.value for q in summary.quantile_values]) == (5.0, [0.12, 0.9])
    (point,) = metrics["queue_depth_bytes"].gauge.data_points  # spam was not allowed, user.id forbidden
    assert (point_attrs(point), point.as_double) == ({"queue": "orders"}, 2048.0)
    assert [point_attrs(p) for p in metrics["jobs_total"].sum.data_points] == [
        {"http.status_code": 200},
        {"http.status_code": 2},
    ]
    (spans,) = _read(out, Signal.TRACES)
    assert [kv.value.int_value for kv in spans.resource_spans[0].scope_spans[0].spans[0].attributes] == [201]


_SHIMS = """\
contract: legacy
version: 1.0.0
defaults: {unknown_metrics: reject}
metrics:
  - {name: process_memory_usage_bytes, type: gauge, unit: By}
  - {name: jobs_processed_total, type: sum, unit: '{job}', monotonic: true}
  - {name: queue_length, type: sum, unit: '{message}', monotonic: false}
compat:
  - record: process_resident_memory_kilobytes
    expr: process_memory_usage_bytes / 1024
    labels: {source: shim}
    expires: 2099-01-01
  - {record: legacy_jobs_total, expr: jobs_processed_total, expires: 2099-01-01}
  - {record: legacy_queue_length, expr: queue_length, expires: 2099-01-01}
  - {record: legacy_jobs_rate, expr: 'rate(jobs_processed_total[5m])', expires: 2099-01-01}
"""
_COPIES = {"process_resident_memory_kilobytes", "legacy_jobs_total", "legacy_queue_length"}


def _timed(metric: dict[str, Any], seconds: int) -> dict[str, Any]:
    for point in next(value for key, value in metric.items() if key in ("sum", "gauge"))["dataPoints"]:
        point["timeUnixNano"] = str(seconds * 1_000_000_000)
    return metric


def _shim_requests() -> list[Any]:
    resource = {"service.name": "worker", "service.instance.id": "worker-1"}
    return [
        metrics_request(
            _timed(
                gauge(
                    "process_memory_usage_bytes", [({"pool": "heap"}, 4096.0), ({"pool": "stack"}, 512.0)], unit="By"
                ),
                at,
            ),
            _timed(counter("jobs_processed_total", [({"queue": "orders"}, total)], unit="{job}"), at),
            _timed(counter("queue_length", [({"queue": "orders"}, 3.0)], unit="{message}", monotonic=False), at),
            resource=resource,
        )
        for at, total in ((1_700_000_000, 10.0), (1_700_000_060, 70.0))
    ]


def _from_upstream() -> Any:
    """A shim's series as a sidecar upstream emits it (in the compat scope), and an unknown metric."""
    request = metrics_request(counter("mystery_total", [({}, 1.0)]), resource={"service.name": "worker"})
    scope = request.resource_metrics[0].scope_metrics.add()
    scope.scope.name = SCOPE_NAME
    scope.metrics.append(
        all_metrics(metrics_request(_timed(counter("legacy_jobs_total", [({}, 5.0)]), 1_700_000_100)))[0]
    )
    return request


def _series(requests: list[Any], names: set[str]) -> set[tuple[str, Any, float, int]]:
    """The Prometheus samples (name, labels with job and instance, value, time) of the ``names`` metrics."""
    found = set()
    for request in requests:
        for resource_metrics in request.resource_metrics:
            resource = tuple(sorted((kv.key, kv.value.string_value) for kv in resource_metrics.resource.attributes))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name in names:
                        wanted = {metric.name: SeriesPart(metric.name, "value")}
                        found |= {
                            (o.name, o.labels, round(o.value, 9), o.time)
                            for o in observations(metric, wanted, resource)
                        }
    return found


def test_compat_shims_that_copy_a_metric_become_copy_metric_and_give_the_same_series(
    otelcol: str, tmp_path: Path
) -> None:
    contract = tmp_path / "legacy.yaml"
    contract.write_text(_SHIMS, "utf-8")
    rendered = yaml.safe_load(_render(contract, "--processors-only"))
    assert rendered["service"]["pipelines"]["metrics"]["processors"] == ["filter", "transform/compat"]
    assert "transform/compat" not in rendered["service"]["pipelines"]["traces"]["processors"]
    requests = [(Signal.METRICS, request) for request in [*_shim_requests(), _from_upstream()]]
    out, normalized = _through_both(otelcol, tmp_path, contract, requests, {Signal.METRICS: 3})
    by_collector, by_sidecar = _read(out, Signal.METRICS), _read(normalized, Signal.METRICS)
    copied = _series(by_collector, _COPIES)
    assert copied == _series(by_sidecar, _COPIES)
    assert (
        "process_resident_memory_kilobytes",
        (("instance", "worker-1"), ("job", "worker"), ("pool", "heap"), ("source", "shim")),
        4.0,
        1_700_000_000_000,
    ) in copied
    assert len(copied) == 2 * 4 + 1  # two requests of 2 memory pools, jobs and queue; the upstream sidecar's
    assert by_collector[2] == by_sidecar[2]  # unknown mystery_total dropped, the upstream shim's series kept
    assert [m.name for m in all_metrics(by_collector[2])] == ["legacy_jobs_total"]
    kinds = {
        m.name: (m.WhichOneof("data"), m.unit) for r in by_collector[:2] for m in all_metrics(r) if m.name in _COPIES
    }
    assert kinds == {
        "process_resident_memory_kilobytes": ("gauge", "KiBy"),
        "legacy_jobs_total": ("sum", "{job}"),
        "legacy_queue_length": ("gauge", "{message}"),
    }
    # The one difference, the one the header lists: the rate only the sidecar evaluates.
    assert not _series(by_collector, {"legacy_jobs_rate"})
    (rate,) = _series(by_sidecar, {"legacy_jobs_rate"})  # from the second request on, as Prometheus's rate
    assert (
        rate[1] == (("instance", "worker-1"), ("job", "worker"), ("queue", "orders")) and rate[3] == 1_700_000_060_000
    )
    canonical = {"process_memory_usage_bytes", "jobs_processed_total", "queue_length"}
    assert _series(by_collector, canonical) == _series(by_sidecar, canonical)
    check = run_cli("render", "collector", "-c", str(contract), "--processors-only", "--check")
    assert check.returncode == 1
    assert [line for line in check.stderr.splitlines() if "compat shim" in line] == [
        line for line in check.stderr.splitlines() if "legacy_jobs_rate" in line
    ]


_SPELLINGS = """\
contract: spellings
version: 1.0.0
resource:
  actions: [{key: deployment.environment, action: insert, from_env: OTEL_CONTRACT_TEST_UNSET}]
attributes: {types: {code: int, label: string, ratio: double}}
metrics:
  - {name: jobs_total, type: sum, unit: '{job}', monotonic: true}
  - {name: latency_seconds, type: gauge, unit: s, aliases: [{name: latency, unit: ms}]}
  - {name: wait_seconds, type: exponential_histogram, unit: s, aliases: [{name: wait, unit: ms}]}
"""


def test_an_unset_from_env_is_skipped_and_other_spellings_and_units_are_the_documented_differences(
    otelcol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the resource processor, an unset variable left the action without a value: the Collector did
    # not start. As OTTL, the action is skipped, as the sidecar skips it.
    monkeypatch.delenv("OTEL_CONTRACT_TEST_UNSET", raising=False)
    contract = tmp_path / "spellings.yaml"
    contract.write_text(_SPELLINGS, "utf-8")
    # The same on both: "201" -> 201, the double 2.0 -> "2.0" (Go's String() alone writes "2"), "1e3" -> 1000.0.
    # The differences the header names: what only Python reads, and a double from 1e16 as a string.
    same = [{"code": "201"}, {"label": 2.0}, {"ratio": "1e3"}]
    differ = {"code": (" 200", 200), "label": (1e20, "1e+20"), "ratio": (" 2.5", 2.5)}
    points = [(attributes, 1.0) for attributes in same] + [
        ({key: arrived}, 2.0) for key, (arrived, _) in differ.items()
    ]
    jobs = counter("jobs_total", points, unit="{job}")
    worker = {"service.name": "worker"}
    # The alias arrives in its own unit (scaled), in the contract's (renamed only: it was scaled before
    # the arriving unit guarded scale_metric) and in a third one, which only the sidecar converts.
    latencies = [
        gauge("latency", [({}, value)], unit=unit) for unit, value in (("ms", 1500.0), ("s", 2.0), ("us", 2.5e6))
    ]
    # An exponential histogram under a ms alias: OTTL cannot scale it, so it stays under its legacy name;
    # the sidecar reports unit-mismatch (0.001 is not a power of two), which rejects by default.
    wait = {**_EXPONENTIAL, "name": "wait", "exponentialHistogram": {**_EXPONENTIAL["exponentialHistogram"]}}
    metrics = (jobs, *latencies, wait)
    requests = [(Signal.METRICS, metrics_request(metric, resource=worker)) for metric in metrics]
    out, normalized = _through_both(otelcol, tmp_path, contract, requests, {Signal.METRICS: 5})
    by_collector, by_sidecar = _read(out, Signal.METRICS), _read(normalized, Signal.METRICS)
    assert [kv.key for kv in by_collector[0].resource_metrics[0].resource.attributes] == ["service.name"]
    assert by_collector[1:3] == by_sidecar[1:3]
    assert [
        (m.name, m.unit, m.gauge.data_points[0].as_double)
        for m in all_metrics(by_collector[1]) + all_metrics(by_collector[2])
    ] == [
        ("latency_seconds", "s", 1.5),
        ("latency_seconds", "s", 2.0),
    ]
    collector_points = all_metrics(by_collector[0])[0].sum.data_points
    sidecar_points = all_metrics(by_sidecar[0])[0].sum.data_points
    assert [point_attrs(p) for p in collector_points[:3]] == [{"code": 201}, {"label": "2.0"}, {"ratio": 1000.0}]
    assert [point_attrs(p) for p in collector_points[3:]] == [
        {"code": " 200"},
        {"label": "100000000000000000000"},
        {"ratio": " 2.5"},
    ]
    assert [point_attrs(p) for p in sidecar_points[3:]] == [{key: converted} for key, (_, converted) in differ.items()]
    del collector_points[3:], sidecar_points[3:]
    assert by_collector[0] == by_sidecar[0]
    assert len(by_sidecar) == 4  # the exponential histogram: rejected whole
    (legacy,) = all_metrics(by_collector[4])
    assert (legacy.name, legacy.unit, legacy.exponential_histogram.data_points[0].sum) == ("wait", "ms", 300.0)
    (as_arrived,), (as_sidecar,) = all_metrics(by_collector[3]), all_metrics(by_sidecar[3])
    assert (as_arrived.name, as_arrived.unit, as_arrived.gauge.data_points[0].as_double) == (
        "latency_seconds",
        "us",
        2.5e6,
    )
    assert (as_sidecar.name, as_sidecar.unit, as_sidecar.gauge.data_points[0].as_double) == (
        "latency_seconds",
        "s",
        2.5,
    )
    header = _render(contract, "--processors-only")
    assert "spellings only Python reads (' 200', '1_000', non-ASCII digits)" in header
    assert "spellings only Python reads (' 2.5', non-ASCII digits)" in header
    assert "a double from 1e16 to 1e21 comes out in digits where Python writes 1e+16" in header
    assert "the sidecar converts it by the unit that arrived; here it keeps the unit it came with" in header
    assert "OTTL's scale_metric cannot scale an exponential histogram, so it stays under its legacy name" in header


def test_a_smoothed_autoscaling_signal_is_listed_as_sidecar_only(tmp_path: Path) -> None:
    shutil.copytree(CONTRACTS / "base", tmp_path / "base")
    document = yaml.safe_load((CONTRACTS / "hpa-app.yaml").read_text("utf-8"))
    document["autoscaling"][0]["smoothing"] = {"ewma": {"alpha": 0.3}, "interval": "30s"}
    contract = tmp_path / "hpa-app.yaml"
    contract.write_text(yaml.safe_dump(document), "utf-8")
    result = run_cli("render", "collector", "-c", str(contract), "--processors-only", "--check")
    assert result.returncode == 1, result.stderr
    assert (
        "only the sidecar can enforce smoothed autoscaling signal hpa_app_queue_length_smoothed: an average over"
        " time, which only the sidecar keeps and emits" in result.stderr
    )


# --- every example contract, on requests derived from it -------------------------------------------

_AT = "1700000000000000000"


def _metric_data(metric: Metric, points: list[dict[str, Any]], unit: str | None) -> dict[str, Any]:
    """A metric of ``metric``'s type with one point per attribute set of ``points``."""
    kind = metric.type.value
    common = [{"attributes": attrs(point), "timeUnixNano": _AT} for point in points]
    if kind == "gauge":
        data: dict[str, Any] = {"gauge": {"dataPoints": [{**p, "asDouble": 4.0} for p in common]}}
    elif kind == "sum":
        temporality = 1 if metric.temporality is Temporality.DELTA else 2
        monotonic = metric.monotonic if metric.monotonic is not None else metric.name.endswith("_total")
        sums = [{**p, "asDouble": 8.0} for p in common]
        data = {"sum": {"aggregationTemporality": temporality, "isMonotonic": monotonic, "dataPoints": sums}}
    elif kind == "histogram":
        buckets = {"count": "3", "sum": 60.0, "bucketCounts": ["1", "1", "1"], "explicitBounds": [10.0, 100.0]}
        data = {"histogram": {"aggregationTemporality": 2, "dataPoints": [{**p, **buckets} for p in common]}}
    elif kind == "summary":
        quantiles = {"count": "2", "sum": 30.0, "quantileValues": [{"quantile": 0.5, "value": 10.0}]}
        data = {"summary": {"dataPoints": [{**p, **quantiles} for p in common]}}
    else:
        exponential = {"count": "2", "sum": 12.0, "scale": 0, "positive": {"offset": 1, "bucketCounts": ["2"]}}
        data = {
            "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [{**p, **exponential} for p in common]}
        }
    return {"name": metric.name, "unit": unit or "", **data}


def _value(compiled: CompiledMetric, key: str, nth: int) -> Any:
    """The ``nth`` value (0, 1) of a compliant series: typed values as strings, converted on the way."""
    if key in compiled.allowed:
        allowed = sorted(compiled.allowed[key], key=str)
        return allowed[nth % len(allowed)]
    by_type = {"int": ("7", "8"), "double": ("1.5", "2.5"), "bool": ("true", "FALSE")}
    return by_type.get(getattr(compiled.types.get(key), "value", ""), ("abc", "abd"))[nth]


def _derived_requests(contract: Contract) -> list[tuple[Signal, Any]]:
    """For each metric: a compliant point (typed values as strings, converted on the way), one with a
    disallowed value, one without a required key and one with a forbidden key, as far as its budget
    goes; another series under each alias, in its unit; a span and a log record with the contract's
    legacy keys."""
    compiled = compile_contract(contract)
    resource: dict[str, Any] = {"service.name": "svc"}
    for key in compiled.resource_required:
        constraint = compiled.resource_constraints.get(key)
        allowed = sorted(constraint.allowed, key=str) if constraint and constraint.allowed else ["abc"]
        resource.setdefault(key, allowed[0])
    metrics = []
    for metric in contract.metrics:
        spec = compiled.metrics[metric.name]
        keys = sorted(spec.required | spec.optional)
        good = {key: _value(spec, key, 0) for key in keys}
        other = {key: _value(spec, key, 1) for key in keys}  # under an alias: another series, no identity conflict
        points = [good]
        points += [{**good, key: "zzz-not-allowed"} for key in sorted(spec.allowed)[:1]]
        points += [{k: v for k, v in good.items() if k != key} for key in sorted(spec.required)[:1]]
        points += [{**good, key: "x"} for key in sorted(spec.forbidden)[:1]]
        if metric.max_series is not None:  # within the budget: a cardinality budget is sidecar-only
            points = points[: max(1, metric.max_series - len(metric.aliases))]
        metrics.append(_metric_data(metric, points, metric.unit))
        metrics += [
            _metric_data(replace(metric, name=alias.name), [other], alias.unit or metric.unit)
            for alias in metric.aliases
        ]
    legacy = {old: "404" for old in compiled.attribute_renames}
    span = {"name": "op", "attributes": attrs(legacy)}
    record = {"body": {"stringValue": "line"}, "attributes": attrs(legacy)}
    return [
        (Signal.METRICS, metrics_request(*metrics, resource=resource)),
        (Signal.TRACES, traces_request([span], resource=resource)),
        (Signal.LOGS, logs_request([record], resource=resource)),
    ]


@pytest.mark.parametrize("contract_path", sorted(CONTRACTS.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_example_contract_on_the_real_collector_gives_what_the_sidecar_gives(
    otelcol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, contract_path: Path
) -> None:
    contract = load_contract(contract_path).contract
    for action in contract.resource.actions:
        if action.from_env is not None:
            monkeypatch.setenv(action.from_env, "from-env")
    out, normalized = _through_both(
        otelcol, tmp_path, contract_path, _derived_requests(contract), dict.fromkeys(Signal, 1)
    )
    for signal in Signal:
        by_collector, by_sidecar = _read(out, signal), _read(normalized, signal)
        assert by_collector == by_sidecar, f"{signal}:\n{by_collector}\n---\n{by_sidecar}"
    (request,) = _read(out, Signal.METRICS)
    assert {metric.name for metric in all_metrics(request)} == {metric.name for metric in contract.metrics}
