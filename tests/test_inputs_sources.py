"""Every INPUT of validate: directories, stdin sniffing, live URLs on a local HTTP server, streaming
through a pipe, and progress reporting."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract import rules
from otel_contract.inputs.counting import ReadProgress
from otel_contract.inputs.otlp import Capture, read_captures
from otel_contract.inputs.scrape import ACCEPT
from otel_contract.inputs.sources import FetchOptions, read_inputs
from otel_contract.otlp import InputError, to_otlp_json
from otel_contract.progress import Progress

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"
SHOP_NAMES = ["shop_orders_total", "shop_queue_depth", "shop_request_duration_seconds"]
WAIT = 10.0  # seconds any test waits for another thread before it gives up
FAST = FetchOptions(timeout=5.0, retries=2, backoff=0.01)


def _names(captures: list[Capture]) -> list[str]:
    names = set()
    for capture in captures:
        assert isinstance(capture.request, ExportMetricsServiceRequest)
        for resource_metrics in capture.request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                names.update(metric.name for metric in scope_metrics.metrics)
    return sorted(names)


def _resource(capture: Capture) -> dict[str, str]:
    assert isinstance(capture.request, ExportMetricsServiceRequest)
    return {kv.key: kv.value.string_value for kv in capture.request.resource_metrics[0].resource.attributes}


# ---------------------------------------------------------------------------
# Files and directories
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shop.jsonl", "shop.pb", "shop.prom", "shop.om"])
def test_every_capture_format_by_extension(name: str) -> None:
    captures = list(read_inputs([str(CAPTURES / name)]))
    assert _names(captures) == SHOP_NAMES
    assert {capture.source for capture in captures} <= {str(CAPTURES / name), f"{CAPTURES / name}:1"}


def test_txt_that_ends_in_eof_is_openmetrics(tmp_path: Path) -> None:
    path = tmp_path / "scrape.txt"
    shutil.copy(CAPTURES / "shop.om", path)  # an OpenMetrics counter's family has no _total: 0.0.4 would misread it
    (capture,) = read_inputs([str(path)])
    assert _names([capture]) == SHOP_NAMES


def _tree(root: Path) -> None:
    (root / "b" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    shutil.copy(CAPTURES / "shop.prom", root / "z.prom")
    shutil.copy(CAPTURES / "shop.jsonl", root / "a.jsonl")
    shutil.copy(CAPTURES / "shop.om", root / "b" / "deeper" / "c.om")
    shutil.copy(CAPTURES / "shop.pb", root / "b" / "m.pb")
    shutil.copy(CAPTURES / "shop.jsonl", root / ".hidden" / "x.jsonl")
    shutil.copy(CAPTURES / "shop.jsonl", root / ".dot.jsonl")
    (root / "README.md").write_text("captures\n")
    (root / "b" / "notes.yaml").write_text("a: 1\n")
    (root / "b" / "notes.txt").write_text("not an exposition\n")  # read only when named


def test_directory_is_walked_recursively_in_sorted_order(tmp_path: Path) -> None:
    _tree(tmp_path)
    reader = read_inputs([str(tmp_path)])
    expected = [tmp_path / "a.jsonl", tmp_path / "b" / "deeper" / "c.om", tmp_path / "b" / "m.pb", tmp_path / "z.prom"]
    assert reader.inputs == tuple(str(path) for path in expected)
    skipped = (tmp_path / "README.md", tmp_path / "b" / "notes.txt", tmp_path / "b" / "notes.yaml")
    assert reader.skipped == tuple(str(path) for path in skipped)
    captures = list(reader)
    assert [c.source for c in captures] == [f"{expected[0]}:1", *[str(path) for path in expected[1:]]]
    assert _names(captures) == SHOP_NAMES


def test_directory_without_captures_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs([str(tmp_path)])
    assert caught.value.source == str(tmp_path)
    assert caught.value.reason.startswith("directory holds no capture file ending in .binpb, .json")
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / ".hidden.jsonl").write_text("x")
    with pytest.raises(InputError, match=r"\(1 files with other extensions skipped\)$"):
        read_inputs([str(tmp_path)])


def test_path_errors_come_before_anything_is_read(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("{not json}\n")  # would fail if read
    (tmp_path / "capture.yaml").write_text("a: 1\n")
    with pytest.raises(InputError) as caught:
        read_inputs([str(good), str(tmp_path / "missing.prom")])
    assert str(caught.value) == f"{tmp_path / 'missing.prom'}: no such file or directory"
    with pytest.raises(InputError, match=r"unknown capture format: expected a file ending in \.binpb"):
        read_inputs([str(good), str(tmp_path / "capture.yaml")])
    with pytest.raises(InputError, match="not a valid URL"):
        read_inputs([str(good), "http:///metrics"])
    with pytest.raises(InputError, match="given twice"):
        read_inputs(["-", "-"])
    with pytest.raises(InputError, match="invalid JSON"):  # and the content fails only when read
        list(read_inputs([str(good)]))


# ---------------------------------------------------------------------------
# Standard input, sniffed
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sources"),
    [
        ("shop.jsonl", ["-:1"]),  # JSON lines: each line is yielded as it arrives
        ("shop.pb", ["-"]),
        ("shop.prom", ["-"]),
        ("shop.om", ["-"]),
    ],
)
def test_stdin_is_sniffed(name: str, sources: list[str]) -> None:
    captures = list(read_inputs(["-"], stdin=io.BytesIO((CAPTURES / name).read_bytes())))
    assert [c.source for c in captures] == sources
    assert _names(captures) == SHOP_NAMES


def test_stdin_pretty_json_and_exposition_after_blank_lines() -> None:
    (request,) = [c.request for c in read_captures(CAPTURES / "shop.jsonl")]
    pretty = b"\n\n" + json.dumps(to_otlp_json(request), indent=2).encode()
    (capture,) = read_inputs(["-"], stdin=io.BytesIO(pretty))
    assert (capture.source, capture.request) == ("-", request)
    (capture,) = read_inputs(["-"], stdin=io.BytesIO(b"\n  \n# HELP up Up.\nup 1\n"))
    assert _names([capture]) == ["up"]


def test_stdin_errors_name_stdin() -> None:
    with pytest.raises(InputError) as caught:
        list(read_inputs(["-"], stdin=io.BytesIO(b"up 1\nbroken{ 1\n")))
    assert (caught.value.source, caught.value.line) == ("-", 2)


def test_stdin_streams_json_lines_through_a_pipe() -> None:
    """The reader yields the first request before the writer has sent the second: nothing waits for
    the whole input."""
    lines = (CAPTURES / "shop.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 1
    read_fd, write_fd = os.pipe()
    first_yielded = threading.Event()
    writer_error: list[BaseException] = []

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(lines[0])
                pipe.flush()
                if not first_yielded.wait(WAIT):
                    raise TimeoutError("the reader did not yield the first request")
                pipe.write(lines[0])
        except BaseException as error:  # reported by the test thread
            writer_error.append(error)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    with os.fdopen(read_fd, "rb") as stdin:
        captures = read_inputs(["-"], stdin=stdin)
        first = next(captures)
        first_yielded.set()
        rest = list(captures)
    writer.join(WAIT)
    assert not writer.is_alive() and writer_error == []
    assert [c.source for c in [first, *rest]] == ["-:1", "-:2"]
    assert first.request == rest[0].request


# ---------------------------------------------------------------------------
# URLs: a real HTTP server on 127.0.0.1
# ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # wait for this before answering (a slow server)
    authorization: str | None = None  # answer 401 Unauthorized unless the request carries this


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class MetricsServer:
    """Answers each path with its replies in order (the last one again and again), recording requests."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                queue = server.replies.get(self.path) or [Reply(404, b"not found")]
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
                if reply.hold is not None:
                    reply.hold.wait(WAIT)
                if reply.authorization is not None and self.headers.get("Authorization") != reply.authorization:
                    reply = Reply(401, b"who are you?", {"WWW-Authenticate": "Bearer"})
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(WAIT)


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    running = MetricsServer()
    yield running
    running.close()


TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
WITH_POD = (
    b'# TYPE queue_length gauge\nqueue_length{namespace="prod",pod="app-1"} 3\n'
    b'queue_length{namespace="prod",pod="app-2"} 5\n'
)
WITHOUT_POD = b"# TYPE queue_length gauge\nqueue_length 3\n# TYPE go_goroutines gauge\ngo_goroutines 12\n"


def _scrape(url: str, fetch: FetchOptions = FAST) -> list[Capture]:
    return list(read_inputs([url], fetch=fetch))


def test_openmetrics_scrape_like_prometheus(server: MetricsServer) -> None:
    server.replies["/metrics"] = [
        Reply(body=(CAPTURES / "shop.om").read_bytes(), headers={"Content-Type": OPENMETRICS})
    ]
    (capture,) = _scrape(server.url("/metrics"))
    assert capture.source == server.url("/metrics")
    assert _names([capture]) == SHOP_NAMES
    # A valid Content-Type: no scrape-content-type. The shop series carry no pod/namespace labels.
    assert [(f.rule, f.count) for f in capture.findings] == [(rules.POD_MAPPING, 5)]
    assert _resource(capture) == {
        "service.instance.id": f"127.0.0.1:{server.port}",
        "server.address": "127.0.0.1",
        "server.port": str(server.port),
        "url.scheme": "http",
    }
    (seen,) = server.seen
    assert seen.headers["accept"] == ACCEPT
    assert seen.headers["accept-encoding"] == "gzip"
    assert seen.headers["x-prometheus-scrape-timeout-seconds"] == "5"


def test_plain_text_plain_is_a_finding_and_still_parsed(server: MetricsServer) -> None:
    body = gzip.compress(WITH_POD)
    server.replies["/metrics"] = [Reply(body=body, headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})]
    (capture,) = _scrape(server.url("/metrics"))
    assert _names([capture]) == ["queue_length"]
    (finding,) = capture.findings
    assert finding.rule is rules.SCRAPE_CONTENT_TYPE
    assert finding.source == server.url("/metrics")
    assert finding.message.startswith(
        "Content-Type 'text/plain' has no version: Prometheus 3 reads text/plain as text 0.0.4, but other scrapers"
    )
    assert "read as text 0.0.4" in finding.message


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        (None, "no Content-Type: Prometheus 3 fails the scrape unless its scrape config sets fallback_scrape_protocol"),
        ("application/json", "Content-Type 'application/json' is not a Prometheus exposition type: Prometheus 3 fails"),
        ("text/plain; version=0.0.4, charset=utf-8", "cannot be parsed: Prometheus 3 fails the scrape"),
        ("text/plain; version=0.0.4; charset=latin-1", "exposition text is UTF-8, not latin-1"),
    ],
)
def test_invalid_content_types(server: MetricsServer, content_type: str | None, says: str) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    server.replies["/metrics"] = [Reply(body=WITH_POD, headers=headers)]
    (capture,) = _scrape(server.url("/metrics"))
    assert _names([capture]) == ["queue_length"]
    (finding,) = capture.findings
    assert finding.rule is rules.SCRAPE_CONTENT_TYPE and says in finding.message


@pytest.mark.parametrize("content_type", [TEXT_0_0_4, "text/plain;version=0.0.4", "text/plain; version=1.0.0"])
def test_valid_text_content_types(server: MetricsServer, content_type: str) -> None:
    server.replies["/metrics"] = [Reply(body=WITH_POD, headers={"Content-Type": content_type})]
    (capture,) = _scrape(server.url("/metrics"))
    assert capture.findings == ()


def test_series_without_pod_and_namespace(server: MetricsServer) -> None:
    server.replies["/metrics"] = [Reply(body=WITHOUT_POD, headers={"Content-Type": "text/plain"})]
    (capture,) = _scrape(server.url("/metrics"))
    by_rule = {finding.rule: finding for finding in capture.findings}
    assert set(by_rule) == {rules.SCRAPE_CONTENT_TYPE, rules.POD_MAPPING}
    pods = by_rule[rules.POD_MAPPING]
    assert pods.count == 2
    assert pods.message.startswith("2 of 2 series (e.g. queue_length, go_goroutines) have no pod and namespace labels")
    assert "kubernetes_sd_configs relabel" in pods.message and "<unknown>" in pods.message


def test_target_info_can_supply_pod_and_namespace(server: MetricsServer) -> None:
    body = WITHOUT_POD + b'# TYPE target_info gauge\ntarget_info{k8s_pod_name="app-1",k8s_namespace_name="prod"} 1\n'
    server.replies["/metrics"] = [Reply(body=body, headers={"Content-Type": TEXT_0_0_4})]
    (capture,) = _scrape(server.url("/metrics"))
    assert capture.findings == ()
    assert _resource(capture)["k8s_pod_name"] == "app-1"


def test_one_finding_per_url_however_many_requests(server: MetricsServer) -> None:
    body = "".join(f'queue_length{{shard="{i}"}} {i}\n' for i in range(4500)).encode()
    server.replies["/metrics"] = [Reply(body=body, headers={"Content-Type": "text/plain"})]
    captures = _scrape(server.url("/metrics"))
    assert len(captures) == 3  # 2000 data points per request
    assert [f.rule for f in captures[0].findings] == [rules.SCRAPE_CONTENT_TYPE]
    assert captures[1].findings == ()
    assert [(f.rule, f.count) for f in captures[2].findings] == [(rules.POD_MAPPING, 4500)]


def test_401_names_the_reason_and_a_header_fixes_it(server: MetricsServer) -> None:
    url = server.url("/metrics")
    protected = Reply(body=WITH_POD, headers={"Content-Type": TEXT_0_0_4}, authorization="Bearer s3cret")
    server.replies["/metrics"] = [protected]
    with pytest.raises(InputError) as caught:
        _scrape(url)
    assert caught.value.source == url
    assert caught.value.reason.startswith("HTTP 401 Unauthorized (credentials go in a request header")
    assert len(server.seen) == 1  # a 401 is not retried

    fetch = FetchOptions(timeout=5.0, retries=0, headers={"Authorization": "Bearer s3cret", "accept": "text/plain"})
    (capture,) = _scrape(url, fetch)
    assert _names([capture]) == ["queue_length"]
    assert server.seen[-1].headers["accept"] == "text/plain"  # the caller's spelling replaces the default


def test_retries_until_the_server_answers(server: MetricsServer) -> None:
    good = Reply(body=WITH_POD, headers={"Content-Type": TEXT_0_0_4})
    server.replies["/metrics"] = [Reply(503, b"busy"), Reply(429, b"slow down", {"Retry-After": "0"}), good]
    (capture,) = _scrape(server.url("/metrics"))
    assert _names([capture]) == ["queue_length"]
    assert len(server.seen) == 3


def test_gives_up_after_the_retries(server: MetricsServer) -> None:
    server.replies["/metrics"] = [Reply(500, b"broken")]
    with pytest.raises(InputError) as caught:
        _scrape(server.url("/metrics"), FetchOptions(timeout=5.0, retries=1, backoff=0.01))
    assert caught.value.reason == "HTTP 500 Internal Server Error (after 2 attempts)"
    assert len(server.seen) == 2


def test_refused_port_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/metrics"
    with pytest.raises(InputError) as caught:
        _scrape(url, FetchOptions(timeout=2.0, retries=1, backoff=0.01))
    assert str(caught.value) == f"{url}: connection refused (after 2 attempts)"


def test_slow_server_times_out(server: MetricsServer) -> None:
    release = threading.Event()
    server.replies["/metrics"] = [Reply(body=WITH_POD, hold=release)]
    try:
        with pytest.raises(InputError) as caught:
            _scrape(server.url("/metrics"), FetchOptions(timeout=0.2, retries=0))
    finally:
        release.set()
    assert caught.value.reason == "timed out after 0.2 s"


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------


def test_progress_is_reported_as_bytes_are_read(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = (CAPTURES / "shop.jsonl").read_bytes()
    path.write_bytes(line * 400)  # about 600 KB: several reads
    reports: list[ReadProgress] = []
    captures = list(read_inputs([str(path), str(CAPTURES / "shop.prom")], progress=reports.append))
    assert len(captures) == 401
    mine = [r for r in reports if r.source == str(path)]
    assert {r.bytes_total for r in mine} == {path.stat().st_size}
    assert [r.bytes_read for r in mine] == sorted(r.bytes_read for r in mine)
    assert mine[-1].bytes_read == path.stat().st_size
    # Bytes are reported while the file is being read, not only when it is done.
    assert any(0 < r.bytes_read < path.stat().st_size and r.captures < 400 for r in mine)
    assert reports[-1] == ReadProgress(
        str(CAPTURES / "shop.prom"),
        (CAPTURES / "shop.prom").stat().st_size,
        (CAPTURES / "shop.prom").stat().st_size,
        401,
    )


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_on_a_terminal() -> None:
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress(stream, clock=clock, width=60)
    progress.update(ReadProgress("capture.jsonl", 0, 4_000_000, 0))
    assert stream.getvalue() == "\r\x1b[Kcapture.jsonl    0%  -- MB/s  0 requests"
    clock.now += 0.1
    progress.update(ReadProgress("capture.jsonl", 1_000_000, 4_000_000, 1))
    assert stream.getvalue().count("\r") == 1  # not redrawn within a quarter of a second
    clock.now += 0.4
    progress.update(ReadProgress("capture.jsonl", 2_000_000, 4_000_000, 2))
    assert stream.getvalue().endswith("\r\x1b[Kcapture.jsonl   50%  4.0 MB/s  2 requests")
    clock.now += 0.5
    progress.update(ReadProgress("-", 1_000_000, None, 3))  # a second input of unknown size
    assert stream.getvalue().endswith("\r\x1b[K-  1.0 MB  3.0 MB/s  3 requests")
    progress.close()
    assert stream.getvalue().endswith("\r\x1b[K")
    assert "\n" not in stream.getvalue()  # one line, rewritten in place


def test_progress_elides_long_names_to_the_width() -> None:
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress(stream, clock=clock, width=50)
    name = "/very/long/path/to/some/deeply/nested/capture/directory/file.prom"
    progress.update(ReadProgress(name, 10, 100, 1))
    line = stream.getvalue().removeprefix("\r\x1b[K")
    assert len(line) == 49 and "\u2026" in line and line.split()[0].endswith("file.prom")


def test_no_progress_at_all_when_not_a_terminal() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with Progress(stream, clock=clock) as progress:
        assert not progress.enabled
        progress.update(ReadProgress("capture.jsonl", 10, 100, 1))
    assert stream.getvalue() == ""
    forced = io.StringIO()
    with Progress(forced, clock=clock, force=True, width=80) as progress:
        progress.update(ReadProgress("capture.jsonl", 10, 100, 1))
    assert forced.getvalue() == "\r\x1b[Kcapture.jsonl   10%  -- MB/s  1 request\r\x1b[K"
