"""The standard gRPC health service (grpc.health.v1) for the sidecar's OTLP server.

Load balancers and Kubernetes gRPC probes ask either for the whole server (service ``""``) or for a
named service; the sidecar answers for both, with one status for all.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

OTLP_SERVICES = (
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
)
_ALL = ("", *OTLP_SERVICES)


class Health:
    """A ``HealthServicer`` reporting the overall server and the three OTLP services; starts NOT_SERVING."""

    def __init__(self) -> None:
        self._servicer = health.HealthServicer()
        self.set_serving(False)

    def add_to(self, server: grpc.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in _ALL:
            self._servicer.set(service, status)

    def shutdown(self) -> None:
        """NOT_SERVING for good: later ``set_serving`` calls are ignored, watchers are told."""
        self._servicer.enter_graceful_shutdown()
