"""The exporter side of the sidecar: sending queues, exporters and the queued sender, against real gRPC servers."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from otel_contract.inputs.otlp import read_captures
from otel_contract.otlp import Signal
from otel_contract.server._batch import Batch
from otel_contract.server.exporters import (
    ConsoleExporter,
    Exporter,
    ExportError,
    FileExporter,
    OtlpGrpcExporter,
    OtlpGrpcSettings,
    TlsSettings,
)
from otel_contract.server.fanout import ExporterQueue, ExporterQueues, open_exporter_queue
from otel_contract.server.queue import QUEUE_FILE, MemoryQueue, QueueSettings, SendingQueue, SqliteQueue, open_queue
from otel_contract.server.sender import NullObserver, QueuedSender, RetrySettings, _Backoff

from .conftest import REPO
from .otlp_builders import gauge, logs_request, metrics_request, traces_request
from .otlp_sink import Answer, OtlpSink, ServerTls, count_items, otlp_sink_fixture  # noqa: F401 (fixture)
from .tls_certs import Certs, certs_fixture  # noqa: F401 (fixture)

FAST_RETRY = RetrySettings(initial_interval=0.01, max_interval=0.05, max_elapsed_time=60.0)
WAIT = 10.0  # the bound on every wait for a condition; reached only when a test fails


# --- builders ------------------------------------------------------------------------------------


def metrics_batch(name: str, points: int = 1) -> Batch:
    request = metrics_request(gauge(name, [({"i": i}, float(i)) for i in range(points)]))
    return Batch(Signal.METRICS, request.SerializeToString(), points)


def traces_batch(name: str) -> Batch:
    span = {"traceId": "0" * 31 + "1", "spanId": "0" * 15 + "1", "name": name}
    return Batch(Signal.TRACES, traces_request([span]).SerializeToString(), 1)


def logs_batch(body: str) -> Batch:
    return Batch(Signal.LOGS, logs_request([{"body": {"stringValue": body}}]).SerializeToString(), 1)


def metric_names(payload: bytes) -> list[str]:
    request = metrics_request()
    request.Clear()
    request.ParseFromString(payload)
    return [m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


def received_names(sink: OtlpSink) -> Counter[str]:
    return Counter(name for r in sink.requests if r.signal is Signal.METRICS for name in metric_names(r.payload))


class RecordingObserver:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[tuple[Signal, int, str]] = []
        self.rejected: list[tuple[Signal, int]] = []

    def exported(self, signal: Signal, items: int, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        with self._cond:
            self.events.append((signal, items, outcome))
            self._cond.notify_all()

    def downstream_rejected(self, signal: Signal, items: int) -> None:
        with self._cond:
            self.rejected.append((signal, items))
            self._cond.notify_all()

    def count(self, outcome: str) -> int:
        with self._cond:
            return sum(1 for event in self.events if event[2] == outcome)

    def wait_for(self, predicate: Callable[[], bool]) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, WAIT)


# --- queues --------------------------------------------------------------------------------------

QueueFactory = Callable[..., SendingQueue]


@pytest.fixture(params=["memory", "sqlite"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueFactory]:
    """Opens queues of the parametrized kind; ``max_bytes`` bounds memory or disk alike."""
    opened: list[SendingQueue] = []

    def make(queue_size: int = 1000, max_bytes: int = 2**20) -> SendingQueue:
        if request.param == "memory":
            settings = QueueSettings(queue_size=queue_size, queue_size_bytes=max_bytes)
        else:
            settings = QueueSettings(queue_size=queue_size, directory=str(tmp_path / "q"), max_disk_bytes=max_bytes)
        queue = open_queue(settings)
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.shutdown()


def test_queue_is_fifo_and_counts_what_it_holds(make_queue: QueueFactory) -> None:
    queue = make_queue()
    batches = [metrics_batch(f"m{i}", points=i + 1) for i in range(3)]
    for batch in batches:
        assert queue.offer(batch)
    assert (queue.size(), queue.bytes(), queue.pending_items()) == (3, sum(b.size for b in batches), 6)

    lease = queue.take(1, 2**20, 0.0)
    assert lease is not None and lease.batches == (batches[0],)
    assert queue.size() == 3, "a leased request still counts until it is acked"
    queue.ack(lease)
    assert (queue.size(), queue.pending_items()) == (2, 5)
    rest = queue.take(10, 2**20, 0.0)
    assert rest is not None and rest.batches == tuple(batches[1:])
    assert rest.payload == batches[1].payload + batches[2].payload
    queue.ack(rest)
    assert (queue.size(), queue.bytes(), queue.pending_items()) == (0, 0, 0)
    assert queue.take(10, 2**20, 0.0) is None


def test_queue_refuses_when_full_by_count(make_queue: QueueFactory) -> None:
    queue = make_queue(queue_size=2)
    assert queue.offer(metrics_batch("a")) and queue.offer(metrics_batch("b"))
    assert queue.capacity == 2
    assert not queue.accepting()
    assert not queue.offer(metrics_batch("c"))
    lease = queue.take(1, 2**20, 0.0)
    assert lease is not None
    assert not queue.offer(metrics_batch("c")), "a leased request still takes its place"
    queue.ack(lease)
    assert queue.accepting() and queue.offer(metrics_batch("c"))


def test_queue_refuses_when_full_by_bytes(make_queue: QueueFactory) -> None:
    batch = metrics_batch("m")
    queue = make_queue(max_bytes=batch.size * 2 + batch.size // 2)
    assert queue.offer(batch) and queue.offer(batch)
    assert not queue.offer(batch)
    assert queue.size() == 2


def test_an_empty_queue_takes_one_request_larger_than_its_byte_bound(make_queue: QueueFactory) -> None:
    big = metrics_batch("big", points=50)
    queue = make_queue(max_bytes=big.size // 2)
    assert queue.offer(big), "else such a request would be refused forever"
    assert not queue.offer(metrics_batch("small"))


def test_a_lease_holds_only_consecutive_requests_of_the_head_signal(make_queue: QueueFactory) -> None:
    queue = make_queue()
    order = [metrics_batch("m1"), metrics_batch("m2"), traces_batch("t1"), logs_batch("l1"), metrics_batch("m3")]
    for batch in order:
        queue.offer(batch)
    taken = []
    for _ in range(len(order)):
        lease = queue.take(10, 2**20, 0.0)
        if lease is None:
            break
        taken.append(lease.batches)
        queue.ack(lease)
    assert taken == [tuple(order[:2]), (order[2],), (order[3],), (order[4],)]


def test_a_lease_respects_batch_count_bytes_and_items(make_queue: QueueFactory) -> None:
    queue = make_queue()
    batches = [metrics_batch(f"m{i}", points=2) for i in range(6)]
    for batch in batches:
        queue.offer(batch)
    by_count = queue.take(2, 2**20, 0.0)
    by_bytes = queue.take(10, batches[0].size * 2 + 1, 0.0)
    by_items = queue.take(10, 2**20, 0.0, max_items=3)
    oversized = queue.take(10, 1, 0.0, max_items=1)
    assert by_count is not None and by_count.batches == tuple(batches[0:2])
    assert by_bytes is not None and by_bytes.batches == tuple(batches[2:4])
    assert by_items is not None and by_items.batches == (batches[4],)
    assert oversized is not None and oversized.batches == (batches[5],), "a lease holds at least one request"


def test_released_requests_go_back_to_the_head_in_arrival_order(make_queue: QueueFactory) -> None:
    queue = make_queue()
    batches = [metrics_batch(f"m{i}") for i in range(5)]
    for batch in batches:
        queue.offer(batch)
    first = queue.take(2, 2**20, 0.0)
    second = queue.take(2, 2**20, 0.0)
    assert first is not None and second is not None
    queue.release(second)  # out of order: the newer lease comes back first
    queue.release(first)
    everything = queue.take(10, 2**20, 0.0)
    assert everything is not None and everything.batches == tuple(batches)
    queue.ack(everything)
    with pytest.raises(ValueError, match="already acked or released"):
        queue.ack(everything)


def test_take_waits_for_an_offer(make_queue: QueueFactory) -> None:
    queue = make_queue()
    got: list[object] = []
    taker = threading.Thread(target=lambda: got.append(queue.take(10, 2**20, WAIT)))
    taker.start()
    queue.offer(metrics_batch("late"))
    taker.join(WAIT)
    assert not taker.is_alive()
    assert len(got) == 1 and got[0] is not None


def test_a_closed_queue_refuses_offers_and_still_drains(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.offer(metrics_batch("m"))
    queue.close()
    assert not queue.accepting()
    assert not queue.offer(metrics_batch("n"))
    lease = queue.take(10, 2**20, WAIT)
    assert lease is not None
    queue.ack(lease)
    # Closed and empty: returns at once rather than after WAIT seconds.
    assert queue.take(10, 2**20, WAIT) is None


def test_concurrent_offers_are_all_counted(make_queue: QueueFactory) -> None:
    queue = make_queue()
    batch = metrics_batch("m")

    def offer_many() -> None:
        for _ in range(25):
            assert queue.offer(batch)

    threads = [threading.Thread(target=offer_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert queue.size() == 200 and queue.pending_items() == 200


def test_sqlite_queue_keeps_unacked_requests_across_reopen(tmp_path: Path) -> None:
    settings = QueueSettings(directory=str(tmp_path))
    batches = [metrics_batch("a"), metrics_batch("b"), traces_batch("c"), metrics_batch("d")]
    first = SqliteQueue(settings)
    for batch in batches:
        first.offer(batch)
    delivered = first.take(1, 2**20, 0.0)
    assert delivered is not None
    first.ack(delivered)
    leased = first.take(1, 2**20, 0.0)  # taken, never acked: the process "dies" with it
    assert leased is not None and leased.batches == (batches[1],)
    first.shutdown()

    second = SqliteQueue(settings)
    assert (second.size(), second.pending_items(), second.bytes()) == (3, 3, sum(b.size for b in batches[1:]))
    taken: list[Batch] = []
    while (lease := second.take(10, 2**20, 0.0)) is not None and len(taken) < 3:
        taken.extend(lease.batches)
        second.ack(lease)
    assert taken == batches[1:]
    second.shutdown()
    assert SqliteQueue(settings).size() == 0


def test_sqlite_offer_is_committed_before_it_returns(tmp_path: Path) -> None:
    queue = SqliteQueue(QueueSettings(directory=str(tmp_path)))
    assert queue.path == str(tmp_path / QUEUE_FILE)
    assert queue.offer(metrics_batch("m"))
    # Another connection sees the row while the queue is still open: it is in the database, not a buffer.
    with sqlite3.connect(tmp_path / QUEUE_FILE) as other:
        assert other.execute("SELECT count(*) FROM queue").fetchone() == (1,)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    queue.shutdown()


def test_sqlite_queue_survives_sigkill(tmp_path: Path, otlp_sink: OtlpSink) -> None:
    """A process that queued requests (one of them leased) and is killed: a fresh sender delivers all of them."""
    script = f"""
import os, signal
from otel_contract.server.queue import QueueSettings, SqliteQueue
from tests.test_exporter import metrics_batch
queue = SqliteQueue(QueueSettings(directory={str(tmp_path)!r}))
for i in range(5):
    assert queue.offer(metrics_batch(f"m{{i}}"))
assert queue.take(2, 2**20, 0.0) is not None
print("queued", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    child = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert child.stdout == "queued\n", child.stderr
    assert child.returncode == -9

    queue = SqliteQueue(QueueSettings(directory=str(tmp_path)))
    assert queue.size() == 5
    exporter = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=otlp_sink.endpoint))
    sender = QueuedSender(queue, exporter, FAST_RETRY, consumers=2)
    sender.start()
    assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) >= 5, WAIT)
    assert sender.drain(WAIT) == 0
    exporter.close()
    queue.shutdown()
    assert received_names(otlp_sink) == {f"m{i}": 1 for i in range(5)}
    assert SqliteQueue(QueueSettings(directory=str(tmp_path))).size() == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"queue_size": 0}, "queue_size: must be a positive integer, got 0"),
        ({"num_consumers": -1}, "num_consumers: must be a positive integer"),
        ({"max_disk_bytes": True}, "max_disk_bytes: must be a positive integer"),
        ({"directory": " "}, "directory: must be a non-empty path"),
    ],
)
def test_queue_settings_name_the_bad_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QueueSettings(**settings)  # type: ignore[arg-type]


def test_open_queue_picks_by_directory(tmp_path: Path) -> None:
    assert isinstance(open_queue(QueueSettings()), MemoryQueue)
    persistent = open_queue(QueueSettings(directory=str(tmp_path / "new" / "dir")))
    assert isinstance(persistent, SqliteQueue) and (tmp_path / "new" / "dir" / QUEUE_FILE).exists()
    persistent.shutdown()


def test_a_file_that_is_not_a_queue_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / QUEUE_FILE).write_bytes(b"not a database" * 100)
    with pytest.raises(OSError, match=r"queue\.sqlite3: cannot open the sending queue"):
        SqliteQueue(QueueSettings(directory=str(tmp_path)))


# --- OTLP/gRPC exporter --------------------------------------------------------------------------


def grpc_exporter(sink: OtlpSink, **settings: object) -> OtlpGrpcExporter:
    return OtlpGrpcExporter(OtlpGrpcSettings(endpoint=sink.endpoint, **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_bytes_and_headers_arrive_as_sent(otlp_sink: OtlpSink, compression: str) -> None:
    exporter = grpc_exporter(
        otlp_sink, headers={"X-Tenant": "shop", "authorization": "Bearer t"}, compression=compression
    )
    batches = [metrics_batch("m", points=3), traces_batch("t"), logs_batch("l")]
    for batch in batches:
        assert exporter.export(batch).rejected == 0
    exporter.close()
    assert [(r.signal, r.payload) for r in otlp_sink.requests] == [(b.signal, b.payload) for b in batches]
    for received in otlp_sink.requests:
        assert received.metadata["x-tenant"] == "shop"
        assert received.metadata["authorization"] == "Bearer t"


def test_gzip_really_compresses() -> None:
    # This sink refuses compressed requests, so only the uncompressed exporter gets through.
    with OtlpSink(accept_gzip=False) as sink:
        plain = grpc_exporter(sink, compression="none")
        plain.export(metrics_batch("m"))
        gzip = grpc_exporter(sink, compression="gzip")
        with pytest.raises(ExportError) as refused:
            gzip.export(metrics_batch("m"))
        plain.close()
        gzip.close()
    assert refused.value.code == "UNIMPLEMENTED" and "gzip" in refused.value.reason


def test_the_default_sends_uncompressed() -> None:
    # As the OpenTelemetry SDKs do: gzip costs the sidecar CPU on every request (exporter.compression).
    with OtlpSink(accept_gzip=False) as sink:
        exporter = grpc_exporter(sink)
        assert exporter.export(metrics_batch("m")).rejected == 0
        exporter.close()
    assert len(sink.requests) == 1


@pytest.mark.parametrize("batch", [metrics_batch("m", points=5), traces_batch("t"), logs_batch("l")])
def test_partial_success_is_read_for_every_signal(otlp_sink: OtlpSink, batch: Batch) -> None:
    otlp_sink.answer_next(1, Answer(rejected=2))
    exporter = grpc_exporter(otlp_sink)
    result = exporter.export(batch)
    exporter.close()
    assert (result.rejected, result.message) == (2, "sink rejected 2")


@pytest.mark.parametrize(
    ("code", "retry_after", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, None, True),
        (grpc.StatusCode.UNAVAILABLE, 7.5, True),
        (grpc.StatusCode.CANCELLED, None, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, None, True),
        (grpc.StatusCode.ABORTED, None, True),
        (grpc.StatusCode.OUT_OF_RANGE, None, True),
        (grpc.StatusCode.DATA_LOSS, None, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 2.0, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, False),
        (grpc.StatusCode.INVALID_ARGUMENT, None, False),
        (grpc.StatusCode.PERMISSION_DENIED, None, False),
        (grpc.StatusCode.UNAUTHENTICATED, None, False),
        (grpc.StatusCode.UNIMPLEMENTED, None, False),
        (grpc.StatusCode.INTERNAL, None, False),
    ],
)
def test_failures_map_to_retryable_as_the_otlp_spec_says(
    otlp_sink: OtlpSink, code: grpc.StatusCode, retry_after: float | None, retryable: bool
) -> None:
    otlp_sink.fail_next(1, code, retry_after=retry_after)
    exporter = grpc_exporter(otlp_sink)
    with pytest.raises(ExportError) as failed:
        exporter.export(metrics_batch("m"))
    exporter.close()
    error = failed.value
    assert (error.code, error.retryable, error.retry_after) == (code.name, retryable, retry_after)
    assert error.reason == f"sink says {code.name}"


def test_an_unreachable_downstream_is_retryable(otlp_sink: OtlpSink) -> None:
    otlp_sink.stop()
    exporter = grpc_exporter(otlp_sink, timeout=2.0)
    with pytest.raises(ExportError) as failed:
        exporter.export(metrics_batch("m"))
    exporter.close()
    assert failed.value.retryable and failed.value.code == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"endpoint": "collector"}, "endpoint: expected host:port"),
        ({"endpoint": "http://collector:4317/v1/metrics"}, "endpoint: expected host:port"),
        ({"compression": "zstd"}, "compression: must be one of gzip, none"),
        ({"timeout": 0}, "timeout: must be a positive number"),
        ({"headers": {"grpc-timeout": "1"}}, "headers.grpc-timeout: not a usable gRPC metadata key"),
        ({"headers": {"x-key": "caf\u00e9"}}, "headers.x-key: the value must be printable ASCII"),
        ({"tls": TlsSettings(server_name_override="x")}, "tls.insecure is true"),
    ],
)
def test_otlp_settings_name_the_bad_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OtlpGrpcSettings(**{"endpoint": "collector:4317", **settings})  # type: ignore[arg-type]


def test_otlp_settings_strip_the_scheme_and_lower_case_headers() -> None:
    plain = OtlpGrpcSettings(endpoint="http://collector:4317/", headers={"X-Api-Key": "k"})
    secure = OtlpGrpcSettings(endpoint="https://collector:4317")
    assert (plain.endpoint, plain.tls.insecure, dict(plain.headers)) == ("collector:4317", True, {"x-api-key": "k"})
    assert (secure.endpoint, secure.tls.insecure) == ("collector:4317", False)


def test_tls_settings_check_the_files(tmp_path: Path) -> None:
    existing = tmp_path / "cert.pem"
    existing.write_text("x")
    with pytest.raises(ValueError, match=r"tls\.cert_file: set without tls\.key_file"):
        TlsSettings(insecure=False, cert_file=str(existing))
    with pytest.raises(ValueError, match=r"tls\.ca_file: no such file"):
        TlsSettings(insecure=False, ca_file=str(tmp_path / "missing.pem"))


# --- TLS -----------------------------------------------------------------------------------------


def tls_sink(certs: Certs, *, mutual: bool = False) -> OtlpSink:
    tls = ServerTls(certs.read("server.crt"), certs.read("server.key"), certs.read("ca.crt") if mutual else None)
    return OtlpSink(tls=tls).start()


def test_tls_with_a_private_ca_and_a_server_name_override(certs: Certs) -> None:
    sink = tls_sink(certs)
    tls = TlsSettings(insecure=False, ca_file=certs.path("ca.crt"), server_name_override="sink.test")
    exporter = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=sink.endpoint, tls=tls))
    exporter.export(metrics_batch("m"))
    exporter.close()
    sink.stop()
    assert len(sink.requests) == 1


def test_an_https_endpoint_turns_tls_on(certs: Certs) -> None:
    sink = tls_sink(certs)
    tls = TlsSettings(ca_file=certs.path("ca.crt"), server_name_override="sink.test")  # insecure left at its default
    exporter = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=f"https://{sink.endpoint}", tls=tls))
    exporter.export(metrics_batch("m"))
    exporter.close()
    sink.stop()
    assert len(sink.requests) == 1


@pytest.mark.parametrize(
    "tls",
    [
        TlsSettings(),  # plain text to a TLS server
        "wrong name",  # the certificate is for sink.test, not 127.0.0.1
    ],
)
def test_tls_failures_are_retryable_unavailable(certs: Certs, tls: TlsSettings | str) -> None:
    settings = TlsSettings(insecure=False, ca_file=certs.path("ca.crt")) if tls == "wrong name" else tls
    assert isinstance(settings, TlsSettings)
    sink = tls_sink(certs)
    exporter = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=sink.endpoint, tls=settings, timeout=2.0))
    with pytest.raises(ExportError) as failed:
        exporter.export(metrics_batch("m"))
    exporter.close()
    sink.stop()
    assert failed.value.code == "UNAVAILABLE" and failed.value.retryable
    assert sink.requests == []


def test_mutual_tls_needs_the_client_certificate(certs: Certs) -> None:
    sink = tls_sink(certs, mutual=True)
    server_only = TlsSettings(insecure=False, ca_file=certs.path("ca.crt"), server_name_override="sink.test")
    mutual = TlsSettings(
        insecure=False,
        ca_file=certs.path("ca.crt"),
        cert_file=certs.path("client.crt"),
        key_file=certs.path("client.key"),
        server_name_override="sink.test",
    )
    without = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=sink.endpoint, tls=server_only, timeout=2.0))
    with pytest.raises(ExportError) as refused:
        without.export(metrics_batch("refused"))
    with_cert = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=sink.endpoint, tls=mutual))
    with_cert.export(metrics_batch("accepted"))
    without.close()
    with_cert.close()
    sink.stop()
    assert refused.value.retryable
    assert received_names(sink) == {"accepted": 1}


# --- local exporters -----------------------------------------------------------------------------


def test_the_file_exporter_writes_what_validate_reads(tmp_path: Path) -> None:
    path = tmp_path / "out" / "capture.jsonl"
    exporter = FileExporter(path)
    merged = metrics_batch("a", points=2).payload + metrics_batch("b").payload
    batches = [Batch(Signal.METRICS, merged, 3), traces_batch("t"), logs_batch("l")]
    for batch in batches:
        exporter.export(batch)
    exporter.close()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert [next(iter(json.loads(line))) for line in lines] == ["resourceMetrics", "resourceSpans", "resourceLogs"]
    captures = list(read_captures(path))
    assert [c.signal for c in captures] == [b.signal for b in batches]
    assert [c.request.SerializeToString() for c in captures] == [_reencoded(b) for b in batches]
    assert metric_names(captures[0].request.SerializeToString()) == ["a", "b"]


def _reencoded(batch: Batch) -> bytes:
    request: Message = {
        Signal.METRICS: metrics_request(),
        Signal.TRACES: traces_request([]),
        Signal.LOGS: logs_request([]),
    }[batch.signal]
    request.Clear()
    request.ParseFromString(batch.payload)
    return request.SerializeToString()


def test_the_file_exporter_appends(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    for name in ("first", "second"):
        exporter = FileExporter(path)
        exporter.export(metrics_batch(name))
        exporter.close()
    names = [name for capture in read_captures(path) for name in metric_names(capture.request.SerializeToString())]
    assert names == ["first", "second"]


def test_a_batch_that_does_not_parse_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as failed:
        FileExporter(tmp_path / "x.jsonl").export(Batch(Signal.METRICS, b"\xff\xff", 1))
    assert not failed.value.retryable


def test_the_console_exporter_prints_counts_or_json() -> None:
    basic, detailed = io.StringIO(), io.StringIO()
    for exporter in (ConsoleExporter(basic), ConsoleExporter(detailed, verbosity="detailed")):
        exporter.export(metrics_batch("m", points=120))
        exporter.export(traces_batch("t"))
        exporter.export(logs_batch("l"))
    assert basic.getvalue().splitlines() == [
        "metrics: 1 resource(s), 120 data point(s)",
        "traces: 1 resource(s), 1 span(s)",
        "logs: 1 resource(s), 1 log record(s)",
    ]
    text = detailed.getvalue()
    assert text.startswith("metrics: 1 resource(s), 120 data point(s)\n{\n")
    assert '"resourceSpans"' in text and '"resourceLogs"' in text


def test_a_request_goes_to_every_exporter_queue_or_to_none(tmp_path: Path) -> None:
    """Each exporter's queue persists in its own directory; one full queue refuses the request everywhere."""

    def exporter_queue(name: str, queue_size: int) -> ExporterQueue:
        settings = QueueSettings(queue_size=queue_size, directory=str(tmp_path / "q"))
        exporter = FileExporter(tmp_path / f"{name}.jsonl")
        return open_exporter_queue(name, name, exporter, settings, FAST_RETRY, NullObserver())

    queues = ExporterQueues([exporter_queue("otlp", 1), exporter_queue("file", 5)])
    admitted = [queues.offer(metrics_batch(f"m{index}")) for index in range(3)]
    sizes = {each.name: each.queue.size() for each in queues.exporters}
    paths = {each.name: each.queue.path for each in queues.exporters}
    queues.close()

    assert admitted == [True, False, False]
    assert sizes == {"otlp": 1, "file": 1}  # the refused requests are in neither queue
    assert paths == {name: str(tmp_path / "q" / name / QUEUE_FILE) for name in ("otlp", "file")}


# --- sender --------------------------------------------------------------------------------------


def start_sender(
    queue: SendingQueue,
    exporter: Exporter,
    retry: RetrySettings = FAST_RETRY,
    *,
    consumers: int = 2,
    max_batch_items: int = 8192,
) -> tuple[QueuedSender, RecordingObserver]:
    observer = RecordingObserver()
    sender = QueuedSender(
        queue, exporter, retry, consumers=consumers, observer=observer, max_batch_items=max_batch_items
    )
    sender.start()
    return sender, observer


def test_backoff_grows_caps_and_jitters() -> None:
    settings = RetrySettings(initial_interval=1.0, max_interval=5.0, multiplier=2.0, randomization_factor=0.5)
    draws = iter([0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.99])
    backoff = _Backoff(settings, lambda: next(draws))
    waits = [backoff.next() for _ in range(7)]
    assert waits[:5] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert waits[5] == 2.5 and 7.4 < waits[6] < 7.5


def test_batches_of_one_signal_are_sent_as_one_request(otlp_sink: OtlpSink) -> None:
    queue = MemoryQueue(QueueSettings())
    for batch in [metrics_batch("a", 2), metrics_batch("b", 2), metrics_batch("c", 2), traces_batch("t")]:
        queue.offer(batch)
    exporter = grpc_exporter(otlp_sink)
    sender, observer = start_sender(queue, exporter, consumers=1, max_batch_items=4)
    assert sender.drain(WAIT) == 0
    exporter.close()
    assert [(r.signal, count_items(r.signal, r.payload)) for r in otlp_sink.requests] == [
        (Signal.METRICS, 4),
        (Signal.METRICS, 2),
        (Signal.TRACES, 1),
    ]
    assert observer.events == [
        (Signal.METRICS, 4, "success"),
        (Signal.METRICS, 2, "success"),
        (Signal.TRACES, 1, "success"),
    ]


def test_an_outage_delivers_every_batch_exactly_once(otlp_sink: OtlpSink) -> None:
    otlp_sink.stop()
    queue = MemoryQueue(QueueSettings())
    for i in range(30):
        assert queue.offer(metrics_batch(f"m{i}"))
    exporter = grpc_exporter(otlp_sink, timeout=2.0)
    sender, observer = start_sender(queue, exporter, consumers=3, max_batch_items=4)
    assert observer.wait_for(lambda: observer.count("retried") >= 3)
    otlp_sink.start()  # the same port: the downstream is back
    assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) >= 30, WAIT)
    assert sender.drain(WAIT) == 0
    exporter.close()
    assert received_names(otlp_sink) == {f"m{i}": 1 for i in range(30)}
    assert observer.count("failed") == 0


def test_a_permanent_error_drops_the_batch_and_says_so(otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture) -> None:
    otlp_sink.fail_next(1, grpc.StatusCode.INVALID_ARGUMENT)
    queue = MemoryQueue(QueueSettings())
    queue.offer(metrics_batch("bad", points=3))
    exporter = grpc_exporter(otlp_sink)
    with caplog.at_level(logging.ERROR, logger="otel_contract.exporter"):
        sender, observer = start_sender(queue, exporter)
        assert observer.wait_for(lambda: observer.count("failed") == 1)
        assert sender.drain(WAIT) == 0
    exporter.close()
    assert observer.events == [(Signal.METRICS, 3, "failed")]
    assert otlp_sink.requests == [] and queue.size() == 0
    assert "dropped 3 metrics item(s): permanent error, INVALID_ARGUMENT: sink says INVALID_ARGUMENT" in caplog.text


def test_retries_stop_at_max_elapsed_time(otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture) -> None:
    otlp_sink.fail_next(10**6, grpc.StatusCode.UNAVAILABLE)
    queue = MemoryQueue(QueueSettings())
    queue.offer(metrics_batch("m"))
    exporter = grpc_exporter(otlp_sink)
    retry = RetrySettings(initial_interval=0.01, max_interval=0.02, max_elapsed_time=0.1)
    with caplog.at_level(logging.ERROR, logger="otel_contract.exporter"):
        sender, observer = start_sender(queue, exporter, retry)
        assert observer.wait_for(lambda: observer.count("failed") == 1)
        sender.stop()
    exporter.close()
    assert observer.count("retried") >= 1 and queue.size() == 0
    assert "retries exhausted" in caplog.text


def test_disabled_retry_drops_at_the_first_failure(otlp_sink: OtlpSink) -> None:
    otlp_sink.fail_next(1, grpc.StatusCode.UNAVAILABLE)
    queue = MemoryQueue(QueueSettings())
    queue.offer(metrics_batch("m"))
    exporter = grpc_exporter(otlp_sink)
    sender, observer = start_sender(queue, exporter, RetrySettings(enabled=False))
    assert observer.wait_for(lambda: observer.count("failed") == 1)
    sender.stop()
    exporter.close()
    assert observer.events == [(Signal.METRICS, 1, "failed")]


def test_retry_info_sets_the_least_wait(otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture) -> None:
    otlp_sink.fail_next(1, grpc.StatusCode.UNAVAILABLE, retry_after=0.25)
    queue = MemoryQueue(QueueSettings())
    queue.offer(metrics_batch("m"))
    exporter = grpc_exporter(otlp_sink)
    with caplog.at_level(logging.INFO, logger="otel_contract.exporter"):
        sender, observer = start_sender(queue, exporter)
        assert observer.wait_for(lambda: observer.count("success") == 1)
        sender.stop()
    exporter.close()
    assert [e[2] for e in observer.events] == ["retried", "success"]
    assert "UNAVAILABLE: sink says UNAVAILABLE); retrying in 0.25s" in caplog.text


def test_downstream_partial_success_reaches_the_observer(otlp_sink: OtlpSink) -> None:
    otlp_sink.answer_next(1, Answer(rejected=2))
    queue = MemoryQueue(QueueSettings())
    queue.offer(metrics_batch("m", points=5))
    exporter = grpc_exporter(otlp_sink)
    sender, observer = start_sender(queue, exporter)
    assert observer.wait_for(lambda: bool(observer.rejected))
    sender.stop()
    exporter.close()
    assert observer.rejected == [(Signal.METRICS, 2)]
    assert observer.events == [(Signal.METRICS, 5, "success")]


@pytest.mark.parametrize("persistent", [False, True])
def test_drain_returns_what_it_could_not_deliver(
    otlp_sink: OtlpSink, tmp_path: Path, caplog: pytest.LogCaptureFixture, persistent: bool
) -> None:
    otlp_sink.stop()
    queue = open_queue(QueueSettings(directory=str(tmp_path) if persistent else None))
    for i in range(5):
        queue.offer(metrics_batch(f"m{i}", points=2))
    exporter = grpc_exporter(otlp_sink, timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="otel_contract.exporter"):
        sender, observer = start_sender(queue, exporter, consumers=2, max_batch_items=2)
        assert observer.wait_for(lambda: observer.count("retried") >= 2)
        assert sender.drain(0.05) == 5
    exporter.close()
    assert not queue.offer(metrics_batch("late")), "drain closes the queue"
    if persistent:
        assert "5 request(s) (10 item(s)) undelivered" in caplog.text
        assert f"they stay in {tmp_path / QUEUE_FILE}" in caplog.text
    else:  # clients were told OK: a loss, and how to avoid the next one
        assert [record.levelname for record in caplog.records if "lost" in record.message] == ["ERROR"]
        assert "lost 5 request(s) holding 10 item(s)" in caplog.text and "--queue-dir" in caplog.text
    queue.shutdown()
    if persistent:
        assert SqliteQueue(QueueSettings(directory=str(tmp_path))).size() == 5


def test_stop_interrupts_a_long_backoff_and_requeues_the_batch(otlp_sink: OtlpSink) -> None:
    otlp_sink.stop()
    queue = MemoryQueue(QueueSettings())
    batch = metrics_batch("m")
    queue.offer(batch)
    exporter = grpc_exporter(otlp_sink, timeout=2.0)
    hour = RetrySettings(initial_interval=3600.0, max_interval=3600.0, max_elapsed_time=0)
    sender, observer = start_sender(queue, exporter, hour, consumers=1)
    assert observer.wait_for(lambda: observer.count("retried") == 1)
    stopper = threading.Thread(target=sender.stop)
    stopper.start()
    stopper.join(WAIT)
    exporter.close()
    assert not stopper.is_alive(), "stop() waited out the backoff"
    lease = queue.take(10, 2**20, 0.0)
    assert lease is not None and lease.batches == (batch,)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"initial_interval": 0}, "initial_interval: must be a positive number"),
        ({"max_interval": 1.0}, r"max_interval: must be at least initial_interval \(5.0\)"),
        ({"max_elapsed_time": -1}, "max_elapsed_time: must be 0"),
        ({"multiplier": 0.5}, "multiplier: must be at least 1"),
        ({"randomization_factor": 2}, "randomization_factor: must be between 0 and 1"),
    ],
)
def test_retry_settings_name_the_bad_field(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrySettings(**settings)  # type: ignore[arg-type]


def test_requests_queued_together_are_forwarded_in_one_call(otlp_sink: OtlpSink) -> None:
    queue = MemoryQueue(QueueSettings())
    for index in range(5):
        assert queue.offer(metrics_batch(f"m{index}", points=10))
    exporter = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=otlp_sink.endpoint))
    # A long flush timeout: the call goes out because max_batch_items have gathered, not because it passed.
    sender = QueuedSender(queue, exporter, FAST_RETRY, consumers=1, max_batch_items=50, flush_timeout=30.0)
    sender.start()
    assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 50, timeout=10)
    assert len(otlp_sink.requests) == 1
    assert queue.offer(metrics_batch("alone", points=1))
    sender.drain(10)  # a closed queue is not waited on for more
    exporter.close()
    assert otlp_sink.items(Signal.METRICS) == 51 and len(otlp_sink.requests) == 2


def test_a_lone_request_goes_out_after_the_flush_timeout(otlp_sink: OtlpSink) -> None:
    queue = MemoryQueue(QueueSettings())
    exporter = OtlpGrpcExporter(OtlpGrpcSettings(endpoint=otlp_sink.endpoint))
    sender = QueuedSender(queue, exporter, FAST_RETRY, consumers=1, max_batch_items=1000, flush_timeout=0.05)
    sender.start()
    assert queue.offer(metrics_batch("lone", points=3))
    assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 3, timeout=10)
    sender.stop()
    exporter.close()
