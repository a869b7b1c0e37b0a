"""A real Prometheus scraping examples/hpa-app/app.py: the data that prometheus-adapter-style queries run on.

The apps expose sample timestamps (``timestamps=True``): Prometheus otherwise stamps each sample with
its own scrape time, a millisecond or more away from the moment the app computed the value, and
rate() over 30 s is then off by up to ~1e-3 relative instead of float error.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from tests.prometheus_server import (
    HPA_APP,
    PrometheusError,
    Sample,
    hpa_app,
    prometheus_binary_fixture,  # noqa: F401 - the fixture
    run_prometheus,
)

APP = hpa_app()
NAMESPACE = "hpa-app"
CONSUMERS = {"hpa-app-consumer-a": 30.0, "hpa-app-consumer-b": 50.0}
PRODUCE_RATE = 80.0
QUEUE_LENGTH = 120.0
_CLI_START_SECONDS = 30.0


def _series(count: int) -> Callable[[list[Sample]], bool]:
    return lambda result: len(result) == count


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], Any]]:
    """Serve HpaApp collectors on ephemeral 127.0.0.1 ports for the test; stop them all after it."""
    running: list[Any] = []

    def _serve(app: Any) -> Any:
        serving = APP.serve(app)
        running.append(serving)
        return serving

    yield _serve
    for serving in running:
        serving.stop()


def _consumer(pod: str, rate: float) -> Any:
    identity = APP.PodIdentity(pod=pod, namespace=NAMESPACE)
    return APP.HpaApp(APP.HpaAppConfig(role=APP.Role.CONSUMER, consume_rate=rate, identity=identity, timestamps=True))


def test_prometheus_rates_per_pod_match_the_configured_consume_rates(
    prometheus_binary: str, tmp_path: Path, serve_app: Callable[[Any], Any]
) -> None:
    producer = APP.HpaApp(
        APP.HpaAppConfig(role=APP.Role.PRODUCER, produce_rate=PRODUCE_RATE, queue_length=QUEUE_LENGTH, timestamps=True)
    )
    apps = [_consumer(pod, rate) for pod, rate in CONSUMERS.items()] + [producer]
    targets = [serve_app(app).target for app in apps]
    with run_prometheus(targets, tmp_path, binary=prometheus_binary) as prometheus:
        prometheus.wait_for_scrapes(1)
        queue = prometheus.query('hpa_app_queue_length{queue_name="hpa-app"}')
        assert [value for _, value in queue] == [QUEUE_LENGTH]

        # rate() extrapolates to the window's ends, and only by exactly the window once a sample lies
        # at or before its start: until then it reports a lower rate. Wait for 30 s of history.
        prometheus.wait_for("hpa_app_consume_count_total offset 30s", _series(2), timeout=90)
        rates = prometheus.wait_for("rate(hpa_app_consume_count_total[30s])", _series(2), timeout=10)
        assert {labels["namespace"] for labels, _ in rates} == {NAMESPACE}
        by_pod = {labels["pod"]: value for labels, value in rates}
        assert by_pod.keys() == CONSUMERS.keys()
        for pod, expected in CONSUMERS.items():
            assert by_pod[pod] == pytest.approx(expected, rel=1e-6), (pod, rates)

        produced = prometheus.query("rate(hpa_app_produce_count_total[30s])")
        assert [value for _, value in produced] == [pytest.approx(PRODUCE_RATE, rel=1e-6)]


@contextmanager
def _cli_app(*args: str) -> Iterator[str]:
    """Run app.py as a user does; yield the host:port it printed; stop it with SIGTERM."""
    env = {key: value for key, value in os.environ.items() if key not in ("POD_NAME", "POD_NAMESPACE")}
    command = [sys.executable, str(HPA_APP), "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=_CLI_START_SECONDS)
        assert ready, f"app.py printed no URL within {_CLI_START_SECONDS} s"
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), url
        yield url.removeprefix("http://").removesuffix("/metrics")
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_no_pod_labels_consumer_exports_series_without_pod_and_namespace(
    prometheus_binary: str, tmp_path: Path
) -> None:
    with (
        _cli_app("--role", "consumer", "--consume-rate", "10", "--no-pod-labels") as target,
        run_prometheus([target], tmp_path, binary=prometheus_binary) as prometheus,
    ):
        series = prometheus.wait_for("hpa_app_consume_count_total", _series(1))
        assert series[0][0] == {
            "__name__": "hpa_app_consume_count_total",
            "instance": target,
            "job": "hpa-app",
            "queue_name": "hpa-app",
        }
        # What an adapter's per-pod query then returns: one value that belongs to no pod, so the HPA
        # finds no metric for any of its pods and shows <unknown>.
        grouped = prometheus.wait_for("sum by (namespace, pod) (rate(hpa_app_consume_count_total[30s]))", _series(1))
        assert grouped[0][0] == {}


def test_query_returns_scalars_and_raises_prometheus_errors(prometheus_binary: str, tmp_path: Path) -> None:
    with run_prometheus([], tmp_path, binary=prometheus_binary) as prometheus:
        assert prometheus.query("1 + 1") == [({}, 2.0)]
        with pytest.raises(PrometheusError, match=r"bad_data: .*parse error"):
            prometheus.query("rate(")
        with pytest.raises(PrometheusError, match="matrix"):
            prometheus.query("up[1m]")


# --- the app in-process, on a fake clock ---------------------------------------------------------------------------

_START = 1_700_000_000.0


def _exposition(config: Any, elapsed: float) -> str:
    app = APP.HpaApp(config, clock=lambda: _START + elapsed, start=_START)
    return generate_latest(APP.make_registry(app)).decode()


def test_app_counts_rate_times_elapsed_seconds_with_pod_labels() -> None:
    config = APP.HpaAppConfig(
        produce_rate=4.0, consume_rate=30.0, queue_length=7.0, identity=APP.PodIdentity("pod-a", "ns")
    )
    text = _exposition(config, 2.5)
    assert 'hpa_app_queue_length{queue_name="hpa-app"} 7.0\n' in text
    assert 'hpa_app_produce_count_total{queue_name="hpa-app"} 10.0\n' in text
    assert 'hpa_app_consume_count_total{namespace="ns",pod="pod-a",queue_name="hpa-app"} 75.0\n' in text


def test_app_roles_export_their_own_metrics_and_timestamps_on_request() -> None:
    producer = _exposition(APP.HpaAppConfig(role=APP.Role.PRODUCER, queue_length=3.0, timestamps=True), 1.25)
    assert 'hpa_app_queue_length{queue_name="hpa-app"} 3.0 1700000001250\n' in producer
    assert "hpa_app_consume_count" not in producer
    consumer = _exposition(APP.HpaAppConfig(role=APP.Role.CONSUMER, consume_rate=2.0), 1.25)
    assert 'hpa_app_consume_count_total{queue_name="hpa-app"} 2.5\n' in consumer
    assert "hpa_app_queue_length" not in consumer and "hpa_app_produce_count" not in consumer


def test_app_rejects_negative_rates() -> None:
    with pytest.raises(ValueError, match="consume_rate"):
        APP.HpaAppConfig(consume_rate=-1.0)


def test_cli_consumer_needs_a_pod_identity_or_no_pod_labels(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        APP.main(["--role", "consumer", "--pod", "pod-a"])
    assert exit_info.value.code == 2
    assert "--no-pod-labels" in capsys.readouterr().err


def test_cli_help_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(HPA_APP), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--no-pod-labels" in result.stdout and "hpa_app_consume_count_total" in result.stdout
