"""The contract as immutable data, built from a schema-valid document."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

from otel_contract import rules
from otel_contract.rules import Action, Rule

Scalar = str | int | float | bool

# https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
"""A semantic version, as ``version:`` and ``since:`` are written."""


def _no_entries() -> Mapping[Any, Any]:
    return MappingProxyType({})


class MetricType(enum.StrEnum):
    GAUGE = "gauge"
    SUM = "sum"
    HISTOGRAM = "histogram"
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"
    SUMMARY = "summary"


class Stability(enum.StrEnum):
    EXPERIMENTAL = "experimental"
    STABLE = "stable"
    DEPRECATED = "deprecated"
    ARCHIVED = "archived"


class AttributeType(enum.StrEnum):
    STRING = "string"
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"


class Temporality(enum.StrEnum):
    CUMULATIVE = "cumulative"
    DELTA = "delta"


class ResourceActionKind(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"
    RENAME = "rename"


class SignalKind(enum.StrEnum):
    PODS = "pods"
    EXTERNAL = "external"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class NameRule:
    match: str
    pattern: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Naming:
    metric_pattern: str | None = None
    attribute_pattern: str | None = None
    rules: tuple[NameRule, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceAction:
    key: str
    action: ResourceActionKind
    value: Scalar | None = None
    from_attribute: str | None = None
    from_env: str | None = None


@dataclass(frozen=True, slots=True)
class ValueConstraint:
    allowed: tuple[Scalar, ...] | None = None
    pattern: str | None = None
    type: AttributeType | None = None


@dataclass(frozen=True, slots=True)
class ResourceRules:
    actions: tuple[ResourceAction, ...] = ()
    required: tuple[str, ...] = ()
    attributes: Mapping[str, ValueConstraint] = field(default_factory=_no_entries)


@dataclass(frozen=True, slots=True)
class AttributeRules:
    """Attribute rules; the global section uses only ``renames`` and ``types``."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    values: Mapping[str, tuple[Scalar, ...]] = field(default_factory=_no_entries)
    patterns: Mapping[str, str] = field(default_factory=_no_entries)
    renames: Mapping[str, str] = field(default_factory=_no_entries)
    types: Mapping[str, AttributeType] = field(default_factory=_no_entries)


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    type: MetricType
    unit: str | None = None
    description: str | None = None
    owner: str | None = None
    stability: Stability = Stability.EXPERIMENTAL
    since: str | None = None
    replaced_by: str | None = None
    collection: str | None = None
    precision: int | None = None
    temporality: Temporality | None = None
    monotonic: bool | None = None
    aliases: tuple[Alias, ...] = ()
    attributes: AttributeRules = AttributeRules()
    max_series: int | None = None
    policy: Mapping[Rule, Action] = field(default_factory=_no_entries)


@dataclass(frozen=True, slots=True)
class Shim:
    record: str
    expr: str
    expires: date
    labels: Mapping[str, str] = field(default_factory=_no_entries)
    owner: str | None = None
    reason: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    description: str | None = None
    ratio: tuple[str, str] | None = None
    max_deviation: float | None = None
    present: str | None = None


@dataclass(frozen=True, slots=True)
class DescribedObject:
    kind: str
    name: str
    api_version: str = "v1"


@dataclass(frozen=True, slots=True)
class SignalSmoothing:
    alpha: float
    interval: str  # a duration such as 30s
    max_gap: int | None = None  # None: Prometheus' 5-minute lookback, in intervals


@dataclass(frozen=True, slots=True)
class AutoscalingSignal:
    metric: str
    kind: SignalKind
    target_type: str
    target_value: float | str
    name: str | None = None
    scale_target: str | None = None
    scale_target_kind: str = "Deployment"
    scale_target_api_version: str = "apps/v1"
    min_replicas: int | None = None
    max_replicas: int | None = None
    rate_window: str | None = None
    selector: Mapping[str, str] = field(default_factory=_no_entries)
    behavior: Mapping[str, Any] = field(default_factory=_no_entries)
    resources: Mapping[str, str] = field(default_factory=_no_entries)  # Kubernetes resource -> attribute key
    described_object: DescribedObject | None = None
    smoothing: SignalSmoothing | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    name: str
    version: str
    source: str
    description: str | None = None
    owners: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    naming: Naming = Naming()
    unknown_metrics: Action = Action.FLAG
    resource: ResourceRules = ResourceRules()
    attributes: AttributeRules = AttributeRules()
    metrics: tuple[Metric, ...] = ()
    compat: tuple[Shim, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    policy: Mapping[Rule, Action] = field(default_factory=_no_entries)
    autoscaling: tuple[AutoscalingSignal, ...] = ()

    @property
    def id(self) -> str:
        """``name@version``, as logs, metrics and health show the active contract."""
        return f"{self.name}@{self.version}"


# --- building the model from a schema-valid document ---------------------------------------------


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _attribute_rules(doc: Mapping[str, Any] | None) -> AttributeRules:
    doc = doc or {}
    return AttributeRules(
        required=tuple(doc.get("required", ())),
        optional=tuple(doc.get("optional", ())),
        forbidden=tuple(doc.get("forbidden", ())),
        values=_frozen({key: tuple(values) for key, values in doc.get("values", {}).items()}),
        patterns=_frozen(doc.get("patterns")),
        renames=_frozen(doc.get("renames")),
        types=_frozen({key: AttributeType(kind) for key, kind in doc.get("types", {}).items()}),
    )


def _policy(doc: Mapping[str, str] | None) -> Mapping[Rule, Action]:
    return MappingProxyType({rules.get(slug): Action(action) for slug, action in (doc or {}).items()})


def _metric(doc: Mapping[str, Any]) -> Metric:
    return Metric(
        name=doc["name"],
        type=MetricType(doc["type"]),
        unit=doc.get("unit"),
        description=doc.get("description"),
        owner=doc.get("owner"),
        stability=Stability(doc.get("stability", Stability.EXPERIMENTAL)),
        since=doc.get("since"),
        replaced_by=doc.get("replaced_by"),
        collection=doc.get("collection"),
        precision=doc.get("precision"),
        temporality=Temporality(doc["temporality"]) if "temporality" in doc else None,
        monotonic=doc.get("monotonic"),
        aliases=tuple(Alias(alias["name"], alias.get("unit")) for alias in doc.get("aliases", ())),
        attributes=_attribute_rules(doc.get("attributes")),
        max_series=doc.get("max_series"),
        policy=_policy(doc.get("policy")),
    )


def _resource(doc: Mapping[str, Any] | None) -> ResourceRules:
    doc = doc or {}
    return ResourceRules(
        actions=tuple(
            ResourceAction(
                key=action["key"],
                action=ResourceActionKind(action["action"]),
                value=action.get("value"),
                from_attribute=action.get("from_attribute"),
                from_env=action.get("from_env"),
            )
            for action in doc.get("actions", ())
        ),
        required=tuple(doc.get("required", ())),
        attributes=_frozen(
            {
                key: ValueConstraint(
                    allowed=tuple(spec["allowed"]) if "allowed" in spec else None,
                    pattern=spec.get("pattern"),
                    type=AttributeType(spec["type"]) if "type" in spec else None,
                )
                for key, spec in doc.get("attributes", {}).items()
            }
        ),
    )


def _signal(doc: Mapping[str, Any]) -> AutoscalingSignal:
    scale_target = doc.get("scale_target", {})
    return AutoscalingSignal(
        metric=doc["metric"],
        kind=SignalKind(doc["kind"]),
        target_type=doc["target"]["type"],
        target_value=doc["target"]["value"],
        name=doc.get("name"),
        scale_target=scale_target.get("name"),
        scale_target_kind=scale_target.get("kind", "Deployment"),
        scale_target_api_version=scale_target.get("api_version", "apps/v1"),
        min_replicas=doc.get("min_replicas"),
        max_replicas=doc.get("max_replicas"),
        rate_window=doc.get("rate_window"),
        selector=_frozen(doc.get("selector")),
        behavior=_frozen(doc.get("behavior")),
        resources=_frozen(doc.get("resources")),
        described_object=DescribedObject(described["kind"], described["name"], described.get("api_version", "v1"))
        if (described := doc.get("described_object"))
        else None,
        smoothing=SignalSmoothing(float(smoothing["ewma"]["alpha"]), smoothing["interval"], smoothing.get("max_gap"))
        if (smoothing := doc.get("smoothing"))
        else None,
    )


def build_contract(doc: Mapping[str, Any], source: str, includes: tuple[str, ...] = ()) -> Contract:
    """The model of a merged, schema-valid contract document."""
    naming = doc.get("naming", {})
    return Contract(
        name=doc["contract"],
        version=doc["version"],
        source=source,
        description=doc.get("description"),
        owners=tuple(doc.get("owners", ())),
        includes=includes,
        naming=Naming(
            metric_pattern=naming.get("metric_pattern"),
            attribute_pattern=naming.get("attribute_pattern"),
            rules=tuple(NameRule(r["match"], r["pattern"], r.get("message")) for r in naming.get("rules", ())),
        ),
        unknown_metrics=Action(doc.get("defaults", {}).get("unknown_metrics", Action.FLAG.value)),
        resource=_resource(doc.get("resource")),
        attributes=_attribute_rules(doc.get("attributes")),
        metrics=tuple(_metric(metric) for metric in doc.get("metrics", ())),
        compat=tuple(
            Shim(
                record=shim["record"],
                expr=shim["expr"],
                expires=date.fromisoformat(shim["expires"]),
                labels=_frozen(shim.get("labels")),
                owner=shim.get("owner"),
                reason=shim.get("reason"),
                unit=shim.get("unit"),
            )
            for shim in doc.get("compat", ())
        ),
        invariants=tuple(
            Invariant(
                name=inv["name"],
                description=inv.get("description"),
                ratio=(inv["ratio"][0], inv["ratio"][1]) if "ratio" in inv else None,
                max_deviation=inv.get("max_deviation"),
                present=inv.get("present"),
            )
            for inv in doc.get("invariants", ())
        ),
        policy=_policy(doc.get("policy")),
        autoscaling=tuple(_signal(signal) for signal in doc.get("autoscaling", ())),
    )
