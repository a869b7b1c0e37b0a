"""A small app instrumented with the OpenTelemetry Python SDK, sending legacy-named telemetry over OTLP/gRPC.

Run it against `make run` (the sidecar on 127.0.0.1:4317 with contracts/ecommerce.yaml) to watch the
contract at work: `http.server.duration` in ms arrives downstream as `http_server_duration_seconds`
in s, `status_code` becomes the int `http.status_code`, a point carrying the forbidden `user.id` is
rejected and counted back to the SDK in partial_success, and the compat shim of the contract adds the
legacy `node_disk_io_time_seconds_total` (a rate, per device) beside `system_disk_io_time_seconds_total`.

    make demo            # or: .venv/bin/python examples/sdk_app.py --endpoint 127.0.0.1:4317
"""

from __future__ import annotations

import argparse
import random
import time

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="127.0.0.1:4317", help="the sidecar's OTLP/gRPC endpoint")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send")
    args = parser.parse_args()

    resource = Resource.create(
        {"service.name": "checkout", "k8s.pod.name": "checkout-7d9f", "k8s.namespace.name": "shop"}
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=args.endpoint, insecure=True), export_interval_millis=2000
    )
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    tracers = TracerProvider(resource=resource)
    tracers.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True)))
    meter = meters.get_meter("checkout")
    tracer = tracers.get_tracer("checkout")
    latency = meter.create_histogram("http.server.duration", unit="ms", description="legacy name and unit")
    requests = meter.create_counter("http.server.request.count", unit="{request}")
    disk_io = meters.get_meter("hostmetrics").create_counter("system_disk_io_time_seconds_total", unit="s")

    rng = random.Random(42)
    deadline = time.monotonic() + args.seconds
    sent = 0
    while time.monotonic() < deadline:
        method = rng.choice(["GET", "GET", "POST"])
        status = rng.choice(["200", "200", "200", "404", "503"])
        attributes = {"http.method": method, "status_code": status}
        if sent % 50 == 0:
            attributes["user.id"] = f"u-{sent}"  # forbidden by the contract: rejected
        with tracer.start_as_current_span(f"{method} /cart") as span:
            span.set_attribute("status_code", status)
            latency.record(rng.uniform(5, 400), attributes)
            requests.add(1, attributes)
        disk_io.add(0.004, {"device": "sda"})
        disk_io.add(0.001, {"device": "sdb"})
        sent += 1
        time.sleep(0.01)
    meters.shutdown()
    tracers.shutdown()
    print(f"sent {sent} requests' worth of telemetry to {args.endpoint}")


if __name__ == "__main__":
    main()
