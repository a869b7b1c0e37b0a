"""The rendered autoscaling queries against a real Prometheus scraping the hpa-app.

Debian's Prometheus (installed by pipelines/ci/install-promtool.sh) scrapes two consumers and a
producer of examples/hpa-app/app.py on 127.0.0.1. Each rule of ``render adapter`` is run the way
prometheus-adapter runs it: its ``seriesQuery`` discovers the series, and its ``metricsQuery`` is
expanded with the template fields of an HPA's request (the two consumer Pods' names and namespace
for the Pods metric, the HPA's selector for the External one). KEDA's queries run as rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONTRACTS, run_cli
from tests.prometheus_server import Sample, hpa_app, prometheus_binary_fixture, run_prometheus  # noqa: F401
from tests.test_autoscaling import expand, exposed_name

APP = hpa_app()
NAMESPACE = "hpa-app"
CONSUMERS = {"hpa-app-consumer-7f9c-a": 30.0, "hpa-app-consumer-7f9c-b": 50.0}
QUEUE_LENGTH = 120.0


@pytest.fixture
def hpa_app_targets() -> Iterator[list[str]]:
    """Two consumers and a producer, serving on ephemeral ports; their samples carry timestamps, so
    rate() over them is exact up to float error (see tests/test_prometheus_server.py)."""
    apps = [
        APP.HpaApp(
            APP.HpaAppConfig(
                role=APP.Role.CONSUMER,
                consume_rate=rate,
                identity=APP.PodIdentity(pod=pod, namespace=NAMESPACE),
                timestamps=True,
            )
        )
        for pod, rate in CONSUMERS.items()
    ]
    apps.append(
        APP.HpaApp(
            APP.HpaAppConfig(role=APP.Role.PRODUCER, produce_rate=80.0, queue_length=QUEUE_LENGTH, timestamps=True)
        )
    )
    serving = [APP.serve(app) for app in apps]
    try:
        yield [item.target for item in serving]
    finally:
        for item in serving:
            item.stop()


def _render(*args: str) -> str:
    result = run_cli("render", *args, "-c", str(CONTRACTS / "hpa-app.yaml"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def _count(count: int) -> Callable[[list[Sample]], bool]:
    return lambda result: len(result) == count


def test_rendered_adapter_and_keda_queries_return_the_per_pod_rate_and_the_queue_length(
    prometheus_binary: str, tmp_path: Path, hpa_app_targets: list[str]
) -> None:
    config = yaml.safe_load(_render("adapter", "--format", "config"))
    (pods_rule,) = config["rules"]
    (queue_rule,) = config["externalRules"]
    (hpa,) = [doc for doc in yaml.safe_load_all(_render("hpa")) if doc]
    selector = next(
        m["external"]["metric"]["selector"]["matchLabels"] for m in hpa["spec"]["metrics"] if m["type"] == "External"
    )
    (scaled,) = [doc for doc in yaml.safe_load_all(_render("keda", "--namespace", NAMESPACE)) if doc]
    keda: dict[str, Any] = {
        trigger["metricType"]: trigger["metadata"]["query"] for trigger in scaled["spec"]["triggers"]
    }

    with run_prometheus(hpa_app_targets, tmp_path, binary=prometheus_binary) as prometheus:
        prometheus.wait_for_scrapes(1)
        # Discovery: each seriesQuery finds the series, and its name rule exposes what the HPA asks for.
        consumed = prometheus.wait_for(pods_rule["seriesQuery"], _count(2), timeout=30)
        series = consumed[0][0]["__name__"]
        assert exposed_name(pods_rule, series) == "hpa_app_consume_per_second"
        (queue_series,) = prometheus.query(queue_rule["seriesQuery"])
        assert exposed_name(queue_rule, queue_series[0]["__name__"]) == "hpa_app_queue_length"

        # rate() over 30 s is exact once a sample lies at the window's start: wait for 30 s of history.
        prometheus.wait_for(f"{series} offset 30s", _count(2), timeout=90)

        pods_query = expand(
            pods_rule["metricsQuery"], series, {"pod": list(CONSUMERS), "namespace": NAMESPACE}, ["pod"]
        )
        per_pod = {labels["pod"]: value for labels, value in prometheus.query(pods_query)}
        assert per_pod == pytest.approx(CONSUMERS, rel=1e-9)

        # One Pod only, as the adapter asks when the HPA has one replica: only that Pod's rate.
        (only,) = prometheus.query(
            expand(
                pods_rule["metricsQuery"], series, {"pod": ["hpa-app-consumer-7f9c-a"], "namespace": NAMESPACE}, ["pod"]
            )
        )
        assert only[0] == {"pod": "hpa-app-consumer-7f9c-a"} and only[1] == pytest.approx(30.0, rel=1e-9)

        queue_query = expand(queue_rule["metricsQuery"], queue_series[0]["__name__"], selector, [])
        assert prometheus.query(queue_query) == [({"queue_name": "hpa-app"}, QUEUE_LENGTH)]
        # A selector for another queue matches nothing: the HPA would see no value, not a wrong one.
        assert (
            prometheus.query(expand(queue_rule["metricsQuery"], "hpa_app_queue_length", {"queue_name": "other"}, []))
            == []
        )

        # KEDA: the workload's total consume rate (AverageValue divides it by the replicas) and the queue.
        ((_, total),) = prometheus.query(keda["AverageValue"])
        assert total == pytest.approx(sum(CONSUMERS.values()), rel=1e-9)
        assert prometheus.query(keda["Value"]) == [({}, QUEUE_LENGTH)]
