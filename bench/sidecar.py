"""The sidecar against a raw pass-through gRPC proxy, side by side, in one run.

    .venv/bin/python bench/sidecar.py [--duration 60] [--rate 10000] [--batch 100] [--quick]

Each measurement starts a fresh sink (bench/sink.py, which counts the data points it receives) and a
fresh server forwarding to it: either bench/passthrough_proxy.py (request bytes in, the same bytes
out: the floor Python's gRPC plumbing sets) or ``otel-contract serve`` with bench/contract.yaml. The
client is this process, over one loopback channel, with payloads from bench/workload.py.

* (a) throughput: ``--concurrency`` threads in a closed loop for ``--throughput-seconds``; requests/s
  and data points/s acknowledged, and how long the sink then took to have them all.
* (b) the OpenTelemetry Collector testbed scenario: ``--rate`` data points/s in requests of ``--batch``
  points, open loop on a monotonic schedule, for ``--duration`` seconds; the server's CPU (% of one
  core), RSS, the client's latency per request, and whether the sink received every data point.

Nothing is asserted: the goals are printed beside the figures, and a final ``JSON {...}`` line holds
every figure. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import google.protobuf
import grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from workload import VARIANTS, build_request, count_points

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONTRACT = BENCH / "contract.yaml"
HOST = "127.0.0.1"
EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
SINK_STATS = "/bench.Sink/Stats"
SERVERS = ("proxy", "sidecar")
MAX_MESSAGE = 64 * 2**20
CALL_TIMEOUT = 10.0  # seconds, every client call
READY_TIMEOUT = 60.0  # seconds for a process to answer its first call
POLL = 0.01  # seconds between two polls of a process that is not there yet
STOP_GRACE = 25.0  # seconds between SIGTERM and SIGKILL (the sidecar drains its queue for up to 20 s)
SINK_QUIET = 5.0  # stop waiting for the sink when its count has not moved for this long...
SINK_TIMEOUT = 40.0  # ...or after this long in all
PAYLOAD_POOL = 8  # distinct payloads (seeds) per variant, sent in turn
MAX_CLOSED_LOOP_CALLS = 10_000_000  # per thread: a bound the time limit always reaches first
ENGINE_SECONDS = 2.0  # timing the engine alone, per variant
ENGINE_MAX_CALLS = 10_000

# Goals, printed beside the figures (never asserted): issue 18's targets for the sidecar.
GOAL_THROUGHPUT_RATIO = 0.8
GOAL_CPU_RATIO = 1.2
GOAL_RSS_OVER_PROXY_MIB = 25.0
GOAL_P99_DELTA_MS = 2.0

# --- the machine and the payloads -----------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "platform": platform.platform(),
        "load_1m_at_start": load_average(),
    }


def batch_shape(batch: int) -> tuple[int, int]:
    """(metrics, points per metric) for one resource holding exactly ``batch`` points, up to 20 metrics."""
    metrics = max(m for m in range(1, min(20, batch) + 1) if batch % m == 0)
    return metrics, batch // metrics


@dataclass(frozen=True, slots=True)
class Payloads:
    variant: str
    requests: tuple[bytes, ...]
    points: int  # data points in every request

    @property
    def size(self) -> int:
        return len(self.requests[0])


def build_payloads(variant: str, batch: int) -> Payloads:
    """PAYLOAD_POOL requests of ``batch`` points (one resource, up to 20 contract metrics), seeds 1..N."""
    metrics, points = batch_shape(batch)
    requests = [
        build_request(variant, resources=1, metrics=metrics, points=points, seed=seed)
        for seed in range(1, PAYLOAD_POOL + 1)
    ]
    counts = {count_points(request) for request in requests}
    if counts != {batch}:
        raise ValueError(f"the {variant} payloads hold {counts} points, not {batch}")
    return Payloads(variant, tuple(request.SerializeToString() for request in requests), batch)


# --- /proc ----------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CLIENT = "self"  # /proc/self: this process, the client


def cpu_seconds(pid: int | str) -> float:
    """utime + stime of every thread of the process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": fields[0] is field 3, the state
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15: utime, stime


def memory_mib(pid: int | str) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak since the process started) in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values


def load_average() -> float:
    """The 1-minute load average: how busy the machine was, other programs included."""
    return float(Path("/proc/loadavg").read_text().split()[0])


# --- child processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    exit_code: int | None = None
    stop_seconds: float = 0.0
    killed: bool = False
    exited_early: bool = False  # it had exited before stop() was called

    @property
    def pid(self) -> int:
        return self.process.pid


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """This environment without OTEL_* variables (they would redirect the sidecar's exporter), plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    return env | {"PYTHONUNBUFFERED": "1"} | (extra or {})


def spawn(name: str, argv: Sequence[str], logs: Path, env: dict[str, str] | None = None) -> Child:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(list(argv), cwd=ROOT, env=child_env(env), stdout=out, stderr=subprocess.STDOUT)
    return Child(name, process, log)


def stop(child: Child) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE seconds; records the exit code and how long it took."""
    started = time.perf_counter()
    child.exited_early = child.process.poll() is not None
    if not child.exited_early:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.killed = True
            child.process.kill()
            child.process.wait(10)
    child.stop_seconds = time.perf_counter() - started
    child.exit_code = child.process.returncode


def log_lines(child: Child) -> list[str]:
    return child.log.read_text(errors="replace").splitlines() if child.log.exists() else []


# The last two: the Collector's (zap's) console level field.
PROBLEM_WORDS = ("Traceback", "ERROR", "CRITICAL", "WARNING", "Exception", "exception", "\twarn\t", "\terror\t")


def log_problems(child: Child, limit: int = 8) -> tuple[int, list[str]]:
    """How many log lines look like trouble, and the first ``limit`` of them."""
    hits = [line for line in log_lines(child) if any(word in line for word in PROBLEM_WORDS)]
    return len(hits), hits[:limit]


def server_argv(
    kind: str, port: int, sink_port: int, contract: Path = CONTRACT, http_port: int | None = None
) -> list[str]:
    """``kind``'s command line; the sidecar listens for OTLP/HTTP on ``http_port`` if given (bench/http_receiver.py)."""
    if kind == "proxy":
        script = str(BENCH / "passthrough_proxy.py")
        return [sys.executable, script, "--listen", f"{HOST}:{port}", "--downstream", f"{HOST}:{sink_port}"]
    cli = Path(sys.executable).with_name("otel-contract")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "otel_contract"]
    endpoints = ["--endpoint", f"{HOST}:{port}", "--exporter-endpoint", f"{HOST}:{sink_port}"]
    return [
        *command,
        "serve",
        "--contract",
        str(contract),
        *endpoints,
        "--http-endpoint",
        "off" if http_port is None else f"{HOST}:{http_port}",
        "--prometheus",
        f"{HOST}:0",
    ]


# --- gRPC client helpers --------------------------------------------------------------------------

Call: TypeAlias = "grpc.UnaryUnaryMultiCallable[bytes, bytes]"


class ExportFuture(Protocol):
    """An export in flight: a ``grpc.Future`` or a ``concurrent.futures.Future``."""

    def add_done_callback(self, fn: Callable[[Any], None]) -> None: ...
    def exception(self) -> BaseException | None: ...
    def result(self) -> bytes: ...


class Export(Protocol):
    """What the client drives, request bytes in, ExportMetricsServiceResponse bytes out: a raw gRPC
    method (``raw_call``) or bench/http_receiver.py's OTLP/HTTP client. Failures raise ``grpc.RpcError``
    or ``AnswerError``."""

    def __call__(self, request: bytes, *, timeout: float) -> bytes: ...
    def future(self, request: bytes, *, timeout: float) -> ExportFuture: ...


class AnswerError(Exception):
    """A failed export over a transport other than gRPC; ``code`` names the failure as a gRPC status
    name does (``HTTP 503``, ``ConnectionRefusedError``)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def error_code(error: BaseException) -> tuple[str, str]:
    """(code, detail) of a failed export, whichever transport carried it."""
    if isinstance(error, AnswerError):
        return error.code, error.detail
    if isinstance(error, grpc.RpcError):
        return error.code().name, str(error.details())
    return type(error).__name__, str(error)


def open_channel(port: int) -> grpc.Channel:
    options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
    return grpc.insecure_channel(f"{HOST}:{port}", options=options)


def raw_call(channel: grpc.Channel, method: str) -> Call:
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


def rejected_points(response: bytes) -> int:
    return int(ExportMetricsServiceResponse.FromString(response).partial_success.rejected_data_points)


def wait_ready(child: Child, call: Export, request: bytes) -> float:
    """Poll ``call`` until it answers OK; seconds it took. Raises if the process exits or times out."""
    started = time.perf_counter()
    last = "no answer"
    for _ in range(int(READY_TIMEOUT / POLL)):
        if child.process.poll() is not None:
            tail = "\n".join(log_lines(child)[-15:])
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{tail}")
        try:
            call(request, timeout=1.0)
            return time.perf_counter() - started
        except (grpc.RpcError, AnswerError) as error:
            last = "{}: {}".format(*error_code(error))
        if time.perf_counter() - started > READY_TIMEOUT:
            break
        time.sleep(POLL)
    tail = "\n".join(log_lines(child)[-15:])
    raise RuntimeError(f"{child.name} not ready after {READY_TIMEOUT:.0f} s ({last}):\n{tail}")


def sink_points(call: Call) -> int:
    return int(json.loads(call(b"", timeout=CALL_TIMEOUT))["points"])


@dataclass(frozen=True, slots=True)
class SinkCheck:
    expected: int  # points the server accepted (answered OK for, minus what it said it rejected)
    received: int  # points the sink counted
    seconds: float  # from the end of the window until the sink had them all (or the wait gave up)

    @property
    def diff(self) -> int:
        """received - expected: 0 when every point arrived once; < 0 lost, > 0 duplicated."""
        return self.received - self.expected


def wait_for_sink(call: Call, expected: int) -> SinkCheck:
    """Poll the sink until it counted ``expected`` points, stopped moving for SINK_QUIET s, or SINK_TIMEOUT."""
    started = time.perf_counter()
    last, last_change = -1, started
    points = 0
    for _ in range(int(SINK_TIMEOUT / POLL)):
        points = sink_points(call)
        now = time.perf_counter()
        if points == expected:
            break
        if points != last:
            last, last_change = points, now
        if now - last_change >= SINK_QUIET or now - started >= SINK_TIMEOUT:
            break
        time.sleep(POLL)
    return SinkCheck(expected, points, round(time.perf_counter() - started, 3))


# --- one server with its sink ---------------------------------------------------------------------


@dataclass(slots=True)
class Deployment:
    kind: str
    server: Child
    export: Export
    stats: Call
    accepted: int = 0  # data points the server answered OK for, minus those it said it rejected

    def sink_check(self) -> SinkCheck:
        return wait_for_sink(self.stats, self.accepted)

    def check_alive(self, tally: Tally) -> None:
        """Raise, with the end of its log, if the server exited during the measurement."""
        code = self.server.process.poll()
        if code is not None:
            tail = "\n".join(log_lines(self.server)[-6:])
            raise RuntimeError(f"{self.kind} exited with {code} during the measurement ({tally.summary()}):\n{tail}")


@dataclass(slots=True)
class Aftermath:
    """What became of a server process once it was stopped."""

    server: str
    scenario: str
    variant: str
    exit_code: int | None
    stop_seconds: float
    killed: bool
    exited_early: bool
    log_problem_lines: int
    log_problems: list[str]
    sink_exit_code: int | None
    log: str


@dataclass(slots=True)
class Bench:
    """Where the processes' logs go, what became of the servers, and the sidecar's extra environment."""

    logs: Path
    sidecar_env: dict[str, str]
    aftermaths: list[Aftermath] = field(default_factory=list)

    def record(self, server: Child, sink: Child, kind: str, scenario: str, variant: str) -> None:
        count, lines = log_problems(server)
        self.aftermaths.append(
            Aftermath(
                server=kind,
                scenario=scenario,
                variant=variant,
                exit_code=server.exit_code,
                stop_seconds=round(server.stop_seconds, 2),
                killed=server.killed,
                exited_early=server.exited_early,
                log_problem_lines=count,
                log_problems=lines,
                sink_exit_code=sink.exit_code,
                log=str(server.log),
            )
        )


ServerArgv: TypeAlias = Callable[[str, int, int], list[str]]  # (kind, port, sink port) -> argv


@contextlib.contextmanager
def deployment(
    bench: Bench,
    kind: str,
    scenario: str,
    variant: str,
    argv: ServerArgv = server_argv,
    sink_options: Sequence[str] = (),
) -> Iterator[Deployment]:
    """A fresh sink and a fresh ``kind`` server forwarding to it, both ready; both stopped afterwards.

    ``argv`` builds the server's command line (bench/collector.py adds the Collector); ``sink_options``
    go to bench/sink.py.
    """
    label = f"{kind}-{scenario}-{variant}"
    sink_port, port = free_port(), free_port()
    children: list[Child] = []
    channels: list[grpc.Channel] = []
    try:
        sink_argv = [sys.executable, str(BENCH / "sink.py"), "--listen", f"{HOST}:{sink_port}", *sink_options]
        children.append(spawn(f"{label}-sink", sink_argv, bench.logs))
        channels.append(open_channel(sink_port))
        stats = raw_call(channels[0], SINK_STATS)
        wait_ready(children[0], stats, b"")  # before the server starts: the Collector warns when it cannot connect
        env = bench.sidecar_env if kind == "sidecar" else None
        children.append(spawn(label, argv(kind, port, sink_port), bench.logs, env))
        channels.append(open_channel(port))
        export = raw_call(channels[1], EXPORT)
        wait_ready(children[1], export, b"")  # an empty ExportMetricsServiceRequest
        yield Deployment(kind, children[1], export, stats)
    finally:
        for channel in channels:
            channel.close()
        for child in reversed(children):  # the server first, so that it can drain into the sink
            stop(child)
        if len(children) == 2:
            bench.record(children[1], children[0], kind, scenario, variant)


# --- the engine alone, in this process ------------------------------------------------------------


def engine_ms_per_request(payloads: Payloads) -> float | None:
    """Mean wall time of the sidecar's Pipeline.process + to_bytes on these payloads, no gRPC."""
    try:
        from otel_contract.loading import load_contract
        from otel_contract.otlp import Signal
        from otel_contract.pipeline import Pipeline
    except Exception:
        return None
    processor = Pipeline(load_contract(CONTRACT))
    for request in payloads.requests:  # warm-up: caches, and the series into the cardinality state
        processor.process(Signal.METRICS, request).to_bytes()
    calls, started = 0, time.perf_counter()
    deadline = started + ENGINE_SECONDS
    for i in range(ENGINE_MAX_CALLS):
        processor.process(Signal.METRICS, payloads.requests[i % len(payloads.requests)]).to_bytes()
        calls += 1
        if time.perf_counter() >= deadline:
            break
    return 1000 * (time.perf_counter() - started) / calls


# --- (a) throughput: closed loop ------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    ok: int = 0
    rejected: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    details: dict[str, str] = field(default_factory=dict)  # the first message of each error code

    def merge(self, other: Tally) -> None:
        self.ok += other.ok
        self.rejected += other.rejected
        self.errors.update(other.errors)
        self.details = other.details | self.details

    def failed(self, error: BaseException) -> None:
        code, detail = error_code(error)
        self.errors[code] += 1
        self.details.setdefault(code, detail)

    def accepted(self, points_per_request: int) -> int:
        return self.ok * points_per_request - self.rejected

    def summary(self) -> str:
        return f"{self.ok} OK, {self.rejected} points rejected, errors {dict(self.errors) or 0}"


def closed_loop_caller(
    export: Export, payloads: Payloads, offset: int, until: float, start: threading.Barrier
) -> Tally:
    tally = Tally()
    requests = payloads.requests
    start.wait(timeout=30)
    for i in range(MAX_CLOSED_LOOP_CALLS):
        if time.perf_counter() >= until:
            break
        try:
            response = export(requests[(offset + i) % len(requests)], timeout=CALL_TIMEOUT)
        except (grpc.RpcError, AnswerError) as error:
            tally.failed(error)
            continue
        tally.ok += 1
        tally.rejected += rejected_points(response)
    return tally


def closed_loop(export: Export, payloads: Payloads, threads: int, seconds: float) -> tuple[Tally, float]:
    """``threads`` callers back to back for ``seconds``; the tally and the wall time until the last one ended."""
    start = threading.Barrier(threads + 1)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="client") as pool:
        until = time.perf_counter() + seconds + 0.05  # the barrier releases well within 50 ms
        jobs = [pool.submit(closed_loop_caller, export, payloads, k, until, start) for k in range(threads)]
        start.wait(timeout=30)
        began = time.perf_counter()
        tally = Tally()
        for job in jobs:
            tally.merge(job.result(timeout=seconds + CALL_TIMEOUT + 30))
        return tally, time.perf_counter() - began


@dataclass(slots=True)
class ThroughputResult:
    server: str
    variant: str
    payload_bytes: int
    points_per_request: int
    concurrency: int
    seconds: float
    requests_ok: int
    errors: dict[str, int]
    error_details: dict[str, str]
    rejected_points: int
    server_cpu_pct: float  # % of one core
    client_cpu_pct: float
    load_1m: float
    sink: SinkCheck

    @property
    def requests_per_s(self) -> float:
        return self.requests_ok / self.seconds

    @property
    def points_per_s(self) -> float:
        return self.requests_ok * self.points_per_request / self.seconds

    @property
    def delivered_points_per_s(self) -> float:
        """The window's accepted points over the window plus the time the sink took to have them all."""
        accepted = self.requests_ok * self.points_per_request - self.rejected_points
        return accepted / (self.seconds + self.sink.seconds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "sink": asdict(self.sink) | {"diff": self.sink.diff},
            "requests_per_s": round(self.requests_per_s, 1),
            "points_per_s": round(self.points_per_s, 1),
            "delivered_points_per_s": round(self.delivered_points_per_s, 1),
        }


def measure_throughput(
    d: Deployment, payloads: Payloads, threads: int, seconds: float, warmup: float
) -> ThroughputResult:
    warm, _ = closed_loop(d.export, payloads, threads, warmup)
    d.accepted += warm.accepted(payloads.points)
    d.sink_check()  # let the warm-up drain before the window opens
    server_cpu, client_cpu = cpu_seconds(d.server.pid), cpu_seconds(CLIENT)
    tally, elapsed = closed_loop(d.export, payloads, threads, seconds)
    d.check_alive(tally)
    server_cpu, client_cpu = cpu_seconds(d.server.pid) - server_cpu, cpu_seconds(CLIENT) - client_cpu
    load = load_average()
    d.accepted += tally.accepted(payloads.points)
    return ThroughputResult(
        server=d.kind,
        variant=payloads.variant,
        payload_bytes=payloads.size,
        points_per_request=payloads.points,
        concurrency=threads,
        seconds=round(elapsed, 3),
        requests_ok=tally.ok,
        errors=dict(tally.errors),
        error_details=tally.details,
        rejected_points=tally.rejected,
        server_cpu_pct=round(100 * server_cpu / elapsed, 1),
        client_cpu_pct=round(100 * client_cpu / elapsed, 1),
        load_1m=load,
        sink=d.sink_check(),
    )


# --- (b) the Collector testbed scenario: open loop ------------------------------------------------


class OpenLoopRecorder:
    """Latency and outcome of each request, recorded by the export futures' completion callbacks."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self.completed = 0
        self.latencies: list[float] = []
        self.tally = Tally()

    def record(self, started: float, future: ExportFuture) -> None:
        elapsed = time.perf_counter() - started
        error = future.exception()
        with self._done:
            if error is None:
                self.latencies.append(elapsed)
                self.tally.ok += 1
                self.tally.rejected += rejected_points(future.result())
            else:
                self.tally.failed(error)
            self.completed += 1
            self._done.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self.completed >= count, timeout=timeout)


@dataclass(frozen=True, slots=True)
class OpenLoopRun:
    recorder: OpenLoopRecorder
    sent: int
    seconds: float  # from the first send until the last response
    max_lag_ms: float  # how far behind its schedule the client sent a request, at worst


def open_loop(export: Export, payloads: Payloads, requests_per_s: float, seconds: float) -> OpenLoopRun:
    """Send request i at t0 + i / rate without waiting for earlier answers; time each one from its send."""
    recorder = OpenLoopRecorder()
    total = max(1, round(requests_per_s * seconds))
    futures: list[ExportFuture] = []  # kept until every callback ran
    max_lag = 0.0
    t0 = time.perf_counter()
    for i in range(total):
        target = t0 + i / requests_per_s
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        started = time.perf_counter()
        max_lag = max(max_lag, started - target)
        future = export.future(payloads.requests[i % len(payloads.requests)], timeout=CALL_TIMEOUT)
        future.add_done_callback(functools.partial(recorder.record, started))
        futures.append(future)
    recorder.wait(total, CALL_TIMEOUT + 5)
    return OpenLoopRun(recorder, total, time.perf_counter() - t0, max_lag * 1000)


def percentile(ascending: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not ascending:
        return 0.0
    return ascending[max(0, math.ceil(q * len(ascending)) - 1)]


@dataclass(slots=True)
class TestbedResult:
    server: str
    variant: str
    payload_bytes: int
    points_per_request: int
    target_points_per_s: float
    seconds: float
    requests_sent: int
    requests_ok: int
    errors: dict[str, int]
    error_details: dict[str, str]
    rejected_points: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    max_client_lag_ms: float
    server_cpu_pct: float  # % of one core
    rss_start_mib: float
    rss_end_mib: float
    rss_peak_mib: float  # VmHWM: the peak since the process started (start-up and warm-up included)
    load_1m: float
    sink: SinkCheck

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sink": asdict(self.sink) | {"diff": self.sink.diff}}


def measure_testbed(
    d: Deployment, payloads: Payloads, points_per_s: float, seconds: float, warmup: float
) -> TestbedResult:
    rate = points_per_s / payloads.points
    warm = open_loop(d.export, payloads, rate, warmup)
    d.accepted += warm.recorder.tally.accepted(payloads.points)
    d.sink_check()
    rss_start = memory_mib(d.server.pid)["VmRSS"]
    cpu = cpu_seconds(d.server.pid)
    run = open_loop(d.export, payloads, rate, seconds)
    d.check_alive(run.recorder.tally)
    cpu = cpu_seconds(d.server.pid) - cpu
    memory = memory_mib(d.server.pid)
    load = load_average()
    tally = run.recorder.tally
    if run.recorder.completed < run.sent:
        tally.errors["NO_ANSWER_IN_TIME"] += run.sent - run.recorder.completed
    d.accepted += tally.accepted(payloads.points)
    latencies = sorted(run.recorder.latencies)
    return TestbedResult(
        server=d.kind,
        variant=payloads.variant,
        payload_bytes=payloads.size,
        points_per_request=payloads.points,
        target_points_per_s=points_per_s,
        seconds=round(run.seconds, 3),
        requests_sent=run.sent,
        requests_ok=tally.ok,
        errors=dict(tally.errors),
        error_details=tally.details,
        rejected_points=tally.rejected,
        p50_ms=round(1000 * percentile(latencies, 0.50), 3),
        p99_ms=round(1000 * percentile(latencies, 0.99), 3),
        max_ms=round(1000 * (latencies[-1] if latencies else 0.0), 3),
        max_client_lag_ms=round(run.max_lag_ms, 3),
        server_cpu_pct=round(100 * cpu / run.seconds, 1),
        rss_start_mib=round(rss_start, 1),
        rss_end_mib=round(memory["VmRSS"], 1),
        rss_peak_mib=round(memory["VmHWM"], 1),
        load_1m=load,
        sink=d.sink_check(),
    )


# --- comparisons ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    scenario: str
    variant: str
    what: str
    value: float
    unit: str
    goal: str
    met: bool | None  # None: information, no goal

    @property
    def verdict(self) -> str:
        return "info" if self.met is None else "met" if self.met else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        value = round(self.value, 3) if math.isfinite(self.value) else None  # JSON has no infinity
        return asdict(self) | {"value": value, "verdict": self.verdict}


def pairs(results: Sequence[Any]) -> Iterator[tuple[str, Any, Any]]:
    """(variant, proxy result, sidecar result) for every variant measured on both."""
    by_key = {(r.server, r.variant): r for r in results}
    for variant in dict.fromkeys(r.variant for r in results):
        proxy, sidecar = by_key.get(("proxy", variant)), by_key.get(("sidecar", variant))
        if proxy is not None and sidecar is not None:
            yield variant, proxy, sidecar


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.inf


def compare_throughput(results: Sequence[ThroughputResult]) -> list[Comparison]:
    rows = []
    for variant, proxy, sidecar in pairs(results):
        acked = ratio(sidecar.requests_per_s, proxy.requests_per_s)
        goal = f">= {GOAL_THROUGHPUT_RATIO:g}x"
        rows.append(Comparison("a", variant, "sidecar/proxy req/s", acked, "x", goal, acked >= GOAL_THROUGHPUT_RATIO))
        delivered = ratio(sidecar.delivered_points_per_s, proxy.delivered_points_per_s)
        rows.append(Comparison("a", variant, "sidecar/proxy delivered points/s", delivered, "x", "", None))
    return rows


def compare_testbed(results: Sequence[TestbedResult]) -> list[Comparison]:
    rows = []
    for variant, proxy, sidecar in pairs(results):
        cpu = ratio(sidecar.server_cpu_pct, proxy.server_cpu_pct)
        rows.append(
            Comparison(
                "b", variant, "sidecar CPU / proxy CPU", cpu, "x", f"<= {GOAL_CPU_RATIO:g}x", cpu <= GOAL_CPU_RATIO
            )
        )
        rss = sidecar.rss_peak_mib - proxy.rss_peak_mib
        goal = f"<= {GOAL_RSS_OVER_PROXY_MIB:g} MiB"
        rows.append(
            Comparison("b", variant, "sidecar peak RSS - proxy's", rss, "MiB", goal, rss <= GOAL_RSS_OVER_PROXY_MIB)
        )
        delta = sidecar.p99_ms - proxy.p99_ms
        goal = f"<= {GOAL_P99_DELTA_MS:g} ms"
        rows.append(Comparison("b", variant, "sidecar p99 - proxy p99", delta, "ms", goal, delta <= GOAL_P99_DELTA_MS))
    return rows


# --- the report -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    engine_ms: dict[str, float | None] = field(default_factory=dict)
    throughput: list[ThroughputResult] = field(default_factory=list)
    testbed: list[TestbedResult] = field(default_factory=list)
    aftermaths: list[Aftermath] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def comparisons(self) -> list[Comparison]:
        return compare_throughput(self.throughput) + compare_testbed(self.testbed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "engine_ms_per_request": self.engine_ms,
            "throughput": [r.as_dict() for r in self.throughput],
            "testbed": [r.as_dict() for r in self.testbed],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "processes": [asdict(a) for a in self.aftermaths],
            "failures": self.failures,
        }


def errors_text(errors: dict[str, int]) -> str:
    """The number of failed requests; which codes is printed below the tables."""
    return str(sum(errors.values()))


def print_throughput(results: Sequence[ThroughputResult]) -> None:
    print(
        f"{'server':<8} {'variant':<10} {'req/s':>7} {'points/s':>9} {'delivered/s':>11} {'errors':>6} "
        f"{'srv CPU%':>8} {'cli CPU%':>8} {'sink diff':>9} {'drain s':>7} {'load':>5}"
    )
    for r in results:
        print(
            f"{r.server:<8} {r.variant:<10} {r.requests_per_s:>7.0f} {r.points_per_s:>9.0f} "
            f"{r.delivered_points_per_s:>11.0f} {errors_text(r.errors):>6} {r.server_cpu_pct:>8.1f} "
            f"{r.client_cpu_pct:>8.1f} {r.sink.diff:>9} {r.sink.seconds:>7.2f} {r.load_1m:>5.2f}"
        )


def server_width(results: Sequence[Any]) -> int:
    """The server column's width: 8, or the longest name (bench/http_receiver.py's transports)."""
    return max([8, *(len(r.server) for r in results)])


def print_testbed(results: Sequence[TestbedResult]) -> None:
    w = server_width(results)
    print(
        f"{'server':<{w}} {'variant':<10} {'sent':>5} {'errors':>6} {'CPU%':>5} {'RSS start':>9} {'end':>5} "
        f"{'peak':>5} {'p50 ms':>6} {'p99 ms':>6} {'max ms':>6} {'lag ms':>6} {'sink diff':>9} {'load':>5}"
    )
    for r in results:
        print(
            f"{r.server:<{w}} {r.variant:<10} {r.requests_sent:>5} {errors_text(r.errors):>6} {r.server_cpu_pct:>5.1f} "
            f"{r.rss_start_mib:>9.1f} {r.rss_end_mib:>5.1f} {r.rss_peak_mib:>5.1f} {r.p50_ms:>6.2f} "
            f"{r.p99_ms:>6.2f} {r.max_ms:>6.1f} {r.max_client_lag_ms:>6.1f} {r.sink.diff:>9} {r.load_1m:>5.2f}"
        )


def print_error_details(results: Sequence[ThroughputResult | TestbedResult]) -> None:
    for r in results:
        for code, detail in r.error_details.items():
            print(f"  {r.server} {r.variant}: {r.errors.get(code, 0)} x {code}, first: {detail!r}")


def print_comparisons(rows: Sequence[Comparison]) -> None:
    for c in rows:
        figure = f"{c.value:.2f} {c.unit}"
        goal = f"goal {c.goal}" if c.goal else ""
        print(f"({c.scenario}) {c.variant:<10} {c.what:<33} {figure:>10}   {goal:<16} {c.verdict}")


def print_aftermaths(aftermaths: Sequence[Aftermath]) -> None:
    w = server_width(aftermaths)
    for a in aftermaths:
        if a.exited_early:
            stopped = f"exit {a.exit_code} BEFORE the harness stopped it,"
        elif a.killed:
            stopped = f"SIGKILLed {a.stop_seconds:.2f} s after SIGTERM,"
        else:
            stopped = f"exit {a.exit_code} {a.stop_seconds:.2f} s after SIGTERM,"
        print(
            f"{a.server:<{w}} {a.scenario:<10} {a.variant:<10} {stopped} "
            f"{a.log_problem_lines} log line(s) with a warning or an error"
        )
        for line in a.log_problems:
            print(f"    {line[:220]}")


def print_processes_and_json(aftermaths: Sequence[Aftermath], failures: Sequence[str], figures: dict[str, Any]) -> None:
    """The end of a report: what became of the processes, the failures, and the ``JSON`` line."""
    print()
    print("processes")
    print_aftermaths(aftermaths)
    for failure in failures:
        print(f"FAILED {failure}")
    print()
    print("JSON " + json.dumps(figures, separators=(",", ":")))


def print_report(report: Report) -> None:
    settings = report.settings
    print()
    print(
        f"(a) throughput: {settings['concurrency']} closed-loop callers for {settings['throughput_seconds']:g} s, "
        f"{settings['batch']} points per request"
    )
    print_throughput(report.throughput)
    print()
    print(
        f"(b) testbed: {settings['rate']:g} points/s in requests of {settings['batch']}, open loop, "
        f"{settings['duration']:g} s; CPU in % of one core, RSS in MiB"
    )
    print_testbed(report.testbed)
    print_error_details([*report.throughput, *report.testbed])
    print()
    print("sidecar vs proxy")
    print_comparisons(report.comparisons)
    print_processes_and_json(report.aftermaths, report.failures, report.as_dict())


# --- running --------------------------------------------------------------------------------------


def run_guarded(failures: list[str], what: str, action: Callable[[], None]) -> None:
    """Run one measurement; a server that fails to start or crashes is reported, not fatal."""
    print(f"  {what} ...", flush=True)
    try:
        action()
    except Exception as exc:
        message = f"{what}: {type(exc).__name__}: {exc}"
        failures.append(message)
        print(f"  FAILED {message}", flush=True)


def run_scenario(
    report: Report,
    args: argparse.Namespace,
    bench: Bench,
    scenario: str,
    measure: Callable[[Deployment, str], Any],
    results: list[Any],
) -> None:
    """Run ``measure`` on a fresh deployment of every server kind for every variant; failures are recorded."""
    label = {"throughput": "a", "testbed": "b"}[scenario]
    for variant in args.variants:
        for kind in args.servers:

            def action(kind: str = kind, variant: str = variant) -> None:
                with deployment(bench, kind, scenario, variant) as d:
                    results.append(measure(d, variant))

            run_guarded(report.failures, f"({label}) {kind} {variant}", action)


def print_machine(m: dict[str, Any]) -> None:
    print(
        f"machine: nproc {m['nproc']} (usable {m['usable_cpus']}), {m['cpu'] or 'unknown CPU'}, Python {m['python']}, "
        f"grpcio {m['grpcio']}, protobuf {m['protobuf']}, {m['platform']}, load {m['load_1m_at_start']:.2f}"
    )


def finish_logs(bench: Bench, failures: Sequence[str], keep: bool) -> None:
    """Keep the processes' logs when asked or when anything went wrong; remove them otherwise."""
    troubled = bool(failures) or any(
        a.log_problem_lines or a.exit_code or a.killed or a.exited_early for a in bench.aftermaths
    )
    if keep or troubled:
        print(f"logs kept in {bench.logs}")
    else:
        shutil.rmtree(bench.logs, ignore_errors=True)


def print_header(report: Report, payloads: dict[str, Payloads], batch: int) -> None:
    print_machine(report.machine)
    metrics, points = batch_shape(batch)
    sizes = ", ".join(f"{p.variant} {p.size} B" for p in payloads.values())
    print(f"payloads: {batch} points per request (1 resource x {metrics} metrics x {points} points); {sizes}")
    compression = report.settings["sidecar_compression"]
    print(f"sidecar exporter compression: {compression}")
    requests_per_s = report.settings["rate"] / batch
    for variant, ms in report.engine_ms.items():
        if ms is None:
            print(f"engine alone ({variant}): otel_contract cannot be imported")
            continue
        print(
            f"engine alone ({variant}, in this process, no gRPC): {ms:.2f} ms per request, "
            f"{ms * requests_per_s / 10:.0f} % of one core at {requests_per_s:g} requests/s"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of (b) per server and variant (60)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="data points per second in (b) (10000)")
    parser.add_argument("--batch", type=int, default=100, help="data points per request (100)")
    parser.add_argument("--throughput-seconds", type=float, default=15.0, help="seconds of (a) per server and variant")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop callers in (a) (8)")
    parser.add_argument("--variants", default="compliant,legacy20", help="workload variants, comma-separated")
    parser.add_argument("--servers", default=",".join(SERVERS), help="proxy,sidecar or either alone")
    parser.add_argument("--scenarios", default="a,b", help="a (throughput), b (testbed) or both")
    parser.add_argument(
        "--sidecar-compression",
        choices=("default", "none", "gzip"),
        default="default",
        help="the sidecar exporter's compression, through OTEL_EXPORTER_OTLP_COMPRESSION (default: its own, none)",
    )
    parser.add_argument("--quick", action="store_true", help="(b) for 10 s and (a) for 5 s")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs even when all went well")
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    args.servers = [s for s in args.servers.split(",") if s]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if args.quick:
        args.duration, args.throughput_seconds = min(args.duration, 10.0), min(args.throughput_seconds, 5.0)
    unknown = (
        (set(args.variants) - set(VARIANTS)) | (set(args.servers) - set(SERVERS)) | (set(args.scenarios) - {"a", "b"})
    )
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    if args.batch < 1 or args.rate <= 0 or args.duration <= 0 or args.throughput_seconds <= 0 or args.concurrency < 1:
        parser.error("--batch, --rate, --duration, --throughput-seconds and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings_keys = ("duration", "rate", "batch", "throughput_seconds", "concurrency", "variants", "servers")
    settings = {key: getattr(args, key) for key in settings_keys}
    settings |= {"quick": args.quick, "sidecar_compression": args.sidecar_compression}
    report = Report(machine(), settings)
    payloads = {variant: build_payloads(variant, args.batch) for variant in args.variants}
    if "sidecar" in args.servers:
        report.engine_ms = {variant: engine_ms_per_request(p) for variant, p in payloads.items()}
    print_header(report, payloads, args.batch)
    sidecar_env = (
        {} if args.sidecar_compression == "default" else {"OTEL_EXPORTER_OTLP_COMPRESSION": args.sidecar_compression}
    )
    bench = Bench(Path(tempfile.mkdtemp(prefix="otel-contract-bench-")), sidecar_env, report.aftermaths)
    print(f"logs: {bench.logs}", flush=True)
    if "a" in args.scenarios:
        warmup = 1.0 if args.quick else 2.0
        run_scenario(
            report,
            args,
            bench,
            "throughput",
            lambda d, variant: measure_throughput(
                d, payloads[variant], args.concurrency, args.throughput_seconds, warmup
            ),
            report.throughput,
        )
    if "b" in args.scenarios:
        warmup = 2.0 if args.quick else 5.0
        run_scenario(
            report,
            args,
            bench,
            "testbed",
            lambda d, variant: measure_testbed(d, payloads[variant], args.rate, args.duration, warmup),
            report.testbed,
        )
    print_report(report)
    finish_logs(bench, report.failures, args.keep_logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
