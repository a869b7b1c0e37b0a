"""A small app instrumented with the OpenTelemetry Python SDK, sending legacy-named telemetry over OTLP/gRPC.

Run it against `make run` (the sidecar on 127.0.0.1:4317 with contracts/ecommerce.yaml) to watch the
contract at work: `http.server.duration` in ms arrives downstream as `http_server_duration_seconds`
in s, `status_code` becomes the int `http.status_code`, a point carrying the forbidden `user.id` is
rejected and counted back to the SDK in partial_success, and the compat shim of the contract adds the
legacy `node_disk_io_time_seconds_total` (a rate, per device) beside `system_disk_io_time_seconds_total`.

At the end it prints what the contract did to what it sent: the renames and unit conversions the
contract defines for the names and attributes sent, and what the sidecar rejected, from its answers
(partial_success). The SDK's own OTLP exporters drop those answers, so this app exports through the
SDK's OTLP encoders and a plain gRPC stub that keeps them. Without a sidecar it exits 1 at once.

    make demo            # or: .venv/bin/python examples/sdk_app.py --endpoint 127.0.0.1:4317
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_contract import load_contract
from otel_contract.contract.model import Contract

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "ecommerce.yaml"
_CONNECT_SECONDS = 5.0
_EXPORT_SECONDS = 10.0
_CONTRACT_ID = re.compile(r"contract (\S+@\S+) ")


@dataclass
class _Tally:
    """What was sent, and what the sidecar answered; exporters run on SDK threads, hence the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    metric_points: Counter[tuple[str, str]] = field(default_factory=Counter)  # (name, unit) -> points
    attribute_keys: Counter[str] = field(default_factory=Counter)  # attribute key -> points and spans with it

    def answered(self, signal: str, items: int, rejected: int, message: str) -> None:
        with self.lock:
            self.requests[signal] += 1
            self.items[signal] += items
            self.rejected[signal] += rejected
            if message:
                self.messages.append(message)

    def failure(self, signal: str, error: grpc.RpcError) -> None:
        call: Any = error
        with self.lock:
            self.failed.append(f"{signal}: {call.code().name}: {call.details()}")


class _AnsweredMetricExporter(MetricExporter):
    def __init__(self, channel: grpc.Channel, tally: _Tally) -> None:
        super().__init__()
        self._stub = MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
        self._tally = tally

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        request = encode_metrics(metrics_data)
        points = 0
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    data_points = getattr(metric, kind).data_points if kind else ()
                    points += len(data_points)
                    with self._tally.lock:
                        self._tally.metric_points[(metric.name, metric.unit)] += len(data_points)
                        self._tally.attribute_keys.update(kv.key for p in data_points for kv in p.attributes)
        try:
            response = self._stub.Export(request, timeout=_EXPORT_SECONDS)
        except grpc.RpcError as error:
            self._tally.failure("metrics", error)
            return MetricExportResult.FAILURE
        partial = response.partial_success
        self._tally.answered("metrics", points, partial.rejected_data_points, partial.error_message)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class _AnsweredSpanExporter(SpanExporter):
    def __init__(self, channel: grpc.Channel, tally: _Tally) -> None:
        self._stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        self._tally = tally

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._tally.lock:
            self._tally.attribute_keys.update(key for span in spans for key in (span.attributes or {}))
        try:
            response = self._stub.Export(encode_spans(spans), timeout=_EXPORT_SECONDS)
        except grpc.RpcError as error:
            self._tally.failure("traces", error)
            return SpanExportResult.FAILURE
        partial = response.partial_success
        self._tally.answered("traces", len(spans), partial.rejected_spans, partial.error_message)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _send(endpoint: str, seconds: float, tally: _Tally, channel: grpc.Channel) -> int:
    resource = Resource.create(
        {"service.name": "checkout", "k8s.pod.name": "checkout-7d9f", "k8s.namespace.name": "shop"}
    )
    reader = PeriodicExportingMetricReader(_AnsweredMetricExporter(channel, tally), export_interval_millis=2000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    tracers = TracerProvider(resource=resource)
    tracers.add_span_processor(BatchSpanProcessor(_AnsweredSpanExporter(channel, tally)))
    meter = meters.get_meter("checkout")
    tracer = tracers.get_tracer("checkout")
    latency = meter.create_histogram("http.server.duration", unit="ms", description="legacy name and unit")
    requests = meter.create_counter("http.server.request.count", unit="{request}")
    disk_io = meters.get_meter("hostmetrics").create_counter("system_disk_io_time_seconds_total", unit="s")

    rng = random.Random(42)
    deadline = time.monotonic() + seconds
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
    return sent


def _what_the_contract_did(contract: Contract, tally: _Tally) -> list[str]:
    """The renames and conversions ``contract`` makes of what was sent, as lines of the summary."""
    lines = []
    for metric in contract.metrics:
        for alias in metric.aliases:
            for (name, unit), points in sorted(tally.metric_points.items()):
                if name != alias.name:
                    continue
                lines.append(f"  renamed    {points} data point(s): {name} -> {metric.name}")
                sent_unit = unit or alias.unit
                if metric.unit and sent_unit and sent_unit != metric.unit:
                    lines.append(f"  converted  {points} data point(s): {sent_unit} -> {metric.unit} ({metric.name})")
    for old, new in contract.attributes.renames.items():
        if count := tally.attribute_keys[old]:
            kind = contract.attributes.types.get(new)
            typed = f", values as {kind.value}" if kind else ""
            lines.append(f"  renamed    {count} attribute(s): {old} -> {new}{typed} (on data points and spans)")
    return lines


def _summary(endpoint: str, sent: int, tally: _Tally, contract: Contract) -> list[str]:
    lines = [
        f"sent {sent} iterations' worth of telemetry to {endpoint}: "
        f"{tally.requests['metrics']} metrics request(s) with {tally.items['metrics']} data point(s), "
        f"{tally.requests['traces']} trace request(s) with {tally.items['traces']} span(s)"
    ]
    named = {match for message in tally.messages for match in _CONTRACT_ID.findall(message)}
    if named and contract.id not in named:
        lines.append(
            f"the sidecar answered for contract {', '.join(sorted(named))}, not {contract.id}: "
            "pass its file with --contract to see its renames"
        )
    else:
        lines.append(f"what contract {contract.id} did to it:")
        lines += _what_the_contract_did(contract, tally) or ["  renamed    nothing"]
    lines.append(
        f"  rejected   {tally.rejected['metrics']} data point(s) and {tally.rejected['traces']} span(s), "
        "as the sidecar answered in partial_success"
    )
    examples = list(dict.fromkeys(m for m in tally.messages if not m.startswith("warning:")))[:1]
    examples += list(dict.fromkeys(m for m in tally.messages if m.startswith("warning:")))[:1]
    lines += [f"    e.g. {message}" for message in examples]
    lines += [f"  failed     {failure}" for failure in dict.fromkeys(tally.failed)]
    return lines


def _connects(channel: grpc.Channel) -> bool:
    """Whether the channel connects: a refused connection says so at once, silence within a bound
    (the SDK's exporters would retry, log and still exit 0 without a sidecar)."""
    outcome: list[bool] = []
    settled = threading.Event()
    final = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE)

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state in final and not settled.is_set():
            outcome.append(state is grpc.ChannelConnectivity.READY)
            settled.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        return settled.wait(_CONNECT_SECONDS) and outcome[0]
    finally:
        channel.unsubscribe(watch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="127.0.0.1:4317", help="the sidecar's OTLP/gRPC endpoint")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send")
    parser.add_argument("--contract", default=str(CONTRACT), help="the contract the sidecar enforces")
    args = parser.parse_args()

    contract = load_contract(args.contract).contract
    channel = grpc.insecure_channel(args.endpoint)
    if not _connects(channel):
        channel.close()
        print(f"no sidecar on {args.endpoint}: start it with `make run`", file=sys.stderr)
        return 1
    tally = _Tally()
    try:
        sent = _send(args.endpoint, args.seconds, tally, channel)
    finally:
        channel.close()
    print("\n".join(_summary(args.endpoint, sent, tally, contract)))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
