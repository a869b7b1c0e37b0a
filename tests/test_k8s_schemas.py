"""The strict Kubernetes manifest validator accepts real-world HPA/KEDA documents and names the path of every fault."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from tests.k8s_schemas import HPA_OPENAPI, KEDA_CRD, validate_hpa, validate_manifest, validate_scaled_object

# The Kubernetes HPA walkthrough's multi-metric example, with a behavior block as in its "configurable scaling" section.
HPA_YAML = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: php-apache
  namespace: default
  labels:
    app.kubernetes.io/name: php-apache
  annotations:
    otel-contract.io/source: contracts/checkout.yaml
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: php-apache
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
  - type: Pods
    pods:
      metric:
        name: packets-per-second
      target:
        type: AverageValue
        averageValue: 1k
  - type: Object
    object:
      metric:
        name: requests-per-second
      describedObject:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        name: main-route
      target:
        type: Value
        value: 10k
  - type: External
    external:
      metric:
        name: queue_messages_ready
        selector:
          matchLabels:
            queue: worker_tasks
      target:
        type: Value
        value: 30
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
      - type: Percent
        value: 100
        periodSeconds: 15
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
      - type: Percent
        value: 100
        periodSeconds: 15
      - type: Pods
        value: 4
        periodSeconds: 15
      selectPolicy: Max
"""

SCALED_OBJECT_YAML = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: checkout
  namespace: shop
  labels:
    app.kubernetes.io/managed-by: otel-contract
spec:
  scaleTargetRef:
    name: checkout
  pollingInterval: 30
  cooldownPeriod: 300
  minReplicaCount: 1
  maxReplicaCount: 20
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 300
          policies:
          - type: Percent
            value: 50
            periodSeconds: 60
  triggers:
  - type: prometheus
    metricType: AverageValue
    metadata:
      serverAddress: http://prometheus.monitoring.svc:9090
      query: sum(rate(http_server_request_duration_seconds_count{service="checkout"}[2m]))
      threshold: "100"
"""

Mutation = Callable[[dict[str, Any]], None]


def _hpa() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(HPA_YAML)
    return doc


def _scaled_object() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SCALED_OBJECT_YAML)
    return doc


def _mutated(base: dict[str, Any], mutate: Mutation) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    mutate(doc)
    return doc


def test_docs_hpa_with_pods_external_and_behavior_is_valid() -> None:
    doc = _hpa()
    assert doc["spec"]["metrics"][1]["pods"]["target"]["averageValue"] == "1k"  # YAML kept the quantity a string
    assert validate_hpa(doc) == []
    assert validate_manifest(doc) == []


def test_keda_prometheus_scaled_object_is_valid() -> None:
    doc = _scaled_object()
    assert validate_scaled_object(doc) == []
    assert validate_manifest(doc) == []


def test_any_mapping_is_accepted_not_only_dict() -> None:
    doc = _hpa()
    doc["metadata"] = MappingProxyType(doc["metadata"])
    assert validate_hpa(MappingProxyType(doc)) == []


HPA_REJECTIONS: list[tuple[str, Mutation, str]] = [
    (
        "unknown-field",
        lambda d: d["spec"]["metrics"][1]["pods"]["target"].update(averagevalue="1k"),
        "spec.metrics[1].pods.target: 'averagevalue' is not a known field",
    ),
    (
        "unknown-top-level-field",
        lambda d: d.update(specs={}),
        "(root): 'specs' is not a known field",
    ),
    (
        "unknown-metadata-field",
        lambda d: d["metadata"].update(label={"a": "b"}),
        "metadata: 'label' is not a known field",
    ),
    (
        "wrong-type",
        lambda d: d["spec"].update(maxReplicas="10"),
        "spec.maxReplicas: '10' is not of type 'integer'",
    ),
    (
        "label-value-not-string",
        lambda d: d["metadata"]["labels"].update({"app.kubernetes.io/version": 2}),
        "metadata.labels['app.kubernetes.io/version']: 2 is not of type 'string'",
    ),
    (
        "int32-overflow",
        lambda d: d["spec"].update(maxReplicas=2**31),
        "spec.maxReplicas: 2147483648 is greater than the maximum of 2147483647",
    ),
    (
        "missing-required",
        lambda d: d["spec"]["scaleTargetRef"].pop("name"),
        "spec.scaleTargetRef: 'name' is a required property",
    ),
    (
        "missing-max-replicas",
        lambda d: d["spec"].pop("maxReplicas"),
        "spec: 'maxReplicas' is a required property",
    ),
    (
        "invalid-target-type",
        lambda d: d["spec"]["metrics"][0]["resource"]["target"].update(type="Average"),
        "spec.metrics[0].resource.target.type: 'Average' is not one of ['Utilization', 'Value', 'AverageValue']",
    ),
    (
        "invalid-metric-source-type",
        lambda d: d["spec"]["metrics"][1].update(type="Pod"),
        "spec.metrics[1].type: 'Pod' is not one of ['ContainerResource', 'External', 'Object', 'Pods', 'Resource']",
    ),
    (
        "source-member-missing",
        lambda d: d["spec"]["metrics"][3].pop("external"),
        "spec.metrics[3]: 'external' is a required property",
    ),
    (
        "invalid-policy-type",
        lambda d: d["spec"]["behavior"]["scaleDown"]["policies"][0].update(type="Percentage"),
        "spec.behavior.scaleDown.policies[0].type: 'Percentage' is not one of ['Pods', 'Percent']",
    ),
    (
        "bad-quantity",
        lambda d: d["spec"]["metrics"][1]["pods"]["target"].update(averageValue="1kk"),
        "spec.metrics[1].pods.target.averageValue: '1kk' is not a 'k8s-quantity'",
    ),
    (
        "wrong-api-version",
        lambda d: d.update(apiVersion="autoscaling/v1"),
        "apiVersion: 'autoscaling/v2' was expected",
    ),
    (
        "wrong-kind",
        lambda d: d.update(kind="ScaledObject"),
        "kind: 'HorizontalPodAutoscaler' was expected",
    ),
    (
        "missing-name",
        lambda d: d["metadata"].pop("name"),
        "metadata: 'name' is a required property",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in HPA_REJECTIONS], ids=[c[0] for c in HPA_REJECTIONS])
def test_hpa_rejections_name_the_path(mutate: Mutation, expected: str) -> None:
    errors = validate_hpa(_mutated(_hpa(), mutate))
    assert expected in errors, errors


SCALED_OBJECT_REJECTIONS: list[tuple[str, Mutation, str]] = [
    (
        "trigger-without-type",
        lambda d: d["spec"]["triggers"][0].pop("type"),
        "spec.triggers[0]: 'type' is a required property",
    ),
    (
        "trigger-without-metadata",
        lambda d: d["spec"]["triggers"][0].pop("metadata"),
        "spec.triggers[0]: 'metadata' is a required property",
    ),
    (
        "threshold-not-a-string",
        lambda d: d["spec"]["triggers"][0]["metadata"].update(threshold=100),
        "spec.triggers[0].metadata.threshold: 100 is not of type 'string'",
    ),
    (
        "invalid-metric-type",
        lambda d: d["spec"]["triggers"][0].update(metricType="Average"),
        "spec.triggers[0].metricType: 'Average' is not one of ['Utilization', 'Value', 'AverageValue']",
    ),
    (
        "unknown-spec-field",
        lambda d: d["spec"].update(maxReplicas=20),
        "spec: 'maxReplicas' is not a known field",
    ),
    (
        "unknown-behavior-field",
        lambda d: d["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"].update(scaledown={}),
        "spec.advanced.horizontalPodAutoscalerConfig.behavior: 'scaledown' is not a known field",
    ),
    (
        "scale-target-without-name",
        lambda d: d["spec"]["scaleTargetRef"].pop("name"),
        "spec.scaleTargetRef: 'name' is a required property",
    ),
    (
        "wrong-type",
        lambda d: d["spec"].update(maxReplicaCount="20"),
        "spec.maxReplicaCount: '20' is not of type 'integer'",
    ),
    (
        "metadata-is-object-meta",
        lambda d: d["metadata"].update(labels=["a"]),
        "metadata.labels: ['a'] is not of type 'object'",
    ),
    (
        "wrong-api-version",
        lambda d: d.update(apiVersion="keda.sh/v1"),
        "apiVersion: 'keda.sh/v1alpha1' was expected",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [c[1:] for c in SCALED_OBJECT_REJECTIONS], ids=[c[0] for c in SCALED_OBJECT_REJECTIONS]
)
def test_scaled_object_rejections_name_the_path(mutate: Mutation, expected: str) -> None:
    errors = validate_scaled_object(_mutated(_scaled_object(), mutate))
    assert expected in errors, errors


@pytest.mark.parametrize("quantity", ["1k", "500m", "1.5Gi", "+1e3", "0.5", ".5", "10", "1E", 30, 0.25])
def test_quantity_accepts_grammar_strings_and_numbers(quantity: object) -> None:
    doc = _mutated(_hpa(), lambda d: d["spec"]["metrics"][3]["external"]["target"].update(value=quantity))
    assert validate_hpa(doc) == []


@pytest.mark.parametrize("quantity", ["1kk", "k", "1.5.5", "1 k", "", "1Ki2", "1e", True])
def test_quantity_rejects_everything_else(quantity: object) -> None:
    doc = _mutated(_hpa(), lambda d: d["spec"]["metrics"][3]["external"]["target"].update(value=quantity))
    errors = validate_hpa(doc)
    assert [e for e in errors if e.startswith("spec.metrics[3].external.target.value: ")] == errors, errors
    assert len(errors) == 1


def test_every_fault_is_reported_not_just_the_first() -> None:
    doc = _mutated(_hpa(), lambda d: d["spec"].update(maxReplicas="10", minReplicas="1"))
    assert validate_hpa(doc) == [
        "spec.maxReplicas: '10' is not of type 'integer'",
        "spec.minReplicas: '1' is not of type 'integer'",
    ]


def test_manifest_dispatch_rejects_unknown_kinds() -> None:
    assert validate_manifest({"apiVersion": "apps/v1", "kind": "Deployment"}) == [
        "(root): unsupported apiVersion/kind 'apps/v1'/'Deployment' "
        "(known: autoscaling/v2 HorizontalPodAutoscaler, keda.sh/v1alpha1 ScaledObject)"
    ]
    # Right kind, wrong group version: not silently validated as something else.
    assert validate_manifest({**_hpa(), "apiVersion": "autoscaling/v2beta2"})[0].startswith(
        "(root): unsupported apiVersion/kind 'autoscaling/v2beta2'/'HorizontalPodAutoscaler'"
    )
    assert validate_manifest([]) == ["(root): a manifest must be a mapping, not list"]  # type: ignore[arg-type]


def test_dispatch_uses_the_matching_schema() -> None:
    hpa_fault = _mutated(_hpa(), lambda d: d["spec"].update(maxReplicas="10"))
    keda_fault = _mutated(_scaled_object(), lambda d: d["spec"]["triggers"][0].pop("type"))
    assert validate_manifest(hpa_fault) == validate_hpa(hpa_fault) != []
    assert validate_manifest(keda_fault) == validate_scaled_object(keda_fault) != []


def test_vendored_openapi_is_exactly_the_closure_of_the_hpa_definition() -> None:
    schemas: dict[str, Any] = json.loads(HPA_OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    prefix = "#/components/schemas/"

    def refs(node: object) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"].removeprefix(prefix)} if "$ref" in node else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    reachable, todo = set(), ["io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"]
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo.extend(refs(schemas[name]))  # a KeyError here is a dangling $ref
    assert reachable == set(schemas)
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [
        {"type": "string"},
        {"type": "number"},
    ]


def test_vendored_crd_serves_scaled_object_v1alpha1() -> None:
    crd = yaml.safe_load(KEDA_CRD.read_text(encoding="utf-8"))
    assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == ("keda.sh", "ScaledObject")
    trigger = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["triggers"]
    assert sorted(trigger["items"]["required"]) == ["metadata", "type"]
