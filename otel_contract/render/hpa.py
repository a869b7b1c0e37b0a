"""``render hpa``: ``autoscaling/v2`` HorizontalPodAutoscalers for the contract's autoscaling signals.

One HPA per scale target, with one metric per signal that drives it: ``Pods`` and ``Object`` metrics
for custom metrics, ``External`` for external ones, each under the name ``render adapter`` exposes it
and with the signal's selector as ``matchLabels``. Replicas and ``behavior`` come from the signals
(``check`` makes sure the signals of one target agree). Target values are Kubernetes quantities.
"""

from __future__ import annotations

from typing import Any

from otel_contract.autoscaling.signals import ResolvedSignal, quantity
from otel_contract.contract.model import Contract, SignalKind
from otel_contract.render import ArtefactOptions
from otel_contract.render._autoscaling import (
    Workload,
    check_namespace,
    check_object_name,
    documents,
    metadata,
    plain,
    resolved_signals,
    workloads,
)

_SOURCE = {SignalKind.PODS: "Pods", SignalKind.EXTERNAL: "External", SignalKind.OBJECT: "Object"}
_TARGET_FIELD = {"Value": "value", "AverageValue": "averageValue"}


def render(contract: Contract, options: ArtefactOptions) -> str:
    check_namespace(options.namespace)
    docs = [
        manifest(contract, workload, options.namespace) for workload in workloads(resolved_signals(contract, options))
    ]
    return documents(contract, "render hpa", docs, "The contract has no autoscaling: signals, so there is no HPA.")


def manifest(contract: Contract, workload: Workload, namespace: str | None) -> dict[str, Any]:
    check_object_name(workload.name, "scale target")
    spec: dict[str, Any] = {"scaleTargetRef": workload.target_ref()}
    if workload.min_replicas is not None:
        spec["minReplicas"] = workload.min_replicas
    spec["maxReplicas"] = workload.max_replicas
    spec["metrics"] = [metric_spec(signal) for signal in workload.signals]
    if workload.behavior:
        spec["behavior"] = plain(workload.behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(contract, workload.name, namespace),
        "spec": spec,
    }


def metric_spec(signal: ResolvedSignal) -> dict[str, Any]:
    """One entry of ``spec.metrics``."""
    identifier: dict[str, Any] = {"name": signal.api_name}
    if signal.selector:
        identifier["selector"] = {"matchLabels": dict(signal.selector)}
    source: dict[str, Any] = {"metric": identifier}
    described = signal.signal.described_object
    if signal.kind is SignalKind.OBJECT and described is not None:
        source = {
            "describedObject": {"apiVersion": described.api_version, "kind": described.kind, "name": described.name},
            **source,
        }
    target_type = signal.signal.target_type
    source["target"] = {"type": target_type, _TARGET_FIELD[target_type]: quantity(signal.signal.target_value)}
    source_type = _SOURCE[signal.kind]
    return {"type": source_type, source_type[0].lower() + source_type[1:]: source}
