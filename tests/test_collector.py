"""The real OpenTelemetry Collector around the sidecar (issue 19): built from pinned upstream modules
(tools/otelcol), an agent in front of ``otel-contract serve`` and a gateway behind it.

* an app on the Python SDK, through the chain: the gateway's file is what ``normalize`` writes;
* spans and log records the same way;
* retries with the Collector's own otlp exporter as the client: a full sending queue, and a gateway
  gone for a minute under load; every point arrives, once.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_contract.inputs.otlp import read_captures
from otel_contract.otlp import Signal
from tests.conftest import CONTRACTS, run_cli
from tests.otelcol import Collector, otelcol_fixture  # noqa: F401 - the fixture
from tests.otlp_builders import GOOD_RESOURCE, all_metrics, as_collector_compares, gauge, metrics_request, point_attrs
from tests.sidecar_harness import RawClient, SidecarProcess, wait_until

_CONTRACT = CONTRACTS / "ecommerce.yaml"


def test_the_collector_is_the_pinned_release_with_the_components_the_tests_use(otelcol: str) -> None:
    listed = subprocess.run([otelcol, "components"], capture_output=True, text=True, timeout=60, check=True).stdout
    components = yaml.safe_load(listed)
    assert components["buildinfo"]["version"] == "0.161.0"
    names = {kind: {entry["name"] for entry in components[kind]} for kind in ("receivers", "processors", "exporters")}
    assert names["receivers"] == {"otlp"}
    assert names["processors"] == {"batch", "memory_limiter", "transform", "filter", "resource", "attributes"}
    # At this release the otlp exporters are otlp_grpc and otlp_http (otlp and otlphttp are their old names).
    assert names["exporters"] == {"otlp_grpc", "otlp_http", "debug", "file"}


@dataclass(frozen=True)
class Chain:
    """Agent (otlp receiver -> otlp_grpc exporter) -> otel-contract serve -> gateway (otlp receiver -> file).

    The agent also writes what it sends to ``sent`` (a file exporter beside its otlp_grpc one): the
    input that ``otel-contract normalize`` is given to predict the gateway's file, ``received``.
    """

    agent: Collector
    sidecar: SidecarProcess
    gateway: Collector
    sent: Path
    received: Path

    def diagnosis(self) -> str:
        return "\n".join(
            f"--- {name}\n{part.output()}"
            for name, part in (("agent", self.agent), ("sidecar", self.sidecar), ("gateway", self.gateway))
        )


def _every_signal(*exporters: str) -> dict[str, Any]:
    """The ``service`` section: one pipeline per signal, from the otlp receiver to ``exporters``."""
    return {"pipelines": {signal.value: {"receivers": ["otlp"], "exporters": list(exporters)} for signal in Signal}}


def _gateway(otelcol: str, directory: Path, name: str, port: int | None = None) -> tuple[Collector, Path]:
    """A gateway Collector writing every signal it receives to a file, and that file."""
    received = directory / f"{name}.jsonl"
    exporters = {"file": {"path": str(received), "flush_interval": "100ms"}}
    return Collector(
        otelcol, directory, name, {"exporters": exporters, "service": _every_signal("file")}, port
    ), received


# How the agent sends to the sidecar: its exporter, and that exporter's settings for a sidecar.
_AGENT_EXPORTERS: dict[str, tuple[str, Callable[[SidecarProcess], dict[str, Any]]]] = {
    "otlp_grpc": ("otlp_grpc", lambda sidecar: {"endpoint": sidecar.endpoint, "tls": {"insecure": True}}),
    "otlp_http": ("otlp_http", lambda sidecar: {"endpoint": f"http://{sidecar.http_endpoint}"}),
    "otlp_http-json": (
        "otlp_http",
        lambda sidecar: {"endpoint": f"http://{sidecar.http_endpoint}", "encoding": "json"},
    ),
}


@contextmanager
def _chain(
    otelcol: str, directory: Path, *sidecar_args: str, gateway_up: bool = True, agent_exporter: str = "otlp_grpc"
) -> Iterator[Chain]:
    """The chain, running; with ``gateway_up`` false the gateway is left for the test to start.
    ``agent_exporter`` is a key of ``_AGENT_EXPORTERS``: OTLP/gRPC, or OTLP/HTTP with protobuf or JSON."""
    sent = directory / "agent-sent.jsonl"
    gateway, received = _gateway(otelcol, directory, "gateway")
    sidecar = SidecarProcess("--contract", str(_CONTRACT), "--exporter-endpoint", gateway.endpoint, *sidecar_args)
    exporter, settings = _AGENT_EXPORTERS[agent_exporter]
    agent = Collector(
        otelcol,
        directory,
        "agent",
        {
            "exporters": {exporter: settings(sidecar), "file": {"path": str(sent), "flush_interval": "100ms"}},
            "service": _every_signal(exporter, "file"),
        },
    )
    try:
        if gateway_up:
            gateway.start()
        sidecar.start()
        agent.start()
        yield Chain(agent, sidecar, gateway, sent, received)
    finally:
        agent.stop()
        sidecar.stop()
        gateway.stop()


@pytest.fixture
def chain(otelcol: str, tmp_path: Path) -> Iterator[Chain]:
    with _chain(otelcol, tmp_path) as running_chain:
        yield running_chain


@pytest.fixture(params=list(_AGENT_EXPORTERS))
def any_chain(otelcol: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Chain]:
    """The chain with the agent sending over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON in turn."""
    with _chain(otelcol, tmp_path, agent_exporter=request.param) as running_chain:
        yield running_chain


def _requests(path: Path, signal: Signal = Signal.METRICS) -> list[Any]:
    """The requests of ``signal`` in a Collector file exporter's file (it writes every signal there)."""
    if not path.exists() or not path.read_bytes().endswith(b"\n"):
        return []
    return [capture.request for capture in read_captures(path) if capture.signal is signal]


def _normalized(capture: Path, signal: Signal, directory: Path) -> list[Any]:
    """The ``signal`` requests ``otel-contract normalize`` writes for the capture, in order."""
    output = directory / "normalized.jsonl"
    result = run_cli("normalize", "-c", str(_CONTRACT), str(capture), "-o", str(output))
    assert result.returncode in (0, 1), result.stderr
    return [as_collector_compares(request) for request in _requests(output, signal)]


def _arrived(chain: Chain, signal: Signal, count: int) -> None:
    """Waits until the agent has sent ``count`` requests of ``signal`` and the gateway has them all."""
    assert wait_until(lambda: len(_requests(chain.sent, signal)) >= count, timeout=30), chain.diagnosis()
    assert wait_until(lambda: len(_requests(chain.received, signal)) >= count, timeout=30), chain.diagnosis()


# The app's resource: what ecommerce.yaml requires, and the instance the disk shim groups by.
_APP_RESOURCE = {**GOOD_RESOURCE, "service.instance.id": "checkout-1"}


def test_an_sdk_app_through_agent_sidecar_and_gateway_gets_exactly_what_normalize_writes(
    any_chain: Chain, tmp_path: Path
) -> None:
    """Canonical names, units (histogram bounds included), renamed and retyped attributes, the compat
    shim's series, the rejected point absent, and the agent logging the sidecar's partial_success:
    whether the agent's exporter speaks OTLP/gRPC or OTLP/HTTP (protobuf or JSON)."""
    chain = any_chain
    meters = MeterProvider(
        resource=Resource.create(_APP_RESOURCE),
        metric_readers=[
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=chain.agent.endpoint, insecure=True), export_interval_millis=3_600_000
            )
        ],
    )
    app = meters.get_meter("checkout")
    # The legacy histogram in ms, a legacy status key with a string value, and the forbidden user.id.
    duration = app.create_histogram("http.server.duration", unit="ms", explicit_bucket_boundaries_advisory=[100, 500])
    io_time = app.create_counter("system_disk_io_time_seconds_total", unit="s")
    flushes = 2  # the shim is a rate: its series appears from the second sample of its input on
    try:
        for flush in range(flushes):
            duration.record(350, {"http.method": "GET", "http_status": "200"})
            duration.record(50, {"http.method": "GET", "http_status": "200", "user.id": "u-1"})
            io_time.add(1.5, {"device": "sda"})
            io_time.add(3.0, {"device": "sdb"})
            assert meters.force_flush(timeout_millis=15_000)
            _arrived(chain, Signal.METRICS, flush + 1)
    finally:
        meters.shutdown()
    exports = flushes + 1  # shutting down exports once more
    _arrived(chain, Signal.METRICS, exports)

    forwarded = [as_collector_compares(request) for request in _requests(chain.received)]
    assert forwarded == _normalized(chain.sent, Signal.METRICS, tmp_path)
    assert len(forwarded) == exports
    metrics = {m.name: m for m in all_metrics(forwarded[-1])}
    assert set(metrics) == {
        "http_server_duration_seconds",
        "system_disk_io_time_seconds_total",
        "node_disk_io_time_seconds_total",
    }
    duration_seconds = metrics["http_server_duration_seconds"]
    assert duration_seconds.unit == "s"
    [point] = duration_seconds.histogram.data_points  # the user.id point was rejected
    assert list(point.explicit_bounds) == [0.1, 0.5]
    assert point.sum == pytest.approx(0.35 * flushes)
    assert point_attrs(point) == {"http.method": "GET", "http.status_code": 200}
    shim = metrics["node_disk_io_time_seconds_total"]
    assert {p.attributes[0].value.string_value for p in shim.gauge.data_points} == {"sda", "sdb"}
    # The agent's otlp exporter logs the partial_success the sidecar answered, once per export.
    assert wait_until(lambda: chain.agent.output().count("Partial success response") == exports, timeout=15), (
        chain.diagnosis()
    )
    logged = next(line for line in chain.agent.output().splitlines() if "Partial success response" in line)
    assert '"dropped_data_points": 1' in logged
    assert "forbidden-attribute on http_server_duration_seconds" in logged


def test_spans_and_log_records_from_the_sdk_reach_the_gateway_with_their_attributes_renamed(
    chain: Chain, tmp_path: Path
) -> None:
    resource = Resource.create(GOOD_RESOURCE)
    tracers = TracerProvider(resource=resource)
    tracers.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=chain.agent.endpoint, insecure=True)))
    loggers = LoggerProvider(resource=resource)
    loggers.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=chain.agent.endpoint, insecure=True))
    )
    try:
        # Legacy keys with string values, on a span, its event and a log record.
        with tracers.get_tracer("checkout").start_as_current_span(
            "GET /cart", attributes={"status_code": "404", "http.method": "GET"}
        ) as span:
            span.add_event("retry", {"http_status": "503"})
        loggers.get_logger("checkout").emit(
            LogRecord(body="timeout", attributes={"http_status": "503"}, severity_number=SeverityNumber.ERROR)
        )
        for signal in (Signal.TRACES, Signal.LOGS):
            _arrived(chain, signal, 1)
    finally:
        tracers.shutdown()
        loggers.shutdown()
    for signal in (Signal.TRACES, Signal.LOGS):
        forwarded = [as_collector_compares(each) for each in _requests(chain.received, signal)]
        assert forwarded == _normalized(chain.sent, signal, tmp_path)
    spans = _requests(chain.received, Signal.TRACES)[0].resource_spans[0].scope_spans[0].spans
    assert point_attrs(spans[0]) == {"http.status_code": 404, "http.method": "GET"}
    assert point_attrs(spans[0].events[0]) == {"http.status_code": 503}
    logs = _requests(chain.received, Signal.LOGS)[0].resource_logs[0].scope_logs[0].log_records
    assert point_attrs(logs[0]) == {"http.status_code": 503}


def _numbered(first: int, count: int) -> bytes:
    """A request of ``count`` points, numbered from ``first`` by their ``seq`` attribute."""
    points = [({"seq": str(seq)}, 1.0) for seq in range(first, first + count)]
    return metrics_request(gauge("load_points", points), resource=GOOD_RESOURCE).SerializeToString()


def _numbers(*files: Path) -> list[int]:
    """The ``seq`` of every load point in the Collector files, sorted, repeats kept."""
    return sorted(
        int(point_attrs(point)["seq"])
        for path in files
        for request in _requests(path)
        for metric in all_metrics(request)
        if metric.name == "load_points"
        for point in metric.gauge.data_points
    )


@pytest.mark.parametrize(
    ("agent_exporter", "refusal"),
    [("otlp_grpc", "code = Unavailable"), ("otlp_http", "responded with HTTP Status Code 503")],
)
def test_a_full_sending_queue_makes_the_agent_retry_and_nothing_is_lost(
    otelcol: str, tmp_path: Path, agent_exporter: str, refusal: str
) -> None:
    """The sidecar answers UNAVAILABLE with RetryInfo (gRPC) or 503 with Retry-After (HTTP) while its
    queue is full; the Collector's otlp exporter retries, and every point reaches the gateway once."""
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "contract": {"path": str(_CONTRACT)},
                # Room for two requests, retried every second while the gateway is down.
                "exporter": {
                    "sending_queue": {"queue_size": 2, "num_consumers": 1},
                    "retry_on_failure": {"initial_interval": "1s", "max_interval": "1s"},
                },
            }
        ),
        "utf-8",
    )
    requests, size = 12, 10
    with _chain(otelcol, tmp_path, "--config", str(config), gateway_up=False, agent_exporter=agent_exporter) as chain:
        client = RawClient(chain.agent.endpoint)
        for index in range(requests):
            client.export(Signal.METRICS, _numbered(index * size, size))
        client.close()
        refused = "the sidecar's sending queue is full; retry"
        assert wait_until(lambda: refused in chain.agent.output(), timeout=30), chain.diagnosis()
        retrying = next(line for line in chain.agent.output().splitlines() if refused in line)
        assert "Exporting failed. Will retry the request after interval." in retrying
        assert refusal in retrying
        chain.gateway.start()
        expected = list(range(requests * size))
        assert wait_until(lambda: _numbers(chain.received) == expected, timeout=90), (
            f"{len(_numbers(chain.received))} of {len(expected)} points\n{chain.diagnosis()}"
        )


class _Load:
    """Numbered requests sent to ``endpoint`` at ``rate`` per second on a monotonic schedule, in a thread,
    until stopped, an error, or ``limit`` requests."""

    def __init__(self, endpoint: str, rate: float, size: int, limit: int = 10_000) -> None:
        self.endpoint, self.rate, self.size, self.limit = endpoint, rate, size, limit
        self.points = 0  # acknowledged by the agent
        self.error: grpc.RpcError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def start(self) -> _Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        client = RawClient(self.endpoint)
        due = time.monotonic()
        try:
            for _ in range(self.limit):
                if self._stop.is_set():
                    return
                client.export(Signal.METRICS, _numbered(self.points, self.size))
                self.points += self.size
                due += 1 / self.rate
                self._stop.wait(max(0.0, due - time.monotonic()))
        except grpc.RpcError as error:
            self.error = error
        finally:
            client.close()


def test_a_gateway_stopped_for_a_minute_under_load_loses_nothing(otelcol: str, tmp_path: Path) -> None:
    """A steady stream through agent and sidecar; the gateway stops for 60 s, then a new one takes its
    port. The sidecar's queue holds and retries: every point arrives, once."""
    outage, rate, size = 60.0, 10, 10  # seconds; requests/s of `size` points
    with _chain(otelcol, tmp_path) as chain:
        returned, received_after = _gateway(otelcol, tmp_path, "gateway-returned", port=chain.gateway.port)
        received = (chain.received, received_after)
        load = _Load(chain.agent.endpoint, rate, size).start()
        try:
            assert wait_until(lambda: len(_numbers(chain.received)) >= 5 * size, timeout=30), chain.diagnosis()
            chain.gateway.stop()
            back = time.monotonic() + outage
            assert wait_until(lambda: "retrying in" in chain.sidecar.output(), timeout=30), chain.diagnosis()
            # The outage is waited out, not slept through: the load runs on and must not fail.
            assert not wait_until(lambda: load.error is not None, timeout=back - time.monotonic(), interval=0.5), (
                load.error
            )
            returned.start()
            assert wait_until(lambda: bool(_numbers(received_after)), timeout=90), chain.diagnosis()
        finally:
            load.stop()
        try:
            assert load.error is None, load.error
            expected = list(range(load.points))
            assert wait_until(lambda: _numbers(*received) == expected, timeout=120), (
                f"{len(_numbers(*received))} of {len(expected)} points\n{chain.diagnosis()}\n--- returned\n"
                f"{returned.output()}"
            )
        finally:
            returned.stop()
