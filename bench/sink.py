"""A downstream OTLP/gRPC sink for bench/sidecar.py: counts what it receives and answers OK.

    python bench/sink.py --listen 127.0.0.1:PORT [--max-seconds 3600]

The three OTLP ``Export`` methods take raw bytes. Metrics requests are parsed to count their data
points (the figure the benchmark checks); trace and log requests are only counted as requests. The
tiny method ``/bench.Sink/Stats`` answers the counts as a JSON object (the request body is ignored),
and the same object is printed as one ``SINK {...}`` line on stdout at exit (SIGTERM, SIGINT or
``--max-seconds``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent import futures

import grpc
from _serve import serve_until_stopped
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
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

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.points = 0
        self.bytes = 0
        self.malformed = 0

    def add(self, size: int, points: int | None) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += size
            if points is None:
                self.malformed += 1
            else:
                self.points += points

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "points": self.points, "bytes": self.bytes, "malformed": self.malformed}


def metrics_points(request: bytes) -> int | None:
    """Data points in a serialized ExportMetricsServiceRequest; None if it does not parse."""
    try:
        return count_points(ExportMetricsServiceRequest.FromString(request))
    except Exception:
        return None


def build_server(counts: Counts) -> grpc.Server:
    def export_metrics(request: bytes, context: grpc.ServicerContext) -> bytes:
        counts.add(len(request), metrics_points(request))
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = Counts()
    server = build_server(counts)
    code = serve_until_stopped(server, args.listen, "sink", args.max_seconds, grace=1.0)
    if code == 0:
        print("SINK " + json.dumps(counts.snapshot()), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
