"""What the compat shims cost the sidecar, measured against the engine alone on the same requests.

    .venv/bin/python bench/shims.py [--series N] [--requests N] [--repeat N]
    .venv/bin/python bench/shims.py --stored 500,5000,50000 [--points N] [--requests N]

The workload is contracts/ecommerce.yaml's own shim, `sum by (instance, device)
(rate(system_disk_io_time_seconds_total[5m]))`, fed by a node that exports ``--series`` disk devices
every 10 s (``--requests`` consecutive exports, so the 5-minute window fills up). Three ways of
handling the same sequence are timed in one process, ``--repeat`` times each, interleaved:

  floor    parse + serialize each request (the least a normalizer does)
  engine   the contract engine alone (process_metrics + to_bytes), as with no compat section
  shims    the pipeline: the engine, then the shims (Pipeline.process + to_bytes)

plus ``other``: the engine + shims on a request without the shims' input (the cost of looking).
Figures are ratios taken in the same run; nothing is asserted.

``--stored`` measures instead what one small request costs while the shims keep many series: for each
count, a pipeline is first filled with that many stored disk series (two exports of all of them, 10 s
apart), then fed ``--requests`` exports of ``--points`` of those series each (1 s apart, inside the
5-minute window, so nothing is evicted and every point yields a rate). Per request, median over the
requests: the pipeline (engine + shims) and the engine alone on the same request, and both on a request
of the same size of a metric no shim reads. The last column divides by the first count's figure: a
per-request cost independent of the stored series reads 1.0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otel_contract.contract import CompiledContract
from otel_contract.engine import CardinalityState, process_metrics
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal
from otel_contract.pipeline import Pipeline

REPO = Path(__file__).resolve().parent.parent
# ecommerce.yaml's disk metric and shim without its series budget (500), so that many series can be stored.
SWEEP_CONTRACT = """\
contract: shims-bench
version: 1.0.0
metrics:
  - name: system_disk_io_time_seconds_total
    type: sum
    unit: s
    monotonic: true
    attributes:
      required: [device]
      optional: [instance]
  - {name: http_requests_total, type: sum, unit: '{request}', monotonic: true}
compat:
  - record: node_disk_io_time_seconds_total
    expr: sum by (instance, device) (rate(system_disk_io_time_seconds_total[5m]))
    expires: 2027-06-30
"""
T0_NS = 1_700_000_000 * 10**9
STEP_NS = 10 * 10**9
RESOURCE = {
    "service.name": "node",
    "service.namespace": "ecommerce-prod",
    "service.instance.id": "host-1:9100",
    "k8s.pod.name": "node-exporter-abc",
    "k8s.namespace.name": "monitoring",
}


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def disk_requests(series: int, requests: int) -> list[bytes]:
    """``requests`` consecutive exports of ``series`` cumulative disk counters, 10 s apart."""
    return [disk_request(range(series), T0_NS + step * STEP_NS) for step in range(requests)]


def disk_request(devices: range, time_ns: int) -> bytes:
    """One export of the disk counters of ``devices`` at ``time_ns``."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(_string(k, v) for k, v in RESOURCE.items())
    metric = resource_metrics.scope_metrics.add().metrics.add()
    metric.name, metric.unit = "system_disk_io_time_seconds_total", "s"
    metric.sum.aggregation_temporality, metric.sum.is_monotonic = 2, True
    step = (time_ns - T0_NS) / STEP_NS
    for device in devices:
        point = metric.sum.data_points.add()
        point.start_time_unix_nano = T0_NS
        point.time_unix_nano = time_ns
        point.as_double = step * (0.25 + device % 7 * 0.1)
        point.attributes.append(_string("device", f"dev{device:05d}"))
    return request.SerializeToString()


def other_request(series: int) -> bytes:
    """The same size of request, but of a metric no shim reads."""
    request = ExportMetricsServiceRequest.FromString(disk_requests(series, 1)[0])
    metric = request.resource_metrics[0].scope_metrics[0].metrics[0]
    metric.name, metric.unit = "http_requests_total", "{request}"
    for point in metric.sum.data_points:
        del point.attributes[:]
        point.attributes.extend([_string("http.method", "GET"), _string("http.status_code", "200")])
        break
    return request.SerializeToString()


def _floor(payloads: list[bytes]) -> None:
    for payload in payloads:
        ExportMetricsServiceRequest.FromString(payload).SerializeToString()


def _engine(contract: CompiledContract) -> Callable[[list[bytes]], None]:
    def run(payloads: list[bytes]) -> None:
        state = CardinalityState()
        for payload in payloads:
            process_metrics(payload, contract, state=state).to_bytes()

    return run


def _with_shims(contract: CompiledContract, points: list[int]) -> Callable[[list[bytes]], None]:
    def run(payloads: list[bytes]) -> None:
        pipeline = Pipeline(contract, today=date(2026, 11, 22))
        emitted = 0
        for payload in payloads:
            result = pipeline.process(Signal.METRICS, payload)
            emitted += result.appended_items
            result.to_bytes()
        points.append(emitted)

    return run


def _per_request(process: Callable[[bytes], object], payloads: list[bytes]) -> float:
    """The median seconds ``process`` takes per payload."""
    times = []
    for payload in payloads:
        started = time.perf_counter()
        process(payload)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def stored_sweep(contract: CompiledContract, counts: list[int], points: int, requests: int) -> None:
    """Per-request cost of ``points``-point requests while ``counts`` series are stored (see the docstring)."""
    fill_chunk = 5_000
    print(
        f"shims bench, stored series: {requests} requests of {points} points each (1 s apart) after filling;"
        " median ms per request"
    )
    header = f"{'stored':>8}{'pipeline':>10}{'engine':>9}{'shims':>9}{'other: pipeline':>17}{'engine':>9}"
    print(f"{header}{'shims vs first':>16}")
    first: float | None = None
    for count in counts:
        pipeline = Pipeline(contract, today=date(2026, 11, 22))
        for step in range(2):
            for low in range(0, count, fill_chunk):
                pipeline.process(
                    Signal.METRICS, disk_request(range(low, min(low + fill_chunk, count)), T0_NS + step * STEP_NS)
                )
        payloads = []
        for index in range(requests):
            low = index * points % count
            devices = range(low, min(low + points, count))
            payloads.append(disk_request(devices, T0_NS + 2 * STEP_NS + index * 10**9))
        emitted: list[int] = []
        engine_state = CardinalityState()

        def with_shims(payload: bytes, pipeline: Pipeline = pipeline, emitted: list[int] = emitted) -> None:
            result = pipeline.process(Signal.METRICS, payload)
            emitted.append(result.appended_items)
            result.to_bytes()

        def engine_alone(payload: bytes, state: CardinalityState = engine_state) -> None:
            process_metrics(payload, contract, state=state).to_bytes()

        def other(payload: bytes, pipeline: Pipeline = pipeline) -> None:
            pipeline.process(Signal.METRICS, payload).to_bytes()

        engine = _per_request(engine_alone, payloads)
        shims = _per_request(with_shims, payloads)
        assert min(emitted) == max(emitted) == points, emitted  # every request yields its rates
        others = [other_request(points)] * requests
        other_pipeline = _per_request(other, others)
        other_engine = _per_request(engine_alone, others)
        added = shims - engine
        first = added if first is None else first
        print(
            f"{count:>8,}{shims * 1e3:>10.3f}{engine * 1e3:>9.3f}{added * 1e3:>9.3f}{other_pipeline * 1e3:>17.3f}"
            f"{other_engine * 1e3:>9.3f}{added / first:>15.2f}x"
        )


def _best_and_median(samples: list[float]) -> tuple[float, float]:
    return min(samples), statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=500, help="disk devices per export (default 500)")
    parser.add_argument("--requests", type=int, default=60, help="consecutive exports, 10 s apart (default 60)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--stored", help="comma-separated stored series counts: the per-request sweep instead")
    parser.add_argument("--points", type=int, default=100, help="points per request of the sweep (default 100)")
    args = parser.parse_args(argv)

    if args.stored:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "contract.yaml"
            path.write_text(SWEEP_CONTRACT)
            sweep_contract = load_contract(path)
        stored_sweep(sweep_contract, [int(count) for count in args.stored.split(",")], args.points, args.requests)
        return 0
    contract = load_contract(REPO / "contracts" / "ecommerce.yaml")
    payloads = disk_requests(args.series, args.requests)
    others = [other_request(args.series)] * args.requests
    emitted: list[int] = []
    runs: dict[str, Callable[[], None]] = {
        "floor": lambda: _floor(payloads),
        "engine": lambda: _engine(contract)(payloads),
        "shims": lambda: _with_shims(contract, emitted)(payloads),
        "engine, other metric": lambda: _engine(contract)(others),
        "shims, other metric": lambda: _with_shims(contract, [])(others),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)

    points = args.series * args.requests
    print(
        f"shims bench: {args.requests} exports x {args.series} series = {points:,} input points;"
        f" the shim emitted {emitted[-1]:,} points; best of {args.repeat}, median in brackets"
    )
    print(f"{'variant':<22}{'seconds':>10}{'points/s':>12}{'vs floor':>10}{'vs engine':>11}")
    for name in runs:
        best, median = _best_and_median(times[name])
        floor = min(times["floor"])
        engine = min(times["engine, other metric" if "other" in name else "engine"])
        print(
            f"{name:<22}{best:>10.3f}{points / best:>12,.0f}{best / floor:>9.2f}x{best / engine:>10.2f}x"
            f"  [{median:.3f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
