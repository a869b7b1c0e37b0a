"""Regenerate the shop captures: one small data set in every format ``otel-contract validate`` reads.

    .venv/bin/python tests/data/captures/generate.py

The real OpenTelemetry SDK records the data once; the same MeterProvider is read by an
InMemoryMetricReader (encoded with the SDK's OTLP encoder, written with the project's
``write_capture`` as shop.jsonl and shop.pb) and by the SDK's PrometheusMetricReader on a private
registry (written by prometheus_client as text 0.0.4, shop.prom, and OpenMetrics 1.0, shop.om).

So that the formats hold the same data points, instruments carry Prometheus-ready names (``_total``
on the counter, the ``_seconds`` unit suffix on the histogram, as the project's self-telemetry does),
attributes are strings with Prometheus-valid keys, and the resource is empty (an SDK resource would
become a target_info whose keys the exposition spells with underscores). The one instrumentation
scope, ``shop`` 1.0.0, travels as otel_scope_* labels in the expositions.
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import UNDERSCORES
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from otel_contract.inputs.otlp import write_capture

HERE = Path(__file__).resolve().parent

BOUNDS = (0.1, 0.5, 1.0)


def main() -> None:
    registry = CollectorRegistry()
    memory = InMemoryMetricReader()
    prometheus = PrometheusMetricReader(disable_target_info=True, registry=registry)
    provider = MeterProvider(metric_readers=[memory, prometheus], resource=Resource.get_empty())
    meter = provider.get_meter("shop", "1.0.0")

    orders = meter.create_counter("shop_orders_total", description="Orders placed")
    orders.add(3, {"method": "GET", "status": "200"})
    orders.add(1, {"method": "POST", "status": "500"})
    duration = meter.create_histogram(
        "shop_request_duration_seconds",
        unit="s",
        description="Time to serve a shop request",
        explicit_bucket_boundaries_advisory=BOUNDS,
    )
    for seconds in (0.05, 0.3, 0.7):
        duration.record(seconds, {"route": "/cart"})
    duration.record(2.0, {"route": "/checkout"})
    depth = meter.create_gauge("shop_queue_depth", description="Orders waiting to be packed")
    depth.set(4, {"queue": "orders"})

    request = encode_metrics(memory.get_metrics_data())  # type: ignore[arg-type]
    write_capture(HERE / "shop.jsonl", [request])
    write_capture(HERE / "shop.pb", [request])
    (HERE / "shop.prom").write_bytes(generate_latest(registry, escaping=UNDERSCORES))
    (HERE / "shop.om").write_bytes(generate_openmetrics(registry, escaping=UNDERSCORES))
    provider.shutdown()


if __name__ == "__main__":
    main()
