"""Running the sidecar in tests: in this process (a real gRPC server on loopback) or as a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from otel_contract.otlp import FACTS, Signal
from otel_contract.server.config import Overrides, SidecarConfig, load_config
from otel_contract.server.sidecar import Sidecar
from tests.conftest import REPO

SHOP_CONTRACT = """\
contract: shop
version: {version}
resource: {{required: [service.name]}}
attributes:
  renames: {{status_code: http.status_code}}
  types: {{http.status_code: int}}
metrics:
  - name: http_server_duration_seconds
    type: histogram
    unit: s
    aliases: [{{name: http.server.duration, unit: ms}}]
    attributes:
      required: [http.method]
      optional: [http.status_code]
      forbidden: [user.id]
      values: {{http.method: [GET, POST]}}
  - name: orders_total
    type: sum
    unit: '{{order}}'
    monotonic: true
    aliases: [{{name: shop.orders}}]
    attributes: {{optional: [seq, http.status_code], forbidden: [user.id]}}
{extra}"""


def shop_contract(path: Path, version: str = "1.0.0", extra: str = "") -> Path:
    path.write_text(SHOP_CONTRACT.format(version=version, extra=extra), "utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; bounded in time and count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def health_json(telemetry: str) -> dict[str, Any]:
    status, _, body = http_get(f"http://{telemetry}/healthz")
    assert status == 200, body
    document: dict[str, Any] = json.loads(body)
    return document


def config_for(contract: Path, sink_endpoint: str, **overrides: Any) -> SidecarConfig:
    settings = {
        "contract": str(contract),
        "endpoint": "127.0.0.1:0",
        "http_endpoint": "127.0.0.1:0",
        "exporter_endpoint": sink_endpoint,
        "prometheus": "127.0.0.1:0",
        **overrides,
    }
    config = load_config(None, Overrides(**settings))
    # Tests wait on conditions, not on the Collector's production retry intervals.
    retry = type(config.exporter.retry)(initial_interval=0.05, max_interval=0.2, max_elapsed_time=60.0)
    reload_interval = 0.05
    from dataclasses import replace

    return replace(config, exporter=replace(config.exporter, retry=retry), reload_interval=reload_interval)


@contextmanager
def running(config: SidecarConfig, env: dict[str, str] | None = None) -> Iterator[Sidecar]:
    sidecar = Sidecar(config, env=env or {})
    sidecar.start()
    try:
        yield sidecar
    finally:
        sidecar.shutdown()


class RawClient:
    """A plain gRPC client sending serialized requests, to see exact statuses and responses."""

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint)
        self._methods = {
            signal: self.channel.unary_unary(facts.export_method, request_serializer=None, response_deserializer=None)
            for signal, facts in FACTS.items()
        }

    def export(self, signal: Signal, payload: bytes, timeout: float = 10.0) -> tuple[bytes, grpc.Call]:
        response, call = self._methods[signal].with_call(payload, timeout=timeout)
        return response, call

    def close(self) -> None:
        self.channel.close()


class SidecarProcess:
    """``otel-contract serve`` as a real process, for signals (SIGTERM, SIGHUP, SIGKILL) and workers."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.telemetry_port = free_port()
        self.http_port = free_port()
        self.args = [
            "--endpoint",
            f"127.0.0.1:{self.port}",
            "--http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--prometheus",
            f"127.0.0.1:{self.telemetry_port}",
            *args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"otel-contract-sidecar-{self.port}.log"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_endpoint(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def telemetry(self) -> str:
        return f"127.0.0.1:{self.telemetry_port}"

    def start(self, timeout: float = 30.0) -> SidecarProcess:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "otel_contract", "serve", *self.args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        if not wait_until(self.ready, timeout=timeout):
            self.kill()
            raise AssertionError(f"sidecar did not become ready:\n{self.output()}")
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"sidecar exited with {self.process.returncode}:\n{self.output()}")
        try:
            return http_get(f"http://{self.telemetry}/readyz", timeout=1)[0] == 200
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
