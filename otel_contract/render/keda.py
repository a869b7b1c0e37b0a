"""``render keda``: KEDA ScaledObjects with a Prometheus trigger per autoscaling signal.

KEDA queries Prometheus itself, so no adapter rule is needed. One ScaledObject per scale target
(KEDA creates and owns its HPA), one ``prometheus`` trigger per signal, whose query returns one
value:

* a ``pods`` signal sums the series over the workload's Pods in ``--namespace`` (those whose name
  starts with the scale target's name and a dash, as a Deployment's and a StatefulSet's Pods are
  named) with ``metricType: AverageValue``: the HPA divides by the replica count, which is the
  per-Pod average a ``Pods`` metric targets;
* an ``external`` signal sums the series matching its selector (``metricType`` as its target);
* an ``object`` signal sums the series of the described object in ``--namespace``.
"""

from __future__ import annotations

import re
from typing import Any

from otel_contract.autoscaling.signals import ResolvedSignal, quantity_value
from otel_contract.contract.model import Contract, SignalKind
from otel_contract.render import ArtefactOptions, RenderError
from otel_contract.render._autoscaling import (
    Workload,
    check_namespace,
    check_object_name,
    documents,
    matchers,
    metadata,
    plain,
    resolved_signals,
    value_query,
    workloads,
)

DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"


def render(contract: Contract, options: ArtefactOptions) -> str:
    check_namespace(options.namespace)
    server = options.prometheus_url or DEFAULT_PROMETHEUS_URL
    if not re.match(r"^https?://[^\s/]+", server):
        raise RenderError(f"--prometheus-url {server!r} is not an http(s) URL")
    signals = resolved_signals(contract, options)
    docs = [scaled_object(contract, workload, options.namespace, server) for workload in workloads(signals)]
    return documents(
        contract, "render keda", docs, "The contract has no autoscaling: signals, so there is no ScaledObject."
    )


def scaled_object(contract: Contract, workload: Workload, namespace: str | None, server: str) -> dict[str, Any]:
    check_object_name(workload.name, "scale target")
    spec: dict[str, Any] = {"scaleTargetRef": workload.target_ref()}
    if workload.min_replicas is not None:
        spec["minReplicaCount"] = workload.min_replicas
    spec["maxReplicaCount"] = workload.max_replicas
    if workload.behavior:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": plain(workload.behavior)}}
    spec["triggers"] = [trigger(signal, workload, namespace, server) for signal in workload.signals]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(contract, workload.name, namespace),
        "spec": spec,
    }


def trigger(signal: ResolvedSignal, workload: Workload, namespace: str | None, server: str) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": signal.api_name.replace("_", "-"),
        "metricType": "AverageValue" if signal.kind is SignalKind.PODS else signal.signal.target_type,
        "metadata": {
            "serverAddress": server,
            "query": query(signal, workload, namespace),
            "threshold": _number(quantity_value(signal.signal.target_value)),
        },
    }


def query(signal: ResolvedSignal, workload: Workload, namespace: str | None) -> str:
    """The PromQL a trigger runs: one value for the whole workload."""
    equal: dict[str, str] = {}
    regex: dict[str, str] = {}
    labels = signal.resources
    if signal.kind is not SignalKind.EXTERNAL:
        if namespace is None:
            raise RenderError(
                f"the {signal.kind.value} signal {signal.api_name} needs --namespace: its query must select"
                f" {workload.name}'s {'Pods' if signal.kind is SignalKind.PODS else 'object'} in their namespace"
            )
        equal[labels["namespace"]] = namespace
    elif namespace is not None and "namespace" in labels:
        equal[labels["namespace"]] = namespace
    if signal.kind is SignalKind.PODS:
        regex[labels["pod"]] = workload.name.replace(".", "\\.") + "-.*"  # names hold [a-z0-9.-]; only . is special
    described = signal.signal.described_object
    if signal.kind is SignalKind.OBJECT and described is not None:
        equal[labels[described.kind.lower()]] = described.name
    equal.update(signal.selector)
    return value_query(signal, f"{signal.series}{{{matchers(equal, regex=regex)}}}", None)


def _number(value: float) -> str:
    """KEDA reads the threshold as a string holding a number."""
    return str(int(value)) if value == int(value) else repr(value)
