"""Derived series as OTLP: one metric per compat shim or smoothed signal, beside the canonical ones.

Labels become data point attributes, except ``job`` and ``instance``, which go back into the
resource (``service.namespace``/``service.name`` and ``service.instance.id``) so that a Prometheus
exporter downstream derives the same ``job`` and ``instance`` the legacy series had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, ScopeMetrics

import otel_contract
from otel_contract._wire import SHIM_SCOPE
from otel_contract.shims._plan import Element
from otel_contract.shims._series import Labels

SCOPE_NAME = SHIM_SCOPE
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


_TARGET_ATTRIBUTES = frozenset({"service.name", "service.namespace", "service.instance.id"})


def _resource(shared: Labels, job: str, instance: str) -> Labels:
    """The resource attributes the inputs share, except the target, which comes from the output's
    job/instance labels only: a Prometheus exporter downstream derives exactly the job and instance
    labels the recording rule's series has (an aggregation that dropped them must not get them back,
    or the series would change identity when the inputs contributing to it change)."""
    attributes = {key: value for key, value in shared if key not in _TARGET_ATTRIBUTES}
    if job:
        namespace, _, name = job.rpartition("/")
        attributes["service.name"] = name
        if namespace:
            attributes["service.namespace"] = namespace
    if instance:
        attributes["service.instance.id"] = instance
    return tuple(sorted(attributes.items()))


class Recorded(NamedTuple):
    """A series the sidecar derives and sends beside the canonical ones: a shim's, a smoothed signal's."""

    name: str
    unit: str | None
    counter: bool  # a cumulative monotonic sum; else a gauge
    description: str
    labels: Mapping[str, str] = MappingProxyType({})  # added to every element's labels


def emit(
    outputs: Sequence[tuple[Recorded, Sequence[Element], int]], contract: str, scope_name: str = SCOPE_NAME
) -> tuple[bytes, int]:
    """The serialized request carrying every element of ``outputs`` (series, elements, time in ms)."""
    request = ExportMetricsServiceRequest()
    scopes: dict[Labels, ScopeMetrics] = {}
    metrics: dict[tuple[Labels, str], Metric] = {}
    points = 0
    resources: dict[tuple[Labels, str, str], Labels] = {}
    for recorded, elements, now in outputs:
        for element in elements:
            labels = dict(element.labels)
            labels.update(recorded.labels)
            key = (element.resource, labels.pop("job", ""), labels.pop("instance", ""))
            target = resources.get(key)
            if target is None:
                target = resources[key] = _resource(*key)
            scope = scopes.get(target)
            if scope is None:
                resource_metrics = request.resource_metrics.add()
                resource_metrics.resource.attributes.extend(
                    KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in target
                )
                scope = scopes[target] = resource_metrics.scope_metrics.add()
                scope.scope.name = scope_name
                scope.scope.version = otel_contract.__version__
                if contract:
                    scope.scope.attributes.add(key="otel_contract.contract", value=AnyValue(string_value=contract))
            metric = metrics.get((target, recorded.name))
            if metric is None:
                metric = metrics[(target, recorded.name)] = scope.metrics.add()
                metric.name = recorded.name
                metric.unit = recorded.unit or ""
                metric.description = recorded.description
                if recorded.counter:
                    metric.sum.aggregation_temporality = _CUMULATIVE
                    metric.sum.is_monotonic = True
            data = metric.sum if recorded.counter else metric.gauge
            point = data.data_points.add()
            point.time_unix_nano = now * 1_000_000
            if recorded.counter and element.start:
                point.start_time_unix_nano = min(element.start, point.time_unix_nano)
            point.as_double = element.value
            point.attributes.extend(
                KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in sorted(labels.items())
            )
            points += 1
    return (request.SerializeToString() if points else b""), points
