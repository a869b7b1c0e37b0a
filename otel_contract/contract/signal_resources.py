"""Which attribute of a metric names each Kubernetes resource an autoscaling signal needs.

A fact about the contract model alone, so that ``check`` (autoscaling/signals.py: a signal's problems)
and the compiled contract (the role a required attribute plays, which missing-attribute findings
name) give one answer from the contract layer. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from otel_contract.contract.model import AutoscalingSignal, Contract, Metric, SignalKind

# Attributes that name a Pod and its namespace when the contract does not say (resources:): the
# labels a Prometheus Kubernetes scrape adds, then the OpenTelemetry semantic conventions.
_DEFAULT_ATTRIBUTES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"pod": ("pod", "k8s.pod.name"), "namespace": ("namespace", "k8s.namespace.name")}
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a signal cannot feed its HPA; ``field`` is the key under the signal the finding points at."""

    field: str
    message: str


class SignalAttributes:
    """The attributes a metric's series are sure to carry, and those they may carry."""

    def __init__(self, contract: Contract, metric: Metric) -> None:
        self.required = set(metric.attributes.required) | set(contract.resource.required)
        self.known = self.required | set(metric.attributes.optional) | set(contract.resource.attributes)


@dataclass(frozen=True, slots=True)
class ResourceMapping:
    """Which attribute names each Kubernetes resource a signal needs, and what keeps it from naming one."""

    attributes: Mapping[str, str]  # resource -> attribute key
    problems: tuple[Problem, ...]


def resource_mapping(contract: Contract, signal: AutoscalingSignal, metric: Metric) -> ResourceMapping:
    attributes = SignalAttributes(contract, metric)
    mapped: dict[str, str] = {}
    found: list[Problem] = []
    subject = f"the {signal.kind.value} signal on {metric.name}"
    for resource in _wanted_resources(signal):
        explicit = signal.resources.get(resource)
        candidates = (explicit,) if explicit else _DEFAULT_ATTRIBUTES.get(resource, (resource,))
        chosen = next((key for key in candidates if key in attributes.required), None)
        optional = next((key for key in candidates if key in attributes.known), None)
        if chosen is not None:
            mapped[resource] = chosen
        elif optional is not None:
            found.append(
                Problem(
                    "resources",
                    f"{subject} maps the {resource} from attribute {optional!r}, which {metric.name} does not"
                    " require: series without it leave the HPA at <unknown>; make it required",
                )
            )
        else:
            names = " or ".join(repr(key) for key in candidates)
            found.append(
                Problem(
                    "resources",
                    f"{subject} needs an attribute naming the {resource} (prometheus-adapter maps it to the"
                    f" {resource} resource); {metric.name} has no {names}: require it on the metric or the"
                    f" resource, or name the attribute in resources.{resource}",
                )
            )
    return ResourceMapping(MappingProxyType(mapped), tuple(found))


def _wanted_resources(signal: AutoscalingSignal) -> tuple[str, ...]:
    if signal.kind is SignalKind.PODS:
        wanted = ["namespace", "pod"]
    elif signal.kind is SignalKind.OBJECT:
        wanted = ["namespace"]
        if signal.described_object is not None:
            wanted.append(signal.described_object.kind.lower())
    else:
        wanted = []
    wanted.extend(resource for resource in signal.resources if resource not in wanted)
    return tuple(wanted)


def attribute_roles(contract: Contract) -> Mapping[tuple[str, str], str]:
    """(metric, attribute) -> the autoscaling role it plays, for findings about data that lacks it."""
    roles: dict[tuple[str, str], str] = {}
    metrics = {metric.name: metric for metric in contract.metrics}
    for signal in contract.autoscaling:
        metric = metrics.get(signal.metric)
        if metric is None:
            continue
        for resource, attribute in resource_mapping(contract, signal, metric).attributes.items():
            roles.setdefault(
                (metric.name, attribute),
                f"the {signal.kind.value} signal {signal.name or metric.name} maps it to the {resource}: without it"
                " the HPA shows <unknown>",
            )
    return MappingProxyType(roles)
