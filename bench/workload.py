"""A deterministic OTLP metrics workload for the benchmark, shaped by ``bench/contract.yaml``.

``build_request(variant)`` returns an ``ExportMetricsServiceRequest`` with ``resources`` resources,
each with one scope of ``metrics`` metrics of ``points`` data points (10 x 20 x 50 = 10,000 points by
default). Even-numbered metrics are histograms (15 explicit bounds, 16 bucket counts that add up to
``count``, consistent ``sum``/``min``/``max``); odd-numbered ones are cumulative monotonic sums, except
every sixth (05, 11, 17), which is a gauge. Every point carries 4-6 attributes, strings except
``http.status_code`` (an int).

Variants:

* ``compliant`` -- what the contract wants: canonical names and units (ms -> s already applied),
  canonical attribute keys, ``http.status_code`` as an int, ``service.namespace`` on every resource.
* ``legacy20`` -- per resource, 20 % of the metrics (2 histograms and 2 others of 20) arrive under
  their legacy alias (histograms in ms), 20 % of each metric's points carry ``http_status`` or
  ``status_code`` with a string value such as ``"503"``, and 20 % of the resources lack
  ``service.namespace``.
* ``legacy100`` -- all of the above for every metric, point and resource.

The data values come from one ``random.Random(seed)`` and the legacy choices from another, so every
variant carries the same measurements; only their spelling differs. Nothing reads the clock.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
)

from otel_contract.otlp import count_items

VARIANTS = ("compliant", "legacy20", "legacy100")
LEGACY_SHARE = {"compliant": 0.0, "legacy20": 0.2, "legacy100": 1.0}

EPOCH_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: a fixed base, never the clock
COLLECTION_NS = EPOCH_NS + 3_600 * 10**9  # every point is collected one hour after the base
NAMESPACE = "bench-prod"  # the value bench/contract.yaml inserts

BOUNDS_MS = (5, 10, 25, 50, 75, 100, 250, 500, 750, 1_000, 2_500, 5_000, 7_500, 10_000, 15_000)
EDGES_MS = (0, *BOUNDS_MS, 2 * BOUNDS_MS[-1])  # bucket i holds values in (EDGES_MS[i], EDGES_MS[i + 1]]

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
STATUS_CODES = (200, 201, 204, 301, 400, 404, 500, 503)
ROUTES = (
    "/api/cart",
    "/api/cart/{item_id}",
    "/api/catalogue",
    "/api/catalogue/{sku}",
    "/api/checkout",
    "/api/orders",
    "/api/orders/{order_id}",
    "/api/payment",
    "/api/search",
    "/api/session",
    "/api/shipping",
    "/health",
)
COMBINATIONS = len(ROUTES) * len(METHODS) * len(STATUS_CODES)  # distinct (route, method, status) series
STRIDE = 97  # coprime with COMBINATIONS: consecutive points walk all combinations without repeating
LEGACY_STATUS_KEYS = ("http_status", "status_code")

AttributeValue = str | int


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of the workload: its canonical form and the legacy alias it may arrive as."""

    index: int
    kind: str  # histogram | sum | gauge
    name: str
    unit: str
    description: str
    alias: str
    alias_unit: str

    @property
    def alias_factor(self) -> float:
        """Multiply a canonical value by this to get the alias unit's value (s -> ms is 1000)."""
        return 1000.0 if self.alias_unit != self.unit else 1.0


def _metric_spec(index: int) -> MetricSpec:
    n = f"{index:02d}"
    if index % 2 == 0:
        return MetricSpec(
            index,
            "histogram",
            f"bench_http_server_duration_seconds_{n}",
            "s",
            f"Server-side latency of HTTP requests (bench copy {n})",
            f"bench.http.server.duration.{n}",
            "ms",
        )
    if index % 6 == 5:
        return MetricSpec(
            index,
            "gauge",
            f"bench_http_server_active_requests_{n}",
            "{request}",
            f"HTTP requests in flight (bench copy {n})",
            f"bench.http.server.active_requests.{n}",
            "{request}",
        )
    return MetricSpec(
        index,
        "sum",
        f"bench_http_requests_total_{n}",
        "{request}",
        f"HTTP requests served, by method and status code (bench copy {n})",
        f"bench.http.server.request.count.{n}",
        "{request}",
    )


def metric_specs(count: int = 20) -> tuple[MetricSpec, ...]:
    """The first ``count`` metrics; bench/contract.yaml describes the first 20."""
    return tuple(_metric_spec(index) for index in range(count))


@dataclass(frozen=True, slots=True)
class LegacyPlan:
    """Which resources, metrics and points of one request arrive in legacy form."""

    share: float
    rng: random.Random

    def pick(self, population: Sequence[int]) -> frozenset[int]:
        return frozenset(self.rng.sample(list(population), round(self.share * len(population))))

    def metrics(self, specs: Sequence[MetricSpec]) -> frozenset[int]:
        """A share of the histograms and the same share of the others, so both kinds are aliased."""
        histograms = [spec.index for spec in specs if spec.kind == "histogram"]
        others = [spec.index for spec in specs if spec.kind != "histogram"]
        return self.pick(histograms) | self.pick(others)

    def status_key(self) -> str:
        return self.rng.choice(LEGACY_STATUS_KEYS)


def _legacy_plan(variant: str, seed: int) -> LegacyPlan:
    if variant not in LEGACY_SHARE:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return LegacyPlan(LEGACY_SHARE[variant], random.Random(f"legacy-{seed}"))


def _add_attributes(target: list[KeyValue], items: Sequence[tuple[str, AttributeValue]]) -> None:
    for key, value in items:
        kv = target.add()  # type: ignore[attr-defined]
        kv.key = key
        if isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = value


def _resource_attributes(index: int, legacy: bool) -> list[tuple[str, AttributeValue]]:
    service = f"bench-service-{index:02d}"
    items: list[tuple[str, AttributeValue]] = [("service.name", service)]
    if not legacy:
        items.append(("service.namespace", NAMESPACE))
    items += [
        ("service.version", f"1.4.{index}"),
        ("deployment.environment", "prod"),
        ("k8s.namespace.name", "bench"),
        ("k8s.pod.name", f"{service}-7d9f8b6c5-{index * 7919 % 100_000:05d}"),
        ("host.name", f"node-{index % 4}.bench.internal"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.name", "opentelemetry"),
    ]
    return items


def _point_attributes(rng: random.Random, combination: int, legacy_key: str | None) -> list[tuple[str, AttributeValue]]:
    """4 required attributes and 0-2 optional ones; ``legacy_key`` replaces http.status_code."""
    route = ROUTES[combination % len(ROUTES)]
    method = METHODS[combination // len(ROUTES) % len(METHODS)]
    status = STATUS_CODES[combination // (len(ROUTES) * len(METHODS))]
    scheme = "https" if rng.random() < 0.8 else "http"
    optional = rng.randint(0, 2)
    items: list[tuple[str, AttributeValue]] = [("http.method", method)]
    items.append((legacy_key, str(status)) if legacy_key else ("http.status_code", status))
    items += [("http.route", route), ("http.scheme", scheme)]
    if optional >= 1:
        items.append(("net.host.name", "api.bench.example"))
    if optional >= 2:
        items.append(("http.flavor", "2" if rng.random() < 0.7 else "1.1"))
    return items


def _histogram_ms(rng: random.Random) -> tuple[list[int], float, float, float]:
    """Bucket counts (16, summing to the count) and sum, min, max in milliseconds, all consistent."""
    count = rng.randint(1, 5_000)
    peak = rng.randint(1, 10)
    weights = [1.0 / (1 + abs(i - peak)) ** 2 for i in range(len(EDGES_MS) - 1)]
    total = sum(weights)
    counts = [int(count * weight / total) for weight in weights]
    counts[peak] += count - sum(counts)
    used = [i for i, c in enumerate(counts) if c]
    first, last = used[0], used[-1]
    total_ms = sum(c * (EDGES_MS[i] + EDGES_MS[i + 1]) / 2 for i, c in enumerate(counts))
    low = EDGES_MS[first] + 0.1 * (EDGES_MS[first + 1] - EDGES_MS[first])
    high = EDGES_MS[last] + 0.9 * (EDGES_MS[last + 1] - EDGES_MS[last])
    return counts, total_ms, low, high


def _fill_histogram(point: HistogramDataPoint, rng: random.Random, in_ms: bool) -> None:
    counts, total_ms, low_ms, high_ms = _histogram_ms(rng)
    scale = 1.0 if in_ms else 0.001
    point.count = sum(counts)
    point.sum = total_ms * scale
    point.min = low_ms * scale
    point.max = high_ms * scale
    point.bucket_counts.extend(counts)
    point.explicit_bounds.extend(bound * scale for bound in BOUNDS_MS)


def _fill_number(point: NumberDataPoint, rng: random.Random, kind: str) -> None:
    if kind == "gauge":
        point.as_double = round(rng.uniform(0.0, 64.0), 2)
    else:
        point.as_int = rng.randint(0, 1_000_000)


def _points(metric: Metric, spec: MetricSpec) -> list[HistogramDataPoint] | list[NumberDataPoint]:
    if spec.kind == "histogram":
        metric.histogram.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
        return metric.histogram.data_points  # type: ignore[return-value]
    if spec.kind == "sum":
        metric.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
        metric.sum.is_monotonic = True
        return metric.sum.data_points  # type: ignore[return-value]
    return metric.gauge.data_points  # type: ignore[return-value]


def _add_metric(
    metric: Metric, spec: MetricSpec, resource: int, points: int, rng: random.Random, plan: LegacyPlan, aliased: bool
) -> None:
    metric.name = spec.alias if aliased else spec.name
    metric.unit = spec.alias_unit if aliased else spec.unit
    metric.description = spec.description
    legacy_points = plan.pick(range(points))
    first = rng.randrange(COMBINATIONS)
    container = _points(metric, spec)
    for j in range(points):
        point = container.add()  # type: ignore[union-attr]
        point.start_time_unix_nano = EPOCH_NS + resource * 1_000_000
        point.time_unix_nano = COLLECTION_NS
        legacy_key = plan.status_key() if j in legacy_points else None
        combination = (first + j * STRIDE) % COMBINATIONS
        _add_attributes(point.attributes, _point_attributes(rng, combination, legacy_key))
        if spec.kind == "histogram":
            _fill_histogram(point, rng, in_ms=aliased)
        else:
            _fill_number(point, rng, spec.kind)


def _add_resource(
    resource_metrics: ResourceMetrics,
    index: int,
    specs: Sequence[MetricSpec],
    points: int,
    rng: random.Random,
    plan: LegacyPlan,
    legacy_resource: bool,
) -> None:
    _add_attributes(resource_metrics.resource.attributes, _resource_attributes(index, legacy_resource))  # type: ignore[arg-type]
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "bench.instrumentation"
    scope_metrics.scope.version = "1.0.0"
    aliased = plan.metrics(specs)
    for spec in specs:
        _add_metric(scope_metrics.metrics.add(), spec, index, points, rng, plan, spec.index in aliased)


def build_request(
    variant: str, *, resources: int = 10, metrics: int = 20, points: int = 50, seed: int = 1
) -> ExportMetricsServiceRequest:
    """The workload request of ``variant`` (see the module docstring); same arguments, same bytes."""
    plan = _legacy_plan(variant, seed)
    rng = random.Random(seed)
    specs = metric_specs(metrics)
    legacy_resources = plan.pick(range(resources))
    request = ExportMetricsServiceRequest()
    for index in range(resources):
        _add_resource(request.resource_metrics.add(), index, specs, points, rng, plan, index in legacy_resources)
    return request


def count_points(request: ExportMetricsServiceRequest) -> int:
    """Data points of every type in ``request``."""
    return count_items(request)[1]
