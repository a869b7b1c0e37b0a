"""A downstream OTLP/gRPC sink for bench/sidecar.py: counts what it receives and answers OK.

    python bench/sink.py --listen 127.0.0.1:PORT [--max-seconds 3600] [--shapes]

The three OTLP ``Export`` methods take raw bytes. Metrics requests are parsed to count their data
points (the figure the benchmark checks); trace and log requests are only counted as requests. The
tiny method ``/bench.Sink/Stats`` answers the counts as a JSON object (the request body is ignored),
and the same object is printed as one ``SINK {...}`` line on stdout at exit (SIGTERM, SIGINT or
``--max-seconds``).

``--shapes`` (bench/collector.py's check that two servers deliver the same thing) also counts the data
points per shape: resource attribute keys, metric name, unit, type, each point's attribute keys with
their value types, and histogram bounds; ``Stats`` then answers them under ``"shapes"``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent import futures

import grpc
from _serve import serve_until_stopped
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from workload import count_points

METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
OTHER_SERVICES = (
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
)
STATS_SERVICE = "bench.Sink"
MAX_MESSAGE = 64 * 2**20
THREADS = 8


class Counts:
    """Requests, data points and bytes received; thread-safe."""

    def __init__(self, shapes: bool = False) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.points = 0
        self.bytes = 0
        self.malformed = 0
        self.shapes: Counter[str] | None = Counter() if shapes else None

    def add(self, size: int, points: int | None, shapes: Counter[str] | None = None) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += size
            if points is None:
                self.malformed += 1
            else:
                self.points += points
            if self.shapes is not None and shapes:
                self.shapes.update(shapes)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            counts: dict[str, object] = {
                "requests": self.requests,
                "points": self.points,
                "bytes": self.bytes,
                "malformed": self.malformed,
            }
            if self.shapes is not None:
                counts["shapes"] = dict(sorted(self.shapes.items()))
            return counts


def metrics_points(request: bytes) -> int | None:
    """Data points in a serialized ExportMetricsServiceRequest; None if it does not parse."""
    try:
        return count_points(ExportMetricsServiceRequest.FromString(request))
    except Exception:
        return None


def _keys(attributes: Sequence[KeyValue]) -> str:
    return ",".join(sorted(f"{a.key}:{a.value.WhichOneof('value')}" for a in attributes))


def metrics_shapes(request: bytes) -> Counter[str]:
    """Data points per shape (see the module docstring); empty if the request does not parse."""
    shapes: Counter[str] = Counter()
    try:
        parsed = ExportMetricsServiceRequest.FromString(request)
    except Exception:
        return shapes
    for resource in parsed.resource_metrics:
        resource_keys = _keys(resource.resource.attributes)
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data") or "none"
                for point in getattr(metric, kind).data_points if kind != "none" else ():
                    bounds = ",".join(f"{b:.9g}" for b in getattr(point, "explicit_bounds", ()))
                    shapes[
                        f"{resource_keys} | {metric.name} [{metric.unit}] {kind} | {_keys(point.attributes)} | {bounds}"
                    ] += 1
    return shapes


def build_server(counts: Counts) -> grpc.Server:
    def export_metrics(request: bytes, context: grpc.ServicerContext) -> bytes:
        counts.add(
            len(request), metrics_points(request), metrics_shapes(request) if counts.shapes is not None else None
        )
        return b""  # an empty ExportMetricsServiceResponse: full success

    def export_other(request: bytes, context: grpc.ServicerContext) -> bytes:
        counts.add(len(request), 0)
        return b""

    def stats(request: bytes, context: grpc.ServicerContext) -> bytes:
        return json.dumps(counts.snapshot()).encode()

    def raw(handler: object) -> grpc.RpcMethodHandler[bytes, bytes]:
        return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=None, response_serializer=None)  # type: ignore[arg-type]

    handlers = [grpc.method_handlers_generic_handler(METRICS_SERVICE, {"Export": raw(export_metrics)})]
    handlers += [grpc.method_handlers_generic_handler(name, {"Export": raw(export_other)}) for name in OTHER_SERVICES]
    handlers.append(grpc.method_handlers_generic_handler(STATS_SERVICE, {"Stats": raw(stats)}))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sink"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers(handlers)
    return server


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long at the latest")
    parser.add_argument("--shapes", action="store_true", help="also count data points per shape (slower)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = Counts(shapes=args.shapes)
    server = build_server(counts)
    code = serve_until_stopped(server, args.listen, "sink", args.max_seconds, grace=1.0)
    if code == 0:
        print("SINK " + json.dumps(counts.snapshot()), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
