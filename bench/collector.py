"""The sidecar against the real OpenTelemetry Collector and a raw pass-through proxy, in one run.

    .venv/bin/python bench/collector.py [--duration 60] [--rate 10000] [--rounds 3] [--workload both] [--quick]

Four servers, each forwarding to a fresh bench/sink.py (which counts the data points it receives):

* ``proxy``: bench/passthrough_proxy.py, request bytes in, the same bytes out (the floor of Python gRPC);
* ``otelcol-bare``: the Collector below with no processor, otlp receiver -> otlp_grpc exporter (the
  Collector's floor: what the rendered processors cost is ``otelcol`` over it);
* ``otelcol``: the Collector that ``pipelines/ci/install-otelcol.sh`` builds (v0.161.0) running what
  ``otel-contract render collector`` renders from the workload's contract (otlp receiver -> resource,
  transform and filter processors: the same metric renames, ms -> s scaling, attribute renames and type
  conversions, resource actions, rejected points) -> the ``otlp_grpc`` exporter, without compression, as
  the sidecar's exporter;
* ``sidecar``: ``otel-contract serve`` with that contract, fully enforced (its defaults).

Two workloads, ``--rate`` data points/s each, open loop (bench/sidecar.py's scenario (b)):

* ``testbed``: the contrib testbed's perfTestDataProvider shape, 100 gauges x 7 points per request with
  two attributes per point, under bench/contract-testbed.yaml (compliant: the sidecar forwards the bytes);
* ``legacy20``: bench/workload.py's legacy20 variant in requests of 100 points, under bench/contract.yaml.

Before measuring, the Collector's and the sidecar's deliveries of the same requests are compared shape by
shape (names, units, types, attribute keys and types, histogram bounds, point counts). Then ``--rounds``
rounds of (proxy, otelcol-bare, otelcol, sidecar) per workload, each on fresh processes; the medians, the
ratios sidecar/Collector, sidecar/bare Collector, sidecar/proxy and Collector/bare Collector are printed,
issue 19's goals beside them, never asserted. A final
``JSON {...}`` line holds every figure. See bench/README.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import ScopeMetrics
from sidecar import (
    BENCH,
    CALL_TIMEOUT,
    CONTRACT,
    HOST,
    ROOT,
    Aftermath,
    Bench,
    Comparison,
    Payloads,
    TestbedResult,
    build_payloads,
    deployment,
    finish_logs,
    machine,
    measure_testbed,
    print_comparisons,
    print_error_details,
    print_machine,
    print_processes_and_json,
    print_testbed,
    ratio,
    rejected_points,
    run_guarded,
    server_argv,
    server_width,
)

from otel_contract.loading import load_contract
from otel_contract.render import ArtefactOptions
from otel_contract.render.collector import build

TESTBED_CONTRACT = BENCH / "contract-testbed.yaml"
CONTRACTS = {"testbed": TESTBED_CONTRACT, "legacy20": CONTRACT}
WORKLOADS = tuple(CONTRACTS)
SERVERS = ("proxy", "otelcol-bare", "otelcol", "sidecar")  # the order of every round
INSTALL = ROOT / "pipelines" / "ci" / "install-otelcol.sh"
INSTALL_TIMEOUT = 900.0  # seconds: a cold build downloads modules and compiles for about 5 minutes
LEGACY20_BATCH = 100  # points per legacy20 request, as bench/sidecar.py's scenario (b)
TESTBED_METRICS, TESTBED_POINTS = 100, 7  # perfTestDataProvider: ItemsPerBatch metrics x 7 points
TESTBED_POOL = 8  # distinct testbed requests, sent in turn (bench/sidecar.py's PAYLOAD_POOL)
TESTBED_TIME_NS = 1_764_000_000_000_000_000  # a fixed clock: the same arguments give the same bytes
CHECK_REPEAT = 3  # times each payload goes through the delivery check
SHAPE_DIFF_LINES = 8

# Goals, printed beside the figures (never asserted): issue 19's targets for the sidecar.
GOAL_CPU_VS_COLLECTOR = 0.5
GOAL_RSS_VS_COLLECTOR = 1.0  # "less memory": strictly below


# --- the testbed workload -------------------------------------------------------------------------


def testbed_request(batch: int) -> ExportMetricsServiceRequest:
    """One request in the shape of the contrib testbed's perfTestDataProvider.GenerateMetrics.

    ``load_generator_<i>`` gauges (unit "1"), each with 7 int points whose attributes are ``item_index``
    ("item_<j>") and ``batch_index`` ("batch_<n>", one n per metric and request, as upstream counts
    them); no resource attribute (the testbed sets none). Upstream stamps only the start time from the
    wall clock; here both timestamps come from a fixed clock so the bytes are reproducible.
    """
    request = ExportMetricsServiceRequest()
    scope: ScopeMetrics = request.resource_metrics.add().scope_metrics.add()
    for i in range(TESTBED_METRICS):
        metric = scope.metrics.add(name=f"load_generator_{i}", description=f"Load Generator Counter #{i}", unit="1")
        batch_index = batch * TESTBED_METRICS + i + 1
        for j in range(TESTBED_POINTS):
            value = (batch_index - 1) * TESTBED_POINTS + j + 1
            point = metric.gauge.data_points.add(
                start_time_unix_nano=TESTBED_TIME_NS, time_unix_nano=TESTBED_TIME_NS, as_int=value
            )
            point.attributes.add(key="item_index").value.string_value = f"item_{j}"
            point.attributes.add(key="batch_index").value.string_value = f"batch_{batch_index}"
    return request


def testbed_payloads() -> Payloads:
    requests = tuple(testbed_request(batch).SerializeToString() for batch in range(TESTBED_POOL))
    return Payloads("testbed", requests, TESTBED_METRICS * TESTBED_POINTS)


def workload_payloads(workload: str) -> Payloads:
    return testbed_payloads() if workload == "testbed" else build_payloads(workload, LEGACY20_BATCH)


# --- the Collector's configuration, generated from the contract -----------------------------------


@functools.cache
def _rendered(contract: Path) -> dict[str, Any]:
    """``otel-contract render collector``'s configuration for ``contract`` (its processors and pipelines),
    rendered once however many Collectors the run starts."""
    model = load_contract(contract).contract
    return build(model, ArtefactOptions(today=date.today(), exporter_endpoint=f"{HOST}:0")).config


def collector_config(contract: Path, port: int, sink_port: int, *, bare: bool = False) -> dict[str, Any]:
    """The rendered configuration: otlp receiver -> the contract's processors -> otlp_grpc to the sink,
    with the sink's compression (none) and no telemetry of its own; ``bare``: without the processors
    (the Collector's own floor, as the proxy is Python's)."""
    config = copy.deepcopy(_rendered(contract))
    if bare:
        config["processors"] = {}
        for pipeline in config["service"]["pipelines"].values():
            pipeline["processors"] = []
    config["receivers"]["otlp"]["protocols"]["grpc"] = {"endpoint": f"{HOST}:{port}", "max_recv_msg_size_mib": 64}
    exporter = config["exporters"]["otlp_grpc"]
    exporter.update(endpoint=f"{HOST}:{sink_port}", compression="none")
    config["service"]["telemetry"] = {"metrics": {"level": "none"}}
    return config


def collector_yaml(contract: Path, port: int, sink_port: int, *, bare: bool = False) -> str:
    return yaml.safe_dump(collector_config(contract, port, sink_port, bare=bare), sort_keys=False, width=200)


def install_collector() -> tuple[str, str]:
    """(binary path, version line) from pipelines/ci/install-otelcol.sh, which builds it when missing."""
    done = subprocess.run(
        ["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"install-otelcol.sh exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return lines[-1], lines[-2] if len(lines) > 1 else ""


def server_argvs(binary: str, workload: str, logs: Path) -> Callable[[str, int, int], list[str]]:
    """The command line of each server kind for ``workload`` (the Collector's config file goes to ``logs``)."""
    contract = CONTRACTS[workload]

    def argv(kind: str, port: int, sink_port: int) -> list[str]:
        if not kind.startswith("otelcol"):
            return server_argv(kind, port, sink_port, contract)
        config = logs / f"{kind}-{workload}-{port}.yaml"
        config.write_text(collector_yaml(contract, port, sink_port, bare=kind == "otelcol-bare"))
        return [binary, "--config", str(config)]

    return argv


# --- the delivery check: the Collector's output against the sidecar's ------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    server: str
    sent: int  # data points the server accepted
    received: int  # data points the sink counted
    shapes: dict[str, int]


def delivered(bench: Bench, kind: str, payloads: Payloads, argv: Callable[[str, int, int], list[str]]) -> Delivery:
    """Send every payload CHECK_REPEAT times, one at a time, and read what the sink got, shape by shape."""
    with deployment(bench, kind, "check", payloads.variant, argv, sink_options=("--shapes",)) as d:
        for request in payloads.requests * CHECK_REPEAT:
            d.accepted += payloads.points - rejected_points(d.export(request, timeout=CALL_TIMEOUT))
        check = d.sink_check()
        shapes = json.loads(d.stats(b"", timeout=CALL_TIMEOUT))["shapes"]
    return Delivery(kind, check.expected, check.received, shapes)


@dataclass(frozen=True, slots=True)
class ShapeCheck:
    workload: str
    collector: Delivery
    sidecar: Delivery

    @property
    def equal(self) -> bool:
        return self.collector.shapes == self.sidecar.shapes and self.collector.received == self.sidecar.received

    def differences(self) -> list[str]:
        keys = sorted(set(self.collector.shapes) | set(self.sidecar.shapes))
        return [
            f"otelcol {self.collector.shapes.get(key, 0):>5}  sidecar {self.sidecar.shapes.get(key, 0):>5}  {key}"
            for key in keys
            if self.collector.shapes.get(key) != self.sidecar.shapes.get(key)
        ]

    def as_dict(self) -> dict[str, Any]:
        summary = {"equal": self.equal, "differences": self.differences()[:SHAPE_DIFF_LINES]}
        for delivery in (self.collector, self.sidecar):
            summary[delivery.server] = {
                "sent": delivery.sent,
                "received": delivery.received,
                "shapes": len(delivery.shapes),
            }
        return {"workload": self.workload} | summary


def print_check(check: ShapeCheck) -> None:
    c, s = check.collector, check.sidecar
    verdict = "the same" if check.equal else "DIFFERENT"
    print(
        f"  {check.workload}: otelcol delivered {c.received} of {c.sent} points in {len(c.shapes)} shapes, "
        f"sidecar {s.received} of {s.sent} in {len(s.shapes)}: {verdict}"
    )
    for line in check.differences()[:SHAPE_DIFF_LINES]:
        print(f"    {line[:220]}")


# --- medians and ratios ---------------------------------------------------------------------------

FIGURES = ("server_cpu_pct", "rss_peak_mib", "rss_end_mib", "p50_ms", "p99_ms")


@dataclass(frozen=True, slots=True)
class Median:
    workload: str
    server: str
    rounds: int
    figures: dict[str, float]  # FIGURES, medians over the rounds
    points_sent: int  # summed over the rounds: accepted by the server (warm-ups included)
    points_received: int  # summed over the rounds: counted by the sink
    errors: int


def medians(results: Sequence[TestbedResult]) -> list[Median]:
    rows = []
    keys = dict.fromkeys((r.variant, r.server) for r in results)
    for workload, server in keys:
        mine = [r for r in results if (r.variant, r.server) == (workload, server)]
        figures = {name: round(statistics.median(getattr(r, name) for r in mine), 3) for name in FIGURES}
        rows.append(
            Median(
                workload,
                server,
                len(mine),
                figures,
                sum(r.sink.expected for r in mine),
                sum(r.sink.received for r in mine),
                sum(sum(r.errors.values()) for r in mine),
            )
        )
    return rows


def compare(rows: Sequence[Median]) -> list[Comparison]:
    by_key = {(m.workload, m.server): m for m in rows}
    out = []
    for workload in dict.fromkeys(m.workload for m in rows):
        sidecar = by_key.get((workload, "sidecar"))
        if sidecar is None:
            continue
        for other, label in (("otelcol", "Collector"), ("otelcol-bare", "bare Collector"), ("proxy", "proxy")):
            base = by_key.get((workload, other))
            if base is None:
                continue
            for figure, what in (("server_cpu_pct", "CPU"), ("rss_peak_mib", "peak RSS"), ("p99_ms", "p99")):
                value = ratio(sidecar.figures[figure], base.figures[figure])
                goal, met = "", None
                if other == "otelcol" and figure == "server_cpu_pct":
                    goal, met = f"<= {GOAL_CPU_VS_COLLECTOR:g}x", value <= GOAL_CPU_VS_COLLECTOR
                elif other == "otelcol" and figure == "rss_peak_mib":
                    goal, met = f"< {GOAL_RSS_VS_COLLECTOR:g}x", value < GOAL_RSS_VS_COLLECTOR
                out.append(Comparison("median", workload, f"sidecar/{label} {what}", value, "x", goal, met))
        rendered, bare = by_key.get((workload, "otelcol")), by_key.get((workload, "otelcol-bare"))
        if rendered is not None and bare is not None:  # what enforcing the contract costs a Collector
            for figure, what in (("server_cpu_pct", "CPU"), ("p99_ms", "p99")):
                value = ratio(rendered.figures[figure], bare.figures[figure])
                out.append(Comparison("median", workload, f"Collector/bare Collector {what}", value, "x", "", None))
    return out


def print_medians(rows: Sequence[Median]) -> None:
    w = server_width(rows)
    print(
        f"{'workload':<9} {'server':<{w}} {'rounds':>6} {'CPU%':>6} {'RSS peak':>8} {'end':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'points sent':>11} {'received':>9} {'errors':>6}"
    )
    for m in rows:
        f = m.figures
        print(
            f"{m.workload:<9} {m.server:<{w}} {m.rounds:>6} {f['server_cpu_pct']:>6.1f} {f['rss_peak_mib']:>8.1f} "
            f"{f['rss_end_mib']:>6.1f} {f['p50_ms']:>7.2f} {f['p99_ms']:>7.2f} {m.points_sent:>11} "
            f"{m.points_received:>9} {m.errors:>6}"
        )


# --- running --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    collector: dict[str, str] = field(default_factory=dict)
    checks: list[ShapeCheck] = field(default_factory=list)
    results: list[TestbedResult] = field(default_factory=list)
    aftermaths: list[Aftermath] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "collector": self.collector,
            "checks": [c.as_dict() for c in self.checks],
            **rounds_figures(self.results, compare(medians(self.results))),
            "processes": [asdict(a) for a in self.aftermaths],
            "failures": self.failures,
        }


def rounds_figures(results: Sequence[TestbedResult], comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """The JSON line's rounds, medians and comparisons (also bench/http_receiver.py's)."""
    return {
        "rounds": [r.as_dict() for r in results],
        "medians": [asdict(m) for m in medians(results)],
        "comparisons": [c.as_dict() for c in comparisons],
    }


def print_rounds(
    results: Sequence[TestbedResult], header: str, rounds: int, title: str, comparisons: Sequence[Comparison]
) -> None:
    """Every round's row, the medians, then the comparisons under ``title`` (also bench/http_receiver.py's)."""
    print()
    print(header)
    print_testbed(results)
    print_error_details(results)
    print()
    print(f"medians over {rounds} round(s); points: accepted by the server vs counted by the sink")
    print_medians(medians(results))
    print()
    print(title)
    print_comparisons(comparisons)


def print_report(report: Report) -> None:
    settings = report.settings
    header = (
        f"every round: {settings['rate']:g} points/s, open loop, {settings['duration']:g} s per server; "
        "CPU in % of one core, RSS in MiB"
    )
    title = "sidecar vs the Collector and the proxy (goals: issue 19, printed, never asserted)"
    print_rounds(report.results, header, settings["rounds"], title, compare(medians(report.results)))
    print_processes_and_json(report.aftermaths, report.failures, report.as_dict())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per measurement (60)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="data points per second (10000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (proxy, otelcol-bare, otelcol, sidecar) (3)")
    parser.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10 s per measurement, 2 s warm-up: a smoke run")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs even when all went well")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 10.0)
    if args.rate <= 0 or args.duration <= 0 or args.rounds < 1:
        parser.error("--rate, --duration and --rounds must be positive")
    args.workloads = list(WORKLOADS) if args.workload == "both" else [args.workload]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {"duration": args.duration, "rate": args.rate, "rounds": args.rounds, "workloads": args.workloads}
    report = Report(machine(), settings | {"quick": args.quick, "servers": list(SERVERS)})
    print_machine(report.machine)
    try:
        binary, version = install_collector()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"no Collector: {exc}; nothing to compare", flush=True)
        return 0
    report.collector = {"binary": binary, "version": version, "GOMAXPROCS": "unset (Go's default: the usable CPUs)"}
    print(f"collector: {version} ({binary}), GOMAXPROCS unset; exporter and sidecar: no compression")
    payloads = {workload: workload_payloads(workload) for workload in args.workloads}
    for p in payloads.values():
        print(f"payloads {p.variant}: {p.points} points per request, {len(p.requests)} requests of about {p.size} B")
    bench = Bench(Path(tempfile.mkdtemp(prefix="otel-contract-collector-bench-")), {}, report.aftermaths)
    print(f"logs: {bench.logs}", flush=True)
    for workload in args.workloads:
        print(f"\nthe Collector's configuration for {workload} (with ports 4317 and 4318; each run gets free ones):")
        print(collector_yaml(CONTRACTS[workload], 4317, 4318), end="")
    argvs = {workload: server_argvs(binary, workload, bench.logs) for workload in args.workloads}

    print("\ndelivery check: the same requests through the Collector and through the sidecar", flush=True)
    for workload in args.workloads:

        def check(workload: str = workload) -> None:
            collector, sidecar = (
                delivered(bench, k, payloads[workload], argvs[workload]) for k in ("otelcol", "sidecar")
            )
            report.checks.append(ShapeCheck(workload, collector, sidecar))
            print_check(report.checks[-1])

        run_guarded(report.failures, f"check {workload}", check)

    warmup = 2.0 if args.quick else 5.0
    for round_number in range(1, args.rounds + 1):
        print(f"\nround {round_number} of {args.rounds}", flush=True)
        for workload in args.workloads:
            for kind in SERVERS:

                def measure(kind: str = kind, workload: str = workload, label: str = f"round{round_number}") -> None:
                    with deployment(bench, kind, label, workload, argvs[workload]) as d:
                        report.results.append(measure_testbed(d, payloads[workload], args.rate, args.duration, warmup))

                run_guarded(report.failures, f"{kind} {workload}", measure)
    print_report(report)
    finish_logs(bench, report.failures, args.keep_logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
