"""The ``otelcol`` fixture and a Collector process: the real OpenTelemetry Collector (tools/otelcol,
pinned upstream release), built by pipelines/ci/install-otelcol.sh if missing (failing in CI, skipping
elsewhere: tests/system_packages.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.sidecar_harness import free_port, wait_until
from tests.system_packages import installed_by

INSTALL_SCRIPT = REPO / "pipelines" / "ci" / "install-otelcol.sh"
# The Collector's own line once every pipeline runs (service.go); waited on, never slept for.
_READY = "Everything is ready. Begin running and processing data."


def _built() -> str | None:
    where = subprocess.run(["bash", str(INSTALL_SCRIPT), "--path"], capture_output=True, text=True, check=True)
    path = Path(where.stdout.strip())
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


@pytest.fixture(scope="session", name="otelcol")
def otelcol_fixture() -> str:
    return installed_by(INSTALL_SCRIPT, _built, "the OpenTelemetry Collector build (tools/otelcol) is")


class Collector:
    """``otelcol --config`` as a process, with an OTLP/gRPC receiver on 127.0.0.1 (a free port unless given:
    a Collector that replaces a stopped one takes over its port)."""

    def __init__(
        self, binary: str, directory: Path, name: str, config: dict[str, Any], port: int | None = None
    ) -> None:
        self.port = free_port() if port is None else port
        self.binary = binary
        self.config_path = directory / f"{name}.yaml"
        self.log = directory / f"{name}.log"
        config = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": self.endpoint}}}},
            **config,
            # Its own telemetry off: no port of its own to collide with anything.
            "service": {**config["service"], "telemetry": {"metrics": {"level": "none"}}},
        }
        self.config_path.write_text(yaml.safe_dump(config), "utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""

    def start(self, timeout: float = 30.0) -> Collector:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "--config", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        if not wait_until(lambda: _READY in self.output() or self.process.poll() is not None, timeout=timeout):
            self.stop()
            raise AssertionError(f"the Collector did not start:\n{self.output()}")
        if self.process.poll() is not None:
            raise AssertionError(f"the Collector exited with {self.process.returncode}:\n{self.output()}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
