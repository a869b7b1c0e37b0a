"""A raw pass-through OTLP/gRPC proxy: the floor that Python's gRPC plumbing sets for a sidecar.

    python bench/passthrough_proxy.py --listen 127.0.0.1:PORT --downstream 127.0.0.1:PORT [--max-seconds 3600]

The three OTLP ``Export`` methods are generic handlers without (de)serializers: the request bytes go
unchanged to the downstream through a channel's raw-bytes ``unary_unary``, and the downstream's
response bytes (or its error status) come back. No parsing, no queue, no retries, nothing else.
It uses the sidecar receiver's thread count (8) so that both servers get the same gRPC plumbing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent import futures

import grpc
from _serve import serve_until_stopped

SERVICES = (
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
)
MAX_MESSAGE = 64 * 2**20
THREADS = 8
FORWARD_TIMEOUT = 10.0

Handler = Callable[[bytes, grpc.ServicerContext], bytes]


def forwarder(channel: grpc.Channel, method: str) -> Handler:
    """A handler that sends the request bytes to ``method`` downstream and returns its response bytes."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        method, request_serializer=None, response_deserializer=None
    )

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            response: bytes = call(request, timeout=FORWARD_TIMEOUT)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or "")
        return response

    return export


def build_server(channel: grpc.Channel) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="proxy"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.so_reuseport", 0)],
    )
    handlers = [
        grpc.method_handlers_generic_handler(
            service,
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    forwarder(channel, f"/{service}/Export"), request_deserializer=None, response_serializer=None
                )
            },
        )
        for service in SERVICES
    ]
    server.add_generic_rpc_handlers(handlers)
    return server


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--downstream", required=True, metavar="HOST:PORT")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long at the latest")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    channel = grpc.insecure_channel(
        args.downstream,
        options=[("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)],
    )
    server = build_server(channel)
    code = serve_until_stopped(server, args.listen, "passthrough_proxy", args.max_seconds, grace=2.0)
    channel.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
