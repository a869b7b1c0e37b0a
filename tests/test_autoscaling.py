"""Autoscaling from the contract: render adapter, hpa and keda, the translation strategies, and
what check and validate say about signals.

The acceptance: from contracts/hpa-app.yaml the renderers produce what the hand-written
configuration of the hpa-app walkthrough (tests/data/autoscaling/classic-*.yaml) does. Queries are
compared as PromQL (parsed by promql-parser, after expanding the adapter's templates the same way on
both sides), names by what the adapter's name rule makes of the series, and every manifest is
validated against the vendored Kubernetes autoscaling/v2 and KEDA schemas.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from otel_contract.autoscaling.signals import problems, quantity, quantity_value, resolve
from otel_contract.contract.model import MetricType
from otel_contract.loading import load_contract
from otel_contract.prometheus_names import TranslationStrategy, label_name, series_name
from otel_contract.render import ArtefactOptions, RenderError, artefact

from .conftest import CONTRACTS, REPO, TODAY, run_cli
from .k8s_schemas import validate_manifest
from .prometheus_server import hpa_app

HPA_APP = CONTRACTS / "hpa-app.yaml"
CLASSIC = REPO / "tests" / "data" / "autoscaling"
PODS = ["hpa-app-consumer-7d4b9-a", "hpa-app-consumer-7d4b9-b"]
NAMESPACE = "hpa-app"


def _render(name: str, contract: Path = HPA_APP, **options: str) -> str:
    compiled = load_contract(contract, today=TODAY)
    return artefact(name).render(compiled.contract, ArtefactOptions(today=TODAY, **options))


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


# --- the adapter's template expansion (docs/config.md: LabelMatchers, GroupBy) ------------------------


def label_matchers(matchers: Mapping[str, str | list[str]]) -> str:
    """``pod=~"a|b",namespace="ns"``: what the adapter puts in ``<<.LabelMatchers>>``."""
    parts = []
    for label, value in matchers.items():
        if isinstance(value, list):
            parts.append(f'{label}=~"{"|".join(value)}"')
        else:
            parts.append(f'{label}="{value}"')
    return ",".join(parts)


def expand(template: str, series: str, matchers: Mapping[str, str | list[str]], group_by: list[str]) -> str:
    """A metricsQuery as the adapter runs it for one request."""
    return (
        template.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", label_matchers(matchers))
        .replace("<<.GroupBy>>", ",".join(group_by))
    )


def exposed_name(rule: Mapping[str, Any], series: str) -> str | None:
    """What the adapter's ``name`` rule makes of a series name (matches defaults to .*, as to $0 or $1)."""
    name = rule.get("name", {})
    pattern = re.compile(name.get("matches", ".*"))
    match = pattern.search(series)
    if match is None:
        return None
    default = "$1" if pattern.groups == 1 else "$0"
    template = name.get("as", default)
    return re.sub(r"\$\{?(\d+)\}?", lambda m: match.group(int(m.group(1))), template)


def _series_name(selector: str) -> str:
    parsed: Any = promql_parser.parse(selector)  # a VectorSelector
    return str(parsed.name)


def same_promql(left: str, right: str) -> bool:
    return bool(promql_parser.parse(left).prettify() == promql_parser.parse(right).prettify())


def _request(rule: Mapping[str, Any], series: str) -> tuple[dict[str, str | list[str]], list[str]]:
    """The LabelMatchers and GroupBy of the request the HPA makes through ``rule``."""
    overrides = rule.get("resources", {}).get("overrides", {})
    if "pod" in overrides.values() or any(value.get("resource") == "pod" for value in overrides.values()):
        return {"pod": PODS, "namespace": NAMESPACE}, ["pod"]
    return {"queue_name": "hpa-app"}, []


# --- acceptance: the classic configuration ------------------------------------------------------------


def test_render_adapter_means_what_the_classic_config_says() -> None:
    rendered = yaml.safe_load(_render("adapter", translation_strategy="NoTranslation", adapter_format="config"))
    classic = yaml.safe_load((CLASSIC / "classic-adapter.yaml").read_text())
    assert set(rendered) == {"rules", "externalRules"}
    for section in ("rules", "externalRules"):
        assert len(rendered[section]) == len(classic[section]) == 1
        ours, theirs = rendered[section][0], classic[section][0]
        assert same_promql(ours["seriesQuery"], theirs["seriesQuery"]), (ours["seriesQuery"], theirs["seriesQuery"])
        assert ours["resources"] == theirs["resources"]
        series = _series_name(ours["seriesQuery"])
        assert exposed_name(ours, series) == exposed_name(theirs, series)
        matchers, group_by = _request(ours, series)
        assert same_promql(
            expand(ours["metricsQuery"], series, matchers, group_by),
            expand(theirs["metricsQuery"], series, matchers, group_by),
        )
    assert exposed_name(rendered["rules"][0], "hpa_app_consume_count") == "hpa_app_consume_per_second"
    assert exposed_name(rendered["externalRules"][0], "hpa_app_queue_length") == "hpa_app_queue_length"


def test_render_hpa_is_the_classic_hpa() -> None:
    (rendered,) = _documents(_render("hpa"))
    classic = yaml.safe_load((CLASSIC / "classic-hpa.yaml").read_text())
    assert validate_manifest(rendered) == []
    assert validate_manifest(classic) == []
    spec = copy.deepcopy(rendered["spec"])
    # 300 s is the HPA's default scale-down stabilization window: the contract spells out what the
    # classic HPA gets by default.
    assert spec.pop("behavior") == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    by_type = sorted(spec.pop("metrics"), key=lambda metric: metric["type"])
    expected = copy.deepcopy(classic["spec"])
    expected_metrics = sorted(expected.pop("metrics"), key=lambda metric: metric["type"])
    assert spec == expected
    for ours, theirs in zip(by_type, expected_metrics, strict=True):
        source = ours["type"][0].lower() + ours["type"][1:]
        target, classic_target = ours[source].pop("target"), theirs[source].pop("target")
        assert ours == theirs
        assert target["type"] == classic_target["type"]
        field = "averageValue" if target["type"] == "AverageValue" else "value"
        assert quantity_value(target[field]) == quantity_value(classic_target[field])
    assert rendered["metadata"]["name"] == classic["metadata"]["name"]
    assert rendered["metadata"]["annotations"] == {"otel-contract/contract": "hpa-app@2.0.0"}


def test_render_hpa_names_follow_the_translation_strategy_like_the_adapter() -> None:
    for strategy in TranslationStrategy:
        if strategy is TranslationStrategy.NO_UTF8_ESCAPING_WITH_SUFFIXES:
            continue
        adapter = yaml.safe_load(_render("adapter", translation_strategy=strategy.value, adapter_format="config"))
        (hpa,) = _documents(_render("hpa", translation_strategy=strategy.value))
        exposed = {
            exposed_name(rule, _series_name(rule["seriesQuery"]))
            for rule in adapter["rules"] + adapter["externalRules"]
        }
        asked = {
            metric[metric["type"][0].lower() + metric["type"][1:]]["metric"]["name"]
            for metric in hpa["spec"]["metrics"]
        }
        assert asked == exposed == {"hpa_app_consume_per_second", "hpa_app_queue_length"}


def test_render_adapter_helm_values_by_default() -> None:
    text = _render("adapter")
    assert text.startswith("# Generated by otel-contract from contract hpa-app@2.0.0. Do not edit by hand:")
    values = yaml.safe_load(text)
    assert values["rules"]["default"] is False
    (pods,) = values["rules"]["custom"]
    (queue,) = values["rules"]["external"]
    # UnderscoreEscapingWithSuffixes: the counter is the _total series prometheus-client exposes.
    assert pods["seriesQuery"] == 'hpa_app_consume_count_total{namespace!="",pod!=""}'
    assert pods["metricsQuery"] == "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[30s]))"
    assert pods["resources"] == {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}}
    assert pods["name"] == {"matches": "^hpa_app_consume_count_total$", "as": "hpa_app_consume_per_second"}
    assert queue == {
        "seriesQuery": 'hpa_app_queue_length{queue_name!=""}',
        "resources": {"namespaced": False},
        "name": {"matches": "^hpa_app_queue_length$", "as": "hpa_app_queue_length"},
        "metricsQuery": "sum by (queue_name) (<<.Series>>{<<.LabelMatchers>>})",
    }


def test_render_keda_scaled_object_is_valid_and_queries_one_value_per_signal() -> None:
    (scaled,) = _documents(_render("keda", namespace=NAMESPACE, prometheus_url="http://127.0.0.1:9090"))
    assert validate_manifest(scaled) == []
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 6)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hpa-app-consumer"}
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300
    }
    queue, consume = spec["triggers"]
    assert queue["metricType"] == "Value" and queue["metadata"]["threshold"] == "100"
    assert same_promql(queue["metadata"]["query"], 'sum(hpa_app_queue_length{queue_name="hpa-app"})')
    # A Pods target averages per Pod; KEDA's AverageValue divides the workload's sum by the replicas.
    assert consume["metricType"] == "AverageValue" and consume["metadata"]["threshold"] == "70"
    assert same_promql(
        consume["metadata"]["query"],
        'sum(rate(hpa_app_consume_count_total{namespace="hpa-app",pod=~"hpa-app-consumer-.*"}[30s]))',
    )
    assert {trigger["metadata"]["serverAddress"] for trigger in spec["triggers"]} == {"http://127.0.0.1:9090"}


def test_renders_are_deterministic_and_written_by_the_cli(tmp_path: Path) -> None:
    for name, extra in (("adapter", []), ("hpa", []), ("keda", ["--namespace", NAMESPACE])):
        out = tmp_path / f"{name}.yaml"
        result = run_cli("render", name, "-c", str(HPA_APP), "-o", str(out), *extra)
        assert result.returncode == 0, result.stderr
        again = run_cli("render", name, "-c", str(HPA_APP), *extra)
        assert again.stdout == out.read_text(encoding="utf-8")
        for doc in _documents(out.read_text(encoding="utf-8")):
            if "kind" in doc:
                assert validate_manifest(doc) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "hpa", "--format", "config"], "--format does not apply to render hpa"),
        (["render", "adapter", "--namespace", "x"], "--namespace does not apply to render adapter"),
        (["render", "adapter", "--format", "yaml"], "unknown adapter format 'yaml'"),
        (["render", "hpa", "--translation-strategy", "Legacy"], "unknown translation strategy 'Legacy'"),
        (["render", "hpa", "--namespace", "Bad_NS"], "not a Kubernetes namespace name"),
        (["render", "keda"], "needs --namespace"),
        (["render", "keda", "--namespace", "q", "--prometheus-url", "prom:9090"], "is not an http(s) URL"),
    ],
)
def test_render_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args, "-c", str(HPA_APP))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


# --- signals beyond hpa-app ---------------------------------------------------------------------------

_QUEUE_CONTRACT = """
contract: worker
version: 1.0.0
resource:
  required: [k8s.pod.name, k8s.namespace.name]
metrics:
  - name: jobs.waiting
    type: gauge
    unit: '{job}'
    attributes: {required: [queue.name, namespace]}
  - name: jobs.done
    type: sum
    unit: '{job}'
  - name: ingress.requests
    type: sum
    unit: '{request}'
    attributes: {required: [ingress, namespace]}
autoscaling:
  - metric: jobs.waiting
    kind: external
    resources: {namespace: namespace}
    selector: {queue.name: emails}
    target: {type: AverageValue, value: 0.5}
    scale_target: {name: worker, kind: StatefulSet}
    max_replicas: 20
  - metric: jobs.done
    kind: pods
    smoothing: {ewma: {alpha: 0.3}, interval: 30s}
    target: {type: AverageValue, value: 1k}
    scale_target: {name: worker, kind: StatefulSet}
    max_replicas: 20
  - metric: ingress.requests
    kind: object
    rate_window: 2m
    described_object: {kind: Ingress, name: main-route, api_version: networking.k8s.io/v1}
    target: {type: Value, value: 2000}
    scale_target: {name: web}
    min_replicas: 3
    max_replicas: 9
"""


@pytest.fixture
def worker_contract(tmp_path: Path) -> Path:
    path = tmp_path / "worker.yaml"
    path.write_text(_QUEUE_CONTRACT, encoding="utf-8")
    return path


def test_resource_attributes_and_dots_become_escaped_labels(worker_contract: Path) -> None:
    config = yaml.safe_load(_render("adapter", worker_contract, adapter_format="config"))
    smoothed, ingress = config["rules"]
    (waiting,) = config["externalRules"]
    # The pods signal falls back on the resource's k8s.pod.name/k8s.namespace.name, escaped to labels.
    assert smoothed["resources"] == {
        "overrides": {"k8s_namespace_name": {"resource": "namespace"}, "k8s_pod_name": {"resource": "pod"}}
    }
    # Smoothed: the sidecar's series is already a per-second rate, so no rate() and no rate_window.
    assert smoothed["seriesQuery"].startswith("jobs_done_smoothed_per_second{")
    assert smoothed["metricsQuery"] == "sum by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})"
    assert smoothed["name"]["as"] == "jobs_done_per_second"
    assert ingress["resources"] == {
        "overrides": {"namespace": {"resource": "namespace"}, "ingress": {"resource": "ingress"}}
    }
    assert "[2m]" in ingress["metricsQuery"]
    # An external signal with a namespace attribute stays namespaced: the adapter adds the HPA's namespace.
    assert waiting["resources"] == {"overrides": {"namespace": {"resource": "namespace"}}}
    assert waiting["metricsQuery"] == "sum by (queue_name) (<<.Series>>{<<.LabelMatchers>>})"
    assert waiting["seriesQuery"] == 'jobs_waiting{namespace!="",queue_name!=""}'


def test_hpa_and_keda_for_several_targets_and_source_types(worker_contract: Path) -> None:
    hpas = _documents(_render("hpa", worker_contract, namespace="jobs"))
    assert [doc["metadata"]["name"] for doc in hpas] == ["worker", "web"]
    for doc in hpas:
        assert validate_manifest(doc) == [], doc
    worker, web = hpas
    assert worker["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert "minReplicas" not in worker["spec"]
    external, pods = worker["spec"]["metrics"]
    assert external["external"]["metric"]["selector"] == {"matchLabels": {"queue_name": "emails"}}
    assert external["external"]["target"] == {"type": "AverageValue", "averageValue": "500m"}
    assert pods["pods"]["target"] == {"type": "AverageValue", "averageValue": "1k"}
    (ingress,) = web["spec"]["metrics"]
    assert ingress["object"]["describedObject"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": "main-route",
    }
    scaled = _documents(_render("keda", worker_contract, namespace="jobs"))
    for doc in scaled:
        assert validate_manifest(doc) == [], doc
    waiting, done = scaled[0]["spec"]["triggers"]
    assert waiting["metadata"]["threshold"] == "0.5"
    assert same_promql(waiting["metadata"]["query"], 'sum(jobs_waiting{namespace="jobs",queue_name="emails"})')
    assert same_promql(
        done["metadata"]["query"],
        'sum(jobs_done_smoothed_per_second{k8s_namespace_name="jobs",k8s_pod_name=~"worker-.*"})',
    )
    (route,) = scaled[1]["spec"]["triggers"]
    assert same_promql(
        route["metadata"]["query"], 'sum(rate(ingress_requests_total{namespace="jobs",ingress="main-route"}[2m]))'
    )


def test_utf8_names_cannot_go_into_adapter_templates(worker_contract: Path) -> None:
    with pytest.raises(RenderError, match="not a classic Prometheus name"):
        _render("adapter", worker_contract, translation_strategy="NoUTF8EscapingWithSuffixes")


def test_no_signals_renders_a_comment_and_nothing_to_apply() -> None:
    text = _render("hpa", CONTRACTS / "ecommerce.yaml")
    assert "The contract has no autoscaling: signals" in text
    assert _documents(text) == []
    values = yaml.safe_load(_render("adapter", CONTRACTS / "ecommerce.yaml"))
    assert values == {"rules": {"default": False, "custom": [], "external": []}}


# --- names, quantities and problems -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "metric_type", "unit", "counter", "expected"),
    [
        ("hpa_app_consume_count", MetricType.SUM, "{message}", True, ["hpa_app_consume_count_total"] * 2),
        (
            "http.server.duration",
            MetricType.HISTOGRAM,
            "s",
            False,
            ["http_server_duration_seconds", "http.server.duration_seconds"],
        ),
        ("http_requests_total", MetricType.SUM, "{request}", True, ["http_requests_total"] * 2),
        ("cpu.usage", MetricType.GAUGE, "1", False, ["cpu_usage_ratio", "cpu.usage_ratio"]),
        ("queue.drain", MetricType.GAUGE, "{message}/s", False, ["queue_drain_per_second", "queue.drain_per_second"]),
        ("disk.io", MetricType.SUM, "By", True, ["disk_io_bytes_total", "disk.io_bytes_total"]),
    ],
)
def test_translation_with_suffixes(
    name: str, metric_type: MetricType, unit: str, counter: bool, expected: list[str]
) -> None:
    strategies = (
        TranslationStrategy.UNDERSCORE_ESCAPING_WITH_SUFFIXES,
        TranslationStrategy.NO_UTF8_ESCAPING_WITH_SUFFIXES,
    )
    assert [series_name(name, metric_type, unit, counter=counter, strategy=s) for s in strategies] == expected
    assert series_name(name, metric_type, unit, counter=counter, strategy=TranslationStrategy.NO_TRANSLATION) == name
    assert label_name("k8s.pod.name") == "k8s_pod_name"
    assert label_name("k8s.pod.name", TranslationStrategy.NO_TRANSLATION) == "k8s.pod.name"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(70, "70"), (70.0, "70"), (0.5, "500m"), (1.25, "1250m"), ("1k", "1k"), ("2Mi", "2Mi"), ("500m", "500m")],
)
def test_quantities(value: float | str, expected: str) -> None:
    assert quantity(value) == expected


@pytest.mark.parametrize("value", [0.0001, -1, float("nan"), "1kk", "ten"])
def test_values_that_are_no_quantity(value: float | str) -> None:
    with pytest.raises(ValueError):
        quantity(value)


def test_quantity_values_for_keda() -> None:
    assert [quantity_value(v) for v in (70, "500m", "1k", "2Ki")] == [70.0, 0.5, 1000.0, 2048.0]


def test_the_hpa_app_signals_resolve_to_the_prometheus_series() -> None:
    contract = load_contract(HPA_APP, today=TODAY).contract
    queue, consume = (resolve(contract, signal) for signal in contract.autoscaling)
    assert (queue.series, queue.api_name, queue.needs_rate, dict(queue.resources)) == (
        "hpa_app_queue_length",
        "hpa_app_queue_length",
        False,
        {},
    )
    assert (consume.series, consume.api_name, consume.needs_rate, dict(consume.resources)) == (
        "hpa_app_consume_count_total",
        "hpa_app_consume_per_second",
        True,
        {"namespace": "namespace", "pod": "pod"},
    )
    assert all(problems(contract, signal) == [] for signal in contract.autoscaling)


def test_check_rejects_a_pods_signal_without_pod_labels(tmp_path: Path) -> None:
    text = (
        HPA_APP.read_text(encoding="utf-8")
        .replace("required: [queue_name, pod, namespace]", "required: [queue_name]")
        .replace("include: [base/org.yaml]", "")
    )
    path = tmp_path / "hpa-app.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("check", str(path), "--today", date(2026, 11, 22).isoformat())
    assert result.returncode == 1
    assert (
        "error[autoscaling-signal] autoscaling[1].resources: the pods signal on hpa_app_consume_count needs an"
        in result.stdout
    )
    assert "'namespace' or 'k8s.namespace.name'" in result.stdout and "'pod' or 'k8s.pod.name'" in result.stdout


# --- validate on a /metrics URL -----------------------------------------------------------------------


def _serve_consumer(identity: Any) -> Any:
    app = hpa_app()
    config = app.HpaAppConfig(role=app.Role.CONSUMER, consume_rate=10.0, identity=identity)
    return app.serve(app.HpaApp(config))


def test_validate_on_a_url_flags_the_pods_signal_whose_series_lack_pod_and_namespace() -> None:
    serving = _serve_consumer(None)  # the bug: the app exports no pod/namespace labels
    try:
        result = run_cli("validate", "-c", str(HPA_APP), serving.url, "--format", "json")
    finally:
        serving.stop()
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    missing = {f["attribute"]: f for f in findings if f["rule"] == "missing-attribute"}
    # The Prometheus name hpa_app_consume_count_total is read back to the contract's hpa_app_consume_count.
    assert set(missing) == {"pod", "namespace"}
    for attribute, finding in missing.items():
        assert finding["metric"] == "hpa_app_consume_count"
        assert (
            f"the pods signal hpa_app_consume_per_second maps it to the {attribute}: without it the HPA shows"
            " <unknown>" in finding["message"]
        )
    assert not [f for f in findings if f["rule"] == "unknown-metric"]


def test_validate_on_a_url_accepts_the_consumer_with_its_pod_labels() -> None:
    app = hpa_app()
    serving = _serve_consumer(app.PodIdentity(pod="hpa-app-consumer-1", namespace="hpa-app"))
    try:
        result = run_cli("validate", "-c", str(HPA_APP), serving.url, "--format", "json")
    finally:
        serving.stop()
    findings = json.loads(result.stdout)["findings"]
    assert not [f for f in findings if f["metric"] == "hpa_app_consume_count"], findings
