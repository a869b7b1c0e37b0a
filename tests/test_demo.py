"""`make demo`: the SDK app of examples/sdk_app.py against a real sidecar, and without one; `make install`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract.otlp import Signal
from tests.conftest import CONTRACTS, REPO
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import config_for, free_port, http_get, running

DEMO = REPO / "examples" / "sdk_app.py"


def _demo(endpoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), "--endpoint", endpoint, "--seconds", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


def _sample(exposition: str, series: str) -> float:
    return float(_count(re.escape(series) + r" (\d+)", exposition))


def _forwarded(sink: OtlpSink) -> Counter[tuple[str, str]]:
    """Data points the sink received, by metric name and unit."""
    points: Counter[tuple[str, str]] = Counter()
    for received in sink.requests:
        if received.signal is Signal.METRICS:
            for rm in ExportMetricsServiceRequest.FromString(received.payload).resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        points[(metric.name, metric.unit)] += len(getattr(metric, kind).data_points) if kind else 0
    return points


def test_the_demo_tells_what_the_contract_did_as_the_sidecar_did_it(otlp_sink: OtlpSink) -> None:
    with running(config_for(CONTRACTS / "ecommerce.yaml", otlp_sink.endpoint)) as sidecar:
        result = _demo(sidecar.endpoint)
        assert sidecar.status is not None
        exposition = http_get(f"http://{sidecar.status.address}/metrics")[2].decode()
    # Leaving running() drained the queue: the sink holds everything that was forwarded.
    assert result.returncode == 0, result.stderr
    summary = result.stdout
    histogram = _count(r"renamed +(\d+) data point\(s\): http.server.duration -> http_server_duration_seconds", summary)
    requests = _count(r"renamed +(\d+) data point\(s\): http.server.request.count -> http_requests_total", summary)
    converted = _count(r"converted +(\d+) data point\(s\): ms -> s \(http_server_duration_seconds\)", summary)
    rejected = _count(r"rejected +(\d+) data point\(s\)", summary)
    assert _count(r"renamed +(\d+) attribute\(s\): status_code -> http.status_code, values as int", summary) > 0
    assert "forbidden-attribute" in summary  # the reason the sidecar gave

    # What the sidecar counted: each renamed point is a deprecated-metric finding, each rejected one rejected.
    assert histogram + requests == _sample(
        exposition, 'otel_contract_findings_total{level="warning",rule="deprecated-metric",signal="metrics"}'
    )
    assert rejected == _sample(exposition, 'otel_contract_rejected_data_points_total{signal="metrics"}')
    # What came out: the renamed points, in the contract's units, less the rejected ones (user.id on both).
    forwarded = _forwarded(otlp_sink)
    assert converted == histogram and ("http_server_duration_seconds", "ms") not in forwarded
    assert histogram + requests - rejected == (
        forwarded[("http_server_duration_seconds", "s")] + forwarded[("http_requests_total", "{request}")]
    )


def test_the_demo_without_a_sidecar_says_so_and_exits_1() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    result = _demo(endpoint)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == f"no sidecar on {endpoint}: start it with `make run`"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_says_what_it_installs_before_it_does() -> None:
    commands = subprocess.run(
        ["make", "-n", "-B", "install"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    venv = next(i for i, line in enumerate(commands) if " -m venv " in line)
    pip = next(i for i, line in enumerate(commands) if "pip install" in line)
    assert commands[venv - 1].startswith('echo "creating .venv with')
    assert commands[pip - 1].startswith('echo "installing pip and the')
