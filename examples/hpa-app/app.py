"""A producer/consumer queue app exporting the `hpa_app_*` metrics an HPA scales on, with prometheus-client.

The classic HPA demo app, made deterministic: no real queue, the numbers follow from the clock.

    hpa_app_queue_length{queue_name}                        gauge: messages waiting (--queue-length, constant)
    hpa_app_produce_count_total{queue_name}                 counter: --produce-rate x seconds since start
    hpa_app_consume_count_total{queue_name,pod,namespace}   counter: --consume-rate x seconds since start

A producer exports the first two, a consumer the third, `--role both` all three. The consumer labels
its counter with its own pod and namespace (POD_NAME / POD_NAMESPACE, as the Downward API sets them,
or --pod / --namespace), which is what a Pods-type HPA metric needs through prometheus-adapter;
--no-pod-labels leaves them out and reproduces the HPA showing `<unknown>`. Counters are computed
when scraped, from the elapsed time at millisecond resolution (the resolution of Prometheus
timestamps); --timestamps exposes each sample with that very clock reading, so that Prometheus
stores points lying exactly on a line and rate() returns the configured rate to float precision.

    python examples/hpa-app/app.py --role consumer --consume-rate 30 --pod hpa-app-consumer-a --namespace hpa-app
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

QUEUE_LENGTH = "hpa_app_queue_length"
PRODUCE_COUNT = "hpa_app_produce_count"  # exposed as hpa_app_produce_count_total
CONSUME_COUNT = "hpa_app_consume_count"  # exposed as hpa_app_consume_count_total

Clock = Callable[[], float]


class Role(StrEnum):
    PRODUCER = "producer"
    CONSUMER = "consumer"
    BOTH = "both"

    @property
    def produces(self) -> bool:
        return self is not Role.CONSUMER

    @property
    def consumes(self) -> bool:
        return self is not Role.PRODUCER


@dataclass(frozen=True)
class PodIdentity:
    """The consumer's own pod, as the Downward API tells it (metadata.name, metadata.namespace)."""

    pod: str
    namespace: str


@dataclass(frozen=True)
class HpaAppConfig:
    role: Role = Role.BOTH
    queue_name: str = "hpa-app"
    produce_rate: float = 0.0  # messages per second
    consume_rate: float = 0.0  # messages per second
    queue_length: float = 0.0  # messages waiting, exported as is
    identity: PodIdentity | None = None  # None: the consume counter has no pod/namespace labels
    timestamps: bool = False  # expose each sample with the clock reading it was computed from

    def __post_init__(self) -> None:
        for name in ("produce_rate", "consume_rate", "queue_length"):
            value = getattr(self, name)
            # A negative rate would make a counter go down, which Prometheus reads as a reset.
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


def _millis(seconds: float) -> int:
    return math.floor(seconds * 1000)


class HpaApp:
    """A prometheus-client collector: the app's metrics, evaluated from ``clock`` each time they are collected.

    ``clock`` returns seconds; it must not go backwards (a counter would drop) and must be Unix time
    when ``config.timestamps`` is set (Prometheus stores the exposed timestamps as they are).
    ``start`` defaults to the clock's reading at construction.
    """

    def __init__(self, config: HpaAppConfig, clock: Clock = time.time, start: float | None = None) -> None:
        self.config = config
        self._clock = clock
        self._start_ms = _millis(clock() if start is None else start)

    def describe(self) -> list[Metric]:
        # Names only, so that registering never calls collect() (and never reads the clock).
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        now_ms = _millis(self._clock())
        elapsed = (now_ms - self._start_ms) / 1000
        # Half a millisecond past now_ms: both exposition formats truncate seconds * 1000 to an integer,
        # and a float just below now_ms / 1000 would land on the millisecond before.
        timestamp = (now_ms + 0.5) / 1000 if self.config.timestamps else None
        queue, produced, consumed = self._families()
        config = self.config
        if config.role.produces:
            queue.add_metric([config.queue_name], config.queue_length, timestamp=timestamp)
            produced.add_metric([config.queue_name], config.produce_rate * elapsed, timestamp=timestamp)
            yield queue
            yield produced
        if config.role.consumes:
            identity = [] if config.identity is None else [config.identity.pod, config.identity.namespace]
            consumed.add_metric([config.queue_name, *identity], config.consume_rate * elapsed, timestamp=timestamp)
            yield consumed

    def _families(self) -> tuple[GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily]:
        consume_labels = ["queue_name"] if self.config.identity is None else ["queue_name", "pod", "namespace"]
        return (
            GaugeMetricFamily(QUEUE_LENGTH, "Messages waiting in the queue.", labels=["queue_name"]),
            CounterMetricFamily(PRODUCE_COUNT, "Messages produced.", labels=["queue_name"]),
            CounterMetricFamily(CONSUME_COUNT, "Messages consumed by this pod.", labels=consume_labels),
        )


def make_registry(app: HpaApp) -> CollectorRegistry:
    """A registry holding only the app's metrics (no process or platform collectors, so scrapes are exact)."""
    registry = CollectorRegistry()
    registry.register(app)
    return registry


@dataclass(frozen=True)
class Serving:
    """An app served over HTTP on a daemon thread."""

    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def target(self) -> str:
        """host:port, as a Prometheus static_configs target."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(app: HpaApp, host: str = "127.0.0.1", port: int = 0) -> Serving:
    """Serve the app's metrics at http://host:port/metrics (port 0: an ephemeral port)."""
    server, thread = start_http_server(port, addr=host, registry=make_registry(app))
    return Serving(server=server, thread=thread, host=host)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", type=Role, choices=list(Role), default=Role.BOTH, help="default: %(default)s")
    parser.add_argument("--queue-name", default="hpa-app", help="the queue_name label (default: %(default)s)")
    parser.add_argument("--produce-rate", type=float, default=0.0, help="messages produced per second")
    parser.add_argument("--consume-rate", type=float, default=0.0, help="messages consumed per second")
    parser.add_argument("--queue-length", type=float, default=0.0, help="the hpa_app_queue_length value")
    parser.add_argument("--pod", default=os.environ.get("POD_NAME"), help="the pod label (default: $POD_NAME)")
    parser.add_argument(
        "--namespace", default=os.environ.get("POD_NAMESPACE"), help="the namespace label (default: $POD_NAMESPACE)"
    )
    parser.add_argument(
        "--no-pod-labels",
        action="store_true",
        help="export the consume counter without pod/namespace (an HPA on it then shows <unknown>)",
    )
    parser.add_argument("--timestamps", action="store_true", help="expose each sample with its timestamp")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on, 0 for any free one")
    return parser


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> HpaAppConfig:
    identity = None
    role: Role = args.role
    if role.consumes and not args.no_pod_labels:
        if not args.pod or not args.namespace:
            # Failing beats inventing a name: a wrong pod label breaks the HPA as surely as none.
            parser.error("a consumer needs --pod and --namespace (or POD_NAME/POD_NAMESPACE), or --no-pod-labels")
        identity = PodIdentity(pod=args.pod, namespace=args.namespace)
    try:
        return HpaAppConfig(
            role=role,
            queue_name=args.queue_name,
            produce_rate=args.produce_rate,
            consume_rate=args.consume_rate,
            queue_length=args.queue_length,
            identity=identity,
            timestamps=args.timestamps,
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    serving = serve(HpaApp(_config(parser, args)), host=args.host, port=args.port)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(serving.url, flush=True)
    stop.wait()
    serving.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
