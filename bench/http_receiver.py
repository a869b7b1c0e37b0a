"""The sidecar's OTLP/HTTP receiver against its OTLP/gRPC receiver, on the same load, in one run.

    .venv/bin/python bench/http_receiver.py [--duration 15] [--rate 10000] [--rounds 3] [--workload both] [--quick]

Every measurement is bench/sidecar.py's scenario (b), the Collector testbed's load: ``--rate`` data
points/s in requests of ``--batch`` points (bench/workload.py), open loop, into a fresh ``otel-contract
serve`` with bench/contract.yaml (fully enforced, listening on gRPC and HTTP in every round) forwarding
to a fresh bench/sink.py. Only the client's transport changes:

* ``grpc``: OTLP/gRPC, the raw ``Export`` method over one channel (bench/sidecar.py's client);
* ``http-pb``: OTLP/HTTP, ``POST /v1/metrics`` with ``application/x-protobuf``, the same bytes;
* ``http-json``: OTLP/HTTP with ``application/json``, the same requests in OTLP/JSON (read by the core).

The HTTP client keeps one persistent ``http.client`` connection per thread of a pool, so it is not what
limits the figures; the server process's CPU is what is measured. Two workloads: ``compliant`` (the
testbed load: the contract changes nothing) and ``legacy20`` (20 % legacy names, units and keys). Then
``--rounds`` rounds of (grpc, http-pb, http-json) per workload, each on fresh processes; medians and the
ratios HTTP/gRPC are printed, never asserted, and a final ``JSON {...}`` line holds every figure. See
bench/README.md, "OTLP/HTTP vs OTLP/gRPC".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from collector import Median, medians, print_rounds, rounds_figures
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from sidecar import (
    HOST,
    Aftermath,
    AnswerError,
    Bench,
    Comparison,
    Deployment,
    Payloads,
    TestbedResult,
    build_payloads,
    deployment,
    finish_logs,
    free_port,
    machine,
    measure_testbed,
    print_machine,
    print_processes_and_json,
    ratio,
    run_guarded,
    server_argv,
    wait_ready,
)

from otel_contract.otlp import Signal, parse_otlp_json, to_otlp_json

WORKLOADS = ("compliant", "legacy20")
TRANSPORTS = ("grpc", "http-pb", "http-json")  # the order of every round
CONTENT_TYPES = {"http-pb": "application/x-protobuf", "http-json": "application/json"}
EMPTY = {"http-pb": b"", "http-json": b"{}"}  # an empty request, to wait until the receiver answers
METRICS_PATH = "/v1/metrics"
CLIENT_THREADS = 16  # persistent connections: far more than the ~1 request the open loop has in flight


# --- the OTLP/HTTP client -------------------------------------------------------------------------


class HttpExport:
    """``POST /v1/metrics`` over keep-alive connections, one per thread of a pool (``http.client``),
    driven as bench/sidecar.py drives a raw gRPC method: called, or ``future`` for the open loop.

    It answers the serialized ExportMetricsServiceResponse (a JSON answer is converted, in the client);
    any status but 200 or a connection failure raises ``AnswerError``.
    """

    def __init__(self, port: int, content_type: str, threads: int = CLIENT_THREADS) -> None:
        self._port = port
        self._json = content_type == CONTENT_TYPES["http-json"]
        self._headers = {"Content-Type": content_type}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http-client")

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(HOST, self._port, timeout=timeout)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def __call__(self, request: bytes, *, timeout: float) -> bytes:
        connection = self._connection(timeout)
        try:
            # A bytes body goes out in one send with the headers (http.client), so Nagle never delays it.
            connection.request("POST", METRICS_PATH, body=request, headers=self._headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()  # the next request on this thread connects again
            raise AnswerError(type(error).__name__, str(error)) from error
        if response.status != 200:
            raise AnswerError(f"HTTP {response.status}", body[:300].decode(errors="replace"))
        if self._json:
            return json_format.Parse(body, ExportMetricsServiceResponse()).SerializeToString()
        return body

    def future(self, request: bytes, *, timeout: float) -> Future[bytes]:
        return self._pool.submit(self._send_by, request, time.perf_counter() + timeout)

    def _send_by(self, request: bytes, deadline: float) -> bytes:
        """Send unless the request waited for a thread past its deadline: like a gRPC call's timeout,
        ``timeout`` runs from the call, so a server that falls behind fails requests instead of the
        client queueing them without end."""
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise AnswerError("DEADLINE_EXCEEDED", "waited in the client past the call's timeout; not sent")
        return self(request, timeout=remaining)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()


def json_payloads(payloads: Payloads) -> Payloads:
    """The same requests in OTLP/JSON; raises if one does not parse back to the request it came from."""
    requests = []
    for data in payloads.requests:
        request = ExportMetricsServiceRequest.FromString(data)
        document = json.dumps(to_otlp_json(request), separators=(",", ":")).encode()
        _, parsed = parse_otlp_json(document, source="bench payload", signal=Signal.METRICS)
        if parsed != request:
            raise ValueError(f"the OTLP/JSON of a {payloads.variant} payload does not parse back to the same request")
        requests.append(document)
    return Payloads(payloads.variant, tuple(requests), payloads.points)


@contextlib.contextmanager
def transport_deployment(bench: Bench, transport: str, scenario: str, workload: str) -> Iterator[Deployment]:
    """A fresh sink and sidecar, ready on ``transport``; its results are labelled with the transport.

    The sidecar listens on gRPC and HTTP in every round, so each transport is measured on the same process.
    """
    http_port = free_port()
    argv = functools.partial(server_argv, http_port=http_port)
    with deployment(bench, "sidecar", f"{transport}-{scenario}", workload, argv) as d:
        if transport == "grpc":
            yield dataclasses.replace(d, kind=transport)
            return
        client = HttpExport(http_port, CONTENT_TYPES[transport])
        try:
            wait_ready(d.server, client, EMPTY[transport])  # HTTP may come up after the gRPC deployment waited on
            yield dataclasses.replace(d, kind=transport, export=client)
        finally:
            client.close()


# --- ratios ---------------------------------------------------------------------------------------


def compare(rows: Sequence[Median], rates: dict[str, float]) -> list[Comparison]:
    """Each HTTP transport's medians over gRPC's, per workload: information, no goal. A transport sent at
    another rate than gRPC (``rates``: points/s) is compared on CPU per point, its p99 labelled with its rate."""
    by_key = {(m.workload, m.server): m for m in rows}
    out = []
    for workload in dict.fromkeys(m.workload for m in rows):
        base = by_key.get((workload, "grpc"))
        for transport in TRANSPORTS[1:]:
            row = by_key.get((workload, transport))
            if base is None or row is None:
                continue
            scale = rates["grpc"] / rates[transport]
            same = scale == 1
            cpu = ratio(row.figures["server_cpu_pct"] * scale, base.figures["server_cpu_pct"])
            p99 = ratio(row.figures["p99_ms"], base.figures["p99_ms"])
            rss = ratio(row.figures["rss_peak_mib"], base.figures["rss_peak_mib"])
            at = "" if same else f" @{rates[transport]:g}/s"
            for what, value in (("CPU" if same else "CPU per point", cpu), (f"p99{at}", p99), ("peak RSS", rss)):
                out.append(Comparison("median", workload, f"{transport}/grpc {what}", value, "x", "", None))
    return out


# --- running --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    results: list[TestbedResult] = field(default_factory=list)
    aftermaths: list[Aftermath] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def comparisons(self) -> list[Comparison]:
        return compare(medians(self.results), self.settings["rates"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            **rounds_figures(self.results, self.comparisons),
            "processes": [asdict(a) for a in self.aftermaths],
            "failures": self.failures,
        }


def print_report(report: Report) -> None:
    settings = report.settings
    header = (
        f"every round: {settings['rate']:g} points/s (http-json {settings['json_rate']:g}) in requests of "
        f"{settings['batch']}, open loop, {settings['duration']:g} s per transport; CPU in % of one core, RSS in MiB"
    )
    title = "OTLP/HTTP vs OTLP/gRPC (medians; information, nothing asserted)"
    print_rounds(report.results, header, settings["rounds"], title, report.comparisons)
    print_processes_and_json(report.aftermaths, report.failures, report.as_dict())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement (15)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="data points per second (10000)")
    parser.add_argument(
        "--json-rate",
        type=float,
        default=None,
        help="data points per second over http-json (default: --rate); a lower rate is compared per point",
    )
    parser.add_argument("--batch", type=int, default=100, help="data points per request (100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (grpc, http-pb, http-json) (3)")
    parser.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10 s per measurement, 2 s warm-up: a smoke run")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs even when all went well")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 10.0)
    if args.json_rate is None:
        args.json_rate = args.rate
    if min(args.rate, args.json_rate, args.duration) <= 0 or args.rounds < 1 or args.batch < 1:
        parser.error("--rate, --json-rate, --duration, --rounds and --batch must be positive")
    args.workloads = list(WORKLOADS) if args.workload == "both" else [args.workload]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rates = {transport: args.json_rate if transport == "http-json" else args.rate for transport in TRANSPORTS}
    settings: dict[str, Any] = {"duration": args.duration, "rate": args.rate, "json_rate": args.json_rate}
    settings |= {"rates": rates, "batch": args.batch, "rounds": args.rounds}
    settings |= {"workloads": args.workloads, "transports": list(TRANSPORTS), "quick": args.quick}
    report = Report(machine() | {"aiohttp": version("aiohttp")}, settings)
    print_machine(report.machine)
    print(f"aiohttp {report.machine['aiohttp']}; HTTP client: {CLIENT_THREADS} threads, one keep-alive connection each")
    protobuf = {workload: build_payloads(workload, args.batch) for workload in args.workloads}
    payloads = {"grpc": protobuf, "http-pb": protobuf, "http-json": {w: json_payloads(p) for w, p in protobuf.items()}}
    for workload, p in protobuf.items():
        sizes = f"{len(p.requests)} requests of {p.size} B (JSON {payloads['http-json'][workload].size} B)"
        print(f"payloads {workload}: {p.points} points per request, {sizes}")
    bench = Bench(Path(tempfile.mkdtemp(prefix="otel-contract-http-bench-")), {}, report.aftermaths)
    print(f"logs: {bench.logs}", flush=True)
    warmup = 2.0 if args.quick else 5.0
    for round_number in range(1, args.rounds + 1):
        print(f"\nround {round_number} of {args.rounds}", flush=True)
        for workload in args.workloads:
            for transport in TRANSPORTS:

                def measure(transport: str = transport, workload: str = workload, rnd: int = round_number) -> None:
                    with transport_deployment(bench, transport, f"r{rnd}", workload) as d:
                        load = payloads[transport][workload]
                        rate = rates[transport]
                        report.results.append(measure_testbed(d, load, rate, args.duration, warmup))

                run_guarded(report.failures, f"{transport} {workload}", measure)
    print_report(report)
    finish_logs(bench, report.failures, args.keep_logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
