"""A real Prometheus server on 127.0.0.1 for tests, scraping targets the test starts.

``run_prometheus(targets, tmp_path)`` writes a prometheus.yml with one job scraping ``targets``
(``host:port``), starts Debian's ``prometheus`` (installed with promtool by
pipelines/ci/install-promtool.sh: the ``prometheus_binary`` fixture), waits until it is ready and
stops it on exit. ``PrometheusServer`` answers instant queries and waits on their results.

``hpa_app()`` loads examples/hpa-app/app.py, the app these tests have Prometheus scrape.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.promtool import INSTALL_SCRIPT
from tests.system_packages import installed_by

Sample = tuple[dict[str, str], float]
Predicate = Callable[[list[Sample]], bool]

JOB = "hpa-app"
HPA_APP = REPO / "examples" / "hpa-app" / "app.py"

_START_ATTEMPTS = 3  # another process can take the free port between our probe and Prometheus' bind
_READY_TIMEOUT_SECONDS = 60.0
_POLL_SECONDS = 0.1
_HTTP_TIMEOUT_SECONDS = 10.0
# Short: whatever else holds the port may accept and never answer, and the retry should come soon.
_READY_REQUEST_TIMEOUT_SECONDS = 2.0
_STOP_TIMEOUT_SECONDS = 15.0


class PrometheusError(RuntimeError):
    """Prometheus did not start, answered an error, or a wait on it timed out."""


@pytest.fixture(scope="session", name="prometheus_binary")
def prometheus_binary_fixture() -> str:
    """The path of a real prometheus server (the same Debian package as promtool)."""
    return installed_by(INSTALL_SCRIPT, lambda: shutil.which("prometheus"), "prometheus is")


def hpa_app() -> ModuleType:
    """examples/hpa-app/app.py as a module (its folder name is no Python package name)."""
    name = "hpa_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HPA_APP)
    assert spec is not None and spec.loader is not None, HPA_APP
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the module is being executed.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class PrometheusServer:
    url: str  # http://127.0.0.1:PORT
    targets: tuple[str, ...]
    log_path: Path
    job: str = JOB

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """What ``expr`` evaluates to now (or at Unix time ``at``): a vector, or a scalar as one unlabelled sample."""
        form = {"query": expr} | ({} if at is None else {"time": f"{at:.3f}"})
        data = self._api("/api/v1/query", form)
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in result]
        if kind == "scalar":
            return [({}, float(result[1]))]
        raise PrometheusError(f"{expr!r} is a {kind}, not an instant vector or scalar")

    def wait_for(self, expr: str, predicate: Predicate, timeout: float = 60.0, interval: float = 0.25) -> list[Sample]:
        """The first result of ``expr`` that ``predicate`` holds on, polling every ``interval`` for ``timeout`` s."""
        deadline = time.monotonic() + timeout
        result: list[Sample] = []
        for _ in range(math.ceil(timeout / interval) + 1):
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        raise PrometheusError(
            f"{expr!r}: no result satisfied the condition within {timeout} s; last: {result}; "
            f"prometheus log:\n{self.log_tail(10)}"
        )

    def wait_for_scrapes(self, count: int = 1, timeout: float = 60.0) -> list[Sample]:
        """Wait until every target was scraped successfully at least ``count`` times (``up`` summed over the run)."""
        expr = f'sum_over_time(up{{job="{self.job}"}}[1h])'

        def _all_scraped(result: list[Sample]) -> bool:
            scraped = {labels.get("instance"): value for labels, value in result}
            return all(scraped.get(target, 0) >= count for target in self.targets)

        return self.wait_for(expr, _all_scraped, timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    def _api(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, data=urllib.parse.urlencode(form).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_SECONDS) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            # Bad queries come back as 400/422 with the same JSON envelope.
            try:
                body = json.load(error)
            except ValueError:
                raise PrometheusError(f"{path} {form}: HTTP {error.code}") from error
        if body.get("status") != "success":
            raise PrometheusError(f"{form.get('query', path)!r}: {body.get('errorType')}: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        return data


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(path: Path, targets: Sequence[str], scrape_interval: str, job: str = JOB) -> Path:
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": scrape_interval,
                # The 10 s default timeout is longer than a short interval, which Prometheus refuses.
                "scrape_timeout": scrape_interval,
                # Keep the app's own pod/namespace labels over any target labels of the same name
                # (a Kubernetes service discovery sets such labels; prometheus-adapter setups do this).
                "honor_labels": True,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT_SECONDS)


def _wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    """True once /-/ready answers 200; False if the process exited first; raises on timeout."""
    deadline = time.monotonic() + timeout
    for _ in range(math.ceil(timeout / _POLL_SECONDS) + 1):
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=_READY_REQUEST_TIMEOUT_SECONDS) as response:
                # Alive too: a server that lost the port race exits, and another may be answering.
                if response.status == 200 and process.poll() is None:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or 503 while the TSDB opens
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_SECONDS)
    raise PrometheusError(f"prometheus at {url} not ready within {timeout} s")


@contextlib.contextmanager
def run_prometheus(
    targets: Sequence[str],
    tmp_path: Path,
    scrape_interval: str = "1s",
    *,
    binary: str = "prometheus",
    job: str = JOB,
) -> Iterator[PrometheusServer]:
    """A Prometheus on 127.0.0.1 scraping ``targets`` (``host:port``) every ``scrape_interval``, ready on entry."""
    config = write_config(tmp_path / "prometheus.yml", targets, scrape_interval, job)
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = tmp_path / f"prometheus-{attempt}.log"
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / f'data-{attempt}'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                ready = _wait_ready(process, url, _READY_TIMEOUT_SECONDS)
            except PrometheusError as error:
                raise PrometheusError(f"{error}; log:\n{_tail(log_path, 30)}") from None
            if ready:
                yield PrometheusServer(url=url, targets=tuple(targets), log_path=log_path, job=job)
                return
        finally:
            _stop(process)
        log_tail = _tail(log_path, 30)
        if "address already in use" not in log_tail:
            raise PrometheusError(f"prometheus exited with {process.returncode} before ready; log:\n{log_tail}")
    raise PrometheusError(f"prometheus found no free port in {_START_ATTEMPTS} attempts; log:\n{log_tail}")
