"""Serving a bench gRPC server until SIGTERM/SIGINT or a time limit: shared by the proxy and the sink."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import grpc


def serve_until_stopped(server: grpc.Server, listen: str, name: str, max_seconds: float, grace: float) -> int:
    """Bind ``listen``, serve until a signal or ``max_seconds``, stop with ``grace``; the exit code."""
    if not server.add_insecure_port(listen):
        print(f"{name}: cannot listen on {listen}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    stop.wait(max_seconds)
    server.stop(grace=grace).wait(grace + 1.0)
    return 0
