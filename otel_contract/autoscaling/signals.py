"""What an autoscaling signal reads in Prometheus, resolved once from the contract.

``check`` reports a signal's ``problems``; the renderers (adapter rules, HPA and KEDA manifests)
read the ``ResolvedSignal``: the series name under the pipeline's translation strategy, whether the
query needs ``rate()``, which labels name which Kubernetes resources, and the selector as labels.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from otel_contract.contract.model import AutoscalingSignal, Contract, Metric, MetricType, SignalKind
from otel_contract.contract.signal_resources import Problem, SignalAttributes, resource_mapping
from otel_contract.prometheus_names import (
    DEFAULT_STRATEGY,
    TranslationStrategy,
    is_counter,
    label_name,
    series_name,
)

SMOOTHED_SUFFIX = "_smoothed"

# Which metric target types the HPA accepts per metric source (autoscaling/v2 API reference).
_TARGET_TYPES: Mapping[SignalKind, tuple[str, ...]] = MappingProxyType(
    {
        SignalKind.PODS: ("AverageValue",),
        SignalKind.EXTERNAL: ("Value", "AverageValue"),
        SignalKind.OBJECT: ("Value", "AverageValue"),
    }
)
# The Kubernetes quantity grammar (k8s.io/apimachinery resource.Quantity).
_QUANTITY = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")


@dataclass(frozen=True, slots=True)
class ResolvedSignal:
    signal: AutoscalingSignal
    metric: Metric
    series: str  # the Prometheus series the query reads (the smoothed one, with smoothing)
    api_name: str  # the metric name the HPA asks the adapter for
    needs_rate: bool  # a counter read raw: the query takes rate() over rate_window
    resources: Mapping[str, str]  # Kubernetes resource -> Prometheus label
    selector: Mapping[str, str]  # Prometheus label -> value

    @property
    def kind(self) -> SignalKind:
        return self.signal.kind


def smoothed_metric_name(metric: str) -> str:
    """The OTLP name of the series the sidecar emits for a smoothed signal."""
    return metric + SMOOTHED_SUFFIX


def smoothed_unit(metric: Metric) -> str | None:
    """A smoothed counter is a per-second rate; a smoothed gauge keeps its unit."""
    if not is_counter(metric):
        return metric.unit
    if metric.unit in (None, "", "1"):
        return "1/s"
    return f"{metric.unit}/s"


def quantity(value: float | str) -> str:
    """A target value as a Kubernetes quantity: ``70``, ``500m``, ``1k``; ValueError when it is none."""
    if isinstance(value, str):
        if not _QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 70, 500m, 1k, 2Mi)")
        return value
    try:
        exact = Decimal(repr(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not exact.is_finite() or exact < 0:
        raise ValueError(f"{value!r} is not a non-negative finite number")
    if exact == exact.to_integral_value():
        return str(int(exact))
    milli = exact * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    raise ValueError(f"{value!r} has more precision than a Kubernetes quantity's milli units (0.001)")


def quantity_value(value: float | str) -> float:
    """A target value as a plain number (KEDA's threshold): ``500m`` is 0.5."""
    text = quantity(value)
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "n": 1e-9, "u": 1e-6}
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    for suffix, factor in binary.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    if text[-1:] in suffixes:
        return float(text[:-1]) * suffixes[text[-1]]
    return float(text)


def problems(contract: Contract, signal: AutoscalingSignal) -> list[Problem]:
    """Everything that keeps ``signal`` from feeding an HPA, in the order a reader fixes them."""
    metrics = {metric.name: metric for metric in contract.metrics}
    metric = metrics.get(signal.metric)
    if metric is None:
        return [Problem("metric", f"autoscaling signal reads {signal.metric!r}, which is not a contract metric")]
    found: list[Problem] = []
    if metric.type not in (MetricType.GAUGE, MetricType.SUM):
        found.append(
            Problem("metric", f"{metric.name} is a {metric.type.value}: an autoscaling signal reads a gauge or a sum")
        )
    counter = is_counter(metric)
    if counter and signal.rate_window is None and signal.smoothing is None:
        found.append(
            Problem(
                "rate_window",
                f"{metric.name} is a counter: the signal needs a rate_window (e.g. 30s) for rate(), or smoothing",
            )
        )
    if not counter and signal.rate_window is not None:
        found.append(Problem("rate_window", f"{metric.name} is not a counter: rate() of it means nothing"))
    if (
        signal.min_replicas is not None
        and signal.max_replicas is not None
        and signal.min_replicas > signal.max_replicas
    ):
        found.append(
            Problem("min_replicas", f"min_replicas {signal.min_replicas} is above max_replicas {signal.max_replicas}")
        )
    allowed = _TARGET_TYPES[signal.kind]
    if signal.target_type not in allowed:
        found.append(
            Problem(
                "target",
                f"{'a' if signal.kind is SignalKind.PODS else 'an'} {signal.kind.value} metric takes a target of"
                f" type {' or '.join(allowed)}, not {signal.target_type} (Utilization applies to CPU and memory"
                " resource metrics only)",
            )
        )
    try:
        quantity(signal.target_value)
    except ValueError as error:
        found.append(Problem("target", f"target value: {error}"))
    if signal.scale_target is None:
        found.append(Problem("scale_target", "no scale_target: the HPA would not know which workload to scale"))
    if signal.kind is SignalKind.OBJECT and signal.described_object is None:
        found.append(Problem("described_object", "an object signal needs described_object (kind and name)"))
    known = SignalAttributes(contract, metric).known
    for key in signal.selector:
        if key not in known:
            found.append(
                Problem(
                    "selector", f"selector key {key!r} is not an attribute of {metric.name}: it would match nothing"
                )
            )
    found.extend(resource_mapping(contract, signal, metric).problems)
    if signal.smoothing is not None and smoothed_metric_name(metric.name) in metrics:
        found.append(
            Problem(
                "smoothing",
                f"the smoothed series {smoothed_metric_name(metric.name)!r} would collide with the contract metric"
                " of that name",
            )
        )
    return found


def conflicts(contract: Contract) -> Iterator[tuple[int, Problem]]:
    """Signals that share a scale target (one HPA) but disagree on its replicas or behavior, and
    targets that no signal gives a maximum (an HPA requires maxReplicas)."""
    first: dict[str, int] = {}
    bounded: set[str] = set()
    for index, signal in enumerate(contract.autoscaling):
        if signal.scale_target is None:
            continue
        key = f"{signal.scale_target_kind}/{signal.scale_target}"
        if signal.max_replicas is not None:
            bounded.add(key)
        if key not in first:
            first[key] = index
            continue
        other = contract.autoscaling[first[key]]
        for field in ("min_replicas", "max_replicas", "behavior"):
            mine, theirs = getattr(signal, field), getattr(other, field)
            if mine and theirs and mine != theirs:
                yield (
                    index,
                    Problem(
                        field,
                        f"{field} differs from autoscaling[{first[key]}] ({other.metric}), which scales the same {key}:"
                        " one HPA has one value",
                    ),
                )
    for key, index in first.items():
        if key not in bounded:
            yield index, Problem("max_replicas", f"no signal scaling {key} sets max_replicas, which an HPA requires")


def resolve(
    contract: Contract, signal: AutoscalingSignal, strategy: TranslationStrategy = DEFAULT_STRATEGY
) -> ResolvedSignal:
    """The signal as queries read it; ValueError listing the problems when it has any."""
    found = problems(contract, signal)
    if found:
        raise ValueError("; ".join(problem.message for problem in found))
    metric = next(metric for metric in contract.metrics if metric.name == signal.metric)
    counter = is_counter(metric)
    raw_series = series_name(metric.name, metric.type, metric.unit, counter=counter, strategy=strategy)
    series = raw_series
    if signal.smoothing is not None:
        series = series_name(
            smoothed_metric_name(metric.name), MetricType.GAUGE, smoothed_unit(metric), counter=False, strategy=strategy
        )
    api_name = signal.name or (raw_series.removesuffix("_total") + "_per_second" if counter else raw_series)
    mapping = resource_mapping(contract, signal, metric).attributes
    resources = {resource: label_name(attribute, strategy) for resource, attribute in mapping.items()}
    return ResolvedSignal(
        signal=signal,
        metric=metric,
        series=series,
        api_name=api_name,
        needs_rate=counter and signal.smoothing is None,
        resources=MappingProxyType(resources),
        selector=MappingProxyType({label_name(key, strategy): value for key, value in signal.selector.items()}),
    )
