"""The sidecar as a real process: outages, SIGKILL with the persistent queue, SIGTERM drain, SIGHUP, workers.

Accounting is exact: every data point the sidecar answered OK for arrives exactly once, and everything
else was refused to the client with a retryable status and sent again by it.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract.otlp import Signal
from otel_contract.server._batch import Batch
from otel_contract.server.queue import QueueSettings, SqliteQueue
from tests.conftest import run_cli
from tests.otlp_builders import counter, metrics_request
from tests.otlp_sink import OtlpSink
from tests.sidecar_harness import RawClient, SidecarProcess, free_port, health_json, shop_contract, wait_until

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}


def _request(batch: int, size: int = 10) -> bytes:
    points = [({"seq": f"{batch}-{i}"}, 1.0) for i in range(size)]
    return metrics_request(
        counter("orders_total", points, unit="{order}"), resource={"service.name": "shop"}
    ).SerializeToString()


def _arrived(sink: OtlpSink) -> Counter[str]:
    seen: Counter[str] = Counter()
    for received in sink.requests:
        request = ExportMetricsServiceRequest.FromString(received.payload)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.sum.data_points:
                        seen.update(kv.value.string_value for kv in point.attributes if kv.key == "seq")
    return seen


def _send_with_client_retries(
    client: RawClient, payload: bytes, on_refused: Callable[[int], None] = lambda refusals: None, attempts: int = 400
) -> int:
    """Like an OTLP exporter: retry retryable statuses (bounded); the number of refusals seen."""
    for refusals in range(attempts):
        try:
            client.export(Signal.METRICS, payload, timeout=10)
            return refusals
        except grpc.RpcError as error:
            if error.code() not in _RETRYABLE:
                raise
            on_refused(refusals + 1)
            time.sleep(0.05)  # the client's backoff before its retry, as an OTLP exporter does
    raise AssertionError(f"still refused after {attempts} attempts")


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    return shop_contract(tmp_path / "shop.yaml")


@pytest.fixture
def sink_port() -> int:
    return free_port()


@pytest.fixture
def processes() -> Iterator[list[SidecarProcess]]:
    started: list[SidecarProcess] = []
    yield started
    for process in started:
        process.kill()
        print(f"--- sidecar on {process.endpoint} ---\n{process.output()}")  # shown by pytest on failure


def _worker_of(telemetry: str) -> int | None:
    try:
        worker: int = health_json(telemetry)["worker"]
        return worker
    except OSError:  # not listening yet
        return None


def _sidecar(processes: list[SidecarProcess], *args: str) -> SidecarProcess:
    process = SidecarProcess(*args)
    processes.append(process)
    return process.start()


def test_downstream_outage_loses_nothing_and_duplicates_nothing(
    contract: Path, sink_port: int, processes: list[SidecarProcess], tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"contract: {{path: {contract}}}\n"
        f"exporter:\n  endpoint: 127.0.0.1:{sink_port}\n"
        "  retry_on_failure: {initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 120s}\n"
        "  sending_queue: {queue_size: 20, num_consumers: 2}\n",
        "utf-8",
    )
    sink = OtlpSink(sink_port).start()
    sidecar = _sidecar(processes, "--config", str(pipeline))
    client = RawClient(sidecar.endpoint)
    refusals = 0

    def outage_over(refused: int) -> None:
        if refused == 5 and not sink.running:
            sink.start()  # the downstream comes back on the same port once the queue has filled up

    try:
        for batch in range(60):
            if batch == 15:
                sink.stop(grace=1)  # the downstream goes away mid-stream
            refusals += _send_with_client_retries(client, _request(batch), outage_over)
        assert sink.wait_for(lambda: sum(_arrived(sink).values()) >= 600, timeout=60)
    finally:
        client.close()
        sidecar.stop()
        sink.stop()
    arrived = _arrived(sink)
    assert set(arrived) == {f"{b}-{i}" for b in range(60) for i in range(10)}
    assert max(arrived.values()) == 1  # exactly once
    assert refusals > 0  # the queue (20 requests) filled during the outage and clients were told to retry


def test_sigkill_with_the_persistent_queue_loses_nothing(
    contract: Path, sink_port: int, processes: list[SidecarProcess], tmp_path: Path
) -> None:
    queue_dir = tmp_path / "queue"
    args = ["--contract", str(contract), "--exporter-endpoint", f"127.0.0.1:{sink_port}", "--queue-dir", str(queue_dir)]
    first = _sidecar(processes, *args)
    client = RawClient(first.endpoint)
    for batch in range(25):  # the downstream is down: every request is answered OK once on disk
        client.export(Signal.METRICS, _request(batch), timeout=10)
    client.close()
    first.signal(signal.SIGKILL)
    first.wait()

    sink = OtlpSink(sink_port).start()
    try:
        second = _sidecar(processes, *args)
        assert sink.wait_for(lambda: sum(_arrived(sink).values()) >= 250, timeout=60), second.output()
        second.stop()
        assert second.wait() == 0
    finally:
        sink.stop()
    arrived = _arrived(sink)
    assert len(arrived) == 250 and max(arrived.values()) == 1
    assert "from a previous run" in second.output()


def _old_shared_queue(directory: Path, batches: int) -> None:
    """The file the sidecar queued in before each exporter had its own queue: ``<directory>/queue.sqlite3``,
    same format (the queue class is unchanged), at the old path."""
    queue = SqliteQueue(QueueSettings(directory=str(directory)))
    for batch in range(batches):
        assert queue.offer(Batch(Signal.METRICS, _request(batch), 10))
    queue.shutdown()


def test_an_old_shared_queue_is_moved_into_every_exporters_queue(
    contract: Path, sink_port: int, processes: list[SidecarProcess], tmp_path: Path
) -> None:
    queue_dir, export_file = tmp_path / "queue", tmp_path / "out.jsonl"
    _old_shared_queue(queue_dir, 5)
    sink = OtlpSink(sink_port).start()
    try:
        args = ["--contract", str(contract), "--exporter-endpoint", sink.endpoint, "--export-file", str(export_file)]
        sidecar = _sidecar(processes, *args, "--queue-dir", str(queue_dir))
        assert sink.wait_for(lambda: sum(_arrived(sink).values()) >= 50, timeout=60), sidecar.output()
        assert wait_until(lambda: export_file.exists() and export_file.read_text("utf-8").count('"seq"') >= 50)
        sidecar.stop()
        assert sidecar.wait() == 0
    finally:
        sink.stop()
    arrived = _arrived(sink)
    assert set(arrived) == {f"{b}-{i}" for b in range(5) for i in range(10)} and max(arrived.values()) == 1
    assert export_file.read_text("utf-8").count('"seq"') == 50  # the sender may join them into fewer lines
    assert not (queue_dir / "queue.sqlite3").exists()
    assert "moved 5 request(s) from" in sidecar.output() and "otlp, file exporter(s)" in sidecar.output()


def test_an_old_shared_queue_too_big_for_the_new_queues_refuses_to_start(tmp_path: Path, contract: Path) -> None:
    queue_dir, pipeline = tmp_path / "queue", tmp_path / "pipeline.yaml"
    _old_shared_queue(queue_dir, 3)
    pipeline.write_text(
        f"contract: {{path: {contract}}}\n"
        "exporter:\n  console: true\n"
        f"  sending_queue: {{queue_size: 2, storage: {{directory: {queue_dir}}}}}\n",
        "utf-8",
    )
    port = free_port()
    result = run_cli(
        "serve",
        "--config",
        str(pipeline),
        "--endpoint",
        f"127.0.0.1:{port}",
        "--http-endpoint",
        "off",
        "--prometheus",
        "off",
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()  # the one line, nothing logged before it
    assert str(queue_dir / "queue.sqlite3") in line and "holds 3 undelivered request(s)" in line
    assert "exporter.sending_queue.queue_size" in line
    assert (queue_dir / "queue.sqlite3").exists()  # nothing taken out of it
    assert SqliteQueue(QueueSettings(directory=str(queue_dir))).size() == 3


def test_sigterm_drains_the_queue_and_exits_0(
    contract: Path, sink_port: int, processes: list[SidecarProcess], tmp_path: Path
) -> None:
    sink = OtlpSink(sink_port)
    sidecar = _sidecar(processes, "--contract", str(contract), "--exporter-endpoint", f"127.0.0.1:{sink_port}")
    client = RawClient(sidecar.endpoint)
    for batch in range(10):  # queued while the downstream is not up yet
        client.export(Signal.METRICS, _request(batch), timeout=10)
    client.close()
    sink.start()
    try:
        sidecar.signal(signal.SIGTERM)
        assert sidecar.wait(timeout=60) == 0
        assert sum(_arrived(sink).values()) == 100
    finally:
        sink.stop()
    assert "SIGTERM received" in sidecar.output()
    assert "0 request(s) left undelivered" in sidecar.output()


@pytest.mark.parametrize("persistent", [False, True])
def test_sigterm_with_the_downstream_down_says_what_it_drains_and_what_is_lost(
    contract: Path, sink_port: int, processes: list[SidecarProcess], tmp_path: Path, persistent: bool
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"contract: {{path: {contract}}}\n"
        f"exporter: {{endpoint: 127.0.0.1:{sink_port}}}\n"  # nothing listens there
        "shutdown: {drain_timeout: 1s}\n",
        "utf-8",
    )
    queue = ("--queue-dir", str(tmp_path / "queue")) if persistent else ()
    sidecar = _sidecar(processes, "--config", str(pipeline), *queue)
    client = RawClient(sidecar.endpoint)
    for batch in range(3):
        client.export(Signal.METRICS, _request(batch), timeout=10)  # OK: queued
    client.close()
    sidecar.signal(signal.SIGTERM)
    exit_code = sidecar.wait(timeout=60)
    output = sidecar.output()
    assert f"draining: 3 request(s) (30 item(s)) queued for otlp://127.0.0.1:{sink_port}" in output
    if persistent:  # kept on disk for the next start: nothing lost
        assert exit_code == 0
        assert "with 3 request(s) (30 item(s)) undelivered" in output and str(tmp_path / "queue") in output
        assert " ERROR " not in output
    else:
        assert exit_code == 3
        (error,) = [line for line in output.splitlines() if " ERROR " in line]
        assert "lost 3 request(s) holding 30 item(s)" in error
        assert "exporter.sending_queue.storage.directory" in error and "--queue-dir" in error


def test_sighup_reloads_the_contract(
    contract: Path, sink_port: int, processes: list[SidecarProcess], tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"contract: {{path: {contract}, reload: false}}\nexporter: {{endpoint: '127.0.0.1:{sink_port}'}}\n", "utf-8"
    )
    sidecar = _sidecar(processes, "--config", str(pipeline))
    shop_contract(contract, version="1.2.0")
    assert health_json(sidecar.telemetry)["contract"] == "shop@1.0.0"  # not watched: no change yet
    sidecar.signal(signal.SIGHUP)
    assert wait_until(lambda: health_json(sidecar.telemetry)["contract"] == "shop@1.2.0")
    assert "contract reloaded: shop@1.2.0 (was shop@1.0.0)" in sidecar.output()


def test_workers_share_the_port_and_every_worker_serves(
    contract: Path, sink_port: int, processes: list[SidecarProcess]
) -> None:
    sink = OtlpSink(sink_port).start()
    sidecar = SidecarProcess("--contract", str(contract), "--exporter-endpoint", sink.endpoint, "--workers", "2")
    processes.append(sidecar)
    sidecar.start()
    try:
        second_worker = f"127.0.0.1:{sidecar.telemetry_port + 1}"
        assert wait_until(lambda: _worker_of(second_worker) == 1)
        for batch in range(20):  # a new connection each time, so the kernel spreads them
            client = RawClient(sidecar.endpoint)
            client.export(Signal.METRICS, _request(batch), timeout=10)
            client.close()
        assert sink.wait_for(lambda: sum(_arrived(sink).values()) == 200, timeout=30)
        sidecar.signal(signal.SIGTERM)
        assert sidecar.wait(timeout=60) == 0
    finally:
        sink.stop()
    assert "started 2 workers" in sidecar.output()
